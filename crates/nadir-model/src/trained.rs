//! A trained model: scoring, embeddings, and weights as bytes.

use std::sync::OnceLock;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Tensor};

use crate::arch::Network;
use crate::config::{ArchConfig, Head};
use crate::data::{checked_samples, gather_batch, slice_batch};
use crate::deepsad::deep_sad_sample_loss;
use crate::gbdt::{TreeShap, Trees};
use crate::layers::{lane_sum, ForwardCtx};
use crate::train::History;
use crate::{ComputeDevice, InputShape, ModelConfig, ModelError, ModelKind};

/// Rows per forward pass when scoring, encoding or explaining: about 32 k input values, between
/// 128 and 1,024 rows. Bounds memory on large inputs, and keeps the sequence models' activations
/// (each input value becomes hundreds) small enough to stay cached. Measured at batch 1024
/// (`bench/models/run.sh`, samples/s): 1,024 rows at once vs this rule, LLAFormerNet (89
/// values) 9.1 k vs 12.4 k, LLN (800) 8.9 k vs 11.6 k; the one-step hybrid (10 values) ran
/// 945 k at 1,024 rows and 578 k at 256.
fn rows_per_pass(shape: InputShape) -> usize {
    const VALUES_PER_PASS: usize = 32 * 1024;
    (VALUES_PER_PASS / shape.sample_len().max(1)).clamp(128, 1024)
}

/// Scores for a batch of samples.
///
/// Classifier heads keep the network's logits: ranks and thresholds work on the log-odds of
/// attack, because P(attack) as an `f32` is exactly 1.0 above a logit of ~16.6 and would tie
/// every confident sample (tabm's NSL-KDD recall at 1 % FPR was 0 from such ties).
#[derive(Debug, Clone, PartialEq)]
pub enum Scores {
    /// Log-odds of class 1 (attack) per sample: the sigmoid head's logit.
    Binary(Vec<f32>),
    /// Logits, row-major `N x n_classes` (softmax head).
    Multiclass { n_classes: usize, logits: Vec<f32> },
    /// Mean squared reconstruction error per sample (autoencoder): higher is more anomalous.
    Reconstruction(Vec<f32>),
    /// Squared distance of the embedding to the Deep SAD centre per sample: higher is more
    /// anomalous.
    Distance(Vec<f32>),
}

impl Scores {
    /// Number of samples scored.
    pub fn len(&self) -> usize {
        match self {
            Scores::Binary(p) | Scores::Reconstruction(p) | Scores::Distance(p) => p.len(),
            Scores::Multiclass { n_classes, logits } => logits.len() / (*n_classes).max(1),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One anomaly score per sample, higher = more anomalous: the log-odds of attack for a
    /// binary head, the log-odds of "not class 0" (class 0 = benign) for softmax, the
    /// reconstruction error for the autoencoder, the distance to the centre for Deep SAD.
    pub fn anomaly_scores(&self) -> Vec<f32> {
        self.anomaly_scores_against(0)
    }

    /// [`Scores::anomaly_scores`] with `benign_class` as the softmax head's benign class.
    pub fn anomaly_scores_against(&self, benign_class: usize) -> Vec<f32> {
        match self {
            Scores::Binary(p) | Scores::Reconstruction(p) | Scores::Distance(p) => p.clone(),
            Scores::Multiclass { n_classes, logits } => logits
                .chunks_exact(*n_classes)
                .map(|row| log_odds_against(row, benign_class))
                .collect(),
        }
    }

    /// Class probabilities, row-major `N x n_classes`, for a softmax head.
    pub fn class_probabilities(&self) -> Option<Vec<f32>> {
        let Scores::Multiclass { n_classes, logits } = self else {
            return None;
        };
        let mut probabilities = logits.clone();
        for row in probabilities.chunks_exact_mut(*n_classes) {
            softmax_in_place(row);
        }
        Some(probabilities)
    }

    /// Most likely class per sample (log-odds > 0 for binary); `None` for reconstruction
    /// errors and distances.
    pub fn predicted_classes(&self) -> Option<Vec<u32>> {
        match self {
            Scores::Binary(z) => Some(z.iter().map(|&z| u32::from(z > 0.0)).collect()),
            Scores::Multiclass { n_classes, logits } => {
                Some(logits.chunks_exact(*n_classes).map(argmax).collect())
            }
            Scores::Reconstruction(_) | Scores::Distance(_) => None,
        }
    }
}

/// Log-odds that a sample is not of `class`, from its logits: `log sum_{c != class} e^z_c -
/// z_class`, computed around the largest other logit so that it neither overflows nor rounds
/// to a constant however confident the network is. `class` must be inside `logits`.
pub fn log_odds_against(logits: &[f32], class: usize) -> f32 {
    let others = logits
        .iter()
        .enumerate()
        .filter(|&(c, _)| c != class)
        .map(|(_, &z)| z);
    let max = others.clone().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = others.map(|z| (z - max).exp()).sum();
    max + sum.ln() - logits[class]
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &p) in row.iter().enumerate() {
        if p > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Embeddings, row-major `rows x dims`.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub rows: usize,
    pub dims: usize,
    pub data: Vec<f32>,
}

/// Anomaly scores of samples and their gradients with respect to the input.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreGradients {
    /// One anomaly score per sample, as [`Scores::anomaly_scores`] defines it (with the benign
    /// class given).
    pub scores: Vec<f32>,
    /// d score / d input, laid out like the input (sample after sample).
    pub gradients: Vec<f32>,
}

/// A trained (or loaded) model, ready to score.
#[derive(Debug)]
pub struct Trained {
    config: ModelConfig,
    body: Body,
    history: History,
    /// Where the network scores; trees always score on the CPU.
    device: Device,
}

/// What computes the scores: a burn network (the neural families) or a tree ensemble (gbdt).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per model, never in a collection: boxing buys nothing
enum Body {
    Network {
        network: Network,
        /// A frozen copy on the autodiff device for input gradients, built on first use.
        differentiable: OnceLock<Network>,
    },
    Trees(Box<Trees>),
    /// Trees and a network, in that order ([`ModelConfig::ensemble_members`]).
    Ensemble(Box<[Trained; 2]>),
}

impl Trained {
    /// `network` must live on `device` (without autodiff).
    pub(crate) fn from_network(
        config: ModelConfig,
        network: Network,
        history: History,
        device: Device,
    ) -> Self {
        Self {
            config,
            body: Body::Network {
                network,
                differentiable: OnceLock::new(),
            },
            history,
            device,
        }
    }

    pub(crate) fn from_members(config: ModelConfig, members: [Trained; 2]) -> Self {
        Self {
            history: members[1].history.clone(),
            device: members[1].device.clone(),
            config,
            body: Body::Ensemble(Box::new(members)),
        }
    }

    pub(crate) fn from_trees(config: ModelConfig, trees: Trees, history: History) -> Self {
        Self {
            config,
            body: Body::Trees(Box::new(trees)),
            history,
            device: Device::flex(),
        }
    }

    /// A freshly initialised (untrained) model with the weights `seed` gives: for benchmarks,
    /// parameter counts and tests. An untrained gbdt has no trees.
    pub fn untrained(config: &ModelConfig, seed: u64) -> Result<Self, ModelError> {
        let checked = config.check()?;
        if let ArchConfig::Gbdt(c) = &checked.arch {
            let trees = Trees::untrained(c, seed);
            return Ok(Self::from_trees(
                checked.into_inner(),
                trees,
                History::default(),
            ));
        }
        if let Some([trees, network]) = checked.ensemble_members() {
            let members = [
                Self::untrained(&trees, seed)?,
                Self::untrained(&network, seed)?,
            ];
            return Ok(Self::from_members(checked.into_inner(), members));
        }
        let device = Device::flex();
        let network = Network::new(&checked, &device, seed);
        Ok(Self::from_network(
            checked.into_inner(),
            network,
            History::default(),
            device,
        ))
    }

    /// Rebuilds a model from its config and the bytes of [`Trained::to_bytes`].
    pub fn from_bytes(config: &ModelConfig, bytes: &[u8]) -> Result<Self, ModelError> {
        let checked = config.check()?;
        if let ArchConfig::Gbdt(_) = &checked.arch {
            let trees = Trees::from_bytes(bytes, checked.input.sample_len())?;
            return Ok(Self::from_trees(
                checked.into_inner(),
                trees,
                History::default(),
            ));
        }
        if let Some([trees, network]) = checked.ensemble_members() {
            let (first, second) = split_members(bytes).ok_or_else(|| ModelError::Weights {
                kind: ModelKind::Ensemble,
                reason: format!(
                    "{} bytes do not hold two members' lengths and weights",
                    bytes.len()
                ),
            })?;
            let members = [
                Self::from_bytes(&trees, first)?,
                Self::from_bytes(&network, second)?,
            ];
            return Ok(Self::from_members(checked.into_inner(), members));
        }
        let kind = checked.kind();
        let device = Device::flex();
        let record =
            ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec())).map_err(|e| {
                ModelError::Weights {
                    kind,
                    reason: e.to_string(),
                }
            })?;
        // The seed is irrelevant: every parameter is overwritten by the record.
        let network = Network::new(&checked, &device, 0)
            .try_load_record(record)
            .map_err(|e| ModelError::Weights {
                kind,
                reason: e.to_string(),
            })?;
        Ok(Self::from_network(
            checked.into_inner(),
            network,
            History::default(),
            device,
        ))
    }

    /// The model moved to `device` for scoring (`--device`): the one step between a loaded
    /// (CPU) model and GPU inference. A no-op when it is there already.
    /// Trees stay on the CPU whatever the device.
    pub fn on_device(self, device: ComputeDevice) -> Result<Self, ModelError> {
        let target = device.open()?;
        if target == self.device {
            return Ok(self);
        }
        match self.body {
            Body::Trees(_) => Ok(self),
            Body::Ensemble(members) => {
                let [trees, network] = *members;
                let members = [trees, network.on_device(device)?];
                Ok(Self::from_members(self.config, members))
            }
            Body::Network { network, .. } => Ok(Self {
                body: Body::Network {
                    network: network.to_device(&target),
                    differentiable: OnceLock::new(),
                },
                device: target,
                ..self
            }),
        }
    }

    /// The burn device the model scores on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The weights (and batch-norm statistics) as burn record bytes; the trees as forust-ml
    /// JSON.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let network = match &self.body {
            Body::Network { network, .. } => network,
            Body::Trees(trees) => return trees.to_bytes(),
            Body::Ensemble(members) => {
                let first = members[0].to_bytes()?;
                let mut bytes = (first.len() as u64).to_le_bytes().to_vec();
                bytes.extend_from_slice(&first);
                bytes.extend_from_slice(&members[1].to_bytes()?);
                return Ok(bytes);
            }
        };
        network
            .clone()
            .into_record()
            .into_bytes()
            .map(|bytes| bytes.to_vec())
            .map_err(|e| ModelError::Weights {
                kind: self.kind(),
                reason: e.to_string(),
            })
    }

    /// Attaches a history (e.g. one read back from a bundle).
    pub fn with_history(mut self, history: History) -> Self {
        self.history = history;
        self
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn kind(&self) -> ModelKind {
        self.config.kind()
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// Number of trainable parameters; for trees, the number of split and leaf nodes.
    pub fn num_params(&self) -> usize {
        match &self.body {
            Body::Network { network, .. } => network.num_trainable_params(),
            Body::Trees(trees) => trees.nodes(),
            Body::Ensemble(members) => members.iter().map(Trained::num_params).sum(),
        }
    }

    /// The network itself (for parameter inspection and meta-learning).
    pub fn network(&self) -> Result<&Network, ModelError> {
        match &self.body {
            Body::Network { network, .. } => Ok(network),
            Body::Trees(_) | Body::Ensemble(_) => {
                Err(self.unsupported("one network (trees are not a network)"))
            }
        }
    }

    /// The tree ensemble of a gbdt model.
    #[cfg(test)]
    pub(crate) fn trees(&self) -> Option<&Trees> {
        match &self.body {
            Body::Trees(trees) => Some(trees),
            _ => None,
        }
    }

    /// An ensemble's members: the trees, then the network.
    pub fn members(&self) -> Option<&[Trained; 2]> {
        match &self.body {
            Body::Ensemble(members) => Some(members),
            _ => None,
        }
    }

    fn unsupported(&self, operation: &'static str) -> ModelError {
        ModelError::Unsupported {
            kind: self.kind(),
            operation,
        }
    }

    /// Scores every sample of `x` (`shape` must be the model's input shape).
    pub fn predict(&self, x: &[f32], shape: InputShape) -> Result<Scores, ModelError> {
        let n = checked_samples("prediction input", x, shape, self.config.input)?;
        let outputs = self.outputs_contiguous(x, n)?;
        Ok(scores_from_outputs(&self.config, outputs, x, n))
    }

    /// Exact TreeSHAP values of every sample (gbdt only), in log-odds.
    pub fn tree_shap(&self, x: &[f32], shape: InputShape) -> Result<TreeShap, ModelError> {
        checked_samples("explanation input", x, shape, self.config.input)?;
        match &self.body {
            Body::Trees(trees) => Ok(trees.shap(x, shape.sample_len())),
            _ => Err(self.unsupported("TreeSHAP on its own (only gbdt is trees only)")),
        }
    }

    /// The network's raw outputs, row-major: logits for a classifier head, the reconstruction
    /// (one value per input value) for the autoencoder.
    pub fn raw_outputs(&self, x: &[f32], shape: InputShape) -> Result<Vec<f32>, ModelError> {
        let n = checked_samples("prediction input", x, shape, self.config.input)?;
        self.outputs_contiguous(x, n)
    }

    /// The family's embedding of every sample: the autoencoder's code or LDPI's 128-d head output.
    pub fn encode(&self, x: &[f32], shape: InputShape) -> Result<Embeddings, ModelError> {
        let n = checked_samples("encode input", x, shape, self.config.input)?;
        let network = self.network()?;
        let mut data = Vec::new();
        let mut dims = 0;
        let rows = rows_per_pass(self.config.input);
        for start in (0..n).step_by(rows) {
            let end = (start + rows).min(n);
            let batch = slice_batch(x, shape, start, end, &self.device);
            let Some(code) = network.encode(batch) else {
                return Err(ModelError::Unsupported {
                    kind: self.kind(),
                    operation: "encode (only the autoencoder and ldpi have an embedding)",
                });
            };
            dims = code.dims()[1];
            extend_from_tensor(&mut data, code);
        }
        Ok(Embeddings {
            rows: n,
            dims,
            data,
        })
    }

    /// Anomaly scores and their input gradients for every sample of `x`: the score is the
    /// log-odds of attack for a sigmoid head, of "not `benign_class`" for softmax, and the mean
    /// squared reconstruction error for the autoencoder. The network runs in inference mode
    /// (batch norm on its running statistics, no dropout), so the gradients are those of the
    /// function `predict` computes.
    pub fn score_gradients(
        &self,
        x: &[f32],
        shape: InputShape,
        benign_class: u32,
    ) -> Result<ScoreGradients, ModelError> {
        let n = checked_samples("gradient input", x, shape, self.config.input)?;
        if let Body::Trees(_) | Body::Ensemble(_) = self.body {
            return Err(self.unsupported(
                "input gradients (trees are piecewise constant; explain them with TreeSHAP)",
            ));
        }
        if self.config.head == Head::Softmax && benign_class as usize >= self.config.n_classes {
            return Err(ModelError::LabelOutOfRange {
                what: "benign class",
                row: 0,
                label: benign_class,
                n_classes: self.config.n_classes,
            });
        }
        let device = self.device.clone().autodiff();
        let network = self.differentiable(&device)?;
        let mut scores = Vec::with_capacity(n);
        let mut gradients = Vec::with_capacity(x.len());
        let rows = rows_per_pass(self.config.input);
        for start in (0..n).step_by(rows) {
            let end = (start + rows).min(n);
            let input = slice_batch(x, shape, start, end, &device).require_grad();
            let output = network.forward(input.clone(), &mut ForwardCtx::inference());
            let score = self.anomaly_score(output, input.clone(), benign_class);
            let grads = score.clone().sum().backward();
            extend_from_tensor(&mut scores, score.detach().reshape([end - start, 1]));
            match input.grad(&grads) {
                Some(grad) => {
                    let [b, c, l] = grad.dims();
                    extend_from_tensor(&mut gradients, grad.reshape([b, c * l]));
                }
                // The score does not depend on the input at all (a constant network).
                None => gradients.resize(gradients.len() + (end - start) * shape.sample_len(), 0.0),
            }
        }
        Ok(ScoreGradients { scores, gradients })
    }

    /// The anomaly score `[B]` of raw network outputs, differentiably.
    fn anomaly_score(&self, output: Tensor<2>, input: Tensor<3>, benign_class: u32) -> Tensor<1> {
        let [batch, _] = output.dims();
        match self.config.head {
            Head::Sigmoid => output.reshape([batch]),
            // `log_odds_against` as tensor ops: the other classes' log-sum-exp minus the
            // benign logit.
            Head::Softmax => {
                let [_, classes] = output.dims();
                let b = benign_class as usize;
                let others: Vec<Tensor<2>> = [(0, b), (b + 1, classes - b - 1)]
                    .into_iter()
                    .filter(|&(_, len)| len > 0)
                    .map(|(start, len)| output.clone().narrow(1, start, len))
                    .collect();
                let others = Tensor::cat(others, 1);
                let max = others.clone().max_dim(1).detach();
                let log_sum = (others - max.clone()).exp().sum_dim(1).log() + max;
                (log_sum - output.narrow(1, b, 1)).reshape([batch])
            }
            Head::Reconstruction => {
                let [_, c, l] = input.dims();
                let error = output - input.reshape([batch, c * l]);
                (error.clone() * error).mean_dim(1).reshape([batch])
            }
            Head::Hypersphere => output.reshape([batch]),
        }
    }

    /// The frozen autodiff copy of the network (built once from the weights).
    fn differentiable(&self, device: &Device) -> Result<&Network, ModelError> {
        let Body::Network {
            network,
            differentiable,
        } = &self.body
        else {
            return Err(self.unsupported("input gradients"));
        };
        if let Some(network) = differentiable.get() {
            return Ok(network);
        }
        let checked = self.config.check()?;
        let record = network.clone().into_record();
        let network = Network::new(&checked, device, 0)
            .try_load_record(record)
            .map_err(|e| ModelError::Weights {
                kind: self.kind(),
                reason: e.to_string(),
            })?
            .freeze();
        Ok(differentiable.get_or_init(|| network))
    }

    /// Raw outputs of `n` contiguous samples: logits (log-odds for trees) or reconstructions.
    fn outputs_contiguous(&self, x: &[f32], n: usize) -> Result<Vec<f32>, ModelError> {
        let network = match &self.body {
            Body::Network { network, .. } => network,
            Body::Trees(trees) => return Ok(trees.margins(x, self.config.input.sample_len())),
            Body::Ensemble(members) => {
                let shape = self.config.input;
                let trees = members[0].predict(x, shape)?.anomaly_scores();
                let network = members[1].predict(x, shape)?.anomaly_scores();
                return Ok(trees
                    .iter()
                    .zip(&network)
                    .map(|(&a, &b)| mean_probability_log_odds(a.into(), b.into()) as f32)
                    .collect());
            }
        };
        let mut outputs = Vec::with_capacity(n * self.config.n_outputs());
        let rows = rows_per_pass(self.config.input);
        for start in (0..n).step_by(rows) {
            let end = (start + rows).min(n);
            let batch = slice_batch(x, self.config.input, start, end, &self.device);
            let out = network.forward(batch, &mut ForwardCtx::inference());
            extend_from_tensor(&mut outputs, out);
        }
        Ok(outputs)
    }
}

/// The log-odds of the mean of two probabilities given as log-odds (soft voting):
/// `ln(P_a + P_b) - ln((1 - P_a) + (1 - P_b))`, in log space (`1 - P = sigmoid(-z)`) so that
/// confident members neither round to a constant nor reach infinity.
pub fn mean_probability_log_odds(a: f64, b: f64) -> f64 {
    let log_sigmoid = |z: f64| -((-z).max(0.0) + (-z.abs()).exp().ln_1p());
    let log_add_exp = |x: f64, y: f64| x.max(y) + (-(x - y).abs()).exp().ln_1p();
    let attack = log_add_exp(log_sigmoid(a), log_sigmoid(b));
    let benign = log_add_exp(log_sigmoid(-a), log_sigmoid(-b));
    attack - benign
}

/// The two members' bytes of an ensemble: a little-endian u64 length, then the first member,
/// then the second.
fn split_members(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (length, rest) = bytes.split_first_chunk::<8>()?;
    let first = usize::try_from(u64::from_le_bytes(*length)).ok()?;
    (first <= rest.len()).then(|| rest.split_at(first))
}

fn extend_from_tensor(into: &mut Vec<f32>, tensor: burn::tensor::Tensor<2>) {
    // The flex backend computes in f32 (`convert` is then a no-op); other backends may not.
    let data = tensor.into_data().convert::<f32>();
    if let Ok(values) = data.as_slice::<f32>() {
        into.extend_from_slice(values);
    }
}

/// Raw network outputs (logits or reconstructions) for `rows` of `x`, row-major.
pub(crate) fn raw_outputs(
    network: &Network,
    x: &[f32],
    shape: InputShape,
    rows: &[usize],
    device: &Device,
) -> Vec<f32> {
    let mut outputs = Vec::new();
    for chunk in rows.chunks(rows_per_pass(shape)) {
        let batch = gather_batch(x, shape, chunk, device);
        let out = network.forward(batch, &mut ForwardCtx::inference());
        extend_from_tensor(&mut outputs, out);
    }
    outputs
}

/// Turns raw outputs of `n` contiguous samples into scores.
fn scores_from_outputs(cfg: &ModelConfig, outputs: Vec<f32>, x: &[f32], n: usize) -> Scores {
    match cfg.head {
        Head::Sigmoid => Scores::Binary(outputs),
        Head::Softmax => Scores::Multiclass {
            n_classes: cfg.n_classes,
            logits: outputs,
        },
        Head::Reconstruction => {
            let width = cfg.input.sample_len();
            Scores::Reconstruction(
                (0..n)
                    .map(|row| {
                        squared_error(
                            &outputs[row * width..(row + 1) * width],
                            &x[row * width..(row + 1) * width],
                        )
                    })
                    .collect(),
            )
        }
        Head::Hypersphere => Scores::Distance(outputs),
    }
}

fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// Mean squared error of one row.
fn squared_error(reconstruction: &[f32], input: &[f32]) -> f32 {
    lane_sum(reconstruction, input, |r, x| (r - x) * (r - x)) / input.len().max(1) as f32
}

/// Validation loss (unweighted) and accuracy from raw outputs of `rows`.
pub(crate) struct OutputSummary {
    pub loss: f64,
    pub accuracy: Option<f64>,
}

impl OutputSummary {
    /// `deep_sad_eta` weighs labelled anomalies under the hypersphere head.
    pub(crate) fn compute(
        cfg: &ModelConfig,
        outputs: &[f32],
        x: &[f32],
        y: &[u32],
        rows: &[usize],
        deep_sad_eta: f32,
    ) -> Self {
        let n = rows.len().max(1) as f64;
        match cfg.head {
            Head::Sigmoid => {
                let mut loss = 0.0f64;
                let mut correct = 0usize;
                for (&z, &row) in outputs.iter().zip(rows) {
                    let z = f64::from(z);
                    let label = f64::from(y[row]);
                    loss += z.max(0.0) - z * label + (-z.abs()).exp().ln_1p();
                    correct += usize::from((z > 0.0) == (y[row] == 1));
                }
                Self {
                    loss: loss / n,
                    accuracy: Some(correct as f64 / n),
                }
            }
            Head::Softmax => {
                let classes = cfg.n_classes;
                let mut loss = 0.0f64;
                let mut correct = 0usize;
                for (logits, &row) in outputs.chunks_exact(classes).zip(rows) {
                    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let log_sum: f64 = logits
                        .iter()
                        .map(|&v| f64::from(v - max).exp())
                        .sum::<f64>()
                        .ln();
                    let label = y[row] as usize;
                    loss += log_sum - f64::from(logits[label] - max);
                    correct += usize::from(argmax(logits) as usize == label);
                }
                Self {
                    loss: loss / n,
                    accuracy: Some(correct as f64 / n),
                }
            }
            Head::Reconstruction => {
                let width = cfg.input.sample_len();
                let loss: f64 = outputs
                    .chunks_exact(width)
                    .zip(rows)
                    .map(|(recon, &row)| {
                        f64::from(squared_error(recon, &x[row * width..(row + 1) * width]))
                    })
                    .sum();
                Self {
                    loss: loss / n,
                    accuracy: None,
                }
            }
            Head::Hypersphere => {
                let loss: f64 = outputs
                    .iter()
                    .zip(rows)
                    .map(|(&d, &row)| f64::from(deep_sad_sample_loss(d, y[row] != 0, deep_sad_eta)))
                    .sum();
                Self {
                    loss: loss / n,
                    accuracy: None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lane_summed_squared_error_matches_the_plain_mean() {
        // 8-lane blocks plus a tail of 3.
        let r: Vec<f32> = (0..19).map(|i| i as f32 * 0.25).collect();
        let x: Vec<f32> = (0..19).map(|i| (i % 5) as f32).collect();
        let plain = r
            .iter()
            .zip(&x)
            .map(|(r, x)| (r - x) * (r - x))
            .sum::<f32>()
            / 19.0;
        let lanes = super::squared_error(&r, &x);
        assert!((lanes - plain).abs() <= 1e-5 * plain, "{lanes} vs {plain}");
    }
}
