//! Evaluation of scores against labels, and the plots people look at.
//!
//! Everything here works on plain slices (scores, class indices, `is_anomaly`
//! flags) so it needs no deep-learning framework and builds in seconds:
//!
//! - [`ConfusionMatrix`] and [`ClassificationReport`]: accuracy, precision,
//!   recall and F1 per class, macro and weighted.
//! - [`curves`]: ROC and precision-recall curves, ROC-AUC, average precision
//!   (PR-AUC), false-positive rate at a chosen recall.
//! - [`bootstrap`]: seeded percentile bootstrap confidence intervals.
//! - [`evaluate`]: all of the above in one [`Evaluation`], printable as a table
//!   and serialisable as JSON.
//! - [`plot`]: confusion matrix heatmap, ROC, PR, training history and score
//!   histograms as PNG and SVG (`plotters`).
//!
//! Conventions: a score is "higher = more anomalous"; a row is flagged when
//! `score >= threshold`; in binary tasks the positive class is the anomaly.

pub mod bootstrap;
pub mod confusion;
pub mod curves;
mod error;
pub mod evaluate;
#[cfg(feature = "plot")]
pub mod plot;
pub mod report;

pub use bootstrap::{BootstrapConfig, Interval};
pub use confusion::ConfusionMatrix;
pub use curves::{FprOperatingPoint, OperatingPoint, PrCurve, RocCurve};
pub use error::EvalError;
pub use evaluate::{
    evaluate_binary, evaluate_multiclass, AttackTypeEvaluation, DetectionEvaluation, EvalOptions,
    Evaluation, EvaluationSummary,
};
pub use report::{Averaged, ClassMetrics, ClassificationReport};

/// Checks that every score is finite; names the first offending row.
pub(crate) fn check_scores(scores: &[f32]) -> Result<(), EvalError> {
    match scores.iter().position(|s| !s.is_finite()) {
        Some(row) => Err(EvalError::NonFiniteScore {
            row,
            value: scores[row],
        }),
        None => Ok(()),
    }
}

/// Checks that two parallel slices have the same length.
pub(crate) fn check_lengths(
    what: &'static str,
    labels: usize,
    other: usize,
) -> Result<(), EvalError> {
    if labels == other {
        Ok(())
    } else {
        Err(EvalError::LengthMismatch {
            what,
            labels,
            other,
        })
    }
}
