//! Workload configuration: what to collect, how to forecast it and how to
//! size it, for one workload or many (a TOML file with `[[workload]]`
//! tables).
//!
//! Everything is checked at load: a value that does not parse or makes no
//! sense (step 0, a step longer than the horizon, min above max, an unknown
//! key) is an error naming the workload and the setting, so the service
//! refuses to start rather than run on a guess.
//!
//! Durations take a unit: `30s`, `5m`, `1h`, `7d`, `1w` (and combinations
//! such as `1h30m`).

use std::time::Duration;

use serde::Deserialize;

use crate::capacity::CapacityPolicy;
use crate::sizing::Sizing;

/// One workload as written in the file; `None` takes the default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WorkloadFile {
    pub name: String,
    pub metric: Option<String>,
    pub prom_query: String,
    pub step: Option<String>,
    pub window: Option<String>,
    pub horizon: Option<String>,
    pub interval: Option<String>,
    pub model: Option<String>,
    pub refresh: Option<String>,
    pub candidates: Option<Vec<String>>,
    pub calibrate: Option<bool>,
    pub max_forecast_ratio: Option<f64>,
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
    pub target_per_pod: f64,
    pub target_shortfall: Option<Share>,
    pub headroom: Option<f64>,
    pub quantile_level: Option<f64>,
    pub pod_start_delay: Option<String>,
    pub scale_down_stabilization: Option<String>,
    pub reactive_floor: Option<bool>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub up_max_factor: Option<f64>,
    pub down_max_percent: Option<f64>,
    pub prewarm_window: Option<String>,
    pub stale_after: Option<String>,
    pub lead_time: Option<String>,
}

/// A share of time as written: `"2%"` or `0.02`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Share {
    Number(f64),
    Text(String),
}

impl Share {
    fn parse(&self) -> Result<f64, String> {
        match self {
            Self::Number(n) => crate::sizing::parse_share(&n.to_string()),
            Self::Text(t) => crate::sizing::parse_share(t),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    workload: Vec<WorkloadFile>,
}

/// A checked workload.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    pub name: String,
    /// The metric's name in reports (defaults to the workload's name).
    pub metric: String,
    pub prom_query: String,
    pub step: Duration,
    /// History kept and handed to the model.
    pub window: Duration,
    pub horizon: Duration,
    /// How often to collect and forecast.
    pub interval: Duration,
    pub model: String,
    /// How often the model forecasts anew; between, the last forecast is
    /// served from the newest point on. Zero: every tick.
    pub refresh: Duration,
    /// With `auto`, candidates beside its built-ins (or `-NAME`: a
    /// built-in left out).
    pub candidates: Vec<String>,
    pub params: Vec<(String, String)>,
    /// Bands from the quantiles of the recent forecast errors rather than
    /// the model's own.
    pub calibrate: bool,
    /// A forecast above this multiple of the window's largest observation
    /// is refused as implausible.
    pub max_forecast_ratio: f64,
    pub policy: CapacityPolicy,
    /// A forecast whose origin is older than this is stale: not served for
    /// scaling, and `/readyz` fails.
    pub stale_after: Duration,
    /// How far ahead live forecast error is measured, and the scaler's
    /// window: [now, now + lead time].
    pub lead_time: Duration,
    /// Time from asking for pods to their serving load.
    pub pod_start_delay: Duration,
    /// How long capacity asked for is kept before scaling in.
    pub scale_down_stabilization: Duration,
    /// What KEDA is told is at least the last observed value's replicas.
    pub reactive_floor: bool,
}

impl WorkloadConfig {
    pub fn step_seconds(&self) -> u32 {
        u32::try_from(self.step.as_secs()).unwrap_or(u32::MAX)
    }

    /// Forecast steps: the horizon in whole steps, rounded up.
    pub fn horizon_steps(&self) -> u32 {
        let step = self.step.as_secs().max(1);
        u32::try_from(self.horizon.as_secs().div_ceil(step)).unwrap_or(u32::MAX)
    }

    /// Steps a forecast is served for after the one it was made at: the
    /// refresh in whole steps, less the one it starts on.
    pub fn refresh_steps(&self) -> u32 {
        let step = self.step.as_secs().max(1);
        u32::try_from(self.refresh.as_secs().div_ceil(step).saturating_sub(1)).unwrap_or(u32::MAX)
    }

    /// Steps asked of the model: the horizon, plus the steps its forecast
    /// is served for after it was made, so every tick has a whole horizon.
    pub fn model_horizon_steps(&self) -> u32 {
        self.horizon_steps().saturating_add(self.refresh_steps())
    }

    /// Seconds this workload's refreshes and shadow origins are offset from
    /// multiples of the shadow spacing (half the horizon): a whole number
    /// of steps below it, from a hash of the name, so a forecaster's
    /// workloads refresh on different ticks rather than all on one.
    pub fn phase_seconds(&self) -> i64 {
        let step = self.step.as_secs().max(1);
        let spacing = u64::from(self.horizon_steps() / 2).max(1);
        ((self.name_hash() % spacing) * step) as i64
    }

    /// A number of shadow origins, from a hash of the name, by which this
    /// workload's costly candidates shift the origins they are called at:
    /// workloads of one forecaster take their turns on different refreshes
    /// rather than all on one (independent of [`Self::phase_seconds`],
    /// which spreads refreshes within a spacing).
    pub fn stagger(&self) -> u64 {
        // The hash mixed again (MurmurHash3's finaliser), so that its
        // residues are spread for short names and independent of the
        // phase's, which reads the hash itself.
        let mut z = self.name_hash();
        z ^= z >> 33;
        z = z.wrapping_mul(0xff51_afd7_ed55_8ccd);
        z ^= z >> 33;
        z = z.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        z ^ (z >> 33)
    }

    /// FNV-1a of the name: stable across builds and platforms, unlike
    /// std's hasher.
    fn name_hash(&self) -> u64 {
        self.name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// History points kept.
    pub fn window_points(&self) -> usize {
        (self.window.as_secs() / self.step.as_secs().max(1)) as usize
    }

    /// The lead time in whole steps, at least 1.
    pub fn lead_steps(&self) -> usize {
        (self.lead_time.as_secs() / self.step.as_secs().max(1)).max(1) as usize
    }

    /// How the shadow evaluation replays this workload's sizing.
    pub fn replay(&self) -> crate::sizing::Replay {
        let step = self.step.as_secs().max(1);
        crate::sizing::Replay {
            delay_steps: self.pod_start_delay.as_secs().div_ceil(step) as usize,
            stabilization_steps: (self.scale_down_stabilization.as_secs() / step) as usize,
            reactive_floor: self.reactive_floor,
            target_per_pod: Some(self.policy.target_per_pod),
        }
    }
}

/// Defaults for what a workload leaves out.
pub mod defaults {
    pub const STEP: &str = "1m";
    pub const WINDOW: &str = "7d";
    pub const HORIZON: &str = "30m";
    pub const INTERVAL: &str = "1m";
    pub const MODEL: &str = "baseline";
    pub const MIN: u32 = 1;
    pub const MAX: u32 = 0;
    pub const UP_MAX_FACTOR: f64 = 2.0;
    pub const DOWN_MAX_PERCENT: f64 = 50.0;
    pub const PREWARM_WINDOW: &str = "0s";
    /// Stale after this many intervals (or steps, if longer) without a new
    /// forecast origin: more than a lease takes to pass to another replica
    /// (see `forecaster::LEASE_INTERVALS`) plus a cold start.
    pub const STALE_AFTER_INTERVALS: u32 = 5;
    /// Most history points a workload may keep (a week of 10-second steps).
    pub const MAX_WINDOW_POINTS: u64 = 60_480;
    /// Most forecast steps.
    pub const MAX_HORIZON_STEPS: u64 = 10_080;
    /// Time from asking for pods to their serving load: an image pulled
    /// from a nearby registry and a service that warms up for a minute or
    /// two. The scaler's lead window and the live error follow it.
    pub const POD_START_DELAY: &str = "3m";
    /// As the HPA's default `behavior.scaleDown.stabilizationWindowSeconds`.
    pub const SCALE_DOWN_STABILIZATION: &str = "5m";
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("config file: {0}")]
    Parse(String),
    #[error("config file has no workloads (add a [[workload]] table)")]
    NoWorkloads,
    #[error("workload `{0}` is defined twice")]
    Duplicate(String),
    #[error("workload `{workload}`: {setting}: {message}")]
    Invalid {
        workload: String,
        setting: &'static str,
        message: String,
    },
}

/// Parses and checks a TOML config file's text.
pub fn parse_file(text: &str) -> Result<Vec<WorkloadConfig>, ConfigError> {
    let file: File = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
    if file.workload.is_empty() {
        return Err(ConfigError::NoWorkloads);
    }
    let mut out: Vec<WorkloadConfig> = Vec::with_capacity(file.workload.len());
    for w in file.workload {
        let checked = check(w)?;
        if out.iter().any(|o| o.name == checked.name) {
            return Err(ConfigError::Duplicate(checked.name));
        }
        out.push(checked);
    }
    Ok(out)
}

/// Checks one workload and fills in the defaults.
pub fn check(w: WorkloadFile) -> Result<WorkloadConfig, ConfigError> {
    let invalid = |setting: &'static str, message: String| ConfigError::Invalid {
        workload: w.name.clone(),
        setting,
        message,
    };
    if w.name.trim().is_empty() {
        return Err(invalid("name", "must not be empty".into()));
    }
    if !valid_workload_name(&w.name) {
        return Err(invalid(
            "name",
            "use letters, digits and - _ . / only (it becomes a metric label and a key)".into(),
        ));
    }
    if w.prom_query.trim().is_empty() {
        return Err(invalid("prom-query", "must not be empty".into()));
    }
    let duration = |setting: &'static str, value: &Option<String>, default: &str, zero_ok: bool| {
        let raw = value.as_deref().unwrap_or(default);
        let d = humantime::parse_duration(raw.trim())
            .map_err(|e| invalid(setting, format!("`{raw}`: {e}")))?;
        if !zero_ok && d.is_zero() {
            return Err(invalid(setting, "must be more than zero".into()));
        }
        if d.subsec_nanos() != 0 {
            return Err(invalid(
                setting,
                format!("`{raw}` is not a whole number of seconds"),
            ));
        }
        Ok(d)
    };
    let step = duration("step", &w.step, defaults::STEP, false)?;
    let window = duration("window", &w.window, defaults::WINDOW, false)?;
    let horizon = duration("horizon", &w.horizon, defaults::HORIZON, false)?;
    let interval = duration("interval", &w.interval, defaults::INTERVAL, false)?;
    let prewarm = duration(
        "prewarm-window",
        &w.prewarm_window,
        defaults::PREWARM_WINDOW,
        true,
    )?;
    if step > horizon {
        return Err(invalid(
            "step",
            format!(
                "{} is longer than the horizon ({})",
                show(step),
                show(horizon)
            ),
        ));
    }
    if window < step * 2 {
        return Err(invalid(
            "window",
            format!(
                "{} holds fewer than two steps of {}",
                show(window),
                show(step)
            ),
        ));
    }
    let stale_default = show(interval.max(step) * defaults::STALE_AFTER_INTERVALS);
    let stale_after = duration("stale-after", &w.stale_after, &stale_default, false)?;
    // The default, 3 minutes, is cut to a step short of a shorter horizon;
    // a delay the user sets must fit in it.
    let pod_start_delay = match &w.pod_start_delay {
        None => duration("pod-start-delay", &None, defaults::POD_START_DELAY, true)?
            .min(horizon.saturating_sub(step)),
        Some(_) => duration("pod-start-delay", &w.pod_start_delay, "", true)?,
    };
    if pod_start_delay >= horizon {
        return Err(invalid(
            "pod-start-delay",
            format!(
                "{} is not within the horizon ({}): the forecast must reach past the time \
                 pods asked for now are ready",
                show(pod_start_delay),
                show(horizon)
            ),
        ));
    }
    let scale_down_stabilization = duration(
        "scale-down-stabilization",
        &w.scale_down_stabilization,
        defaults::SCALE_DOWN_STABILIZATION,
        true,
    )?;
    // By default the scaler looks as far ahead as pods take to start, in
    // whole steps and at least one.
    let lead_time = match &w.lead_time {
        Some(_) => duration("lead-time", &w.lead_time, "", false)?,
        None => {
            let steps = pod_start_delay.as_secs().div_ceil(step.as_secs()).max(1);
            (step * steps as u32).min(horizon)
        }
    };
    if lead_time > horizon {
        return Err(invalid(
            "lead-time",
            format!(
                "{} is beyond the horizon ({})",
                show(lead_time),
                show(horizon)
            ),
        ));
    }
    if lead_time < step {
        return Err(invalid(
            "lead-time",
            format!(
                "{} is shorter than a step ({})",
                show(lead_time),
                show(step)
            ),
        ));
    }
    let model = w.model.clone().unwrap_or_else(|| defaults::MODEL.into());
    let refresh = match &w.refresh {
        Some(_) => duration("refresh", &w.refresh, "", true)?,
        None => crate::model::source::default_refresh(&model, horizon, step),
    };
    let candidates = w.candidates.clone().unwrap_or_default();
    if !candidates.is_empty() && model != crate::model::source::AUTO {
        return Err(invalid(
            "candidates",
            format!("are added to model = \"auto\" only, not to `{model}`"),
        ));
    }
    if refresh > horizon {
        return Err(invalid(
            "refresh",
            format!(
                "{} is longer than the horizon ({}): a forecast is served for at most a horizon",
                show(refresh),
                show(horizon)
            ),
        ));
    }
    let window_points = window.as_secs() / step.as_secs();
    if window_points > defaults::MAX_WINDOW_POINTS {
        return Err(invalid(
            "window",
            format!(
                "{} of {} steps is {window_points} points; at most {} (use a longer step)",
                show(window),
                show(step),
                defaults::MAX_WINDOW_POINTS
            ),
        ));
    }
    let horizon_steps = horizon.as_secs().div_ceil(step.as_secs());
    if horizon_steps > defaults::MAX_HORIZON_STEPS {
        return Err(invalid(
            "horizon",
            format!(
                "{} of {} steps is {horizon_steps} steps; at most {}",
                show(horizon),
                show(step),
                defaults::MAX_HORIZON_STEPS
            ),
        ));
    }
    if stale_after < interval + step {
        return Err(invalid(
            "stale-after",
            format!(
                "{} is shorter than an interval plus a step ({}): every forecast would go \
                 stale before the next one",
                show(stale_after),
                show(interval + step)
            ),
        ));
    }
    if step.as_secs() > u64::from(u32::MAX) {
        return Err(invalid("step", "is too long".into()));
    }
    let target_shortfall = match &w.target_shortfall {
        Some(share) => share.parse().map_err(|m| invalid("target-shortfall", m))?,
        None => crate::sizing::DEFAULT_TARGET_SHORTFALL,
    };
    let sizing = match (w.quantile_level, w.headroom) {
        (Some(q), _) => Sizing::Quantile(q),
        (None, Some(h)) => Sizing::Headroom(h),
        (None, None) => Sizing::Objective(target_shortfall),
    };
    let policy = CapacityPolicy {
        target_per_pod: w.target_per_pod,
        sizing,
        min_replicas: w.min.unwrap_or(defaults::MIN),
        max_replicas: w.max.unwrap_or(defaults::MAX),
        up_max_factor: w.up_max_factor.unwrap_or(defaults::UP_MAX_FACTOR),
        down_max_percent: w.down_max_percent.unwrap_or(defaults::DOWN_MAX_PERCENT),
        prewarm_steps: (prewarm.as_secs() / step.as_secs()) as usize,
    };
    policy
        .validate()
        .map_err(|e| invalid(e.setting(), e.to_string()))?;
    let max_forecast_ratio = w
        .max_forecast_ratio
        .unwrap_or(crate::model::guard::DEFAULT_MAX_FORECAST_RATIO);
    crate::model::guard::check_max_forecast_ratio(max_forecast_ratio)
        .map_err(|m| invalid("max-forecast-ratio", m))?;
    Ok(WorkloadConfig {
        metric: w.metric.clone().unwrap_or_else(|| w.name.clone()),
        prom_query: w.prom_query.clone(),
        step,
        window,
        horizon,
        interval,
        model,
        refresh,
        candidates,
        params: w.params.clone().into_iter().collect(),
        calibrate: w.calibrate.unwrap_or(true),
        max_forecast_ratio,
        policy,
        stale_after,
        lead_time,
        pod_start_delay,
        scale_down_stabilization,
        reactive_floor: w.reactive_floor.unwrap_or(true),
        name: w.name,
    })
}

/// Letters, digits and `- _ . /`, at most 253 characters: a name that is
/// safe as a metric label, a Redis key part and a query parameter.
pub fn valid_workload_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"
        [[workload]]
        name = "checkout"
        prom-query = 'sum(rate(http_requests_total{app="checkout"}[1m]))'
        target-per-pod = 50

        [[workload]]
        name = "search"
        metric = "rps"
        prom-query = "sum(rate(search_requests_total[5m]))"
        step = "5m"
        window = "2w"
        horizon = "1h"
        interval = "30s"
        model = "arima"
        params = { order = "auto", ic = "bic" }
        target-per-pod = 200.5
        quantile-level = 0.9
        min = 2
        max = 40
        up-max-factor = 3
        down-max-percent = 20
        prewarm-window = "15m"
        pod-start-delay = "7m"
        scale-down-stabilization = "0s"
        reactive-floor = false
    "#;

    #[test]
    fn defaults_fill_what_a_workload_leaves_out() {
        let w = parse_file(TWO).unwrap();
        assert_eq!(w.len(), 2);
        let checkout = &w[0];
        assert_eq!(checkout.metric, "checkout");
        assert_eq!(checkout.step, Duration::from_secs(60));
        assert_eq!(checkout.window_points(), 10_080);
        assert_eq!(checkout.horizon_steps(), 30);
        assert_eq!(checkout.model, "baseline");
        assert_eq!(checkout.policy.sizing, Sizing::Objective(0.03));
        assert_eq!(checkout.policy.max_replicas, 0);
        assert_eq!(checkout.stale_after, Duration::from_secs(300));
        assert_eq!(checkout.pod_start_delay, Duration::from_secs(180));
        assert_eq!(checkout.scale_down_stabilization, Duration::from_secs(300));
        assert!(checkout.reactive_floor);
        // The scaler's window follows the pods' start-up.
        assert_eq!(checkout.lead_steps(), 3);
        assert_eq!(
            checkout.replay(),
            crate::sizing::Replay {
                delay_steps: 3,
                stabilization_steps: 5,
                reactive_floor: true,
                target_per_pod: Some(50.0),
            }
        );
    }

    #[test]
    fn every_setting_is_read() {
        let search = &parse_file(TWO).unwrap()[1];
        assert_eq!(search.metric, "rps");
        assert_eq!(search.step_seconds(), 300);
        assert_eq!(search.window_points(), 4_032);
        assert_eq!(search.horizon_steps(), 12);
        assert_eq!(search.interval, Duration::from_secs(30));
        // 7 minutes at 5-minute steps: pods are asked for two steps ahead.
        assert_eq!(search.replay().delay_steps, 2);
        assert_eq!(search.lead_time, Duration::from_secs(600));
        assert!(!search.reactive_floor);
        assert_eq!(
            search.params,
            vec![("ic".into(), "bic".into()), ("order".into(), "auto".into())]
        );
        assert_eq!(
            search.policy,
            CapacityPolicy {
                target_per_pod: 200.5,
                sizing: Sizing::Quantile(0.9),
                min_replicas: 2,
                max_replicas: 40,
                up_max_factor: 3.0,
                down_max_percent: 20.0,
                prewarm_steps: 3,
            }
        );
    }

    #[test]
    fn auto_takes_candidates_and_fracast_a_refresh() {
        let w = one("model = \"auto\"\ncandidates = [\"-fracast\", \"models/mine.wasm\"]").unwrap();
        assert_eq!(w[0].candidates, ["-fracast", "models/mine.wasm"]);
        // Auto forecasts every half horizon (30 minutes by default).
        assert_eq!(w[0].refresh, Duration::from_secs(900));
        let w = one("model = \"fracast\"\nrefresh = \"5m\"").unwrap();
        assert_eq!(w[0].refresh, Duration::from_secs(300));
        assert_eq!(w[0].model_horizon_steps(), 34);
    }

    #[test]
    fn workloads_refresh_on_phases_spread_over_the_spacing() {
        let phases: Vec<i64> = (0..60)
            .map(|i| {
                let mut w = one("").unwrap().remove(0);
                w.name = format!("w{i}");
                w.phase_seconds()
            })
            .collect();
        // Whole minutes below the spacing of 15 (half the default horizon).
        assert!(phases.iter().all(|p| p % 60 == 0 && (0..900).contains(p)));
        let distinct: std::collections::BTreeSet<_> = phases.iter().collect();
        assert!(distinct.len() >= 10, "{phases:?}");
        // Staggers spread the costly candidates' turns as evenly (arima's
        // every fourth refresh), and within each phase too.
        let turns = |filter: &dyn Fn(i64) -> bool| {
            let mut counts = [0usize; 4];
            for i in 0..400 {
                let mut w = one("").unwrap().remove(0);
                w.name = format!("w{i}");
                if filter(w.phase_seconds()) {
                    counts[(w.stagger() % 4) as usize] += 1;
                }
            }
            counts
        };
        assert!(
            turns(&|_| true).iter().all(|&c| c >= 70),
            "{:?}",
            turns(&|_| true)
        );
        assert!(
            turns(&|p| p == 0).iter().all(|&c| c >= 2),
            "{:?}",
            turns(&|p| p == 0)
        );
        // The same name, the same phase, build after build (FNV-1a of
        // "checkout" is 3 modulo 15).
        let mut w = one("").unwrap().remove(0);
        w.name = "checkout".into();
        assert_eq!(w.phase_seconds(), 180);
    }

    fn one(extra: &str) -> Result<Vec<WorkloadConfig>, ConfigError> {
        parse_file(&format!(
            "[[workload]]\nname = \"w\"\nprom-query = \"up\"\ntarget-per-pod = 10\n{extra}"
        ))
    }

    #[test]
    fn nonsense_is_refused_naming_the_setting() {
        let cases = [
            ("step = \"0s\"", "step"),
            ("step = \"1h\"\nhorizon = \"30m\"", "step"),
            ("step = \"soon\"", "step"),
            ("step = \"1500ms\"", "step"),
            ("window = \"1m\"", "window"),
            ("min = 5\nmax = 3", "min"),
            ("headroom = 0.5", "headroom"),
            ("quantile-level = 1.5", "quantile-level"),
            ("down-max-percent = 150", "down-max-percent"),
            ("max-forecast-ratio = 0.5", "max-forecast-ratio"),
            ("max-forecast-ratio = inf", "max-forecast-ratio"),
            ("lead-time = \"2h\"", "lead-time"),
            ("lead-time = \"30s\"", "lead-time"),
            ("stale-after = \"0s\"", "stale-after"),
            ("target-shortfall = \"2\"", "target-shortfall"),
            ("target-shortfall = 0.7", "target-shortfall"),
            ("pod-start-delay = \"30m\"", "pod-start-delay"),
            ("refresh = \"1h\"", "refresh"),
            ("candidates = [\"mstl\"]", "candidates"),
            (
                "scale-down-stabilization = \"soon\"",
                "scale-down-stabilization",
            ),
            ("stale-after = \"90s\"", "stale-after"),
            ("step = \"1s\"\nwindow = \"1w\"", "window"),
            (
                "step = \"1s\"\nwindow = \"1h\"\nhorizon = \"1d\"",
                "horizon",
            ),
        ];
        for (extra, setting) in cases {
            match one(extra) {
                Err(ConfigError::Invalid {
                    workload,
                    setting: s,
                    ..
                }) => {
                    assert_eq!((workload.as_str(), s), ("w", setting), "{extra}");
                }
                other => panic!("{extra}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_keys_duplicates_and_empty_files_are_refused() {
        let err = one("target-per-pods = 3").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Parse(m) if m.contains("target-per-pods")),
            "{err}"
        );
        let twice = format!(
            "{TWO}\n[[workload]]\nname = \"search\"\nprom-query = \"up\"\ntarget-per-pod = 1\n"
        );
        assert_eq!(
            parse_file(&twice),
            Err(ConfigError::Duplicate("search".into()))
        );
        assert_eq!(parse_file("workload = []"), Err(ConfigError::NoWorkloads));
        assert!(matches!(parse_file(""), Err(ConfigError::Parse(_))));
        let err =
            parse_file("[[workload]]\nname = \"a b\"\nprom-query = \"up\"\ntarget-per-pod = 1\n");
        assert!(matches!(
            err,
            Err(ConfigError::Invalid {
                setting: "name",
                ..
            })
        ));
    }
}
