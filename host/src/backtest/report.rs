//! What a backtest says, over one history or a folder of them: the
//! settings each history fills in, the aggregate over a folder, and the
//! reports as text and JSON.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use super::{Answer, BacktestConfig, BacktestError, BacktestReport, Coverage, SizingEvidence};
use crate::candidates::Candidates;
use crate::history;
use crate::model::{Guard, ModelInfo, Series};
use crate::shadow::{Selection, ShadowConfig};
use crate::sizing::{self, Replay, Sizing};

/// A backtest's settings before the history is known: the target per pod,
/// the stride and the pod-start delay in steps are filled in per history, so
/// traces of any scale and step compare.
#[derive(Debug, Clone)]
pub struct Plan {
    pub horizon: u32,
    pub origins: usize,
    /// Steps between origins [default: the steps in 5 minutes, at least 1].
    pub stride: Option<usize>,
    pub max_history: usize,
    pub intervals: Vec<f64>,
    /// Load one pod serves [default: [`default_target_per_pod`]].
    pub target_per_pod: Option<f64>,
    pub sizing: Sizing,
    pub pod_start_delay: Duration,
    /// How long the HPA keeps the most replicas asked for before scaling in.
    pub stabilization: Duration,
    pub reactive_floor: bool,
    pub params: Vec<(String, String)>,
    /// Bands calibrated on the shadow evaluation's errors.
    pub calibrate: bool,
}

impl Plan {
    /// The configuration for `series`.
    pub fn config_for(&self, series: &Series) -> BacktestConfig {
        let step = u64::from(series.step_seconds.max(1));
        BacktestConfig {
            horizon: self.horizon,
            origins: self.origins,
            stride: self.stride.unwrap_or_else(|| (300 / step).max(1) as usize),
            max_history: self.max_history,
            intervals: self.intervals.clone(),
            target_per_pod: self
                .target_per_pod
                .unwrap_or_else(|| default_target_per_pod(series)),
            sizing: self.sizing,
            pod_start_delay: self.pod_start_delay.as_secs().div_ceil(step) as usize,
            stabilization_steps: (self.stabilization.as_secs() / step) as usize,
            reactive_floor: self.reactive_floor,
            params: self.params.clone(),
        }
    }

    /// The shadow evaluation a forecast at each origin runs, replaying
    /// sizing as `config` runs pods.
    pub fn shadow(&self, config: &BacktestConfig) -> ShadowConfig {
        let mut shadow = ShadowConfig::for_horizon(self.horizon, self.max_history);
        shadow.calibrate = self.calibrate;
        shadow.sizing = Some(Replay {
            delay_steps: config.pod_start_delay,
            stabilization_steps: config.stabilization_steps,
            reactive_floor: config.reactive_floor,
            target_per_pod: Some(config.target_per_pod),
        });
        shadow
    }

    /// Backtests `candidates` on `series` through `guards`, which a folder's
    /// traces share: a model that faults on one trace is not called again.
    pub fn run(
        &self,
        series: &Series,
        candidates: &Candidates,
        guards: &mut [Guard],
    ) -> Result<BacktestReport, BacktestError> {
        let config = self.config_for(series);
        let mut offline = candidates.offline(self.shadow(&config), guards);
        let min_history = candidates.info.min_history as usize;
        let mut report = super::run(series, &config, min_history, |r| {
            let forecast = offline.forecast(r)?;
            let shadow = &offline.shadow;
            let sizing = shadow.sizing_curve().map(|curve| SizingEvidence {
                curve: curve.clone(),
                bands: (0..sizing::LEVELS.len())
                    .filter_map(|l| shadow.sizing_band(l, &forecast.values))
                    .collect(),
            });
            Ok(Answer { forecast, sizing })
        })?;
        report.selection = Some(offline.shadow.selection());
        Ok(report)
    }
}

/// A tenth of the history's 95th percentile, so busy hours need about 10
/// pods: a sensible scale for a trace whose real pod capacity is unknown.
pub fn default_target_per_pod(series: &Series) -> f64 {
    let mut observed: Vec<f64> = series
        .values
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .collect();
    kedastral_model_sdk::stats::sort_finite(&mut observed);
    match kedastral_model_sdk::stats::quantile_sorted(&observed, 0.95) {
        Some(p95) if p95 > 0.0 => p95 / 10.0,
        _ => 1.0,
    }
}

/// The name and version a report is for.
#[derive(Serialize)]
pub struct ModelRef<'a> {
    pub name: &'a str,
    pub version: &'a str,
}

impl<'a> ModelRef<'a> {
    pub fn of(info: &'a ModelInfo) -> Self {
        Self {
            name: &info.name,
            version: &info.version,
        }
    }
}

/// One history's report as JSON.
#[derive(Serialize)]
pub struct Output<'a> {
    pub model: ModelRef<'a>,
    #[serde(flatten)]
    pub report: &'a BacktestReport,
}

impl Plan {
    /// Backtests `candidates` on every `*.csv` in `dir`, by name, with
    /// `step` seconds between points if given (else each file's median
    /// spacing). The traces share `guards`.
    pub fn run_folder(
        &self,
        dir: &Path,
        step: Option<u32>,
        candidates: &Candidates,
        guards: &mut [Guard],
    ) -> anyhow::Result<Vec<TraceReport>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("{}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            bail!("{}: no .csv files in it", dir.display());
        }
        let mut traces = Vec::with_capacity(paths.len());
        for path in &paths {
            let series = history::load_csv(path, step)?;
            let report = self
                .run(&series, candidates, guards)
                .with_context(|| format!("{}", path.display()))?;
            let trace = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            traces.push(TraceReport { trace, report });
        }
        Ok(traces)
    }
}

/// Per trace and over all of them: what a folder of histories says.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderReport<'a> {
    pub model: ModelRef<'a>,
    pub traces: Vec<TraceReport>,
    pub aggregate: Aggregate,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceReport {
    pub trace: String,
    #[serde(flatten)]
    pub report: BacktestReport,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Aggregate {
    pub traces: usize,
    /// Geometric mean over traces of the model's MASE.
    pub geometric_mean_mase: Option<f64>,
    /// Geometric mean over traces of MASE(model) / MASE(seasonal naive):
    /// below 1, the model beats seasonal naive on the typical trace.
    pub geometric_mean_mase_ratio: Option<f64>,
    /// Traces where the model's MASE is below seasonal naive's.
    pub beats_seasonal_naive: usize,
    /// Means over traces.
    pub mean_smape: Option<f64>,
    pub mean_coverage: Vec<Coverage>,
    pub predictive_under_provisioned_share: f64,
    pub reactive_under_provisioned_share: f64,
    pub predictive_over_provisioned_pod_minutes: f64,
    pub reactive_over_provisioned_pod_minutes: f64,
    /// Means over traces of pod-time over the oracle.
    pub predictive_pod_time_over_oracle: f64,
    pub reactive_pod_time_over_oracle: f64,
    /// The trace short of capacity most often under the predictive policy.
    pub worst_predictive_under_provisioned_share: f64,
}

fn geometric_mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let logs: Option<Vec<f64>> = values
        .map(|v| v.filter(|x| *x > 0.0).map(f64::ln))
        .collect();
    let logs = logs?;
    (!logs.is_empty()).then(|| (logs.iter().sum::<f64>() / logs.len() as f64).exp())
}

pub fn aggregate(traces: &[TraceReport]) -> Aggregate {
    let n = traces.len().max(1) as f64;
    let reports = || traces.iter().map(|t| &t.report);
    let smapes: Option<Vec<f64>> = reports().map(|r| r.model.smape).collect();
    let coverage = traces.first().map_or_else(Vec::new, |t| {
        t.report
            .coverage
            .iter()
            .enumerate()
            .map(|(i, c)| Coverage {
                level: c.level,
                coverage: reports().map(|r| r.coverage[i].coverage).sum::<f64>() / n,
            })
            .collect()
    });
    Aggregate {
        traces: traces.len(),
        geometric_mean_mase: geometric_mean(reports().map(|r| r.model.mase)),
        geometric_mean_mase_ratio: geometric_mean(
            reports().map(|r| r.model.mase.zip(r.seasonal_naive.mase).map(|(m, s)| m / s)),
        ),
        beats_seasonal_naive: reports()
            .filter(|r| r.model.mae < r.seasonal_naive.mae)
            .count(),
        mean_smape: smapes.map(|s| s.iter().sum::<f64>() / n),
        mean_coverage: coverage,
        predictive_under_provisioned_share: reports()
            .map(|r| r.capacity.predictive.under_provisioned_share)
            .sum::<f64>()
            / n,
        reactive_under_provisioned_share: reports()
            .map(|r| r.capacity.reactive.under_provisioned_share)
            .sum::<f64>()
            / n,
        predictive_over_provisioned_pod_minutes: reports()
            .map(|r| r.capacity.predictive.over_provisioned_pod_minutes)
            .sum(),
        reactive_over_provisioned_pod_minutes: reports()
            .map(|r| r.capacity.reactive.over_provisioned_pod_minutes)
            .sum(),
        predictive_pod_time_over_oracle: reports()
            .map(|r| r.capacity.predictive.pod_time_over_oracle)
            .sum::<f64>()
            / n,
        reactive_pod_time_over_oracle: reports()
            .map(|r| r.capacity.reactive.pod_time_over_oracle)
            .sum::<f64>()
            / n,
        worst_predictive_under_provisioned_share: reports()
            .map(|r| r.capacity.predictive.under_provisioned_share)
            .fold(0.0, f64::max),
    }
}

pub fn write_folder_text(
    out: &mut impl Write,
    info: &ModelInfo,
    traces: &[TraceReport],
    a: &Aggregate,
) -> std::io::Result<()> {
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("n/a".to_owned(), |v| format!("{v:.digits$}"));
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    writeln!(
        out,
        "model {} {} on {} traces\n",
        info.name, info.version, a.traces
    )?;
    writeln!(
        out,
        "{:<28}{:>8}{:>8}{:>8}{:>8}  {:<14}{:>17}{:>21}  top model",
        "trace", "MASE", "naive", "ratio", "sMAPE", "coverage", "under-prov p/r", "over oracle p/r",
    )?;
    for t in traces {
        let r = &t.report;
        let ratio = r.model.mase.zip(r.seasonal_naive.mase).map(|(m, s)| m / s);
        let coverage: Vec<String> = r.coverage.iter().map(|c| pct(c.coverage)).collect();
        let c = &r.capacity;
        writeln!(
            out,
            "{:<28}{:>8}{:>8}{:>8}{:>8}  {:<14}{:>17}{:>21}  {}",
            t.trace,
            opt(r.model.mase, 3),
            opt(r.seasonal_naive.mase, 3),
            opt(ratio, 3),
            r.model.smape.map_or("n/a".to_owned(), pct),
            coverage.join(" "),
            format!(
                "{} / {}",
                pct(c.predictive.under_provisioned_share),
                pct(c.reactive.under_provisioned_share)
            ),
            format!(
                "{} / {}",
                pct(c.predictive.pod_time_over_oracle),
                pct(c.reactive.pod_time_over_oracle)
            ),
            r.selection
                .as_ref()
                .map_or("", |s| s.leader.as_deref().unwrap_or(&s.chosen)),
        )?;
    }
    let coverage: Vec<String> = a.mean_coverage.iter().map(|c| pct(c.coverage)).collect();
    writeln!(
        out,
        "\naggregate: geometric mean MASE {}, of MASE / seasonal naive's {}; beats seasonal naive \
         on {} of {}; mean sMAPE {}; mean coverage {}; under-provisioned {} predictive (worst \
         trace {}), {} reactive; pod-time over the oracle {} predictive, {} reactive",
        opt(a.geometric_mean_mase, 3),
        opt(a.geometric_mean_mase_ratio, 3),
        a.beats_seasonal_naive,
        a.traces,
        a.mean_smape.map_or("n/a".to_owned(), pct),
        coverage.join(" / "),
        pct(a.predictive_under_provisioned_share),
        pct(a.worst_predictive_under_provisioned_share),
        pct(a.reactive_under_provisioned_share),
        pct(a.predictive_pod_time_over_oracle),
        pct(a.reactive_pod_time_over_oracle),
    )?;
    Ok(())
}

pub fn write_text(
    out: &mut impl Write,
    info: &ModelInfo,
    r: &BacktestReport,
) -> std::io::Result<()> {
    let mase = |m: Option<f64>| m.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
    writeln!(
        out,
        "model {} {}: {} origins ({} failed), horizon {} x {}s, stride {}, season {} steps",
        info.name,
        info.version,
        r.origins,
        r.failed_origins,
        r.horizon,
        r.step_seconds,
        r.stride,
        r.season_steps
    )?;
    if let Some(f) = &r.first_failure {
        writeln!(out, "first failure: {f}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "accuracy ({} points)     MAE          RMSE         MASE     sMAPE",
        r.model.points
    )?;
    for (name, a) in [
        (info.name.as_str(), &r.model),
        ("seasonal naive", &r.seasonal_naive),
    ] {
        writeln!(
            out,
            "  {name:<22} {:<12.4} {:<12.4} {:<8} {}",
            a.mae,
            a.rmse,
            mase(a.mase),
            a.smape
                .map_or("n/a".to_owned(), |v| format!("{:.1}%", v * 100.0))
        )?;
    }
    writeln!(out)?;
    writeln!(out, "interval coverage")?;
    for c in &r.coverage {
        writeln!(
            out,
            "  {:>3.0}% interval          {:.1}%",
            c.level * 100.0,
            c.coverage * 100.0
        )?;
    }
    writeln!(out)?;
    let c = &r.capacity;
    writeln!(
        out,
        "capacity: {} steps, {} per pod, pods sized on {}, ready {} steps after asking, \
         scale-in after {} steps, reactive floor {}",
        c.steps,
        c.target_per_pod,
        describe_sizing(&c.sizing),
        c.pod_start_delay_steps,
        c.stabilization_steps,
        if c.reactive_floor { "on" } else { "off" },
    )?;
    writeln!(
        out,
        "  {:<24}{:>19}{:>22}{:>16}{:>16}",
        "", "under-provisioned", "pod-time over oracle", "unserved load", "changes / day"
    )?;
    for (name, o) in [
        ("predictive", &c.predictive),
        ("reactive (last value)", &c.reactive),
    ] {
        writeln!(
            out,
            "  {name:<24}{:>18.1}%{:>21.1}%{:>15.2}%{:>16.1}",
            o.under_provisioned_share * 100.0,
            o.pod_time_over_oracle * 100.0,
            o.unserved_load_share * 100.0,
            o.scaling_changes_per_day
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "trade-off: what each objective or fixed level costs here"
    )?;
    for p in &c.tradeoff {
        let name = match (p.target_shortfall, p.level) {
            (Some(t), _) => format!("objective {}", sizing::show_share(t)),
            (None, Some(q)) => format!("level p{}", q * 100.0),
            (None, None) => "headroom".to_owned(),
        };
        writeln!(
            out,
            "  {name:<24}{:>18.1}%{:>21.1}%{:>15.2}%{:>16.1}",
            p.under_provisioned_share * 100.0,
            p.pod_time_over_oracle * 100.0,
            p.unserved_load_share * 100.0,
            p.scaling_changes_per_day
        )?;
    }
    if let Some(selection) = &r.selection {
        writeln!(out)?;
        write_selection(out, selection)?;
    }
    Ok(())
}

/// How the predictive policy sized pods, in a few words.
pub fn describe_sizing(s: &super::SizingReport) -> String {
    match (s.target_shortfall, s.level, s.headroom) {
        (Some(t), _, _) => {
            let used: Vec<String> = s
                .levels_used
                .iter()
                .map(|u| format!("p{} x{}", u.level * 100.0, u.origins))
                .collect();
            format!(
                "the level meeting a {} shortfall ({}; {} origins warming up on the point x {})",
                sizing::show_share(t),
                if used.is_empty() {
                    "none chosen".to_owned()
                } else {
                    used.join(", ")
                },
                s.warming_up_origins,
                sizing::WARM_UP_HEADROOM
            )
        }
        (None, Some(q), _) => format!("p{}", q * 100.0),
        (None, None, Some(h)) => format!("the point forecast x {h}"),
        (None, None, None) => "the point forecast".to_owned(),
    }
}

/// The shadow evaluation at the last origin: what served, what scored.
pub fn write_selection(out: &mut impl Write, s: &Selection) -> std::io::Result<()> {
    let scaling = match s.error_scaling {
        Some(0.0) => ", errors as they are",
        Some(1.0) => ", errors in proportion to the forecast",
        Some(_) => ", errors scaled by the forecast's square root",
        None => "",
    };
    let serving = match &s.leader {
        Some(leader) => format!(
            "{} (weighted most: {leader}, which changed {} times)",
            s.chosen, s.switches
        ),
        None => s.chosen.clone(),
    };
    writeln!(
        out,
        "at the last origin: serving {serving}, bands {}{scaling}; mean absolute error over \
         {} shadow origins:",
        if s.calibrated {
            "calibrated"
        } else {
            "the model's own"
        },
        s.judged_origins
    )?;
    for c in &s.candidates {
        let mae = c.mae.map_or("n/a".to_owned(), |m| format!("{m:.4}"));
        let failed = if c.failures > 0 {
            format!(" ({} failed)", c.failures)
        } else {
            String::new()
        };
        let weight = c
            .weight
            .map_or(String::new(), |w| format!(", weight {:.0} %", w * 100.0));
        writeln!(out, "  {:<24}{mae}{weight}{failed}", c.name)?;
    }
    Ok(())
}
