//! Dense autoencoder (seeds-spec §3.1 step 5): F -> hidden... -> code (ReLU) -> hidden... -> F.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor, TensorData};

use crate::config::{AutoencoderConfig, DecoderOutput};
use crate::layers::{dense_stack, is_flex, Activation, Dense, F32Values};

#[derive(Module, Debug)]
pub struct Autoencoder {
    pub encoder: Vec<Linear>,
    pub decoder: Vec<Linear>,
    pub sigmoid_output: bool,
}

impl Autoencoder {
    pub fn new(c: &AutoencoderConfig, features: usize, device: &Device) -> Self {
        let mut widths = vec![features];
        widths.extend(&c.hidden);
        widths.push(c.code_dim);
        let encoder = widths
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        let decoder = widths
            .windows(2)
            .rev()
            .map(|w| LinearConfig::new(w[1], w[0]).init(device))
            .collect();
        Self {
            encoder,
            decoder,
            sigmoid_output: c.decoder_output == DecoderOutput::Sigmoid,
        }
    }

    /// `[B, F] -> [B, code]`.
    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        self.encoder
            .iter()
            .fold(x, |h, layer| relu(layer.forward(h)))
    }

    /// Reconstruction `[B, F] -> [B, F]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        if !x.is_autodiff() && is_flex(&x.device()) {
            return self.forward_fused(x);
        }
        let mut h = self.encode(x);
        let last = self.decoder.len() - 1;
        for (i, layer) in self.decoder.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = relu(h);
            }
        }
        if self.sigmoid_output {
            sigmoid(h)
        } else {
            h
        }
    }

    /// [`forward`](Self::forward) at inference on Flex, as plain GEMMs ([`dense_stack`]):
    /// `bench_models` batch 1024 17.3 M -> 21.3 M rows/s; one-sample calls ~10 % slower
    /// (reading the weights out of their tensors per call), still ~2.4x ONNX Runtime.
    fn forward_fused(&self, x: Tensor<2>) -> Tensor<2> {
        let [rows, features] = x.dims();
        let device = x.device();
        let layers: Vec<&Linear> = self.encoder.iter().chain(&self.decoder).collect();
        let data: Vec<(F32Values, F32Values)> = layers
            .iter()
            .map(|layer| {
                let bias = match &layer.bias {
                    Some(bias) => bias.val(),
                    None => Tensor::zeros([layer.weight.dims()[1]], &device),
                };
                (F32Values::of(layer.weight.val()), F32Values::of(bias))
            })
            .collect();
        let last = layers.len() - 1;
        let dense: Vec<Dense<'_>> = data
            .iter()
            .enumerate()
            .map(|(i, (weight, bias))| Dense {
                weight: weight.as_slice(),
                bias: bias.as_slice(),
                activation: match (i == last, self.sigmoid_output) {
                    (false, _) => Activation::Relu,
                    (true, true) => Activation::Sigmoid,
                    (true, false) => Activation::Identity,
                },
            })
            .collect();
        let x = F32Values::of(x);
        let out = dense_stack(x.as_slice(), rows, &dense);
        Tensor::from_data(TensorData::new(out, [rows, features]), &device)
    }
}
