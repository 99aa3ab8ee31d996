//! LLAFormerNet, seeds-spec §1.3: one flow's F features read as a length-F sequence of 1 channel.

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig1d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::config::LlaformerConfig;
use crate::layers::{
    conv1d_rows, is_flex, tanh_sigmoid_gate, ForwardCtx, Lstm, LstmBias, RowsGeometry,
};

#[derive(Module, Debug)]
pub struct Llaformer {
    pub conv: Conv1d,
    pub conv_norm: LayerNorm,
    pub lstm: Lstm,
    /// The GLU-style gate `Dense(tanh) ⊙ Dense(sigmoid)`, both halves in one matrix
    /// (same 2 x 1,056 parameters, one GEMM instead of two).
    pub gate: Linear,
    pub tcn: Conv1d,
    pub tcn_norm: LayerNorm,
    pub classifier: Linear,
    pub units: usize,
    pub dropout: f64,
}

impl Llaformer {
    pub fn new(c: &LlaformerConfig, n_outputs: usize, device: &Device) -> Self {
        let same = c.kernel_size - 1;
        let causal = (c.kernel_size - 1) * c.tcn_dilation;
        Self {
            conv: Conv1dConfig::new(1, c.conv_filters, c.kernel_size)
                .with_padding(PaddingConfig1d::Explicit(same / 2, same - same / 2))
                .init(device),
            conv_norm: LayerNormConfig::new(c.conv_filters)
                .with_epsilon(c.layer_norm_eps)
                .init(device),
            lstm: Lstm::new(c.conv_filters, c.lstm_units, LstmBias::Keras, false, device),
            gate: LinearConfig::new(c.lstm_units, 2 * c.lstm_units).init(device),
            tcn: Conv1dConfig::new(c.conv_filters, c.lstm_units, c.kernel_size)
                .with_dilation(c.tcn_dilation)
                .with_padding(PaddingConfig1d::Explicit(causal, 0))
                .init(device),
            tcn_norm: LayerNormConfig::new(c.lstm_units)
                .with_epsilon(c.layer_norm_eps)
                .init(device),
            classifier: LinearConfig::new(c.lstm_units, n_outputs).init(device),
            units: c.lstm_units,
            dropout: c.dropout,
        }
    }

    /// `[B, 1, F] -> [B, outputs]`.
    pub fn forward(&self, x: Tensor<3>, ctx: &mut ForwardCtx) -> Tensor<2> {
        let [batch, _, length] = x.dims();
        // Conv over the feature axis, LayerNorm over channels: [B, F, C]. One channel in, so
        // [B, 1, F] is already channels-last [B, F, 1].
        let features = self.conv_norm.forward(relu(channels_last_conv(
            &self.conv,
            x.reshape([batch, length, 1]),
        )));
        let sequence = self.lstm.forward_sequence(features.clone());
        let gated = tanh_sigmoid_gate(self.gate.forward(sequence), self.units);
        let tcn = relu(channels_last_conv(&self.tcn, features));
        let merged = gated + self.tcn_norm.forward(tcn);
        let pooled = merged.mean_dim(1).reshape([batch, self.units]);
        self.classifier.forward(ctx.dropout(pooled, self.dropout))
    }
}

/// `conv` over channels-last `x [B, L, C] -> [B, L', F]`: on Flex as one GEMM form with no
/// layout copies (burn's channels-first Conv1d needed a transpose on each side, a tenth of
/// batch-1024 scoring in `copy_2d_tiled`), elsewhere burn's layer between transposes.
fn channels_last_conv(conv: &Conv1d, x: Tensor<3>) -> Tensor<3> {
    match RowsGeometry::of(conv).filter(|_| is_flex(&x.device())) {
        Some(geometry) => {
            let bias = match &conv.bias {
                Some(bias) => bias.val(),
                None => Tensor::zeros([conv.weight.dims()[0]], &x.device()),
            };
            conv1d_rows(x, conv.weight.val(), bias, geometry)
        }
        None => conv.forward(x.swap_dims(1, 2)).swap_dims(1, 2),
    }
}
