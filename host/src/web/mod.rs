//! The web view, rendered on the server: no script, nothing fetched from
//! elsewhere, every name escaped (maud escapes whatever it is given), links
//! relative so it works behind `kubectl port-forward` or a path prefix.
//!
//! - [`overview`]: `GET /`, every workload at a glance;
//! - [`workload`]: `GET /workload?name=W`, why this number: history against
//!   the forecasts made at the lead time, the forecast and its bands, the
//!   plan, the decision in words ([`explain`]), the candidates;
//! - [`chart`]: the SVG charts, also drawn by the backtest's report
//!   ([`report`]).
//!
//! Pages refresh themselves with a `<meta>` refresh; a Content-Security-Policy
//! forbids scripts and any fetch, so even a name that slipped past escaping
//! could not run.

pub mod chart;
pub mod explain;
pub mod report;
#[doc(hidden)]
pub mod sample;

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::capacity::replicas_for_load;
use crate::shadow::COMBINED;
use crate::store::{Failure, Snapshot, WorkloadView};
use crate::trail::Trail;
use chart::{Chart, Series, Shape, show_number};

/// The header every page is sent with: no script, no fetch, no frame.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Characters of a failure's message shown in the overview; the workload
/// page shows the whole (already bounded) message.
const MESSAGE_CUT: usize = 200;

const STYLE: &str = r#"
:root { color-scheme: light; --fg: #1c2128; --muted: #57606a; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); margin: 0; }
header.top { background: #0d1117; color: #f0f6fc; padding: 10px 24px; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
header.top a { color: #9ecbff; }
header.top .brand { font-weight: 700; font-size: 16px; }
main { padding: 16px 24px 40px; max-width: 1280px; }
h1 { font-size: 22px; margin: 8px 0 4px; word-break: break-all; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.muted { color: var(--muted); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.pill { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.fresh { background: #dafbe1; color: #116329; }
.stale { background: #ffebe9; color: #a40e26; }
.waiting { background: #fff8c5; color: #7d4e00; }
.answer { font-size: 30px; font-weight: 700; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 12px 0; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 150px; }
.card .k { color: var(--muted); font-size: 12px; }
.card .v { font-size: 20px; font-weight: 600; }
.card .v.small { font-size: 14px; font-weight: 400; }
ul.why { padding-left: 20px; } ul.why li { margin: 3px 0; }
.error { color: #a40e26; word-break: break-word; }
figure.chart { margin: 12px 0 20px; }
figure.chart figcaption { font-weight: 600; margin-bottom: 4px; }
figure.chart svg { width: 100%; height: auto; background: #fff; border: 1px solid var(--line); border-radius: 4px; }
.grid line { stroke: #eaeef2; stroke-width: 1; }
.grid text, text.ylabel, text.xlabel, .mark text { fill: var(--muted); font-size: 11px; }
text.ytick { text-anchor: end; } text.xtick { text-anchor: middle; } text.xlabel { text-anchor: end; }
.mark line { stroke: #57606a; stroke-dasharray: 4 3; }
path.s { fill: none; stroke-width: 1.6; stroke-linejoin: round; stroke-linecap: round; }
path.s.dash { stroke-dasharray: 5 4; }
path.s.dots { stroke-width: 7; }
path.s.band { stroke: none; fill-opacity: 0.18; }
ul.legend { list-style: none; padding: 0; margin: 4px 0 0; display: flex; gap: 16px; flex-wrap: wrap; color: var(--muted); font-size: 12px; }
.sw { display: inline-block; width: 14px; height: 3px; margin-right: 6px; vertical-align: middle; }
.sw.band { height: 10px; opacity: 0.3; }
"#;

/// The palette as CSS classes: `.c0` .. `.c7`, stroke for lines, fill for
/// bands and legend swatches.
fn palette_css() -> String {
    chart::PALETTE
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(".c{i}{{stroke:{c}}} path.band.c{i},.sw.c{i}{{fill:{c};background:{c}}}\n")
        })
        .collect()
}

/// A whole page.
pub fn layout(title: &str, refresh_seconds: Option<u64>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(s) = refresh_seconds {
                    meta http-equiv="refresh" content=(s);
                }
                title { (title) }
                style { (PreEscaped(STYLE)) (PreEscaped(palette_css())) }
            }
            body { (body) }
        }
    }
}

fn top_bar(now: DateTime<Utc>) -> Markup {
    html! {
        header.top {
            span.brand { "Kedastral" }
            a href="./" { "workloads" }
            a href="models" { "models" }
            a href="metrics" { "metrics" }
            a href="workloads" { "JSON" }
            span { "clock: " (show_time(now)) }
            span { "version " (env!("CARGO_PKG_VERSION")) }
        }
    }
}

fn show_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn show_unix(t: i64) -> String {
    DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), show_time)
}

fn show_age(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    humantime::format_duration(std::time::Duration::from_secs(s)).to_string()
}

fn show_percent(share: f64) -> String {
    format!("{} %", show_number(share * 100.0))
}

/// A link to a workload's page, relative to the overview.
pub fn workload_href(name: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    format!("workload?name={encoded}")
}

/// Cuts `text` to `limit` characters, saying so.
fn cut(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

/// The state of a workload's forecast, as a coloured word.
fn state(view: &WorkloadView, now: DateTime<Utc>) -> Markup {
    match &view.snapshot {
        None => html! { span.pill.waiting data-state="waiting" { "no forecast yet" } },
        Some(s) if view.is_fresh(now) => html! {
            span.pill.fresh data-state="fresh" { "fresh" } " " span.muted { (show_age(s.age_seconds(now))) " old" }
        },
        Some(s) => html! {
            span.pill.stale data-state="stale" { "stale" } " " span.muted { (show_age(s.age_seconds(now))) " old" }
        },
    }
}

/// The served model; for several candidates, their largest weights.
fn model_cell(view: &WorkloadView) -> Markup {
    let weights: Vec<(&str, f64)> = view
        .snapshot
        .as_ref()
        .and_then(|s| s.selection.as_ref())
        .map(|sel| {
            let mut w: Vec<(&str, f64)> = sel
                .candidates
                .iter()
                .filter_map(|c| Some((c.name.as_str(), c.weight?)))
                .filter(|(n, _)| *n != COMBINED)
                .collect();
            w.sort_by(|a, b| b.1.total_cmp(&a.1));
            w
        })
        .unwrap_or_default();
    html! {
        (view.status.model.name)
        @if !weights.is_empty() {
            br;
            span.muted {
                @for (i, (name, w)) in weights.iter().take(3).enumerate() {
                    @if i > 0 { " · " }
                    (name) " " (show_percent(*w))
                }
            }
        }
    }
}

fn failure_cell(failure: Option<&Failure>, limit: usize) -> Markup {
    match failure {
        None => html! { span.muted { "none" } },
        Some(f) => html! {
            span.error { (f.component) " (" (f.reason) "): " (cut(&f.message, limit)) }
            br;
            span.muted { (show_time(f.at)) }
        },
    }
}

fn live_error_cell(view: &WorkloadView) -> Markup {
    let e = &view.status.live_error;
    let lead = show_age(view.config().lead_time.as_secs_f64());
    match e.mean_absolute_error {
        None => html! { span.muted { "none yet at " (lead) } },
        Some(mae) => html! {
            "MAE " (show_number(mae))
            @if let Some(p) = e.mean_absolute_percentage_error { " · " (show_percent(p)) }
            br;
            span.muted { "at " (lead) ", over " (e.comparisons) }
        },
    }
}

/// `GET /`: a row per workload.
pub fn overview(views: &[WorkloadView], now: DateTime<Utc>, refresh_seconds: u64) -> Markup {
    let body = html! {
        (top_bar(now))
        main {
            h1 { "Workloads" }
            p.muted {
                (views.len()) " workload" @if views.len() != 1 { "s" } " run by this forecaster. "
                "Each row links to its page: why it asks for what it asks. "
                "Refreshes every " (refresh_seconds) " s."
            }
            @if views.is_empty() {
                p { "This process runs no workload: it serves forecasts another forecaster computes." }
            } @else {
                table id="workloads" {
                    thead { tr {
                        th { "Workload" } th { "Forecast" } th { "Model" }
                        th { "Live error" } th.num { "Desired now" } th.num { "KEDA told" }
                        th.num { "Reactive" } th { "Last error" }
                    } }
                    tbody {
                        @for v in views {
                            @let s = v.snapshot.as_deref();
                            @let told = s.map(|s| explain::explain(s, v.config(), now).told);
                            tr data-workload=(v.config().name) {
                                td { a href=(workload_href(&v.config().name)) { (v.config().name) } br; span.muted { (v.config().metric) } }
                                td { (state(v, now)) @if !v.status.computing { br; span.muted { "followed from another replica" } } }
                                td { (model_cell(v)) }
                                td { (live_error_cell(v)) }
                                td.num { (s.and_then(|s| s.desired_replicas.first()).map_or("-".to_owned(), |r| r.to_string())) }
                                td.num {
                                    @match &told {
                                        Some(Ok(d)) => (d.replicas),
                                        Some(Err(_)) => span.error { "no answer" },
                                        None => "-",
                                    }
                                }
                                td.num {
                                    (s.and_then(|s| s.reactive_replicas).map_or("-".to_owned(), |r| r.to_string()))
                                    br;
                                    span.muted { "floor " @if v.config().reactive_floor { "on" } @else { "off" } }
                                }
                                td { (failure_cell(v.status.last_error.as_ref(), MESSAGE_CUT)) }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Kedastral: workloads", Some(refresh_seconds), body)
}

/// A page that says what is missing.
pub fn not_found(message: &str, now: DateTime<Utc>) -> Markup {
    layout(
        "Kedastral: not found",
        None,
        html! { (top_bar(now)) main { h1 { "Not found" } p.error { (message) } p { a href="./" { "Every workload" } } } },
    )
}

/// Times as chart x values.
fn x(t: i64) -> f64 {
    t as f64
}

/// `GET /workload?name=W`.
pub fn workload(view: &WorkloadView, now: DateTime<Utc>, refresh_seconds: u64) -> Markup {
    let config = view.config();
    let name = &config.name;
    // Copied out so the runner is not held up while the page renders.
    let trail: Trail = view.status.trail.read().expect("trail lock").clone();
    let snapshot = view.snapshot.as_deref();
    let explained = snapshot.map(|s| explain::explain(s, config, now));
    let body = html! {
        (top_bar(now))
        main {
            p { a href="./" { "← every workload" } }
            h1 { (name) }
            p.muted {
                "metric " (config.metric) " · model " (view.status.model.name) " " (view.status.model.version)
                " · step " (show_age(f64::from(config.step_seconds())))
                " · horizon " (show_age(config.horizon.as_secs_f64()))
                " · lead time " (show_age(config.lead_time.as_secs_f64()))
                " · " (state(view, now))
            }
            div.cards {
                div.card { div.k { "KEDA is told" } div.v.answer data-told {
                    @match explained.as_ref().map(|e| &e.told) {
                        Some(Ok(d)) => (d.replicas),
                        _ => "no answer",
                    }
                } }
                div.card { div.k { "desired now" } div.v { (snapshot.and_then(|s| s.desired_replicas.first()).map_or("-".to_owned(), |r| r.to_string())) } }
                div.card { div.k { "reactive" } div.v { (snapshot.and_then(|s| s.reactive_replicas).map_or("-".to_owned(), |r| r.to_string())) } }
                div.card { div.k { "last observed" } div.v { (snapshot.and_then(|s| s.last_observed).map_or("-".to_owned(), show_number)) } }
                div.card { div.k { "live error" } div.v.small { (live_error_cell(view)) } }
            }
            h2 { "Why this number" }
            @match &explained {
                None => p { "No forecast yet: "
                    @match &view.status.last_error { Some(f) => span.error { (f.message) }, None => "the first tick has not finished." } },
                Some(e) => ul.why { @for line in &e.lines { li { (line) } } },
            }
            @if let Some(s) = snapshot {
                (now_and_ahead(s, &trail, now).render())
                (replicas_ahead(s, explained.as_ref().and_then(|e| e.peak), config.policy.target_per_pod).render())
            }
            h2 { "What happened" }
            (at_lead_time(&trail, config.lead_time.as_secs()).render())
            (replicas_by_origin(&trail, config.policy.target_per_pod).render())
            (whole_window(&trail).render())
            @if let Some(s) = snapshot && let Some(sel) = &s.selection {
                h2 { "Candidates" }
                (candidates(s, sel))
                @if !trail.candidates.is_empty() {
                    (weights_over_time(&trail).render())
                }
                @if !trail.leader_changes.is_empty() {
                    h3 { "Changes of the candidate weighing most" }
                    ul { @for c in trail.leader_changes.iter().rev() {
                        li { (show_unix(c.origin)) ": " (c.from.as_deref().unwrap_or("none")) " → " (c.to.as_deref().unwrap_or("none")) }
                    } }
                }
            }
            h2 { "Recent failures" }
            @if trail.failures.is_empty() {
                p.muted { "None since start-up." }
            } @else {
                table id="failures" {
                    thead { tr { th { "At" } th { "Stage" } th { "Reason" } th { "Message" } } }
                    tbody { @for f in trail.failures.iter().rev() {
                        tr { td { (show_time(f.at)) } td { (f.component) } td { (f.reason) } td.error { (f.message) } }
                    } }
                }
            }
        }
    };
    layout(&format!("Kedastral: {name}"), Some(refresh_seconds), body)
}

fn step_time(s: &Snapshot, k: usize) -> f64 {
    x(s.generated_at.timestamp() + (k as i64 + 1) * i64::from(s.step_seconds))
}

/// The history held from `since` on, each value through `f`, as chart
/// points.
fn history_since(trail: &Trail, since: i64, f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    trail
        .history
        .points()
        .filter(|&(t, _)| t >= since)
        .map(|(t, v)| (x(t), f(v)))
        .collect()
}

/// The recent history, the forecast with its bands and the load sized on.
fn now_and_ahead(s: &Snapshot, trail: &Trail, now: DateTime<Utc>) -> Chart {
    let step = i64::from(s.step_seconds.max(1));
    let back = (2 * i64::from(s.horizon)).max(30) * step;
    let since = s.generated_at.timestamp() - back;
    let history = history_since(trail, since, |v| v);
    let mut chart = Chart::new(
        "ahead",
        "Now and ahead: what arrived, the forecast and its bands, the load pods are sized on",
        s.metric.clone(),
    )
    .series(Series::new("actual", "what arrived", 0).points(history));
    let mut levels: Vec<&crate::store::Band> = s.quantiles.iter().collect();
    levels.sort_by(|a, b| a.level.total_cmp(&b.level));
    if let (Some(lo), Some(hi)) = (levels.first(), levels.last())
        && lo.level < hi.level
    {
        let band = (0..s.values.len())
            .filter_map(|k| Some((step_time(s, k), *lo.values.get(k)?, *hi.values.get(k)?)));
        chart = chart.series(
            Series::new(
                "band",
                format!("{:.0}-{:.0} % band", lo.level * 100.0, hi.level * 100.0),
                1,
            )
            .band(band),
        );
    }
    let forecast = s
        .values
        .iter()
        .enumerate()
        .map(|(k, &v)| (step_time(s, k), v));
    chart = chart.series(Series::new("forecast", "forecast", 1).points(forecast));
    if !s.sizing_loads.is_empty() {
        let loads = s
            .sizing_loads
            .iter()
            .enumerate()
            .map(|(k, &v)| (step_time(s, k), v));
        chart = chart.series(
            Series::new("sizing-load", "load sized on", 4)
                .dashed()
                .points(loads),
        );
    }
    chart = chart.mark(x(s.generated_at.timestamp()), "origin");
    if now > s.generated_at {
        chart = chart.mark(x(now.timestamp()), "now");
    }
    chart
}

/// Desired replicas per step against the reactive ones and the point
/// forecast's plain count; the step that set the answer is marked.
fn replicas_ahead(s: &Snapshot, peak: Option<usize>, target: f64) -> Chart {
    let desired = s
        .desired_replicas
        .iter()
        .enumerate()
        .map(|(k, &r)| (step_time(s, k), f64::from(r)));
    let mut chart = Chart::new("replicas-ahead", "Replicas planned per step", "replicas").series(
        Series::new("desired", "desired (planned)", 2)
            .shape(Shape::Step)
            .points(desired),
    );
    let point = s
        .values
        .iter()
        .enumerate()
        .map(|(k, &v)| (step_time(s, k), replicas_for_load(v, target)));
    chart = chart.series(
        Series::new("point-replicas", "replicas for the point forecast", 1)
            .shape(Shape::Step)
            .dashed()
            .points(point),
    );
    if let Some(r) = s.reactive_replicas {
        let flat = (0..s.desired_replicas.len()).map(|k| (step_time(s, k), f64::from(r)));
        chart = chart.series(
            Series::new("reactive", "reactive (last observed)", 6)
                .shape(Shape::Step)
                .points(flat),
        );
    }
    if let Some(k) = peak {
        chart = chart.mark(step_time(s, k), "sets the answer");
    }
    chart
}

/// The forecasts made one lead time earlier against what arrived.
fn at_lead_time(trail: &Trail, lead_seconds: u64) -> Chart {
    let since = trail.lead.front().map_or(i64::MAX, |f| f.time);
    let actual = history_since(trail, since, |v| v);
    let band = trail
        .lead
        .iter()
        .map(|f| (x(f.time), f64::from(f.low), f64::from(f.high)));
    Chart::new(
        "at-lead",
        format!(
            "Forecast {} ahead against what arrived",
            show_age(lead_seconds as f64)
        ),
        "value",
    )
    .series(Series::new("lead-band", "its band", 1).band(band))
    .series(Series::new("actual", "what arrived", 0).points(actual))
    .series(
        Series::new("lead-forecast", "forecast made a lead time before", 1)
            .points(trail.lead.iter().map(|f| (x(f.time), f64::from(f.value)))),
    )
}

/// What each origin's plan asked for, what KEDA was told and what a
/// reactive autoscaler would have run, against what the load needed.
fn replicas_by_origin(trail: &Trail, target: f64) -> Chart {
    let since = trail.plans.front().map_or(i64::MAX, |p| p.origin);
    let needed = history_since(trail, since, |v| replicas_for_load(v, target));
    let plans = &trail.plans;
    Chart::new("replicas-past", "Replicas at each origin", "replicas")
        .series(Series::new("needed", "needed by what arrived", 0).points(needed))
        .series(
            Series::new("told", "told to KEDA", 2).points(
                plans
                    .iter()
                    .filter_map(|p| Some((x(p.origin), f64::from(p.told?)))),
            ),
        )
        .series(
            Series::new("reactive", "reactive", 6).dashed().points(
                plans
                    .iter()
                    .filter_map(|p| Some((x(p.origin), f64::from(p.reactive?)))),
            ),
        )
}

fn whole_window(trail: &Trail) -> Chart {
    Chart::new(
        "history",
        format!("The history held ({} points)", trail.history.len()),
        "value",
    )
    .series(
        Series::new("history", "history", 0).points(trail.history.points().map(|(t, v)| (x(t), v))),
    )
}

fn weights_over_time(trail: &Trail) -> Chart {
    let mut chart = Chart::new(
        "weights",
        "Candidates' shares of the forecast served",
        "share",
    );
    for (i, name) in trail.candidates.iter().enumerate() {
        let points = trail
            .weights
            .iter()
            .map(|w| (x(w.origin), w.weights.get(i).copied().unwrap_or(f64::NAN)));
        chart = chart.series(
            Series::new(name.clone(), name.clone(), i)
                .shape(Shape::Step)
                .points(points),
        );
    }
    chart
}

fn candidates(s: &Snapshot, sel: &crate::shadow::Selection) -> Markup {
    let buckets = &sel.lead_buckets;
    html! {
        p.muted {
            "Served: " strong { (sel.chosen) } ". "
            @if let Some(l) = &sel.leader { "Weighing most: " (l) ". " }
            (sel.judged_origins) " shadow origins judged, " (sel.switches) " changes of the candidate weighing most. "
            "Bands " @if sel.calibrated { "calibrated on recent errors" } @else { "as the model gave them (not calibrated yet)" } "."
        }
        table id="candidates" {
            thead { tr {
                th { "Candidate" } th.num { "MAE" } th.num { "Recent MAE" } th.num { "Weight" }
                @for b in buckets { th.num { "leads " (b) "+" } }
                th.num { "Failed origins" }
            } }
            tbody {
                @for c in &sel.candidates {
                    tr data-candidate=(c.name) {
                        td { (c.name) @if c.name == sel.chosen { " (served)" } @if c.spared { " (spared: not called to serve)" } }
                        td.num { (c.mae.map_or("-".to_owned(), show_number)) }
                        td.num { (c.recent_mae.map_or("-".to_owned(), show_number)) }
                        td.num { (c.weight.map_or("-".to_owned(), show_percent)) }
                        @for k in 0..buckets.len() {
                            td.num { (c.lead_weights.get(k).map_or("-".to_owned(), |w| show_percent(*w))) }
                        }
                        td.num { (c.failures) }
                    }
                }
            }
        }
        @if s.selection.as_ref().is_some_and(|sel| sel.candidates.len() == 1) {
            p.muted { "One model: its errors judge its bands; there is nothing to weigh." }
        }
    }
}
