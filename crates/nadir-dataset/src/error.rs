//! Errors of the data path. Each names the file and, where there is one, the line and column.

use std::path::PathBuf;

use crate::schema::SchemaMismatch;

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a CSV file: {reason}")]
    NotCsv { path: PathBuf, reason: String },
    #[error("{path}: no data rows (0-row file)")]
    NoRows { path: PathBuf },
    #[error("{path}: line {line}: {found} fields, the header has {expected}")]
    FieldCount {
        path: PathBuf,
        line: u64,
        expected: usize,
        found: usize,
    },
    #[error("{path}: line {line}: {message}")]
    Malformed {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: label column `{column}` is absent (columns: {available}); a table without labels is read with --unlabelled")]
    LabelColumnAbsent {
        path: PathBuf,
        column: String,
        available: String,
    },
    #[error("{path}: line {line}, column `{column}`: unknown label `{value}` ({known})")]
    UnknownLabel {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
        known: String,
    },
    #[error("{path}: line {line}, column `{column}`: cannot parse timestamp `{value}`")]
    BadTimestamp {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
    },
    #[error("{path}: column `{column}` is not usable: {message}")]
    BadColumn {
        path: PathBuf,
        column: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Parquet { path: PathBuf, message: String },
    /// The table's declared column roles (Parquet metadata or `.roles.json` sidecar) are
    /// unreadable; guessing from names instead could let a time column through.
    #[error("{path}: the declared column roles cannot be read ({message}); fix or delete the declaration to fall back to the name rules")]
    DeclaredRoles { path: PathBuf, message: String },
    #[error("{path}: {mismatch}")]
    SchemaMismatchInFile {
        path: PathBuf,
        mismatch: SchemaMismatch,
    },
    #[error(transparent)]
    Schema(#[from] SchemaMismatch),
    #[error("shape: {0}")]
    Shape(String),
    #[error("invalid pipeline or split spec: {0}")]
    InvalidSpec(String),
    #[error("cannot fit {step}: {message}")]
    Fit { step: &'static str, message: String },
}

impl DatasetError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> DatasetError {
        DatasetError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
