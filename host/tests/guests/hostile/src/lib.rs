//! A hostile model for the runtime's tests. Its `behaviour` parameter picks
//! the misdeed; `ok` answers a flat forecast of 1.0 so a test can check that
//! the same model works again after misbehaving.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest value any call has seen, as `f64` bits: what `remember`
/// carries from one call to the next, if the host lets it.
static LARGEST_SEEN: AtomicU64 = AtomicU64::new(0);

/// Bytes of the error message `loud-error` answers: tens of megabytes.
const LOUD_ERROR_BYTES: usize = 20 << 20;

use kedastral_model_sdk::{Forecast, ForecastRequest, Model, ModelError, ModelInfo, Params};

pub struct Hostile;

impl Model for Hostile {
    fn info() -> ModelInfo {
        ModelInfo::new(
            "hostile",
            "0.0.1",
            "Misbehaves on request (test fixture)",
            1,
        )
        .param(
            "behaviour",
            "ok",
            "ok, spin, grow, recurse, panic, nan, short, unordered, sleep, escape, error, \
             remember, loud-error, absurd, sometimes-absurd, negative",
        )
    }

    fn forecast(request: &ForecastRequest) -> Result<Forecast, ModelError> {
        let specs = Self::info().params;
        let params = Params::new(&request.params, &specs)?;
        let mut forecast = Forecast::flat(1.0, request);
        match params.raw("behaviour") {
            "ok" => {}
            "spin" => {
                let mut x = 0u64;
                loop {
                    x = black_box(x.wrapping_add(1));
                }
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "recurse" => forecast.values[0] = recurse(black_box(1)) as f64,
            "panic" => panic!("hostile model panics on purpose"),
            "nan" => forecast.values[0] = f64::NAN,
            "short" => {
                forecast.values.pop();
            }
            "unordered" => {
                for (i, band) in forecast.quantiles.iter_mut().enumerate() {
                    band.values.fill(-(i as f64));
                }
            }
            "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
            "escape" => forecast.values = escape_attempts(request.horizon as usize),
            "error" => {
                return Err(ModelError::Internal(
                    "hostile model fails on purpose".into(),
                ));
            }
            "remember" => {
                // Forecasts the largest value it has ever seen, in this
                // request or any before it.
                let here = request
                    .history
                    .values
                    .iter()
                    .copied()
                    .filter(|v| v.is_finite())
                    .fold(0.0f64, f64::max);
                let before = f64::from_bits(LARGEST_SEEN.load(Ordering::Relaxed));
                let largest = here.max(before);
                LARGEST_SEEN.store(largest.to_bits(), Ordering::Relaxed);
                forecast = Forecast::flat(largest, request);
            }
            "loud-error" => {
                let end = "\u{1b}[2J the end";
                let mut message = String::with_capacity(LOUD_ERROR_BYTES + end.len());
                message.extend(std::iter::repeat_n('x', LOUD_ERROR_BYTES));
                message.push_str(end);
                return Err(ModelError::Internal(message));
            }
            "absurd" => forecast = Forecast::flat(1e300, request),
            "sometimes-absurd" => {
                // Absurd when the history ends on an odd step, else fine.
                let history = &request.history;
                let steps = history.start_unix_seconds / i64::from(history.step_seconds.max(1))
                    + history.values.len() as i64;
                if steps % 2 == 1 {
                    forecast = Forecast::flat(1e300, request);
                }
            }
            "negative" => forecast = Forecast::flat(-1000.0, request),
            other => {
                return Err(ModelError::InvalidInput(format!(
                    "unknown behaviour `{other}`"
                )));
            }
        }
        Ok(forecast)
    }
}

/// Recursion without end: exhausts the guest's stack.
#[allow(unconditional_recursion, reason = "the point of the fixture")]
fn recurse(depth: u64) -> u64 {
    black_box(recurse(black_box(depth + 1))) + 1
}

/// Tries to reach outside the sandbox; each value is 1.0 when an attempt
/// succeeded: [read a file, list a directory, see an environment variable,
/// read a non-zero clock, open a TCP connection]. Bands are left flat.
fn escape_attempts(horizon: usize) -> Vec<f64> {
    let flag = |ok: bool| if ok { 1.0 } else { 0.0 };
    let mut values = vec![
        flag(std::fs::read("/etc/hostname").is_ok() || std::fs::read("Cargo.toml").is_ok()),
        flag(std::fs::read_dir("/").is_ok() || std::fs::read_dir(".").is_ok()),
        flag(std::env::vars().next().is_some()),
        flag(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .is_ok_and(|d| d.as_secs() > 0),
        ),
        flag(std::net::TcpStream::connect("127.0.0.1:1").is_ok()),
    ];
    values.resize(horizon, 0.0);
    values
}

kedastral_model_sdk::export_model!(Hostile);
