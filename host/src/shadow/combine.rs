//! How `auto` combines its candidates: a weight per candidate and lead
//! bucket, from the errors of its recent shadow forecasts.
//!
//! For each bucket of leads, each candidate's error is measured against a
//! reference candidate's on the same (origin, lead) pairs, recent origins
//! counting more (half the weight every `half_life` origins). Comparing on
//! the same pairs cancels how hard the recent past was to forecast, so a
//! candidate forecast at fewer origins (an expensive one) is judged as
//! fairly as one forecast at every origin. A candidate whose error ratio is
//! `r` times the best one's gets `exp(-eta (r - 1))` of the weight, so the
//! best single candidate is what the combination tends to when it is much
//! better, and a mixture when several are close. The weights are shrunk
//! toward equal weights (among the candidates judged) while the evidence is
//! thin: by `shrink / (n + shrink)` with `n` the recency-weighted count of
//! origins judged. With no evidence at all the reference is served alone.

/// How the weights follow the evidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Combine {
    /// How sharply a lower error wins weight: a candidate with `r` times
    /// the best one's error gets `exp(-eta (r - 1))` of its share.
    pub eta: f64,
    /// Origins after which an error counts half as much.
    pub half_life: f64,
    /// Recency-weighted origins of evidence at which the weights are half
    /// their own and half equal.
    pub shrink: f64,
}

impl Default for Combine {
    /// Chosen on seven of the shared traces (docs/accuracy.md has the split
    /// and the figures on the others); the geometric mean of the MASE ratio
    /// there moved by under 1 % over eta 5 to 40 and half-lives of 4 to 64
    /// origins. A half-life of 16 origins is 4 hours of 1-minute steps at
    /// the default horizon.
    fn default() -> Self {
        Self {
            eta: 20.0,
            half_life: 16.0,
            shrink: 0.5,
        }
    }
}

/// The first lead of each bucket of a horizon: about the first tenth, the
/// next sixth, then the quarters up to half the horizon and the rest. Near
/// leads and far ones favour different models (the last value is hard to
/// beat a step ahead, a seasonal one an hour ahead).
pub fn buckets(horizon: usize) -> Vec<usize> {
    let mut starts = vec![0];
    for fraction in [0.1, 0.25, 0.5] {
        let start = (horizon as f64 * fraction).ceil() as usize;
        if start > *starts.last().expect("non-empty") && start < horizon {
            starts.push(start);
        }
    }
    starts
}

/// One shadow origin as evidence for the weights.
pub struct Evidence<'a> {
    /// Origins between it and the time the weights are for.
    pub age: f64,
    /// Per candidate: its point forecast, if it made one.
    pub points: &'a [Option<Vec<f64>>],
    /// What happened at each lead known by then (NaN: missing); may be
    /// shorter than the forecasts.
    pub actuals: &'a [f64],
}

/// The weights at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// The first lead of each bucket.
    pub starts: Vec<usize>,
    /// Per bucket, per candidate; each bucket's sum is 1.
    pub by_bucket: Vec<Vec<f64>>,
    /// Per candidate: its recency-weighted mean absolute error over its
    /// own pairs, `None` before any.
    pub recent_mae: Vec<Option<f64>>,
}

impl Weights {
    /// Equal weights over the `eligible` candidates.
    pub fn equal(eligible: &[bool], horizon: usize) -> Self {
        let starts = buckets(horizon);
        let count = eligible.iter().filter(|&&e| e).count().max(1) as f64;
        let row: Vec<f64> = eligible
            .iter()
            .map(|&e| if e { 1.0 / count } else { 0.0 })
            .collect();
        Self {
            by_bucket: vec![row; starts.len()],
            starts,
            recent_mae: vec![None; eligible.len()],
        }
    }

    /// The weights at `lead`.
    pub fn at(&self, lead: usize) -> &[f64] {
        let bucket = self.starts.partition_point(|&s| s <= lead) - 1;
        &self.by_bucket[bucket]
    }

    /// Candidate `c`'s weight averaged over the leads of `horizon`.
    pub fn mean(&self, c: usize, horizon: usize) -> f64 {
        if horizon == 0 {
            return 0.0;
        }
        (0..horizon).map(|lead| self.at(lead)[c]).sum::<f64>() / horizon as f64
    }

    /// The largest weight candidate `c` has at any lead.
    pub fn most(&self, c: usize) -> f64 {
        self.by_bucket.iter().map(|w| w[c]).fold(0.0, f64::max)
    }

    /// The weighted mean of the forecasts given, lead by lead, the weights
    /// of the missing ones shared among the others in proportion; `None`
    /// if none is given. A forecast shorter than the longest is missing at
    /// the leads past its end. Forecasts may be longer than the buckets
    /// reach: the last bucket goes on.
    pub fn combine(&self, forecasts: &[Option<&[f64]>]) -> Option<Vec<f64>> {
        let len = forecasts.iter().flatten().map(|f| f.len()).max()?;
        Some(
            (0..len)
                .map(|lead| {
                    let weights = self.at(lead);
                    let (mut sum, mut total, mut plain, mut count) = (0.0, 0.0, 0.0, 0.0);
                    for (forecast, &w) in forecasts.iter().zip(weights) {
                        if let Some(f) = forecast.filter(|f| lead < f.len()) {
                            sum += w * f[lead];
                            total += w;
                            plain += f[lead];
                            count += 1.0;
                        }
                    }
                    // Only candidates with no weight answered: their mean.
                    if total > 0.0 {
                        sum / total
                    } else {
                        plain / count
                    }
                })
                .collect(),
        )
    }
}

/// Per bucket, per candidate: recency-weighted sums of its absolute errors
/// and the reference's over the pairs both forecast.
struct Sums {
    own: Vec<Vec<f64>>,
    reference: Vec<Vec<f64>>,
    /// Pairs each sum is over.
    pairs: Vec<Vec<usize>>,
    /// Per bucket: the recency-weighted count of origins judged in it.
    origins: Vec<f64>,
    /// Per candidate over all its pairs: (weighted error, weight).
    recent: Vec<(f64, f64)>,
}

/// The weights `evidence` gives the candidates marked `eligible`, their
/// errors measured against `reference`'s.
pub fn weigh<'a>(
    config: &Combine,
    horizon: usize,
    eligible: &[bool],
    reference: usize,
    evidence: impl IntoIterator<Item = Evidence<'a>>,
) -> Weights {
    let starts = buckets(horizon);
    let n = eligible.len();
    let mut sums = Sums {
        own: vec![vec![0.0; n]; starts.len()],
        reference: vec![vec![0.0; n]; starts.len()],
        pairs: vec![vec![0; n]; starts.len()],
        origins: vec![0.0; starts.len()],
        recent: vec![(0.0, 0.0); n],
    };
    let mut seen = vec![false; starts.len()];
    for e in evidence {
        let recency = 0.5f64.powf(e.age / config.half_life);
        let base = e.points.get(reference).and_then(Option::as_ref);
        seen.fill(false);
        for (lead, &actual) in e.actuals.iter().enumerate().take(horizon) {
            if actual.is_nan() {
                continue;
            }
            let bucket = starts.partition_point(|&s| s <= lead) - 1;
            let base_error = base.map(|b| (b[lead] - actual).abs());
            for (c, point) in e.points.iter().enumerate() {
                let Some(point) = point.as_ref().filter(|_| eligible[c]) else {
                    continue;
                };
                let error = (point[lead] - actual).abs();
                sums.recent[c].0 += recency * error;
                sums.recent[c].1 += recency;
                if let Some(base_error) = base_error {
                    sums.own[bucket][c] += recency * error;
                    sums.reference[bucket][c] += recency * base_error;
                    sums.pairs[bucket][c] += 1;
                }
            }
            if base_error.is_some() && !seen[bucket] {
                seen[bucket] = true;
                sums.origins[bucket] += recency;
            }
        }
    }
    let by_bucket = (0..starts.len())
        .map(|b| {
            // Each candidate's error as a multiple of the reference's on the
            // same pairs; `None` without any.
            let ratios: Vec<Option<f64>> = (0..n)
                .map(|c| {
                    let (own, base) = (sums.own[b][c], sums.reference[b][c]);
                    if !eligible[c] || sums.pairs[b][c] == 0 {
                        return None;
                    }
                    Some(if base > 0.0 {
                        own / base
                    } else if own == 0.0 {
                        // The reference made no error on them: as good...
                        0.0
                    } else {
                        // ...or worse by any error at all.
                        f64::INFINITY
                    })
                })
                .collect();
            let best = ratios
                .iter()
                .flatten()
                .copied()
                .fold(f64::INFINITY, f64::min);
            let mut own: Vec<f64> = ratios
                .iter()
                .map(|r| match *r {
                    Some(r) if best <= 0.0 => f64::from(u8::from(r <= 0.0)),
                    Some(r) if r.is_finite() => (-config.eta * (r / best - 1.0)).exp(),
                    _ => 0.0,
                })
                .collect();
            let total: f64 = own.iter().sum();
            if total <= 0.0 {
                // Nothing judged yet: the reference alone, the candidate
                // preferred (and the cheapest to call) until there is
                // evidence to weigh.
                return (0..n)
                    .map(|c| f64::from(u8::from(c == reference)))
                    .collect();
            }
            own.iter_mut().for_each(|w| *w /= total);
            let evidence = sums.origins[b];
            let trust = evidence / (evidence + config.shrink.max(f64::MIN_POSITIVE));
            // Shrunk toward equal weights among the candidates judged: one
            // not yet judged (a costly one before its first shadow origin
            // is observed) waits for evidence rather than being called on
            // none.
            let judged = ratios.iter().filter(|r| r.is_some()).count() as f64;
            own.iter()
                .zip(&ratios)
                .map(|(&w, r)| {
                    if r.is_some() {
                        trust * w + (1.0 - trust) / judged
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    Weights {
        starts,
        by_bucket,
        recent_mae: sums
            .recent
            .iter()
            .map(|&(error, weight)| (weight > 0.0).then(|| error / weight))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_split_the_horizon_from_near_to_far() {
        assert_eq!(buckets(30), [0, 3, 8, 15]);
        assert_eq!(buckets(44), [0, 5, 11, 22]);
        assert_eq!(buckets(4), [0, 1, 2]);
        assert_eq!(buckets(1), [0]);
    }

    /// An origin's age, the candidates' points and the actuals.
    type Origin = (f64, Vec<Option<Vec<f64>>>, Vec<f64>);

    /// Origins where candidate 0 is off by 1 and candidate 1 by `other`,
    /// at every lead of a horizon of 10.
    fn origins(count: usize, other: f64) -> Vec<Origin> {
        (0..count)
            .map(|k| {
                let points = vec![Some(vec![11.0; 10]), Some(vec![10.0 + other; 10])];
                (k as f64, points, vec![10.0; 10])
            })
            .collect()
    }

    fn weights_of(config: &Combine, origins: &[Origin]) -> Weights {
        weigh(
            config,
            10,
            &[true, true],
            0,
            origins.iter().map(|(age, points, actuals)| Evidence {
                age: *age,
                points,
                actuals,
            }),
        )
    }

    #[test]
    fn the_lower_error_takes_the_weight_and_equal_errors_share_it() {
        let config = Combine::default();
        let w = weights_of(&config, &origins(40, 2.0));
        // Twice the error: exp(-20) of the share, then the shrink's part.
        assert!(w.at(0)[0] > 0.9 && w.at(9)[0] > 0.9, "{w:?}");
        let w = weights_of(&config, &origins(40, 1.0));
        assert!((w.at(5)[0] - 0.5).abs() < 1e-12, "{w:?}");
        assert_eq!(w.recent_mae, [Some(1.0), Some(1.0)]);
    }

    #[test]
    fn thin_evidence_stays_near_equal_weights() {
        let config = Combine::default();
        // None at all: the reference alone.
        let none = weights_of(&config, &[]);
        assert_eq!(none.at(0), [1.0, 0.0]);
        // One old origin: a recency weight of 1/16 against a shrink of 1/2.
        let mut one = origins(1, 2.0);
        one[0].0 = 64.0;
        let w = weights_of(&config, &one);
        assert!(w.at(0)[0] < 0.6, "{w:?}");
    }

    #[test]
    fn a_candidate_that_breaks_down_loses_its_weight_within_a_few_origins() {
        let config = Combine::default();
        // Candidate 1 was the better for 100 origins; over the newest four
        // its error is ten times candidate 0's.
        let mut history: Vec<_> = origins(104, 0.5);
        for (age, points, _) in history.iter_mut() {
            if *age < 4.0 {
                points[1] = Some(vec![20.0; 10]);
            }
        }
        let w = weights_of(&config, &history);
        assert!(w.at(0)[1] < 0.1, "{w:?}");
    }

    #[test]
    fn a_candidate_forecast_at_fewer_origins_is_judged_on_the_pairs_it_has() {
        let config = Combine::default();
        // Candidate 1 forecasts every fourth origin, at half candidate 0's
        // error, while the difficulty of the origins varies tenfold.
        let history: Vec<_> = (0..48)
            .map(|k| {
                let hard = if k % 8 < 4 { 10.0 } else { 1.0 };
                let other = (k % 4 == 0).then(|| vec![10.0 + hard / 2.0; 10]);
                (
                    k as f64,
                    vec![Some(vec![10.0 + hard; 10]), other],
                    vec![10.0; 10],
                )
            })
            .collect();
        let w = weights_of(&config, &history);
        assert!(w.at(0)[1] > 0.9, "{w:?}");
    }

    #[test]
    fn the_combination_shares_a_missing_candidates_weight() {
        let w = Weights {
            starts: vec![0, 2],
            by_bucket: vec![vec![0.75, 0.25], vec![0.0, 1.0]],
            recent_mae: vec![None, None],
        };
        let (a, b) = ([0.0, 0.0, 0.0], [4.0, 4.0, 4.0]);
        assert_eq!(
            w.combine(&[Some(&a[..]), Some(&b[..])]).unwrap(),
            [1.0, 1.0, 4.0]
        );
        assert_eq!(w.combine(&[Some(&a[..]), None]).unwrap(), [0.0, 0.0, 0.0]);
        assert_eq!(w.combine(&[None, None]), None);
    }

    #[test]
    fn a_shorter_forecast_leaves_its_weight_to_the_others_past_its_end() {
        let w = Weights {
            starts: vec![0, 2],
            by_bucket: vec![vec![0.75, 0.25], vec![0.5, 0.5]],
            recent_mae: vec![None, None],
        };
        let (a, b) = ([0.0, 0.0, 0.0, 0.0], [4.0, 4.0, 4.0, 4.0]);
        assert_eq!(
            w.combine(&[Some(&a[..]), Some(&b[..])]).unwrap(),
            [1.0, 1.0, 2.0, 2.0]
        );
        assert_eq!(
            w.combine(&[Some(&a[..3]), Some(&b[..])]).unwrap(),
            [1.0, 1.0, 2.0, 4.0]
        );
        assert_eq!(
            w.combine(&[Some(&a[..]), Some(&b[..1])]).unwrap(),
            [1.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn a_candidate_not_yet_judged_waits_for_evidence() {
        let config = Combine::default();
        let mut history = origins(4, 1.0);
        for (_, points, _) in history.iter_mut() {
            points.push(None);
        }
        let w = weigh(
            &config,
            10,
            &[true, true, true],
            0,
            history.iter().map(|(age, points, actuals)| Evidence {
                age: *age,
                points,
                actuals,
            }),
        );
        assert_eq!(w.at(0)[2], 0.0);
        assert!((w.at(0)[0] - 0.5).abs() < 1e-12, "{w:?}");
    }

    #[test]
    fn ineligible_candidates_get_no_weight() {
        let w = Weights::equal(&[true, false, true], 30);
        assert_eq!(w.at(29), [0.5, 0.0, 0.5]);
    }
}
