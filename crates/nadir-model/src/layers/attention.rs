//! Keras-style multi-head self-attention and the additive attention pooling of seeds-spec §3.2.

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::{softmax, tanh};
use burn::tensor::{Device, Tensor};

/// `keras.layers.MultiHeadAttention` for self-attention: Q, K, V project `d_model` to
/// `heads x key_dim` (key_dim need not be `d_model / heads`), the output projects back to `d_model`.
#[derive(Module, Debug)]
pub struct KerasMultiHeadAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub output: Linear,
    pub heads: usize,
    pub key_dim: usize,
}

impl KerasMultiHeadAttention {
    pub fn new(d_model: usize, heads: usize, key_dim: usize, device: &Device) -> Self {
        let inner = heads * key_dim;
        let projection = |d_in, d_out| {
            LinearConfig::new(d_in, d_out)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
        };
        Self {
            query: projection(d_model, inner),
            key: projection(d_model, inner),
            value: projection(d_model, inner),
            output: projection(inner, d_model),
            heads,
            key_dim,
        }
    }

    /// Self-attention over `[B, T, d_model]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, steps, _] = x.dims();
        if steps == 1 {
            // Softmax over one key is exactly 1: the output is the value projection (and Q, K get
            // zero gradient in either form), so skip the score computation.
            return self.output.forward(self.value.forward(x));
        }
        let split_heads = |t: Tensor<3>| {
            t.reshape([batch, steps, self.heads, self.key_dim])
                .swap_dims(1, 2)
        };
        let q = split_heads(self.query.forward(x.clone()));
        let k = split_heads(self.key.forward(x.clone()));
        let v = split_heads(self.value.forward(x));
        let scale = 1.0 / (self.key_dim as f64).sqrt();
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale);
        let weights = softmax(scores, 3);
        let context =
            weights
                .matmul(v)
                .swap_dims(1, 2)
                .reshape([batch, steps, self.heads * self.key_dim]);
        self.output.forward(context)
    }
}

/// `e = tanh(x W + b_t)`, `alpha = softmax_t(e)`, `context = sum_t alpha_t x_t` (seeds-spec §3.2;
/// the bias has one entry per time step, so the layer is built for a fixed sequence length).
#[derive(Module, Debug)]
pub struct AdditiveAttention {
    /// `[d_model, 1]`.
    pub weight: Param<Tensor<2>>,
    /// `[steps]`.
    pub bias: Param<Tensor<1>>,
}

impl AdditiveAttention {
    pub fn new(d_model: usize, steps: usize, device: &Device) -> Self {
        Self {
            weight: Initializer::XavierUniform { gain: 1.0 }.init_with(
                [d_model, 1],
                Some(d_model),
                Some(1),
                device,
            ),
            bias: Initializer::Zeros.init([steps], device),
        }
    }

    /// `[B, T, D] -> [B, D]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let [batch, steps, d_model] = x.dims();
        if steps == 1 {
            // alpha = softmax over one step = 1: the context is the single step.
            return x.reshape([batch, d_model]);
        }
        let energy = x
            .clone()
            .reshape([batch * steps, d_model])
            .matmul(self.weight.val())
            .reshape([batch, steps])
            + self.bias.val().unsqueeze_dim::<2>(0);
        let alpha = softmax(tanh(energy), 1).unsqueeze_dim::<3>(2);
        (x * alpha).sum_dim(1).reshape([batch, d_model])
    }
}
