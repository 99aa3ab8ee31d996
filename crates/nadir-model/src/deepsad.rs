//! Learning from normal traffic with LDPI (seeds-spec §4.4-4.5): SimCLR-style contrastive
//! pretraining of the encoder on normal samples, with distribution-shifting augmentations as
//! outlier exposure, then Deep SAD around a fixed centre.
//!
//! Deviations from the published code, each on purpose:
//! - crop-and-resize stretches the crop over the whole sample (a true resize; the code
//!   extrapolated past the crop, §4.9);
//! - the loss is SimCLR's NT-Xent over both views (2N - 2 negatives per anchor, the published
//!   code used only the other samples' second views);
//! - Adam at 1e-3 for tens of epochs instead of 2,000 SGD epochs with warm-up (out of reach
//!   on a CPU);
//! - augmentations scale with each sample's own range, so they also fit standardised
//!   (z-scored) inputs; on bytes in [0, 1] they are the published ones.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::ProgressBar;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::arch::Network;
use crate::data::{checked_samples, gather_batch};
use crate::train::{OptimizerKind, WarmupCosine};
use crate::{History, InputShape, ModelConfig, ModelError, Trained};

/// Deep SAD's options (used when the head is [`crate::Head::Hypersphere`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeepSadOptions {
    /// Weight of the labelled anomalies' inverse-distance term (eta; 1 in the design).
    pub eta: f32,
    /// Centre coordinates closer to 0 than this are pushed out to +/- this value: a
    /// coordinate at 0 is trivially matched by weights that die (Ruff et al. use 0.1).
    pub center_eps: f32,
    /// Contrastive pretraining of the encoder before the centre is taken; `None` takes the
    /// centre from the freshly initialised encoder (plain Deep SVDD/SAD).
    pub pretrain: Option<ContrastiveOptions>,
}

impl Default for DeepSadOptions {
    fn default() -> Self {
        Self {
            eta: 1.0,
            center_eps: 0.1,
            pretrain: Some(ContrastiveOptions::default()),
        }
    }
}

/// SimCLR pretraining on normal samples (seeds-spec §4.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContrastiveOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// NT-Xent temperature (0.2 in the design).
    pub temperature: f32,
    /// Chance that a sample is replaced by a distribution-shifted copy of itself (noise,
    /// reversal, permutation or inversion), which the loss then pushes away from the
    /// real samples (0.5 in the design).
    pub outlier_exposure: f64,
    /// Adam by default; the design: SGD, weight decay 3e-4.
    pub optimizer: OptimizerKind,
    /// The design warms up over 100 epochs, then anneals (cosine).
    pub lr_schedule: Option<WarmupCosine>,
}

impl Default for ContrastiveOptions {
    fn default() -> Self {
        Self {
            epochs: 20,
            batch_size: 64,
            lr: 1e-3,
            temperature: 0.2,
            outlier_exposure: 0.5,
            optimizer: OptimizerKind::Adam,
            lr_schedule: None,
        }
    }
}

/// Offset that keeps the inverse-distance term finite at the centre.
const INVERSE_DISTANCE_EPS: f32 = 1e-6;

impl DeepSadOptions {
    pub(crate) fn check(&self) -> Result<(), ModelError> {
        let invalid =
            |option: &'static str, reason: String| ModelError::InvalidOption { option, reason };
        if !(self.eta.is_finite() && self.eta >= 0.0) {
            return Err(invalid("deep_sad.eta", format!("{} is not >= 0", self.eta)));
        }
        if !(self.center_eps.is_finite() && self.center_eps >= 0.0) {
            return Err(invalid(
                "deep_sad.center_eps",
                format!("{} is not >= 0", self.center_eps),
            ));
        }
        if let Some(p) = &self.pretrain {
            if p.batch_size < 2 {
                return Err(invalid(
                    "deep_sad.pretrain.batch_size",
                    "contrastive pairs need at least 2 samples per batch".into(),
                ));
            }
            p.optimizer
                .check("deep_sad.pretrain.optimizer.weight_decay")?;
            if !(p.lr.is_finite() && p.lr > 0.0) {
                return Err(invalid(
                    "deep_sad.pretrain.lr",
                    format!("{} is not a positive number", p.lr),
                ));
            }
            if !(p.temperature.is_finite() && p.temperature > 0.0) {
                return Err(invalid(
                    "deep_sad.pretrain.temperature",
                    format!("{} is not a positive number", p.temperature),
                ));
            }
            if !(0.0..=1.0).contains(&p.outlier_exposure) {
                return Err(invalid(
                    "deep_sad.pretrain.outlier_exposure",
                    format!("{} is not in [0, 1]", p.outlier_exposure),
                ));
            }
        }
        Ok(())
    }
}

/// Deep SAD's loss of one sample at squared distance `d`: `d` for normal samples,
/// `eta / d` for labelled anomalies (pushed away from the centre).
pub(crate) fn deep_sad_sample_loss(d: f32, anomaly: bool, eta: f32) -> f32 {
    if anomaly {
        eta / (d + INVERSE_DISTANCE_EPS)
    } else {
        d
    }
}

/// The class-weighted batch loss from distances `[B, 1]`.
pub(crate) fn deep_sad_batch_loss(
    distances: Tensor<2>,
    labels: &[u32],
    rows: &[usize],
    class_weights: &[f32],
    eta: f32,
    device: &Device,
) -> Tensor<1> {
    let batch = rows.len();
    let mut normal = Vec::with_capacity(batch);
    let mut anomalous = Vec::with_capacity(batch);
    let mut weight_sum = 0.0f32;
    for &row in rows {
        let label = labels[row];
        let w = class_weights.get(label as usize).copied().unwrap_or(1.0);
        weight_sum += w;
        let (n, a) = if label == 0 { (w, 0.0) } else { (0.0, w * eta) };
        normal.push(n);
        anomalous.push(a);
    }
    let d = distances.reshape([batch]);
    let normal = Tensor::<1>::from_data(TensorData::new(normal, [batch]), device);
    let anomalous = Tensor::<1>::from_data(TensorData::new(anomalous, [batch]), device);
    let inverse = d.clone().add_scalar(INVERSE_DISTANCE_EPS).recip();
    (d * normal + inverse * anomalous)
        .sum()
        .div_scalar(weight_sum.max(f32::MIN_POSITIVE))
}

/// SimCLR pretraining of `network`'s encoder on the samples `rows` of `x` (normal traffic).
#[allow(clippy::too_many_arguments)]
pub(crate) fn pretrain_contrastive(
    mut network: Network,
    x: &[f32],
    shape: InputShape,
    rows: &[usize],
    opts: &ContrastiveOptions,
    rng: &mut ChaCha8Rng,
    device: &Device,
    progress: &ProgressBar,
) -> Result<Network, ModelError> {
    let sample_len = shape.sample_len();
    let (channels, length) = shape.channels_length();
    // burn's default Adam epsilon, as this loop has always used.
    let mut optimizer = opts.optimizer.init(1e-5);
    let mut order = rows.to_vec();
    let mut views = vec![0.0f32; 2 * opts.batch_size * sample_len];
    let mut scratch = Augmenter::new(sample_len);
    for epoch in 1..=opts.epochs {
        let lr = opts
            .lr_schedule
            .map_or(opts.lr, |schedule| schedule.lr(opts.lr, epoch, opts.epochs));
        order.shuffle(rng);
        let mut loss_sum = 0.0f64;
        let mut batches = 0usize;
        for batch_rows in order.chunks(opts.batch_size) {
            // A pair needs a negative: a 1-sample tail batch is skipped (`drop_last`).
            if batch_rows.len() < 2 {
                continue;
            }
            let b = batch_rows.len();
            let (first, second) = views[..2 * b * sample_len].split_at_mut(b * sample_len);
            for (i, &row) in batch_rows.iter().enumerate() {
                let sample = &x[row * sample_len..(row + 1) * sample_len];
                let out = i * sample_len..(i + 1) * sample_len;
                scratch.two_views(sample, opts, rng, &mut first[out.clone()], &mut second[out]);
            }
            let input = Tensor::<3>::from_data(
                TensorData::new(
                    views[..2 * b * sample_len].to_vec(),
                    [2 * b, channels, length],
                ),
                device,
            );
            let z = network.encode(input).ok_or(ModelError::InvalidOption {
                option: "deep_sad",
                reason: "the family has no embedding to pretrain".into(),
            })?;
            let loss = nt_xent(z, opts.temperature, device);
            let value: f32 = loss.clone().into_scalar();
            if !value.is_finite() {
                return Err(ModelError::Diverged {
                    epoch,
                    batch: batches + 1,
                    loss: value,
                });
            }
            loss_sum += f64::from(value);
            batches += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &network);
            network = optimizer.step(lr, network, grads);
        }
        progress.set_message(format!(
            "contrastive pretraining epoch {epoch}/{}: loss {:.4}",
            opts.epochs,
            loss_sum / batches.max(1) as f64
        ));
        tracing::debug!(
            epoch,
            loss = loss_sum / batches.max(1) as f64,
            "pretraining epoch done"
        );
    }
    Ok(network)
}

/// SimCLR pretraining alone (no centre, no Deep SAD), on every sample of `x` (laid out as
/// `cfg.input`), on the CPU: for benchmarks and for inspecting the encoder. The network is
/// built from `seed` as [`crate::train`] builds it; with a hypersphere head the centre stays
/// at 0, so `predict` gives the squared norm of the embedding.
pub fn pretrain_encoder(
    cfg: &ModelConfig,
    x: &[f32],
    opts: &ContrastiveOptions,
    seed: u64,
) -> Result<Trained, ModelError> {
    use rand::SeedableRng;

    let checked = cfg.check()?;
    DeepSadOptions {
        pretrain: Some(opts.clone()),
        ..DeepSadOptions::default()
    }
    .check()?;
    let n = checked_samples("pretraining data", x, cfg.input, cfg.input)?;
    if n < 2 {
        return Err(ModelError::Empty {
            what: "pretraining data (contrastive pairs need at least 2 samples)",
        });
    }
    let inference_device = Device::flex();
    let device = inference_device.clone().autodiff();
    let rows: Vec<usize> = (0..n).collect();
    let network = pretrain_contrastive(
        Network::new(&checked, &device, seed),
        x,
        cfg.input,
        &rows,
        opts,
        &mut ChaCha8Rng::seed_from_u64(seed),
        &device,
        &ProgressBar::hidden(),
    )?;
    Ok(Trained::from_network(
        checked.into_inner(),
        network.valid(),
        History::default(),
        inference_device,
    ))
}

/// SimCLR's NT-Xent: `z` holds the first views then the second views (`[2N, D]`); each
/// view's positive is the other view of its sample, every other view is a negative.
fn nt_xent(z: Tensor<2>, temperature: f32, device: &Device) -> Tensor<1> {
    let [rows, _] = z.dims();
    let half = rows / 2;
    let norm = z.clone().square().sum_dim(1).add_scalar(1e-12).sqrt();
    let z = z / norm;
    let similarity = z.clone().matmul(z.transpose()).div_scalar(temperature);
    // A view is not its own negative: -inf on the diagonal, as a large finite value.
    let mut mask = vec![0.0f32; rows * rows];
    let mut positives = vec![0.0f32; rows * rows];
    for i in 0..rows {
        mask[i * rows + i] = -1e9;
        positives[i * rows + (i + half) % rows] = 1.0;
    }
    let mask = Tensor::<2>::from_data(TensorData::new(mask, [rows, rows]), device);
    let positives = Tensor::<2>::from_data(TensorData::new(positives, [rows, rows]), device);
    (log_softmax(similarity + mask, 1) * positives)
        .sum()
        .neg()
        .div_scalar(rows as f32)
}

/// The hypersphere centre: the mean embedding of `rows` in inference mode, with coordinates
/// near 0 pushed out to `eps`.
pub(crate) fn hypersphere_center(
    network: &Network,
    x: &[f32],
    shape: InputShape,
    rows: &[usize],
    eps: f32,
    device: &Device,
) -> Result<Vec<f32>, ModelError> {
    let mut sum: Vec<f64> = Vec::new();
    for chunk in rows.chunks(1024) {
        let batch = gather_batch(x, shape, chunk, device);
        let z = network.encode(batch).ok_or(ModelError::InvalidOption {
            option: "deep_sad",
            reason: "the family has no embedding to take a centre from".into(),
        })?;
        let [_, dims] = z.dims();
        let values: Vec<f32> = z.into_data().try_into_vec::<f32>().unwrap_or_default();
        sum.resize(dims, 0.0);
        for row in values.chunks_exact(dims) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += f64::from(v);
            }
        }
    }
    let n = rows.len().max(1) as f64;
    Ok(sum
        .into_iter()
        .map(|s| {
            let c = (s / n) as f32;
            if c.abs() >= eps {
                c
            } else if c < 0.0 {
                -eps
            } else {
                eps
            }
        })
        .collect())
}

/// Sets the centre of `network` (on `device`) from `center`.
pub(crate) fn install_center(network: &mut Network, center: Vec<f32>, device: &Device) {
    let dims = center.len();
    network.set_center(Tensor::<1>::from_data(
        TensorData::new(center, [dims]),
        device,
    ));
}

/// The augmentations of seeds-spec §4.4, with reusable buffers.
struct Augmenter {
    buffer: Vec<f32>,
    permutation: Vec<usize>,
}

impl Augmenter {
    fn new(len: usize) -> Self {
        Self {
            buffer: vec![0.0; len],
            permutation: (0..len).collect(),
        }
    }

    /// Two random views of `sample` (or, with the outlier-exposure chance, of one
    /// distribution-shifted copy of it).
    fn two_views(
        &mut self,
        sample: &[f32],
        opts: &ContrastiveOptions,
        rng: &mut ChaCha8Rng,
        first: &mut [f32],
        second: &mut [f32],
    ) {
        self.buffer.copy_from_slice(sample);
        if rng.random_bool(opts.outlier_exposure) {
            self.shift_distribution(rng);
        }
        for view in [first, second] {
            view_of(&self.buffer, rng, view);
        }
    }

    /// One of the four outlier transforms: noise, reversal, permutation, inversion.
    fn shift_distribution(&mut self, rng: &mut ChaCha8Rng) {
        let (lo, hi) = range(&self.buffer);
        match rng.random_range(0..4) {
            0 => {
                let amplitude = 0.05 * (hi - lo).max(f32::EPSILON);
                for v in &mut self.buffer {
                    *v = (*v + rng.random_range(-amplitude..=amplitude)).clamp(lo, hi);
                }
            }
            1 => self.buffer.reverse(),
            2 => {
                self.permutation.shuffle(rng);
                let copy = self.buffer.clone();
                for (v, &from) in self.buffer.iter_mut().zip(&self.permutation) {
                    *v = copy[from];
                }
            }
            _ => {
                for v in &mut self.buffer {
                    *v = lo + hi - *v;
                }
            }
        }
    }
}

/// One view: temporal scaling, jitter or a 5-segment permutation, then crop and resize.
fn view_of(sample: &[f32], rng: &mut ChaCha8Rng, out: &mut [f32]) {
    let len = sample.len();
    let (lo, hi) = range(sample);
    match rng.random_range(0..3) {
        0 => {
            // Stretch or squeeze in time; past the end of the sample is padding (0).
            let scale = rng.random_range(0.8f32..1.2);
            for (i, v) in out.iter_mut().enumerate() {
                let at = i as f32 / scale;
                *v = if at <= (len - 1) as f32 {
                    interpolate(sample, at)
                } else {
                    0.0
                };
            }
        }
        1 => {
            let sigma = 0.02 * (hi - lo).max(f32::EPSILON);
            for (v, &s) in out.iter_mut().zip(sample) {
                *v = (s + sigma * standard_normal(rng)).clamp(lo, hi);
            }
        }
        _ => {
            let segments = 5.min(len);
            let mut order: [usize; 5] = [0, 1, 2, 3, 4];
            order[..segments].shuffle(rng);
            let mut at = 0;
            for &segment in &order[..segments] {
                let start = segment * len / segments;
                let end = (segment + 1) * len / segments;
                out[at..at + end - start].copy_from_slice(&sample[start..end]);
                at += end - start;
            }
        }
    }
    crop_and_resize(out, rng);
}

/// A random crop of 10-100 % of the sample, stretched back over the whole length by linear
/// interpolation.
fn crop_and_resize(values: &mut [f32], rng: &mut ChaCha8Rng) {
    let len = values.len();
    if len < 2 {
        return;
    }
    let crop = ((rng.random_range(0.1f32..=1.0) * len as f32).round() as usize).clamp(2, len);
    let start = rng.random_range(0..=len - crop);
    let cropped: Vec<f32> = values[start..start + crop].to_vec();
    let step = (crop - 1) as f32 / (len - 1) as f32;
    for (i, v) in values.iter_mut().enumerate() {
        *v = interpolate(&cropped, i as f32 * step);
    }
}

fn interpolate(values: &[f32], at: f32) -> f32 {
    let i = (at.floor() as usize).min(values.len() - 1);
    let next = (i + 1).min(values.len() - 1);
    let t = at - i as f32;
    values[i] * (1.0 - t) + values[next] * t
}

fn range(values: &[f32]) -> (f32, f32) {
    values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// Box-Muller: one N(0, 1) draw.
fn standard_normal(rng: &mut impl Rng) -> f32 {
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random::<f32>();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn crop_and_resize_stretches_the_crop_and_stays_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..50 {
            let mut v: Vec<f32> = (0..60).map(|i| i as f32 / 59.0).collect();
            crop_and_resize(&mut v, &mut rng);
            // A crop of a ramp, stretched, is still a non-decreasing ramp inside [0, 1]:
            // extrapolating past the crop (the published bug) would leave the range.
            assert!(v.iter().all(|x| (0.0..=1.0).contains(x)), "{v:?}");
            assert!(v.windows(2).all(|w| w[1] >= w[0] - 1e-6));
            assert!(v[59] > v[0]);
        }
    }

    #[test]
    fn outlier_transforms_change_the_sample_within_its_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let sample: Vec<f32> = (0..40).map(|i| ((i * 7) % 11) as f32 / 10.0).collect();
        let mut augmenter = Augmenter::new(sample.len());
        for _ in 0..20 {
            augmenter.buffer.copy_from_slice(&sample);
            augmenter.shift_distribution(&mut rng);
            assert_ne!(augmenter.buffer, sample);
            assert!(augmenter.buffer.iter().all(|x| (0.0..=1.0).contains(x)));
        }
    }

    #[test]
    fn nt_xent_is_low_when_views_agree_and_high_when_they_do_not() {
        let device = Device::flex();
        // 4 samples, orthogonal embeddings; the second views equal (or swap) the first.
        let eye: Vec<f32> = (0..16).map(|i| f32::from(i % 5 == 0)).collect();
        let same: Vec<f32> = eye.iter().chain(&eye).copied().collect();
        let mut swapped = eye.clone();
        swapped.extend(eye[4..].iter().chain(&eye[..4]));
        let loss = |v: Vec<f32>| -> f32 {
            nt_xent(
                Tensor::<2>::from_data(TensorData::new(v, [8, 4]), &device),
                0.2,
                &device,
            )
            .into_scalar()
        };
        let agree = loss(same);
        let disagree = loss(swapped);
        assert!(agree < 0.1, "{agree}");
        assert!(disagree > 4.0, "{disagree}");
    }

    #[test]
    fn pretrain_encoder_lowers_the_nt_xent_loss_of_fixed_views() {
        use crate::{ArchConfig, Head, LdpiConfig, ModelKind};

        let len = 32;
        let shape = InputShape::Bytes { length: len };
        let mut cfg = ModelConfig::default_for(ModelKind::Ldpi, shape, 2);
        cfg.head = Head::Hypersphere;
        cfg.arch = ArchConfig::Ldpi(LdpiConfig {
            block_channels: [8, 16, 16, 16],
            head_layers: 1,
            embedding_dim: 16,
            ..LdpiConfig::default()
        });
        // Ramps and sine waves of random slope and phase: views of one sample should pair up.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 128;
        let x: Vec<f32> = (0..n)
            .flat_map(|row| {
                let slope = rng.random_range(0.2f32..1.0);
                let phase = rng.random_range(0.0f32..6.0);
                let wave = row % 2 == 0;
                (0..len)
                    .map(|i| {
                        let t = i as f32 / len as f32;
                        if wave {
                            0.5 + 0.4 * (phase + 8.0 * t).sin()
                        } else {
                            slope * t
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        // Fixed views of the first 32 samples, scored in inference mode.
        let opts = ContrastiveOptions {
            epochs: 30,
            batch_size: 32,
            outlier_exposure: 0.0,
            ..ContrastiveOptions::default()
        };
        let views_of = 32;
        let mut first = vec![0.0f32; views_of * len];
        let mut second = vec![0.0f32; views_of * len];
        let mut augmenter = Augmenter::new(len);
        for row in 0..views_of {
            let out = row * len..(row + 1) * len;
            augmenter.two_views(
                &x[out.clone()],
                &opts,
                &mut rng,
                &mut first[out.clone()],
                &mut second[out],
            );
        }
        let views: Vec<f32> = first.into_iter().chain(second).collect();
        let device = Device::flex();
        let loss_of = |model: &Trained| -> f32 {
            let z = model.encode(&views, shape).unwrap();
            nt_xent(
                Tensor::<2>::from_data(TensorData::new(z.data, [z.rows, z.dims]), &device),
                opts.temperature,
                &device,
            )
            .into_scalar()
        };
        let before = pretrain_encoder(
            &cfg,
            &x,
            &ContrastiveOptions {
                epochs: 0,
                ..opts.clone()
            },
            5,
        )
        .unwrap();
        let after = pretrain_encoder(&cfg, &x, &opts, 5).unwrap();
        assert_ne!(before.to_bytes().unwrap(), after.to_bytes().unwrap());
        let (before, after) = (loss_of(&before), loss_of(&after));
        // Untrained, the views are at chance (ln 63 = 4.14 for 32 pairs).
        assert!(after < before - 0.2, "NT-Xent {before} -> {after}");
        // The design's optimiser: SGD with weight decay, warm-up then cosine annealing.
        let published = ContrastiveOptions {
            optimizer: OptimizerKind::Sgd { weight_decay: 3e-4 },
            lr: 0.1,
            lr_schedule: Some(WarmupCosine { warmup_epochs: 3 }),
            ..opts.clone()
        };
        let sgd = loss_of(&pretrain_encoder(&cfg, &x, &published, 5).unwrap());
        assert!(sgd < before - 0.2, "NT-Xent {before} -> {sgd} with SGD");
        // Ragged input and a single sample are refused.
        assert!(pretrain_encoder(&cfg, &x[..len + 1], &opts, 5).is_err());
        assert!(pretrain_encoder(&cfg, &x[..len], &opts, 5).is_err());
    }

    #[test]
    fn deep_sad_pulls_normal_samples_in_and_pushes_anomalies_out() {
        assert_eq!(deep_sad_sample_loss(0.5, false, 1.0), 0.5);
        assert!(deep_sad_sample_loss(0.5, true, 1.0) > deep_sad_sample_loss(2.0, true, 1.0));
        assert_eq!(deep_sad_sample_loss(2.0, true, 0.0), 0.0);
    }
}
