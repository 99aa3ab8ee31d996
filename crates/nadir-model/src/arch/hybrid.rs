//! Hybrid LSTM + additive attention + Transformer block, seeds-spec §3.2.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::config::HybridConfig;
use crate::layers::{AdditiveAttention, ForwardCtx, KerasMultiHeadAttention, Lstm, LstmBias};

#[derive(Module, Debug)]
pub struct Hybrid {
    pub lstm: Lstm,
    pub pooling: AdditiveAttention,
    pub attention: KerasMultiHeadAttention,
    pub attention_norm: LayerNorm,
    pub ffn_in: Linear,
    pub ffn_out: Linear,
    pub ffn_norm: LayerNorm,
    pub classifier: Linear,
    pub attention_dropout: f64,
    /// Transformer block over all steps before pooling (the documented k > 1 variant).
    pub sequence_transformer: bool,
    /// Input is channel-major windows `(F, k)` that need transposing to `(k, F)`.
    pub windows: bool,
}

impl Hybrid {
    pub fn new(
        c: &HybridConfig,
        features: usize,
        steps: usize,
        windows: bool,
        n_outputs: usize,
        device: &Device,
    ) -> Self {
        let width = c.lstm_units;
        let norm = || {
            LayerNormConfig::new(width)
                .with_epsilon(c.layer_norm_eps)
                .init(device)
        };
        Self {
            lstm: Lstm::new(features, width, LstmBias::Keras, false, device),
            pooling: AdditiveAttention::new(width, steps, device),
            attention: KerasMultiHeadAttention::new(width, c.heads, c.key_dim, device),
            attention_norm: norm(),
            ffn_in: LinearConfig::new(width, c.ffn_units).init(device),
            ffn_out: LinearConfig::new(c.ffn_units, width).init(device),
            ffn_norm: norm(),
            classifier: LinearConfig::new(width, n_outputs).init(device),
            attention_dropout: c.attention_dropout,
            sequence_transformer: c.sequence_transformer,
            windows,
        }
    }

    fn transformer_block(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self
            .attention_norm
            .forward(x.clone() + self.attention.forward(x));
        let ffn = self.ffn_out.forward(relu(self.ffn_in.forward(x.clone())));
        self.ffn_norm.forward(x + ffn)
    }

    /// Tabular `[B, 1, F]` (one step) or windows `[B, F, k]` -> `[B, outputs]`.
    pub fn forward(&self, x: Tensor<3>, ctx: &mut ForwardCtx) -> Tensor<2> {
        let steps_first = if self.windows { x.swap_dims(1, 2) } else { x };
        let [batch, _, _] = steps_first.dims();
        let sequence = self.lstm.forward_sequence(steps_first);
        let width = sequence.dims()[2];
        let encoded = if self.sequence_transformer {
            let sequence = self.transformer_block(sequence);
            ctx.dropout(self.pooling.forward(sequence), self.attention_dropout)
        } else {
            let context = ctx.dropout(self.pooling.forward(sequence), self.attention_dropout);
            self.transformer_block(context.unsqueeze_dim::<3>(1))
                .reshape([batch, width])
        };
        self.classifier.forward(encoded)
    }
}
