//! LLN-style network, seeds-spec §2.4 [REC]: Conv1D x2 (BN, ReLU, max-pool) -> BiLSTM ->
//! multi-head self-attention (residual + LayerNorm) -> global average pool -> Dense -> output.

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::pool::{MaxPool1d, MaxPool1dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig1d,
};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::config::LlnConfig;
use crate::layers::{BiLstm, ForwardCtx, KerasMultiHeadAttention, LstmBias};

#[derive(Module, Debug)]
pub struct Lln {
    pub conv1: Conv1d,
    pub norm1: BatchNorm,
    pub conv2: Conv1d,
    pub norm2: BatchNorm,
    pub pool: MaxPool1d,
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
        let conv = |c_in, c_out| {
            Conv1dConfig::new(c_in, c_out, c.kernel_size)
                .with_padding(PaddingConfig1d::Explicit(same / 2, same - same / 2))
                .init(device)
        };
        let width = 2 * c.lstm_units;
        Self {
            conv1: conv(channels, c.conv1_filters),
            norm1: BatchNormConfig::new(c.conv1_filters)
                .with_epsilon(c.batch_norm_eps)
                .init(device),
            conv2: conv(c.conv1_filters, c.conv2_filters),
            norm2: BatchNormConfig::new(c.conv2_filters)
                .with_epsilon(c.batch_norm_eps)
                .init(device),
            pool: MaxPool1dConfig::new(c.pool).with_stride(c.pool).init(),
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
        let x = self
            .pool
            .forward(relu(self.norm1.forward(self.conv1.forward(x))));
        let x = self
            .pool
            .forward(relu(self.norm2.forward(self.conv2.forward(x))));
        let sequence = self.lstm.forward_sequence(x.swap_dims(1, 2));
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
