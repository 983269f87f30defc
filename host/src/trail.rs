//! What a workload's page draws besides its latest snapshot: the history the
//! forecaster holds, the forecasts it made at the lead time, the replicas it
//! asked for at each origin, how the candidates' weights moved and the last
//! failures.
//!
//! One [`Trail`] per workload, shared between the workload's runner (the one
//! writer, after collecting and after planning) and the web view (readers).
//! The history here *is* the runner's window, not a copy, so a week of
//! minutes is held once; everything else is bounded by [`TRAIL_POINTS`] or
//! [`TRAIL_EVENTS`].

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use crate::forecaster::window::HistoryWindow;
use crate::store::Failure;

/// Origins kept of forecasts, plans and weights: 12 hours at one-minute
/// steps, the night an SRE paged at 03:00 looks back on. About 40 KB a
/// workload, 40 MB for a thousand.
pub const TRAIL_POINTS: usize = 720;

/// Failures and changes of leader kept, newest last.
pub const TRAIL_EVENTS: usize = 20;

/// A workload's trail, behind a std lock held only to update or copy it out,
/// never across an await.
pub type SharedTrail = Arc<RwLock<Trail>>;

/// The forecast made for `time`, one lead time before it, with the bands
/// around it (the lowest and highest level the forecast carried; NaN
/// without bands). Single precision: a chart needs no more, and a thousand
/// workloads keep 720 each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeadForecast {
    pub time: i64,
    pub value: f32,
    pub low: f32,
    pub high: f32,
}

/// What one origin's plan asked for now, beside a reactive autoscaler and
/// the answer a trigger that overrides nothing was given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OriginPlan {
    pub origin: i64,
    /// Replicas planned for the first step.
    pub desired: u32,
    /// Replicas for the last observed value.
    pub reactive: Option<u32>,
    /// The scaler's answer at the origin with the workload's own lead time
    /// and floor: the most desired over the lead window.
    pub told: Option<u32>,
}

/// The candidates' shares of the served combination after one model call.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsAt {
    pub origin: i64,
    /// In the order of [`Trail::candidates`]; NaN for a candidate without a
    /// weight.
    pub weights: Vec<f64>,
}

/// The candidate weighing most changed.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderChange {
    pub origin: i64,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Trail {
    pub history: HistoryWindow,
    /// By time, oldest first.
    pub lead: VecDeque<LeadForecast>,
    /// By origin, oldest first.
    pub plans: VecDeque<OriginPlan>,
    /// The candidates of `auto`, as weights name them; empty for one model.
    pub candidates: Vec<String>,
    pub weights: VecDeque<WeightsAt>,
    pub leader_changes: VecDeque<LeaderChange>,
    pub failures: VecDeque<Failure>,
}

/// Appends `item` to a queue kept by `key` ascending: one with a key at or
/// after it is replaced (a later forecast for the same time), and the
/// oldest fall off past `cap`.
fn push_by<T>(queue: &mut VecDeque<T>, item: T, key: impl Fn(&T) -> i64, cap: usize) {
    let k = key(&item);
    while queue.back().is_some_and(|b| key(b) >= k) {
        queue.pop_back();
    }
    // Room made before pushing, so a full queue never grows its buffer.
    while queue.len() >= cap {
        queue.pop_front();
    }
    queue.push_back(item);
}

impl Trail {
    /// An empty trail whose history holds `window_points` points
    /// `step_seconds` apart.
    pub fn new(step_seconds: u32, window_points: usize) -> Self {
        Self {
            history: HistoryWindow::new(step_seconds, window_points),
            lead: VecDeque::with_capacity(TRAIL_POINTS),
            plans: VecDeque::with_capacity(TRAIL_POINTS),
            candidates: Vec::new(),
            weights: VecDeque::new(),
            leader_changes: VecDeque::new(),
            failures: VecDeque::new(),
        }
    }

    pub fn shared(self) -> SharedTrail {
        Arc::new(RwLock::new(self))
    }

    pub fn note_lead(&mut self, forecast: LeadForecast) {
        push_by(&mut self.lead, forecast, |f| f.time, TRAIL_POINTS);
    }

    pub fn note_plan(&mut self, plan: OriginPlan) {
        push_by(&mut self.plans, plan, |p| p.origin, TRAIL_POINTS);
    }

    /// Notes the weights after a model call, by candidate name, and a change
    /// of leader.
    pub fn note_weights(
        &mut self,
        origin: i64,
        weights: &[(String, Option<f64>)],
        leader: Option<&str>,
    ) {
        if self.candidates.is_empty() {
            self.candidates = weights.iter().map(|(n, _)| n.clone()).collect();
        }
        let row = self
            .candidates
            .iter()
            .map(|name| {
                weights
                    .iter()
                    .find(|(n, _)| n == name)
                    .and_then(|(_, w)| *w)
                    .unwrap_or(f64::NAN)
            })
            .collect();
        push_by(
            &mut self.weights,
            WeightsAt {
                origin,
                weights: row,
            },
            |w| w.origin,
            TRAIL_POINTS,
        );
        let before = self.leader_changes.back().and_then(|c| c.to.as_deref());
        if self.leader_changes.is_empty() || before != leader {
            self.leader_changes.push_back(LeaderChange {
                origin,
                from: before.map(str::to_owned),
                to: leader.map(str::to_owned),
            });
            while self.leader_changes.len() > TRAIL_EVENTS {
                self.leader_changes.pop_front();
            }
        }
    }

    pub fn note_failure(&mut self, failure: Failure) {
        self.failures.push_back(failure);
        while self.failures.len() > TRAIL_EVENTS {
            self.failures.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(time: i64, value: f32) -> LeadForecast {
        LeadForecast {
            time,
            value,
            low: f32::NAN,
            high: f32::NAN,
        }
    }

    #[test]
    fn a_later_forecast_for_a_time_replaces_the_earlier_and_the_oldest_fall_off() {
        let mut t = Trail::new(60, 10);
        for k in 0..(TRAIL_POINTS as i64 + 5) {
            t.note_lead(lead(k * 60, k as f32));
        }
        assert_eq!(t.lead.len(), TRAIL_POINTS);
        assert!(
            t.lead.capacity() < 2 * TRAIL_POINTS,
            "a full queue does not grow"
        );
        assert_eq!(t.lead.front().unwrap().time, 5 * 60);
        // A forecast made again for an earlier time drops those after it.
        t.note_lead(lead(100 * 60, -1.0));
        let last = t.lead.back().unwrap();
        assert_eq!((last.time, last.value), (100 * 60, -1.0));
        assert_eq!(t.lead.len(), 96);
    }

    #[test]
    fn weights_follow_the_first_names_and_leader_changes_are_noted_once() {
        let mut t = Trail::new(60, 10);
        let w = |a: f64, b: Option<f64>| vec![("a".to_owned(), Some(a)), ("b".to_owned(), b)];
        t.note_weights(0, &w(0.7, Some(0.3)), Some("a"));
        t.note_weights(60, &w(0.6, None), Some("a"));
        t.note_weights(120, &w(0.2, Some(0.8)), Some("b"));
        assert_eq!(t.candidates, ["a", "b"]);
        assert_eq!(t.weights.len(), 3);
        assert!(t.weights[1].weights[1].is_nan());
        let changes: Vec<_> = t
            .leader_changes
            .iter()
            .map(|c| (c.origin, c.from.clone(), c.to.clone()))
            .collect();
        assert_eq!(
            changes,
            [
                (0, None, Some("a".to_owned())),
                (120, Some("a".to_owned()), Some("b".to_owned()))
            ]
        );
    }
}
