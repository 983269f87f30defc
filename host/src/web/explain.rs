//! "Why this number", in words: from a snapshot and its workload's settings,
//! what KEDA is told now, which step of the lead window set it, the load
//! behind that step, and each rule that moved the number away from the
//! load's plain replica count (bounds, growth and shrink limits, pre-warming,
//! the scale-down stabilisation, the reactive floor), then how pods are
//! sized and how fresh the forecast is.

use chrono::{DateTime, Utc};

use crate::capacity::{replicas_for_load, running_max_ahead};
use crate::config::WorkloadConfig;
use crate::scaler::decision::{Decision, Reading, Unavailable, decide};
use crate::sizing::{SizingRule, show_share};
use crate::store::Snapshot;

use super::chart::show_number;

/// What a trigger that overrides nothing is told now, and why.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub told: Result<Decision, Unavailable>,
    /// The step of the lead window with the most replicas.
    pub peak: Option<usize>,
    pub lines: Vec<String>,
}

/// The reading a ScaledObject without overrides gets from a scaler with
/// default flags: the workload's own lead time, limit on age and floor.
pub fn default_reading(snapshot: &Snapshot) -> Reading {
    Reading {
        lead_time: std::time::Duration::from_secs(snapshot.lead_time_seconds),
        stale_after: std::time::Duration::from_secs(snapshot.stale_after_seconds),
        activation_threshold: 0.0,
        hybrid: snapshot.reactive_floor,
    }
}

fn at(snapshot: &Snapshot, k: usize) -> String {
    let t = snapshot.generated_at
        + chrono::Duration::seconds((k as i64 + 1) * i64::from(snapshot.step_seconds));
    t.format("%H:%M").to_string()
}

fn show_duration(seconds: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(seconds)).to_string()
}

pub fn explain(snapshot: &Snapshot, config: &WorkloadConfig, now: DateTime<Utc>) -> Explanation {
    let told = decide(snapshot, now, &default_reading(snapshot));
    let mut lines = Vec::new();
    let policy = &config.policy;
    let age = snapshot.age_seconds(now).max(0.0);
    lines.push(format!(
        "The forecast is from the data up to {} ({} ago; it goes stale after {}).",
        snapshot.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
        show_duration(age as u64),
        show_duration(snapshot.stale_after_seconds),
    ));
    if let Some(refreshed) = snapshot.refreshed_at
        && refreshed < snapshot.generated_at
    {
        lines.push(format!(
            "The model last read the history at {}; until its refresh is due the forecast it made then is served from the newest point on.",
            refreshed.format("%H:%M:%S")
        ));
    }
    let mut peak = None;
    match &told {
        Err(e) => lines.push(format!(
            "The scaler does not answer from this forecast: {e}. KEDA falls back on the ScaledObject's fallback replicas, or keeps what runs."
        )),
        Ok(d) => {
            let (first, last) = d.window;
            let desired = &snapshot.desired_replicas;
            let k = (first..=last)
                .max_by_key(|&k| (desired[k], std::cmp::Reverse(k)))
                .unwrap_or(first);
            peak = Some(k);
            lines.push(format!(
                "KEDA is told {} replicas: the most planned for the lead window of {} (steps {} to {}, {} to {}), reached at {}.",
                d.replicas,
                show_duration(snapshot.lead_time_seconds),
                first + 1,
                last + 1,
                at(snapshot, first),
                at(snapshot, last),
                at(snapshot, k),
            ));
            lines.extend(why_step(snapshot, config, k));
            if d.replicas > desired[k] {
                lines.push(format!(
                    "The reactive floor raised the answer to {}: the replicas for the load observed last ({}).",
                    d.replicas,
                    snapshot.last_observed.map_or("-".to_owned(), show_number)
                ));
            }
        }
    }
    if let Some(sizing) = &snapshot.sizing {
        let level = sizing.level.map(|l| format!("{:.0} %", l * 100.0));
        let recent = sizing
            .recent_shortfall
            .map(|s| {
                format!(
                    " It would have left capacity short {} % of the last {} times.",
                    show_number(s * 100.0),
                    sizing.points
                )
            })
            .unwrap_or_default();
        lines.push(match sizing.rule {
            SizingRule::Objective => format!(
                "Pods are sized to the objective of being short of capacity at most {} of the time: on the {} quantile band, the lowest that meets it on recent forecasts.{recent}",
                sizing.target_shortfall.map_or("-".to_owned(), show_share),
                level.unwrap_or_default(),
            ),
            SizingRule::WarmingUp => format!(
                "Pods are sized on the point forecast times {} while the objective (short at most {} of the time) waits for enough judged forecasts.",
                sizing.headroom.map_or("-".to_owned(), show_number),
                sizing.target_shortfall.map_or("-".to_owned(), show_share),
            ),
            SizingRule::QuantileLevel => format!(
                "Pods are sized on the {} quantile band (set by quantile-level).{recent}",
                level.unwrap_or_default()
            ),
            SizingRule::Headroom => format!(
                "Pods are sized on the point forecast times {} (set by headroom).",
                sizing.headroom.map_or("-".to_owned(), show_number)
            ),
        });
    }
    let floor = if snapshot.reactive_floor {
        "on: KEDA is told at least"
    } else {
        "off; a reactive autoscaler would run"
    };
    lines.push(format!(
        "Reactive floor {floor} {} replicas for the load observed last ({} per pod at {}).",
        snapshot
            .reactive_replicas
            .map_or("-".to_owned(), |r| r.to_string()),
        show_number(policy.target_per_pod),
        snapshot.last_observed.map_or("-".to_owned(), show_number),
    ));
    Explanation { told, peak, lines }
}

/// Why step `k` plans the replicas it does.
fn why_step(snapshot: &Snapshot, config: &WorkloadConfig, k: usize) -> Vec<String> {
    let policy = &config.policy;
    let loads = &snapshot.sizing_loads;
    let Some(&load) = loads.get(k) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    let prewarmed = running_max_ahead(loads, policy.prewarm_steps);
    let sized = prewarmed[k];
    lines.push(format!(
        "At {} the load sized on is {} (point forecast {}); at {} per pod that is {} replicas.",
        at(snapshot, k),
        show_number(load),
        snapshot
            .values
            .get(k)
            .map_or("-".to_owned(), |v| show_number(*v)),
        show_number(policy.target_per_pod),
        replicas_for_load(load, policy.target_per_pod),
    ));
    if sized > load {
        lines.push(format!(
            "Pre-warming sizes each step for the largest load of the {} after it: {} here, {} replicas.",
            policy.prewarm_steps,
            show_number(sized),
            replicas_for_load(sized, policy.target_per_pod)
        ));
    }
    let raw = replicas_for_load(sized, policy.target_per_pod);
    let (min, max) = (policy.min_replicas, policy.upper_bound());
    let bounded = (raw.min(f64::from(max)) as u32).clamp(min, max);
    if raw < f64::from(min) {
        lines.push(format!(
            "The workload's min ({min} replicas) raises it to {bounded}."
        ));
    } else if raw > f64::from(max) {
        lines.push(format!(
            "The workload's max ({max} replicas) caps it at {bounded}."
        ));
    }
    let planned = policy.plan(loads, None);
    if let Some(&p) = planned.get(k) {
        if p < bounded {
            lines.push(format!(
                "The growth limit (at most {} times the step before) holds it to {p}.",
                show_number(policy.up_max_factor)
            ));
        } else if p > bounded {
            lines.push(format!(
                "The shrink limit (at most {} % fewer than the step before) keeps it at {p}.",
                show_number(policy.down_max_percent)
            ));
        }
        if let Some(&d) = snapshot.desired_replicas.get(k)
            && d > p
        {
            let floor = snapshot
                .reactive_replicas
                .filter(|_| snapshot.reactive_floor);
            if floor == Some(d) {
                lines.push(format!(
                    "The reactive floor raises it to {d}: the replicas for the load observed last."
                ));
            } else {
                lines.push(format!(
                    "Scale-down stabilisation ({}) keeps the {d} an earlier plan asked for at this time.",
                    show_duration(config.scale_down_stabilization.as_secs())
                ));
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Band, ModelRef};

    fn config(extra: &str) -> WorkloadConfig {
        let text = format!(
            "[[workload]]\nname = \"w\"\nprom-query = \"q\"\ntarget-per-pod = 10\nlead-time = \"3m\"\n{extra}"
        );
        crate::config::parse_file(&text).unwrap().remove(0)
    }

    fn snapshot(loads: Vec<f64>, desired: Vec<u32>, config: &WorkloadConfig) -> Snapshot {
        let at = DateTime::from_timestamp(1_700_000_040, 0).unwrap();
        Snapshot {
            workload: "w".into(),
            metric: "w".into(),
            model: ModelRef {
                name: "baseline".into(),
                version: "1".into(),
                content_hash: None,
            },
            generated_at: at,
            computed_at: at,
            step_seconds: 60,
            horizon: loads.len() as u32,
            values: loads.clone(),
            quantiles: vec![Band {
                level: 0.9,
                values: loads.clone(),
            }],
            desired_replicas: desired,
            last_observed: Some(5.0),
            reactive_replicas: Some(1),
            stale_after_seconds: config.stale_after.as_secs(),
            lead_time_seconds: config.lead_time.as_secs(),
            selection: None,
            sizing: None,
            sizing_loads: loads,
            reactive_floor: config.reactive_floor,
            refreshed_at: None,
        }
    }

    #[test]
    fn the_peak_of_the_lead_window_and_the_limits_that_moved_it_are_named() {
        let c = config("max = 4\n");
        // 25 -> 3 replicas, 95 -> 10 capped at 4; plan with growth x2: 3, 4.
        let s = snapshot(vec![25.0, 95.0, 10.0, 10.0], vec![3, 4, 2, 1], &c);
        let e = explain(&s, &c, s.generated_at);
        assert_eq!(e.told.as_ref().unwrap().replicas, 4);
        assert_eq!(e.peak, Some(1));
        let text = e.lines.join("\n");
        assert!(text.contains("KEDA is told 4 replicas"), "{text}");
        assert!(text.contains("that is 10 replicas"), "{text}");
        assert!(text.contains("max (4 replicas) caps it at 4"), "{text}");
    }

    #[test]
    fn growth_limit_stabilisation_and_staleness_are_explained() {
        let c = config("");
        // 5 -> 1, 100 -> 10 but growth x2 from 1 holds it to 2.
        let s = snapshot(vec![5.0, 100.0, 5.0, 5.0], vec![1, 2, 1, 1], &c);
        let text = explain(&s, &c, s.generated_at).lines.join("\n");
        assert!(text.contains("growth limit"), "{text}");
        assert!(!text.contains("stabilisation"), "{text}");
        // An earlier plan's 6 for the third step is held.
        let mut s = snapshot(vec![5.0, 100.0, 5.0, 5.0], vec![1, 2, 6, 1], &c);
        let e = explain(&s, &c, s.generated_at);
        assert_eq!(e.peak, Some(2));
        let text = e.lines.join("\n");
        assert!(text.contains("Scale-down stabilisation"), "{text}");
        s.stale_after_seconds = 60;
        let late = s.generated_at + chrono::Duration::seconds(120);
        let e = explain(&s, &c, late);
        assert!(e.told.is_err());
        assert!(
            e.lines.join("\n").contains("does not answer"),
            "{:?}",
            e.lines
        );
    }
}
