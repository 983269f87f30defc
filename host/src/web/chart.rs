//! Line, step, band and point charts as inline SVG, small enough to write
//! here rather than pull in a plotting crate: the pages need a handful of
//! shapes, server-side, with attributes a test (or a curious user) can read
//! in the DOM.
//!
//! Every series is one `<path>` carrying `data-series` (its name),
//! `data-points` (the vertices drawn) and `data-source` (the finite points
//! given). A line with more points than twice the plot's width in pixels is
//! thinned to each pixel column's lowest and highest point, so a week of
//! minutes costs a few thousand vertices, and its shape (every spike) stays.
//! Text goes through maud, so every name is escaped.

use std::fmt::Write as _;

use chrono::DateTime;
use maud::{Markup, html};

/// The drawing's size in SVG units; it scales with the page.
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// Colours, by a series' `color` index (modulo their count), in the page's
/// stylesheet as classes `c0`..`c7`.
pub const PALETTE: [&str; 8] = [
    "#1f6feb", "#d97706", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#64748b", "#db2777",
];

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    Line,
    /// Each value holds until the next point's time: replicas.
    Step,
    /// Between `lower` and the points, filled.
    Band,
    /// A dot per point.
    Points,
}

#[derive(Debug, Clone)]
pub struct Series {
    /// `data-series`: stable, for tests and readers of the DOM.
    pub name: String,
    pub label: String,
    pub color: usize,
    pub shape: Shape,
    pub dashed: bool,
    /// (x, y); a non-finite y is a gap.
    pub points: Vec<(f64, f64)>,
    /// For [`Shape::Band`]: the lower edge, at the same x as `points`.
    pub lower: Vec<f64>,
}

impl Series {
    pub fn new(name: impl Into<String>, label: impl Into<String>, color: usize) -> Self {
        Self {
            name: name.into(),
            label: label.into(),
            color,
            shape: Shape::Line,
            dashed: false,
            points: Vec::new(),
            lower: Vec::new(),
        }
    }

    pub fn shape(mut self, shape: Shape) -> Self {
        self.shape = shape;
        self
    }

    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }

    pub fn points(mut self, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        self.points = points.into_iter().collect();
        self
    }

    /// A band from (x, low, high) triples.
    pub fn band(mut self, points: impl IntoIterator<Item = (f64, f64, f64)>) -> Self {
        self.shape = Shape::Band;
        let (points, lower): (Vec<_>, Vec<_>) =
            points.into_iter().map(|(x, lo, hi)| ((x, hi), lo)).unzip();
        self.points = points;
        self.lower = lower;
        self
    }

    fn finite(&self) -> usize {
        self.points.iter().filter(|(_, y)| y.is_finite()).count()
    }
}

/// What the x axis measures.
#[derive(Debug, Clone, PartialEq)]
pub enum XAxis {
    /// Unix seconds, labelled as UTC times.
    Time,
    /// Plain numbers, with a label.
    Value(String),
}

#[derive(Debug, Clone)]
pub struct Chart {
    /// `data-chart`.
    pub id: &'static str,
    pub title: String,
    pub y_label: String,
    pub x_axis: XAxis,
    pub series: Vec<Series>,
    /// Vertical marks: (x, label).
    pub marks: Vec<(f64, String)>,
    /// The y axis starts at zero when every value is at or above it.
    pub from_zero: bool,
}

impl Chart {
    pub fn new(id: &'static str, title: impl Into<String>, y_label: impl Into<String>) -> Self {
        Self {
            id,
            title: title.into(),
            y_label: y_label.into(),
            x_axis: XAxis::Time,
            series: Vec::new(),
            marks: Vec::new(),
            from_zero: true,
        }
    }

    pub fn x_axis(mut self, axis: XAxis) -> Self {
        self.x_axis = axis;
        self
    }

    /// Whether the y axis starts at zero for values all above it: true for
    /// load and replicas (honest sizes), false to see a forecast's detail.
    pub fn from_zero(mut self, from_zero: bool) -> Self {
        self.from_zero = from_zero;
        self
    }

    pub fn series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    pub fn mark(mut self, x: f64, label: impl Into<String>) -> Self {
        self.marks.push((x, label.into()));
        self
    }

    /// Whether any series has a point to draw.
    pub fn is_empty(&self) -> bool {
        self.series.iter().all(|s| s.finite() == 0)
    }

    fn x_range(&self) -> Option<(f64, f64)> {
        let xs = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().filter(|p| p.1.is_finite()).map(|p| p.0))
            .chain(self.marks.iter().map(|m| m.0));
        range(xs)
    }

    fn y_range(&self) -> Option<(f64, f64)> {
        let ys = self.series.iter().flat_map(|s| {
            s.points
                .iter()
                .map(|p| p.1)
                .chain(s.lower.iter().copied())
                .filter(|y| y.is_finite())
        });
        let (lo, hi) = range(ys)?;
        let lo = if self.from_zero && lo >= 0.0 { 0.0 } else { lo };
        let pad = (hi - lo) * 0.05;
        Some((lo, hi + pad))
    }

    pub fn render(&self) -> Markup {
        let legend = html! {
            ul.legend {
                @for s in &self.series {
                    li { span class={ "sw c" (s.color % PALETTE.len()) @if s.shape == Shape::Band { " band" } } {} (s.label) }
                }
            }
        };
        let (Some(xr), Some(yr)) = (self.x_range(), self.y_range()) else {
            return html! {
                figure.chart data-chart=(self.id) {
                    figcaption { (self.title) }
                    p.empty { "Nothing to draw yet." }
                }
            };
        };
        let frame = Frame::new(xr, yr);
        let x_ticks = match &self.x_axis {
            XAxis::Time => time_ticks(xr),
            XAxis::Value(_) => nice_ticks(xr)
                .into_iter()
                .map(|v| (v, show_number(v)))
                .collect(),
        };
        let y_ticks = nice_ticks(yr);
        html! {
            figure.chart data-chart=(self.id) {
                figcaption { (self.title) }
                svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(self.title) {
                    g.grid {
                        @for &y in &y_ticks {
                            @let py = frame.y(y);
                            line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(px(py)) y2=(px(py)) {}
                            text.ytick x=(LEFT - 6.0) y=(px(py + 4.0)) { (show_number(y)) }
                        }
                        @for (x, label) in &x_ticks {
                            @let pxx = frame.x(*x);
                            line x1=(px(pxx)) x2=(px(pxx)) y1=(TOP) y2=(HEIGHT - BOTTOM) {}
                            text.xtick x=(px(pxx)) y=(HEIGHT - 8.0) { (label) }
                        }
                    }
                    text.ylabel x="4" y=(TOP + 2.0) { (self.y_label) }
                    @if let XAxis::Value(label) = &self.x_axis {
                        text.xlabel x=(WIDTH - RIGHT) y=(HEIGHT - BOTTOM - 6.0) { (label) }
                    }
                    @for s in &self.series {
                        (series(&frame, s))
                    }
                    @for (i, (x, label)) in self.marks.iter().enumerate() {
                        @let pxx = frame.x(*x);
                        g.mark {
                            line x1=(px(pxx)) x2=(px(pxx)) y1=(TOP) y2=(HEIGHT - BOTTOM) {}
                            // Marks close together would print over each other.
                            text x=(px(pxx + 4.0)) y=(px(TOP + 10.0 + 13.0 * i as f64)) { (label) }
                        }
                    }
                }
                (legend)
            }
        }
    }
}

/// Maps data to SVG units.
struct Frame {
    x0: f64,
    xs: f64,
    y0: f64,
    ys: f64,
}

impl Frame {
    fn new((x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> Self {
        Self {
            x0,
            xs: (WIDTH - LEFT - RIGHT) / (x1 - x0),
            y0,
            ys: (HEIGHT - TOP - BOTTOM) / (y1 - y0),
        }
    }

    fn x(&self, x: f64) -> f64 {
        LEFT + (x - self.x0) * self.xs
    }

    fn y(&self, y: f64) -> f64 {
        HEIGHT - BOTTOM - (y - self.y0) * self.ys
    }

    /// The pixel column of `x`.
    fn column(&self, x: f64) -> i64 {
        ((x - self.x0) * self.xs).floor() as i64
    }
}

/// Lowest and highest of `values`, widened when they are one value.
fn range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return None;
    }
    if hi - lo < 1e-12 * lo.abs().max(1.0) {
        let pad = (lo.abs() * 0.1).max(1.0);
        return Some((lo - pad, hi + pad));
    }
    Some((lo, hi))
}

/// One decimal: a tenth of an SVG unit is below what a screen shows.
fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// A pixel column being gathered: its lowest and highest point, (x, y).
struct Column {
    index: i64,
    low: (f64, f64),
    high: (f64, f64),
}

/// Runs of finite points, each thinned to the lowest and highest point of
/// every pixel column when it has more than two points per column.
fn runs(frame: &Frame, points: &[(f64, f64)], lower: Option<&[f64]>) -> Vec<Vec<(f64, f64, f64)>> {
    let dense = points.len() as f64 > 2.0 * (WIDTH - LEFT - RIGHT);
    let mut out: Vec<Vec<(f64, f64, f64)>> = Vec::new();
    let mut run: Vec<(f64, f64, f64)> = Vec::new();
    let mut column: Option<Column> = None;
    let flush = |column: &mut Option<Column>, run: &mut Vec<(f64, f64, f64)>| {
        if let Some(Column {
            low: (xl, lo),
            high: (xh, hi),
            ..
        }) = column.take()
        {
            if lower.is_some() {
                run.push((xl.min(xh), lo, hi));
            } else if xl <= xh {
                run.push((xl, lo, lo));
                run.push((xh, hi, hi));
            } else {
                run.push((xh, hi, hi));
                run.push((xl, lo, lo));
            }
        }
    };
    for (i, &(x, y)) in points.iter().enumerate() {
        let lo = lower.map_or(y, |l| l.get(i).copied().unwrap_or(f64::NAN));
        if !(y.is_finite() && lo.is_finite() && x.is_finite()) {
            flush(&mut column, &mut run);
            if !run.is_empty() {
                out.push(std::mem::take(&mut run));
            }
            continue;
        }
        if !dense {
            run.push((x, lo, y));
            continue;
        }
        let c = frame.column(x);
        match &mut column {
            Some(col) if col.index == c => {
                if lo < col.low.1 {
                    col.low = (x, lo);
                }
                if y > col.high.1 {
                    col.high = (x, y);
                }
            }
            _ => {
                flush(&mut column, &mut run);
                column = Some(Column {
                    index: c,
                    low: (x, lo),
                    high: (x, y),
                });
            }
        }
    }
    flush(&mut column, &mut run);
    if !run.is_empty() {
        out.push(run);
    }
    out
}

fn series(frame: &Frame, s: &Series) -> Markup {
    let mut d = String::new();
    let mut drawn = 0usize;
    let class = format!(
        "s c{}{}",
        s.color % PALETTE.len(),
        if s.dashed { " dash" } else { "" }
    );
    match s.shape {
        Shape::Line | Shape::Points => {
            for run in runs(frame, &s.points, None) {
                for (k, &(x, _, y)) in run.iter().enumerate() {
                    let cmd = if k == 0 || s.shape == Shape::Points {
                        'M'
                    } else {
                        'L'
                    };
                    let _ = write!(d, "{cmd}{:.1} {:.1}", frame.x(x), frame.y(y));
                    if s.shape == Shape::Points {
                        d.push_str("h0");
                    }
                    drawn += 1;
                }
                if run.len() == 1 && s.shape == Shape::Line {
                    d.push_str("h0");
                }
            }
        }
        Shape::Step => {
            let finite: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|p| p.1.is_finite())
                .collect();
            for (k, &(x, y)) in finite.iter().enumerate() {
                if k == 0 {
                    let _ = write!(d, "M{:.1} {:.1}", frame.x(x), frame.y(y));
                } else {
                    let _ = write!(d, "H{:.1}V{:.1}", frame.x(x), frame.y(y));
                }
                drawn += 1;
            }
            // The last value holds for one more step.
            if let [.., (xa, _), (xb, _)] = finite[..] {
                let _ = write!(d, "H{:.1}", frame.x(xb + (xb - xa)));
            }
        }
        Shape::Band => {
            for run in runs(frame, &s.points, Some(&s.lower)) {
                for (k, &(x, _, hi)) in run.iter().enumerate() {
                    let cmd = if k == 0 { 'M' } else { 'L' };
                    let _ = write!(d, "{cmd}{:.1} {:.1}", frame.x(x), frame.y(hi));
                }
                for &(x, lo, _) in run.iter().rev() {
                    let _ = write!(d, "L{:.1} {:.1}", frame.x(x), frame.y(lo));
                }
                d.push('Z');
                drawn += run.len();
            }
        }
    }
    let class = if s.shape == Shape::Band {
        format!("{class} band")
    } else if s.shape == Shape::Points {
        format!("{class} dots")
    } else {
        class
    };
    html! {
        path class=(class) data-series=(s.name) data-points=(drawn) data-source=(s.finite()) d=(d) {
            title { (s.label) }
        }
    }
}

/// About five round values spanning `(lo, hi)`.
fn nice_ticks((lo, hi): (f64, f64)) -> Vec<f64> {
    let raw = (hi - lo) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Times on round minutes, hours or days, about six across.
fn time_ticks((lo, hi): (f64, f64)) -> Vec<(f64, String)> {
    const STEPS: [i64; 12] = [
        60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604_800,
    ];
    let span = hi - lo;
    let step = STEPS
        .iter()
        .copied()
        .find(|&s| span / s as f64 <= 7.0)
        .unwrap_or(604_800 * ((span / 7.0 / 604_800.0).ceil() as i64).max(1));
    let format = if step >= 86_400 {
        "%m-%d"
    } else if span > 86_400.0 {
        "%m-%d %H:%M"
    } else {
        "%H:%M"
    };
    let first = (lo / step as f64).ceil() as i64;
    let last = (hi / step as f64).floor() as i64;
    (first..=last)
        .filter_map(|k| {
            let t = k * step;
            let label = DateTime::from_timestamp(t, 0)?.format(format).to_string();
            Some((t as f64, label))
        })
        .collect()
}

/// A number short enough for an axis or a table: three significant digits,
/// thousands as k and millions as M.
pub fn show_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        let m = format!("{:.3}", v / 1e6);
        format!("{}M", m.trim_end_matches('0').trim_end_matches('.'))
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3).replace(".0k", "k")
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of<'a>(svg: &'a str, series: &str) -> &'a str {
        let at = svg
            .find(&format!("data-series=\"{series}\""))
            .expect("the series is drawn");
        &svg[svg[..at].rfind("<path").unwrap()..at + svg[at..].find('>').unwrap()]
    }

    fn attr(tag: &str, name: &str) -> String {
        let at = tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        tag[at..at + tag[at..].find('"').unwrap()].to_owned()
    }

    #[test]
    fn a_week_of_minutes_is_thinned_to_two_points_a_column_and_keeps_its_spike() {
        let mut points: Vec<(f64, f64)> = (0..10_080).map(|k| (k as f64 * 60.0, 1.0)).collect();
        points[5000].1 = 50.0;
        let chart = Chart::new("h", "history", "rps")
            .series(Series::new("actual", "actual", 0).points(points));
        let svg = chart.render().into_string();
        let tag = path_of(&svg, "actual");
        let drawn: usize = attr(tag, "data-points").parse().unwrap();
        assert_eq!(attr(tag, "data-source"), "10080");
        assert!(drawn <= 2 * 880 + 2, "{drawn}");
        let d = attr(tag, "d");
        assert_eq!(d.matches(['M', 'L']).count(), drawn);
        // The spike is at the top of the plot (y = TOP + 5 % padding).
        let top = HEIGHT - BOTTOM - (50.0 / 52.5) * (HEIGHT - TOP - BOTTOM);
        assert!(
            d.contains(&format!(" {top:.1}")),
            "{top:.1} not in the path"
        );
    }

    #[test]
    fn gaps_break_the_line_and_short_series_are_drawn_whole() {
        let points = vec![(0.0, 1.0), (60.0, 2.0), (120.0, f64::NAN), (180.0, 3.0)];
        let chart = Chart::new("g", "t", "y").series(Series::new("a", "a", 1).points(points));
        let svg = chart.render().into_string();
        let tag = path_of(&svg, "a");
        assert_eq!(attr(tag, "data-points"), "3");
        assert_eq!(attr(tag, "d").matches('M').count(), 2);
    }

    #[test]
    fn names_are_escaped_and_an_empty_chart_says_so() {
        let evil = "<script>alert(1)</script>";
        let chart = Chart::new("e", evil, evil)
            .series(Series::new(evil, evil, 2).points([(0.0, 1.0), (1.0, 2.0)]));
        let svg = chart.render().into_string();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        let empty = Chart::new("x", "nothing", "y").render().into_string();
        assert!(empty.contains("Nothing to draw yet"));
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_ticks((0.0, 10.0)), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(nice_ticks((3.0, 13.0)), [4.0, 6.0, 8.0, 10.0, 12.0]);
        let day = time_ticks((0.0, 86_400.0));
        assert_eq!(day.first().unwrap().1, "00:00");
        assert_eq!(day.len(), 5, "every 6 hours");
        assert_eq!(show_number(12_345.0), "12.3k");
        assert_eq!(show_number(0.125), "0.125");
        assert_eq!(show_number(2.5), "2.5");
        assert_eq!(show_number(2_500_000.0), "2.5M");
    }
}
