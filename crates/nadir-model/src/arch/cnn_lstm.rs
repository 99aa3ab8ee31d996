//! CNN-LSTM, seeds-spec §5.1: Conv1d x2 (+ BN, ReLU, max-pool) -> dropout -> LSTM -> Linear on the last step.

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::pool::{MaxPool1d, MaxPool1dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig1d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::config::CnnLstmConfig;
use crate::layers::{ForwardCtx, Lstm, LstmBias};

#[derive(Module, Debug)]
pub struct CnnLstm {
    pub conv1: Conv1d,
    pub norm1: BatchNorm,
    pub conv2: Conv1d,
    pub norm2: BatchNorm,
    pub pool: MaxPool1d,
    pub lstm: Vec<Lstm>,
    pub classifier: Linear,
    pub dropout: f64,
}

impl CnnLstm {
    pub fn new(c: &CnnLstmConfig, channels: usize, n_outputs: usize, device: &Device) -> Self {
        let conv = |c_in, c_out| {
            Conv1dConfig::new(c_in, c_out, c.kernel_size)
                .with_padding(PaddingConfig1d::Explicit(c.padding, c.padding))
                .init(device)
        };
        let lstm = (0..c.lstm_layers)
            .map(|layer| {
                let d_input = if layer == 0 {
                    c.conv2_channels
                } else {
                    c.lstm_hidden
                };
                Lstm::new(d_input, c.lstm_hidden, LstmBias::Torch, false, device)
            })
            .collect();
        Self {
            conv1: conv(channels, c.conv1_channels),
            norm1: BatchNormConfig::new(c.conv1_channels).init(device),
            conv2: conv(c.conv1_channels, c.conv2_channels),
            norm2: BatchNormConfig::new(c.conv2_channels).init(device),
            pool: MaxPool1dConfig::new(c.pool).with_stride(c.pool).init(),
            lstm,
            classifier: LinearConfig::new(c.lstm_hidden, n_outputs).init(device),
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
        let mut sequence = ctx.dropout(x, self.dropout).swap_dims(1, 2);
        let layers = self.lstm.len();
        for layer in &self.lstm[..layers - 1] {
            sequence = ctx.dropout(layer.forward_sequence(sequence), self.dropout);
        }
        let last = self.lstm[layers - 1].forward_last(sequence);
        self.classifier.forward(last)
    }
}
