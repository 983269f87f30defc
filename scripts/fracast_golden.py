"""Golden values for the Rust port of Fracast-0, from the reference package.

Runs the `fracast` package (PyTorch) on windows of real traces (the bundled
NASA trace, and the NAB slices in guest-models/fracast/golden/nab with their
notice) and writes guest-models/fracast/golden/golden.json, which the tests
in guest-models/fracast/src/tests.rs read: for each case, its trace, where its history
starts and ends in it, which points are made missing, the horizon, and the
nine quantiles of every step.

    python3 -m venv target/fracast/venv
    target/fracast/venv/bin/pip install fracast==0.1.0
    target/fracast/venv/bin/python scripts/fracast_golden.py

PyTorch is needed only here, never to run the tests.
"""
import csv
import json
from pathlib import Path

import numpy as np
import torch
from fracast import FracastModel

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "guest-models" / "fracast" / "golden"
NASA = "examples/data/nasa_http_1m.csv"
RDS = "guest-models/fracast/golden/nab/rds_cpu_5m.csv"
AAPL = "guest-models/fracast/golden/nab/tweets_aapl_5m.csv"

# (name, trace, end index in the trace, history length, horizon, missing every k-th point or 0)
CASES = [
    ("short-100-h30", NASA, 20_000, 100, 30, 0),
    ("short-500-h48", NASA, 30_000, 500, 48, 0),
    ("exact-2048-h1", NASA, 25_000, 2048, 1, 0),
    ("exact-2048-h30", NASA, 25_000, 2048, 30, 0),
    ("exact-2048-h48", NASA, 39_000, 2048, 48, 0),
    ("long-5000-h48", NASA, 39_600, 5000, 48, 0),
    ("long-3000-h100", NASA, 35_000, 3000, 100, 0),
    ("missing-2048-h48", NASA, 38_000, 2048, 48, 7),
    ("missing-800-h100", NASA, 12_000, 800, 100, 5),
    ("rds-2048-h48", RDS, 3_000, 2048, 48, 0),
    ("rds-missing-600-h30", RDS, 1_500, 600, 30, 3),
    ("aapl-3000-h100", AAPL, 3_000, 3000, 100, 0),
    ("aapl-2048-h1", AAPL, 2_500, 2048, 1, 0),
]


def main():
    torch.set_num_threads(1)
    model = FracastModel.from_pretrained(weights="fp32")
    cases = []
    for name, trace, end, length, horizon, every in CASES:
        with (ROOT / trace).open() as f:
            values = np.array([float(r[1]) for r in list(csv.reader(f))[1:]], dtype=np.float64)
        assert end <= len(values), f"{name}: the trace has {len(values)} points"
        history = values[end - length:end].copy()
        if every:
            history[::every] = np.nan
        forecast = model.forecast(history.astype(np.float32), horizon=horizon)
        cases.append({
            "name": name,
            "trace": trace,
            "start": end - length,
            "end": end,
            "missingEvery": every,
            "horizon": horizon,
            "quantiles": np.asarray(forecast, dtype=np.float64).tolist(),
        })
    out = {
        "source": "fracast 0.1.0 (PyPI), weights fp32, torch " + torch.__version__,
        "cases": cases,
    }
    (GOLDEN / "golden.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
