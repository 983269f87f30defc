"""Times the reference Fracast-0 (the `fracast` package, PyTorch, one thread)
on the window `cargo bench -p kedastral --bench fracast` uses: the last 2 048
points of the bundled NASA trace, horizons 30 and 48. Prints the median of
the repeats and the fastest in milliseconds, for BENCHMARKS.md.

    python3 -m venv target/fracast/venv
    target/fracast/venv/bin/pip install fracast==0.1.0
    target/fracast/venv/bin/python scripts/fracast_reference_bench.py

With --rust, the reference and our build are timed side by side: rounds of
REPEATS reference calls, each followed by a run of
`target/release/examples/fracast_interleaved` (native and WebAssembly, call by
call), so that the machine's drift moves all three alike. It prints each
one's fastest and median over every round and the ratios to the reference:

    cargo build --release -p kedastral --example fracast_interleaved
    target/fracast/venv/bin/python scripts/fracast_reference_bench.py --rust --rounds 6
"""
import argparse
import csv
import re
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from fracast import FracastModel

ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT / "examples" / "data" / "nasa_http_1m.csv"
INTERLEAVED = ROOT / "target" / "release" / "examples" / "fracast_interleaved"
REPEATS = 50


def reference_times(model, window, horizon, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.forecast(window, horizon=horizon)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def rust_times(horizon, repeats):
    """The fastest and median of native and wasm from one run of the example."""
    out = subprocess.run([str(INTERLEAVED), str(repeats), str(horizon)],
                         check=True, capture_output=True, text=True).stdout
    native = re.search(r"native fastest ([\d.]+) ms, median ([\d.]+) ms", out)
    wasm = re.search(r"\n\S+: fastest ([\d.]+) ms, median ([\d.]+) ms", out)
    return tuple(map(float, native.groups())), tuple(map(float, wasm.groups()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rust", action="store_true",
                        help="time target/release/examples/fracast_interleaved in turn with the reference")
    parser.add_argument("--rounds", type=int, default=6, help="rounds with --rust")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="calls per measurement")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with TRACE.open() as f:
        values = np.array([float(r[1]) for r in list(csv.reader(f))[1:]], dtype=np.float32)
    window = values[-2048:]
    if args.rust:
        model = FracastModel.from_pretrained(weights="fp32")
        for horizon in (30, 48):
            model.forecast(window, horizon=horizon)
            reference, native, wasm = [], [], []
            for _ in range(args.rounds):
                reference.extend(reference_times(model, window, horizon, args.repeats))
                n, w = rust_times(horizon, args.repeats)
                native.append(n)
                wasm.append(w)
            ref_fast, ref_median = min(reference), statistics.median(reference)
            nat_fast, nat_median = min(n[0] for n in native), statistics.median(n[1] for n in native)
            was_fast, was_median = min(w[0] for w in wasm), statistics.median(w[1] for w in wasm)
            print(f"horizon {horizon}, {args.rounds} rounds of {args.repeats} calls: "
                  f"reference fastest {ref_fast:.1f} ms, median {ref_median:.1f} ms; "
                  f"native {nat_fast:.1f} / {nat_median:.1f} ms; wasm {was_fast:.1f} / {was_median:.1f} ms; "
                  f"wasm / reference {was_fast / ref_fast:.2f} (fastest), {was_median / ref_median:.2f} (median)")
        return
    for weights in ("fp32", "w8"):
        model = FracastModel.from_pretrained(weights=weights)
        for horizon in (30, 48):
            model.forecast(window, horizon=horizon)
            times = reference_times(model, window, horizon, args.repeats)
            print(f"reference {weights} horizon {horizon}: median {statistics.median(times):.1f} ms, "
                  f"fastest {min(times):.1f} ms (torch {torch.__version__}, one thread)")


if __name__ == "__main__":
    main()
