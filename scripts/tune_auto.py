#!/usr/bin/env python3
"""Replay auto's weighting over dumped shadow forecasts, to choose its settings.

auto's weights (host/src/shadow/combine.rs) depend only on the candidates'
point forecasts at the shadow origins and on what happened next, so the
forecasts can be made once per trace and the weighting replayed for any
setting in seconds. This script mirrors the Rust rule: per bucket of leads,
each candidate's recency-weighted absolute errors over those of `baseline`
(the reference) on the same pairs, a share of exp(-eta (r / r_min - 1)),
shrunk toward equal weights by the recency-weighted count of origins judged,
each origin combined with the weights known at its time. The costlier
candidates forecast at every few origins only, as in the host; a window of
96 origins.

Make the forecasts first (a release build; fracast takes minutes per trace):

    for f in DIR/*.csv; do t=$(basename $f .csv)
      for m in values baseline arima mstl fracast seasonal-naive; do
        cargo run -q --release --example shadow_forecasts -- $f OUT/$t.$m $m
      done
    done

then score settings on the traces named (MASE ratio to seasonal naive: the
combination's mean absolute error over the seasonal-naive candidate's, on the
pairs of every origin with two days of history):

    python3 scripts/tune_auto.py --dumps OUT --grid TRACE [TRACE ...]

Without --grid, scores the host's defaults. --layered scores a two-level
rule the host does not have: combinations at half-lives of 4, 16 and 64
origins and the candidates themselves, weighed by the same rule on their
errors over the whole window (no decay). Its combinations are made from
every candidate at every origin, which the host's shadow origins do not
have (the costly candidates forecast at every few of them). A variant of
score_layered, not kept here, judged them as the host would, from the
candidates due at each origin: a second level over the one half-life of 16
scored 0.4985 on the tuning set and 0.577
on the report set (EC2 NetworkIn 0.925), against 0.4996 and 0.545 without
it, so the host has one level. Needs numpy.
"""

from __future__ import annotations

import argparse
import itertools
import math
from pathlib import Path

import numpy as np

MODELS = ["baseline", "arima", "mstl", "fracast", "seasonal-naive"]
EVERY = {"mstl": 2, "arima": 4, "fracast": 6}
KEEP = 96
SPACING = 15
HORIZON = 30
DEFAULTS = dict(eta=20.0, half_life=16.0, shrink=0.5)


def buckets(horizon: int) -> list[tuple[int, int]]:
    starts = [0]
    for fraction in (0.1, 0.25, 0.5):
        start = math.ceil(horizon * fraction)
        if starts[-1] < start < horizon:
            starts.append(start)
    return list(zip(starts, starts[1:] + [horizon]))


def load(dumps: Path, trace: str) -> dict:
    lines = (dumps / f"{trace}.values").read_text().split()
    _, step = map(int, lines[0].split(","))
    y = np.array([float(v) for v in lines[1:]])
    forecasts, index = {}, None
    for m in MODELS:
        rows = {}
        for line in (dumps / f"{trace}.{m}").read_text().splitlines():
            first, rest = line.split(",", 1)
            if rest.startswith("ERR"):
                rows[int(first)] = np.full(HORIZON, np.nan)
            else:
                values = np.array(rest.split(","), float)
                # The host raises small negatives to zero for a history never negative.
                rows[int(first)] = np.maximum(values, 0) if np.nanmin(y) >= 0 else values
        if index is None:
            index = np.array(sorted(rows))
        forecasts[m] = np.array([rows[i] for i in index])
    actuals = np.full((len(index), HORIZON), np.nan)
    for j, i in enumerate(index):
        seg = y[i:i + HORIZON]
        actuals[j, :len(seg)] = seg
    return dict(step=step, index=index, forecasts=forecasts, actuals=actuals)


def weigh(errors, known, ages, every, eta, half_life, shrink, reference=0):
    """Weights per lead (H x C) from errors (C x K x H) of the origins before."""
    n_candidates = errors.shape[0]
    recency = 0.5 ** (ages / half_life)
    weights = np.zeros((HORIZON, n_candidates))
    for a, b in buckets(HORIZON):
        e, ok = errors[:, :, a:b], known[:, a:b]
        base = np.abs(e[reference])
        ratios = np.full(n_candidates, np.nan)
        for c in range(n_candidates):
            m = ok & ~np.isnan(e[c]) & ~np.isnan(base)
            mw = m * recency[:, None]
            den = (np.where(m, base, 0) * mw).sum()
            if den > 0:
                ratios[c] = (np.where(m, np.abs(e[c]), 0) * mw).sum() / den
        if np.isnan(ratios).all():
            weights[a:b, reference] = 1.0
            continue
        best = np.nanmin(ratios)
        share = np.where(np.isnan(ratios), 0.0, np.exp(-eta * (ratios / best - 1)))
        share /= share.sum()
        judged = ok & ~np.isnan(base)
        evidence = (recency * judged.any(axis=1)).sum()
        trust = evidence / (evidence + shrink)
        weights[a:b] = trust * share + (1 - trust) / n_candidates
    return weights


def prepare(data: dict):
    """The forecasts (C x K x H), actuals, origins, errors, and the errors at
    the origins each candidate forecasts at (NaN elsewhere)."""
    F = np.stack([data["forecasts"][m] for m in MODELS])
    A, index = data["actuals"], data["index"]
    errors = F - A[None]
    sparse = errors.copy()
    for c, m in enumerate(MODELS):
        every = EVERY.get(m, 1)
        if every > 1:
            sparse[c, (index // SPACING) % every != 0] = np.nan
    return F, A, index, errors, sparse


def window_of(index, A, j):
    """The origins before origin j that weigh it, their observed pairs and ages."""
    window = slice(max(0, j - KEEP), j)
    leads = np.arange(HORIZON)
    known = ((index[window][:, None] + leads[None]) < index[j]) & ~np.isnan(A[window])
    return window, known, (index[j] - index[window]) / SPACING


def mix(w, f):
    """The forecasts f (C x H) combined with weights w (H x C), a missing
    one's weight shared among the others."""
    present = ~np.isnan(f)
    wp = w * present.T
    wp /= np.maximum(wp.sum(axis=1, keepdims=True), 1e-12)
    return (wp * np.where(present, f, 0).T).sum(axis=1)


def ratios_to_naive(data: dict, F, errors, combined_at) -> tuple[float, np.ndarray]:
    """The combination's and each candidate's MAE ratio to seasonal naive,
    over the pairs every candidate forecast at origins with two days of
    history; combined_at(j) is the combination at origin j."""
    A, index = data["actuals"], data["index"]
    day = round(86_400 / data["step"])
    totals = np.zeros(len(MODELS) + 1)
    for j in range(len(index)):
        if index[j] < 2 * day:
            continue
        combined = combined_at(j)
        a = A[j]
        m = ~np.isnan(a) & ~np.isnan(F[:, j]).any(axis=0)
        totals[:-1] += np.abs(errors[:, j][:, m]).sum(axis=1)
        totals[-1] += np.abs(combined[m] - a[m]).sum()
    naive = totals[MODELS.index("seasonal-naive")]
    return totals[-1] / naive, totals[:-1] / naive


def score(data: dict, eta: float, half_life: float, shrink: float) -> tuple[float, np.ndarray]:
    """The combination's and each candidate's MAE ratio to seasonal naive."""
    F, A, index, errors, sparse = prepare(data)

    def combined_at(j):
        window, known, ages = window_of(index, A, j)
        w = weigh(sparse[:, window], known, ages, EVERY, eta, half_life, shrink)
        return mix(w, F[:, j])

    return ratios_to_naive(data, F, errors, combined_at)


def score_layered(data: dict, half_lives=(4.0, 16.0, 64.0), eta: float = 20.0,
                  shrink: float = 0.5) -> tuple[float, np.ndarray]:
    """score() for the two-level rule of --layered."""
    F, A, index, errors, sparse = prepare(data)
    # First level: each half-life's combination at every origin.
    combos = np.full((len(half_lives), len(index), HORIZON), np.nan)
    for j in range(len(index)):
        window, known, ages = window_of(index, A, j)
        for k, half_life in enumerate(half_lives):
            w = weigh(sparse[:, window], known, ages, EVERY, eta, half_life, shrink)
            combos[k, j] = mix(w, F[:, j])
    # Second level: the combinations (every origin) and the candidates (at
    # their own origins), the first combination as the reference.
    experts = np.concatenate([combos, F])
    expert_errors = np.concatenate([combos - A[None], sparse])

    def combined_at(j):
        window, known, ages = window_of(index, A, j)
        w = weigh(expert_errors[:, window], known, ages, EVERY, eta, math.inf, shrink)
        return mix(w, experts[:, j])

    return ratios_to_naive(data, F, errors, combined_at)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("traces", nargs="+", help="trace names (the dump files' stem)")
    p.add_argument("--dumps", type=Path, required=True)
    p.add_argument("--grid", action="store_true", help="sweep eta, half-life and shrink")
    p.add_argument("--layered", action="store_true", help="score the two-level rule instead")
    args = p.parse_args()
    data = {t: load(args.dumps, t) for t in args.traces}
    settings = [DEFAULTS]
    if args.grid:
        settings = [dict(eta=e, half_life=h, shrink=s) for e, h, s in
                    itertools.product([5, 10, 20, 40], [4, 8, 16, 32, 64], [0.25, 0.5, 1, 4])]
    for setting in settings:
        ratios, best = [], []
        for t in args.traces:
            combined, singles = score_layered(data[t]) if args.layered else score(data[t], **setting)
            ratios.append(combined)
            best.append(combined / singles.min())
            if not args.grid:
                print(f"{t}: combination {combined:.3f}; "
                      + ", ".join(f"{m} {r:.3f}" for m, r in zip(MODELS, singles)))
        geo = math.exp(np.mean(np.log(ratios)))
        label = "layered (half-lives 4, 16, 64)" if args.layered else setting
        print(f"{label}: geometric mean {geo:.4f}, worst {max(ratios):.3f}, "
              f"worst against the trace's best candidate {max(best):.3f}", flush=True)


if __name__ == "__main__":
    main()
