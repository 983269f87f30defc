//! A recorded trace played back as if it were live: the value at time `t`
//! is the trace's value at the same offset into its span, the trace
//! repeating end to end. Every workload reading it sees the same clock, so
//! forecasts and replicas change as they would in production.

use std::sync::Arc;

use crate::model::Series;

#[derive(Debug, Clone)]
pub struct ReplaySource {
    name: String,
    trace: Arc<Series>,
}

impl ReplaySource {
    /// `trace` must hold at least one point.
    pub fn new(name: impl Into<String>, trace: Series) -> Self {
        assert!(!trace.values.is_empty(), "a replay trace needs points");
        Self {
            name: name.into(),
            trace: Arc::new(trace),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The trace's value at time `t` (NaN where the trace has a gap).
    pub fn value_at(&self, t: i64) -> f64 {
        let step = i64::from(self.trace.step_seconds.max(1));
        let len = self.trace.values.len() as i64;
        let index = (t - self.trace.start_unix_seconds)
            .div_euclid(step)
            .rem_euclid(len);
        self.trace.values[index as usize]
    }

    /// Finite samples at `start, start + step, ..., end`.
    pub fn range(&self, start: i64, end: i64, step_seconds: u32) -> Vec<(i64, f64)> {
        let step = i64::from(step_seconds.max(1));
        let mut out = Vec::new();
        let mut t = start;
        while t <= end {
            let v = self.value_at(t);
            if v.is_finite() {
                out.push((t, v));
            }
            t += step;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_repeats_end_to_end_and_gaps_are_skipped() {
        let replay = ReplaySource::new("t", Series::new(600, 60, vec![1.0, f64::NAN, 3.0]));
        assert_eq!(replay.value_at(600), 1.0);
        assert_eq!(replay.value_at(659), 1.0);
        assert_eq!(replay.value_at(720), 3.0);
        assert_eq!(replay.value_at(780), 1.0);
        assert_eq!(replay.value_at(540), 3.0);
        assert_eq!(
            replay.range(600, 900, 60),
            vec![(600, 1.0), (720, 3.0), (780, 1.0), (900, 3.0)]
        );
        assert!(replay.range(700, 600, 60).is_empty());
    }
}
