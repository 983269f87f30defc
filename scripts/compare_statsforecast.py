#!/usr/bin/env python3
"""Compare Kedastral's built-in models with statsforecast baselines.

For each trace, runs `kedastral backtest` for the built-in models and scores
statsforecast's AutoARIMA, AutoETS, MSTL and SeasonalNaive on the same rolling
origins, histories and metrics (MASE, MAE, RMSE, 80/90 % interval coverage).

The CSV regularisation and origin selection reimplement host/src/history.rs
and host/src/backtest.rs; the script checks them by recomputing seasonal
naive's MAE, RMSE and MASE and comparing with the numbers Kedastral prints
(it aborts when they differ by more than 1e-9 relative).

Usage:
    python3 scripts/compare_statsforecast.py [--binary target/debug/kedastral]
        [--origins 200] [--models baseline,auto] [--jobs 2] [--weekly] [--json OUT]
        [--reuse OUT] [TRACE.csv ...]

--reuse takes the statsforecast rows from an earlier --json file (same
traces and origins) and recomputes only Kedastral's, which takes seconds.
--no-statsforecast leaves statsforecast out (it need not be installed).

--fracast-reference adds a `fracast (reference)` row: the `fracast` package
(PyTorch, fp32 weights, one thread) on the same origins and histories, its
median as the point, so the built-in `fracast` is checked against the
original. It needs `pip install fracast==0.1.0` (PyTorch, about 5 GB).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

import numpy as np

HORIZON = 30
MAX_HISTORY = 10_080
MIN_HISTORY = 2  # max(model min_history, 2) for both built-in models
LEVELS = (80, 90)
MAX_FIT_POINTS = 2_880  # statsforecast fits on at most this many points (2 days of 1-minute data)
DEFAULT_DATA = Path(__file__).resolve().parent.parent / "examples" / "data"
DEFAULT_TRACES = [
    "nasa_http_1m.csv",
    "nab_tweets_goog_5m.csv",
    "nab_tweets_aapl_5m.csv",
    "nab_tweets_ibm_5m.csv",
    "nab_ec2_network_in_5m.csv",
    "nab_rds_cpu_5m.csv",
]
KEDASTRAL_MODELS = ["baseline", "arima", "mstl", "fracast", "auto"]
# Standard normal quantiles of Fracast's outer levels and of the 90 % band's.
Z_10, Z_20, Z_05 = 1.2815515655446004, 0.8416212335729143, 1.6448536269514722


# ---------------------------------------------------------------- history.rs


def _round_half_away(x: float) -> int:
    """Rust's f64::round: halves go away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def _parse_timestamp(field: str) -> int | None:
    try:
        return int(datetime.fromisoformat(field.replace("Z", "+00:00")).timestamp())
    except ValueError:
        pass
    try:
        s = float(field)
    except ValueError:
        return None
    return _round_half_away(s) if math.isfinite(s) and abs(s) < 1e12 else None


def _parse_value(field: str) -> float:
    if field == "" or field.lower() == "nan":
        return math.nan
    return float(field)


def load_csv(path: Path) -> tuple[int, int, np.ndarray]:
    """(start unix seconds, step seconds, values with NaN for gaps)."""
    rows: list[tuple[int, float]] = []
    for raw in path.read_text().splitlines():
        raw = raw.strip()
        if not raw or raw.startswith("#"):
            continue
        ts, value = (f.strip() for f in raw.split(","))
        t = _parse_timestamp(ts)
        if t is None:
            if not rows:
                continue  # header
            raise ValueError(f"bad timestamp {ts!r}")
        rows.append((t, _parse_value(value)))
    times = [t for t, _ in rows]
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    step = gaps[len(gaps) // 2]
    first = times[0]
    phases = []
    for t in times:
        off = (t - first) % step
        phases.append(off - step if off * 2 >= step else off)
    phases.sort()
    anchor = first + phases[len(phases) // 2]

    def raw_slot(t: int) -> int:
        return _round_half_away((t - anchor) / step)

    first_slot = raw_slot(first)
    start = anchor + first_slot * step
    slots = raw_slot(times[-1]) - first_slot + 1
    values = np.full(slots, np.nan)
    seen = np.zeros(slots, dtype=bool)
    for t, v in rows:
        s = raw_slot(t) - first_slot
        if seen[s]:
            raise ValueError(f"{path}: two rows on slot {s}")
        seen[s] = True
        values[s] = v
    return start, step, values


# --------------------------------------------------------------- backtest.rs


def select_origins(n: int, h: int, count: int, stride: int) -> list[int]:
    last = n - h
    if last < MIN_HISTORY:
        raise ValueError("history too short")
    origins = []
    for k in range(count):
        o = last - k * stride
        if o < 0:
            break
        if o >= MIN_HISTORY:
            origins.append(o)
    return sorted(origins)


def seasonal_scale(train: np.ndarray, season: int) -> float | None:
    d = np.abs(train[season:] - train[:-season])
    d = d[~np.isnan(d)]
    return float(d.sum() / d.size) if d.size and d.sum() > 0 else None


def seasonal_naive_value(y: np.ndarray, origin: int, lead: int, season: int) -> float:
    i = origin + lead - (lead // season + 1) * season
    return y[i] if i >= 0 else math.nan


class Scores:
    """Accumulates errors and coverage on Kedastral's (origin, lead) pairs."""

    def __init__(self) -> None:
        self.abs = 0.0
        self.sq = 0.0
        self.count = 0
        self.inside = {lv: 0 for lv in LEVELS}
        self.seconds = 0.0
        self.calls = 0
        self.failed = 0

    def add(self, err: float, actual: float, bands: dict | None, lead: int) -> None:
        self.abs += abs(err)
        self.sq += err * err
        self.count += 1
        if bands is not None:
            for lv in LEVELS:
                if bands[f"lo-{lv}"][lead] <= actual <= bands[f"hi-{lv}"][lead]:
                    self.inside[lv] += 1

    def result(self, scale: float | None) -> dict:
        n = max(self.count, 1)
        mae = self.abs / n
        return {
            "mae": mae,
            "rmse": math.sqrt(self.sq / n),
            "mase": None if scale is None else mae / scale,
            "points": self.count,
            "coverage": {lv: self.inside[lv] / n for lv in LEVELS},
            "seconds_per_forecast": self.seconds / max(self.calls, 1),
            "failed_origins": self.failed,
        }


# ------------------------------------------------------------ statsforecast


def make_models(day: int, weekly: bool) -> dict:
    from statsforecast.models import MSTL, AutoARIMA, AutoETS, SeasonalNaive

    seasons = [day]
    if weekly:
        seasons.append(7 * day)
    return {
        "sf AutoARIMA": lambda: AutoARIMA(season_length=1),
        "sf AutoETS": lambda: AutoETS(season_length=1),
        "sf MSTL": lambda: MSTL(season_length=seasons),
        "sf SeasonalNaive": lambda: SeasonalNaive(season_length=day),
    }


def fill_gaps(x: np.ndarray) -> np.ndarray:
    """statsforecast needs complete series: interpolate gaps linearly."""
    if not np.isnan(x).any():
        return x
    idx = np.arange(x.size)
    ok = ~np.isnan(x)
    return np.interp(idx, idx[ok], x[ok])


def model_input(hist: np.ndarray, name: str, day: int, weekly: bool, fit_days: float) -> np.ndarray:
    """The tail of the (already 10080-capped) history a model is fitted on."""
    if name == "sf MSTL" and weekly and hist.size >= 14 * day:
        keep = hist.size
    else:
        keep = min(hist.size, int(fit_days * day), MAX_FIT_POINTS)
    return fill_gaps(hist[-keep:])


# ---------------------------------------------------------------- fracast


def load_fracast():
    import torch
    from fracast import FracastModel

    torch.set_num_threads(1)
    return FracastModel.from_pretrained(weights="fp32")


def fracast_forecast(model, hist: np.ndarray) -> dict:
    """The reference's forecast in statsforecast's shape: the median as the
    mean, the 80 % band from levels 0.1 and 0.9, the 90 % band carried past
    them on the normal scale (as the built-in model does). Values below zero
    are raised to zero for a history never negative, as the host does."""
    raw = np.asarray(model.forecast(hist.astype(np.float32), horizon=HORIZON), dtype=np.float64)
    # The point is the network's median as it comes; the bands are the nine
    # quantiles sorted, as the built-in model serves them.
    q = np.sort(raw, axis=1)
    stretch = (Z_05 - Z_10) / (Z_10 - Z_20)
    out = {
        "mean": raw[:, 4],
        "lo-80": q[:, 0], "hi-80": q[:, 8],
        "lo-90": q[:, 0] - (q[:, 1] - q[:, 0]) * stretch,
        "hi-90": q[:, 8] + (q[:, 8] - q[:, 7]) * stretch,
    }
    if np.nanmin(hist) >= 0:
        out = {k: np.maximum(v, 0.0) for k, v in out.items()}
    return out


# ------------------------------------------------------------------- driver


def run_kedastral(binary: str, model: str, trace: Path, origins: int) -> tuple[dict, float]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [binary, "backtest", "--model", model, "--input", str(trace),
         "--horizon", str(HORIZON), "--origins", str(origins), "--format", "json"],
        check=True, capture_output=True, text=True,
    ).stdout
    wall = time.perf_counter() - t0
    report = json.loads(out)
    return report, wall


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


def evaluate_trace(trace: Path, args: argparse.Namespace) -> dict:
    warnings.filterwarnings("ignore")
    _, step, y = load_csv(trace)
    n = y.size
    stride = max(1, 300 // step)
    day = _round_half_away(86_400 / step)
    origins = select_origins(n, HORIZON, args.origins, stride)
    first = origins[0]
    season = day if day >= 2 and first >= 2 * day else 1
    scale = seasonal_scale(y[:first], season)

    ked = {}
    for m in args.models:
        report, wall = run_kedastral(args.binary, m, trace, args.origins)
        ked[m] = (report, wall)
    ref = ked[args.models[0]][0]
    if (ref["origins"], ref["stride"], ref["seasonSteps"], ref["stepSeconds"]) != (
        len(origins), stride, season, step
    ):
        raise SystemExit(f"{trace.name}: origin/season setup differs from Kedastral: {ref}")

    factories = {} if args.no_statsforecast else make_models(day, args.weekly)
    names = list(factories)
    reused = (args.reused or {}).get(trace.name)
    if reused is not None:
        if reused["origins"] != len(origins):
            raise SystemExit(f"{trace.name}: --reuse has {reused['origins']} origins, not {len(origins)}")
        names = []
    if args.fracast_reference:
        reference = load_fracast()
        factories = {**factories, "fracast (reference)": None}
        names.append("fracast (reference)")
    scores = {name: Scores() for name in names}
    naive = Scores()
    # Warm up (first calls compile / load native code) outside the timings.
    warm = fill_gaps(y[origins[0] - min(origins[0], 3 * day): origins[0]])
    for name in names:
        try:
            if name == "fracast (reference)":
                fracast_forecast(reference, warm)
            else:
                factories[name]().forecast(y=warm, h=HORIZON, level=list(LEVELS))
        except Exception:
            pass

    for o in origins:
        hist = y[max(0, o - MAX_HISTORY): o]
        forecasts = {}
        for name in names:
            reference_run = name == "fracast (reference)"
            # The reference reads the capped history as Kedastral's model
            # does, gaps included (it masks them).
            x = hist if reference_run else model_input(hist, name, day, args.weekly, args.fit_days)
            t0 = time.perf_counter()
            try:
                if reference_run:
                    forecasts[name] = fracast_forecast(reference, x)
                else:
                    forecasts[name] = factories[name]().forecast(y=x, h=HORIZON, level=list(LEVELS))
            except Exception as e:  # counted like Kedastral's failed origins
                forecasts[name] = None
                scores[name].failed += 1
                print(f"{trace.name} {name} origin {o}: {e}", file=sys.stderr)
            scores[name].seconds += time.perf_counter() - t0
            scores[name].calls += 1
        for lead in range(HORIZON):
            actual = y[o + lead]
            if math.isnan(actual):
                continue
            sn = seasonal_naive_value(y, o, lead, season)
            if math.isnan(sn):
                continue
            naive.add(sn - actual, actual, None, lead)
            for name in names:
                f = forecasts[name]
                if f is not None:
                    scores[name].add(float(f["mean"][lead]) - actual, actual, f, lead)

    mine = naive.result(scale)
    theirs = ref["seasonalNaive"]
    check = {
        k: (mine[k], theirs[k]) for k in ("mae", "rmse", "mase")
    }
    check["points"] = (mine["points"], theirs["points"])
    ok = mine["points"] == theirs["points"] and all(
        (a is None and b is None) or (a is not None and b is not None and close(a, b))
        for k, (a, b) in check.items() if k != "points"
    )
    if not ok:
        raise SystemExit(f"{trace.name}: seasonal naive does not match Kedastral: {check}")
    max_rel = max(
        abs(a - b) / max(abs(a), abs(b), 1e-300)
        for k, (a, b) in check.items() if k != "points" and a is not None
    )

    rows = {}
    for m, (report, wall) in ked.items():
        acc = report["accuracy"]
        rows[f"kedastral {m}"] = {
            "mae": acc["mae"], "rmse": acc["rmse"], "mase": acc["mase"], "points": acc["points"],
            "coverage": {round(c["level"] * 100): c["coverage"] for c in report["coverage"]},
            "seconds_per_forecast": wall / report["origins"],
            "failed_origins": report["failedOrigins"],
        }
    for name in names:
        rows[name] = scores[name].result(scale)
    if reused is not None:
        for k, v in reused["rows"].items():
            if not k.startswith(("kedastral ", "seasonal naive (")) and k not in rows:
                # JSON turned the coverage levels into strings.
                rows[k] = {**v, "coverage": {int(lv): c for lv, c in v["coverage"].items()}}
    rows["seasonal naive (Kedastral)"] = {
        **{k: theirs[k] for k in ("mae", "rmse", "mase", "points")},
        "coverage": {}, "seconds_per_forecast": None, "failed_origins": 0,
    }
    return {
        "trace": trace.name, "step": step, "points": n, "origins": len(origins),
        "stride": stride, "season": season, "naive_check_max_rel_diff": max_rel,
        "naive_mae": theirs["mae"], "rows": rows,
    }


def aggregate(results: list[dict]) -> str:
    """Per model, over traces: the geometric mean of MASE / seasonal naive's
    MASE, and on how many traces it beats seasonal naive."""
    models = [m for m in results[0]["rows"] if all(m in r["rows"] for r in results)]
    lines = [
        "| model | geometric mean of MASE / seasonal naive | traces beating seasonal naive |",
        "|---|---:|---:|",
    ]
    for m in models:
        ratios = [r["rows"][m]["mae"] / r["naive_mae"] for r in results if r["naive_mae"] > 0]
        geo = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        wins = sum(x < 1 for x in ratios)
        lines.append(f"| {m} | {geo:.3f} | {wins} of {len(ratios)} |")
    return "\n".join(lines)


def markdown(results: list[dict]) -> str:
    lines = [
        "| trace | model | MASE | MAE / seasonal-naive MAE | 80% cov | 90% cov | s / forecast |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for name, row in r["rows"].items():
            mase = "n/a" if row["mase"] is None else f"{row['mase']:.3f}"
            ratio = row["mae"] / r["naive_mae"] if r["naive_mae"] > 0 else float("nan")
            cov = row["coverage"]
            c80 = f"{cov[80]:.3f}" if 80 in cov else "-"
            c90 = f"{cov[90]:.3f}" if 90 in cov else "-"
            secs = "-" if row["seconds_per_forecast"] is None else f"{row['seconds_per_forecast']:.3f}"
            fail = f" ({row['failed_origins']} failed)" if row["failed_origins"] else ""
            lines.append(f"| {r['trace']} | {name}{fail} | {mase} | {ratio:.3f} | {c80} | {c90} | {secs} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("traces", nargs="*", type=Path,
                   help="CSV traces (default: those of the six below found in --data-dir)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA,
                   help=f"where the default traces are (default: {DEFAULT_DATA})")
    p.add_argument("--binary", default="target/debug/kedastral")
    p.add_argument("--origins", type=int, default=200)
    p.add_argument("--models", type=lambda s: s.split(","), default=KEDASTRAL_MODELS,
                   help=f"Kedastral models to run, comma-separated (default: {','.join(KEDASTRAL_MODELS)})")
    p.add_argument("--fit-days", type=float, default=4.0,
                   help="statsforecast models are fitted on the last this many days of the "
                        "capped history, at most 2880 points (2 days of 1-minute data); default 4")
    p.add_argument("--weekly", action="store_true",
                   help="add a weekly season to MSTL when the history covers two weeks "
                        "(then MSTL gets the whole capped history; slow)")
    p.add_argument("--jobs", type=int, default=1, help="traces evaluated in parallel")
    p.add_argument("--json", type=Path, help="also write the full results here")
    p.add_argument("--reuse", type=Path,
                   help="take statsforecast's rows from this earlier --json output")
    p.add_argument("--no-statsforecast", action="store_true",
                   help="leave statsforecast's models out")
    p.add_argument("--fracast-reference", action="store_true",
                   help="add the reference Fracast-0 (the `fracast` package, PyTorch) on the same origins")
    args = p.parse_args()
    args.reused = (
        {r["trace"]: r for r in json.loads(args.reuse.read_text())} if args.reuse else None
    )
    traces = args.traces or [
        args.data_dir / t for t in DEFAULT_TRACES if (args.data_dir / t).exists()
    ]
    if not traces:
        raise SystemExit(f"no traces given and none of {DEFAULT_TRACES} in {args.data_dir}")

    if args.jobs > 1:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(evaluate_trace, traces, [args] * len(traces)))
    else:
        results = [evaluate_trace(t, args) for t in traces]

    for r in results:
        print(f"{r['trace']}: {r['points']} points, step {r['step']}s, {r['origins']} origins, "
              f"stride {r['stride']}, season {r['season']}; seasonal naive matches Kedastral "
              f"(max relative difference {r['naive_check_max_rel_diff']:.1e})", file=sys.stderr)
    print(markdown(results))
    print()
    print(aggregate(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
