//! ROC and precision-recall curves, ROC-AUC, average precision, FPR at a recall.
//!
//! All of them come from one sweep over the rows sorted by descending score,
//! emitting one point per distinct score (ties move together, as in
//! scikit-learn). The sweep takes optional per-row weights so that the
//! bootstrap can reuse one sort for every resample.

use serde::{Deserialize, Serialize};

use crate::{check_lengths, check_scores, report::ratio, EvalError};

/// Scores sorted once, descending, with their labels.
#[derive(Clone, Debug)]
pub struct RankedScores {
    /// Scores in descending order.
    scores: Vec<f32>,
    /// Whether the row at the same position is an anomaly.
    positive: Vec<bool>,
    /// Original row index of each sorted position.
    rows: Vec<u32>,
}

/// One point of the sweep: cumulative (weighted) counts at or above `threshold`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SweepPoint {
    pub threshold: f32,
    pub tp: f64,
    pub fp: f64,
}

impl RankedScores {
    /// Validates (equal lengths, finite scores, at least one row) and sorts.
    pub fn new(scores: &[f32], is_anomaly: &[bool]) -> Result<Self, EvalError> {
        check_lengths("ranking", is_anomaly.len(), scores.len())?;
        check_scores(scores)?;
        if scores.is_empty() {
            return Err(EvalError::Empty { what: "ranking" });
        }
        let mut rows: Vec<u32> = (0..scores.len() as u32).collect();
        // Scores are finite (checked), so total_cmp orders them numerically.
        rows.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
        Ok(Self {
            scores: rows.iter().map(|&r| scores[r as usize]).collect(),
            positive: rows.iter().map(|&r| is_anomaly[r as usize]).collect(),
            rows,
        })
    }

    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Total (weighted) positives and negatives.
    pub(crate) fn totals(&self, weights: Option<&[u32]>) -> (f64, f64) {
        let mut pos = 0.0;
        let mut neg = 0.0;
        for i in 0..self.len() {
            let w = self.weight(i, weights);
            if self.positive[i] {
                pos += w;
            } else {
                neg += w;
            }
        }
        (pos, neg)
    }

    fn weight(&self, sorted_position: usize, weights: Option<&[u32]>) -> f64 {
        weights.map_or(1.0, |w| f64::from(w[self.rows[sorted_position] as usize]))
    }

    /// Calls `emit` once per distinct score, from the highest down.
    pub(crate) fn sweep(&self, weights: Option<&[u32]>, mut emit: impl FnMut(SweepPoint)) {
        let (mut tp, mut fp) = (0.0, 0.0);
        for i in 0..self.len() {
            let w = self.weight(i, weights);
            if self.positive[i] {
                tp += w;
            } else {
                fp += w;
            }
            let last_of_tie = i + 1 == self.len() || self.scores[i + 1] != self.scores[i];
            if last_of_tie {
                emit(SweepPoint {
                    threshold: self.scores[i],
                    tp,
                    fp,
                });
            }
        }
    }

    /// ROC-AUC by the trapezoid rule over the sweep; `None` when a class is absent.
    pub(crate) fn roc_auc_weighted(&self, weights: Option<&[u32]>) -> Option<f64> {
        let (pos, neg) = self.totals(weights);
        if pos == 0.0 || neg == 0.0 {
            return None;
        }
        let (mut area, mut prev_tpr, mut prev_fpr) = (0.0, 0.0, 0.0);
        self.sweep(weights, |p| {
            let (tpr, fpr) = (p.tp / pos, p.fp / neg);
            area += (fpr - prev_fpr) * (tpr + prev_tpr) / 2.0;
            (prev_tpr, prev_fpr) = (tpr, fpr);
        });
        Some(area)
    }

    /// Average precision, `sum (R_k - R_{k-1}) P_k` (scikit-learn's definition,
    /// no interpolation); `None` without positives.
    pub(crate) fn average_precision_weighted(&self, weights: Option<&[u32]>) -> Option<f64> {
        let (pos, _) = self.totals(weights);
        if pos == 0.0 {
            return None;
        }
        let (mut ap, mut prev_recall) = (0.0, 0.0);
        self.sweep(weights, |p| {
            let recall = p.tp / pos;
            ap += (recall - prev_recall) * ratio(p.tp, p.tp + p.fp);
            prev_recall = recall;
        });
        Some(ap)
    }

    /// ROC-AUC; needs both classes.
    pub fn roc_auc(&self) -> Result<f64, EvalError> {
        self.roc_auc_weighted(None)
            .ok_or(self.single_class("ROC-AUC"))
    }

    /// Average precision (PR-AUC); needs at least one anomaly.
    pub fn average_precision(&self) -> Result<f64, EvalError> {
        self.average_precision_weighted(None)
            .ok_or(self.single_class("average precision"))
    }

    fn single_class(&self, metric: &'static str) -> EvalError {
        let present = if self.positive.iter().all(|&p| p) {
            "anomalous"
        } else {
            "benign"
        };
        EvalError::SingleClass { metric, present }
    }

    /// The full ROC curve, starting at (0, 0).
    pub fn roc_curve(&self) -> Result<RocCurve, EvalError> {
        let (pos, neg) = self.totals(None);
        if pos == 0.0 || neg == 0.0 {
            return Err(self.single_class("ROC curve"));
        }
        let mut curve = RocCurve {
            fpr: vec![0.0],
            tpr: vec![0.0],
            thresholds: vec![f64::MAX], // above every score (JSON has no inf)
        };
        self.sweep(None, |p| {
            curve.fpr.push(p.fp / neg);
            curve.tpr.push(p.tp / pos);
            curve.thresholds.push(f64::from(p.threshold));
        });
        Ok(curve)
    }

    /// The full precision-recall curve, by decreasing threshold.
    pub fn pr_curve(&self) -> Result<PrCurve, EvalError> {
        let (pos, _) = self.totals(None);
        if pos == 0.0 {
            return Err(self.single_class("precision-recall curve"));
        }
        let mut curve = PrCurve {
            precision: Vec::new(),
            recall: Vec::new(),
            thresholds: Vec::new(),
        };
        self.sweep(None, |p| {
            curve.precision.push(ratio(p.tp, p.tp + p.fp));
            curve.recall.push(p.tp / pos);
            curve.thresholds.push(f64::from(p.threshold));
        });
        Ok(curve)
    }

    /// The highest threshold whose recall reaches `target`, with its false-positive rate.
    pub fn fpr_at_recall(&self, target: f64) -> Result<OperatingPoint, EvalError> {
        if !(target > 0.0 && target <= 1.0) {
            return Err(EvalError::InvalidOption {
                option: "recall target",
                value: target.to_string(),
                reason: "must lie in (0, 1]",
            });
        }
        let (pos, neg) = self.totals(None);
        if pos == 0.0 || neg == 0.0 {
            return Err(self.single_class("false-positive rate at recall"));
        }
        let mut found = None;
        self.sweep(None, |p| {
            // A tiny tolerance so that recall 0.95 of 20 rows (19/20) counts.
            if found.is_none() && p.tp / pos >= target - 1e-12 {
                found = Some(OperatingPoint {
                    target_recall: target,
                    threshold: f64::from(p.threshold),
                    recall: p.tp / pos,
                    fpr: p.fp / neg,
                });
            }
        });
        // The last sweep point has recall 1, so a target in (0, 1] is always reached.
        found.ok_or(self.single_class("false-positive rate at recall"))
    }
}

impl RankedScores {
    /// The lowest threshold whose false-positive rate stays within `target`, with its recall
    /// (recall at a fixed FPR: how much an operator catches for a false-alarm budget).
    pub fn recall_at_fpr(&self, target: f64) -> Result<FprOperatingPoint, EvalError> {
        if !(0.0..=1.0).contains(&target) {
            return Err(EvalError::InvalidOption {
                option: "false-positive-rate target",
                value: target.to_string(),
                reason: "must lie in [0, 1]",
            });
        }
        self.recall_at_fpr_weighted(target, None)
            .ok_or_else(|| self.single_class("recall at false-positive rate"))
    }

    /// [`RankedScores::recall_at_fpr`] with bootstrap weights; `None` when a class is absent.
    pub(crate) fn recall_at_fpr_weighted(
        &self,
        target: f64,
        weights: Option<&[u32]>,
    ) -> Option<FprOperatingPoint> {
        let (pos, neg) = self.totals(weights);
        if pos == 0.0 || neg == 0.0 {
            return None;
        }
        // Nothing flagged (threshold above every score) always meets the budget.
        let mut best = FprOperatingPoint {
            target_fpr: target,
            threshold: f64::INFINITY,
            recall: 0.0,
            fpr: 0.0,
            recall_ci: None,
        };
        self.sweep(weights, |p| {
            if p.fp / neg <= target + 1e-12 {
                best = FprOperatingPoint {
                    target_fpr: target,
                    threshold: f64::from(p.threshold),
                    recall: p.tp / pos,
                    fpr: p.fp / neg,
                    recall_ci: None,
                };
            }
        });
        Some(best)
    }
}

/// Where a false-positive budget is met: the threshold and the recall it buys.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FprOperatingPoint {
    pub target_fpr: f64,
    pub threshold: f64,
    pub recall: f64,
    pub fpr: f64,
    /// Bootstrap interval of the recall (the threshold chosen anew in every resample).
    #[serde(default)]
    pub recall_ci: Option<crate::Interval>,
}

/// Receiver operating characteristic: false-positive rate vs true-positive rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    /// Threshold of each point (`f64::MAX` for the (0, 0) start).
    pub thresholds: Vec<f64>,
}

/// Precision vs recall, one point per distinct threshold, by decreasing threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrCurve {
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub thresholds: Vec<f64>,
}

/// Where a recall target is met: the threshold and the false-positive rate it costs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    pub target_recall: f64,
    pub threshold: f64,
    pub recall: f64,
    pub fpr: f64,
}

/// Keeps at most `max_points` evenly spaced points, always the first and last
/// (curves of 20k points are too heavy for a JSON report and look the same).
fn thin_indices(len: usize, max_points: usize) -> Vec<usize> {
    if len <= max_points || max_points < 2 {
        return (0..len).collect();
    }
    let step = (len - 1) as f64 / (max_points - 1) as f64;
    let mut idx: Vec<usize> = (0..max_points)
        .map(|i| ((i as f64 * step).round() as usize).min(len - 1))
        .collect();
    idx.dedup();
    idx
}

impl RocCurve {
    /// The curve with at most `max_points` points.
    pub fn thinned(&self, max_points: usize) -> Self {
        let idx = thin_indices(self.fpr.len(), max_points);
        Self {
            fpr: idx.iter().map(|&i| self.fpr[i]).collect(),
            tpr: idx.iter().map(|&i| self.tpr[i]).collect(),
            thresholds: idx.iter().map(|&i| self.thresholds[i]).collect(),
        }
    }
}

impl PrCurve {
    /// The curve with at most `max_points` points.
    pub fn thinned(&self, max_points: usize) -> Self {
        let idx = thin_indices(self.recall.len(), max_points);
        Self {
            precision: idx.iter().map(|&i| self.precision[i]).collect(),
            recall: idx.iter().map(|&i| self.recall[i]).collect(),
            thresholds: idx.iter().map(|&i| self.thresholds[i]).collect(),
        }
    }
}

/// ROC-AUC of `scores` against `is_anomaly`.
pub fn roc_auc(scores: &[f32], is_anomaly: &[bool]) -> Result<f64, EvalError> {
    RankedScores::new(scores, is_anomaly)?.roc_auc()
}

/// Average precision (PR-AUC) of `scores` against `is_anomaly`.
pub fn average_precision(scores: &[f32], is_anomaly: &[bool]) -> Result<f64, EvalError> {
    RankedScores::new(scores, is_anomaly)?.average_precision()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// AUC as the Mann-Whitney U statistic: P(score_pos > score_neg) + 0.5 P(tie),
    /// counted over all pairs. Independent of the sweep.
    fn auc_mann_whitney(scores: &[f32], positive: &[bool]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (i, &si) in scores.iter().enumerate() {
            if !positive[i] {
                continue;
            }
            for (j, &sj) in scores.iter().enumerate() {
                if positive[j] {
                    continue;
                }
                pairs += 1.0;
                if si > sj {
                    wins += 1.0;
                } else if si == sj {
                    wins += 0.5;
                }
            }
        }
        wins / pairs
    }

    #[test]
    fn hand_computed_auc_and_ap() {
        // scikit-learn: roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.75,
        // average_precision_score(...) = 0.8333...
        let scores = [0.1, 0.4, 0.35, 0.8];
        let y = [false, false, true, true];
        assert!((roc_auc(&scores, &y).unwrap() - 0.75).abs() < 1e-12);
        assert!((average_precision(&scores, &y).unwrap() - 5.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn perfect_and_reversed_rankings() {
        let y = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &y).unwrap(), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &y).unwrap(), 0.0);
        assert_eq!(average_precision(&[0.1, 0.2, 0.8, 0.9], &y).unwrap(), 1.0);
    }

    #[test]
    fn all_tied_scores_give_half_auc() {
        let y = [false, true, false, true, true];
        assert_eq!(roc_auc(&[0.3; 5], &y).unwrap(), 0.5);
        // One point at recall 1 with precision 3/5.
        assert!((average_precision(&[0.3; 5], &y).unwrap() - 0.6).abs() < 1e-12);
    }

    #[test]
    fn single_class_is_an_error_not_nan() {
        let err = roc_auc(&[0.1, 0.2], &[false, false]).unwrap_err();
        assert!(
            matches!(
                err,
                EvalError::SingleClass {
                    present: "benign",
                    ..
                }
            ),
            "{err}"
        );
        assert!(average_precision(&[0.1, 0.2], &[true, true]).is_ok());
    }

    #[test]
    fn fpr_at_recall_picks_highest_threshold_reaching_it() {
        // sorted: 0.9+ 0.8- 0.7+ 0.6- 0.5+ 0.4-
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        let y = [true, false, true, false, true, false];
        let ranked = RankedScores::new(&scores, &y).unwrap();
        let p = ranked.fpr_at_recall(2.0 / 3.0).unwrap();
        assert_eq!(p.threshold, f64::from(0.7f32));
        assert!((p.fpr - 1.0 / 3.0).abs() < 1e-12);
        let p = ranked.fpr_at_recall(1.0).unwrap();
        assert!((p.fpr - 2.0 / 3.0).abs() < 1e-12);
        assert!(ranked.fpr_at_recall(0.0).is_err());
    }

    #[test]
    fn curves_start_at_origin_and_end_at_one() {
        let ranked = RankedScores::new(&[0.2, 0.9, 0.5, 0.5], &[false, true, true, false]).unwrap();
        let roc = ranked.roc_curve().unwrap();
        assert_eq!((roc.fpr[0], roc.tpr[0]), (0.0, 0.0));
        assert_eq!(
            (*roc.fpr.last().unwrap(), *roc.tpr.last().unwrap()),
            (1.0, 1.0)
        );
        assert_eq!(roc.fpr.len(), 4); // origin + 3 distinct scores
        let pr = ranked.pr_curve().unwrap();
        assert_eq!(pr.recall.last().copied(), Some(1.0));
        assert_eq!(pr.precision[0], 1.0);
        let thin = roc.thinned(2);
        assert_eq!(thin.fpr, vec![0.0, 1.0]);
    }

    proptest! {
        #[test]
        fn trapezoid_auc_equals_mann_whitney(
            rows in proptest::collection::vec((0u8..20, any::<bool>()), 2..120)
        ) {
            // Coarse scores (20 levels) so ties are common.
            let scores: Vec<f32> = rows.iter().map(|r| f32::from(r.0) / 20.0).collect();
            let y: Vec<bool> = rows.iter().map(|r| r.1).collect();
            prop_assume!(y.iter().any(|&p| p) && y.iter().any(|&p| !p));
            let auc = roc_auc(&scores, &y).unwrap();
            prop_assert!((auc - auc_mann_whitney(&scores, &y)).abs() < 1e-9);
        }

        #[test]
        fn weights_equal_repeated_rows(
            rows in proptest::collection::vec((0u8..10, any::<bool>(), 0u32..4), 2..60)
        ) {
            let scores: Vec<f32> = rows.iter().map(|r| f32::from(r.0)).collect();
            let y: Vec<bool> = rows.iter().map(|r| r.1).collect();
            let w: Vec<u32> = rows.iter().map(|r| r.2).collect();
            let (mut rs, mut ry) = (Vec::new(), Vec::new());
            for r in &rows {
                for _ in 0..r.2 { rs.push(f32::from(r.0)); ry.push(r.1); }
            }
            let weighted = RankedScores::new(&scores, &y).unwrap();
            let repeated = RankedScores::new(&rs, &ry);
            let w_auc = weighted.roc_auc_weighted(Some(&w));
            let r_auc = repeated.as_ref().ok().and_then(|r| r.roc_auc_weighted(None));
            prop_assert_eq!(w_auc.is_some(), r_auc.is_some());
            if let (Some(a), Some(b)) = (w_auc, r_auc) { prop_assert!((a - b).abs() < 1e-9); }
            let w_ap = weighted.average_precision_weighted(Some(&w));
            let r_ap = repeated.as_ref().ok().and_then(|r| r.average_precision_weighted(None));
            if let (Some(a), Some(b)) = (w_ap, r_ap) { prop_assert!((a - b).abs() < 1e-9); }
        }
    }
}
