//! One call from scores (or class probabilities) and labels to a full report.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::bootstrap::{
    bootstrap_binary, bootstrap_classification, bootstrap_recall_at_fpr, BinaryIntervals,
    ClassificationIntervals,
};
use crate::curves::{FprOperatingPoint, RankedScores};
use crate::{
    check_lengths, check_scores, BootstrapConfig, ClassificationReport, ConfusionMatrix, EvalError,
    Interval, OperatingPoint, PrCurve, RocCurve,
};

/// What to compute besides the point metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Bootstrap confidence intervals; `None` skips them.
    pub bootstrap: Option<BootstrapConfig>,
    /// Recalls at which to report the false-positive rate.
    pub recall_targets: Vec<f64>,
    /// Most points kept per curve in the report (plots use the full curves).
    pub curve_points: usize,
    /// False-positive budgets at which each attack type's recall is reported.
    #[serde(default = "default_fpr_targets")]
    pub fpr_targets: Vec<f64>,
}

fn default_fpr_targets() -> Vec<f64> {
    vec![0.001, 0.01]
}

/// Recall at each false-positive budget, with bootstrap intervals when asked for; empty
/// when the rows hold one class only.
fn recalls_at_fpr(
    ranked: &RankedScores,
    options: &EvalOptions,
) -> Result<Vec<FprOperatingPoint>, EvalError> {
    let mut points = Vec::with_capacity(options.fpr_targets.len());
    for &target in &options.fpr_targets {
        match ranked.recall_at_fpr(target) {
            Ok(p) => points.push(p),
            Err(EvalError::SingleClass { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
    }
    if let Some(b) = options.bootstrap {
        let intervals = bootstrap_recall_at_fpr(ranked, &options.fpr_targets, &b)?;
        for (p, ci) in points.iter_mut().zip(intervals) {
            p.recall_ci = ci;
        }
    }
    Ok(points)
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            bootstrap: Some(BootstrapConfig::default()),
            recall_targets: vec![0.9, 0.95, 0.99],
            curve_points: 400,
            fpr_targets: default_fpr_targets(),
        }
    }
}

/// The anomaly-vs-benign view: threshold metrics, ranking metrics, curves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectionEvaluation {
    pub threshold: f64,
    pub anomalies: usize,
    pub benign: usize,
    /// Precision, recall and F1 of the anomaly class at the threshold.
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Share of benign rows flagged.
    pub fpr: f64,
    /// `None` when the data hold one class only.
    pub roc_auc: Option<f64>,
    pub pr_auc: Option<f64>,
    pub fpr_at_recall: Vec<OperatingPoint>,
    /// Recall at each false-positive budget of [`EvalOptions::fpr_targets`].
    #[serde(default)]
    pub recall_at_fpr: Vec<FprOperatingPoint>,
    pub intervals: Option<BinaryIntervals>,
    pub roc: Option<RocCurve>,
    pub pr: Option<PrCurve>,
}

/// A full evaluation: the classification report plus, where a benign class
/// exists, the detection view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub rows: usize,
    pub classification: ClassificationReport,
    pub classification_intervals: Option<ClassificationIntervals>,
    pub detection: Option<DetectionEvaluation>,
    /// Each attack type (scenario, attack name) against the same benign rows; empty until
    /// [`Evaluation::with_attack_types`] adds them.
    #[serde(default)]
    pub per_attack_type: Vec<AttackTypeEvaluation>,
}

/// How one attack type is told from the benign rows of an evaluation: a model can catch
/// one scenario and miss another, which the pooled figures hide.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackTypeEvaluation {
    pub name: String,
    pub rows: usize,
    /// Share of its rows flagged at the decision threshold.
    pub recall: f64,
    /// `None` when the evaluation holds no benign rows.
    pub roc_auc: Option<f64>,
    pub roc_auc_ci: Option<Interval>,
    /// Recall at each false-positive budget of [`EvalOptions::fpr_targets`].
    pub recall_at_fpr: Vec<FprOperatingPoint>,
}

/// The few numbers a bundle keeps about how its model did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaluationSummary {
    pub rows: usize,
    pub accuracy: f64,
    pub accuracy_ci: Option<Interval>,
    pub macro_f1: f64,
    pub weighted_f1: f64,
    pub threshold: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub fpr: Option<f64>,
    pub roc_auc: Option<f64>,
    pub pr_auc: Option<f64>,
}

fn detection(
    scores: &[f32],
    is_anomaly: &[bool],
    threshold: f64,
    options: &EvalOptions,
) -> Result<DetectionEvaluation, EvalError> {
    let ranked = RankedScores::new(scores, is_anomaly)?;
    let cm = ConfusionMatrix::from_scores(scores, is_anomaly, threshold)?;
    let report = ClassificationReport::from_confusion(cm.clone(), &[]);
    let anomaly = &report.per_class[1];
    let benign = cm.row_total(0) as usize;
    let roc_auc = ranked.roc_auc().ok();
    let fpr_at_recall = if roc_auc.is_some() {
        options
            .recall_targets
            .iter()
            .map(|&r| ranked.fpr_at_recall(r))
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    Ok(DetectionEvaluation {
        threshold,
        anomalies: cm.row_total(1) as usize,
        benign,
        precision: anomaly.precision,
        recall: anomaly.recall,
        f1: anomaly.f1,
        fpr: crate::report::ratio(cm.get(0, 1) as f64, benign as f64),
        roc_auc,
        pr_auc: ranked.average_precision().ok(),
        fpr_at_recall,
        recall_at_fpr: recalls_at_fpr(&ranked, options)?,
        intervals: options
            .bootstrap
            .map(|b| bootstrap_binary(&ranked, scores, is_anomaly, threshold, &b))
            .transpose()?,
        roc: ranked
            .roc_curve()
            .ok()
            .map(|c| c.thinned(options.curve_points)),
        pr: ranked
            .pr_curve()
            .ok()
            .map(|c| c.thinned(options.curve_points)),
    })
}

/// Evaluates anomaly scores against flags: `class_names` are (benign, anomaly).
pub fn evaluate_binary(
    scores: &[f32],
    is_anomaly: &[bool],
    threshold: f64,
    class_names: [&str; 2],
    options: &EvalOptions,
) -> Result<Evaluation, EvalError> {
    check_lengths("evaluation", is_anomaly.len(), scores.len())?;
    if scores.is_empty() {
        return Err(EvalError::Empty { what: "evaluation" });
    }
    let det = detection(scores, is_anomaly, threshold, options)?;
    let cm = ConfusionMatrix::from_scores(scores, is_anomaly, threshold)?;
    let names: Vec<String> = class_names.iter().map(|s| s.to_string()).collect();
    let truth: Vec<u32> = is_anomaly.iter().map(|&a| u32::from(a)).collect();
    let predicted: Vec<u32> = scores
        .iter()
        .map(|&s| u32::from(f64::from(s) >= threshold))
        .collect();
    Ok(Evaluation {
        rows: scores.len(),
        classification: ClassificationReport::from_confusion(cm, &names),
        classification_intervals: options
            .bootstrap
            .map(|b| bootstrap_classification(&truth, &predicted, 2, &b))
            .transpose()?,
        detection: Some(det),
        per_attack_type: Vec::new(),
    })
}

/// Evaluates class probabilities (`rows x n_classes`, row-major) against class
/// indices. Classes are predicted by argmax; `detection_view`, the benign class and each
/// row's anomaly score (e.g. the log-odds of "not benign"), adds the benign-vs-anomaly view
/// of those scores against `threshold`.
pub fn evaluate_multiclass(
    truth: &[u32],
    probabilities: &[f32],
    class_names: &[String],
    detection_view: Option<(usize, &[f32])>,
    threshold: f64,
    options: &EvalOptions,
) -> Result<Evaluation, EvalError> {
    let n_classes = class_names.len();
    if truth.is_empty() || n_classes == 0 {
        return Err(EvalError::Empty { what: "evaluation" });
    }
    check_lengths(
        "class probabilities",
        truth.len() * n_classes,
        probabilities.len(),
    )?;
    check_scores(probabilities)?;
    let predicted: Vec<u32> = probabilities
        .chunks_exact(n_classes)
        .map(|row| {
            let mut best = 0;
            for (c, &p) in row.iter().enumerate() {
                if p > row[best] {
                    best = c;
                }
            }
            best as u32
        })
        .collect();
    let cm = ConfusionMatrix::from_labels(truth, &predicted, n_classes)?;
    let det = match detection_view {
        Some((b, scores)) if b < n_classes => {
            check_lengths("anomaly scores", truth.len(), scores.len())?;
            let is_anomaly: Vec<bool> = truth.iter().map(|&t| t as usize != b).collect();
            Some(detection(scores, &is_anomaly, threshold, options)?)
        }
        _ => None,
    };
    Ok(Evaluation {
        rows: truth.len(),
        classification: ClassificationReport::from_confusion(cm, class_names),
        classification_intervals: options
            .bootstrap
            .map(|b| bootstrap_classification(truth, &predicted, n_classes, &b))
            .transpose()?,
        detection: det,
        per_attack_type: Vec::new(),
    })
}

impl Evaluation {
    /// Adds the per-attack-type view: `attack_type[i]` names row `i`'s attack type (an index
    /// into `names`) or is `None` for a benign row; `scores` and `threshold` as evaluated.
    pub fn with_attack_types(
        mut self,
        scores: &[f32],
        attack_type: &[Option<u32>],
        names: &[String],
        threshold: f64,
        options: &EvalOptions,
    ) -> Result<Self, EvalError> {
        check_lengths("attack types", attack_type.len(), scores.len())?;
        check_scores(scores)?;
        let benign: Vec<f32> = scores
            .iter()
            .zip(attack_type)
            .filter(|(_, t)| t.is_none())
            .map(|(&s, _)| s)
            .collect();
        let mut types: Vec<u32> = attack_type.iter().flatten().copied().collect();
        types.sort_unstable();
        types.dedup();
        for t in types {
            let mut subset = benign.clone();
            let mut flags = vec![false; benign.len()];
            subset.extend(
                scores
                    .iter()
                    .zip(attack_type)
                    .filter(|(_, a)| **a == Some(t))
                    .map(|(&s, _)| s),
            );
            let rows = subset.len() - benign.len();
            flags.resize(subset.len(), true);
            let ranked = RankedScores::new(&subset, &flags)?;
            let flagged = subset[benign.len()..]
                .iter()
                .filter(|&&s| f64::from(s) >= threshold)
                .count();
            let roc_auc = ranked.roc_auc().ok();
            let roc_auc_ci = match (options.bootstrap, roc_auc) {
                (Some(b), Some(_)) => {
                    bootstrap_binary(&ranked, &subset, &flags, threshold, &b)?.roc_auc
                }
                _ => None,
            };
            let recall_at_fpr = recalls_at_fpr(&ranked, options)?;
            self.per_attack_type.push(AttackTypeEvaluation {
                name: names
                    .get(t as usize)
                    .cloned()
                    .unwrap_or_else(|| format!("type {t}")),
                rows,
                recall: crate::report::ratio(flagged as f64, rows as f64),
                roc_auc,
                roc_auc_ci,
                recall_at_fpr,
            });
        }
        Ok(self)
    }

    /// The numbers a bundle keeps.
    pub fn summary(&self) -> EvaluationSummary {
        let d = self.detection.as_ref();
        EvaluationSummary {
            rows: self.rows,
            accuracy: self.classification.accuracy,
            accuracy_ci: self.classification_intervals.map(|i| i.accuracy),
            macro_f1: self.classification.macro_avg.f1,
            weighted_f1: self.classification.weighted_avg.f1,
            threshold: d.map(|d| d.threshold),
            precision: d.map(|d| d.precision),
            recall: d.map(|d| d.recall),
            f1: d.map(|d| d.f1),
            fpr: d.map(|d| d.fpr),
            roc_auc: d.and_then(|d| d.roc_auc),
            pr_auc: d.and_then(|d| d.pr_auc),
        }
    }

    /// Writes the evaluation as pretty JSON.
    pub fn write_json(&self, path: &Path) -> Result<(), EvalError> {
        let file = std::fs::File::create(path).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::to_writer_pretty(std::io::BufWriter::new(file), self).map_err(|source| {
            EvalError::Json {
                path: path.to_path_buf(),
                source,
            }
        })
    }
}

fn fmt_interval(i: &Interval) -> String {
    format!("{:.4}  [{:.4}, {:.4}]", i.estimate, i.lower, i.upper)
}

fn fmt_recall(p: &FprOperatingPoint) -> String {
    p.recall_ci
        .as_ref()
        .map_or_else(|| format!("{:.4}", p.recall), fmt_interval)
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} rows", self.rows)?;
        write!(f, "{}", self.classification)?;
        if let Some(ci) = &self.classification_intervals {
            writeln!(f)?;
            writeln!(f, "95% bootstrap intervals (estimate [lower, upper]):")?;
            writeln!(f, "  accuracy     {}", fmt_interval(&ci.accuracy))?;
            writeln!(f, "  macro F1     {}", fmt_interval(&ci.macro_f1))?;
            writeln!(f, "  weighted F1  {}", fmt_interval(&ci.weighted_f1))?;
        }
        if let Some(d) = &self.detection {
            writeln!(f)?;
            // Flagged rows = true positives + false positives, from the rates.
            let flagged =
                (d.recall * d.anomalies as f64).round() + (d.fpr * d.benign as f64).round();
            writeln!(
                f,
                "detection (anomaly = positive) on {} anomalous and {} benign rows: {flagged} flagged (score >= {:.6})",
                d.anomalies, d.benign, d.threshold
            )?;
            let opt =
                |v: Option<f64>| v.map_or("n/a (one class only)".into(), |v| format!("{v:.4}"));
            match &d.intervals {
                Some(ci) => {
                    writeln!(f, "  precision    {}", fmt_interval(&ci.precision))?;
                    writeln!(f, "  recall       {}", fmt_interval(&ci.recall))?;
                    writeln!(f, "  F1           {}", fmt_interval(&ci.f1))?;
                    let ci_or = |i: &Option<Interval>| {
                        i.as_ref()
                            .map_or("n/a (one class only)".into(), fmt_interval)
                    };
                    writeln!(f, "  ROC-AUC      {}", ci_or(&ci.roc_auc))?;
                    writeln!(f, "  PR-AUC (AP)  {}", ci_or(&ci.pr_auc))?;
                }
                None => {
                    writeln!(f, "  precision    {:.4}", d.precision)?;
                    writeln!(f, "  recall       {:.4}", d.recall)?;
                    writeln!(f, "  F1           {:.4}", d.f1)?;
                    writeln!(f, "  ROC-AUC      {}", opt(d.roc_auc))?;
                    writeln!(f, "  PR-AUC (AP)  {}", opt(d.pr_auc))?;
                }
            }
            writeln!(f, "  FPR          {:.4}", d.fpr)?;
            for p in &d.fpr_at_recall {
                writeln!(
                    f,
                    "  FPR at recall {:.2}: {:.4} (threshold {:.6})",
                    p.target_recall, p.fpr, p.threshold
                )?;
            }
            for p in &d.recall_at_fpr {
                writeln!(
                    f,
                    "  recall at FPR {}: {} (threshold {:.6})",
                    p.target_fpr,
                    fmt_recall(p),
                    p.threshold
                )?;
            }
        }
        if !self.per_attack_type.is_empty() {
            writeln!(f)?;
            writeln!(f, "per attack type (each against the benign rows):")?;
            let width = self
                .per_attack_type
                .iter()
                .map(|a| a.name.chars().count())
                .max()
                .unwrap_or(0);
            for a in &self.per_attack_type {
                let auc = match (a.roc_auc, &a.roc_auc_ci) {
                    (_, Some(ci)) => fmt_interval(ci),
                    (Some(v), None) => format!("{v:.4}"),
                    (None, None) => "n/a (no benign rows)".into(),
                };
                let at_fpr: String = a
                    .recall_at_fpr
                    .iter()
                    .map(|p| format!(", recall {} at FPR {}", fmt_recall(p), p.target_fpr))
                    .collect();
                writeln!(
                    f,
                    "  {:width$}  {:>6} rows  ROC-AUC {auc}  recall {:.4} at the threshold{at_fpr}",
                    a.name, a.rows, a.recall
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_attack_type_is_ranked_against_the_same_benign_rows() {
        // Benign scores 0.0..0.99; type 0 scores above all of them, type 1 among them.
        let mut scores: Vec<f32> = (0..100).map(|i| i as f32 / 100.0).collect();
        let mut types: Vec<Option<u32>> = vec![None; 100];
        for i in 0..10 {
            scores.push(2.0 + i as f32);
            types.push(Some(0));
            scores.push(0.455 + i as f32 / 100.0);
            types.push(Some(1));
        }
        let flags: Vec<bool> = types.iter().map(Option::is_some).collect();
        let options = EvalOptions {
            bootstrap: Some(BootstrapConfig {
                resamples: 200,
                ..BootstrapConfig::default()
            }),
            ..EvalOptions::default()
        };
        let names = vec!["scan".to_string(), "escape".to_string()];
        let e = evaluate_binary(&scores, &flags, 0.9, ["benign", "attack"], &options)
            .unwrap()
            .with_attack_types(&scores, &types, &names, 0.9, &options)
            .unwrap();
        let [scan, escape] = &e.per_attack_type[..] else {
            panic!("two attack types: {:?}", e.per_attack_type)
        };
        assert_eq!((scan.name.as_str(), scan.rows), ("scan", 10));
        assert_eq!(scan.roc_auc, Some(1.0));
        assert_eq!(scan.recall, 1.0);
        // At 0.1% and 1% FPR the threshold sits at the top benign scores: every scan row, no
        // escape row; the scan's recall is 1 in every resample.
        let targets: Vec<f64> = scan.recall_at_fpr.iter().map(|p| p.target_fpr).collect();
        assert_eq!(targets, [0.001, 0.01]);
        assert_eq!(scan.recall_at_fpr[1].recall, 1.0);
        let ci = scan.recall_at_fpr[1].recall_ci.unwrap();
        assert_eq!((ci.lower, ci.upper), (1.0, 1.0));
        assert_eq!(escape.recall_at_fpr[1].recall, 0.0);
        assert!(escape.recall_at_fpr[1].fpr <= 0.01);
        // Pooled: half the attacks are caught at 1% FPR, with an interval around it.
        let pooled = &e.detection.as_ref().unwrap().recall_at_fpr[1];
        assert_eq!(pooled.recall, 0.5);
        let ci = pooled.recall_ci.unwrap();
        assert!(ci.lower < 0.5 && 0.5 < ci.upper, "{ci:?}");
        // Escape rows sit at benign ranks 46..55 of 100: ROC-AUC about 0.5.
        let auc = escape.roc_auc.unwrap();
        assert!((auc - 0.5).abs() < 0.06, "{auc}");
        let ci = escape.roc_auc_ci.unwrap();
        assert!(ci.lower < auc && auc < ci.upper, "{ci:?}");
        assert_eq!(escape.recall, 0.0);
        assert!(e.to_string().contains("per attack type"));
    }

    #[test]
    fn binary_evaluation_matches_its_parts() {
        let scores = [0.1, 0.4, 0.35, 0.8, 0.6, 0.2];
        let y = [false, false, true, true, true, false];
        let e = evaluate_binary(
            &scores,
            &y,
            0.5,
            ["normal", "attack"],
            &EvalOptions::default(),
        )
        .unwrap();
        // Flagged: 0.8, 0.6 -> tp 2, fp 0, fn 1, tn 3.
        assert!((e.classification.accuracy - 5.0 / 6.0).abs() < 1e-12);
        let d = e.detection.as_ref().unwrap();
        assert_eq!((d.anomalies, d.benign), (3, 3));
        assert_eq!(d.precision, 1.0);
        assert!((d.recall - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(d.fpr, 0.0);
        // Pairs: (0.35 vs 0.1,0.2 win; vs 0.4 lose) + 0.8, 0.6 win all = 8/9.
        assert!((d.roc_auc.unwrap() - 8.0 / 9.0).abs() < 1e-12);
        let table = e.to_string();
        assert!(
            table.contains("attack") && table.contains("ROC-AUC"),
            "{table}"
        );
        let json = serde_json::to_string(&e).unwrap();
        let back: Evaluation = serde_json::from_str(&json).unwrap();
        assert_eq!(back.summary(), e.summary());
    }

    #[test]
    fn single_class_test_data_still_evaluates() {
        let e = evaluate_binary(
            &[0.1, 0.9],
            &[false, false],
            0.5,
            ["benign", "anomaly"],
            &EvalOptions::default(),
        )
        .unwrap();
        let d = e.detection.unwrap();
        assert_eq!(d.roc_auc, None);
        assert_eq!(d.fpr, 0.5);
        assert!(d.fpr_at_recall.is_empty());
    }

    #[test]
    fn multiclass_argmax_and_detection_view() {
        let names: Vec<String> = ["normal", "dos", "probe"].map(String::from).to_vec();
        let probs = [
            0.8, 0.1, 0.1, // normal -> normal
            0.2, 0.7, 0.1, // dos -> dos
            0.3, 0.3, 0.4, // probe -> probe
            0.6, 0.1, 0.3, // probe -> normal
        ];
        // 1 - p(normal): 0.2, 0.8, 0.7, 0.4 -> flagged rows 1, 2.
        let scores = [0.2, 0.8, 0.7, 0.4];
        let e = evaluate_multiclass(
            &[0, 1, 2, 2],
            &probs,
            &names,
            Some((0, &scores)),
            0.5,
            &EvalOptions::default(),
        )
        .unwrap();
        assert_eq!(e.classification.accuracy, 0.75);
        let d = e.detection.unwrap();
        assert!((d.recall - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(d.roc_auc, Some(1.0));
        let err = evaluate_multiclass(
            &[0],
            &[0.5, 0.5],
            &names,
            None,
            0.5,
            &EvalOptions::default(),
        );
        assert!(matches!(err, Err(EvalError::LengthMismatch { .. })));
    }
}
