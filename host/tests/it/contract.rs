//! One contract, run over every model component through the real runtime:
//! the built-in models and the example custom model.

use kedastral::model::{
    ForecastRequest, LoadedModel, ModelCallError, ModelError, ModelSource, Series,
};

use crate::support::{self, daily_series, nasa_tail};

fn models() -> Vec<LoadedModel> {
    let runtime = support::runtime();
    let mut sources: Vec<ModelSource> = kedastral::model::source::BUILTINS
        .iter()
        .map(|(name, _)| ModelSource::parse(name))
        .collect();
    sources.push(ModelSource::File(support::fixture(
        "kedastral-example-window",
    )));
    sources
        .iter()
        .map(|s| {
            runtime
                .load(s)
                .unwrap_or_else(|e| panic!("loading {s}: {e}"))
        })
        .collect()
}

const LEVELS: [f64; 5] = [0.05, 0.1, 0.5, 0.9, 0.95];

fn histories() -> Vec<(&'static str, Series)> {
    let mut gappy = daily_series(3, 300, 7);
    for i in (10..gappy.values.len()).step_by(17) {
        gappy.values[i] = f64::NAN;
    }
    vec![
        ("daily 5m", daily_series(3, 300, 1)),
        ("daily 7m", daily_series(3, 420, 2)),
        ("nasa 1m", nasa_tail(10_080)),
        ("gappy", gappy),
        ("constant", Series::new(0, 60, vec![5.0; 500])),
    ]
}

#[test]
fn forecasts_have_the_horizon_finite_values_and_ordered_bands() {
    for model in models() {
        for (name, history) in histories() {
            for horizon in [1, 30, 200] {
                let request =
                    ForecastRequest::new(history.clone(), horizon).with_quantiles(LEVELS.to_vec());
                // The runtime validates the answer; Ok means it passed.
                let forecast = model.forecast(&request).unwrap_or_else(|e| {
                    panic!("{} on {name}, horizon {horizon}: {e}", model.label())
                });
                assert_eq!(forecast.values.len(), horizon as usize);
                assert_eq!(forecast.quantiles.len(), LEVELS.len());
                for pair in forecast.quantiles.windows(2) {
                    for (lo, hi) in pair[0].values.iter().zip(&pair[1].values) {
                        assert!(lo <= hi, "{} on {name}: bands out of order", model.label());
                    }
                }
            }
        }
    }
}

#[test]
fn forecasts_are_deterministic_across_calls() {
    for model in models() {
        let request = ForecastRequest::new(nasa_tail(3_000), 30).with_quantiles(vec![0.1, 0.9]);
        let a = model.forecast(&request).unwrap();
        let b = model.forecast(&request).unwrap();
        let c = model.forecast(&request).unwrap();
        assert_eq!(a, b, "{}: called twice, same request", model.label());
        assert_eq!(a, c, "{}: called a third time, same request", model.label());
    }
}

#[test]
fn short_history_forecasts_down_to_min_history_and_refuses_below() {
    for model in models() {
        let min = model.info().min_history as usize;
        for n in 0..min + 5 {
            let values: Vec<f64> = (0..n).map(|i| 10.0 + (i % 3) as f64).collect();
            let request =
                ForecastRequest::new(Series::new(0, 60, values), 10).with_quantiles(vec![0.1, 0.9]);
            match model.forecast(&request) {
                Ok(_) => assert!(
                    n >= min,
                    "{}: forecast from {n} < {min} points",
                    model.label()
                ),
                Err(ModelCallError::Model {
                    error: ModelError::InsufficientHistory { needed, got },
                    ..
                }) => {
                    assert!(
                        n < min,
                        "{}: refused {n} >= min_history {min} points",
                        model.label()
                    );
                    assert_eq!(got as usize, n);
                    assert!(needed as usize > n);
                }
                Err(e) => panic!("{} with {n} points: {e}", model.label()),
            }
        }
    }
}

#[test]
fn unknown_parameters_are_refused_by_every_model() {
    for model in models() {
        let request =
            ForecastRequest::new(daily_series(1, 300, 3), 5).with_param("no-such-param", "1");
        let err = model.forecast(&request).unwrap_err();
        assert!(
            matches!(&err, ModelCallError::Model { error: ModelError::InvalidInput(m), .. } if m.contains("no-such-param")),
            "{}: {err}",
            model.label()
        );
    }
}

#[test]
fn every_model_describes_itself() {
    for model in models() {
        let info = model.info();
        assert!(!info.name.is_empty() && !info.version.is_empty() && !info.description.is_empty());
        assert!(info.min_history >= 1, "{}", model.label());
        for p in &info.params {
            assert!(
                !p.description.is_empty(),
                "{}: param {} undocumented",
                model.label(),
                p.name
            );
        }
    }
}

#[test]
fn the_host_refuses_bad_requests_before_calling_the_model() {
    let model = &models()[0];
    let bad = [
        ForecastRequest::new(Series::new(0, 60, vec![1.0; 10]), 0),
        ForecastRequest::new(Series::new(0, 0, vec![1.0; 10]), 5),
        ForecastRequest::new(Series::new(0, 60, vec![1.0; 10]), 5).with_quantiles(vec![0.9, 0.1]),
        ForecastRequest::new(Series::new(0, 60, vec![1.0; 10]), 5).with_quantiles(vec![1.5]),
        ForecastRequest::new(Series::new(0, 60, vec![1.0, f64::INFINITY]), 5),
    ];
    for request in bad {
        let err = model.forecast(&request).unwrap_err();
        assert!(
            matches!(err, ModelCallError::InvalidRequest { .. }),
            "{err}"
        );
    }
}
