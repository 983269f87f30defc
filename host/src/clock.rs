//! The service's notion of now: the wall clock, or a replay clock that
//! starts at a trace's time and runs faster than real time, so a recorded
//! day can be watched in minutes.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// `None` for the wall clock.
    replay: Option<Replay>,
}

#[derive(Debug, Clone, Copy)]
struct Replay {
    started: Instant,
    origin: DateTime<Utc>,
    speed: f64,
}

impl Clock {
    pub fn wall() -> Self {
        Self { replay: None }
    }

    /// Now is `origin` at creation, then advances `speed` times as fast as
    /// the wall clock.
    pub fn replay(origin: DateTime<Utc>, speed: f64) -> Self {
        assert!(
            speed.is_finite() && speed > 0.0,
            "replay speed must be positive"
        );
        Self {
            replay: Some(Replay {
                started: Instant::now(),
                origin,
                speed,
            }),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self.replay {
            None => Utc::now(),
            Some(r) => {
                let elapsed = r.started.elapsed().as_secs_f64() * r.speed;
                r.origin + chrono::Duration::microseconds((elapsed * 1e6) as i64)
            }
        }
    }

    /// How long to wait on the wall clock for `d` to pass on this clock.
    pub fn wall_duration(&self, d: Duration) -> Duration {
        match self.replay {
            None => d,
            // A timer of zero would panic; a millisecond is as fast as
            // any replay needs.
            Some(r) => d.div_f64(r.speed).max(Duration::from_millis(1)),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::wall()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_clock_runs_fast_from_its_origin() {
        let origin = DateTime::from_timestamp(804_556_800, 0).unwrap();
        let clock = Clock::replay(origin, 60.0);
        let now = clock.now();
        assert!(now >= origin && now < origin + chrono::Duration::seconds(60));
        assert_eq!(
            clock.wall_duration(Duration::from_secs(60)),
            Duration::from_secs(1)
        );
        assert_eq!(
            Clock::wall().wall_duration(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
    }
}
