//! Meta-learning: **first-order MAML** (FOMAML, Finn et al. 2017 §5.2; Nichol et al. 2018)
//! over tasks built from scenario groups, and few-shot adaptation of a trained model.
//!
//! This replaces the "MAML" of seeds-spec §3.4, which was not MAML: there the inner step was
//! undone before the meta-gradient was taken at the original weights on the same samples, so
//! adaptation never influenced the update. Here, per meta-iteration:
//!
//! 1. `tasks_per_batch` tasks are drawn. A task is one group (an attack scenario) together with
//!    the rows of no group (benign traffic, shared by every task); per class it gets a
//!    *support* set of `shots` rows and a disjoint *query* set of `query_per_class` rows.
//! 2. For each task the meta-network is cloned and the clone takes `inner_steps` plain SGD
//!    steps (rate `inner_lr`) on the support loss: the *adapted* weights.
//! 3. The query loss is computed with the adapted weights and differentiated with respect to
//!    them. First-order: that gradient is used as the gradient at the meta-weights (the
//!    second-order term through the inner steps is dropped). A clone keeps its parameters'
//!    ids, so the gradients line up with the meta-network's parameters.
//! 4. The mean of these gradients over the meta-batch is applied to the meta-weights with Adam
//!    (`outer_lr`).
//!
//! With `inner_steps = 0` this would be plain multi-task training, so it is refused.
//!
//! [`adapt`] is the deployment-time half: plain SGD fine-tuning of a trained model on a few
//! labelled rows of a new environment. It is both how a meta-trained model is used and the
//! fine-tuning baseline MAML is compared with (README, "MAML vs fine-tuning").

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::arch::Network;
use crate::config::{CheckedConfig, Head};
use crate::data::{checked_labels, checked_samples, gather_batch};
use crate::layers::ForwardCtx;
use crate::train::{batch_loss, finish_training, rows_to_learn, scale_grads, EpochRecord, History};
use crate::trained::{raw_outputs, OutputSummary, Trained};
use crate::{ComputeDevice, ModelConfig, ModelError, TrainData};

/// Rows of no group in `task_of_row`: they belong to every task (benign traffic when grouping
/// by scenario). The same value as `nadir_dataset::UNGROUPED`.
pub const SHARED_ROWS: u32 = nadir_dataset::UNGROUPED;

/// How to meta-train (first-order MAML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaOptions {
    /// Outer (meta) updates.
    pub meta_iterations: usize,
    /// Tasks per outer update; their query gradients are averaged.
    pub tasks_per_batch: usize,
    /// Support rows per class and task (k of k-shot).
    pub shots: usize,
    /// Query rows per class and task, disjoint from the support rows.
    pub query_per_class: usize,
    /// Plain SGD steps on the support set in the inner loop (at least 1).
    pub inner_steps: usize,
    /// Inner-loop SGD learning rate; also the rate [`AdaptOptions::for_meta`] adapts with.
    pub inner_lr: f64,
    /// Adam learning rate of the outer update.
    pub outer_lr: f64,
    /// Meta-iterations per validation (one [`EpochRecord`] per block).
    pub eval_every: usize,
    /// Keep the meta-weights of the block with the lowest validation loss after adaptation.
    pub restore_best: bool,
    pub seed: u64,
    /// Draw a progress bar on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Where to train; a property of the run, not serialised (see `TrainOptions::device`).
    #[serde(skip)]
    pub device: ComputeDevice,
}

impl Default for MetaOptions {
    fn default() -> Self {
        Self {
            meta_iterations: 300,
            tasks_per_batch: 4,
            shots: 10,
            query_per_class: 32,
            inner_steps: 5,
            inner_lr: 0.05,
            outer_lr: 1e-3,
            eval_every: 20,
            restore_best: true,
            seed: 42,
            progress: true,
            device: ComputeDevice::Cpu,
        }
    }
}

impl MetaOptions {
    fn check(&self) -> Result<(), ModelError> {
        let invalid =
            |option: &'static str, reason: String| ModelError::InvalidOption { option, reason };
        for (option, value) in [
            ("meta_iterations", self.meta_iterations),
            ("tasks_per_batch", self.tasks_per_batch),
            ("shots", self.shots),
            ("query_per_class", self.query_per_class),
            ("eval_every", self.eval_every),
        ] {
            if value == 0 {
                return Err(invalid(option, "must be at least 1".into()));
            }
        }
        if self.inner_steps == 0 {
            return Err(invalid(
                "inner_steps",
                "must be at least 1: without an inner loop MAML is plain multi-task training"
                    .into(),
            ));
        }
        for (option, value) in [("inner_lr", self.inner_lr), ("outer_lr", self.outer_lr)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(invalid(option, format!("{value} is not a positive number")));
            }
        }
        Ok(())
    }
}

/// How to adapt (fine-tune) a trained model to a few labelled rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaptOptions {
    /// Plain SGD steps.
    pub steps: usize,
    pub lr: f64,
    /// Rows per step; `None` takes the whole support set every step (the MAML inner loop).
    pub batch_size: Option<usize>,
    /// Dropout masks and mini-batch order.
    pub seed: u64,
    #[serde(skip)]
    pub device: ComputeDevice,
}

impl Default for AdaptOptions {
    fn default() -> Self {
        Self {
            steps: 20,
            lr: 0.05,
            batch_size: None,
            seed: 42,
            device: ComputeDevice::Cpu,
        }
    }
}

impl AdaptOptions {
    /// Adaptation as the inner loop of `meta` ran it (its steps and rate, whole support set).
    pub fn for_meta(meta: &MetaOptions) -> Self {
        Self {
            steps: meta.inner_steps,
            lr: meta.inner_lr,
            batch_size: None,
            seed: meta.seed,
            device: meta.device,
        }
    }

    fn check(&self) -> Result<(), ModelError> {
        if self.steps == 0 {
            return Err(ModelError::InvalidOption {
                option: "steps",
                reason: "must be at least 1 (0 steps would return the model unchanged)".into(),
            });
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(ModelError::InvalidOption {
                option: "lr",
                reason: format!("{} is not a positive number", self.lr),
            });
        }
        if self.batch_size == Some(0) {
            return Err(ModelError::InvalidOption {
                option: "batch_size",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// Meta-trains the model of `cfg` with first-order MAML from fresh weights (`opts.seed`).
///
/// `task_of_row` gives each training row's group (scenario); rows with [`SHARED_ROWS`] belong
/// to every task. A group becomes a task when it and the shared rows hold at least two classes
/// with two rows each. `val` is scored after every `eval_every` iterations *after* adapting the
/// meta-weights to a fixed support set drawn from `val` (`shots` per class, excluded from the
/// score): the loss MAML is meant to lower. Classifier heads only (sigmoid, softmax).
pub fn meta_train(
    cfg: &ModelConfig,
    data: TrainData,
    task_of_row: &[u32],
    val: TrainData,
    opts: &MetaOptions,
) -> Result<Trained, ModelError> {
    let checked = cfg.check()?;
    if !checked.kind().is_network() {
        return Err(ModelError::Unsupported {
            kind: checked.kind(),
            operation: "meta-learning (MAML adapts a network's weights)",
        });
    }
    let device = opts.device.open()?;
    let network = Network::new(&checked, &device.clone().autodiff(), opts.seed);
    meta_train_network(checked, network, device, data, task_of_row, val, opts)
}

/// [`meta_train`] starting from the weights of `start` (e.g. a supervised model) instead of a
/// fresh initialisation.
pub fn meta_train_from(
    start: &Trained,
    data: TrainData,
    task_of_row: &[u32],
    val: TrainData,
    opts: &MetaOptions,
) -> Result<Trained, ModelError> {
    let checked = start.config().check()?;
    let device = opts.device.open()?;
    let network = trainable_copy(start, &checked, &device.clone().autodiff())?;
    meta_train_network(checked, network, device, data, task_of_row, val, opts)
}

/// Fine-tunes `model` on `support` with `opts.steps` plain SGD steps: the deployment-time
/// adaptation of a meta-trained model, and the fine-tuning baseline.
///
/// Classifiers need at least two classes in `support`; the autoencoder learns from its benign
/// rows only (all rows when it was not trained benign-only). The result keeps the model's
/// config and history.
pub fn adapt(
    model: &Trained,
    support: TrainData,
    opts: &AdaptOptions,
) -> Result<Trained, ModelError> {
    opts.check()?;
    let cfg = model.config().check()?;
    let n = checked_samples("support data", support.x, support.shape, cfg.input)?;
    let rows = support_rows(&cfg, support, n)?;
    let device = opts.device.open()?;
    let autodiff = device.clone().autodiff();
    let network = trainable_copy(model, &cfg, &autodiff)?;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let adapted = sgd_steps(
        &cfg,
        network,
        support,
        &rows,
        opts.steps,
        opts.lr,
        opts.batch_size,
        &mut rng,
        &autodiff,
        0,
    )?;
    Ok(Trained::from_network(
        cfg.into_inner(),
        adapted.valid(),
        model.history().clone(),
        device,
    ))
}

/// Unweighted loss and accuracy (classifiers) of `model` on `data` (the validation metrics
/// training reports): to compare a model before and after [`adapt`].
pub fn loss_and_accuracy(
    model: &Trained,
    data: TrainData,
) -> Result<(f64, Option<f64>), ModelError> {
    let cfg = model.config();
    let n = checked_samples("evaluation data", data.x, data.shape, cfg.input)?;
    let classes = if matches!(cfg.head, Head::Sigmoid | Head::Softmax) {
        cfg.n_classes
    } else {
        u32::MAX as usize
    };
    checked_labels("evaluation data", data.y, n, classes)?;
    if n == 0 {
        return Err(ModelError::Empty {
            what: "evaluation data",
        });
    }
    let rows: Vec<usize> = (0..n).collect();
    let outputs = raw_outputs(model.network()?, data.x, data.shape, &rows, model.device());
    // eta only weighs Deep SAD anomalies: the design's 1.
    let summary = OutputSummary::compute(cfg, &outputs, data.x, data.y, &rows, 1.0);
    Ok((summary.loss, summary.accuracy))
}

/// The rows [`adapt`] learns from, checked.
fn support_rows(
    cfg: &CheckedConfig,
    support: TrainData,
    n: usize,
) -> Result<Vec<usize>, ModelError> {
    match cfg.head {
        Head::Sigmoid | Head::Softmax => {
            checked_labels("support data", support.y, n, cfg.n_classes)?;
            let Some(&first) = support.y.first() else {
                return Err(ModelError::Empty {
                    what: "support data",
                });
            };
            if support.y.iter().all(|&label| label == first) {
                return Err(ModelError::SingleClass {
                    what: "support data",
                    class: first,
                });
            }
            Ok((0..n).collect())
        }
        Head::Reconstruction => {
            checked_labels("support data", support.y, n, u32::MAX as usize)?;
            rows_to_learn(cfg, support.y, n, "support data", "benign support data")
        }
        _ => Err(ModelError::Unsupported {
            kind: cfg.kind(),
            operation: "few-shot adaptation (only classifier and autoencoder heads)",
        }),
    }
}

/// The weights of `model` as a trainable network on `device` (an autodiff device).
fn trainable_copy(
    model: &Trained,
    cfg: &CheckedConfig,
    device: &Device,
) -> Result<Network, ModelError> {
    let record = model.network()?.clone().into_record();
    Network::new(cfg, device, 0)
        .try_load_record(record)
        .map_err(|e| ModelError::Weights {
            kind: cfg.kind(),
            reason: e.to_string(),
        })
}

/// `steps` plain SGD steps of `network` on `rows` of `data`: the whole set per step, or
/// shuffled mini-batches of `batch_size`. `iteration` only labels a divergence error.
#[allow(clippy::too_many_arguments)]
fn sgd_steps(
    cfg: &CheckedConfig,
    mut network: Network,
    data: TrainData,
    rows: &[usize],
    steps: usize,
    lr: f64,
    batch_size: Option<usize>,
    rng: &mut ChaCha8Rng,
    device: &Device,
    iteration: usize,
) -> Result<Network, ModelError> {
    let class_weights = vec![1.0f32; cfg.n_classes.max(1)];
    let mut sgd: ModuleOptimizer = SgdConfig::new().init();
    let mut order = rows.to_vec();
    let batch = batch_size.unwrap_or(rows.len()).min(rows.len()).max(1);
    let mut cursor = order.len();
    for step in 1..=steps {
        if cursor + batch > order.len() {
            if batch < order.len() {
                order.shuffle(rng);
            }
            cursor = 0;
        }
        let chunk = &order[cursor..cursor + batch];
        cursor += batch;
        let x = gather_batch(data.x, cfg.input, chunk, device);
        let output = network.forward(x.clone(), &mut ForwardCtx::training(rng));
        let loss = batch_loss(cfg, output, x, data.y, chunk, &class_weights, 0.0, device);
        let value: f32 = loss.clone().into_scalar();
        if !value.is_finite() {
            return Err(ModelError::Diverged {
                epoch: iteration,
                batch: step,
                loss: value,
            });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &network);
        network = sgd.step(lr, network, grads);
    }
    Ok(network)
}

/// One task: row pools per class (the group's rows plus the shared rows).
struct Task {
    pools: Vec<Vec<usize>>,
}

impl Task {
    /// Disjoint support and query rows: per class with at least two rows, `shots` support
    /// rows (at most half the pool) and up to `query` query rows from the rest.
    fn sample(
        &mut self,
        shots: usize,
        query: usize,
        rng: &mut ChaCha8Rng,
    ) -> (Vec<usize>, Vec<usize>) {
        let mut support = Vec::new();
        let mut queries = Vec::new();
        for pool in self.pools.iter_mut().filter(|pool| pool.len() >= 2) {
            let s = shots.min(pool.len() / 2).max(1);
            let q = query.min(pool.len() - s);
            let (picked, _) = pool.partial_shuffle(rng, s + q);
            support.extend_from_slice(&picked[..s]);
            queries.extend_from_slice(&picked[s..]);
        }
        (support, queries)
    }
}

/// Tasks from groups: every group whose rows plus the shared rows hold two classes with at
/// least two rows each.
fn build_tasks(y: &[u32], task_of_row: &[u32], n_classes: usize) -> Vec<Task> {
    let mut shared = vec![Vec::new(); n_classes];
    let mut groups: Vec<(u32, Vec<Vec<usize>>)> = Vec::new();
    for (row, (&label, &group)) in y.iter().zip(task_of_row).enumerate() {
        if group == SHARED_ROWS {
            shared[label as usize].push(row);
            continue;
        }
        let index = match groups.iter().position(|(g, _)| *g == group) {
            Some(index) => index,
            None => {
                groups.push((group, vec![Vec::new(); n_classes]));
                groups.len() - 1
            }
        };
        groups[index].1[label as usize].push(row);
    }
    groups.sort_by_key(|(group, _)| *group);
    groups
        .into_iter()
        .map(|(_, mut pools)| {
            for (pool, common) in pools.iter_mut().zip(&shared) {
                pool.extend_from_slice(common);
            }
            Task { pools }
        })
        .filter(|task| task.pools.iter().filter(|pool| pool.len() >= 2).count() >= 2)
        .collect()
}

fn meta_train_network(
    cfg: CheckedConfig,
    mut network: Network,
    device: Device,
    data: TrainData,
    task_of_row: &[u32],
    val: TrainData,
    opts: &MetaOptions,
) -> Result<Trained, ModelError> {
    opts.check()?;
    if !matches!(cfg.head, Head::Sigmoid | Head::Softmax) {
        return Err(ModelError::Unsupported {
            kind: cfg.kind(),
            operation: "MAML (only classifier heads: sigmoid or softmax)",
        });
    }
    let n = checked_samples("training data", data.x, data.shape, cfg.input)?;
    let n_val = checked_samples("validation data", val.x, val.shape, cfg.input)?;
    checked_labels("training data", data.y, n, cfg.n_classes)?;
    checked_labels("validation data", val.y, n_val, cfg.n_classes)?;
    if task_of_row.len() != n {
        return Err(ModelError::LabelCount {
            what: "task_of_row (one group per training row)",
            samples: n,
            labels: task_of_row.len(),
        });
    }
    if n_val == 0 {
        return Err(ModelError::Empty {
            what: "validation data",
        });
    }
    let mut tasks = build_tasks(data.y, task_of_row, cfg.n_classes);
    if tasks.is_empty() {
        return Err(ModelError::Empty {
            what: "meta-training tasks (no group holds, with the shared rows, two classes of \
                   at least two rows)",
        });
    }
    if tasks.len() == 1 {
        tracing::warn!(
            "one meta-training task only (one group of rows): MAML then learns a start for \
             that one task; group the rows by scenario (e.g. --group-by label) for several"
        );
    }
    tracing::info!(tasks = tasks.len(), "meta-training tasks");

    let autodiff = device.clone().autodiff();
    let params = network.float_param_ids();
    let mut outer: ModuleOptimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let class_weights = vec![1.0f32; cfg.n_classes];

    // A fixed validation task: `shots` support rows per class from `val`, scored on the rest.
    let mut val_task = Task {
        pools: {
            let mut pools = vec![Vec::new(); cfg.n_classes];
            for (row, &label) in val.y.iter().enumerate() {
                pools[label as usize].push(row);
            }
            pools
        },
    };
    let mut val_rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x5eed);
    let val_support = if val_task.pools.iter().filter(|p| p.len() >= 2).count() >= 2 {
        val_task.sample(opts.shots, 0, &mut val_rng).0
    } else {
        Vec::new()
    };
    let val_rows: Vec<usize> = {
        let mut in_support = vec![false; n_val];
        for &row in &val_support {
            in_support[row] = true;
        }
        (0..n_val).filter(|&row| !in_support[row]).collect()
    };
    let val_rows = if val_rows.is_empty() {
        (0..n_val).collect()
    } else {
        val_rows
    };

    let progress = progress_bar(opts);
    let mut history = History::default();
    let mut best: Option<(f64, Network)> = None;
    let mut block_loss = 0.0f64;
    let mut block_tasks = 0usize;
    let mut block_started = Instant::now();
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    let mut next_task = order.len();

    for iteration in 1..=opts.meta_iterations {
        let mut accumulator = GradientsAccumulator::<Network>::new();
        for _ in 0..opts.tasks_per_batch {
            // Cycle through the tasks in shuffled order, so every task is seen equally often.
            if next_task == order.len() {
                order.shuffle(&mut rng);
                next_task = 0;
            }
            let task = &mut tasks[order[next_task]];
            next_task += 1;
            let (support, query) = task.sample(opts.shots, opts.query_per_class, &mut rng);
            let fast = sgd_steps(
                &cfg,
                network.clone(),
                data,
                &support,
                opts.inner_steps,
                opts.inner_lr,
                None,
                &mut rng,
                &autodiff,
                iteration,
            )?;
            let x = gather_batch(data.x, cfg.input, &query, &autodiff);
            let output = fast.forward(x.clone(), &mut ForwardCtx::training(&mut rng));
            let loss = batch_loss(
                &cfg,
                output,
                x,
                data.y,
                &query,
                &class_weights,
                0.0,
                &autodiff,
            );
            let value: f32 = loss.clone().into_scalar();
            if !value.is_finite() {
                progress.abandon();
                return Err(ModelError::Diverged {
                    epoch: iteration,
                    batch: 0,
                    loss: value,
                });
            }
            block_loss += f64::from(value);
            block_tasks += 1;
            // First-order: the query gradient at the adapted weights stands in for the
            // gradient at the meta-weights (same parameter ids).
            accumulator.accumulate(
                &network,
                GradientsParams::from_grads(loss.backward(), &fast),
            );
        }
        let mut grads = accumulator.grads();
        if grads.is_empty() {
            progress.abandon();
            return Err(ModelError::Weights {
                kind: cfg.kind(),
                reason: "the adapted copy's gradients match no meta-parameter".into(),
            });
        }
        scale_grads(&mut grads, &params, 1.0 / opts.tasks_per_batch as f32);
        network = outer.step(opts.outer_lr, network, grads);
        progress.inc(1);

        if iteration % opts.eval_every == 0 || iteration == opts.meta_iterations {
            let evaluated = if val_support.is_empty() {
                network.clone()
            } else {
                sgd_steps(
                    &cfg,
                    network.clone(),
                    val,
                    &val_support,
                    opts.inner_steps,
                    opts.inner_lr,
                    None,
                    &mut val_rng,
                    &autodiff,
                    iteration,
                )?
            };
            let inference = evaluated.valid();
            let summary = OutputSummary::compute(
                &cfg,
                &raw_outputs(&inference, val.x, cfg.input, &val_rows, &device),
                val.x,
                val.y,
                &val_rows,
                0.0,
            );
            let record = EpochRecord {
                epoch: history.epochs.len() + 1,
                train_loss: block_loss / block_tasks.max(1) as f64,
                val_loss: summary.loss,
                val_accuracy: summary.accuracy,
                lr: opts.outer_lr,
                seconds: block_started.elapsed().as_secs_f64(),
            };
            progress.set_message(format!(
                "iteration {iteration} query_loss {:.4} adapted val_loss {:.4}",
                record.train_loss, record.val_loss
            ));
            tracing::debug!(
                iteration,
                query_loss = record.train_loss,
                val_loss = record.val_loss,
                "meta block done"
            );
            let improved = best
                .as_ref()
                .map_or(summary.loss.is_finite(), |(loss, _)| summary.loss < *loss);
            if improved {
                best = Some((summary.loss, network.clone()));
                history.best_epoch = Some(record.epoch);
            }
            history.epochs.push(record);
            block_loss = 0.0;
            block_tasks = 0;
            block_started = Instant::now();
        }
    }
    progress.finish();
    Ok(finish_training(
        cfg,
        network,
        best,
        opts.restore_best,
        history,
        device,
    ))
}

fn progress_bar(opts: &MetaOptions) -> ProgressBar {
    if !opts.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(opts.meta_iterations as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} meta-iterations  {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;
    use crate::{ArchConfig, HybridConfig, InputShape, ModelKind};

    const FEATURES: usize = 4;
    const SHAPE: InputShape = InputShape::Tabular { features: FEATURES };

    /// A tiny hybrid (about 1.2 k parameters).
    fn tiny_hybrid() -> ModelConfig {
        let mut cfg = ModelConfig::default_for(ModelKind::Hybrid, SHAPE, 2);
        cfg.arch = ArchConfig::Hybrid(HybridConfig {
            lstm_units: 8,
            attention_dropout: 0.0,
            heads: 1,
            key_dim: 4,
            ffn_units: 8,
            ..HybridConfig::default()
        });
        cfg
    }

    /// The task family: points uniform in [-2, 2]^4, class 1 when `x0 cos a + x1 sin a > b`.
    /// The angle `a` differs per task (all directions occur), so no single classifier does
    /// better than chance over the family: only adaptation helps.
    struct Family {
        rng: ChaCha8Rng,
    }

    impl Family {
        fn new(seed: u64) -> Self {
            Self {
                rng: ChaCha8Rng::seed_from_u64(seed),
            }
        }

        /// `per_class` rows of each class of a fresh task, appended with `group`.
        fn task(
            &mut self,
            per_class: usize,
            group: u32,
            x: &mut Vec<f32>,
            y: &mut Vec<u32>,
            groups: &mut Vec<u32>,
        ) {
            let angle: f32 = self.rng.random_range(0.0..std::f32::consts::TAU);
            let shift: f32 = self.rng.random_range(-0.3..0.3);
            let mut counts = [0usize; 2];
            while counts[0] < per_class || counts[1] < per_class {
                let point: Vec<f32> = (0..FEATURES)
                    .map(|_| self.rng.random_range(-2.0..2.0))
                    .collect();
                let margin = point[0] * angle.cos() + point[1] * angle.sin() - shift;
                if margin.abs() < 0.2 {
                    continue;
                }
                let label = usize::from(margin > 0.0);
                if counts[label] == per_class {
                    continue;
                }
                counts[label] += 1;
                x.extend_from_slice(&point);
                y.push(label as u32);
                groups.push(group);
            }
        }
    }

    struct Split {
        x: Vec<f32>,
        y: Vec<u32>,
        groups: Vec<u32>,
    }

    fn tasks(family: &mut Family, count: u32, per_class: usize) -> Split {
        let mut split = Split {
            x: Vec::new(),
            y: Vec::new(),
            groups: Vec::new(),
        };
        for group in 0..count {
            family.task(
                per_class,
                group,
                &mut split.x,
                &mut split.y,
                &mut split.groups,
            );
        }
        split
    }

    fn quick_meta() -> MetaOptions {
        MetaOptions {
            meta_iterations: 40,
            tasks_per_batch: 4,
            shots: 5,
            query_per_class: 15,
            inner_steps: 5,
            inner_lr: 0.1,
            outer_lr: 3e-3,
            eval_every: 10,
            restore_best: false,
            seed: 3,
            progress: false,
            device: ComputeDevice::Cpu,
        }
    }

    fn rows(split: &Split, keep: impl Fn(usize) -> bool) -> (Vec<f32>, Vec<u32>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for row in (0..split.y.len()).filter(|&row| keep(row)) {
            x.extend_from_slice(&split.x[row * FEATURES..(row + 1) * FEATURES]);
            y.push(split.y[row]);
        }
        (x, y)
    }

    /// Rows and their labels.
    type Rows = (Vec<f32>, Vec<u32>);

    /// Support (`shots` per class, the first rows of each class) and query (the rest) of a
    /// one-task split.
    fn support_query(task: &Split, shots: usize) -> (Rows, Rows) {
        let mut seen = [0usize; 2];
        let mut in_support = vec![false; task.y.len()];
        for (row, &label) in task.y.iter().enumerate() {
            if seen[label as usize] < shots {
                seen[label as usize] += 1;
                in_support[row] = true;
            }
        }
        (
            rows(task, |row| in_support[row]),
            rows(task, |row| !in_support[row]),
        )
    }

    #[test]
    fn maml_adaptation_changes_the_weights_and_beats_the_unadapted_start() {
        let mut family = Family::new(1);
        let train = tasks(&mut family, 16, 30);
        let val = tasks(&mut family, 1, 40);
        let opts = quick_meta();
        let meta = meta_train(
            &tiny_hybrid(),
            TrainData::new(&train.x, SHAPE, &train.y),
            &train.groups,
            TrainData::new(&val.x, SHAPE, &val.y),
            &opts,
        )
        .unwrap();
        assert_eq!(meta.history().epochs.len(), 4);
        assert!(meta.history().epochs.iter().all(|r| r.val_loss.is_finite()));

        // Held-out tasks: adaptation on 5 shots per class must move the weights and lower
        // the query loss on every one of them, and raise the mean accuracy.
        let adapt_opts = AdaptOptions {
            steps: 10,
            ..AdaptOptions::for_meta(&opts)
        };
        let start_bytes = meta.to_bytes().unwrap();
        let (mut start_acc, mut adapted_acc) = (0.0, 0.0);
        for _ in 0..4 {
            let task = tasks(&mut family, 1, 60);
            let ((sx, sy), (qx, qy)) = support_query(&task, 5);
            let adapted = adapt(&meta, TrainData::new(&sx, SHAPE, &sy), &adapt_opts).unwrap();
            assert_ne!(
                adapted.to_bytes().unwrap(),
                start_bytes,
                "adapt left the weights alone"
            );
            let query = TrainData::new(&qx, SHAPE, &qy);
            let (loss_before, acc_before) = loss_and_accuracy(&meta, query).unwrap();
            let (loss_after, acc_after) = loss_and_accuracy(&adapted, query).unwrap();
            assert!(
                loss_after < loss_before - 0.02,
                "query loss {loss_before:.4} -> {loss_after:.4} after adaptation"
            );
            start_acc += acc_before.unwrap() / 4.0;
            adapted_acc += acc_after.unwrap() / 4.0;
        }
        assert!(
            adapted_acc > start_acc + 0.1 && adapted_acc > 0.7,
            "mean query accuracy {start_acc:.3} unadapted, {adapted_acc:.3} adapted"
        );
        // Adaptation works on a copy: the meta-trained model is unchanged.
        assert_eq!(meta.to_bytes().unwrap(), start_bytes);
    }

    /// The meta-training itself must help: from the meta-weights, the same few shots and
    /// steps reach a lower query loss than from a fresh initialisation (0.39-0.47 vs
    /// 0.63-0.67 over six seeds when this was written).
    #[test]
    fn meta_training_makes_adaptation_better_than_a_fresh_start() {
        let mut family = Family::new(101);
        let train = tasks(&mut family, 16, 30);
        let val = tasks(&mut family, 1, 40);
        let opts = MetaOptions {
            seed: 1,
            ..quick_meta()
        };
        let meta = meta_train(
            &tiny_hybrid(),
            TrainData::new(&train.x, SHAPE, &train.y),
            &train.groups,
            TrainData::new(&val.x, SHAPE, &val.y),
            &opts,
        )
        .unwrap();
        let fresh = Trained::untrained(&tiny_hybrid(), opts.seed).unwrap();
        let adapt_opts = AdaptOptions {
            steps: 10,
            ..AdaptOptions::for_meta(&opts)
        };
        let (mut meta_loss, mut fresh_loss) = (0.0, 0.0);
        for _ in 0..8 {
            let task = tasks(&mut family, 1, 60);
            let ((sx, sy), (qx, qy)) = support_query(&task, 5);
            let support = TrainData::new(&sx, SHAPE, &sy);
            let query = TrainData::new(&qx, SHAPE, &qy);
            meta_loss += loss_and_accuracy(&adapt(&meta, support, &adapt_opts).unwrap(), query)
                .unwrap()
                .0
                / 8.0;
            fresh_loss += loss_and_accuracy(&adapt(&fresh, support, &adapt_opts).unwrap(), query)
                .unwrap()
                .0
                / 8.0;
        }
        assert!(
            meta_loss < fresh_loss - 0.1,
            "adapted query loss {meta_loss:.3} from the meta-weights, {fresh_loss:.3} fresh"
        );
    }

    /// A family with batch normalisation (CNN-LSTM: BN after each convolution) meta-trains and
    /// adapts too: the inner loop's batch statistics neither break the outer step nor leave
    /// non-finite running statistics, and adaptation still lowers the query loss (0.79 -> 0.55
    /// when this was written).
    #[test]
    fn maml_works_on_a_family_with_batch_normalisation() {
        let shape = InputShape::Windows {
            channels: 1,
            length: FEATURES,
        };
        let mut cfg = ModelConfig::default_for(ModelKind::CnnLstm, shape, 2);
        cfg.arch = ArchConfig::CnnLstm(crate::CnnLstmConfig {
            conv1_channels: 8,
            conv2_channels: 8,
            lstm_hidden: 8,
            dropout: 0.0,
            ..crate::CnnLstmConfig::default()
        });
        let mut family = Family::new(7);
        let train = tasks(&mut family, 12, 20);
        let val = tasks(&mut family, 1, 30);
        let opts = quick_meta();
        let meta = meta_train(
            &cfg,
            TrainData::new(&train.x, shape, &train.y),
            &train.groups,
            TrainData::new(&val.x, shape, &val.y),
            &opts,
        )
        .unwrap();
        assert!(meta.history().epochs.iter().all(|r| r.val_loss.is_finite()));
        let adapt_opts = AdaptOptions {
            steps: 10,
            ..AdaptOptions::for_meta(&opts)
        };
        let (mut before, mut after) = (0.0, 0.0);
        for _ in 0..4 {
            let task = tasks(&mut family, 1, 60);
            let ((sx, sy), (qx, qy)) = support_query(&task, 5);
            let adapted = adapt(&meta, TrainData::new(&sx, shape, &sy), &adapt_opts).unwrap();
            let query = TrainData::new(&qx, shape, &qy);
            let scores = adapted.predict(&qx, shape).unwrap().anomaly_scores();
            assert!(
                scores.iter().all(|s| s.is_finite()),
                "non-finite scores after adapt"
            );
            before += loss_and_accuracy(&meta, query).unwrap().0 / 4.0;
            after += loss_and_accuracy(&adapted, query).unwrap().0 / 4.0;
        }
        assert!(
            after < before - 0.1,
            "mean query loss {before:.4} before adaptation, {after:.4} after"
        );
    }

    #[test]
    fn a_missing_inner_loop_is_refused() {
        let mut family = Family::new(2);
        let train = tasks(&mut family, 2, 10);
        let data = TrainData::new(&train.x, SHAPE, &train.y);
        let opts = MetaOptions {
            inner_steps: 0,
            ..quick_meta()
        };
        let err = meta_train(&tiny_hybrid(), data, &train.groups, data, &opts).unwrap_err();
        assert!(
            matches!(
                err,
                ModelError::InvalidOption {
                    option: "inner_steps",
                    ..
                }
            ),
            "{err}"
        );
        let model = Trained::untrained(&tiny_hybrid(), 0).unwrap();
        let err = adapt(
            &model,
            data,
            &AdaptOptions {
                steps: 0,
                ..AdaptOptions::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                ModelError::InvalidOption {
                    option: "steps",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let mut family = Family::new(3);
        let train = tasks(&mut family, 2, 10);
        let data = TrainData::new(&train.x, SHAPE, &train.y);
        let model = Trained::untrained(&tiny_hybrid(), 0).unwrap();
        let opts = AdaptOptions::default();

        // Support columns that do not match the model.
        let wide = InputShape::Tabular { features: 5 };
        let x5 = vec![0.0f32; 5 * 4];
        let err = adapt(&model, TrainData::new(&x5, wide, &[0, 1, 0, 1]), &opts).unwrap_err();
        assert!(matches!(err, ModelError::ShapeMismatch { .. }), "{err}");
        // A class the model does not have, one class only, no rows, NaN.
        let x = &train.x[..4 * FEATURES];
        let err = adapt(&model, TrainData::new(x, SHAPE, &[0, 2, 0, 1]), &opts).unwrap_err();
        assert!(
            matches!(err, ModelError::LabelOutOfRange { label: 2, .. }),
            "{err}"
        );
        let err = adapt(&model, TrainData::new(x, SHAPE, &[1, 1, 1, 1]), &opts).unwrap_err();
        assert!(
            matches!(err, ModelError::SingleClass { class: 1, .. }),
            "{err}"
        );
        let err = adapt(&model, TrainData::new(&[], SHAPE, &[]), &opts).unwrap_err();
        assert!(matches!(err, ModelError::Empty { .. }), "{err}");
        let mut nan = x.to_vec();
        nan[5] = f32::NAN;
        let err = adapt(&model, TrainData::new(&nan, SHAPE, &[0, 1, 0, 1]), &opts).unwrap_err();
        assert!(matches!(err, ModelError::NonFinite { row: 1, .. }), "{err}");

        // Groups: one per row, and at least one group with two classes.
        let meta = quick_meta();
        let err = meta_train(&tiny_hybrid(), data, &train.groups[1..], data, &meta).unwrap_err();
        assert!(matches!(err, ModelError::LabelCount { .. }), "{err}");
        let by_class: Vec<u32> = train.y.iter().map(|&label| 11 * label).collect();
        let err = meta_train(&tiny_hybrid(), data, &by_class, data, &meta).unwrap_err();
        assert!(matches!(err, ModelError::Empty { .. }), "{err}");
    }

    #[test]
    fn tasks_share_the_ungrouped_rows() {
        // Rows 0-3 benign and shared; group 7 has attacks only, group 9 one attack row.
        let y = [0, 0, 0, 0, 1, 1, 1, 1];
        let groups = [
            SHARED_ROWS,
            SHARED_ROWS,
            SHARED_ROWS,
            SHARED_ROWS,
            7,
            7,
            7,
            9,
        ];
        let mut tasks = build_tasks(&y, &groups, 2);
        assert_eq!(tasks.len(), 1, "group 9 has a single attack row");
        assert_eq!(tasks[0].pools[0].len(), 4);
        assert_eq!(tasks[0].pools[1], vec![4, 5, 6]);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (support, query) = tasks[0].sample(2, 5, &mut rng);
        // Two benign + one attack (at most half of a pool) in the support, the rest queried.
        assert_eq!(support.len(), 3);
        assert_eq!(query.len(), 2 + 2);
        assert!(support.iter().all(|row| !query.contains(row)));
    }
}
