//! LLN-style network, seeds-spec §2.4 [REC]: Conv1D x2 (BN, ReLU, max-pool) -> BiLSTM ->
//! multi-head self-attention (residual + LayerNorm) -> global average pool -> Dense -> output.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::config::LlnConfig;
use crate::layers::{
    BiLstm, ConvFrontEnd, ConvFrontEndConfig, ForwardCtx, KerasMultiHeadAttention, LstmBias,
};

#[derive(Module, Debug)]
pub struct Lln {
    pub front: ConvFrontEnd,
    pub lstm: BiLstm,
    pub attention: KerasMultiHeadAttention,
    pub attention_norm: LayerNorm,
    pub dense: Linear,
    pub classifier: Linear,
    pub dropout: f64,
}

impl Lln {
    pub fn new(c: &LlnConfig, channels: usize, n_outputs: usize, device: &Device) -> Self {
        let same = c.kernel_size - 1;
        let front = ConvFrontEndConfig {
            channels,
            filters: [c.conv1_filters, c.conv2_filters],
            kernel_size: c.kernel_size,
            padding: (same / 2, same - same / 2),
            pool: c.pool,
            batch_norm_eps: c.batch_norm_eps,
        };
        let width = 2 * c.lstm_units;
        Self {
            front: ConvFrontEnd::new(&front, device),
            lstm: BiLstm::new(c.conv2_filters, c.lstm_units, LstmBias::Keras, device),
            attention: KerasMultiHeadAttention::new(width, c.heads, c.key_dim, device),
            attention_norm: LayerNormConfig::new(width)
                .with_epsilon(c.layer_norm_eps)
                .init(device),
            dense: LinearConfig::new(width, c.dense_units).init(device),
            classifier: LinearConfig::new(c.dense_units, n_outputs).init(device),
            dropout: c.dropout,
        }
    }

    /// `[B, C, L] -> [B, outputs]`.
    pub fn forward(&self, x: Tensor<3>, ctx: &mut ForwardCtx) -> Tensor<2> {
        let sequence = self
            .lstm
            .forward_sequence(self.front.forward_channels_last(x));
        let attended = self
            .attention_norm
            .forward(sequence.clone() + self.attention.forward(sequence));
        let attended = ctx.dropout(attended, self.dropout);
        let [batch, _, width] = attended.dims();
        let pooled = attended.mean_dim(1).reshape([batch, width]);
        let hidden = ctx.dropout(relu(self.dense.forward(pooled)), self.dropout);
        self.classifier.forward(hidden)
    }
}
