//! Reading a metric's history from `timestamp,value` CSV.
//!
//! Timestamps are RFC 3339 (`2026-11-28T08:00:00Z`), a date and time without
//! a zone (`2026-11-28 08:00:00`, as pandas and NAB write them), read as
//! UTC, or Unix seconds; an optional header line is skipped. Values are
//! numbers; `NaN` or an empty field marks a missing observation.
//!
//! Real exports are rarely perfectly regular, so the file is regularised: the
//! step is the median spacing between rows (or the one given), each row is put
//! on the nearest point of a grid of that step (anchored on the rows' median
//! phase, so one jittery first row does not shift the rest), and steps
//! with no row become missing (NaN). Two rows that land on the same step are
//! an error naming both lines: the file's spacing does not match the step.

use std::path::Path;

use kedastral_model_sdk::Series;

/// The trace `forecast` and `backtest` use when given no `--input`: HTTP
/// requests per second, averaged per minute, of NASA Kennedy Space Center's
/// web server, 1-28 July 1995 (see `examples/data/README.md`).
pub const BUNDLED_TRACE: &str = include_str!("../../examples/data/nasa_http_1m.csv");
pub const BUNDLED_TRACE_NAME: &str = "bundled trace nasa_http_1m.csv";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HistoryError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{source_name}: no data rows (expected `timestamp,value` lines)")]
    Empty { source_name: String },
    #[error("{source_name} line {line}: {message}")]
    BadRow {
        source_name: String,
        line: usize,
        message: String,
    },
    #[error("{source_name}: {message}")]
    Spacing {
        source_name: String,
        message: String,
    },
}

/// Reads and regularises a CSV file; `step_seconds` forces the step instead
/// of inferring it.
pub fn load_csv(path: &Path, step_seconds: Option<u32>) -> Result<Series, HistoryError> {
    let text = std::fs::read_to_string(path).map_err(|e| HistoryError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse_csv(&text, &path.display().to_string(), step_seconds)
}

/// Parses CSV text; `source_name` names it in errors.
pub fn parse_csv(
    text: &str,
    source_name: &str,
    step_seconds: Option<u32>,
) -> Result<Series, HistoryError> {
    let bad = |line: usize, message: String| HistoryError::BadRow {
        source_name: source_name.to_owned(),
        line,
        message,
    };
    let mut rows: Vec<(usize, i64, f64)> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let raw = raw.trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let mut fields = raw.split(',').map(str::trim);
        let (Some(ts), Some(value)) = (fields.next(), fields.next()) else {
            return Err(bad(
                line,
                format!("expected `timestamp,value`, got `{raw}`"),
            ));
        };
        if fields.next().is_some() {
            return Err(bad(line, format!("expected 2 fields, got more: `{raw}`")));
        }
        let time = match parse_timestamp(ts) {
            Some(t) => t,
            // A first line that is not data is a header.
            None if rows.is_empty() && parse_value(value).is_err() => continue,
            None => {
                return Err(bad(
                    line,
                    format!(
                        "`{ts}` is neither an RFC 3339 timestamp, a date and time without a zone (read as UTC), nor Unix seconds"
                    ),
                ));
            }
        };
        let value = parse_value(value).map_err(|m| bad(line, m))?;
        if let Some(&(prev_line, prev, _)) = rows.last()
            && time <= prev
        {
            return Err(bad(
                line,
                format!(
                    "timestamp {ts} is not after the one on line {prev_line}; rows must be oldest first without repeats"
                ),
            ));
        }
        rows.push((line, time, value));
    }
    if rows.is_empty() {
        return Err(HistoryError::Empty {
            source_name: source_name.to_owned(),
        });
    }
    let spacing = |message: String| HistoryError::Spacing {
        source_name: source_name.to_owned(),
        message,
    };
    let step = match step_seconds {
        Some(0) => return Err(spacing("the step must be at least 1 second".into())),
        Some(s) => i64::from(s),
        None if rows.len() < 2 => {
            return Err(spacing(
                "one row is not enough to infer the step; give it with --step".into(),
            ));
        }
        None => median_spacing(&rows),
    };
    // Anchor the grid on the rows' median phase rather than on the first
    // row, whose own jitter would otherwise shift every slot.
    let first = rows[0].1;
    let mut phases: Vec<i64> = rows
        .iter()
        .map(|&(_, t, _)| {
            let offset = (t - first).rem_euclid(step);
            if offset * 2 >= step {
                offset - step
            } else {
                offset
            }
        })
        .collect();
    phases.sort_unstable();
    let anchor = first + phases[phases.len() / 2];
    let raw_slot = |t: i64| ((t - anchor) as f64 / step as f64).round() as i64;
    let first_slot = raw_slot(first);
    let start = anchor + first_slot * step;
    let slot_of = |t: i64| (raw_slot(t) - first_slot) as usize;
    let slots = slot_of(rows[rows.len() - 1].1) + 1;
    if slots > 50_000_000 {
        return Err(spacing(format!(
            "{slots} steps of {step}s between the first and last row: the step is far too small for this file"
        )));
    }
    let mut values = vec![f64::NAN; slots];
    let mut line_of = vec![0usize; slots];
    for &(line, time, value) in &rows {
        let slot = slot_of(time);
        if line_of[slot] != 0 {
            return Err(spacing(format!(
                "lines {} and {line} fall on the same {step}s step; the rows are not evenly spaced \
                 (give the real step with --step, or resample the data)",
                line_of[slot]
            )));
        }
        line_of[slot] = line;
        values[slot] = value;
    }
    let observed = values.iter().filter(|v| !v.is_nan()).count();
    if observed == 0 {
        return Err(spacing("every value is missing".into()));
    }
    Ok(Series::new(
        start,
        u32::try_from(step).map_err(|_| spacing(format!("step of {step}s is too large")))?,
        values,
    ))
}

fn parse_timestamp(field: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(field) {
        return Some(t.timestamp());
    }
    // No zone: UTC. Seconds (with a fraction) may be left out.
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(field, format) {
            return Some(t.and_utc().timestamp());
        }
    }
    // Unix seconds, possibly with a fraction (as Prometheus writes them).
    let seconds: f64 = field.parse().ok()?;
    (seconds.is_finite() && seconds.abs() < 1e12).then(|| seconds.round() as i64)
}

fn parse_value(field: &str) -> Result<f64, String> {
    if field.is_empty() || field.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    match field.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(format!(
            "value `{field}` is {v}; only finite numbers (or NaN for missing) are allowed"
        )),
        Err(_) => Err(format!("value `{field}` is not a number")),
    }
}

/// The median gap between consecutive rows: robust to a few gaps and to the
/// jitter of scrapers that drift by a second or two.
fn median_spacing(rows: &[(usize, i64, f64)]) -> i64 {
    let mut gaps: Vec<i64> = rows.windows(2).map(|w| w[1].1 - w[0].1).collect();
    gaps.sort_unstable();
    gaps[gaps.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Series, HistoryError> {
        parse_csv(text, "t.csv", None)
    }

    #[test]
    fn rfc3339_and_unix_seconds_with_header() {
        let s =
            parse("timestamp,value\n2026-01-01T00:00:00Z,1\n2026-01-01T00:01:00Z,2.5\n").unwrap();
        assert_eq!(s.start_unix_seconds, 1_767_225_600);
        assert_eq!(s.step_seconds, 60);
        assert_eq!(s.values, vec![1.0, 2.5]);

        let s = parse("100,1\n400,2\n700,3\n").unwrap();
        assert_eq!((s.start_unix_seconds, s.step_seconds), (100, 300));
        assert_eq!(s.values.len(), 3);
    }

    #[test]
    fn a_date_and_time_without_a_zone_is_utc() {
        let utc =
            parse("timestamp,value\n2026-01-01T00:00:00Z,1\n2026-01-01T00:05:00Z,2\n").unwrap();
        for text in [
            "timestamp,value\n2026-01-01 00:00:00,1\n2026-01-01 00:05:00,2\n",
            "timestamp,value\n2026-01-01T00:00:00.000,1\n2026-01-01T00:05:00.000,2\n",
            "2026-01-01 00:00,1\n2026-01-01 00:05,2\n",
        ] {
            let s = parse(text).unwrap();
            assert_eq!(
                (s.start_unix_seconds, s.step_seconds),
                (utc.start_unix_seconds, 300)
            );
            assert_eq!(s.values, utc.values);
        }
        let err = parse("timestamp,value\n2026-01-01 00:00:00,1\n2026-01-01 25:00:00,2\n");
        let Err(HistoryError::BadRow { line, message, .. }) = err else {
            panic!("an impossible hour is an error: {err:?}");
        };
        assert_eq!(line, 3);
        assert!(
            message.contains("without a zone (read as UTC)"),
            "{message}"
        );
    }

    #[test]
    fn gaps_become_missing_and_jitter_is_absorbed() {
        // NAB-like: a few seconds of drift, one missing row.
        let s = parse("0,1\n61,2\n119,3\n240,5\n").unwrap();
        assert_eq!(s.step_seconds, 61);
        let s = parse_csv("0,1\n61,2\n119,3\n240,5\n", "t.csv", Some(60)).unwrap();
        assert_eq!(s.values.len(), 5);
        assert!(s.values[3].is_nan());
        assert_eq!(s.values[4], 5.0);
    }

    #[test]
    fn nan_and_empty_values_are_missing() {
        let s = parse("0,1\n60,NaN\n120,\n180,4\n").unwrap();
        assert!(s.values[1].is_nan() && s.values[2].is_nan());
    }

    #[test]
    fn bad_rows_name_their_line() {
        let e = parse("timestamp,value\n0,1\n60,abc\n").unwrap_err();
        assert_eq!(e.to_string(), "t.csv line 3: value `abc` is not a number");
        let e = parse("0,1\nyesterday,2\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t.csv line 2: `yesterday` is neither")
        );
        let e = parse("0,1\n60,inf\n").unwrap_err();
        assert!(e.to_string().contains("line 2") && e.to_string().contains("finite"));
        let e = parse("60,1\n0,2\n").unwrap_err();
        assert!(e.to_string().contains("line 2") && e.to_string().contains("not after"));
        let e = parse("0,1,2\n").unwrap_err();
        assert!(e.to_string().contains("line 1"));
    }

    #[test]
    fn empty_and_uneven_files_get_clear_messages() {
        assert_eq!(
            parse("timestamp,value\n").unwrap_err(),
            HistoryError::Empty {
                source_name: "t.csv".into()
            }
        );
        let e = parse("0,1\n60,2\n70,3\n120,4\n").unwrap_err();
        assert!(e.to_string().contains("same 50s step"), "{e}");
        let e = parse("0,1\n").unwrap_err();
        assert!(e.to_string().contains("--step"));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any regular series, written with scraper jitter below a quarter of
        /// the step and with rows dropped, reads back onto the same grid:
        /// kept rows at their slots, dropped ones missing.
        #[test]
        fn jittered_gappy_files_read_back_onto_their_grid(
            step in 1u32..3_600,
            start in 0i64..2_000_000_000,
            rows in prop::collection::vec((any::<bool>(), -1.0f64..1.0, -1e6f64..1e6), 3..200),
        ) {
            let mut text = String::from("timestamp,value\n");
            let mut expected = vec![f64::NAN; rows.len()];
            for (i, &(keep, jitter, value)) in rows.iter().enumerate() {
                // Keep the first and last rows so the span is known.
                if keep || i == 0 || i == rows.len() - 1 {
                    let t = start + i as i64 * i64::from(step) + (jitter * f64::from(step) / 4.0) as i64;
                    text.push_str(&format!("{t},{value}\n"));
                    expected[i] = value;
                }
            }
            let series = parse_csv(&text, "p.csv", Some(step)).unwrap();
            prop_assert_eq!(series.step_seconds, step);
            prop_assert_eq!(series.values.len(), rows.len());
            for (got, want) in series.values.iter().zip(&expected) {
                prop_assert!(got == want || (got.is_nan() && want.is_nan()));
            }
        }
    }
}
