//! What the offline commands print: a forecast (JSON or CSV) and a model's
//! description (JSON or text). Backtest reports are printed by
//! [`crate::backtest::report`].

use std::io::Write;

use serde::Serialize;

use crate::backtest::report::ModelRef;
use crate::model::{Forecast, ForecastRequest, ModelInfo};
use crate::shadow::Selection;
use crate::sizing::SizingChoice;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ForecastOutput<'a> {
    model: ModelRef<'a>,
    /// Time of `values[0]`: one step after the last input point.
    start: String,
    step_seconds: u32,
    horizon: u32,
    values: &'a [f64],
    quantiles: Vec<BandOutput<'a>>,
    /// The candidates' recent errors, which one served, and whether the
    /// bands are calibrated.
    selection: Selection,
    /// How pods would be sized, and the load each step is sized on.
    sizing: &'a Sized,
}

/// How a forecast is sized: the rule and level, and per step the load the
/// policy sizes pods on (`ceil(load / target-per-pod)` replicas).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sized {
    #[serde(flatten)]
    pub choice: SizingChoice,
    /// The load one pod serves, on which the level was chosen.
    pub target_per_pod: f64,
    pub loads: Vec<f64>,
}

#[derive(Serialize)]
struct BandOutput<'a> {
    level: f64,
    values: &'a [f64],
}

/// `forecast` as JSON: the model, the time of the first value, the values,
/// the bands and the shadow evaluation behind them.
pub fn write_forecast_json(
    out: &mut impl Write,
    info: &ModelInfo,
    request: &ForecastRequest,
    forecast: &Forecast,
    selection: Selection,
    sized: Sized,
) -> std::io::Result<()> {
    let first_time = request.history.time_of(request.history.len());
    let output = forecast_output(info, request, forecast, first_time, selection, &sized);
    serde_json::to_writer_pretty(&mut *out, &output)?;
    writeln!(out)
}

/// `forecast` as CSV: a row per step, a column per band, and the load the
/// policy sizes on.
pub fn write_forecast_csv(
    out: &mut impl Write,
    request: &ForecastRequest,
    forecast: &Forecast,
    sized: &Sized,
) -> std::io::Result<()> {
    let first_time = request.history.time_of(request.history.len());
    write!(out, "timestamp,value")?;
    for band in &forecast.quantiles {
        write!(out, ",q{}", band.level)?;
    }
    writeln!(out, ",sizing_load")?;
    for (i, v) in forecast.values.iter().enumerate() {
        let t = first_time + i as i64 * i64::from(request.history.step_seconds);
        write!(out, "{},{v}", rfc3339(t))?;
        for band in &forecast.quantiles {
            write!(out, ",{}", band.values[i])?;
        }
        writeln!(out, ",{}", sized.loads[i])?;
    }
    Ok(())
}

fn forecast_output<'a>(
    info: &'a ModelInfo,
    request: &ForecastRequest,
    forecast: &'a Forecast,
    first_time: i64,
    selection: Selection,
    sizing: &'a Sized,
) -> ForecastOutput<'a> {
    ForecastOutput {
        model: ModelRef::of(info),
        start: rfc3339(first_time),
        step_seconds: request.history.step_seconds,
        horizon: request.horizon,
        values: &forecast.values,
        quantiles: forecast
            .quantiles
            .iter()
            .map(|b| BandOutput {
                level: b.level,
                values: &b.values,
            })
            .collect(),
        selection,
        sizing,
    }
}

fn rfc3339(unix_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(unix_seconds, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| unix_seconds.to_string())
}

/// `model inspect` as JSON.
pub fn write_model_json(out: &mut impl Write, info: &ModelInfo) -> std::io::Result<()> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Param<'a> {
        name: &'a str,
        default: &'a str,
        description: &'a str,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Info<'a> {
        name: &'a str,
        version: &'a str,
        description: &'a str,
        min_history: u32,
        params: Vec<Param<'a>>,
        world: &'static str,
    }
    let output = Info {
        name: &info.name,
        version: &info.version,
        description: &info.description,
        min_history: info.min_history,
        params: info
            .params
            .iter()
            .map(|p| Param {
                name: &p.name,
                default: &p.default_value,
                description: &p.description,
            })
            .collect(),
        world: crate::model::runtime::WORLD,
    };
    serde_json::to_writer_pretty(&mut *out, &output)?;
    writeln!(out)
}

/// `model inspect` as text.
pub fn write_model_text(out: &mut impl Write, info: &ModelInfo) -> std::io::Result<()> {
    writeln!(out, "name:        {}", info.name)?;
    writeln!(out, "version:     {}", info.version)?;
    writeln!(out, "description: {}", info.description)?;
    let plural = if info.min_history == 1 { "" } else { "s" };
    writeln!(
        out,
        "min history: {} observed point{plural}",
        info.min_history
    )?;
    writeln!(out, "world:       {}", crate::model::runtime::WORLD)?;
    if info.params.is_empty() {
        writeln!(out, "parameters:  none")?;
    } else {
        writeln!(out, "parameters:")?;
        for p in &info.params {
            writeln!(
                out,
                "  {} (default `{}`): {}",
                p.name, p.default_value, p.description
            )?;
        }
    }
    Ok(())
}
