//! Typed errors of the model crate: every message says what was wrong and where.

use crate::{ComputeDevice, InputShape, ModelKind};

/// Everything that can go wrong while configuring, training, running or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A hyperparameter or shape combination that cannot be built; caught before training.
    #[error("invalid {kind} config: field `{field}`: {reason}")]
    InvalidConfig {
        kind: ModelKind,
        field: &'static str,
        reason: String,
    },
    /// The model family does not accept this input layout.
    #[error("{kind} does not accept {shape} input: {reason}")]
    UnsupportedInput {
        kind: ModelKind,
        shape: InputShape,
        reason: &'static str,
    },
    /// A config text (TOML) that does not parse.
    #[error("model config does not parse: {0}")]
    ConfigSyntax(String),
    /// The data's per-sample shape differs from the one the model was built for.
    #[error("{what}: data shape {got} differs from the model's input shape {expected}")]
    ShapeMismatch {
        what: &'static str,
        expected: InputShape,
        got: InputShape,
    },
    /// The flat feature buffer is not a whole number of samples.
    #[error("{what}: {len} values is not a multiple of the sample size {sample_len} ({shape})")]
    RaggedData {
        what: &'static str,
        len: usize,
        sample_len: usize,
        shape: InputShape,
    },
    /// Labels and samples disagree in count.
    #[error("{what}: {samples} samples but {labels} labels")]
    LabelCount {
        what: &'static str,
        samples: usize,
        labels: usize,
    },
    /// No rows where rows are needed.
    #[error("{what}: no samples")]
    Empty { what: &'static str },
    /// Supervised training needs at least two classes present.
    #[error("{what}: every sample has class {class}; a classifier needs at least two classes")]
    SingleClass { what: &'static str, class: u32 },
    /// A label outside `0..n_classes`.
    #[error("{what}: sample {row} has label {label}, but the model has {n_classes} classes")]
    LabelOutOfRange {
        what: &'static str,
        row: usize,
        label: u32,
        n_classes: usize,
    },
    /// A NaN or infinite feature value (preprocessing should have removed it).
    #[error("{what}: sample {row}, value {index} within the sample is {value} (not finite)")]
    NonFinite {
        what: &'static str,
        row: usize,
        index: usize,
        value: f32,
    },
    /// A bad training option (batch size 0, negative learning rate, wrong class-weight count...).
    #[error("invalid training option `{option}`: {reason}")]
    InvalidOption {
        option: &'static str,
        reason: String,
    },
    /// The loss became NaN or infinite during training.
    #[error("training diverged: loss is {loss} at epoch {epoch}, batch {batch} (try a lower learning rate or gradient clipping)")]
    Diverged {
        epoch: usize,
        batch: usize,
        loss: f32,
    },
    /// Weights bytes that do not load into the configured architecture.
    #[error("weights do not match the {kind} architecture of the config: {reason}")]
    Weights { kind: ModelKind, reason: String },
    /// `--device` names a backend this build does not have (its cargo feature was off).
    #[error("{}", device.not_built_message())]
    DeviceNotBuilt { device: ComputeDevice },
    /// The backend is built in but its device did not start (no GPU, no driver...).
    #[error("--device {device}: the device did not start: {reason}")]
    DeviceUnavailable {
        device: ComputeDevice,
        reason: String,
    },
    /// An operation the model family does not have (e.g. `encode` on a classifier without an encoder).
    #[error("{kind} does not support {operation}")]
    Unsupported {
        kind: ModelKind,
        operation: &'static str,
    },
}
