//! Confusion matrix: rows are the true class, columns the predicted class.

use serde::{Deserialize, Serialize};

use crate::{check_lengths, EvalError};

/// Counts of (true class, predicted class) pairs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    n_classes: usize,
    /// Row-major `n_classes x n_classes`; row = truth, column = prediction.
    counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// An all-zero matrix for `n_classes` classes.
    pub fn new(n_classes: usize) -> Self {
        Self {
            n_classes,
            counts: vec![0; n_classes * n_classes],
        }
    }

    /// Builds the matrix from parallel class-index slices, checking every index.
    pub fn from_labels(
        truth: &[u32],
        predicted: &[u32],
        n_classes: usize,
    ) -> Result<Self, EvalError> {
        check_lengths("confusion matrix", truth.len(), predicted.len())?;
        let mut matrix = Self::new(n_classes);
        for (row, (&t, &p)) in truth.iter().zip(predicted).enumerate() {
            for class in [t, p] {
                if class as usize >= n_classes {
                    return Err(EvalError::ClassOutOfRange {
                        row,
                        class,
                        n_classes,
                    });
                }
            }
            matrix.counts[t as usize * n_classes + p as usize] += 1;
        }
        Ok(matrix)
    }

    /// A binary matrix (class 0 = benign, 1 = anomaly) from flags and scores.
    pub fn from_scores(
        scores: &[f32],
        is_anomaly: &[bool],
        threshold: f64,
    ) -> Result<Self, EvalError> {
        check_lengths("confusion matrix", is_anomaly.len(), scores.len())?;
        crate::check_scores(scores)?;
        let mut matrix = Self::new(2);
        for (&score, &positive) in scores.iter().zip(is_anomaly) {
            let flagged = f64::from(score) >= threshold;
            matrix.counts[usize::from(positive) * 2 + usize::from(flagged)] += 1;
        }
        Ok(matrix)
    }

    /// Builds a binary matrix straight from the four counts.
    pub fn from_binary_counts(tn: u64, fp: u64, fn_: u64, tp: u64) -> Self {
        Self {
            n_classes: 2,
            counts: vec![tn, fp, fn_, tp],
        }
    }

    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Rows whose true class is `truth` and predicted class is `predicted`.
    pub fn get(&self, truth: usize, predicted: usize) -> u64 {
        self.counts[truth * self.n_classes + predicted]
    }

    /// Rows whose true class is `class` (the class's support).
    pub fn row_total(&self, class: usize) -> u64 {
        (0..self.n_classes).map(|p| self.get(class, p)).sum()
    }

    /// Rows predicted as `class`.
    pub fn column_total(&self, class: usize) -> u64 {
        (0..self.n_classes).map(|t| self.get(t, class)).sum()
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Rows on the diagonal.
    pub fn correct(&self) -> u64 {
        (0..self.n_classes).map(|c| self.get(c, c)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_truth_row_prediction_column() {
        let m = ConfusionMatrix::from_labels(&[0, 0, 1, 2, 2, 2], &[0, 1, 1, 2, 0, 2], 3).unwrap();
        assert_eq!(m.get(0, 0), 1);
        assert_eq!(m.get(0, 1), 1);
        assert_eq!(m.get(2, 0), 1);
        assert_eq!(m.get(2, 2), 2);
        assert_eq!(m.row_total(2), 3);
        assert_eq!(m.column_total(0), 2);
        assert_eq!(m.correct(), 4);
        assert_eq!(m.total(), 6);
    }

    #[test]
    fn class_out_of_range_names_the_row() {
        let err = ConfusionMatrix::from_labels(&[0, 1, 3], &[0, 1, 1], 2).unwrap_err();
        assert!(
            matches!(
                err,
                EvalError::ClassOutOfRange {
                    row: 2,
                    class: 3,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn scores_at_threshold_are_flagged() {
        let m =
            ConfusionMatrix::from_scores(&[0.1, 0.5, 0.7, 0.2], &[false, false, true, true], 0.5)
                .unwrap();
        assert_eq!(m, ConfusionMatrix::from_binary_counts(1, 1, 1, 1));
    }

    #[test]
    fn nan_score_is_refused() {
        let err = ConfusionMatrix::from_scores(&[0.1, f32::NAN], &[false, true], 0.5).unwrap_err();
        assert!(matches!(err, EvalError::NonFiniteScore { row: 1, .. }));
    }
}
