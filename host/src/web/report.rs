//! `kedastral backtest --report FILE`: the backtest as one self-contained
//! HTML file (styles inline, charts as SVG, nothing fetched): accuracy
//! beside seasonal naive, forecast against actual at a few origins, the
//! capacity the predictive and reactive policies had ready against the
//! load, and the trade-off between shortfall and extra pod-time.

use maud::{Markup, html};

use crate::backtest::BacktestReport;
use crate::backtest::report::describe_sizing;
use crate::model::{ModelInfo, Series as History};
use crate::sizing::show_share;

use super::chart::{Chart, Series, Shape, XAxis, show_number};
use super::{layout, show_percent, show_unix};

/// Origins drawn one by one.
const SHOWN_ORIGINS: usize = 4;

/// Steps of history drawn before an origin's forecast, in horizons.
const LEAD_IN_HORIZONS: usize = 2;

fn time_of(series: &History, index: usize) -> f64 {
    (series.start_unix_seconds + index as i64 * i64::from(series.step_seconds)) as f64
}

/// The whole report; `trace` names the history (a file's name).
pub fn backtest(trace: &str, info: &ModelInfo, series: &History, r: &BacktestReport) -> Markup {
    let c = &r.capacity;
    let title = format!("Kedastral backtest: {} on {trace}", info.name);
    let mase = |m: Option<f64>| m.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
    let body = html! {
        header.top { span.brand { "Kedastral" } span { "backtest report" } span { "version " (env!("CARGO_PKG_VERSION")) } }
        main {
            h1 { (info.name) " " (info.version) " on " (trace) }
            p.muted {
                (r.origins) " origins (" (r.failed_origins) " failed), horizon " (r.horizon) " steps of "
                (r.step_seconds) " s, every " (r.stride) " steps; history from "
                (show_unix(series.start_unix_seconds)) ", " (series.values.len()) " points."
            }
            @if let Some(f) = &r.first_failure { p.error { "First failure: " (f) } }
            div.cards {
                div.card { div.k { "MASE" } div.v data-mase { (mase(r.model.mase)) } }
                div.card { div.k { "seasonal naive MASE" } div.v { (mase(r.seasonal_naive.mase)) } }
                div.card { div.k { "short of capacity, predictive" } div.v { (show_percent(c.predictive.under_provisioned_share)) } }
                div.card { div.k { "short of capacity, reactive" } div.v { (show_percent(c.reactive.under_provisioned_share)) } }
                div.card { div.k { "pod-time over oracle, predictive" } div.v { (show_percent(c.predictive.pod_time_over_oracle)) } }
                div.card { div.k { "pod-time over oracle, reactive" } div.v { (show_percent(c.reactive.pod_time_over_oracle)) } }
            }
            h2 { "Accuracy" }
            table id="accuracy" {
                thead { tr { th { "" } th.num { "MAE" } th.num { "RMSE" } th.num { "MASE" } th.num { "sMAPE" } th.num { "points" } } }
                tbody {
                    @for (name, a) in [(info.name.as_str(), &r.model), ("seasonal naive", &r.seasonal_naive)] {
                        tr {
                            td { (name) } td.num { (show_number(a.mae)) } td.num { (show_number(a.rmse)) }
                            td.num { (mase(a.mase)) } td.num { (a.smape.map_or("n/a".to_owned(), show_percent)) } td.num { (a.points) }
                        }
                    }
                }
            }
            p.muted {
                "Interval coverage: "
                @for (i, cov) in r.coverage.iter().enumerate() {
                    @if i > 0 { ", " }
                    (show_number(cov.level * 100.0)) " % interval held " (show_percent(cov.coverage))
                }
                "."
            }
            h2 { "Forecast against actual" }
            @for chart in origin_charts(series, r) { (chart.render()) }
            h2 { "Capacity over time" }
            p.muted {
                "Pods sized on " (describe_sizing(&c.sizing)) ", " (show_number(c.target_per_pod)) " per pod, ready "
                (c.pod_start_delay_steps) " steps after asking, scale-in after " (c.stabilization_steps)
                " steps, reactive floor " @if c.reactive_floor { "on" } @else { "off" } ". "
                "Capacity is the ready pods times the load one pod serves."
            }
            (capacity_chart(series, r).render())
            table id="capacity" {
                thead { tr { th { "" } th.num { "short of capacity" } th.num { "pod-time over oracle" } th.num { "unserved load" } th.num { "changes / day" } } }
                tbody {
                    @for (name, o) in [("predictive", &c.predictive), ("reactive (last value)", &c.reactive)] {
                        tr {
                            td { (name) } td.num { (show_percent(o.under_provisioned_share)) }
                            td.num { (show_percent(o.pod_time_over_oracle)) } td.num { (show_percent(o.unserved_load_share)) }
                            td.num { (show_number(o.scaling_changes_per_day)) }
                        }
                    }
                }
            }
            h2 { "Trade-off: shortfall against extra pod-time" }
            (tradeoff_chart(r).render())
            table id="tradeoff" {
                thead { tr { th { "sized to" } th.num { "short of capacity" } th.num { "pod-time over oracle" } th.num { "unserved load" } th.num { "changes / day" } } }
                tbody {
                    @for p in &c.tradeoff {
                        tr {
                            td { (point_name(p)) } td.num { (show_percent(p.under_provisioned_share)) }
                            td.num { (show_percent(p.pod_time_over_oracle)) } td.num { (show_percent(p.unserved_load_share)) }
                            td.num { (show_number(p.scaling_changes_per_day)) }
                        }
                    }
                }
            }
            @if let Some(sel) = &r.selection {
                h2 { "Candidates at the last origin" }
                table id="candidates" {
                    thead { tr { th { "candidate" } th.num { "MAE" } th.num { "recent MAE" } th.num { "weight" } th.num { "failed origins" } } }
                    tbody {
                        @for cand in &sel.candidates {
                            tr {
                                td { (cand.name) @if cand.name == sel.chosen { " (served)" } }
                                td.num { (cand.mae.map_or("-".to_owned(), show_number)) }
                                td.num { (cand.recent_mae.map_or("-".to_owned(), show_number)) }
                                td.num { (cand.weight.map_or("-".to_owned(), show_percent)) }
                                td.num { (cand.failures) }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(&title, None, body)
}

fn point_name(p: &crate::backtest::TradeoffPoint) -> String {
    match (p.target_shortfall, p.level) {
        (Some(t), _) => format!("objective {}", show_share(t)),
        (None, Some(q)) => format!("{} % quantile", show_number(q * 100.0)),
        (None, None) => "headroom".to_owned(),
    }
}

/// A few origins spread over the run, each with the history before it.
fn origin_charts(series: &History, r: &BacktestReport) -> Vec<Chart> {
    let forecasts = &r.trace.forecasts;
    if forecasts.is_empty() {
        return Vec::new();
    }
    let shown = SHOWN_ORIGINS.min(forecasts.len());
    let picks = (0..shown).map(|k| {
        // Evenly from the first to the last.
        let i = if shown == 1 {
            0
        } else {
            k * (forecasts.len() - 1) / (shown - 1)
        };
        &forecasts[i]
    });
    let h = r.horizon as usize;
    picks
        .enumerate()
        .map(|(k, f)| {
            let from = f.origin.saturating_sub(LEAD_IN_HORIZONS * h);
            let to = (f.origin + h).min(series.values.len());
            let actual = (from..to).map(|i| (time_of(series, i), series.values[i]));
            let at = |j: usize| time_of(series, f.origin + j);
            let mut chart = Chart::new(
                ORIGIN_IDS[k],
                format!("From {}", show_unix(time_of(series, f.origin) as i64)),
                "value",
            )
            .from_zero(false);
            if let Some((level, lo, hi)) = &f.band {
                let band = (0..f.values.len()).map(|j| (at(j), lo[j], hi[j]));
                chart = chart.series(
                    Series::new(
                        "band",
                        format!("{} % interval", show_number(level * 100.0)),
                        1,
                    )
                    .band(band),
                );
            }
            chart
                .series(Series::new("actual", "actual", 0).points(actual))
                .series(
                    Series::new("forecast", "forecast", 1)
                        .points(f.values.iter().enumerate().map(|(j, &v)| (at(j), v))),
                )
                .mark(at(0), "origin")
        })
        .collect()
}

/// `data-chart` of each origin's chart.
const ORIGIN_IDS: [&str; SHOWN_ORIGINS] = ["origin-1", "origin-2", "origin-3", "origin-4"];

fn capacity_chart(series: &History, r: &BacktestReport) -> Chart {
    let target = r.capacity.target_per_pod;
    let steps: Vec<_> = r.trace.steps.iter().filter(|s| s.counted).collect();
    let t = |i: usize| time_of(series, i);
    Chart::new(
        "capacity",
        "Load and the capacity each policy had ready",
        "load",
    )
    .series(Series::new("load", "load", 0).points(steps.iter().map(|s| (t(s.index), s.actual))))
    .series(
        Series::new("predictive", "predictive capacity", 2)
            .shape(Shape::Step)
            .points(steps.iter().map(|s| (t(s.index), s.predictive * target))),
    )
    .series(
        Series::new("reactive", "reactive capacity", 4)
            .shape(Shape::Step)
            .dashed()
            .points(steps.iter().map(|s| (t(s.index), s.reactive * target))),
    )
}

fn tradeoff_chart(r: &BacktestReport) -> Chart {
    let c = &r.capacity;
    let percent = |p: &crate::backtest::TradeoffPoint| {
        (
            p.pod_time_over_oracle * 100.0,
            p.under_provisioned_share * 100.0,
        )
    };
    let objectives: Vec<_> = c
        .tradeoff
        .iter()
        .filter(|p| p.target_shortfall.is_some())
        .map(percent)
        .collect();
    let levels: Vec<_> = c
        .tradeoff
        .iter()
        .filter(|p| p.target_shortfall.is_none())
        .map(percent)
        .collect();
    let point = |o: &crate::backtest::CapacityOutcome| {
        [(
            o.pod_time_over_oracle * 100.0,
            o.under_provisioned_share * 100.0,
        )]
    };
    Chart::new(
        "tradeoff",
        "Each sizing's shortfall against its extra pod-time",
        "short of capacity, %",
    )
    .x_axis(XAxis::Value("pod-time over oracle, %".into()))
    .series(Series::new("objectives", "objectives", 2).points(objectives.clone()))
    .series(
        Series::new("objective-points", "objective", 2)
            .shape(Shape::Points)
            .points(objectives),
    )
    .series(
        Series::new("levels", "fixed quantile levels", 3)
            .dashed()
            .points(levels.clone()),
    )
    .series(
        Series::new("level-points", "fixed level", 3)
            .shape(Shape::Points)
            .points(levels),
    )
    .series(
        Series::new("predictive", "this run's sizing", 0)
            .shape(Shape::Points)
            .points(point(&c.predictive)),
    )
    .series(
        Series::new("reactive", "reactive", 4)
            .shape(Shape::Points)
            .points(point(&c.reactive)),
    )
}
