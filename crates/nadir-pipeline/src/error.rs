//! What can go wrong in a pipeline run, as a type.
//!
//! Per-file capture errors are not here: they end that file only and are kept in
//! [`RunSummary::errors`](crate::RunSummary) so the other files still run.

use nadir_features::output::OutputError;
use nadir_flow::{FlowConfigError, ShardPanicked};

/// An error that stops a pipeline run.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The flow settings (as the feature family adjusts them) are out of range.
    #[error("invalid flow settings")]
    FlowConfig(#[from] FlowConfigError),
    /// The output could not be opened (e.g. a Parquet writer refused the schema).
    #[error("opening the output")]
    OpenOutput(#[source] OutputError),
    /// A row or the end of the table could not be written.
    #[error("writing features")]
    Output(#[from] OutputError),
    /// A flow-table worker died; its flows are lost.
    #[error(transparent)]
    Shard(#[from] ShardPanicked),
    /// A caller's sink failed (its own error type, boxed).
    #[error("writing to the sink")]
    Sink(#[source] Box<dyn std::error::Error + Send + Sync>),
}
