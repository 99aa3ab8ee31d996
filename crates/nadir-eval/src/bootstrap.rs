//! Percentile bootstrap confidence intervals, seeded so a report is reproducible.
//!
//! Each resample draws `n` rows with replacement; instead of copying rows it
//! counts how often each row was drawn and feeds those counts as weights to the
//! same sweeps and confusion counts the point estimates use (one sort in all).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::curves::RankedScores;
use crate::report::{f1, ratio};
use crate::{check_lengths, EvalError};

/// How many resamples, at which confidence, from which seed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    pub resamples: usize,
    /// Two-sided confidence level, e.g. 0.95.
    pub confidence: f64,
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            resamples: 1000,
            confidence: 0.95,
            seed: 0x006e_6164_6972, // "nadir"
        }
    }
}

impl BootstrapConfig {
    fn validate(&self) -> Result<(), EvalError> {
        if self.resamples < 2 {
            return Err(EvalError::InvalidOption {
                option: "bootstrap resamples",
                value: self.resamples.to_string(),
                reason: "need at least 2",
            });
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(EvalError::InvalidOption {
                option: "bootstrap confidence",
                value: self.confidence.to_string(),
                reason: "must lie strictly between 0 and 1",
            });
        }
        Ok(())
    }
}

/// A point estimate with its bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

impl Interval {
    /// Percentile interval of `samples` (sorted in place) around `estimate`.
    /// With no samples (every resample undefined) the interval collapses to the estimate.
    fn from_samples(estimate: f64, samples: &mut [f64], confidence: f64) -> Self {
        if samples.is_empty() {
            return Self {
                estimate,
                lower: estimate,
                upper: estimate,
            };
        }
        samples.sort_by(f64::total_cmp);
        let alpha = (1.0 - confidence) / 2.0;
        Self {
            estimate,
            lower: quantile_sorted(samples, alpha),
            upper: quantile_sorted(samples, 1.0 - alpha),
        }
    }
}

/// Linear-interpolated quantile of sorted data (numpy's default method).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Intervals of the binary detection metrics.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BinaryIntervals {
    pub accuracy: Interval,
    pub precision: Interval,
    pub recall: Interval,
    pub f1: Interval,
    /// `None` when the data hold one class only.
    pub roc_auc: Option<Interval>,
    pub pr_auc: Option<Interval>,
}

/// Intervals of the multiclass summary metrics.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassificationIntervals {
    pub accuracy: Interval,
    pub macro_f1: Interval,
    pub weighted_f1: Interval,
}

/// Draws one resample as per-row counts into `counts` (reused buffer).
fn draw(rng: &mut ChaCha8Rng, counts: &mut [u32]) {
    counts.fill(0);
    let n = counts.len();
    for _ in 0..n {
        counts[rng.random_range(0..n)] += 1;
    }
}

/// accuracy, precision, recall, F1 of the anomaly class at `threshold`, weighted.
fn binary_threshold_metrics(
    scores: &[f32],
    is_anomaly: &[bool],
    threshold: f64,
    weights: Option<&[u32]>,
) -> [f64; 4] {
    let (mut tp, mut fp, mut tn, mut fn_) = (0.0, 0.0, 0.0, 0.0);
    for (i, (&s, &pos)) in scores.iter().zip(is_anomaly).enumerate() {
        let w = weights.map_or(1.0, |w| f64::from(w[i]));
        match (pos, f64::from(s) >= threshold) {
            (true, true) => tp += w,
            (false, true) => fp += w,
            (false, false) => tn += w,
            (true, false) => fn_ += w,
        }
    }
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    [
        ratio(tp + tn, tp + fp + tn + fn_),
        precision,
        recall,
        f1(precision, recall),
    ]
}

/// Bootstrap intervals of accuracy, precision, recall, F1 (at `threshold`),
/// ROC-AUC and average precision. `ranked` must be built from the same rows.
pub fn bootstrap_binary(
    ranked: &RankedScores,
    scores: &[f32],
    is_anomaly: &[bool],
    threshold: f64,
    config: &BootstrapConfig,
) -> Result<BinaryIntervals, EvalError> {
    config.validate()?;
    check_lengths("bootstrap", is_anomaly.len(), scores.len())?;
    check_lengths("bootstrap ranking", ranked.len(), scores.len())?;
    let point = binary_threshold_metrics(scores, is_anomaly, threshold, None);
    if scores.is_empty() {
        return Err(EvalError::Empty { what: "bootstrap" });
    }
    let auc = ranked.roc_auc().ok();
    let ap = ranked.average_precision().ok();

    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut counts = vec![0u32; scores.len()];
    let mut samples: [Vec<f64>; 6] = Default::default();
    for s in &mut samples {
        s.reserve(config.resamples);
    }
    for _ in 0..config.resamples {
        draw(&mut rng, &mut counts);
        let m = binary_threshold_metrics(scores, is_anomaly, threshold, Some(&counts));
        for (k, v) in m.into_iter().enumerate() {
            samples[k].push(v);
        }
        // A resample with one class only has no AUC: it is left out, not counted as 0.
        if let Some(v) = ranked.roc_auc_weighted(Some(&counts)) {
            samples[4].push(v);
        }
        if let Some(v) = ranked.average_precision_weighted(Some(&counts)) {
            samples[5].push(v);
        }
    }
    let c = config.confidence;
    let [s0, s1, s2, s3, s4, s5] = &mut samples;
    Ok(BinaryIntervals {
        accuracy: Interval::from_samples(point[0], s0, c),
        precision: Interval::from_samples(point[1], s1, c),
        recall: Interval::from_samples(point[2], s2, c),
        f1: Interval::from_samples(point[3], s3, c),
        roc_auc: auc.map(|v| Interval::from_samples(v, s4, c)),
        pr_auc: ap.map(|v| Interval::from_samples(v, s5, c)),
    })
}

/// Bootstrap intervals of the recall at each false-positive budget of `targets` (the
/// threshold meeting the budget is found anew in every resample); `None` for a target when
/// the rows hold one class only.
pub fn bootstrap_recall_at_fpr(
    ranked: &RankedScores,
    targets: &[f64],
    config: &BootstrapConfig,
) -> Result<Vec<Option<Interval>>, EvalError> {
    config.validate()?;
    let points: Vec<Option<f64>> = targets
        .iter()
        .map(|&t| ranked.recall_at_fpr_weighted(t, None).map(|p| p.recall))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut counts = vec![0u32; ranked.len()];
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(config.resamples); targets.len()];
    for _ in 0..config.resamples {
        draw(&mut rng, &mut counts);
        for (k, &t) in targets.iter().enumerate() {
            if let Some(p) = ranked.recall_at_fpr_weighted(t, Some(&counts)) {
                samples[k].push(p.recall);
            }
        }
    }
    Ok(points
        .into_iter()
        .zip(&mut samples)
        .map(|(point, s)| point.map(|v| Interval::from_samples(v, s, config.confidence)))
        .collect())
}

/// accuracy, macro F1, weighted F1 from a weighted confusion matrix buffer.
fn classification_metrics(cm: &[f64], n: usize) -> [f64; 3] {
    let total: f64 = cm.iter().sum();
    let (mut correct, mut macro_f1, mut weighted_f1) = (0.0, 0.0, 0.0);
    for c in 0..n {
        let tp = cm[c * n + c];
        let support: f64 = (0..n).map(|p| cm[c * n + p]).sum();
        let predicted: f64 = (0..n).map(|t| cm[t * n + c]).sum();
        let class_f1 = f1(ratio(tp, predicted), ratio(tp, support));
        correct += tp;
        macro_f1 += class_f1;
        weighted_f1 += class_f1 * support;
    }
    [
        ratio(correct, total),
        ratio(macro_f1, n as f64),
        ratio(weighted_f1, total),
    ]
}

/// Bootstrap intervals of accuracy, macro F1 and weighted F1 of class predictions.
pub fn bootstrap_classification(
    truth: &[u32],
    predicted: &[u32],
    n_classes: usize,
    config: &BootstrapConfig,
) -> Result<ClassificationIntervals, EvalError> {
    config.validate()?;
    // Validates lengths and class indices once.
    crate::ConfusionMatrix::from_labels(truth, predicted, n_classes)?;
    if truth.is_empty() {
        return Err(EvalError::Empty { what: "bootstrap" });
    }
    let mut cm = vec![0.0; n_classes * n_classes];
    let fill = |weights: Option<&[u32]>, cm: &mut [f64]| {
        cm.fill(0.0);
        for (i, (&t, &p)) in truth.iter().zip(predicted).enumerate() {
            cm[t as usize * n_classes + p as usize] += weights.map_or(1.0, |w| f64::from(w[i]));
        }
    };
    fill(None, &mut cm);
    let point = classification_metrics(&cm, n_classes);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut counts = vec![0u32; truth.len()];
    let mut samples: [Vec<f64>; 3] = Default::default();
    for _ in 0..config.resamples {
        draw(&mut rng, &mut counts);
        fill(Some(&counts), &mut cm);
        for (k, v) in classification_metrics(&cm, n_classes)
            .into_iter()
            .enumerate()
        {
            samples[k].push(v);
        }
    }
    let c = config.confidence;
    let [s0, s1, s2] = &mut samples;
    Ok(ClassificationIntervals {
        accuracy: Interval::from_samples(point[0], s0, c),
        macro_f1: Interval::from_samples(point[1], s1, c),
        weighted_f1: Interval::from_samples(point[2], s2, c),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> (Vec<f32>, Vec<bool>) {
        // Anomalies score higher on average, with overlap.
        let scores: Vec<f32> = (0..n).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
        let y: Vec<bool> = scores
            .iter()
            .enumerate()
            .map(|(i, &s)| (s > 0.4) != (i % 7 == 0))
            .collect();
        (scores, y)
    }

    #[test]
    fn interval_brackets_estimate_and_is_reproducible() {
        let (s, y) = toy(400);
        let ranked = RankedScores::new(&s, &y).unwrap();
        let cfg = BootstrapConfig {
            resamples: 300,
            ..Default::default()
        };
        let a = bootstrap_binary(&ranked, &s, &y, 0.5, &cfg).unwrap();
        let b = bootstrap_binary(&ranked, &s, &y, 0.5, &cfg).unwrap();
        assert_eq!(a, b, "same seed, same intervals");
        for i in [
            a.accuracy,
            a.precision,
            a.recall,
            a.f1,
            a.roc_auc.unwrap(),
            a.pr_auc.unwrap(),
        ] {
            assert!(i.lower <= i.estimate && i.estimate <= i.upper, "{i:?}");
            assert!(i.upper - i.lower > 0.0 && i.upper - i.lower < 0.2, "{i:?}");
        }
        let other =
            bootstrap_binary(&ranked, &s, &y, 0.5, &BootstrapConfig { seed: 1, ..cfg }).unwrap();
        assert_ne!(a.accuracy.lower, other.accuracy.lower);
    }

    #[test]
    fn interval_shrinks_with_more_data() {
        let cfg = BootstrapConfig {
            resamples: 200,
            ..Default::default()
        };
        let width = |n| {
            let (s, y) = toy(n);
            let r = RankedScores::new(&s, &y).unwrap();
            let i = bootstrap_binary(&r, &s, &y, 0.5, &cfg).unwrap().accuracy;
            i.upper - i.lower
        };
        assert!(width(4000) < width(200) / 2.0);
    }

    #[test]
    fn perfect_predictions_have_degenerate_interval() {
        let truth = [0, 1, 2, 0, 1, 2];
        let ci = bootstrap_classification(&truth, &truth, 3, &BootstrapConfig::default()).unwrap();
        assert_eq!(ci.accuracy.lower, 1.0);
        assert_eq!(ci.accuracy.upper, 1.0);
    }

    #[test]
    fn bad_config_is_refused() {
        let cfg = BootstrapConfig {
            confidence: 1.5,
            ..Default::default()
        };
        assert!(bootstrap_classification(&[0], &[0], 1, &cfg).is_err());
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        // numpy.percentile([1,2,3,4], 25) == 1.75
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.25), 1.75);
        assert_eq!(quantile_sorted(&[5.0], 0.9), 5.0);
    }
}
