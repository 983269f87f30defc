//! A workload as large as the web view meets: `auto` on five candidates, a
//! week of one-minute history, a day of forecasts and plans, every failure
//! and change of leader it keeps. The page's weight test and its rendering
//! benchmark draw it.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::shadow::{CandidateScore, Selection};
use crate::sizing::{SizingChoice, SizingRule};
use crate::store::{Band, Failure, ModelRef, Snapshot, Stage, Status, WorkloadView};
use crate::trail::{LeadForecast, OriginPlan, TRAIL_EVENTS, TRAIL_POINTS};

const CANDIDATES: [&str; 5] = ["baseline", "arima", "mstl", "fracast", "seasonal-naive"];

/// A deterministic daily load with noise, around 100.
fn load(t: i64, seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let noise = (*seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
    let day = (t % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU;
    100.0 + 60.0 * day.sin() + 20.0 * noise
}

/// The workload at `now`, with its last origin a minute before.
pub fn week_of_minutes(now: DateTime<Utc>) -> WorkloadView {
    let text = "[[workload]]\nname = \"checkout\"\nprom-query = \"sum(rate(http_requests_total[1m]))\"\n\
                step = \"1m\"\nwindow = \"7d\"\nhorizon = \"30m\"\ntarget-per-pod = 10\nmodel = \"auto\"\n";
    let config = Arc::new(
        crate::config::parse_file(text)
            .expect("the sample's config is valid")
            .remove(0),
    );
    let step = 60i64;
    let origin = now.timestamp() / step * step - step;
    let points = config.window_points();
    let first = origin - (points as i64 - 1) * step;
    let mut seed = 7u64;
    let history: Vec<(i64, f64)> = (0..points as i64)
        .map(|k| {
            let t = first + k * step;
            (t, load(t, &mut seed))
        })
        .collect();
    let model = ModelRef {
        name: "auto".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        content_hash: None,
    };
    let status = Status::new(config.clone(), model.clone(), true);
    let failure = |k: i64| Failure {
        component: Stage::Model,
        reason: "guest_error",
        message: format!(
            "model `fracast` failed: {}",
            "the history is too short; ".repeat(20)
        ),
        at: now - chrono::Duration::minutes(k),
    };
    {
        let mut trail = status.trail.write().expect("trail lock");
        trail.history.merge(&history);
        let lead = config.lead_steps() as i64 * step;
        for k in 0..TRAIL_POINTS as i64 {
            let t = origin - (TRAIL_POINTS as i64 - 1 - k) * step;
            let value = load(t + lead, &mut seed);
            trail.note_lead(LeadForecast {
                time: t + lead,
                value: value as f32,
                low: (value * 0.8) as f32,
                high: (value * 1.2) as f32,
            });
            trail.note_plan(OriginPlan {
                origin: t,
                desired: (value / 10.0).ceil() as u32 + 1,
                reactive: Some((load(t, &mut seed) / 10.0).ceil() as u32),
                told: Some((value / 10.0).ceil() as u32 + 2),
            });
            if k % 15 == 0 {
                let leader = CANDIDATES[(k as usize / 60) % CANDIDATES.len()];
                let weights: Vec<(String, Option<f64>)> = CANDIDATES
                    .iter()
                    .map(|&c| (c.to_owned(), Some(if c == leader { 0.6 } else { 0.1 })))
                    .collect();
                trail.note_weights(t, &weights, Some(leader));
            }
        }
        for k in 0..TRAIL_EVENTS as i64 {
            trail.note_failure(failure(k));
        }
    }
    let horizon = config.horizon_steps() as usize;
    let values: Vec<f64> = (1..=horizon as i64)
        .map(|k| load(origin + k * step, &mut seed))
        .collect();
    let band = |f: f64| Band {
        level: 0.5 + (f - 1.0) * 2.0,
        values: values.iter().map(|v| v * f).collect(),
    };
    let quantiles = vec![band(0.8), band(1.0), band(1.2), band(1.3)];
    let loads: Vec<f64> = values.iter().map(|v| v * 1.3).collect();
    let at = DateTime::from_timestamp(origin, 0).expect("in range");
    let snapshot = Snapshot {
        workload: config.name.clone(),
        metric: config.metric.clone(),
        model,
        generated_at: at,
        computed_at: now,
        step_seconds: step as u32,
        horizon: horizon as u32,
        desired_replicas: loads.iter().map(|l| (l / 10.0).ceil() as u32).collect(),
        values,
        quantiles,
        last_observed: history.last().map(|p| p.1),
        reactive_replicas: history.last().map(|p| (p.1 / 10.0).ceil() as u32),
        stale_after_seconds: config.stale_after.as_secs(),
        lead_time_seconds: config.lead_time.as_secs(),
        selection: Some(Selection {
            chosen: crate::shadow::COMBINED.into(),
            candidates: CANDIDATES
                .iter()
                .enumerate()
                .map(|(i, &name)| CandidateScore {
                    name: name.into(),
                    mae: Some(5.0 + i as f64),
                    recent_mae: Some(4.0 + i as f64),
                    weight: Some(0.2),
                    lead_weights: vec![0.2; 4],
                    failures: i,
                    spared: false,
                })
                .collect(),
            lead_buckets: vec![1, 4, 9, 16],
            leader: Some("fracast".into()),
            judged_origins: 96,
            points: 2880,
            switches: 12,
            calibrated: true,
            error_scaling: Some(0.5),
        }),
        sizing: Some(SizingChoice {
            rule: SizingRule::Objective,
            target_shortfall: Some(0.03),
            effective_target: Some(0.03),
            level: Some(0.9),
            headroom: None,
            recent_shortfall: Some(0.028),
            points: 2000,
            reactive_floor: true,
            pod_start_delay_seconds: 60,
            changes: 3,
        }),
        sizing_loads: loads,
        reactive_floor: true,
        refreshed_at: Some(at),
    };
    let mut status = status;
    status.last_error = Some(failure(0));
    WorkloadView {
        status,
        snapshot: Some(Arc::new(snapshot)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The budget for a workload page.
    const PAGE_BUDGET_BYTES: usize = 300 * 1024;

    #[test]
    fn a_week_of_minutes_renders_within_the_page_budget_with_every_chart() {
        let now = DateTime::from_timestamp(1_764_547_200, 0).unwrap();
        let view = week_of_minutes(now);
        let page = super::super::workload(&view, now, 15).into_string();
        assert!(
            page.len() <= PAGE_BUDGET_BYTES,
            "{} bytes, budget {PAGE_BUDGET_BYTES}",
            page.len()
        );
        for chart in [
            "ahead",
            "replicas-ahead",
            "at-lead",
            "replicas-past",
            "history",
            "weights",
        ] {
            assert!(
                page.contains(&format!("data-chart=\"{chart}\"")),
                "{chart} is drawn"
            );
        }
        assert!(page.contains("data-source=\"10080\""), "the whole week");
        let overview = super::super::overview(std::slice::from_ref(&view), now, 15).into_string();
        assert!(overview.contains("fracast"), "auto's weights");
    }
}
