#!/usr/bin/env python3
"""Replay auto's calibrated 80 % band over dumped shadow forecasts.

At each shadow origin (every 15 steps) of a trace, as `scripts/tune_auto.py`
does, the combination is weighed from the origins before it. The band is then
placed as host/src/shadow/mod.rs places it: the point plus, per lead, the 0.1
and 0.9 quantiles of the combination's errors over the judged origins of the
last 96 (pooled with the leads within a quarter of it, scaled by the
forecast's size to the power 0, 1/2 or 1 that fits best by quantile loss),
times a width that adaptive conformal inference moves by how many actuals each
earlier band held (0.3 per step the origin stands for). The script mirrors the
rule; it is not the host's code.

Two ways to form the combination at the origins the errors come from:

- dense: every candidate's forecast at every origin, as the forecast served
  has them all;
- sparse (what `kedastral forecast` and `backtest` replay): the costly
  candidates only at their every-few origins (mstl 2, arima 4, fracast 6;
  --every changes them), the weight of the missing ones shared among the
  others. The weights are judged at those origins either way.

The band is always placed around the dense combination, as it is served; with
--sparse its offsets and the adapting width come from the sparse one.
Reported per trace: the band's coverage over all origins with two days of
history, over the origins of the last 1 000 steps, the share of 14-origin
windows (about 200 steps) within 77-83 %, and with --sparse the median weight
missing at an origin.

--fresh replays what `kedastral forecast` does instead: at each origin judged, a
fresh replay of the 96 origins before it, the widths warmed up over them as
Shadow::warm_widths does (offsets refitted every 6 judged origins, each origin
moving the widths as the 15 steps it stands for), the band then placed around
the dense combination; --tail N gives the last N origins of that window every
candidate.

Uses the dumps of `scripts/tune_auto.py` (see there). Needs numpy.

    python3 scripts/replay_bands.py --dumps OUT [--sparse | --fresh [--tail N]] TRACE ...
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

import tune_auto as T

LEVELS = (0.1, 0.9)
KEEP = 96
MIN_ORIGINS = 12
GAMMA = 0.3
WINDOW = 14


def combinations(data: dict, sparse: bool, every: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per origin: the dense combination, the one served from the candidates
    due there, and the weight of those not due."""
    F = np.stack([data["forecasts"][m] for m in T.MODELS])
    A, index = data["actuals"], data["index"]
    due = np.ones(F.shape[:2], bool)
    for c, m in enumerate(T.MODELS):
        if every.get(m, 1) > 1:
            due[c] = (index // T.SPACING) % every[m] == 0
    errors = np.where(due[:, :, None], F - A[None], np.nan)
    leads = np.arange(T.HORIZON)
    dense = np.full(A.shape, np.nan)
    shadow = np.full(A.shape, np.nan)
    missing = np.zeros(len(index))
    served = due | (not sparse)
    for j in range(len(index)):
        window = slice(max(0, j - T.KEEP), j)
        known = ((index[window][:, None] + leads[None]) < index[j]) & ~np.isnan(A[window])
        ages = (index[j] - index[window]) / T.SPACING
        w = T.weigh(errors[:, window], known, ages, T.EVERY, **T.DEFAULTS)
        for target, present in ((dense, ~np.isnan(F[:, j])),
                                (shadow, ~np.isnan(F[:, j]) & served[:, j, None])):
            wp = w * present.T
            wp /= np.maximum(wp.sum(axis=1, keepdims=True), 1e-12)
            target[j] = (wp * np.where(present, F[:, j], 0).T).sum(axis=1)
        missing[j] = (w * ~due[:, j][None]).sum(axis=1).mean() if sparse else 0.0
    return dense, shadow, missing


def scale_of(point: np.ndarray, power: float, floor: float) -> np.ndarray:
    return np.ones_like(point) if power == 0 else np.maximum(np.abs(point), floor) ** power


def offsets(errors: np.ndarray, points: np.ndarray, power: float, floor: float) -> np.ndarray:
    """Per lead, per level: the quantile of the scaled errors, leads pooled."""
    scaled = errors / scale_of(points, power, floor)
    out = np.zeros((T.HORIZON, len(LEVELS)))
    for lead in range(T.HORIZON):
        reach = (lead + 2) // 4
        pooled = scaled[:, max(0, lead - reach):lead + reach + 1]
        pooled = pooled[~np.isnan(pooled)]
        if pooled.size:
            out[lead] = np.quantile(pooled, LEVELS)
    return out


def loss(errors, points, off, power, floor) -> float:
    scale = scale_of(points, power, floor)
    total = 0.0
    for l, q in enumerate(LEVELS):
        miss = (errors - off[None, :, l] * scale).ravel()
        miss = miss[~np.isnan(miss)]
        total += np.where(miss >= 0, q * miss, (q - 1) * miss).sum()
    return total


def adapt(log_width: np.ndarray, actual: np.ndarray, bands: list[np.ndarray], gamma: float) -> None:
    """Moves each level's log width by how many of the actuals its band held,
    as much as the steps a shadow origin stands for."""
    ok = ~np.isnan(actual)
    if not ok.any():
        return
    for l, q in enumerate(LEVELS):
        share = (actual[ok] <= bands[l][ok]).mean()
        side = 1 if q > 0.5 else -1
        log_width[l] = np.clip(log_width[l] + gamma * T.SPACING * side * (q - share), -3, 3)


def replay(data: dict, sparse: bool, every: dict[str, int], gamma: float = GAMMA) -> dict:
    dense, shadow, missing = combinations(data, sparse, every)
    A, index = data["actuals"], data["index"]
    day = round(86_400 / data["step"])
    errors = A - shadow
    log_width = np.zeros(len(LEVELS))
    pending: list[tuple[int, int, list[np.ndarray]]] = []
    held = []
    for j in range(len(index)):
        while pending and pending[0][0] <= index[j]:
            _, k, bands = pending.pop(0)
            adapt(log_width, A[k], bands, gamma)
        judged = [k for k in range(max(0, j - KEEP), j) if index[k] + T.HORIZON <= index[j]]
        if len(judged) < MIN_ORIGINS or index[j] < 2 * day:
            continue
        errs, points = errors[judged], shadow[judged]
        floor = max(0.01 * np.nanmean(np.abs(A[judged])), 1e-300)
        fits = [(p, offsets(errs, points, p, floor)) for p in (0.0, 0.5, 1.0)]
        power, off = min(fits, key=lambda f: loss(errs, points, f[1], f[0], floor))

        def place(point: np.ndarray) -> list[np.ndarray]:
            scale = scale_of(point, power, floor)
            bands = [point + off[:, l] * scale * math.exp(log_width[l]) for l in range(2)]
            bands[1] = np.maximum(bands[0], bands[1])
            return bands

        served = place(dense[j])
        ok = ~np.isnan(A[j])
        inside = (served[0] <= A[j]) & (A[j] <= served[1])
        held.append((inside[ok].sum(), ok.sum(), index[j]))
        # The width learns from the band at the combination the errors are of.
        pending.append((index[j] + T.HORIZON, j, place(shadow[j])))
    h = np.array(held, float)
    tail = h[h[:, 2] >= index[-1] - 1000]
    windows = np.array([h[i:i + WINDOW, 0].sum() / h[i:i + WINDOW, 1].sum()
                        for i in range(len(h) - WINDOW + 1)])
    return dict(coverage=h[:, 0].sum() / h[:, 1].sum(),
                last=tail[:, 0].sum() / tail[:, 1].sum(),
                in_band=((windows >= 0.77) & (windows <= 0.83)).mean(),
                missing=float(np.median(missing)))


def fresh(data: dict, every: dict[str, int], gamma: float, tail: int, eval_every: int) -> dict:
    """As `kedastral forecast` serves: at every `eval_every`-th origin, a
    fresh replay of the window before it (the widths warmed up over its
    shadow origins as Shadow::warm_widths does), the last `tail` of those
    origins with every candidate."""
    dense, shadow, _ = combinations(data, True, every)
    A, index = data["actuals"], data["index"]
    day = round(86_400 / data["step"])
    held = []
    for j in range(KEEP, len(index), eval_every):
        if index[j] < 2 * day:
            continue
        window = list(range(j - KEEP, j))
        points = np.array([dense[k] if k >= j - tail else shadow[k] for k in window])
        actual = A[window].copy()
        # Leads not yet observed at the origin served.
        for n, k in enumerate(window):
            actual[n, index[k] + np.arange(T.HORIZON) >= index[j]] = np.nan
        errors = actual - points
        floor = max(0.01 * np.nanmean(np.abs(actual)), 1e-300)
        fits = [(p, offsets(errors, points, p, floor)) for p in (0.0, 0.5, 1.0)]
        power, final = min(fits, key=lambda f: loss(errors, points, f[1], f[0], floor))
        firsts = index[window]
        log_width = np.zeros(len(LEVELS))
        pending: list[tuple[int, int, list[np.ndarray]]] = []
        fit_at, off = None, None

        for m, first in enumerate(firsts):
            while pending and pending[0][0] <= first:
                _, n, bands = pending.pop(0)
                adapt(log_width, actual[n], bands, gamma)
            judged = sum(1 for f in firsts[:m] if f + T.HORIZON <= first)
            if judged < MIN_ORIGINS:
                continue
            if fit_at is None or judged >= fit_at + 6:
                fit_at, off = judged, offsets(errors[:judged], points[:judged], power, floor)
            if first + T.HORIZON > index[j]:
                continue
            scale = scale_of(points[m], power, floor)
            bands = [points[m] + off[:, l] * scale * math.exp(log_width[l]) for l in range(2)]
            pending.append((first + T.HORIZON, m, bands))
        for _, n, bands in pending:
            adapt(log_width, actual[n], bands, gamma)
        scale = scale_of(dense[j], power, floor)
        served = [dense[j] + final[:, l] * scale * math.exp(log_width[l]) for l in range(2)]
        served[1] = np.maximum(served[0], served[1])
        ok = ~np.isnan(A[j])
        inside = (served[0] <= A[j]) & (A[j] <= served[1])
        held.append((inside[ok].sum(), ok.sum(), index[j]))
    h = np.array(held, float)
    tail_rows = h[h[:, 2] >= index[-1] - 1000]
    w = max(1, WINDOW // eval_every)
    windows = np.array([h[i:i + w, 0].sum() / h[i:i + w, 1].sum() for i in range(len(h) - w + 1)])
    return dict(coverage=h[:, 0].sum() / h[:, 1].sum(),
                last=tail_rows[:, 0].sum() / tail_rows[:, 1].sum(),
                in_band=((windows >= 0.77) & (windows <= 0.83)).mean(), missing=float("nan"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("traces", nargs="+", help="trace names (the dump files' stem)")
    p.add_argument("--dumps", type=Path, required=True)
    p.add_argument("--sparse", action="store_true",
                   help="offsets and widths from the combination of the candidates due")
    p.add_argument("--gamma", type=float, default=GAMMA,
                   help="how fast the width adapts, per step an origin stands for")
    p.add_argument("--every", default="",
                   help="other strides for the costly candidates: MODEL=N,... (1: every origin)")
    p.add_argument("--fresh", action="store_true",
                   help="a fresh replay of the window at each origin judged, as `kedastral forecast`")
    p.add_argument("--tail", type=int, default=0,
                   help="with --fresh, the last origins of the window with every candidate")
    p.add_argument("--eval-every", type=int, default=1, help="with --fresh, judge every n-th origin")
    args = p.parse_args()
    every = dict(T.EVERY)
    for item in filter(None, args.every.split(",")):
        model, n = item.split("=")
        every[model] = int(n)
    results = []
    for t in args.traces:
        data = T.load(args.dumps, t)
        if args.fresh:
            r = fresh(data, every, args.gamma, args.tail, args.eval_every)
        else:
            r = replay(data, args.sparse, every, args.gamma)
        results.append(r)
        print(f"{t:<26} 80 % band {100 * r['coverage']:5.1f} %   last 1 000 steps "
              f"{100 * r['last']:5.1f} %   windows within 77-83 {100 * r['in_band']:3.0f} %   "
              f"weight missing {r['missing']:.2f}", flush=True)
    worst = max(abs(r["coverage"] - 0.8) for r in results)
    print(f"worst distance from 80 %: {100 * worst:.1f} points; windows within 77-83: "
          f"{100 * np.mean([r['in_band'] for r in results]):.0f} % on average")


if __name__ == "__main__":
    main()
