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
        Ok(Linear {
            transposed,
            bias: self.get(&format!("{prefix}.bias"), &[outputs])?,
            inputs,
        })
    }
}

/// `y = W x + b`, with `W` kept transposed (`[inputs][outputs]`).
pub struct Linear {
    transposed: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
}

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
}
