"""Times the reference Fracast-0 (the `fracast` package, PyTorch, one thread)
on the window `cargo bench -p kedastral --bench fracast` uses: the last 2 048
points of the bundled NASA trace, horizons 30 and 48. Prints the median of
the repeats and the fastest in milliseconds, for BENCHMARKS.md.

    python3 -m venv target/fracast/venv
    target/fracast/venv/bin/pip install fracast==0.1.0
    target/fracast/venv/bin/python scripts/fracast_reference_bench.py
"""
import csv
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from fracast import FracastModel

TRACE = Path(__file__).resolve().parents[1] / "examples" / "data" / "nasa_http_1m.csv"
REPEATS = 50


def main():
    torch.set_num_threads(1)
    with TRACE.open() as f:
        values = np.array([float(r[1]) for r in list(csv.reader(f))[1:]], dtype=np.float32)
    window = values[-2048:]
    for weights in ("fp32", "w8"):
        model = FracastModel.from_pretrained(weights=weights)
        for horizon in (30, 48):
            model.forecast(window, horizon=horizon)
            times = []
            for _ in range(REPEATS):
                start = time.perf_counter()
                model.forecast(window, horizon=horizon)
                times.append(time.perf_counter() - start)
            print(f"reference {weights} horizon {horizon}: median {statistics.median(times) * 1e3:.1f} ms, "
                  f"fastest {min(times) * 1e3:.1f} ms (torch {torch.__version__}, one thread)")


if __name__ == "__main__":
    main()
