//! One call from scores (or class probabilities) and labels to a full report.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::bootstrap::{
    bootstrap_binary, bootstrap_classification, BinaryIntervals, ClassificationIntervals,
};
use crate::curves::RankedScores;
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
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            bootstrap: Some(BootstrapConfig::default()),
            recall_targets: vec![0.9, 0.95, 0.99],
            curve_points: 400,
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
    })
}

/// Evaluates class probabilities (`rows x n_classes`, row-major) against class
/// indices. Classes are predicted by argmax; when `benign_class` is given, the
/// detection view scores each row `1 - P(benign)` against `threshold`.
pub fn evaluate_multiclass(
    truth: &[u32],
    probabilities: &[f32],
    class_names: &[String],
    benign_class: Option<usize>,
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
    let det = match benign_class {
        Some(b) if b < n_classes => {
            let scores: Vec<f32> = probabilities
                .chunks_exact(n_classes)
                .map(|row| 1.0 - row[b])
                .collect();
            let is_anomaly: Vec<bool> = truth.iter().map(|&t| t as usize != b).collect();
            Some(detection(&scores, &is_anomaly, threshold, options)?)
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
    })
}

impl Evaluation {
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
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let e = evaluate_multiclass(
            &[0, 1, 2, 2],
            &probs,
            &names,
            Some(0),
            0.5,
            &EvalOptions::default(),
        )
        .unwrap();
        assert_eq!(e.classification.accuracy, 0.75);
        let d = e.detection.unwrap();
        // scores 1-p(normal): 0.2, 0.8, 0.7, 0.4 -> flagged rows 1, 2.
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
