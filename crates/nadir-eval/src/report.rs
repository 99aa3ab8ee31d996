//! Accuracy, precision, recall and F1 per class, macro- and support-weighted.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ConfusionMatrix;

/// Precision, recall and F1 of one class (one-vs-rest), with its support.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub name: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Rows whose true class is this one.
    pub support: u64,
}

/// Precision, recall and F1 averaged over classes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Averaged {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// The classification report of one confusion matrix.
///
/// Undefined ratios (no row predicted as a class, or no row of it) count as 0,
/// as scikit-learn's `zero_division=0` does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    pub accuracy: f64,
    pub per_class: Vec<ClassMetrics>,
    /// Unweighted mean over classes.
    pub macro_avg: Averaged,
    /// Mean over classes weighted by support.
    pub weighted_avg: Averaged,
    pub confusion: ConfusionMatrix,
}

/// `numerator / denominator`, or 0 when the denominator is 0.
pub fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

/// Harmonic mean of precision and recall, 0 when both are 0.
pub(crate) fn f1(precision: f64, recall: f64) -> f64 {
    ratio(2.0 * precision * recall, precision + recall)
}

impl ClassificationReport {
    /// Computes the report; `class_names[i]` names class `i` (missing names become `class i`).
    pub fn from_confusion(confusion: ConfusionMatrix, class_names: &[String]) -> Self {
        let n = confusion.n_classes();
        let total = confusion.total() as f64;
        let per_class: Vec<ClassMetrics> = (0..n)
            .map(|c| {
                let tp = confusion.get(c, c) as f64;
                let precision = ratio(tp, confusion.column_total(c) as f64);
                let recall = ratio(tp, confusion.row_total(c) as f64);
                ClassMetrics {
                    name: class_names
                        .get(c)
                        .cloned()
                        .unwrap_or_else(|| format!("class {c}")),
                    precision,
                    recall,
                    f1: f1(precision, recall),
                    support: confusion.row_total(c),
                }
            })
            .collect();
        let mean = |f: fn(&ClassMetrics) -> f64| ratio(per_class.iter().map(f).sum(), n as f64);
        let weighted = |f: fn(&ClassMetrics) -> f64| {
            ratio(
                per_class.iter().map(|m| f(m) * m.support as f64).sum(),
                total,
            )
        };
        Self {
            accuracy: ratio(confusion.correct() as f64, total),
            macro_avg: Averaged {
                precision: mean(|m| m.precision),
                recall: mean(|m| m.recall),
                f1: mean(|m| m.f1),
            },
            weighted_avg: Averaged {
                precision: weighted(|m| m.precision),
                recall: weighted(|m| m.recall),
                f1: weighted(|m| m.f1),
            },
            per_class,
            confusion,
        }
    }
}

impl fmt::Display for ClassificationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .per_class
            .iter()
            .map(|m| m.name.len())
            .chain([12])
            .max()
            .unwrap_or(12);
        writeln!(
            f,
            "{:>width$}  {:>9}  {:>9}  {:>9}  {:>9}",
            "", "precision", "recall", "f1", "support"
        )?;
        for m in &self.per_class {
            writeln!(
                f,
                "{:>width$}  {:>9.4}  {:>9.4}  {:>9.4}  {:>9}",
                m.name, m.precision, m.recall, m.f1, m.support
            )?;
        }
        let total = self.confusion.total();
        writeln!(f)?;
        writeln!(
            f,
            "{:>width$}  {:>9}  {:>9}  {:>9.4}  {:>9}",
            "accuracy", "", "", self.accuracy, total
        )?;
        for (name, avg) in [
            ("macro avg", self.macro_avg),
            ("weighted avg", self.weighted_avg),
        ] {
            writeln!(
                f,
                "{:>width$}  {:>9.4}  {:>9.4}  {:>9.4}  {:>9}",
                name, avg.precision, avg.recall, avg.f1, total
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "confusion matrix (rows = true class, columns = predicted):"
        )?;
        let n = self.confusion.n_classes();
        write!(f, "{:>width$}", "")?;
        for m in &self.per_class {
            write!(f, "  {:>10}", truncate(&m.name, 10))?;
        }
        writeln!(f)?;
        for t in 0..n {
            write!(f, "{:>width$}", self.per_class[t].name)?;
            for p in 0..n {
                write!(f, "  {:>10}", self.confusion.get(t, p))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    /// Hand-computed three-class case.
    /// truth     = [0,0,0,0,1,1,1,2,2,2]
    /// predicted = [0,0,1,2,1,1,0,2,2,1]
    /// class 0: tp 2, predicted 3, support 4 -> P 2/3, R 1/2, F1 4/7
    /// class 1: tp 2, predicted 4, support 3 -> P 1/2, R 2/3, F1 4/7
    /// class 2: tp 2, predicted 3, support 3 -> P 2/3, R 2/3, F1 2/3
    #[test]
    fn three_class_report_matches_hand_computation() {
        let cm = ConfusionMatrix::from_labels(
            &[0, 0, 0, 0, 1, 1, 1, 2, 2, 2],
            &[0, 0, 1, 2, 1, 1, 0, 2, 2, 1],
            3,
        )
        .unwrap();
        let r = ClassificationReport::from_confusion(cm, &names(&["a", "b", "c"]));
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} != {b}");
        close(r.accuracy, 0.6);
        close(r.per_class[0].precision, 2.0 / 3.0);
        close(r.per_class[0].recall, 0.5);
        close(r.per_class[0].f1, 4.0 / 7.0);
        close(r.per_class[1].precision, 0.5);
        close(r.per_class[1].recall, 2.0 / 3.0);
        close(r.per_class[2].f1, 2.0 / 3.0);
        close(r.macro_avg.f1, (4.0 / 7.0 + 4.0 / 7.0 + 2.0 / 3.0) / 3.0);
        close(
            r.weighted_avg.f1,
            (4.0 * 4.0 / 7.0 + 3.0 * 4.0 / 7.0 + 3.0 * 2.0 / 3.0) / 10.0,
        );
        close(r.weighted_avg.recall, r.accuracy); // weighted recall is always accuracy
        let table = r.to_string();
        assert!(
            table.contains("macro avg") && table.contains("0.6000"),
            "{table}"
        );
    }

    #[test]
    fn class_never_predicted_has_zero_precision_not_nan() {
        let cm = ConfusionMatrix::from_labels(&[0, 1, 1], &[0, 0, 0], 2).unwrap();
        let r = ClassificationReport::from_confusion(cm, &names(&["benign", "attack"]));
        assert_eq!(r.per_class[1].precision, 0.0);
        assert_eq!(r.per_class[1].f1, 0.0);
        assert!(r.macro_avg.f1.is_finite());
    }
}
