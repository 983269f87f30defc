//! Fracast-0, a pretrained forecaster of 85 001 parameters, in plain Rust:
//! it reads the released weights (built in) and forecasts 48 steps of nine
//! quantiles from the last 2 048 points of a series, with no fitting.
//!
//! What is where:
//! - this file: [`Fracast`], the preprocessing (min-max normalisation of
//!   the context, the observed mask, left padding of short histories) and
//!   the block recursion for horizons beyond 48 steps;
//! - `net`: the encoder (a causal dilated separable convolution block shared
//!   across dilations 1 to 512, with FiLM scale conditioning, recency and
//!   periodogram phase features) and the head (a pooled summary, horizon
//!   queries, horizon convolutions and a future path over the seasonal fill);
//! - `periodogram`: the significant periods of a context;
//! - `weights`: reading the safetensors file.

pub mod model;
pub mod net;
pub mod periodogram;
pub mod weights;

kedastral_model_sdk::export_model!(model::FracastModel);

use net::{CONTEXT, HORIZON, Network, QUANTILES};
pub use weights::WeightError;

/// The released fp32 weights (Apache-2.0; see weights/NOTICE).
pub const WEIGHTS: &[u8] = include_bytes!("../weights/model.safetensors");

/// Fewest observed points a context needs.
pub const MIN_OBSERVED: usize = 8;

pub struct Fracast {
    network: Network,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ForecastError {
    #[error("Fracast needs at least {MIN_OBSERVED} observed points in its last {CONTEXT}, got {0}")]
    TooFewObserved(usize),
    #[error("the horizon must be at least 1 step")]
    ZeroHorizon,
    #[error("the network returned a value that is not finite")]
    NotFinite,
}

impl Fracast {
    /// The network with the built-in weights.
    pub fn new() -> Result<Self, WeightError> {
        Self::from_safetensors(WEIGHTS)
    }

    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, WeightError> {
        let tensors = weights::Tensors::parse(bytes)?;
        Ok(Self {
            network: Network::load(&tensors)?,
        })
    }

    /// The quantile levels of each forecast step, lowest first.
    pub fn levels() -> &'static [f64] {
        &QUANTILES
    }

    /// `horizon` steps after `history` (NaN: missing), each the nine
    /// quantiles of [`Fracast::levels`]. Beyond 48 steps, the median of each
    /// block is appended to the history and the next block forecast from it.
    pub fn forecast(
        &self,
        history: &[f64],
        horizon: usize,
    ) -> Result<Vec<[f64; 9]>, ForecastError> {
        if horizon == 0 {
            return Err(ForecastError::ZeroHorizon);
        }
        let mut source: Vec<f64> = history.to_vec();
        let mut out: Vec<[f64; 9]> = Vec::with_capacity(horizon);
        while out.len() < horizon {
            let block = self.block(&source)?;
            let take = (horizon - out.len()).min(HORIZON);
            out.extend_from_slice(&block[..take]);
            if out.len() < horizon {
                let keep = source.len().saturating_sub(CONTEXT);
                source.drain(..keep);
                // The reference appends the median as f32.
                source.extend(block.iter().map(|q| f64::from(q[4] as f32)));
            }
        }
        Ok(out)
    }

    /// One block of [`HORIZON`] steps from the last [`CONTEXT`] points.
    fn block(&self, history: &[f64]) -> Result<Vec<[f64; 9]>, ForecastError> {
        let tail: Vec<f32> = history[history.len().saturating_sub(CONTEXT)..]
            .iter()
            .map(|&v| v as f32)
            .collect();
        let observed_count = tail.iter().filter(|v| v.is_finite()).count();
        if observed_count < MIN_OBSERVED {
            return Err(ForecastError::TooFewObserved(observed_count));
        }
        let (lo, hi) = tail
            .iter()
            .filter(|v| v.is_finite())
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let loc = f64::from(lo);
        let span = (f64::from(hi) - loc).max(1e-5);
        let start = CONTEXT - tail.len();
        let mut values = vec![0.0f32; CONTEXT];
        let mut observed = vec![false; CONTEXT];
        for (i, v) in tail.iter().enumerate() {
            if v.is_finite() {
                values[start + i] = ((f64::from(*v) - loc) / span) as f32;
                observed[start + i] = true;
            }
        }
        let quantiles = self.network.forward(&values, &observed);
        quantiles
            .iter()
            .map(|q| {
                let mut row = [0.0f64; 9];
                for (r, v) in row.iter_mut().zip(q) {
                    if !v.is_finite() {
                        return Err(ForecastError::NotFinite);
                    }
                    *r = f64::from(*v) * span + loc;
                }
                Ok(row)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
