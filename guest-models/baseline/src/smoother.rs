//! The one pass over the history: a robust, clock-keyed Holt-Winters
//! smoother that also replays its own forecasts to collect honest errors.
//!
//! State: a daily profile and (optionally) a weekly correction profile on top
//! of it, and three level models that compete on the same points: the level
//! of the seasonally adjusted series, the same with a damped trend, and a
//! plain level that ignores the profiles (for a cycle that stopped, or never
//! was). Each observed point is first predicted from the state before it, the
//! error is clipped at `clip` times a running error scale (so a spike moves
//! nothing much, while a lasting shift grows the scale until it is let
//! through), and the clipped error updates the state; the profiles learn from
//! the first model's errors. Missing points only advance the clock.
//!
//! Replay: a forecast made at origin `o` for `o + h` is `level_o +
//! damped(h) * trend_o + season(o + h)`. For `h` shorter than a day, the
//! profile buckets `o + h` reads have not been touched between `o` and
//! `o + h`, so the profile as it stands when the pass reaches `o + h` is the
//! one the origin would have used. Keeping the last few (level, trend) pairs in
//! a ring is therefore enough to score every origin's forecast at every lead,
//! out of sample, inside the same O(n) pass. The model with the smallest
//! replayed absolute error makes the forecast, and its errors the bands.
//! The three recursions are independent chains of arithmetic, so on a modern
//! CPU the second and third cost little beside the first.

use crate::clock::{DAY, Profile, Slot, advance};
use kedastral_model_sdk::stats::larger;

/// Fixed settings of one pass.
#[derive(Debug, Clone)]
pub struct Settings {
    pub alpha: f64,
    pub beta: f64,
    pub phi: f64,
    /// Buckets of the daily profile, or `None` for no daily seasonality.
    pub day_buckets: Option<usize>,
    /// Buckets of the weekly correction, or `None` for none.
    pub week_buckets: Option<usize>,
    pub day_gain: f64,
    /// Errors beyond `clip` times the running scale (median absolute
    /// error) are clipped.
    pub clip: f64,
    /// How fast the running error scale moves.
    pub scale_gain: f64,
    /// This many errors in a row beyond the clip, all on one side, are a
    /// change of level: the level jumps to the data (0: never), and follows
    /// it while the points after are beyond the clip too.
    pub shift_points: usize,
    /// Leads at which to collect replayed errors (ascending, from 1).
    pub leads: Vec<usize>,
    /// Replay the last this many points.
    pub replay_points: usize,
    /// Score about this many targets (evenly spaced) in the replay window.
    pub replay_samples: usize,
}

/// What the pass leaves: the chosen model's state and replay errors.
#[derive(Debug, Clone)]
pub struct Fit {
    pub level: f64,
    pub trend: f64,
    pub phi: f64,
    /// Whether the chosen level model adds the profiles.
    pub seasonal: bool,
    pub day: Option<Profile>,
    pub week: Option<Profile>,
    /// Running error scale: the median absolute one-step error.
    pub scale: f64,
    /// `errors[j]` are actual minus forecast at lead `leads[j]`.
    pub errors: Vec<Vec<f64>>,
    pub leads: Vec<usize>,
}

impl Fit {
    /// The forecast `h` steps after the last point, at unix time `t`.
    pub fn predict(&self, h: usize, t: i64) -> f64 {
        let mut v = self.level + damped_sum(self.phi, h) * self.trend;
        if self.seasonal {
            for p in [&self.day, &self.week].into_iter().flatten() {
                v += p.at(p.slot(p.phase_of(t)));
            }
        }
        v
    }
}

/// The competing level models: the profiles' weight and the trend gain.
/// The first is the one the profiles learn from.
const MODELS: usize = 3;
fn models(alpha: f64, beta: f64) -> [(f64, f64, f64); MODELS] {
    [(1.0, alpha, 0.0), (1.0, alpha, beta), (0.0, alpha, 0.0)]
}

/// `phi + phi^2 + ... + phi^h`: how much trend `h` steps accumulate.
pub fn damped_sum(phi: f64, h: usize) -> f64 {
    if (phi - 1.0).abs() < 1e-12 {
        h as f64
    } else {
        phi * (1.0 - phi.powi(h as i32)) / (1.0 - phi)
    }
}

/// Runs the pass over `values` (NaN = missing; at least one observed), the
/// first of which was observed at unix time `start`, one every `step` seconds.
pub fn fit(values: &[f64], start: i64, step: i64, s: &Settings) -> Fit {
    let n = values.len();
    let first = values
        .iter()
        .position(|v| !v.is_nan())
        .expect("fit needs one observed point");
    let time_of = |i: usize| start + i as i64 * step;

    let mut day = s.day_buckets.map(|b| Profile::new(DAY, b, s.day_gain));
    let week = s
        .week_buckets
        .map(|b| weekly_correction(values, start, step, b));

    // Warm-up. With a daily profile, the first day seeds it around that day's
    // median; otherwise the level starts at the first observation. Starting the
    // recursion cold would let the level chase the first day's cycle instead.
    let (level, scale, begin) = match day.as_mut() {
        Some(p) => {
            let end = (first + (DAY / step).max(1) as usize).min(n);
            let window = &values[first..end];
            // Robust: the median, and deviations clipped at `clip` median
            // absolute deviations, so a spike on the first day is not learnt
            // as part of every day.
            let mut buf: Vec<f64> = window.iter().copied().filter(|v| !v.is_nan()).collect();
            let mid = median(&mut buf);
            let mut diffs: Vec<f64> = window
                .windows(2)
                .map(|w| (w[1] - w[0]).abs())
                .filter(|d| !d.is_nan())
                .collect();
            for v in buf.iter_mut() {
                *v = (*v - mid).abs();
            }
            let limit = s.clip * median(&mut buf);
            for (i, &y) in window.iter().enumerate() {
                if !y.is_nan() {
                    let slot = p.slot(p.phase_of(time_of(first + i)));
                    let dev = if limit > 0.0 {
                        (y - mid).clamp(-limit, limit)
                    } else {
                        y - mid
                    };
                    p.learn(slot, dev - p.at(slot));
                }
            }
            p.fill_gaps();
            // The typical change from one point to the next stands in for the
            // one-step error until the pass has its own.
            let scale = if diffs.is_empty() {
                0.0
            } else {
                median(&mut diffs)
            };
            (mid, scale, end)
        }
        None => {
            // The scale of the first few changes stands in for the error scale.
            let mut prev = values[first];
            let mut diffs: Vec<f64> = values[first + 1..]
                .iter()
                .filter(|v| !v.is_nan())
                .take(16)
                .map(|&y| {
                    let d = (y - prev).abs();
                    prev = y;
                    d
                })
                .collect();
            (values[first], median(&mut diffs), first + 1)
        }
    };

    // A scale of zero (a flat start) would clip every later error to zero
    // forever; a floor relative to the series' size lets changes through.
    let mean_abs = mean_abs(values);
    let scale_floor = (1e-3 * mean_abs).max(1e-9);

    let replay_from = n.saturating_sub(s.replay_points).max(begin);
    let mut state = State {
        level: [level; MODELS],
        trend: [0.0; MODELS],
        scale: [scale; MODELS],
        scale_floor,
        errors: Vec::new(),
        abs_error: [0.0; MODELS],
    };
    // Off profiles stay as one idle bucket; the const flags keep them out of
    // the loop, so the loop carries no per-point `Option` juggling.
    let mut day = day.unwrap_or_else(|| Profile::new(DAY, 1, 0.0));
    let week = week.unwrap_or_else(|| Profile::new(crate::clock::WEEK, 1, 0.0));
    let run = match (s.day_buckets.is_some(), s.week_buckets.is_some()) {
        (true, true) => pass::<true, true>,
        (true, false) => pass::<true, false>,
        (false, true) => pass::<false, true>,
        (false, false) => pass::<false, false>,
    };
    run(
        &mut state,
        &mut day,
        &week,
        values,
        Span {
            begin,
            replay_from,
            t0: time_of(begin.min(n)),
            step,
        },
        s,
    );

    // Ties (no replay at all, or no profiles, where the first and the last
    // model are the same) go to the earlier model.
    let mut best = 0;
    for m in 1..MODELS {
        if state.abs_error[m] < state.abs_error[best] {
            best = m;
        }
    }
    let (weight, _, _) = models(s.alpha, s.beta)[best];
    let leads = s.leads.len();
    let errors = state
        .errors
        .drain(best * leads..(best + 1) * leads)
        .collect();
    Fit {
        level: state.level[best],
        trend: state.trend[best],
        phi: s.phi,
        seasonal: weight > 0.0,
        day: s.day_buckets.map(|_| day),
        week: s.week_buckets.map(|_| week),
        scale: state.scale[best],
        errors,
        leads: s.leads.clone(),
    }
}

struct State {
    level: [f64; MODELS],
    trend: [f64; MODELS],
    scale: [f64; MODELS],
    scale_floor: f64,
    /// `errors[m * leads + j]`: model `m`'s replayed errors at lead `j`.
    errors: Vec<Vec<f64>>,
    abs_error: [f64; MODELS],
}

#[derive(Clone, Copy)]
struct Span {
    /// First point the recursion sees; the state before it is the warm-up's.
    begin: usize,
    /// First point whose replayed errors are kept.
    replay_from: usize,
    /// Unix time of `begin`.
    t0: i64,
    step: i64,
}

/// The recursion from `span.begin` to the end, scoring replayed forecasts.
fn pass<const DAILY: bool, const WEEKLY: bool>(
    st: &mut State,
    day: &mut Profile,
    week: &Profile,
    values: &[f64],
    span: Span,
    s: &Settings,
) {
    let n = values.len();
    let Span {
        begin,
        replay_from,
        t0,
        step,
    } = span;
    let (phi, clip) = (s.phi, s.clip);
    let (scale_up, scale_down) = (1.0 + s.scale_gain, 1.0 - s.scale_gain);
    let models = models(s.alpha, s.beta);
    let (mut level, mut trend, mut scale) = (st.level, st.trend, st.scale);
    // Clipped errors in a row on one side: + above, - below.
    let mut streak = [0i32; MODELS];
    let shift_points = i32::try_from(s.shift_points).unwrap_or(i32::MAX);
    // Since the last jump, every point beyond the clip: the level follows
    // the data until a point falls within it.
    let mut following = [false; MODELS];
    let mut abs_error = st.abs_error;
    let scale_floor = st.scale_floor;

    let leads = s.leads.len();
    let max_lead = s.leads.last().copied().unwrap_or(0);
    let ring_len = max_lead + 1;
    let mut ring = vec![(level, trend); ring_len];
    let origin_min = begin - 1; // the warm-up state is a valid origin
    let stride = (n - replay_from).div_ceil(s.replay_samples.max(1)).max(1);
    let damped: Vec<f64> = s.leads.iter().map(|&h| damped_sum(phi, h)).collect();
    let mut errors: Vec<Vec<f64>> = (0..MODELS * leads)
        .map(|_| Vec::with_capacity((n - replay_from) / stride + 1))
        .collect();

    let mut day_phase = day.phase_of(t0);
    let mut week_phase = week.phase_of(t0);
    // `ring[slot]` is where point `i`'s state goes (`i % ring_len`, without
    // a division per point); `countdown` hits 0 on the scored targets, which
    // are spaced `stride` apart and end on the last point.
    let mut slot = begin % ring_len;
    let mut countdown = (n - replay_from).saturating_sub(1) % stride;
    // A profile update waits until the next point has read the profile: the
    // two usually share a bucket, and reading right after writing would chain
    // each point's arithmetic to the last one's through memory.
    let mut pending: Option<(Slot, f64)> = None;
    for (i, &y) in values.iter().enumerate().skip(begin) {
        let ds = if DAILY {
            day.slot(day_phase)
        } else {
            Slot::IDLE
        };
        let ws = if WEEKLY {
            week.slot(week_phase)
        } else {
            Slot::IDLE
        };
        let mut season = 0.0;
        if DAILY {
            season += day.at(ds);
        }
        if WEEKLY {
            season += week.at(ws);
        }
        if let Some((pds, err)) = pending.take() {
            day.learn(pds, err);
        }

        if y.is_nan() {
            for m in 0..MODELS {
                level[m] += phi * trend[m];
                trend[m] *= phi;
            }
        } else {
            if i >= replay_from && countdown == 0 {
                score(
                    &mut errors,
                    &mut abs_error,
                    &ring,
                    &models,
                    Target {
                        y,
                        season,
                        reach: i - origin_min,
                        slot,
                    },
                    &s.leads,
                    &damped,
                );
            }
            let mut first_clipped = 0.0;
            for (m, &(weight, alpha, beta)) in models.iter().enumerate() {
                let predicted = level[m] + phi * trend[m];
                let e = y - weight * season - predicted;
                let floored = larger(scale[m], scale_floor);
                let limit = clip * floored;
                let clipped = e.clamp(-limit, limit);
                // Nudging the scale up or down by a fixed ratio tracks the
                // median absolute error: spikes, even frequent ones, move it
                // no more than any other large error, unlike a mean of
                // (clipped) errors, which a spike every few points inflates
                // without end.
                scale[m] = floored
                    * if e.abs() > floored {
                        scale_up
                    } else {
                        scale_down
                    };
                // Clipping keeps a spike from moving the level; but a run of
                // errors beyond the clip on one side is the level itself
                // moving (a surge that stays, a drop to zero), which the
                // slowly growing scale would take hundreds of points to let
                // through. The level jumps to the data, and the profiles
                // are not taught the jump. It goes on following the data
                // while the points after the jump are beyond the clip too,
                // either way: a burst that breaks up at once (a thousand
                // tweets, then fewer each step) is not held at its peak.
                let side = if e > limit {
                    1
                } else if e < -limit {
                    -1
                } else {
                    0
                };
                streak[m] = if side != 0 && streak[m].signum() == side {
                    streak[m] + side
                } else {
                    side
                };
                let shifted = streak[m].abs() >= shift_points || (following[m] && side != 0);
                if shift_points > 0 && shifted {
                    level[m] = y - weight * season;
                    trend[m] = 0.0;
                    streak[m] = 0;
                    following[m] = true;
                    continue;
                }
                following[m] = false;
                level[m] = predicted + alpha * clipped;
                trend[m] = phi * trend[m] + beta * clipped;
                if m == 0 {
                    first_clipped = clipped;
                }
            }
            if DAILY {
                pending = Some((ds, first_clipped));
            }
        }
        ring[slot] = (level, trend);
        slot = if slot + 1 == ring_len { 0 } else { slot + 1 };
        if i >= replay_from {
            countdown = if countdown == 0 {
                stride - 1
            } else {
                countdown - 1
            };
        }
        if DAILY {
            day_phase = advance(day_phase, step, DAY);
        }
        if WEEKLY {
            week_phase = advance(week_phase, step, crate::clock::WEEK);
        }
    }
    if let Some((pds, err)) = pending {
        day.learn(pds, err);
    }
    st.level = level;
    st.trend = trend;
    st.scale = scale;
    st.errors = errors;
    st.abs_error = abs_error;
}

/// A scored point: its value and season, how many steps it lies after the
/// first valid origin, and its slot in the ring.
#[derive(Clone, Copy)]
struct Target {
    y: f64,
    season: f64,
    reach: usize,
    slot: usize,
}

/// Scores every model's replayed forecasts of one target, one per lead.
///
/// Out of line because it runs on a few hundred points only: inlined, its
/// loops and `push` calls made Cranelift (in wasm) keep the main loop's
/// running state on the stack at every point.
#[inline(never)]
fn score(
    errors: &mut [Vec<f64>],
    abs_error: &mut [f64; MODELS],
    ring: &[([f64; MODELS], [f64; MODELS])],
    models: &[(f64, f64, f64); MODELS],
    target: Target,
    leads: &[usize],
    damped: &[f64],
) {
    let ring_len = ring.len();
    let Target {
        y,
        season,
        reach,
        slot,
    } = target;
    let targets = models.map(|(weight, _, _)| y - weight * season);
    // Leads outside, models inside (unrolled): one ring read per lead, and
    // the three running sums in locals. Each model's sum still adds its
    // errors in lead order, as model-by-model would.
    let mut sums = *abs_error;
    for (j, (&h, &d)) in leads.iter().zip(damped).enumerate() {
        if reach < h {
            break;
        }
        let back = if slot >= h {
            slot - h
        } else {
            slot + ring_len - h
        };
        let (lo, bo) = ring[back];
        for m in 0..MODELS {
            let e = targets[m] - (lo[m] + d * bo[m]);
            sums[m] += e.abs();
            errors[m * leads.len() + j].push(e);
        }
    }
    *abs_error = sums;
}

/// The mean absolute value of the observed (non-NaN) values, summed in
/// order.
///
/// Sixteen values per loop iteration, without branches: in wasm every loop
/// iteration passes wasmtime's epoch check, whose cold call makes Cranelift
/// keep the running sum on the stack, so one value per iteration would
/// store and reload it with every addition.
#[inline(never)]
fn mean_abs(values: &[f64]) -> f64 {
    let (mut sum, mut count) = (0.0, 0usize);
    let mut add = |v: f64| {
        // Adding +0.0 for a gap leaves the (non-negative) sum as it was.
        sum += if v.is_nan() { 0.0 } else { v.abs() };
        count += usize::from(!v.is_nan());
    };
    let (chunks, rest) = values.as_chunks::<16>();
    for chunk in chunks {
        for &v in chunk {
            add(v);
        }
    }
    for &v in rest {
        add(v);
    }
    sum / count as f64
}

/// The median of finite values (reorders them); 0 for none.
fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let values_len = values.len();
    let mid = values_len / 2;
    let (lower, m, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if values_len % 2 == 1 {
        m
    } else {
        let below = lower.iter().copied().fold(f64::NEG_INFINITY, larger);
        0.5 * (below + m)
    }
}

/// The weekly correction: what each hour of the week adds to the daily
/// profile, estimated once over the whole history rather than learnt in the
/// pass. Learnt online, a weekend's drop is absorbed within hours by the level
/// and the daily profile, and the weekly profile only ever sees the lagging
/// remainder. Here each point's deviation from the centred one-week mean
/// around it (a window that holds every weekday once, so it follows drift
/// without blurring the week) is averaged by hour of week, minus the average
/// by hour of day.
fn weekly_correction(values: &[f64], start: i64, step: i64, buckets: usize) -> Profile {
    let n = values.len();
    let mut week = Profile::new(crate::clock::WEEK, buckets, 0.0);
    let mut hour_of_day = Profile::new(DAY, 24, 0.0);
    let half = (crate::clock::WEEK / step / 2).max(1) as usize;
    let (mut sum, mut count) = (0.0, 0usize);
    let add = |v: f64, sign: f64, sum: &mut f64, count: &mut usize| {
        if !v.is_nan() {
            *sum += sign * v;
            *count = if sign > 0.0 { *count + 1 } else { *count - 1 };
        }
    };
    // The window is values[i - half ..= i + half]; points too near either end
    // for a full week around them are skipped.
    for &v in values.iter().take((2 * half + 1).min(n)) {
        add(v, 1.0, &mut sum, &mut count);
    }
    // Phases advance by addition: a remainder per point would cost more than
    // all the rest of this loop.
    let t0 = start + half as i64 * step;
    let (mut week_phase, mut day_phase) = (week.phase_of(t0), hour_of_day.phase_of(t0));
    for i in half..n.saturating_sub(half) {
        if i > half {
            add(values[i - half - 1], -1.0, &mut sum, &mut count);
            add(values[i + half], 1.0, &mut sum, &mut count);
        }
        let y = values[i];
        if !y.is_nan() && count > 0 {
            let r = y - sum / count as f64;
            week.add_sample(week.slot(week_phase), r);
            hour_of_day.add_sample(hour_of_day.slot(day_phase), r);
        }
        week_phase = advance(week_phase, step, crate::clock::WEEK);
        day_phase = advance(day_phase, step, DAY);
    }
    week.finish_means();
    hour_of_day.finish_means();
    week.fill_gaps();
    hour_of_day.fill_gaps();
    let bucket_seconds = crate::clock::WEEK / buckets as i64;
    week.subtract(|b| {
        let t = b as i64 * bucket_seconds;
        hour_of_day.at(hour_of_day.slot(hour_of_day.phase_of(t)))
    });
    week
}
