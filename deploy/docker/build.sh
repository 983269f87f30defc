#!/usr/bin/env bash
# Builds the release `kedastral` binary, with the built-in models compiled to
# WebAssembly and embedded, into OUT (default target/image), and checks it:
# the steps the Dockerfile runs, so CI can run them without a Docker engine.
#
#   deploy/docker/build.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-target/image}"

rustup target add wasm32-wasip2
cargo build --release --locked -p kedastral
mkdir -p "$out"
install -m 0755 target/release/kedastral "$out/kedastral"

# The runtime image (distroless cc) has glibc, libgcc_s and nothing else:
# the binary must need no other shared library.
allowed='^(libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1)$'
needed=$(readelf -d "$out/kedastral" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for lib in $needed; do
    if ! [[ "$lib" =~ $allowed ]]; then
        echo "error: kedastral needs $lib, which the runtime image lacks" >&2
        exit 1
    fi
done

# The binary runs, and its embedded models load and answer.
"$out/kedastral" --version
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
for model in baseline arima mstl; do
    KEDASTRAL_MODEL_CACHE_DIR="$cache" "$out/kedastral" model inspect "$model" >/dev/null
done
KEDASTRAL_MODEL_CACHE_DIR="$cache" "$out/kedastral" forecast --model auto --horizon 5 --format csv >/dev/null
echo "built $out/kedastral ($(du -h "$out/kedastral" | cut -f1)), needs: $(echo $needed)"
