//! LDPI, seeds-spec §4.3: tsai ResCNN (separable, c_in 1) encoder + projection head, with
//! either a linear classifier on the head's embedding (supervised training) or Deep SAD's
//! centre (§4.5): then the output is the squared distance of the unnormalised embedding
//! (`encode`) to the centre.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::config::LdpiConfig;
use crate::layers::{
    elu_rectifier, leaky_rectifier, pointwise_norm, prelu_rectifier, ForwardCtx, SeparableConv1d,
};

/// Separable conv + BatchNorm (the activation is applied by the caller).
#[derive(Module, Debug)]
pub struct ConvBlock {
    pub conv: SeparableConv1d,
    pub norm: BatchNorm,
}

impl ConvBlock {
    fn new(c_in: usize, c_out: usize, kernel: usize, device: &Device) -> Self {
        Self {
            conv: SeparableConv1d::new(c_in, c_out, kernel, device),
            norm: BatchNormConfig::new(c_out).init(device),
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.conv.forward_norm(x, &self.norm)
    }
}

/// Linear without bias + BatchNorm1d (+ ReLU by the caller).
#[derive(Module, Debug)]
pub struct HeadLayer {
    pub linear: Linear,
    pub norm: BatchNorm,
}

#[derive(Module, Debug)]
pub struct Ldpi {
    pub block1a: ConvBlock,
    pub block1b: ConvBlock,
    pub block1c: ConvBlock,
    pub shortcut_conv: Conv1d,
    pub shortcut_norm: BatchNorm,
    pub block2: ConvBlock,
    pub block3: ConvBlock,
    pub prelu_alpha: Param<Tensor<1>>,
    pub block4: ConvBlock,
    pub head: Vec<HeadLayer>,
    pub projection: Linear,
    /// The supervised head; `None` under Deep SAD.
    pub classifier: Option<Linear>,
    /// Deep SAD's hypersphere centre (not trained: set once from the pretrained encoder's
    /// mean embedding); `None` for the supervised head.
    pub center: Option<Param<Tensor<1>>>,
    pub leaky_relu_slope: f64,
    pub elu_alpha: f64,
}

impl Ldpi {
    /// `n_outputs` logits from a classifier, or with `hypersphere` a centre of the embedding's
    /// size and a projection without bias (a bias lets Deep SAD map everything onto the
    /// centre: Ruff et al.'s "hypersphere collapse").
    pub fn new(c: &LdpiConfig, n_outputs: usize, hypersphere: bool, device: &Device) -> Self {
        let [w1, w2, w3, w4] = c.block_channels;
        let [k1, k2, k3] = c.block1_kernels;
        let xavier = Initializer::XavierUniform { gain: 1.0 };
        let head = (0..c.head_layers)
            .map(|layer| {
                let d_in = if layer == 0 { w4 } else { c.embedding_dim };
                HeadLayer {
                    linear: LinearConfig::new(d_in, c.embedding_dim)
                        .with_bias(false)
                        .with_initializer(xavier.clone())
                        .init(device),
                    norm: BatchNormConfig::new(c.embedding_dim).init(device),
                }
            })
            .collect();
        let projection_in = if c.head_layers == 0 {
            w4
        } else {
            c.embedding_dim
        };
        Self {
            block1a: ConvBlock::new(1, w1, k1, device),
            block1b: ConvBlock::new(w1, w1, k2, device),
            block1c: ConvBlock::new(w1, w1, k3, device),
            shortcut_conv: Conv1dConfig::new(1, w1, 1).with_bias(false).init(device),
            shortcut_norm: BatchNormConfig::new(w1).init(device),
            block2: ConvBlock::new(w1, w2, k3, device),
            block3: ConvBlock::new(w2, w3, k3, device),
            prelu_alpha: Initializer::Constant { value: 0.25 }.init([1], device),
            block4: ConvBlock::new(w3, w4, k3, device),
            head,
            projection: LinearConfig::new(projection_in, c.embedding_dim)
                .with_bias(!hypersphere)
                .with_initializer(xavier)
                .init(device),
            classifier: (!hypersphere)
                .then(|| LinearConfig::new(c.embedding_dim, n_outputs).init(device)),
            center: hypersphere.then(|| {
                Param::from_tensor(Tensor::zeros([c.embedding_dim], device)).set_require_grad(false)
            }),
            leaky_relu_slope: c.leaky_relu_slope,
            elu_alpha: c.elu_alpha,
        }
    }

    /// ResCNN encoder: `[B, 1, L] -> [B, block4 channels]`.
    pub fn encoder(&self, x: Tensor<3>) -> Tensor<2> {
        let residual = self.block1c.forward(relu(
            self.block1b.forward(relu(self.block1a.forward(x.clone()))),
        ));
        let shortcut = pointwise_norm(x, self.shortcut_conv.weight.val(), &self.shortcut_norm);
        let x = relu(residual + shortcut);
        let x = leaky_rectifier(self.block2.forward(x), self.leaky_relu_slope);
        let x = prelu_rectifier(self.block3.forward(x), self.prelu_alpha.val());
        let x = elu_rectifier(self.block4.forward(x), self.elu_alpha);
        let [batch, channels, _] = x.dims();
        x.mean_dim(2).reshape([batch, channels])
    }

    /// Encoder + projection head, unnormalised: `[B, 1, L] -> [B, embedding]`.
    pub fn encode(&self, x: Tensor<3>) -> Tensor<2> {
        let mut z = self.encoder(x);
        for layer in &self.head {
            z = relu(layer.norm.forward(layer.linear.forward(z)));
        }
        self.projection.forward(z)
    }

    /// Class logits `[B, outputs]`, or under Deep SAD the squared distance to the centre `[B, 1]`.
    pub fn forward(&self, x: Tensor<3>, _ctx: &mut ForwardCtx) -> Tensor<2> {
        let z = self.encode(x);
        match (&self.classifier, &self.center) {
            (Some(classifier), _) => classifier.forward(z),
            (None, Some(center)) => {
                let [batch, dims] = z.dims();
                (z - center.val().reshape([1, dims]))
                    .square()
                    .sum_dim(1)
                    .reshape([batch, 1])
            }
            (None, None) => unreachable!("Ldpi::new builds a classifier or a centre"),
        }
    }

    /// Sets Deep SAD's centre (a no-op for the supervised head).
    pub fn set_center(&mut self, center: Tensor<1>) {
        if self.center.is_some() {
            self.center = Some(Param::from_tensor(center).set_require_grad(false));
        }
    }

    /// Parameters of the published encoder + head (without the supervised classifier).
    pub fn num_encoder_params(&self) -> usize {
        super::trainable_params(self) - self.classifier.as_ref().map_or(0, super::trainable_params)
    }
}
