//! The built-in `fracast` component against the reference package, on the
//! golden cases of `guest-models/fracast/golden` (fracast 0.1.0 in PyTorch):
//! the same network as the model crate's own golden test, but compiled to
//! WebAssembly (with relaxed SIMD's fused multiply-add) and called through
//! the WIT interface as the forecaster calls it.

use kedastral::model::{ForecastRequest, ModelSource, Series};

use crate::support::{runtime, workspace};

/// As in the model crate: the largest difference from the reference, as a
/// share of the history's range.
const TOLERANCE: f64 = 1e-5;

/// The nine levels the network forecasts, asked for exactly.
const LEVELS: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

fn trace(relative: &str) -> Vec<f64> {
    let path = workspace().join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn the_component_matches_the_reference_on_every_golden_case() {
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("guest-models/fracast/golden/golden.json"))
            .unwrap(),
    )
    .unwrap();
    let model = runtime().load(&ModelSource::parse("fracast")).unwrap();
    let mut worst = 0.0f64;
    for case in golden["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let field = |key: &str| case[key].as_u64().unwrap() as usize;
        let mut history =
            trace(case["trace"].as_str().unwrap())[field("start")..field("end")].to_vec();
        if field("missingEvery") > 0 {
            for v in history.iter_mut().step_by(field("missingEvery")) {
                *v = f64::NAN;
            }
        }
        let finite = history.iter().copied().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let span = (hi - lo).max(1e-9);
        let request = ForecastRequest::new(Series::new(0, 60, history), field("horizon") as u32)
            .with_quantiles(LEVELS.to_vec());
        let forecast = model
            .forecast(&request)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = case["quantiles"].as_array().unwrap();
        assert_eq!(forecast.values.len(), want.len(), "{name}");
        for (band, level) in forecast.quantiles.iter().zip(LEVELS) {
            assert_eq!(band.level, level, "{name}");
        }
        for (step, row) in want.iter().enumerate() {
            let mut row: Vec<f64> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            // The point forecast is the network's median; the bands are its
            // nine quantiles sorted, so they never cross where the
            // network's do.
            let mut pairs = vec![(forecast.values[step], row[4])];
            row.sort_by(f64::total_cmp);
            for (band, reference) in forecast.quantiles.iter().zip(row) {
                pairs.push((band.values[step], reference));
            }
            for (got, reference) in pairs {
                let error = (got - reference).abs() / span;
                worst = worst.max(error);
                assert!(
                    error < TOLERANCE,
                    "{name} step {step}: {got} against the reference's {reference} ({error:e} of the range)"
                );
            }
        }
    }
    eprintln!("worst difference: {worst:e} of the history's range");
}
