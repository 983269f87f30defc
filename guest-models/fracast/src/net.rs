//! The network: an encoder of the normalised context and a head that reads
//! the horizon's quantiles from it. Shapes are `[time][channel]`, row-major,
//! with `D` channels throughout.

use crate::periodogram::{self, Periods};
use crate::weights::{Linear, Tensors, WeightError};

/// Channels of every hidden state.
pub const D: usize = 64;
/// Hidden width of the SwiGLU feed-forward layers (`D * 1.5`).
const FFN: usize = 96;
/// Context length the network reads.
pub const CONTEXT: usize = 2048;
/// Steps one pass forecasts.
pub const HORIZON: usize = 48;
/// The quantile levels it forecasts.
pub const QUANTILES: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
/// Dilations 1, 2, 4, ... 512 of the encoder's shared block.
const STAGES: u32 = 10;
/// Dilations 1, 2, ... 32 of the future path's shared block.
const FUTURE_STAGES: u32 = 6;
/// Encoded context positions the future path starts from.
const FUTURE_SEED: usize = 128;
/// Phase bins of the seasonal fill.
const PHASE_BINS: usize = 16;
/// Fixed frequencies of the scale conditioning.
const SCALE_FREQS: usize = 4;
/// Periods the periodogram keeps.
pub const TOP_PERIODS: usize = 4;
/// Positions a block takes through its layers at once.
const CHUNK: usize = 32;

/// RMSNorm with unit-free epsilon, as PyTorch's default for `f32`.
fn rms_norm(x: &mut [f32], weight: &[f32]) {
    // Eight running sums, so the squares add up in vector lanes rather than
    // one long chain of dependent scalar additions.
    let mut sums = [0.0f32; 8];
    let (rows, rest) = x.as_chunks::<8>();
    for row in rows {
        for (s, v) in sums.iter_mut().zip(row) {
            *s += v * v;
        }
    }
    let squares = sums.iter().sum::<f32>() + rest.iter().map(|v| v * v).sum::<f32>();
    let mean = squares / x.len() as f32;
    let inv = 1.0 / (mean + f32::EPSILON).sqrt();
    for (v, w) in x.iter_mut().zip(weight) {
        *v = *v * inv * w;
    }
}

fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// `e^x` to within a few units in the last place, without a call: `x` is
/// split into `n ln 2 + r` with `|r| <= ln 2 / 2`, `e^r` is a degree-6
/// polynomial and `2^n` goes straight into the exponent bits. Branch-free,
/// so a loop of them vectorises (libm's `expf` is a call per value in
/// WebAssembly, where it dominated the feed-forward layers).
fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    // Adding and taking away 1.5 * 2^23 rounds to the nearest integer
    // without a call (SSE2 has no rounding instruction).
    const ROUND: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// `up` to twice the hidden width, `silu(gate) * value`, `down` again.
struct SwiGlu {
    up: Linear,
    down: Linear,
}

impl SwiGlu {
    fn load(t: &Tensors<'_>, prefix: &str) -> Result<Self, WeightError> {
        Ok(Self {
            up: t.linear(&format!("{prefix}.up"), D, 2 * FFN)?,
            down: t.linear(&format!("{prefix}.down"), FFN, D)?,
        })
    }

    fn apply(&self, x: &[f32], out: &mut [f32]) {
        let mut up = [0.0f32; 2 * FFN];
        self.up.apply(x, &mut up);
        let mut hidden = [0.0f32; FFN];
        gate(&up, &mut hidden);
        self.down.apply(&hidden, out);
    }

    /// [`SwiGlu::apply`] on each row of `x` (`[row][D]`) into `out`.
    fn apply_rows(&self, x: &[f32], out: &mut [f32], scratch: &mut Scratch) {
        let rows = x.len() / D;
        scratch.up.resize(rows * 2 * FFN, 0.0);
        scratch.hidden.resize(rows * FFN, 0.0);
        self.up.apply_rows(x, &mut scratch.up);
        for (up, hidden) in scratch
            .up
            .chunks_exact(2 * FFN)
            .zip(scratch.hidden.chunks_exact_mut(FFN))
        {
            gate(up, hidden);
        }
        self.down.apply_rows(&scratch.hidden, out);
    }
}

/// `silu(gate) * value` of one row of the up projection (`[gate][value]`).
fn gate(up: &[f32], hidden: &mut [f32]) {
    let (g, v) = up.split_at(FFN);
    for (h, (g, v)) in hidden.iter_mut().zip(g.iter().zip(v)) {
        *h = silu(*g) * v;
    }
}

/// Buffers a block reuses across its positions and stages.
#[derive(Default)]
struct Scratch {
    conv: Vec<f32>,
    mixed: Vec<f32>,
    ffn: Vec<f32>,
    up: Vec<f32>,
    hidden: Vec<f32>,
}

/// A causal depthwise convolution of kernel 3 at a dilation: each channel
/// at `t` sees itself at `t - 2d`, `t - d` and `t` (zero before the start).
struct DepthwiseConv {
    /// `[tap][channel]`: each tap's weights contiguous across channels.
    taps: [[f32; D]; 3],
    bias: [f32; D],
}

impl DepthwiseConv {
    fn load(t: &Tensors<'_>, prefix: &str) -> Result<Self, WeightError> {
        let weight = t.get(&format!("{prefix}.dw_weight"), &[D, 1, 3])?;
        let bias = t.get(&format!("{prefix}.dw_bias"), &[D])?;
        Ok(Self {
            taps: std::array::from_fn(|tap| std::array::from_fn(|c| weight[c * 3 + tap])),
            bias: bias.try_into().expect("checked shape"),
        })
    }

    /// `out[t] = conv(x)[t]` over `len` positions.
    fn apply(&self, x: &[f32], len: usize, dilation: usize, out: &mut [f32]) {
        let (x, out) = (
            x[..len * D].as_chunks::<D>().0,
            out[..len * D].as_chunks_mut::<D>().0,
        );
        for (t, row) in out.iter_mut().enumerate() {
            *row = self.bias;
            for (tap, weights) in self.taps.iter().enumerate() {
                let back = (2 - tap) * dilation;
                if back > t {
                    continue;
                }
                for ((v, w), s) in row.iter_mut().zip(weights).zip(&x[t - back]) {
                    *v += w * s;
                }
            }
        }
    }
}

/// The shared block: a dilated causal separable convolution with a
/// residual and RMSNorm, then a SwiGLU feed-forward with the same.
struct Block {
    conv: DepthwiseConv,
    pointwise: Linear,
    ffn: SwiGlu,
    norm1: Vec<f32>,
    norm2: Vec<f32>,
}

impl Block {
    fn load(t: &Tensors<'_>, prefix: &str) -> Result<Self, WeightError> {
        Ok(Self {
            conv: DepthwiseConv::load(t, prefix)?,
            pointwise: t.linear(&format!("{prefix}.pw"), D, D)?,
            ffn: SwiGlu::load(t, &format!("{prefix}.ffn"))?,
            norm1: t.get(&format!("{prefix}.norm1.weight"), &[D])?,
            norm2: t.get(&format!("{prefix}.norm2.weight"), &[D])?,
        })
    }

    /// Runs the block on `x` (`len` positions) in place.
    fn apply(&self, x: &mut [f32], len: usize, dilation: usize, scratch: &mut Scratch) {
        let mut conv = std::mem::take(&mut scratch.conv);
        let mut mixed = std::mem::take(&mut scratch.mixed);
        let mut ffn = std::mem::take(&mut scratch.ffn);
        conv.resize(len * D, 0.0);
        self.conv.apply(x, len, dilation, &mut conv);
        // Positions go through in chunks whose buffers stay in cache.
        for (rows, conv) in x[..len * D]
            .chunks_mut(CHUNK * D)
            .zip(conv.chunks(CHUNK * D))
        {
            mixed.resize(rows.len(), 0.0);
            ffn.resize(rows.len(), 0.0);
            self.pointwise.apply_rows(conv, &mut mixed);
            for (row, m) in rows.chunks_exact_mut(D).zip(mixed.chunks_exact(D)) {
                for (v, m) in row.iter_mut().zip(m) {
                    *v += m;
                }
                rms_norm(row, &self.norm1);
            }
            self.ffn.apply_rows(rows, &mut ffn, scratch);
            for (row, f) in rows.chunks_exact_mut(D).zip(ffn.chunks_exact(D)) {
                for (v, f) in row.iter_mut().zip(f) {
                    *v += f;
                }
                rms_norm(row, &self.norm2);
            }
        }
        scratch.conv = conv;
        scratch.mixed = mixed;
        scratch.ffn = ffn;
    }
}

/// Five bounded channels of the signed distance from the context's last
/// position, `delta = (position - (L - 1)) / L`.
pub fn recency(position: usize, len: usize) -> [f32; 5] {
    let delta = (position as f32 - (len - 1) as f32) / len as f32;
    let a = delta.abs();
    let sign = if delta > 0.0 {
        1.0
    } else if delta < 0.0 {
        -1.0
    } else {
        0.0
    };
    [
        delta,
        sign * a.ln_1p() / std::f32::consts::LN_2,
        (-0.5 * a).exp(),
        (-2.0 * a).exp(),
        (-8.0 * a).exp(),
    ]
}

pub struct Network {
    in_proj: Linear,
    periodic_proj: Linear,
    scale: Linear,
    block: Block,
    norm: Vec<f32>,
    summary_proj: Linear,
    queries: Vec<f32>,
    decoder_ffn: SwiGlu,
    decoder_norm: Vec<f32>,
    /// The two horizon convolutions (dilations 1 and 2) and their norms.
    horizon_convs: Vec<(DepthwiseConv, Vec<f32>)>,
    future_in: Linear,
    future_block: Block,
    future_out: Linear,
    out_proj: Linear,
}

impl Network {
    pub fn load(t: &Tensors<'_>) -> Result<Self, WeightError> {
        Ok(Self {
            in_proj: t.linear("core.in_proj", 7, D)?,
            periodic_proj: t.linear("core.periodic.proj", 2 * TOP_PERIODS, D)?,
            scale: t.linear("core.scale.to_gb", 2 * SCALE_FREQS, 2 * D)?,
            block: Block::load(t, "core.block")?,
            norm: t.get("core.norm.weight", &[D])?,
            summary_proj: t.linear("head.summary_proj", 5 + 2 * D, D)?,
            queries: t.get("head.queries", &[HORIZON, D])?,
            decoder_ffn: SwiGlu::load(t, "head.decoder_ffns.0")?,
            decoder_norm: t.get("head.decoder_norms.0.weight", &[D])?,
            horizon_convs: (0..2)
                .map(|i| {
                    let prefix = format!("head.fc_blocks.{i}");
                    Ok((
                        DepthwiseConv::load(t, &prefix)?,
                        t.get(&format!("{prefix}.norm.weight"), &[D])?,
                    ))
                })
                .collect::<Result<_, WeightError>>()?,
            future_in: t.linear("head.future_conv.in_proj", 6, D)?,
            future_block: Block::load(t, "head.future_conv.block")?,
            future_out: t.linear("head.future_conv.out_proj", D, D)?,
            out_proj: t.linear("head.out_proj", D, QUANTILES.len())?,
        })
    }

    /// The quantiles `[step][level]` of the next [`HORIZON`] steps of a
    /// normalised context of [`CONTEXT`] points (0 where `observed` is
    /// false).
    pub fn forward(&self, values: &[f32], observed: &[bool]) -> Vec<[f32; 9]> {
        let periods = periodogram::detect(values, observed, TOP_PERIODS);
        let hidden = self.encode(values, observed, &periods);
        self.decode(&hidden, values, observed, &periods)
    }

    fn encode(&self, values: &[f32], observed: &[bool], periods: &Periods) -> Vec<f32> {
        let len = values.len();
        let mut x = vec![0.0f32; len * D];
        let mut phase = [0.0f32; 2 * TOP_PERIODS];
        let mut projected = [0.0f32; D];
        for t in 0..len {
            let rec = recency(t, len);
            let features = [
                values[t],
                if observed[t] { 1.0 } else { 0.0 },
                rec[0],
                rec[1],
                rec[2],
                rec[3],
                rec[4],
            ];
            let row = &mut x[t * D..(t + 1) * D];
            self.in_proj.apply(&features, row);
            periods.phase(t, &mut phase);
            self.periodic_proj.apply(&phase, &mut projected);
            for (v, p) in row.iter_mut().zip(&projected) {
                *v += p;
            }
        }
        let mut scratch = Scratch::default();
        for stage in 0..STAGES {
            let dilation = 1usize << stage;
            self.condition(&mut x, stage);
            self.block.apply(&mut x, len, dilation, &mut scratch);
        }
        for row in x.chunks_exact_mut(D) {
            rms_norm(row, &self.norm);
        }
        x
    }

    /// FiLM on the scale coordinate `log2(dilation)`: `x * (1 + gamma) + beta`.
    fn condition(&self, x: &mut [f32], stage: u32) {
        let tau = stage as f32;
        let mut features = [0.0f32; 2 * SCALE_FREQS];
        for k in 0..SCALE_FREQS {
            let angle = tau / (1u32 << k) as f32 * std::f32::consts::PI;
            features[k] = angle.sin();
            features[SCALE_FREQS + k] = angle.cos();
        }
        let mut gb = [0.0f32; 2 * D];
        self.scale.apply(&features, &mut gb);
        let (gamma, beta) = gb.split_at(D);
        for row in x.chunks_exact_mut(D) {
            for c in 0..D {
                row[c] = row[c] * (1.0 + gamma[c]) + beta[c];
            }
        }
    }

    fn decode(
        &self,
        hidden: &[f32],
        values: &[f32],
        observed: &[bool],
        periods: &Periods,
    ) -> Vec<[f32; 9]> {
        let len = values.len();
        // The summary: the mean encoded position and the last one.
        let mut summary = vec![0.0f32; 5 + 2 * D];
        for row in hidden.chunks_exact(D) {
            for c in 0..D {
                summary[5 + c] += row[c];
            }
        }
        for c in 0..D {
            summary[5 + c] /= len as f32;
        }
        summary[5 + D..].copy_from_slice(&hidden[(len - 1) * D..]);
        let mut x = vec![0.0f32; HORIZON * D];
        let recencies: Vec<[f32; 5]> = (0..HORIZON).map(|j| recency(len + j, len)).collect();
        let mut ffn = [0.0f32; D];
        for (j, rec) in recencies.iter().enumerate() {
            summary[..5].copy_from_slice(rec);
            let row = &mut x[j * D..(j + 1) * D];
            self.summary_proj.apply(&summary, row);
            for (v, q) in row.iter_mut().zip(&self.queries[j * D..(j + 1) * D]) {
                *v += q;
            }
            self.decoder_ffn.apply(row, &mut ffn);
            for (v, f) in row.iter_mut().zip(&ffn) {
                *v += f;
            }
            rms_norm(row, &self.decoder_norm);
        }
        let mut conv = vec![0.0f32; HORIZON * D];
        for (i, (dw, norm)) in self.horizon_convs.iter().enumerate() {
            dw.apply(&x, HORIZON, 1 << i, &mut conv);
            for (row, c) in x.chunks_exact_mut(D).zip(conv.chunks_exact(D)) {
                for (v, y) in row.iter_mut().zip(c) {
                    *v += y;
                }
                rms_norm(row, norm);
            }
        }
        // The future path: the last encoded positions, then the seasonal
        // fill of each step, through the shared block at rising dilations.
        let fill = seasonal_fill(values, observed, periods.primary(), len);
        let seed = FUTURE_SEED.min(len);
        let mut z = vec![0.0f32; (seed + HORIZON) * D];
        z[..seed * D].copy_from_slice(&hidden[(len - seed) * D..]);
        for (j, rec) in recencies.iter().enumerate() {
            let input = [fill[j], rec[0], rec[1], rec[2], rec[3], rec[4]];
            self.future_in
                .apply(&input, &mut z[(seed + j) * D..(seed + j + 1) * D]);
        }
        let mut scratch = Scratch::default();
        for stage in 0..FUTURE_STAGES {
            self.future_block
                .apply(&mut z, seed + HORIZON, 1 << stage, &mut scratch);
        }
        let mut out = [0.0f32; D];
        for j in 0..HORIZON {
            self.future_out
                .apply(&z[(seed + j) * D..(seed + j + 1) * D], &mut out);
            for (v, o) in x[j * D..(j + 1) * D].iter_mut().zip(&out) {
                *v += o;
            }
        }
        x.chunks_exact(D)
            .map(|row| {
                let mut q = [0.0f32; 9];
                self.out_proj.apply(row, &mut q);
                q
            })
            .collect()
    }
}

/// For each future step, the mean of the observed context values at the
/// same phase of the primary period (in 16 bins), or of all observed values
/// when that bin is empty.
fn seasonal_fill(values: &[f32], observed: &[bool], primary: usize, len: usize) -> Vec<f32> {
    let p = primary.max(1) as f32;
    let bin = |t: usize| {
        let b = ((t as f32 % p) / p * PHASE_BINS as f32) as usize;
        b.min(PHASE_BINS - 1)
    };
    let mut totals = [0.0f32; PHASE_BINS];
    let mut counts = [0.0f32; PHASE_BINS];
    let (mut sum, mut weight) = (0.0f32, 0.0f32);
    for t in 0..len {
        if observed[t] {
            let b = bin(t);
            totals[b] += values[t];
            counts[b] += 1.0;
            sum += values[t];
            weight += 1.0;
        }
    }
    let mean = sum / weight.max(1.0);
    (0..HORIZON)
        .map(|j| {
            let b = bin(len + j);
            if counts[b] > 0.0 {
                totals[b] / counts[b]
            } else {
                mean
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_exponential_is_as_close_as_libm() {
        let mut worst = 0.0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let (got, want) = (f64::from(exp(x)), f64::from(x).exp());
            worst = worst.max((got - want).abs() / want);
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst:e}");
    }
}
