#!/usr/bin/env python3
"""Validates Kubernetes YAML files (or a rendered chart on stdin, as `-`):
core kinds against the Kubernetes schemas in kubernetes-validate, strictly
(unknown fields refused); KEDA's ScaledObject and TriggerAuthentication and
the Prometheus Operator's ServiceMonitor against the schemas in
deploy/schemas/. Any other kind, a document without a kind, or a failure is
an error.

    python3 deploy/validate.py [-k 1.30.0] FILE_OR_DIR... | -
"""

import argparse
import json
import pathlib
import sys

import jsonschema
import kubernetes_validate
import yaml

SCHEMAS = pathlib.Path(__file__).resolve().parent / "schemas"


def documents(path):
    text = sys.stdin.read() if path == "-" else pathlib.Path(path).read_text()
    for doc in yaml.safe_load_all(text):
        if doc is not None:
            yield doc


def files(args):
    for arg in args:
        p = pathlib.Path(arg)
        if arg != "-" and p.is_dir():
            yield from sorted(str(f) for f in p.rglob("*.yaml"))
        else:
            yield arg


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-k", "--kubernetes-version", default="1.30.0")
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args()
    failures = 0
    checked = 0
    for path in files(args.paths):
        for doc in documents(path):
            kind, api = doc.get("kind"), doc.get("apiVersion", "")
            name = (doc.get("metadata") or {}).get("name", "?")
            where = f"{path}: {kind}/{name}"
            try:
                if not kind or not api:
                    raise ValueError("no kind or apiVersion")
                schema_file = SCHEMAS / f"{api.replace('/', '-')}-{kind}.json"
                if "." in api.split("/")[0]:
                    if not schema_file.exists():
                        raise ValueError(f"no schema for {api} {kind}")
                    jsonschema.validate(doc, json.loads(schema_file.read_text()))
                else:
                    kubernetes_validate.validate(doc, args.kubernetes_version, strict=True)
                checked += 1
            except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as e:
                failures += 1
                print(f"FAIL {where}: {e.message if hasattr(e, 'message') else e}", file=sys.stderr)
            except Exception as e:  # a schema missing, a malformed document
                failures += 1
                print(f"FAIL {where}: {e}", file=sys.stderr)
    print(f"{checked} resources valid, {failures} invalid")
    sys.exit(1 if failures or not checked else 0)


if __name__ == "__main__":
    main()
