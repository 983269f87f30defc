//! A workload's recent history on its step grid: new samples are merged in
//! as they arrive, gaps become NaN (missing) and the oldest points fall off
//! once the window is full.

use std::collections::VecDeque;

use crate::model::Series;

#[derive(Debug, Clone)]
pub struct HistoryWindow {
    step: i64,
    capacity: usize,
    /// Time of `values[0]`; meaningless while empty.
    start: i64,
    values: VecDeque<f64>,
}

impl HistoryWindow {
    /// A window of `capacity` points (at least 1) `step_seconds` apart.
    pub fn new(step_seconds: u32, capacity: usize) -> Self {
        Self {
            step: i64::from(step_seconds.max(1)),
            capacity: capacity.max(1),
            start: 0,
            values: VecDeque::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Time of the newest point.
    pub fn last_time(&self) -> Option<i64> {
        (!self.values.is_empty()).then(|| self.start + (self.values.len() as i64 - 1) * self.step)
    }

    /// The newest finite value.
    pub fn last_observed(&self) -> Option<f64> {
        self.values.iter().rev().copied().find(|v| v.is_finite())
    }

    /// Merges ascending samples. A sample is placed on the nearest grid
    /// point; one at or before the newest point replaces that point's value
    /// (a late or revised sample), one after it extends the window, the
    /// points between becoming NaN. Samples older than the window are
    /// ignored.
    pub fn merge(&mut self, samples: &[(i64, f64)]) {
        for &(time, value) in samples {
            if self.values.is_empty() {
                self.start = time;
                self.values.push_back(value);
                continue;
            }
            let offset = (time - self.start) as f64 / self.step as f64;
            let index = offset.round() as i64;
            if index < 0 {
                continue;
            }
            let index = index as usize;
            if index < self.values.len() {
                self.values[index] = value;
                continue;
            }
            let gap = index - self.values.len();
            if gap >= self.capacity {
                // The new sample is a whole window past the newest point:
                // nothing old survives.
                self.values.clear();
                self.start += index as i64 * self.step;
                self.values.push_back(value);
                continue;
            }
            self.values.extend(std::iter::repeat_n(f64::NAN, gap));
            self.values.push_back(value);
            let excess = self.values.len().saturating_sub(self.capacity);
            self.values.drain(..excess);
            self.start += excess as i64 * self.step;
        }
    }

    /// Every point, (time, value), oldest first; a gap is NaN.
    pub fn points(&self) -> impl DoubleEndedIterator<Item = (i64, f64)> + '_ {
        self.values
            .iter()
            .enumerate()
            .map(|(k, &v)| (self.start + k as i64 * self.step, v))
    }

    /// Points held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// The window as a model's input.
    pub fn series(&self) -> Series {
        Series::new(
            self.start,
            u32::try_from(self.step).unwrap_or(u32::MAX),
            self.values.iter().copied().collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(w: &HistoryWindow) -> Vec<String> {
        w.series().values.iter().map(|v| format!("{v}")).collect()
    }

    #[test]
    fn gaps_become_missing_and_the_window_slides() {
        let mut w = HistoryWindow::new(60, 4);
        assert_eq!(w.last_time(), None);
        w.merge(&[(600, 1.0), (660, 2.0), (780, 4.0)]);
        assert_eq!(values(&w), ["1", "2", "NaN", "4"]);
        assert_eq!(w.last_time(), Some(780));
        w.merge(&[(840, 5.0), (901, 6.0)]);
        assert_eq!(values(&w), ["NaN", "4", "5", "6"]);
        assert_eq!(w.series().start_unix_seconds, 720);
        assert_eq!(w.last_time(), Some(900));
        assert_eq!(w.last_observed(), Some(6.0));
    }

    #[test]
    fn late_samples_replace_and_old_ones_are_ignored() {
        let mut w = HistoryWindow::new(60, 3);
        w.merge(&[(600, 1.0), (660, 2.0), (720, 3.0)]);
        w.merge(&[(540, 9.0), (660, 2.5)]);
        assert_eq!(values(&w), ["1", "2.5", "3"]);
    }

    #[test]
    fn a_jump_past_the_whole_window_starts_afresh() {
        let mut w = HistoryWindow::new(60, 3);
        w.merge(&[(600, 1.0), (660, 2.0)]);
        w.merge(&[(6_000, 7.0)]);
        assert_eq!(values(&w), ["7"]);
        assert_eq!(w.last_time(), Some(6_000));
    }
}
