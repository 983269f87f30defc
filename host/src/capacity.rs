//! Capacity planning: from a forecast to desired replicas per step.
//!
//! For each forecast step, in this order:
//! 1. the load to plan for ([`Sizing`]): for an objective, the band of the
//!    level chosen for it ([`crate::sizing`]), or while there are too few
//!    recent errors to choose, the point forecast times the warm-up
//!    headroom; for a quantile level, that band as it is (the band already
//!    says how much uncertainty to cover, so no headroom is added to it);
//!    for a headroom, the point forecast times it;
//! 2. with a prewarm window of `w` steps, the largest of those loads over this
//!    step and the next `w` (replicas are ready before the load arrives);
//! 3. replicas = `ceil(load / target_per_pod)`, where a load a rounding error
//!    above a whole number of pods (3.0000000000000004) needs that number;
//! 4. at most `up_max_factor` times the previous step's replicas and at least
//!    `100 - down_max_percent` % of them (the first step is judged against the
//!    replicas running now, when known);
//! 5. within `[min, max]`; the bounds win over the step clamps. `max` 0 means
//!    no bound of the user's, and then [`REPLICA_CEILING`] bounds the plan, so
//!    a forecast gone wrong never asks KEDA for billions of pods.

use thiserror::Error;

use crate::sizing::{self, Sizing};

/// The most replicas planned when `max` is 0 (unbounded). Kubernetes is
/// tested to 150 000 pods in a whole cluster and 110 per node; a single
/// workload above ten thousand is beyond what anyone runs by accident, and a
/// workload that needs more says so with an explicit `max`.
pub const REPLICA_CEILING: u32 = 10_000;

/// How a workload turns load into replicas.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityPolicy {
    /// Load one replica serves (e.g. requests per second per pod).
    pub target_per_pod: f64,
    pub sizing: Sizing,
    pub min_replicas: u32,
    /// 0 means no bound of the user's: [`REPLICA_CEILING`].
    pub max_replicas: u32,
    /// Largest growth from one step to the next, as a factor (>= 1).
    pub up_max_factor: f64,
    /// Largest shrink from one step to the next, in percent (0..=100).
    pub down_max_percent: f64,
    /// Steps of look-ahead: each step plans for the largest load in it.
    pub prewarm_steps: usize,
}

impl Default for CapacityPolicy {
    fn default() -> Self {
        Self {
            target_per_pod: 100.0,
            sizing: Sizing::default(),
            min_replicas: 1,
            max_replicas: 0,
            up_max_factor: 2.0,
            down_max_percent: 50.0,
            prewarm_steps: 0,
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum PolicyError {
    #[error("target-per-pod must be a positive number, got {0}")]
    TargetPerPod(f64),
    #[error("headroom must be a number >= 1 (1.2 plans for 20 % more), got {0}")]
    Headroom(f64),
    #[error("quantile level must be strictly between 0 and 1, got {0}")]
    QuantileLevel(f64),
    #[error("target shortfall must be above 0 and below 50 %, got {0}")]
    TargetShortfall(f64),
    #[error("min replicas ({min}) is above max replicas ({max})")]
    MinAboveMax { min: u32, max: u32 },
    #[error("up-max-factor must be a number >= 1, got {0}")]
    UpMaxFactor(f64),
    #[error("down-max-percent must be between 0 and 100, got {0}")]
    DownMaxPercent(f64),
}

impl PolicyError {
    /// The setting at fault, as the config file and the flags name it.
    pub fn setting(&self) -> &'static str {
        match self {
            Self::TargetPerPod(_) => "target-per-pod",
            Self::Headroom(_) => "headroom",
            Self::QuantileLevel(_) => "quantile-level",
            Self::TargetShortfall(_) => "target-shortfall",
            Self::MinAboveMax { .. } => "min",
            Self::UpMaxFactor(_) => "up-max-factor",
            Self::DownMaxPercent(_) => "down-max-percent",
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum PlanError {
    #[error("the forecast has no {0} band to plan on")]
    MissingBand(f64),
    #[error("the {0} band has {1} values for {2} forecast steps")]
    BandLength(f64, usize, usize),
}

impl CapacityPolicy {
    /// Refuses a policy that makes no sense, naming the setting.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let t = self.target_per_pod;
        if !(t.is_finite() && t > 0.0) {
            return Err(PolicyError::TargetPerPod(t));
        }
        match self.sizing {
            Sizing::Headroom(h) if !(h.is_finite() && h >= 1.0) => {
                return Err(PolicyError::Headroom(h));
            }
            Sizing::Quantile(q) if !(q > 0.0 && q < 1.0) => {
                return Err(PolicyError::QuantileLevel(q));
            }
            Sizing::Objective(t) if !(t > 0.0 && t < 0.5) => {
                return Err(PolicyError::TargetShortfall(t));
            }
            _ => {}
        }
        if self.max_replicas != 0 && self.min_replicas > self.max_replicas {
            return Err(PolicyError::MinAboveMax {
                min: self.min_replicas,
                max: self.max_replicas,
            });
        }
        if !(self.up_max_factor.is_finite() && self.up_max_factor >= 1.0) {
            return Err(PolicyError::UpMaxFactor(self.up_max_factor));
        }
        if !(0.0..=100.0).contains(&self.down_max_percent) {
            return Err(PolicyError::DownMaxPercent(self.down_max_percent));
        }
        Ok(())
    }

    pub fn upper_bound(&self) -> u32 {
        if self.max_replicas == 0 {
            REPLICA_CEILING.max(self.min_replicas)
        } else {
            self.max_replicas
        }
    }

    /// The quantile level a workload sizes on, if it is one the user set.
    pub fn quantile_level(&self) -> Option<f64> {
        match self.sizing {
            Sizing::Quantile(q) => Some(q),
            _ => None,
        }
    }

    /// The load each step is sized on. `bands` are the forecast's
    /// `(level, values)` pairs, for a quantile level; `chosen` is the band
    /// of the level chosen for an objective (`None` while warming up).
    pub fn loads(
        &self,
        values: &[f64],
        bands: &[(f64, &[f64])],
        chosen: Option<&[f64]>,
    ) -> Result<Vec<f64>, PlanError> {
        let times = |h: f64| values.iter().map(|v| v * h).collect();
        Ok(match self.sizing {
            Sizing::Quantile(level) => {
                let (_, band) = bands
                    .iter()
                    .find(|(l, _)| (l - level).abs() < 1e-9)
                    .ok_or(PlanError::MissingBand(level))?;
                if band.len() != values.len() {
                    return Err(PlanError::BandLength(level, band.len(), values.len()));
                }
                band.to_vec()
            }
            Sizing::Headroom(h) => times(h),
            Sizing::Objective(_) => match chosen {
                Some(band) if band.len() == values.len() => band.to_vec(),
                Some(band) => return Err(PlanError::BandLength(0.0, band.len(), values.len())),
                None => times(sizing::WARM_UP_HEADROOM),
            },
        })
    }

    /// Desired replicas for each step's load (see [`Self::loads`]).
    /// `current` is the replica count running now, if known. The policy must
    /// have passed [`CapacityPolicy::validate`].
    pub fn plan(&self, loads: &[f64], current: Option<u32>) -> Vec<u32> {
        let loads = running_max_ahead(loads, self.prewarm_steps);
        let (min, max) = (self.min_replicas, self.upper_bound());
        let mut previous = current;
        loads
            .iter()
            .map(|&load| {
                let mut replicas = replicas_for_load(load, self.target_per_pod);
                if let Some(prev) = previous {
                    let up = (f64::from(prev.max(1)) * self.up_max_factor).floor();
                    let down = (f64::from(prev) * (1.0 - self.down_max_percent / 100.0)).ceil();
                    replicas = replicas.clamp(down, up.max(down));
                }
                let replicas = (replicas.min(f64::from(max)) as u32).clamp(min, max);
                previous = Some(replicas);
                replicas
            })
            .collect()
    }
}

impl CapacityPolicy {
    /// Replicas for `load` as it is, within `[min, max]`: what a reactive
    /// autoscaler would run for the load seen now.
    pub fn replicas_now(&self, load: f64) -> u32 {
        let (min, max) = (self.min_replicas, self.upper_bound());
        let replicas = replicas_for_load(load, self.target_per_pod).min(f64::from(max));
        (replicas as u32).clamp(min, max)
    }
}

/// Replicas that serve `load` at `target_per_pod` each, at least 0: a load a
/// rounding error past a whole number of replicas does not need one more.
pub fn replicas_for_load(load: f64, target_per_pod: f64) -> f64 {
    let exact = load.max(0.0) / target_per_pod;
    (exact - 1e-9 * exact.max(1.0)).ceil().max(0.0)
}

/// `out[i] = max(values[i..=i + window])`, in one pass from the end with a
/// monotone queue, so a long window costs no more than a short one.
pub fn running_max_ahead(values: &[f64], window: usize) -> Vec<f64> {
    if window == 0 {
        return values.to_vec();
    }
    let mut out = vec![0.0; values.len()];
    let mut queue: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    for i in (0..values.len()).rev() {
        while queue.back().is_some_and(|&j| values[j] <= values[i]) {
            queue.pop_back();
        }
        queue.push_back(i);
        while queue.front().is_some_and(|&j| j > i + window) {
            queue.pop_front();
        }
        out[i] = values[*queue.front().expect("holds i")];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CapacityPolicy {
        CapacityPolicy {
            target_per_pod: 10.0,
            sizing: Sizing::Headroom(1.0),
            min_replicas: 1,
            max_replicas: 0,
            up_max_factor: 100.0,
            down_max_percent: 100.0,
            prewarm_steps: 0,
        }
    }

    #[test]
    fn an_absurd_load_plans_the_ceiling_without_a_max_and_the_max_with_one() {
        let absurd = [1e300, f64::MAX];
        let p = policy();
        assert_eq!(p.plan(&absurd, None), [REPLICA_CEILING; 2]);
        assert_eq!(p.replicas_now(1e300), REPLICA_CEILING);
        let p = CapacityPolicy {
            max_replicas: 50_000,
            ..policy()
        };
        assert_eq!(p.plan(&absurd, None), [50_000; 2]);
    }

    #[test]
    fn replicas_round_up_but_not_on_rounding_noise() {
        assert_eq!(replicas_for_load(30.000000000000004, 10.0), 3.0);
        assert_eq!(replicas_for_load(0.1 + 0.2, 0.1), 3.0);
        assert_eq!(replicas_for_load(30.01, 10.0), 4.0);
        assert_eq!(replicas_for_load(-5.0, 10.0), 0.0);
    }

    #[test]
    fn headroom_and_bounds() {
        let p = CapacityPolicy {
            sizing: Sizing::Headroom(1.2),
            min_replicas: 2,
            max_replicas: 5,
            ..policy()
        };
        // 0 -> min 2; 25 * 1.2 = 30 -> 3; 100 * 1.2 -> 12 -> max 5.
        let loads = p.loads(&[0.0, 25.0, 100.0], &[], None).unwrap();
        assert_eq!(p.plan(&loads, None), vec![2, 3, 5]);
    }

    #[test]
    fn a_quantile_band_replaces_headroom() {
        let p = CapacityPolicy {
            sizing: Sizing::Quantile(0.9),
            ..policy()
        };
        let p90 = [41.0, 9.0];
        let loads = p.loads(&[10.0, 10.0], &[(0.9, &p90)], None).unwrap();
        assert_eq!(p.plan(&loads, None), vec![5, 1]);
        assert_eq!(
            p.loads(&[10.0, 10.0], &[], None),
            Err(PlanError::MissingBand(0.9))
        );
    }

    #[test]
    fn an_objective_sizes_on_the_chosen_band_or_warms_up_on_headroom() {
        let p = CapacityPolicy {
            sizing: Sizing::Objective(0.02),
            ..policy()
        };
        let chosen = [31.0, 12.0];
        let loads = p.loads(&[10.0, 10.0], &[], Some(&chosen)).unwrap();
        assert_eq!(p.plan(&loads, None), vec![4, 2]);
        // Warming up: the point forecast times 1.2.
        let loads = p.loads(&[10.0, 25.0], &[], None).unwrap();
        assert_eq!(p.plan(&loads, None), vec![2, 3]);
        assert!(p.loads(&[10.0, 10.0], &[], Some(&[1.0])).is_err());
    }

    #[test]
    fn step_clamps_limit_growth_and_shrink() {
        let p = CapacityPolicy {
            up_max_factor: 2.0,
            down_max_percent: 50.0,
            ..policy()
        };
        // From 2 running: 2 -> 4 -> 8 -> 16 while load wants 100; then down by half at most.
        let loads = [1000.0, 1000.0, 1000.0, 1000.0, 0.0, 0.0];
        assert_eq!(p.plan(&loads, Some(2)), vec![4, 8, 16, 32, 16, 8]);
        // Without a known current count the first step is free.
        assert_eq!(p.plan(&[1000.0, 0.0], None), vec![100, 50]);
    }

    #[test]
    fn prewarm_plans_for_the_peak_ahead() {
        let p = CapacityPolicy {
            prewarm_steps: 2,
            ..policy()
        };
        let loads = [10.0, 10.0, 10.0, 50.0, 10.0, 10.0];
        assert_eq!(p.plan(&loads, None), vec![1, 5, 5, 5, 1, 1]);
    }

    #[test]
    fn nonsense_policies_are_refused_by_name() {
        let bad = [
            CapacityPolicy {
                target_per_pod: 0.0,
                ..policy()
            },
            CapacityPolicy {
                sizing: Sizing::Headroom(0.8),
                ..policy()
            },
            CapacityPolicy {
                sizing: Sizing::Quantile(1.0),
                ..policy()
            },
            CapacityPolicy {
                sizing: Sizing::Objective(0.0),
                ..policy()
            },
            CapacityPolicy {
                min_replicas: 5,
                max_replicas: 3,
                ..policy()
            },
            CapacityPolicy {
                up_max_factor: 0.5,
                ..policy()
            },
            CapacityPolicy {
                down_max_percent: 120.0,
                ..policy()
            },
        ];
        for p in bad {
            assert!(p.validate().is_err(), "{p:?}");
        }
        assert_eq!(policy().validate(), Ok(()));
        assert_eq!(
            CapacityPolicy {
                min_replicas: 5,
                max_replicas: 0,
                ..policy()
            }
            .validate(),
            Ok(())
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn policies() -> impl Strategy<Value = CapacityPolicy> {
        (
            0.1f64..1000.0,
            1.0f64..2.0,
            0u32..5,
            prop_oneof![Just(0u32), 5u32..200],
            1.0f64..4.0,
            0.0f64..=100.0,
            0usize..10,
        )
            .prop_map(
                |(target, headroom, min, max, up, down, prewarm)| CapacityPolicy {
                    target_per_pod: target,
                    sizing: Sizing::Headroom(headroom),
                    min_replicas: min,
                    max_replicas: max,
                    up_max_factor: up,
                    down_max_percent: down,
                    prewarm_steps: prewarm,
                },
            )
    }

    proptest! {
        #[test]
        fn plans_stay_within_bounds(
            p in policies(),
            loads in prop::collection::vec(0.0f64..1e6, 1..60),
            current in prop::option::of(0u32..500),
        ) {
            let plan = p.plan(&loads, current);
            prop_assert_eq!(plan.len(), loads.len());
            let max = if p.max_replicas == 0 { REPLICA_CEILING.max(p.min_replicas) } else { p.max_replicas };
            for r in plan {
                prop_assert!(r >= p.min_replicas);
                prop_assert!(r <= max);
            }
        }

        #[test]
        fn plans_are_monotone_in_load(
            p in policies(),
            loads in prop::collection::vec(0.0f64..1e5, 1..60),
            extra in prop::collection::vec(0.0f64..1e4, 60),
            current in prop::option::of(0u32..500),
        ) {
            let more: Vec<f64> = loads.iter().zip(&extra).map(|(l, e)| l + e).collect();
            let low = p.plan(&loads, current);
            let high = p.plan(&more, current);
            for (a, b) in low.iter().zip(&high) {
                prop_assert!(b >= a, "{low:?} vs {high:?}");
            }
        }

        #[test]
        fn step_clamps_hold_inside_the_bounds(
            p in policies(),
            loads in prop::collection::vec(0.0f64..1e6, 2..60),
        ) {
            let plan = p.plan(&loads, None);
            for pair in plan.windows(2) {
                let (prev, next) = (f64::from(pair[0]), f64::from(pair[1]));
                let up = (prev.max(1.0) * p.up_max_factor).floor();
                let down = (prev * (1.0 - p.down_max_percent / 100.0)).ceil();
                // A bound may override a clamp, never the other way round.
                let max = if p.max_replicas == 0 { f64::from(REPLICA_CEILING.max(p.min_replicas)) } else { f64::from(p.max_replicas) };
                let min = f64::from(p.min_replicas);
                prop_assert!(next <= up.max(down).max(min), "{plan:?}");
                prop_assert!(next >= down.min(max), "{plan:?}");
            }
        }

        #[test]
        fn prewarm_never_plans_less(
            p in policies(),
            loads in prop::collection::vec(0.0f64..1e5, 1..60),
        ) {
            let without = CapacityPolicy { prewarm_steps: 0, ..p.clone() };
            let a = without.plan(&loads, None);
            let b = p.plan(&loads, None);
            for (x, y) in a.iter().zip(&b) {
                prop_assert!(y >= x);
            }
        }
    }
}
