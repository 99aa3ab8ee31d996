use std::path::PathBuf;

/// Everything that can go wrong while evaluating, calibrating or plotting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// Parallel inputs of different lengths.
    #[error("{what}: {labels} labels but {other} values")]
    LengthMismatch {
        what: &'static str,
        labels: usize,
        other: usize,
    },
    /// A score that is NaN or infinite.
    #[error("score at row {row} is {value}, not a finite number")]
    NonFiniteScore { row: usize, value: f32 },
    /// A class index outside `0..n_classes`.
    #[error("row {row}: class index {class} but only {n_classes} classes exist")]
    ClassOutOfRange {
        row: usize,
        class: u32,
        n_classes: usize,
    },
    /// Nothing to evaluate.
    #[error("{what}: no rows to evaluate")]
    Empty { what: &'static str },
    /// A ranking metric that needs both classes.
    #[error(
        "{metric} needs both benign and anomalous rows, but the labels hold only {present} rows"
    )]
    SingleClass {
        metric: &'static str,
        present: &'static str,
    },
    /// A bad option value (resample count, confidence level, recall target).
    #[error("{option} = {value}: {reason}")]
    InvalidOption {
        option: &'static str,
        value: String,
        reason: &'static str,
    },
    /// Drawing a plot failed.
    #[error("plot {path}: {message}")]
    Plot { path: PathBuf, message: String },
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Encoding JSON failed.
    #[error("encoding {path} as JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}
