//! The released weights, read from safetensors.

#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    #[error("the weights are not valid safetensors: {0}")]
    Format(String),
    #[error("tensor `{0}` is missing from the weights")]
    Missing(String),
    #[error("tensor `{name}` has shape {got:?} and dtype {dtype}, expected F32 {want:?}")]
    Shape {
        name: String,
        got: Vec<usize>,
        want: Vec<usize>,
        dtype: String,
    },
}

/// Every tensor of a safetensors file, by name.
pub struct Tensors<'a> {
    file: safetensors::SafeTensors<'a>,
}

impl<'a> Tensors<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WeightError> {
        let file = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| WeightError::Format(e.to_string()))?;
        Ok(Self { file })
    }

    /// Tensor `name` as `f32` values, checked to have `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, WeightError> {
        let view = self
            .file
            .tensor(name)
            .map_err(|_| WeightError::Missing(name.to_owned()))?;
        if view.dtype() != safetensors::Dtype::F32 || view.shape() != shape {
            return Err(WeightError::Shape {
                name: name.to_owned(),
                got: view.shape().to_vec(),
                want: shape.to_vec(),
                dtype: format!("{:?}", view.dtype()),
            });
        }
        Ok(view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// A linear layer `prefix.weight` `[outputs, inputs]` and `prefix.bias`.
    pub fn linear(
        &self,
        prefix: &str,
        inputs: usize,
        outputs: usize,
    ) -> Result<Linear, WeightError> {
        let weight = self.get(&format!("{prefix}.weight"), &[outputs, inputs])?;
        // Stored input by input: each input's weights to every output are
        // contiguous, so a layer is a sum of scaled rows that vectorises
        // across outputs.
        let mut transposed = vec![0.0f32; inputs * outputs];
        for o in 0..outputs {
            for i in 0..inputs {
                transposed[i * outputs + o] = weight[o * inputs + i];
            }
        }
        // For layers whose outputs are a multiple of a tile's width, the
        // same weights in panels of eight outputs: `[panel][input][8]`, so
        // a tile reads its weights in order.
        let panels = if outputs.is_multiple_of(TILE_OUTPUTS) {
            (0..outputs / TILE_OUTPUTS)
                .flat_map(|p| {
                    let transposed = &transposed;
                    (0..inputs).map(move |i| {
                        let start = i * outputs + p * TILE_OUTPUTS;
                        <[f32; TILE_OUTPUTS]>::try_from(&transposed[start..start + TILE_OUTPUTS])
                            .expect("a panel's width")
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Linear {
            transposed,
            panels,
            bias: self.get(&format!("{prefix}.bias"), &[outputs])?,
            inputs,
        })
    }
}

/// `y = W x + b`, with `W` kept transposed (`[inputs][outputs]`).
pub struct Linear {
    transposed: Vec<f32>,
    panels: Vec<[f32; TILE_OUTPUTS]>,
    bias: Vec<f32>,
    inputs: usize,
}

/// Rows a tile of [`Linear::apply_rows`] takes at once.
const TILE_ROWS: usize = 4;
/// Outputs a tile takes at once: two 4-lane vectors per row.
const TILE_OUTPUTS: usize = 8;
/// Inputs a tile takes per loop iteration (WebAssembly's tile has no loop
/// for the layers' input counts: [`tile_unrolled`]).
#[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
const UNROLL: usize = 2;
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
const UNROLL: usize = 1;

impl Linear {
    pub fn apply(&self, x: &[f32], y: &mut [f32]) {
        debug_assert_eq!(x.len(), self.inputs);
        y.copy_from_slice(&self.bias);
        let outputs = y.len();
        for (xi, column) in x.iter().zip(self.transposed.chunks_exact(outputs)) {
            for (out, w) in y.iter_mut().zip(column) {
                *out += w * xi;
            }
        }
    }

    /// [`Linear::apply`] on each row of `x` (`[row][input]`) into the same
    /// row of `y` (`[row][output]`). Rows go four at a time through tiles
    /// of eight outputs: each weight loaded serves four rows, and the 4 x 8
    /// running sums (eight vectors) stay in registers, where one row at a
    /// time reloads and stores its sums for every input.
    pub fn apply_rows(&self, x: &[f32], y: &mut [f32]) {
        let inputs = self.inputs;
        let outputs = self.bias.len();
        debug_assert_eq!(x.len() / inputs, y.len() / outputs);
        let tiled = if self.panels.is_empty() || !inputs.is_multiple_of(UNROLL) {
            0
        } else {
            x.len() / inputs / TILE_ROWS * TILE_ROWS
        };
        let (x_tiled, x_rest) = x.split_at(tiled * inputs);
        let (y_tiled, y_rest) = y.split_at_mut(tiled * outputs);
        let mut out = [[0.0f32; TILE_OUTPUTS]; TILE_ROWS];
        let mut spread = Vec::new();
        for (xs, ys) in x_tiled
            .chunks_exact(TILE_ROWS * inputs)
            .zip(y_tiled.chunks_exact_mut(TILE_ROWS * outputs))
        {
            let (r0, rest) = xs.split_at(inputs);
            let (r1, rest) = rest.split_at(inputs);
            let (r2, r3) = rest.split_at(inputs);
            let rows = prepare(
                [r0, r1, r2, r3].map(|r| r.as_chunks::<UNROLL>().0),
                &mut spread,
            );
            for ((panel, bias), o) in self
                .panels
                .chunks_exact(inputs)
                .zip(self.bias.as_chunks::<TILE_OUTPUTS>().0)
                .zip((0..outputs).step_by(TILE_OUTPUTS))
            {
                tile(rows, panel.as_chunks::<UNROLL>().0, bias, &mut out);
                for (row, sums) in ys.chunks_exact_mut(outputs).zip(&out) {
                    row[o..o + TILE_OUTPUTS].copy_from_slice(sums);
                }
            }
        }
        for (xr, yr) in x_rest
            .chunks_exact(inputs)
            .zip(y_rest.chunks_exact_mut(outputs))
        {
            self.apply(xr, yr);
        }
    }
}

/// A tile's rows as [`tile`] reads them: as they are.
#[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
type Spread = ();

#[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
#[inline(always)]
fn prepare<'a>(
    rows: [&'a [[f32; UNROLL]]; TILE_ROWS],
    _: &'a mut Vec<Spread>,
) -> [&'a [[f32; UNROLL]]; TILE_ROWS] {
    rows
}

/// Eight outputs of four rows: `rows[r]` are a row's inputs in fours,
/// `panel` the eight outputs' weights of each input, in the same fours.
/// Products and sums the compiler turns into the target's vector
/// instructions.
#[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
#[inline(always)]
fn tile(
    rows: [&[[f32; UNROLL]]; TILE_ROWS],
    panel: &[[[f32; TILE_OUTPUTS]; UNROLL]],
    bias: &[f32; TILE_OUTPUTS],
    out: &mut [[f32; TILE_OUTPUTS]; TILE_ROWS],
) {
    let mut sums = [*bias; TILE_ROWS];
    let [r0, r1, r2, r3] = rows;
    let inputs = r0.iter().zip(r1).zip(r2).zip(r3).zip(panel);
    for ((((a0, a1), a2), a3), weights) in inputs {
        for (u, w) in weights.iter().enumerate() {
            for (sum, a) in sums.iter_mut().zip([a0[u], a1[u], a2[u], a3[u]]) {
                for (s, wv) in sum.iter_mut().zip(w) {
                    *s += a * wv;
                }
            }
        }
    }
    *out = sums;
}

/// In WebAssembly, a tile's rows with each input already spread to every
/// lane, `[input][row]`: made once per four rows and read by every panel of
/// outputs, so the tile loads them as it
/// multiplies instead of spreading scalars (LLVM's WebAssembly output keeps
/// those live across the loop, and Cranelift spills them).
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
type Spread = [[lanes::Lanes; TILE_ROWS]; UNROLL];

#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
fn prepare<'a>(rows: [&[[f32; UNROLL]]; TILE_ROWS], spread: &'a mut Vec<Spread>) -> &'a [Spread] {
    spread.clear();
    let [r0, r1, r2, r3] = rows;
    for (((a0, a1), a2), a3) in r0.iter().zip(r1).zip(r2).zip(r3) {
        spread.push(std::array::from_fn(|u| {
            [a0[u], a1[u], a2[u], a3[u]].map(lanes::splat)
        }));
    }
    spread
}

/// `body` written out twice, each copy in its own block.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
macro_rules! times2 {
    ($($body:tt)*) => {{
        { $($body)* }
        { $($body)* }
    }};
}

/// `body` written out four times over, each copy in its own block.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
macro_rules! times4 {
    ($($body:tt)*) => {{
        { $($body)* }
        { $($body)* }
        { $($body)* }
        { $($body)* }
    }};
}

/// [`tile`] with relaxed SIMD's fused multiply-add, on spread inputs.
///
/// The layers' input counts (64 and 96) go through straight-line code with
/// no loop over the inputs. wasmtime checks the deadline at every loop
/// header, and Cranelift keeps whatever a loop carries across that check's
/// call in memory: a tile loop's eight sums went to the stack and back at
/// every iteration, each store and reload on the chain of additions.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
#[inline(always)]
fn tile(
    rows: &[Spread],
    panel: &[[[f32; TILE_OUTPUTS]; UNROLL]],
    bias: &[f32; TILE_OUTPUTS],
    out: &mut [[f32; TILE_OUTPUTS]; TILE_ROWS],
) {
    match rows.len() {
        64 => tile_unrolled::<64>(rows, panel, bias, out),
        96 => tile_unrolled::<96>(rows, panel, bias, out),
        _ => tile_loop(rows, panel, bias, out),
    }
}

/// Every how many inputs the unrolled tile writes its sums out.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
const SINK: usize = 2;

/// [`tile`] for `N` inputs (at most 128), unrolled. Every [`SINK`] inputs
/// the sums are written to a local with volatile stores, which nothing
/// reads: Cranelift places a pure instruction just before its first use by
/// one with an effect, so without them every multiply-add would wait for
/// the tile's last store and every value loaded for the tile would be live
/// until then. With a write every two inputs the loads stay next to the
/// products that use them (measured against every one, four and eight).
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
#[inline(always)]
fn tile_unrolled<const N: usize>(
    rows: &[Spread],
    panel: &[[[f32; TILE_OUTPUTS]; UNROLL]],
    bias: &[f32; TILE_OUTPUTS],
    out: &mut [[f32; TILE_OUTPUTS]; TILE_ROWS],
) {
    const { assert!(UNROLL == 1 && N <= 128) };
    let rows: &[Spread; N] = rows.try_into().expect("N inputs");
    let panel: &[[[f32; TILE_OUTPUTS]; UNROLL]; N] = panel.try_into().expect("N inputs");
    let bias = lanes::load8(bias);
    let mut sums = [bias; TILE_ROWS];
    let mut sink = [bias; TILE_ROWS];
    let mut k = 0;
    // 128 copies; those past `N` fold away, as does every `k` test.
    times4!(times4!(times4!(times2!(
        if k < N {
            let w = lanes::load8(&panel[k][0]);
            for ((sum, a), sink) in sums.iter_mut().zip(&rows[k][0]).zip(&mut sink) {
                for ((s, w), sink) in sum.iter_mut().zip(w).zip(sink) {
                    *s = lanes::mul_add(*a, w, *s);
                    if k % SINK == SINK - 1 {
                        // SAFETY: `sink` is a live local, written whole.
                        unsafe { core::ptr::write_volatile(sink, *s) };
                    }
                }
            }
        }
        k += 1;
    ))));
    for (o, sum) in out.iter_mut().zip(sums) {
        lanes::store8(sum, o);
    }
}

/// [`tile`] as a loop, for other input counts.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
#[inline(always)]
fn tile_loop(
    rows: &[Spread],
    panel: &[[[f32; TILE_OUTPUTS]; UNROLL]],
    bias: &[f32; TILE_OUTPUTS],
    out: &mut [[f32; TILE_OUTPUTS]; TILE_ROWS],
) {
    let bias = lanes::load8(bias);
    let mut sums = [bias; TILE_ROWS];
    for (spread, weights) in rows.iter().zip(panel) {
        for (a, w) in spread.iter().zip(weights) {
            let w = lanes::load8(w);
            for (sum, a) in sums.iter_mut().zip(a) {
                for (s, w) in sum.iter_mut().zip(w) {
                    *s = lanes::mul_add(*a, w, *s);
                }
            }
        }
    }
    for (o, sum) in out.iter_mut().zip(sums) {
        lanes::store8(sum, o);
    }
}

/// Four `f32` lanes of WebAssembly SIMD. `mul_add` is one fused
/// multiply-add where the machine has it (wasmtime emits `vfmadd` on x86
/// with FMA), so results may differ from an unfused product and sum in the
/// last place.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
mod lanes {
    use core::arch::wasm32::{f32x4_relaxed_madd, f32x4_splat, v128};

    pub type Lanes = v128;

    #[inline(always)]
    pub fn load8(a: &[f32; 8]) -> [Lanes; 2] {
        let p = a.as_ptr().cast::<v128>();
        // SAFETY: `a` is 32 readable bytes, two `v128`s; `read_unaligned`
        // asks nothing of their alignment.
        unsafe { [p.read_unaligned(), p.add(1).read_unaligned()] }
    }

    #[inline(always)]
    pub fn splat(a: f32) -> Lanes {
        f32x4_splat(a)
    }

    /// `a * b + c`.
    #[inline(always)]
    pub fn mul_add(a: Lanes, b: Lanes, c: Lanes) -> Lanes {
        f32x4_relaxed_madd(a, b, c)
    }

    #[inline(always)]
    pub fn store8([lo, hi]: [Lanes; 2], out: &mut [f32; 8]) {
        let p = out.as_mut_ptr().cast::<v128>();
        // SAFETY: `out` is 32 writable bytes, two `v128`s; `write_unaligned`
        // asks nothing of their alignment.
        unsafe {
            p.write_unaligned(lo);
            p.add(1).write_unaligned(hi);
        }
    }
}
