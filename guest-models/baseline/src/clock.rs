//! Seasonal profiles keyed by clock time, so any step works.
//!
//! A profile holds `buckets` values spread evenly over one period (a day, a
//! week). The profile at a clock phase is the linear interpolation of the two
//! nearest buckets, and an error is shared between the same two buckets in
//! proportion to their weights. With a step that does not divide the period
//! (7 minutes into a day) the points land at a different phase every day, and
//! interpolation is what keeps a smooth cycle exact instead of quantised.

/// Seconds in a day and in a week.
pub const DAY: i64 = 86_400;
pub const WEEK: i64 = 7 * DAY;

/// Where a point falls in a profile: two buckets and the second one's weight.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    lo: usize,
    hi: usize,
    w_hi: f64,
}

#[derive(Debug, Clone)]
pub struct Profile {
    period: i64,
    values: Vec<f64>,
    /// Observation weight each bucket has absorbed, so early updates are a
    /// running mean (gain 1/count) until the count makes `gain` the smaller.
    seen: Vec<f64>,
    buckets_per_second: f64,
    gain: f64,
}

impl Slot {
    /// The slot of a profile that is not in use.
    pub const IDLE: Slot = Slot {
        lo: 0,
        hi: 0,
        w_hi: 0.0,
    };
}

impl Profile {
    pub fn new(period: i64, buckets: usize, gain: f64) -> Self {
        let buckets = buckets.max(1);
        Self {
            period,
            values: vec![0.0; buckets],
            seen: vec![0.0; buckets],
            buckets_per_second: buckets as f64 / period as f64,
            gain,
        }
    }

    /// Buckets for a step: one per step, but at most `max_buckets`, because a
    /// bucket per minute learns from too few points to be less noisy than the
    /// shape it would resolve.
    pub fn buckets_for(period: i64, step: i64, max_buckets: usize) -> usize {
        let per_period = (period as f64 / step as f64).round() as usize;
        per_period.clamp(1, max_buckets.max(1))
    }

    /// The phase (seconds into the period) of unix time `t`.
    pub fn phase_of(&self, t: i64) -> i64 {
        t.rem_euclid(self.period)
    }

    pub fn slot(&self, phase: i64) -> Slot {
        let n = self.values.len();
        let x = phase as f64 * self.buckets_per_second;
        // `phase < period` so `x < n`, but rounding may land on `n` exactly.
        // Through i64: `x >= 0`, so the same value, but in wasm (where
        // usize is u32) the saturating unsigned conversion is a long
        // branchy sequence and the signed 64-bit one a single instruction
        // on its fast path.
        let lo = (x as i64 as usize).min(n - 1);
        let hi = if lo + 1 == n { 0 } else { lo + 1 };
        Slot {
            lo,
            hi,
            w_hi: x - lo as f64,
        }
    }

    #[inline]
    pub fn at(&self, s: Slot) -> f64 {
        self.values[s.lo] + s.w_hi * (self.values[s.hi] - self.values[s.lo])
    }

    /// Adds a sample to the buckets' weighted sums, for a batch mean: call
    /// [`Profile::finish_means`] once all are in. Cheaper than `learn`, which
    /// divides on every early update.
    #[inline]
    pub fn add_sample(&mut self, s: Slot, v: f64) {
        let w_lo = 1.0 - s.w_hi;
        self.values[s.lo] += w_lo * v;
        self.seen[s.lo] += w_lo;
        self.values[s.hi] += s.w_hi * v;
        self.seen[s.hi] += s.w_hi;
    }

    /// Turns the sums of [`Profile::add_sample`] into means.
    pub fn finish_means(&mut self) {
        for (v, &w) in self.values.iter_mut().zip(&self.seen) {
            if w > 0.0 {
                *v /= w;
            }
        }
    }

    /// Gives buckets that have seen nothing the value interpolated between
    /// their nearest seen neighbours (around the cycle). An empty bucket would
    /// otherwise read as 0, and since errors are clipped the pass would take
    /// days to learn it.
    pub fn fill_gaps(&mut self) {
        let n = self.values.len();
        let Some(anchor) = self.seen.iter().position(|&w| w > 0.0) else {
            return;
        };
        let mut prev = anchor;
        for step in 1..=n {
            let k = (anchor + step) % n;
            if self.seen[k] > 0.0 {
                let gap = (k + n - prev) % n;
                let gap = if gap == 0 { n } else { gap };
                let (a, b) = (self.values[prev], self.values[k]);
                for j in 1..gap {
                    self.values[(prev + j) % n] = a + (b - a) * j as f64 / gap as f64;
                }
                prev = k;
            }
        }
    }

    /// Subtracts `f(bucket)` from every bucket.
    pub fn subtract(&mut self, f: impl Fn(usize) -> f64) {
        for (b, v) in self.values.iter_mut().enumerate() {
            *v -= f(b);
        }
    }

    /// Moves the profile towards an observed deviation `err` from it.
    #[inline]
    pub fn learn(&mut self, s: Slot, err: f64) {
        let w_lo = 1.0 - s.w_hi;
        for (k, w) in [(s.lo, w_lo), (s.hi, s.w_hi)] {
            if w > 0.0 {
                self.seen[k] += w;
                // Dividing only while still averaging keeps the hot loop cheap.
                let g = if self.seen[k] * self.gain < 1.0 {
                    1.0 / self.seen[k]
                } else {
                    self.gain
                };
                self.values[k] += g * w * err;
            }
        }
    }
}

/// Advances a phase by one step, without a division per point.
#[inline]
pub fn advance(phase: i64, step: i64, period: i64) -> i64 {
    let p = phase + step;
    if p >= period { p % period } else { p }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cap_and_round() {
        assert_eq!(Profile::buckets_for(DAY, 60, 288), 288);
        assert_eq!(Profile::buckets_for(DAY, 300, 288), 288);
        // 86400 / 420 = 205.7 steps a day.
        assert_eq!(Profile::buckets_for(DAY, 420, 10_000), 206);
        assert_eq!(Profile::buckets_for(DAY, 3 * DAY, 288), 1);
    }

    #[test]
    fn slot_interpolates_and_wraps() {
        let mut p = Profile::new(DAY, 4, 1.0);
        p.values = vec![0.0, 10.0, 20.0, 30.0];
        // Bucket k sits at phase k * 6 h.
        assert_eq!(p.at(p.slot(0)), 0.0);
        assert_eq!(p.at(p.slot(3 * 3600)), 5.0);
        // Between the last bucket (18 h) and the first (24 h = 0 h).
        assert_eq!(p.at(p.slot(21 * 3600)), 15.0);
        assert_eq!(p.phase_of(-3600), DAY - 3600);
    }

    #[test]
    fn first_updates_average_then_gain_takes_over() {
        let mut p = Profile::new(DAY, 2, 0.1);
        let s = p.slot(0);
        p.learn(s, 4.0);
        assert_eq!(p.values[0], 4.0);
        p.learn(s, -4.0);
        assert_eq!(p.values[0], 2.0);
    }

    #[test]
    fn empty_buckets_are_interpolated_around_the_cycle() {
        let mut p = Profile::new(DAY, 6, 0.1);
        p.learn(p.slot(DAY / 6), 10.0);
        p.learn(p.slot(4 * DAY / 6), 40.0);
        p.fill_gaps();
        assert_eq!(p.values, vec![20.0, 10.0, 20.0, 30.0, 40.0, 30.0]);
        let mut one = Profile::new(DAY, 3, 0.1);
        one.learn(one.slot(0), 5.0);
        one.fill_gaps();
        assert_eq!(one.values, vec![5.0; 3]);
    }

    #[test]
    fn advance_wraps() {
        assert_eq!(advance(DAY - 60, 60, DAY), 0);
        assert_eq!(advance(DAY - 100, 420, DAY), 320);
    }
}
