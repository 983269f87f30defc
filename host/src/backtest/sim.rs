//! What KEDA and the HPA do with a policy's decisions, step by step: the
//! replicas asked for each step are held through a scale-down stabilisation
//! window (the most asked for over it), and pods asked for become ready
//! `delay` steps later while pods let go stop at once.

use std::collections::VecDeque;

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CapacityOutcome {
    /// Share of steps with fewer ready pods than the actual load needed.
    pub under_provisioned_share: f64,
    /// Ready pods over an oracle that runs exactly the pods each step
    /// needs, as a share of the oracle's pod-time (0.25: a quarter more).
    pub pod_time_over_oracle: f64,
    /// Pods beyond what the actual load needed, summed over steps.
    pub over_provisioned_pod_steps: f64,
    /// The same in pod-minutes.
    pub over_provisioned_pod_minutes: f64,
    /// All ready pods summed over steps.
    pub pod_steps: f64,
    /// Share of the load above what the ready pods could serve.
    pub unserved_load_share: f64,
    /// Times the replica count asked of the HPA changed.
    pub scaling_changes: usize,
    pub scaling_changes_per_day: f64,
}

pub struct HpaSim {
    target: f64,
    delay: usize,
    stabilization: usize,
    step_minutes: f64,
    /// The last `stabilization + 1` recommendations.
    recommended: VecDeque<f64>,
    /// The last `delay + 1` replica counts asked of the HPA.
    asked: VecDeque<f64>,
    steps: usize,
    under: usize,
    over_pods: f64,
    pods_total: f64,
    needed_total: f64,
    unserved: f64,
    load_total: f64,
    changes: usize,
    decided_steps: usize,
    /// Pods ready at the latest step.
    ready: f64,
}

impl HpaSim {
    pub fn new(target: f64, delay: usize, stabilization: usize, step_minutes: f64) -> Self {
        Self {
            target,
            delay,
            stabilization,
            step_minutes,
            recommended: VecDeque::new(),
            asked: VecDeque::new(),
            steps: 0,
            under: 0,
            over_pods: 0.0,
            pods_total: 0.0,
            needed_total: 0.0,
            unserved: 0.0,
            load_total: 0.0,
            changes: 0,
            decided_steps: 0,
            ready: 0.0,
        }
    }

    /// One step: `recommended` pods are asked for, given what came before;
    /// `actual` is the step's load (NaN: not observed, not judged); a step
    /// not `counted` only warms the simulation up. Whether the ready pods
    /// fell short of the load, for a step observed.
    pub fn step(&mut self, recommended: f64, actual: f64, counted: bool) -> Option<bool> {
        push_window(&mut self.recommended, recommended, self.stabilization + 1);
        let asked = self
            .recommended
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        if counted && self.asked.back().is_some_and(|&a| a != asked) {
            self.changes += 1;
        }
        push_window(&mut self.asked, asked, self.delay + 1);
        // Added pods are ready once every request over the delay wanted them.
        let ready = self.asked.iter().copied().fold(f64::INFINITY, f64::min);
        self.ready = ready;
        let needed = super::pods_for(actual, self.target);
        let short = (!actual.is_nan()).then_some(ready < needed);
        if !counted {
            return short;
        }
        self.decided_steps += 1;
        if actual.is_nan() {
            return None;
        }
        self.steps += 1;
        if ready < needed {
            self.under += 1;
        }
        self.over_pods += (ready - needed).max(0.0);
        self.pods_total += ready;
        self.needed_total += needed;
        self.unserved += (actual - ready * self.target).max(0.0);
        self.load_total += actual.max(0.0);
        short
    }

    /// Pods ready at the latest step.
    pub fn ready(&self) -> f64 {
        self.ready
    }

    pub fn steps(&self) -> usize {
        self.steps
    }

    pub fn outcome(&self) -> CapacityOutcome {
        let days = self.decided_steps as f64 * self.step_minutes / 1440.0;
        CapacityOutcome {
            under_provisioned_share: self.under as f64 / self.steps.max(1) as f64,
            pod_time_over_oracle: if self.needed_total > 0.0 {
                self.pods_total / self.needed_total - 1.0
            } else {
                0.0
            },
            over_provisioned_pod_steps: self.over_pods,
            over_provisioned_pod_minutes: self.over_pods * self.step_minutes,
            pod_steps: self.pods_total,
            unserved_load_share: if self.load_total > 0.0 {
                self.unserved / self.load_total
            } else {
                0.0
            },
            scaling_changes: self.changes,
            scaling_changes_per_day: if days > 0.0 {
                self.changes as f64 / days
            } else {
                0.0
            },
        }
    }
}

fn push_window(window: &mut VecDeque<f64>, value: f64, len: usize) {
    window.push_back(value);
    while window.len() > len {
        window.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_come_late_and_go_after_the_stabilisation_window() {
        // Target 10, delay 2, stabilisation 3: asking 1, then 5 at step 1,
        // then 1 again from step 2 on.
        let mut sim = HpaSim::new(10.0, 2, 3, 1.0);
        let asks = [1.0, 5.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let mut ready = Vec::new();
        for ask in asks {
            sim.step(ask, 10.0, true);
            ready.push(sim.asked.iter().copied().fold(f64::INFINITY, f64::min));
        }
        // Asked: 1 5 5 5 5 1 1 1; ready two steps after the rise, and down
        // at once when the window lets go.
        assert_eq!(ready, [1.0, 1.0, 1.0, 5.0, 5.0, 1.0, 1.0, 1.0]);
        let o = sim.outcome();
        assert_eq!(sim.steps(), 8);
        assert_eq!(o.under_provisioned_share, 0.0);
        assert_eq!(o.over_provisioned_pod_steps, 8.0);
        assert_eq!(o.pod_time_over_oracle, 1.0);
        assert_eq!(o.scaling_changes, 2);
    }

    #[test]
    fn a_late_rise_is_short_until_the_pods_are_ready() {
        let mut sim = HpaSim::new(10.0, 1, 0, 1.0);
        for (ask, load) in [(1.0, 10.0), (3.0, 30.0), (3.0, 30.0)] {
            sim.step(ask, load, true);
        }
        let o = sim.outcome();
        assert!((o.under_provisioned_share - 1.0 / 3.0).abs() < 1e-12);
        assert!((o.unserved_load_share - 20.0 / 70.0).abs() < 1e-12);
    }
}
