//! Every point forecast a model makes at the shadow origins of a trace: one
//! line per origin, `history length,value,value,...` (or `history
//! length,ERR message`), for `scripts/tune_auto.py` to replay auto's
//! weighting on without calling the models again.
//!
//! ```sh
//! cargo run --release --example shadow_forecasts -- TRACE.csv OUT MODEL [SPACING]
//! ```
//!
//! `MODEL` is a built-in name or a component's path; `values` writes the
//! regularised history instead (`start,step` then one value per line).
//! Origins fall every `SPACING` steps (15, the default horizon's half) in
//! Unix time, as the shadow evaluation's do, each with at most a week of
//! 1-minute history before it, and forecast 30 steps.

use std::io::Write;
use std::path::Path;

use kedastral::model::cache::ComponentCache;
use kedastral::model::{ForecastRequest, ModelRuntime, ModelSource, RuntimeLimits};

const HORIZON: u32 = 30;
const MAX_HISTORY: usize = 10_080;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [trace, out, model, rest @ ..] = &args[..] else {
        anyhow::bail!("usage: shadow_forecasts TRACE.csv OUT MODEL [SPACING]");
    };
    let spacing: i64 = rest.first().map_or(Ok(15), |s| s.parse())?;
    let series = kedastral::history::load_csv(Path::new(trace), None)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(out)?);
    if model == "values" {
        writeln!(out, "{},{}", series.start_unix_seconds, series.step_seconds)?;
        for v in &series.values {
            writeln!(out, "{v}")?;
        }
        return Ok(());
    }
    let runtime = ModelRuntime::new(
        RuntimeLimits {
            memory_bytes: 512 << 20,
            timeout: std::time::Duration::from_secs(20),
        },
        ComponentCache::new(ComponentCache::default_dir()),
    )?;
    let model = runtime.load(&ModelSource::parse(model))?;
    let step = i64::from(series.step_seconds);
    let grid = step * spacing;
    let end = series.time_of(series.len());
    let mut time = (series.start_unix_seconds.div_euclid(grid) + 1) * grid;
    while time < end {
        let index = ((time - series.start_unix_seconds) / step) as usize;
        if index >= 2 {
            let request = ForecastRequest::new(
                series.slice(index.saturating_sub(MAX_HISTORY), index),
                HORIZON,
            );
            match model.forecast(&request) {
                Ok(f) => {
                    let values: Vec<String> = f.values.iter().map(f64::to_string).collect();
                    writeln!(out, "{index},{}", values.join(","))?;
                }
                Err(e) => writeln!(out, "{index},ERR {}", e.to_string().replace(',', ";"))?,
            }
        }
        time += grid;
    }
    Ok(())
}
