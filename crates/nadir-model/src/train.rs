//! Supervised (and autoencoder) training: mini-batches, Adam/AdamW, weighted BCE or
//! cross-entropy, global-norm clipping, ReduceLROnPlateau, early stopping with best-checkpoint
//! restore, a progress bar, and a [`History`].

use std::time::Instant;

use burn::module::{Module, ParamId};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::arch::Network;
use crate::config::{ArchConfig, CheckedConfig, Head};
use crate::data::{checked_labels, checked_samples, gather_batch};
use crate::deepsad::{
    deep_sad_batch_loss, hypersphere_center, install_center, pretrain_contrastive, DeepSadOptions,
};
use crate::layers::ForwardCtx;
use crate::trained::{raw_outputs, OutputSummary, Trained};
use crate::{ComputeDevice, ModelConfig, ModelError, ModelKind, TrainData};

/// Which optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum OptimizerKind {
    Adam,
    /// Decoupled weight decay.
    AdamW {
        weight_decay: f32,
    },
    /// Plain SGD (no momentum) with L2 weight decay, as LDPI trains (seeds-spec §4.4-4.5).
    Sgd {
        weight_decay: f32,
    },
}

impl OptimizerKind {
    /// The optimiser, ready for a module (Adam's epsilon from `adam_epsilon`).
    pub(crate) fn init(self, adam_epsilon: f32) -> ModuleOptimizer {
        match self {
            OptimizerKind::Adam => AdamConfig::new().with_epsilon(adam_epsilon).init(),
            OptimizerKind::AdamW { weight_decay } => AdamWConfig::new()
                .with_epsilon(adam_epsilon)
                .with_weight_decay(weight_decay)
                .init(),
            OptimizerKind::Sgd { weight_decay } => SgdConfig::new()
                .with_weight_decay(
                    (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay)),
                )
                .init(),
        }
    }

    pub(crate) fn check(self, option: &'static str) -> Result<(), ModelError> {
        match self {
            OptimizerKind::AdamW { weight_decay } | OptimizerKind::Sgd { weight_decay }
                if !(weight_decay.is_finite() && weight_decay >= 0.0) =>
            {
                Err(ModelError::InvalidOption {
                    option,
                    reason: format!("weight_decay {weight_decay} is not >= 0"),
                })
            }
            _ => Ok(()),
        }
    }
}

/// Linear warm-up from ~0 to the base learning rate over `warmup_epochs`, then cosine
/// annealing to 0 over the remaining epochs (LDPI's schedule, seeds-spec §4.4-4.5).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupCosine {
    pub warmup_epochs: usize,
}

impl WarmupCosine {
    /// The learning rate of 1-based `epoch` of `epochs`.
    pub fn lr(&self, base: f64, epoch: usize, epochs: usize) -> f64 {
        // LDPI warms up from 1e-10, not from 0.
        const START: f64 = 1e-10;
        if epoch <= self.warmup_epochs {
            let progress = epoch as f64 / self.warmup_epochs.max(1) as f64;
            return START + (base - START) * progress;
        }
        let annealing = epochs.saturating_sub(self.warmup_epochs).max(1) as f64;
        let progress = (epoch - self.warmup_epochs) as f64 / annealing;
        0.5 * base * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
    }
}

/// ReduceLROnPlateau on the validation loss (PyTorch semantics: mode min, relative threshold).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlateauOptions {
    pub factor: f64,
    /// Epochs without improvement before the learning rate is cut.
    pub patience: usize,
    pub min_lr: f64,
    /// Relative improvement that counts (1e-4 = 0.01 %).
    pub threshold: f64,
}

impl Default for PlateauOptions {
    fn default() -> Self {
        Self {
            factor: 0.1,
            patience: 10,
            min_lr: 0.0,
            threshold: 1e-4,
        }
    }
}

/// How to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
    /// Early stopping: epochs without a val-loss improvement before stopping; `None` runs all epochs.
    pub patience: Option<usize>,
    /// Smallest val-loss decrease that counts as an improvement.
    pub min_delta: f64,
    /// Restore the weights of the best validation epoch at the end.
    pub restore_best: bool,
    /// Loss weight per class (length `n_classes`); `None` weighs every sample 1.
    pub class_weights: Option<Vec<f32>>,
    pub optimizer: OptimizerKind,
    pub adam_epsilon: f32,
    /// Rescale all gradients together when their global L2 norm exceeds this.
    pub clip_grad_norm: Option<f32>,
    pub lr_plateau: Option<PlateauOptions>,
    /// Learning rate by epoch (exclusive with `lr_plateau`).
    pub lr_schedule: Option<WarmupCosine>,
    /// Deep SAD (the hypersphere head): contrastive pretraining, centre, anomaly weight.
    pub deep_sad: DeepSadOptions,
    /// Draw a progress bar on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Where to train (`--device`): a property of the run, not of the recipe, so it is not
    /// serialised with the options (a bundle's options read back as `Cpu`).
    #[serde(skip)]
    pub device: ComputeDevice,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: 20,
            batch_size: 64,
            lr: 1e-3,
            seed: 42,
            patience: Some(5),
            min_delta: 0.0,
            restore_best: true,
            class_weights: None,
            optimizer: OptimizerKind::Adam,
            adam_epsilon: 1e-7,
            clip_grad_norm: None,
            lr_plateau: None,
            lr_schedule: None,
            deep_sad: DeepSadOptions::default(),
            progress: true,
            device: ComputeDevice::Cpu,
        }
    }
}

impl TrainOptions {
    /// The published training recipe of `kind` (seeds-spec §1.4, §2.5, §3.3, §5.1; LDPI's
    /// supervised head has no published recipe and uses Adam 1e-3, batch 64).
    pub fn default_for(kind: ModelKind) -> Self {
        let base = Self::default();
        match kind {
            ModelKind::Llaformer => Self {
                epochs: 40,
                batch_size: 128,
                ..base
            },
            ModelKind::Lln => Self {
                epochs: 50,
                batch_size: 32,
                ..base
            },
            ModelKind::Hybrid => base,
            ModelKind::CnnLstm => Self {
                patience: None,
                adam_epsilon: 1e-8,
                clip_grad_norm: Some(5.0),
                lr_plateau: Some(PlateauOptions::default()),
                ..base
            },
            ModelKind::Ldpi => Self {
                epochs: 30,
                adam_epsilon: 1e-8,
                ..base
            },
            ModelKind::Autoencoder => Self {
                epochs: 100,
                batch_size: 256,
                ..base
            },
            // The TabM paper's recipe: AdamW (weight decay 3e-4), batch 256, patience 16.
            ModelKind::Tabm => Self {
                epochs: 100,
                batch_size: 256,
                patience: Some(16),
                optimizer: OptimizerKind::AdamW { weight_decay: 3e-4 },
                adam_epsilon: 1e-8,
                ..base
            },
            // The ensemble's network member trains with the hybrid's recipe (its default).
            ModelKind::Ensemble => base,
            // Boosting has no epochs or batches; its rounds are `GbdtConfig::iterations`.
            ModelKind::Gbdt => Self {
                epochs: 1,
                patience: None,
                ..base
            },
        }
    }

    fn check(&self, n_classes: usize) -> Result<(), ModelError> {
        let invalid =
            |option: &'static str, reason: String| ModelError::InvalidOption { option, reason };
        if self.epochs == 0 {
            return Err(invalid("epochs", "must be at least 1".into()));
        }
        if self.batch_size == 0 {
            return Err(invalid("batch_size", "must be at least 1".into()));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(invalid(
                "lr",
                format!("{} is not a positive number", self.lr),
            ));
        }
        if !(self.adam_epsilon.is_finite() && self.adam_epsilon > 0.0) {
            return Err(invalid(
                "adam_epsilon",
                format!("{} is not a positive number", self.adam_epsilon),
            ));
        }
        if !(self.min_delta.is_finite() && self.min_delta >= 0.0) {
            return Err(invalid(
                "min_delta",
                format!("{} is not >= 0", self.min_delta),
            ));
        }
        self.optimizer.check("optimizer.weight_decay")?;
        if self.lr_plateau.is_some() && self.lr_schedule.is_some() {
            return Err(invalid(
                "lr_schedule",
                "choose one of lr_plateau and lr_schedule".into(),
            ));
        }
        if let Some(max) = self.clip_grad_norm {
            if !(max.is_finite() && max > 0.0) {
                return Err(invalid(
                    "clip_grad_norm",
                    format!("{max} is not a positive number"),
                ));
            }
        }
        if let Some(p) = &self.lr_plateau {
            if !(p.factor.is_finite() && p.factor > 0.0 && p.factor < 1.0) {
                return Err(invalid(
                    "lr_plateau.factor",
                    format!("{} is not in (0, 1)", p.factor),
                ));
            }
            if !(p.min_lr.is_finite()
                && p.min_lr >= 0.0
                && p.threshold.is_finite()
                && p.threshold >= 0.0)
            {
                return Err(invalid(
                    "lr_plateau",
                    "min_lr and threshold must be finite and >= 0".into(),
                ));
            }
        }
        self.deep_sad.check()?;
        if let Some(weights) = &self.class_weights {
            if weights.len() != n_classes {
                return Err(invalid(
                    "class_weights",
                    format!("{} weights for {n_classes} classes", weights.len()),
                ));
            }
            if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
                return Err(invalid(
                    "class_weights",
                    format!("weight {w} is not a finite number >= 0"),
                ));
            }
            if weights.iter().all(|w| *w == 0.0) {
                return Err(invalid("class_weights", "every weight is 0".into()));
            }
        }
        Ok(())
    }
}

/// Inverse-frequency class weights `n / (k * count_c)` (sklearn's "balanced"); classes
/// absent from `y` get weight 0.
pub fn balanced_class_weights(y: &[u32], n_classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; n_classes];
    for &label in y {
        if let Some(count) = counts.get_mut(label as usize) {
            *count += 1;
        }
    }
    let present = counts.iter().filter(|c| **c > 0).count().max(1);
    counts
        .iter()
        .map(|&count| {
            if count == 0 {
                0.0
            } else {
                y.len() as f32 / (present as f32 * count as f32)
            }
        })
        .collect()
}

/// One epoch of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    /// Mean (class-weighted) training loss over the epoch's batches.
    pub train_loss: f64,
    /// Unweighted validation loss.
    pub val_loss: f64,
    /// Validation accuracy (argmax / log-odds > 0); `None` for the autoencoder.
    pub val_accuracy: Option<f64>,
    /// Learning rate used during this epoch.
    pub lr: f64,
    pub seconds: f64,
}

/// What happened during training, for the bundle and the plots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub epochs: Vec<EpochRecord>,
    /// Epoch (1-based) whose weights the model holds.
    pub best_epoch: Option<usize>,
    pub stopped_early: bool,
}

/// Trains the model of `cfg` on `train`, validating on `val` after every epoch.
///
/// Everything is checked before the first step: the config, the options, shapes, labels,
/// NaN/inf in features, empty or single-class training data.
pub fn train(
    cfg: &ModelConfig,
    train: TrainData,
    val: TrainData,
    opts: &TrainOptions,
) -> Result<Trained, ModelError> {
    let cfg = cfg.check()?;
    opts.check(cfg.n_classes)?;

    let n_train = checked_samples("training data", train.x, train.shape, cfg.input)?;
    let n_val = checked_samples("validation data", val.x, val.shape, cfg.input)?;
    // The autoencoder ignores labels beyond the benign filter, Deep SAD beyond benign vs
    // anomaly; a classifier needs 2 classes.
    let classifies = matches!(cfg.head, Head::Sigmoid | Head::Softmax);
    let label_classes = if classifies {
        cfg.n_classes
    } else {
        u32::MAX as usize
    };
    checked_labels("training data", train.y, n_train, label_classes)?;
    checked_labels("validation data", val.y, n_val, label_classes)?;

    let train_rows = rows_to_learn(
        &cfg,
        train.y,
        n_train,
        "training data",
        "benign training data",
    )?;
    let val_rows = rows_to_learn(
        &cfg,
        val.y,
        n_val,
        "validation data",
        "benign validation data",
    )?;
    if classifies {
        let first = train.y[0];
        if train.y.iter().all(|&label| label == first) {
            return Err(ModelError::SingleClass {
                what: "training data",
                class: first,
            });
        }
    }

    if let Some([trees, network]) = cfg.ensemble_members() {
        let members = [
            self::train(&trees, train, val, opts)?,
            self::train(&network, train, val, opts)?,
        ];
        return Ok(Trained::from_members(cfg.into_inner(), members));
    }
    if let ArchConfig::Gbdt(trees) = &cfg.arch {
        let trees = trees.clone();
        return crate::gbdt::train_trees(cfg, &trees, &train, &train_rows, &val, &val_rows, opts);
    }

    let inference_device = opts.device.open()?;
    let device = inference_device.clone().autodiff();
    let mut network = Network::new(&cfg, &device, opts.seed);
    let param_ids = network.float_param_ids();
    let mut optimizer = opts.optimizer.init(opts.adam_epsilon);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let class_weights = opts
        .class_weights
        .clone()
        .unwrap_or_else(|| vec![1.0; cfg.n_classes.max(1)]);

    let batches_per_epoch = train_rows.len().div_ceil(opts.batch_size);
    let progress = progress_bar(opts, batches_per_epoch);
    if cfg.head == Head::Hypersphere {
        let normal: Vec<usize> = train_rows
            .iter()
            .copied()
            .filter(|&row| train.y[row] == 0)
            .collect();
        if normal.is_empty() {
            return Err(ModelError::Empty {
                what: "normal (benign) training data for the hypersphere centre",
            });
        }
        if let Some(pretrain) = &opts.deep_sad.pretrain {
            network = pretrain_contrastive(
                network, train.x, cfg.input, &normal, pretrain, &mut rng, &device, &progress,
            )?;
        }
        let center = hypersphere_center(
            &network.valid(),
            train.x,
            cfg.input,
            &normal,
            opts.deep_sad.center_eps,
            &inference_device,
        )?;
        install_center(&mut network, center, &device);
    }
    let mut history = History::default();
    let mut order = train_rows;
    let mut lr = opts.lr;
    let mut plateau = opts.lr_plateau.map(Plateau::new);
    let mut best: Option<(f64, Network)> = None;
    let mut epochs_without_improvement = 0usize;

    for epoch in 1..=opts.epochs {
        let started = Instant::now();
        if let Some(schedule) = opts.lr_schedule {
            lr = schedule.lr(opts.lr, epoch, opts.epochs);
        }
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0f64;
        let mut loss_batches = 0usize;
        for (batch_index, rows) in order.chunks(opts.batch_size).enumerate() {
            // A 1-sample tail batch has no batch statistics; drop it like `drop_last` would.
            if rows.len() < 2 && order.len() >= 2 {
                continue;
            }
            let x = gather_batch(train.x, cfg.input, rows, &device);
            let output = network.forward(x.clone(), &mut ForwardCtx::training(&mut rng));
            let loss = batch_loss(
                &cfg,
                output,
                x,
                train.y,
                rows,
                &class_weights,
                opts.deep_sad.eta,
                &device,
            );
            let loss_value: f32 = loss.clone().into_scalar();
            if !loss_value.is_finite() {
                progress.abandon();
                return Err(ModelError::Diverged {
                    epoch,
                    batch: batch_index + 1,
                    loss: loss_value,
                });
            }
            loss_sum += f64::from(loss_value);
            loss_batches += 1;
            let mut grads = GradientsParams::from_grads(loss.backward(), &network);
            if let Some(max_norm) = opts.clip_grad_norm {
                clip_global_norm(&mut grads, &param_ids, max_norm);
            }
            network = optimizer.step(lr, network, grads);
            progress.inc(1);
        }

        let inference = network.valid();
        let summary = OutputSummary::compute(
            &cfg,
            &raw_outputs(&inference, val.x, cfg.input, &val_rows, &inference_device),
            val.x,
            val.y,
            &val_rows,
            opts.deep_sad.eta,
        );
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / loss_batches.max(1) as f64,
            val_loss: summary.loss,
            val_accuracy: summary.accuracy,
            lr,
            seconds: started.elapsed().as_secs_f64(),
        };
        progress.set_message(format_epoch(&record));
        tracing::debug!(
            epoch,
            train_loss = record.train_loss,
            val_loss = record.val_loss,
            val_accuracy = ?record.val_accuracy,
            lr,
            "epoch done"
        );
        history.epochs.push(record);

        let improved = match &best {
            None => summary.loss.is_finite(),
            Some((best_loss, _)) => summary.loss < best_loss - opts.min_delta,
        };
        if improved {
            best = Some((summary.loss, network.clone()));
            history.best_epoch = Some(epoch);
            epochs_without_improvement = 0;
        } else {
            epochs_without_improvement += 1;
        }
        if let Some(plateau) = plateau.as_mut() {
            lr = plateau.step(summary.loss, lr);
        }
        if opts
            .patience
            .is_some_and(|patience| epochs_without_improvement >= patience)
        {
            history.stopped_early = epoch < opts.epochs;
            break;
        }
    }
    progress.finish();
    Ok(finish_training(
        cfg,
        network,
        best,
        opts.restore_best,
        history,
        inference_device,
    ))
}

/// The trained model: the best validation checkpoint when asked and there is one, otherwise
/// the last weights (then the last epoch counts as the best).
pub(crate) fn finish_training(
    cfg: CheckedConfig,
    last: Network,
    best: Option<(f64, Network)>,
    restore_best: bool,
    mut history: History,
    device: Device,
) -> Trained {
    let network = match best {
        Some((_, best_network)) if restore_best => best_network,
        _ => {
            history.best_epoch = history.epochs.last().map(|record| record.epoch);
            last
        }
    };
    Trained::from_network(cfg.into_inner(), network.valid(), history, device)
}

/// The rows a model learns from: every row, or the benign ones for an autoencoder trained on
/// benign traffic only; none is an error naming `what` (or `what_benign`).
pub(crate) fn rows_to_learn(
    cfg: &ModelConfig,
    y: &[u32],
    n: usize,
    what: &'static str,
    what_benign: &'static str,
) -> Result<Vec<usize>, ModelError> {
    let benign_only = matches!(&cfg.arch, ArchConfig::Autoencoder(c) if c.benign_only);
    let rows: Vec<usize> = (0..n).filter(|&row| !benign_only || y[row] == 0).collect();
    if rows.is_empty() {
        return Err(ModelError::Empty {
            what: if benign_only { what_benign } else { what },
        });
    }
    Ok(rows)
}

/// The batch loss (a 1-element tensor) for the head of `cfg`; `deep_sad_eta` weighs labelled
/// anomalies under the hypersphere head.
#[allow(clippy::too_many_arguments)]
pub(crate) fn batch_loss(
    cfg: &ModelConfig,
    output: Tensor<2>,
    x: Tensor<3>,
    labels: &[u32],
    rows: &[usize],
    class_weights: &[f32],
    deep_sad_eta: f32,
    device: &Device,
) -> Tensor<1> {
    // An ensemble's members (TabM) each give the batch's rows, member-major; the loss is the
    // mean of theirs.
    let members = (output.dims()[0] / rows.len().max(1)).max(1);
    let batch = rows.len() * members;
    let member_rows = || rows.iter().cycle().take(batch);
    match cfg.head {
        Head::Sigmoid => {
            let mut targets = Vec::with_capacity(batch);
            let mut weights = Vec::with_capacity(batch);
            for &row in member_rows() {
                let label = labels[row];
                targets.push(label as f32);
                weights.push(class_weights[label as usize]);
            }
            let weight_sum: f32 = weights.iter().sum();
            let z = output.reshape([batch]);
            let y = Tensor::<1>::from_data(TensorData::new(targets, [batch]), device);
            let w = Tensor::<1>::from_data(TensorData::new(weights, [batch]), device);
            // Stable BCE with logits: max(z, 0) - z y + log(1 + exp(-|z|)).
            let per_sample = relu(z.clone()) - z.clone() * y + z.abs().neg().exp().log1p();
            (per_sample * w)
                .sum()
                .div_scalar(weight_sum.max(f32::MIN_POSITIVE))
        }
        Head::Softmax => {
            let classes = cfg.n_classes;
            // One-hot targets with the class weight folded in: loss = -sum(w_y log p_y) / sum(w_y).
            let mut targets = vec![0.0f32; batch * classes];
            let mut weight_sum = 0.0f32;
            for (i, &row) in member_rows().enumerate() {
                let label = labels[row] as usize;
                targets[i * classes + label] = class_weights[label];
                weight_sum += class_weights[label];
            }
            let targets =
                Tensor::<2>::from_data(TensorData::new(targets, [batch, classes]), device);
            (log_softmax(output, 1) * targets)
                .sum()
                .neg()
                .div_scalar(weight_sum.max(f32::MIN_POSITIVE))
        }
        Head::Reconstruction => {
            let [b, channels, length] = x.dims();
            let target = x.reshape([b, channels * length]);
            (output - target).square().mean()
        }
        Head::Hypersphere => {
            deep_sad_batch_loss(output, labels, rows, class_weights, deep_sad_eta, device)
        }
    }
}

/// Global-norm clipping: one scale factor for all gradients so their joint L2 norm is at most
/// `max_norm` (burn's clipping is per tensor).
fn clip_global_norm(grads: &mut GradientsParams, params: &[(ParamId, usize)], max_norm: f32) {
    let mut squares: Option<Tensor<1>> = None;
    let mut add = |sq: Tensor<1>| {
        squares = Some(match squares.take() {
            Some(total) => total + sq,
            None => sq,
        });
    };
    for &(id, rank) in params {
        match rank {
            1 => grads.get::<1>(id).map(|g| add(g.square().sum())),
            2 => grads.get::<2>(id).map(|g| add(g.square().sum())),
            3 => grads.get::<3>(id).map(|g| add(g.square().sum())),
            4 => grads.get::<4>(id).map(|g| add(g.square().sum())),
            _ => None,
        };
    }
    let Some(total) = squares else { return };
    let norm = total.into_scalar::<f32>().sqrt();
    if !norm.is_finite() || norm <= max_norm {
        return;
    }
    scale_grads(grads, params, max_norm / (norm + 1e-6));
}

/// Multiplies every gradient of `params` by `factor`.
pub(crate) fn scale_grads(grads: &mut GradientsParams, params: &[(ParamId, usize)], factor: f32) {
    for &(id, rank) in params {
        match rank {
            1 => rescale::<1>(grads, id, factor),
            2 => rescale::<2>(grads, id, factor),
            3 => rescale::<3>(grads, id, factor),
            4 => rescale::<4>(grads, id, factor),
            _ => {}
        }
    }
}

fn rescale<const D: usize>(grads: &mut GradientsParams, id: ParamId, scale: f32) {
    if let Some(g) = grads.remove::<D>(id) {
        grads.register(id, g.mul_scalar(scale));
    }
}

/// ReduceLROnPlateau state.
struct Plateau {
    options: crate::train::PlateauOptions,
    best: f64,
    bad_epochs: usize,
}

impl Plateau {
    fn new(options: PlateauOptions) -> Self {
        Self {
            options,
            best: f64::INFINITY,
            bad_epochs: 0,
        }
    }

    /// The learning rate for the next epoch after seeing `val_loss`.
    fn step(&mut self, val_loss: f64, lr: f64) -> f64 {
        if val_loss < self.best * (1.0 - self.options.threshold) || self.best.is_infinite() {
            self.best = val_loss;
            self.bad_epochs = 0;
            return lr;
        }
        self.bad_epochs += 1;
        if self.bad_epochs > self.options.patience {
            self.bad_epochs = 0;
            return (lr * self.options.factor).max(self.options.min_lr);
        }
        lr
    }
}

fn progress_bar(opts: &TrainOptions, batches_per_epoch: usize) -> ProgressBar {
    if !opts.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new((opts.epochs * batches_per_epoch) as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} batches  {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn format_epoch(record: &EpochRecord) -> String {
    let accuracy = record
        .val_accuracy
        .map(|a| format!(" val_acc {a:.4}"))
        .unwrap_or_default();
    format!(
        "epoch {} loss {:.4} val_loss {:.4}{accuracy} lr {:.2e}",
        record.epoch, record.train_loss, record.val_loss, record.lr
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plateau_cuts_the_rate_after_patience_bad_epochs() {
        let mut plateau = Plateau::new(PlateauOptions {
            factor: 0.5,
            patience: 2,
            min_lr: 0.1,
            threshold: 0.0,
        });
        let mut lr = 1.0;
        lr = plateau.step(1.0, lr);
        assert_eq!(lr, 1.0);
        lr = plateau.step(1.0, lr); // bad 1
        lr = plateau.step(1.0, lr); // bad 2
        assert_eq!(lr, 1.0);
        lr = plateau.step(1.0, lr); // bad 3 > patience: cut
        assert_eq!(lr, 0.5);
        lr = plateau.step(0.5, lr); // improvement resets
        assert_eq!(lr, 0.5);
        for _ in 0..20 {
            lr = plateau.step(0.9, lr);
        }
        assert_eq!(lr, 0.1, "never below min_lr");
    }

    #[test]
    fn balanced_weights_follow_inverse_frequency() {
        let weights = balanced_class_weights(&[0, 0, 0, 1], 3);
        assert!((weights[0] - 4.0 / 6.0).abs() < 1e-6);
        assert!((weights[1] - 2.0).abs() < 1e-6);
        assert_eq!(weights[2], 0.0);
    }

    #[test]
    fn bad_options_are_refused() {
        let opts = TrainOptions {
            batch_size: 0,
            ..TrainOptions::default()
        };
        assert!(matches!(
            opts.check(2),
            Err(ModelError::InvalidOption {
                option: "batch_size",
                ..
            })
        ));
        let opts = TrainOptions {
            class_weights: Some(vec![1.0]),
            ..TrainOptions::default()
        };
        assert!(matches!(
            opts.check(2),
            Err(ModelError::InvalidOption {
                option: "class_weights",
                ..
            })
        ));
        let opts = TrainOptions {
            lr: f64::NAN,
            ..TrainOptions::default()
        };
        assert!(matches!(
            opts.check(2),
            Err(ModelError::InvalidOption { option: "lr", .. })
        ));
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_reaches_the_base_rate_and_anneals_to_zero() {
        let schedule = WarmupCosine { warmup_epochs: 100 };
        let lr = |epoch| schedule.lr(0.1, epoch, 2000);
        assert!((lr(50) - 0.05).abs() < 1e-9, "{}", lr(50));
        assert!((lr(100) - 0.1).abs() < 1e-12);
        // Halfway through the annealing: half the base rate.
        assert!((lr(1050) - 0.05).abs() < 1e-9, "{}", lr(1050));
        assert!(lr(2000).abs() < 1e-12);
        assert!(lr(101) < 0.1 && lr(101) > 0.0999);
    }
}
