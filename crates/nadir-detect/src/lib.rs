//! The detector stage: everything about using a trained model.
//!
//! - [`bundle`]: the `.nadir` file (manifest + weights, checksummed) that training writes and
//!   every later verb reads.
//! - [`threshold`]: decision thresholds, calibrated on validation rows at training time and
//!   resolved (a number or a stored name such as `p99`) at detection time.
//! - [`scorer`]: the fitted preprocessing applied, batched scoring, verdicts ([`Detector`]).
//! - [`explain`]: why a flow was flagged (integrated gradients, reconstruction errors).
//! - [`flows`]: the bundle's feature columns computed from finished flows, so a capture is
//!   scored on exactly the columns the model was trained on.
//! - [`alert`]: the per-flow record and its JSON lines / CSV / Parquet writers.
//! - [`detect`]: the streaming run over captures or feature tables, with its summary;
//!   [`table`] reads the identity columns of a feature table.
//!
//! `train`, `evaluate`, `detect`, `explain` and (later) `watch` all go through here.

pub mod alert;
pub mod bundle;
pub mod detect;
pub mod explain;
pub mod flows;
#[cfg(feature = "live")]
pub mod metrics;
#[cfg(feature = "live")]
mod queue;
pub mod scorer;
pub mod table;
pub mod threshold;
#[cfg(feature = "live")]
pub mod watch;

pub use alert::{Alert, AlertWriter, Verdict};
pub use bundle::{Bundle, BundleError};
pub use detect::{detect_captures, detect_table, DetectOptions, DetectSummary, ExplainPolicy};
pub use scorer::{Detector, Scored};
pub use threshold::{
    AppliedThreshold, BenignThresholds, CalibratedThreshold, ThresholdChoice, ThresholdError,
    ThresholdRule, Thresholds,
};

/// What can go wrong using a bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetectError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
    #[error(transparent)]
    Model(#[from] nadir_model::ModelError),
    #[error(transparent)]
    Dataset(#[from] nadir_dataset::DatasetError),
    #[error(transparent)]
    Pipeline(#[from] nadir_pipeline::PipelineError),
    /// The bundle's features cannot be computed from this input.
    #[error("{0}")]
    Features(String),
    /// Input the detector cannot use (shape, classes).
    #[error("{0}")]
    Input(String),
    /// The reader of the alerts went away (a closed pipe): stop quietly.
    #[error("{path} was closed by its reader")]
    ClosedOutput {
        path: String,
        source: std::io::Error,
    },
    /// Writing alerts failed.
    #[error("writing alerts to {path}: {reason}")]
    Output { path: String, reason: String },
}
