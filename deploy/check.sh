#!/usr/bin/env bash
# Validates what ships for Kubernetes, as a new user would meet it:
# - the manifests and the KEDA examples against the Kubernetes schemas (and
#   deploy/schemas/ for KEDA's and the Prometheus Operator's kinds);
# - the Helm chart, linted and rendered with each values file in
#   deploy/helm/ci/, and the output validated the same way;
# - the forecaster config inside each of them, checked by the binary itself
#   (`kedastral forecaster --config ... --check`);
# - values that make no sense, refused by the chart with a message.
#
#   deploy/check.sh            (after a build: uses target/debug/kedastral)
set -euo pipefail
cd "$(dirname "$0")/.."
kedastral="${KEDASTRAL:-target/debug/kedastral}"
[ -x "$kedastral" ] || cargo build -q -p kedastral
# Python tools come from the virtual environment scripts/test makes, never
# from installs into the system Python.
if [ -x target/venv/bin/python ]; then
    export PATH="$PWD/target/venv/bin:$PATH"
fi
if ! python3 -c "import kubernetes_validate, yaml, jsonschema" 2>/dev/null; then
    echo "error: the deploy checks need kubernetes-validate: run scripts/test --setup-only," >&2
    echo "which installs it into target/venv, then deploy/check.sh again" >&2
    exit 1
fi
helm=$(deploy/tools/helm.sh)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

config_of() {
    python3 -c '
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc.get("kind") == "ConfigMap" and "workloads.toml" in doc.get("data", {}):
        print(doc["data"]["workloads.toml"])
        break
else:
    sys.exit("no workloads.toml ConfigMap in " + sys.argv[1])
' "$1"
}

check_config() {
    config_of "$1" > "$tmp/workloads.toml"
    KEDASTRAL_MODEL_CACHE_DIR="$tmp/models" "$kedastral" forecaster \
        --config "$tmp/workloads.toml" --check
}

echo "== manifests and examples"
python3 deploy/validate.py deploy/kubernetes examples/keda
check_config deploy/kubernetes/base/workloads.yaml

echo "== alerting rules"
promtool check rules deploy/prometheus/kedastral-alerts.yaml

echo "== Helm chart ($("$helm" version --short))"
for values in deploy/helm/ci/*.yaml; do
    echo "-- $values"
    "$helm" lint --strict deploy/helm/kedastral -f "$values" >/dev/null
    "$helm" template kedastral deploy/helm/kedastral -n kedastral -f "$values" > "$tmp/rendered.yaml"
    python3 deploy/validate.py "$tmp/rendered.yaml"
    check_config "$tmp/rendered.yaml"
done

echo "-- values the chart must refuse"
refuse() {
    local why="$1"
    shift
    if "$helm" template kedastral deploy/helm/kedastral -f deploy/helm/ci/minimal.yaml "$@" \
        > /dev/null 2> "$tmp/error"; then
        echo "error: the chart accepted $*" >&2
        exit 1
    fi
    grep -q "$why" "$tmp/error" || { cat "$tmp/error" >&2; exit 1; }
}
refuse "needs storage.type=redis" --set forecaster.replicas=2
refuse "needs scaler.tls.secretName" --set scaler.tls.enabled=true
if "$helm" template kedastral deploy/helm/kedastral > /dev/null 2> "$tmp/error"; then
    echo "error: the chart rendered without workloads" >&2
    exit 1
fi
grep -q "at least one entry in" "$tmp/error"
echo "deploy checks passed"
