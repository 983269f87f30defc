#!/usr/bin/env python3
"""Judge `kedastral forecast` the way a user reading its JSON would.

At each of the last --steps times of a trace, runs `kedastral forecast` on the
history before that time (a fresh process every time: nothing is carried over)
and reads what it prints:

- sizing: `sizing.loads`, the load the default policy sizes pods on. Pods are
  run as `kedastral backtest` runs them: the decision at a step asks for the
  most its loads need until its pods are ready (`--delay` steps), the HPA
  holds the most asked for over `--hold` steps, and a step is served by the
  pods every decision over the delay before it kept. Reported: the share of
  steps short of the pods the load needed, and pod-time over an oracle that
  runs exactly those pods. A pod serves `--target-per-pod`, by default a tenth
  of the trace's 95th percentile (as `backtest` assumes).
- coverage: with --coverage, the share of observations inside the 80 % band
  (the 0.1 and 0.9 quantiles) at every lead of the horizon, over the last
  --steps origins whose horizon is observed (the window then ends a horizon
  before the trace does, for sizing too); and on the same pairs the MASE
  ratio, the point forecast's absolute error over seasonal naive's (the
  value a day before), with its geometric mean over the traces.
- --stride K (with --coverage): origins every K steps rather than every
  step, so --steps origins span K times as much of the trace, more than one
  stretch of it. Sizing needs a decision at every step and is left out.

Usage:
    python3 scripts/through_forecast.py [--binary target/release/kedastral]
        [--steps 1000] [--delay 1] [--hold 1] [--coverage] [--stride 1] [--horizon 30]
        [--jobs 2]
        TRACE.csv ... [-- EXTRA FORECAST ARGS, e.g. --model auto]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def read_trace(path: Path) -> list[tuple[str, float]]:
    rows = []
    with path.open() as f:
        next(f)
        for line in f:
            stamp, value = line.strip().split(",")[:2]
            rows.append((stamp, float(value) if value else math.nan))
    return rows


def p95(values: list[float]) -> float:
    s = sorted(v for v in values if not math.isnan(v))
    pos = 0.95 * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def pods(load: float, per_pod: float) -> float:
    """Whole pods for `load`, at least one (as host/src/sizing.rs counts)."""
    exact = max(load, 0.0) / per_pod
    return max(1.0, math.ceil(exact - 1e-9 * max(exact, 1.0)))


def forecast(binary: str, rows, end: int, extra: list[str], workdir: str) -> dict:
    path = os.path.join(workdir, f"history-{end}.csv")
    with open(path, "w") as f:
        f.write("timestamp,value\n")
        f.writelines(f"{s},{v}\n" for s, v in rows[:end])
    try:
        out = subprocess.run(
            [binary, "forecast", "--input", path, *extra],
            capture_output=True,
            text=True,
        )
    finally:
        os.remove(path)
    if out.returncode != 0:
        sys.exit(f"kedastral forecast failed at step {end}: {out.stderr[-2000:]}")
    return json.loads(out.stdout)


def sizing(args, n: int, values: list[float], answers, per_pod: float) -> dict:
    """Pods run on the forecasts' `sizing.loads` over the last --steps steps."""
    ask = {end: max(a["sizing"]["loads"][: args.delay + 1]) for end, a in answers}
    short = capacity = needed = judged = 0
    for k in range(n - args.steps, n):
        if math.isnan(values[k]):
            continue

        def held(j: int) -> float:
            return max(ask[i] for i in range(j - args.hold, j + 1))

        ready = pods(min(held(j) for j in range(k - args.delay, k + 1)), per_pod)
        need = pods(values[k], per_pod)
        short += ready < need
        capacity += ready
        needed += need
        judged += 1
    return {"shortShare": short / judged, "podTimeOverOracle": capacity / needed - 1}


def judge(args, path: Path, extra: list[str]) -> dict:
    rows = read_trace(path)
    values = [v for _, v in rows]
    # The judged window ends a horizon early when coverage needs the
    # horizon after its last origin.
    n = len(rows) - (args.horizon if args.coverage else 0)
    per_pod = args.target_per_pod or (p95(values) / 10 if p95(values) > 0 else 1.0)
    extra = [*extra, "--target-per-pod", repr(per_pod), "--horizon", str(args.horizon)]
    if args.coverage:
        extra += ["--quantiles", "0.1,0.5,0.9"]
    if args.stride > 1:
        ends = range(n - args.steps * args.stride, n, args.stride)
    else:
        # Every decision serving the judged steps, and for coverage room for
        # the horizon after the last origin.
        ends = range(n - args.steps - args.delay - args.hold, n)
    with tempfile.TemporaryDirectory() as workdir, ThreadPoolExecutor(args.jobs) as pool:
        answers = list(
            pool.map(lambda end: (end, forecast(args.binary, rows, end, extra, workdir)), ends)
        )
    result = {
        "trace": path.stem,
        "targetPerPod": per_pod,
        "levels": dict(sorted(Counter(str(a["sizing"].get("level")) for _, a in answers).items())),
    }
    if args.stride == 1:
        result.update(sizing(args, n, values, answers, per_pod))
    if args.coverage:
        held_in = total = 0
        for end, a in answers[-args.steps :]:
            bands = {round(b["level"], 3): b["values"] for b in a["quantiles"]}
            for lead, actual in enumerate(values[end : end + len(bands[0.1])]):
                if math.isnan(actual):
                    continue
                held_in += bands[0.1][lead] <= actual <= bands[0.9][lead]
                total += 1
        result["coverage80"] = held_in / total
        # The point forecast's error against seasonal naive's (the value a
        # day before), on the same pairs: a MASE ratio.
        season = round(86400 / step_seconds(rows))
        model = naive = 0.0
        for end, a in answers[-args.steps :]:
            for lead, point in enumerate(a["values"]):
                at = end + lead
                if at >= len(values) or at < season:
                    continue
                actual, before = values[at], values[at - season]
                if math.isnan(actual) or math.isnan(before):
                    continue
                model += abs(point - actual)
                naive += abs(before - actual)
        result["maseRatio"] = model / naive if naive > 0 else math.nan
    return result


def step_seconds(rows) -> float:
    """The trace's step: the median gap between its first timestamps."""
    from datetime import datetime

    def unix(stamp: str) -> float:
        if stamp.isdigit():
            return float(stamp)
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    stamps = [unix(s) for s, _ in rows[:101]]
    gaps = sorted(b - a for a, b in zip(stamps, stamps[1:]))
    return gaps[len(gaps) // 2]


def main() -> None:
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("traces", nargs="+", type=Path)
    parser.add_argument("--binary", default="target/release/kedastral")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--delay", type=int, default=1, help="pod start-up, in steps")
    parser.add_argument("--hold", type=int, default=1, help="scale-down window, in steps")
    parser.add_argument("--target-per-pod", type=float)
    parser.add_argument("--coverage", action="store_true")
    parser.add_argument("--stride", type=int, default=1, help="steps between origins")
    parser.add_argument("--horizon", type=int, default=30, help="steps forecast")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.stride > 1 and not args.coverage:
        parser.error("--stride judges coverage only: add --coverage")
    results = []
    for path in args.traces:
        r = judge(args, path, extra)
        results.append(r)
        line = f"{r['trace']:<28}"
        if "shortShare" in r:
            line += (f" short {100 * r['shortShare']:5.1f} %   "
                     f"over oracle {100 * r['podTimeOverOracle']:7.1f} %")
        if "coverage80" in r:
            line += f"   80 % band {100 * r['coverage80']:5.1f} %"
            line += f"   MASE ratio {r['maseRatio']:.3f}"
        print(line, flush=True)
    if len(results) > 1 and args.stride == 1:
        worst = max(results, key=lambda r: r["shortShare"])
        dearest = max(results, key=lambda r: r["podTimeOverOracle"])
        mean = lambda key: sum(r[key] for r in results) / len(results)
        print(f"{'mean':<28} short {100 * mean('shortShare'):5.1f} %   "
              f"over oracle {100 * mean('podTimeOverOracle'):7.1f} %")
        print(f"worst: short {100 * worst['shortShare']:.1f} % ({worst['trace']}), "
              f"over {100 * dearest['podTimeOverOracle']:.1f} % ({dearest['trace']})")
    if len(results) > 1:
        if all("maseRatio" in r for r in results):
            ratios = [r["maseRatio"] for r in results]
            geo = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
            loser = max(results, key=lambda r: r["maseRatio"])
            print(f"MASE ratio: geometric mean {geo:.3f}, worst {loser['maseRatio']:.3f} "
                  f"({loser['trace']})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
