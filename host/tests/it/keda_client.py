"""An independent KEDA External Scaler client for Kedastral's tests.

Python grpcio, with stubs generated from proto/externalscaler.proto by
grpc_tools at test time: it shares no code with Kedastral. Each call prints
one JSON line: the answer, or the gRPC status code and details.

    keda_client.py --stubs DIR --target HOST:PORT [--ca PEM [--cert PEM --key PEM]]
                   [--name N --namespace NS] [--meta key=value ...] CALL ...

CALL is spec, metrics, active, health, or stream:COUNT:SECONDS (read up to
COUNT messages from StreamIsActive within SECONDS).
"""

import argparse
import json
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stubs", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--name", default="app")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--meta", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("calls", nargs="+")
    args = parser.parse_args()

    sys.path.insert(0, args.stubs)
    import grpc
    import externalscaler_pb2 as pb
    import externalscaler_pb2_grpc as pb_grpc

    if args.ca:
        read = lambda path: open(path, "rb").read() if path else None
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read(args.ca),
            private_key=read(args.key),
            certificate_chain=read(args.cert),
        )
        channel = grpc.secure_channel(args.target, credentials)
    else:
        channel = grpc.insecure_channel(args.target)
    stub = pb_grpc.ExternalScalerStub(channel)
    meta = dict(item.split("=", 1) for item in args.meta)
    ref = pb.ScaledObjectRef(name=args.name, namespace=args.namespace, scalerMetadata=meta)

    def failure(call, error):
        return {"call": call, "ok": False, "code": error.code().name, "details": error.details()}

    for call in args.calls:
        try:
            if call == "spec":
                answer = stub.GetMetricSpec(ref, timeout=args.timeout)
                out = {"call": call, "ok": True, "specs": [
                    {"metricName": s.metricName, "targetSize": s.targetSize,
                     "targetSizeFloat": s.targetSizeFloat} for s in answer.metricSpecs]}
            elif call == "metrics":
                request = pb.GetMetricsRequest(scaledObjectRef=ref, metricName="kedastral")
                answer = stub.GetMetrics(request, timeout=args.timeout)
                out = {"call": call, "ok": True, "values": [
                    {"metricName": v.metricName, "metricValue": v.metricValue,
                     "metricValueFloat": v.metricValueFloat} for v in answer.metricValues]}
            elif call == "active":
                answer = stub.IsActive(ref, timeout=args.timeout)
                out = {"call": call, "ok": True, "result": answer.result}
            elif call == "health":
                check = channel.unary_unary(
                    "/grpc.health.v1.Health/Check",
                    request_serializer=lambda _: b"",
                    response_deserializer=lambda raw: raw,
                )
                raw = check(None, timeout=args.timeout)
                # HealthCheckResponse{status = 1}: SERVING.
                out = {"call": call, "ok": True, "serving": raw == b"\x08\x01"}
            elif call.startswith("stream:"):
                _, count, seconds = call.split(":")
                messages = []
                end = None
                stream = stub.StreamIsActive(ref, timeout=float(seconds))
                try:
                    for message in stream:
                        messages.append(message.result)
                        if len(messages) >= int(count):
                            stream.cancel()
                            break
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.CANCELLED:
                        end = {"code": error.code().name, "details": error.details()}
                out = {"call": call, "ok": True, "messages": messages, "end": end}
            else:
                raise SystemExit(f"unknown call {call}")
        except grpc.RpcError as error:
            out = failure(call, error)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
