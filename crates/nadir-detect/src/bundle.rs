//! The `.nadir` bundle: one file with everything detection needs to score data
//! exactly as training did.
//!
//! # Container (format version 3)
//!
//! ```text
//! offset  size  field
//!      0     8  magic  89 4E 41 44 49 52 0D 0A   ("\x89NADIR\r\n")
//!      8     4  format version, u32 little-endian
//!     12     8  manifest length M, u64 little-endian
//!     20     8  weights length W, u64 little-endian
//!     28    32  SHA-256 over bytes 0..28, then the manifest, then the weights
//!     60     M  manifest: UTF-8 JSON (see [`Manifest`])
//!   60+M     W  weights: burn module record bytes (`Trained::to_bytes`)
//! ```
//!
//! Why this and not a zip/tar or safetensors: the manifest stays plain JSON that
//! `tail -c +61 model.nadir | head -c M | jq` can read with no nadir at hand; the
//! header is fixed-size so a reader knows the exact file length before reading
//! further (truncation and trailing junk are caught by arithmetic, not guessed);
//! one SHA-256 over header + manifest + weights makes any changed byte fatal; and
//! it needs no archive crate. The magic starts with a non-ASCII byte and holds
//! CR LF, as PNG's does, so text-mode transfers that mangle bytes are detected.
//! The weights stay in burn's own record format, the format burn loads fastest
//! and checks against the architecture.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use nadir_dataset::{FeatureSchema, LabelMap, LoadOptions, Pipeline, SchemaMismatch, SplitSpec};
use nadir_eval::EvaluationSummary;
use nadir_model::{Head, History, ModelConfig, ModelError, ModelKind, TrainOptions, Trained};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::threshold::Thresholds;

/// First eight bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"\x89NADIR\r\n";
/// The container and manifest layout this nadir writes and reads.
/// Version 2 added the benign-score thresholds by name and the explanation baseline; version 3
/// scores classifier heads by the log-odds of attack (version 2: P(attack), so their thresholds
/// are in other units).
pub const FORMAT_VERSION: u32 = 3;
/// Version 2 bundles of the normal-only heads (reconstruction error, distance), whose scores
/// version 3 did not change, still read.
const SAME_SCORES_SINCE: u32 = 2;
/// Bytes before the manifest.
pub const HEADER_LEN: usize = 60;
/// Longest manifest accepted (a guard against a corrupt length asking for gigabytes).
pub const MAX_MANIFEST_LEN: u64 = 256 << 20;
/// Name of the weights encoding recorded in the manifest.
pub const WEIGHTS_FORMAT: &str = "burn-module-record";

/// What can go wrong reading, writing or using a bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Any of the errors below, with the file it came from.
    // The causes are part of these messages, so they are not chained as `source` too
    // (a chained cause is printed again by `{:#}`).
    #[error("bundle {path}: {source}")]
    File {
        path: PathBuf,
        source: Box<BundleError>,
    },
    #[error("cannot {action}: {source}")]
    Io {
        action: &'static str,
        source: std::io::Error,
    },
    #[error("not a nadir bundle: the file starts with {found} instead of the bundle magic {}", hex(&MAGIC))]
    NotABundle { found: String },
    #[error("bundle format version {found} is older than this nadir's format {supported}: train the model again with this nadir (`nadir train`)")]
    OlderFormat { found: u32, supported: u32 },
    #[error(
        "bundle format version {found} is newer than this nadir reads ({supported}): upgrade nadir"
    )]
    NewerFormat { found: u32, supported: u32 },
    #[error("truncated: the header promises {expected} bytes but the file holds {actual}")]
    Truncated { expected: u64, actual: u64 },
    #[error("{extra} unexpected bytes after the end of the bundle (at offset {offset})")]
    TrailingBytes { offset: u64, extra: u64 },
    #[error("manifest length {length} at offset 12 exceeds the {MAX_MANIFEST_LEN}-byte limit: the header is corrupt")]
    ManifestTooLarge { length: u64 },
    #[error("checksum mismatch: stored SHA-256 {stored}, content hashes to {computed}; the file was altered or damaged")]
    Checksum { stored: String, computed: String },
    #[error("manifest (JSON at offset {HEADER_LEN}) line {line}, column {column}: {reason}")]
    Manifest {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("inconsistent bundle: {0}")]
    Inconsistent(String),
    #[error("data does not match the model's feature schema: {0}")]
    Schema(#[from] SchemaMismatch),
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl BundleError {
    fn at(self, path: &Path) -> BundleError {
        BundleError::File {
            path: path.to_path_buf(),
            source: Box::new(self),
        }
    }

    /// The error without its file wrapper (for matching in callers and tests).
    pub fn root(&self) -> &BundleError {
        match self {
            BundleError::File { source, .. } => source.root(),
            other => other,
        }
    }
}

/// The container around a serialised manifest and the weights (layout in the module docs).
fn container(version: u32, manifest: &[u8], weights: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + manifest.len() + weights.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(manifest.len() as u64).to_le_bytes());
    out.extend_from_slice(&(weights.len() as u64).to_le_bytes());
    let digest = Sha256::new()
        .chain_update(&out[..28])
        .chain_update(manifest)
        .chain_update(weights)
        .finalize();
    out.extend_from_slice(&digest);
    out.extend_from_slice(manifest);
    out.extend_from_slice(weights);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Identity of the data a model was trained on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// SHA-256 (hex) of the training matrix and labels, see [`fingerprint_training_data`].
    pub sha256: String,
    pub rows: usize,
    pub cols: usize,
    /// Files the data came from, as given.
    pub sources: Vec<String>,
}

/// Everything about a model except its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// The nadir that wrote the bundle.
    pub nadir_version: String,
    /// RFC 3339 UTC.
    pub created: String,
    pub model_kind: ModelKind,
    /// Family, hyperparameters, input shape and head.
    pub model: ModelConfig,
    pub num_params: usize,
    pub train_options: TrainOptions,
    /// Feature columns the data must have, in order (the pipeline's input).
    pub schema: FeatureSchema,
    pub schema_fingerprint: String,
    /// How the data were read (label mode, feature policy); detection reads new data the same way.
    pub load_options: LoadOptions,
    /// Fitted preprocessing (training split only).
    pub pipeline: Pipeline,
    pub labels: LabelMap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitSpec>,
    pub thresholds: Thresholds,
    /// The reference input of integrated-gradients explanations: per model input, the median
    /// of the preprocessed training rows.
    pub explain_baseline: Vec<f32>,
    /// Metrics on the validation split (where the threshold was chosen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<EvaluationSummary>,
    /// Metrics on the held-out test data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<EvaluationSummary>,
    pub training_data: DataFingerprint,
    pub history: History,
    pub weights_format: String,
    pub weights_sha256: String,
}

/// A manifest and the weights it describes.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    pub manifest: Manifest,
    pub weights: Vec<u8>,
}

/// What a caller supplies to build a bundle; the rest (versions, time, hashes) is filled in.
#[derive(Debug, Clone)]
pub struct BundleParts {
    pub model: ModelConfig,
    pub num_params: usize,
    pub train_options: TrainOptions,
    pub load_options: LoadOptions,
    pub pipeline: Pipeline,
    pub labels: LabelMap,
    pub split: Option<SplitSpec>,
    pub thresholds: Thresholds,
    pub explain_baseline: Vec<f32>,
    pub validation: Option<EvaluationSummary>,
    pub evaluation: Option<EvaluationSummary>,
    pub training_data: DataFingerprint,
    pub history: History,
    pub weights: Vec<u8>,
}

/// SHA-256 (hex) of a training matrix (`rows x cols`, row-major f32) and its labels,
/// over the little-endian bytes of rows, cols, every value and every label.
pub fn fingerprint_training_data(x: &[f32], rows: usize, cols: usize, y: &[u32]) -> String {
    let mut hasher = Sha256::new();
    hasher.update((rows as u64).to_le_bytes());
    hasher.update((cols as u64).to_le_bytes());
    // Values go through a stack buffer: one hasher call per 4 KiB, not per value.
    let mut buf = [0u8; 4096];
    for chunk in x.chunks(buf.len() / 4) {
        for (slot, v) in buf.chunks_exact_mut(4).zip(chunk) {
            slot.copy_from_slice(&v.to_le_bytes());
        }
        hasher.update(&buf[..chunk.len() * 4]);
    }
    for chunk in y.chunks(buf.len() / 4) {
        for (slot, v) in buf.chunks_exact_mut(4).zip(chunk) {
            slot.copy_from_slice(&v.to_le_bytes());
        }
        hasher.update(&buf[..chunk.len() * 4]);
    }
    hex(&hasher.finalize())
}

/// Current time as RFC 3339 UTC, whole seconds (`2026-01-02T03:04:05Z`).
fn now_rfc3339() -> String {
    format!("{:.0}", jiff::Timestamp::now())
}

impl Bundle {
    /// Assembles a bundle, filling in versions, creation time and hashes, and
    /// checking that the parts fit together.
    pub fn new(parts: BundleParts) -> Result<Bundle, BundleError> {
        let schema = parts.pipeline.input_schema().clone();
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            nadir_version: env!("CARGO_PKG_VERSION").to_string(),
            created: now_rfc3339(),
            model_kind: parts.model.kind(),
            model: parts.model,
            num_params: parts.num_params,
            train_options: parts.train_options,
            schema_fingerprint: schema.fingerprint(),
            schema,
            load_options: LoadOptions {
                // The schema and labels live in their own fields.
                schema_hint: None,
                label_map: None,
                ..parts.load_options
            },
            pipeline: parts.pipeline,
            labels: parts.labels,
            split: parts.split,
            thresholds: parts.thresholds,
            explain_baseline: parts.explain_baseline,
            validation: parts.validation,
            evaluation: parts.evaluation,
            training_data: parts.training_data,
            history: parts.history,
            weights_format: WEIGHTS_FORMAT.to_string(),
            weights_sha256: hex(&Sha256::digest(&parts.weights)),
        };
        let bundle = Bundle {
            manifest,
            weights: parts.weights,
        };
        bundle.check_consistent()?;
        Ok(bundle)
    }

    /// The parts must agree: pipeline output = model input, schema = pipeline input,
    /// label count = model classes, weights hash = recorded hash.
    fn check_consistent(&self) -> Result<(), BundleError> {
        let m = &self.manifest;
        let bad = |msg: String| Err(BundleError::Inconsistent(msg));
        if m.format_version != FORMAT_VERSION {
            return bad(format!(
                "the manifest says format {} inside a format {FORMAT_VERSION} container",
                m.format_version
            ));
        }
        if m.model_kind != m.model.kind() {
            return bad(format!(
                "model_kind {} but the config describes {}",
                m.model_kind,
                m.model.kind()
            ));
        }
        if &m.schema != m.pipeline.input_schema() {
            return bad("the schema differs from the pipeline's input schema".into());
        }
        if m.schema.fingerprint() != m.schema_fingerprint {
            return bad("the schema fingerprint does not match the schema".into());
        }
        // Each preprocessed row is one sample (tabular, a 1-channel sequence, or bytes).
        if m.model.input.sample_len() != m.pipeline.output_dim() {
            return bad(format!(
                "the pipeline outputs {} values per row but the model's input {} takes {}",
                m.pipeline.output_dim(),
                m.model.input,
                m.model.input.sample_len()
            ));
        }
        if m.model.kind().is_classifier() && m.labels.n_classes() != m.model.n_classes {
            return bad(format!(
                "{} label classes but the model has {}",
                m.labels.n_classes(),
                m.model.n_classes
            ));
        }
        if !m.thresholds.decision.value.is_finite() {
            return bad(format!(
                "decision threshold {} is not finite",
                m.thresholds.decision.value
            ));
        }
        if m.explain_baseline.len() != m.model.input.sample_len() {
            return bad(format!(
                "the explanation baseline has {} values but the model's input {} takes {}",
                m.explain_baseline.len(),
                m.model.input,
                m.model.input.sample_len()
            ));
        }
        let weights_hash = hex(&Sha256::digest(&self.weights));
        if weights_hash != m.weights_sha256 {
            return bad(format!(
                "weights hash {weights_hash} differs from the manifest's {}",
                m.weights_sha256
            ));
        }
        Ok(())
    }

    /// The container bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BundleError> {
        self.check_consistent()?;
        let manifest =
            serde_json::to_vec_pretty(&self.manifest).map_err(|e| BundleError::Manifest {
                line: e.line(),
                column: e.column(),
                reason: e.to_string(),
            })?;
        Ok(container(FORMAT_VERSION, &manifest, &self.weights))
    }

    /// Parses and verifies container bytes: magic, version, lengths, checksum,
    /// manifest, and the consistency of its parts.
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, BundleError> {
        let actual = bytes.len() as u64;
        if bytes.len() < 8 || bytes[..8] != MAGIC {
            // A short file that is a prefix of the magic is a truncated bundle.
            if bytes.len() < 8 && MAGIC.starts_with(bytes) {
                return Err(BundleError::Truncated {
                    expected: HEADER_LEN as u64,
                    actual,
                });
            }
            return Err(BundleError::NotABundle {
                found: hex(&bytes[..bytes.len().min(8)]),
            });
        }
        if bytes.len() < HEADER_LEN {
            return Err(BundleError::Truncated {
                expected: HEADER_LEN as u64,
                actual,
            });
        }
        let u32_at =
            |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let version = u32_at(8);
        if version < SAME_SCORES_SINCE {
            return Err(BundleError::OlderFormat {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if version > FORMAT_VERSION {
            return Err(BundleError::NewerFormat {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let manifest_len = u64_at(12);
        let weights_len = u64_at(20);
        if manifest_len > MAX_MANIFEST_LEN {
            return Err(BundleError::ManifestTooLarge {
                length: manifest_len,
            });
        }
        let expected = (HEADER_LEN as u64)
            .checked_add(manifest_len)
            .and_then(|n| n.checked_add(weights_len))
            .unwrap_or(u64::MAX);
        if actual < expected {
            return Err(BundleError::Truncated { expected, actual });
        }
        if actual > expected {
            return Err(BundleError::TrailingBytes {
                offset: expected,
                extra: actual - expected,
            });
        }
        // Lengths now fit in the slice, so these conversions cannot truncate.
        let manifest_end = HEADER_LEN + manifest_len as usize;
        let computed = Sha256::new()
            .chain_update(&bytes[..28])
            .chain_update(&bytes[HEADER_LEN..])
            .finalize();
        if computed[..] != bytes[28..HEADER_LEN] {
            return Err(BundleError::Checksum {
                stored: hex(&bytes[28..HEADER_LEN]),
                computed: hex(&computed),
            });
        }
        let mut manifest: Manifest = serde_json::from_slice(&bytes[HEADER_LEN..manifest_end])
            .map_err(|e| BundleError::Manifest {
                line: e.line(),
                column: e.column(),
                reason: e.to_string(),
            })?;
        if manifest.format_version != version {
            return Err(BundleError::Inconsistent(format!(
                "the manifest says format {} inside a format {version} container",
                manifest.format_version
            )));
        }
        if version < FORMAT_VERSION {
            if matches!(manifest.model.head, Head::Sigmoid | Head::Softmax) {
                return Err(BundleError::OlderFormat {
                    found: version,
                    supported: FORMAT_VERSION,
                });
            }
            manifest.format_version = FORMAT_VERSION;
        }
        let bundle = Bundle {
            manifest,
            weights: bytes[manifest_end..].to_vec(),
        };
        bundle.check_consistent()?;
        Ok(bundle)
    }

    /// Writes the bundle atomically (a temporary file beside `path`, then a rename),
    /// so a crash never leaves a half-written bundle under the final name. A path that exists
    /// and is not a regular file (`/dev/null`, a FIFO) is written in place: a rename would
    /// replace it.
    pub fn save(&self, path: &Path) -> Result<(), BundleError> {
        let write = || -> Result<(), BundleError> {
            let bytes = self.to_bytes()?;
            let io = |action| move |source| BundleError::Io { action, source };
            if nadir_features::output::writes_in_place(path) {
                let mut file = std::fs::File::options()
                    .write(true)
                    .open(path)
                    .map_err(io("open the file"))?;
                return file.write_all(&bytes).map_err(io("write the file"));
            }
            let tmp = path.with_extension("nadir.partial");
            let mut file = std::fs::File::create(&tmp).map_err(io("create the file"))?;
            file.write_all(&bytes).map_err(io("write the file"))?;
            file.sync_all().map_err(io("flush the file"))?;
            drop(file);
            std::fs::rename(&tmp, path).map_err(io("rename the finished file into place"))
        };
        write().map_err(|e| e.at(path))
    }

    /// Reads and verifies a bundle file.
    pub fn load(path: &Path) -> Result<Bundle, BundleError> {
        let bytes = std::fs::read(path)
            .map_err(|source| BundleError::Io {
                action: "read the file",
                source,
            })
            .map_err(|e| e.at(path))?;
        Bundle::from_bytes(&bytes).map_err(|e| e.at(path))
    }

    /// Refuses data whose feature columns differ from the model's (every difference listed).
    pub fn check_schema(&self, data_schema: &FeatureSchema) -> Result<(), BundleError> {
        self.manifest.schema.check_compatible(data_schema)?;
        Ok(())
    }

    /// Rebuilds the trained model (weights checked against the architecture).
    pub fn model(&self) -> Result<Trained, BundleError> {
        Ok(Trained::from_bytes(&self.manifest.model, &self.weights)?
            .with_history(self.manifest.history.clone()))
    }

    /// The decision threshold detection applies to anomaly scores.
    pub fn threshold(&self) -> f64 {
        self.manifest.thresholds.decision.value
    }

    /// Load options for reading new data the way the training data were read:
    /// same label mapping, columns matched to the bundle's schema by name.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            schema_hint: Some(self.manifest.schema.clone()),
            label_map: Some(self.manifest.labels.clone()),
            ..self.manifest.load_options.clone()
        }
    }
}

impl fmt::Display for Bundle {
    /// The human summary `nadir inspect` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest;
        writeln!(
            f,
            "format          {} (written by nadir {}, {})",
            m.format_version, m.nadir_version, m.created
        )?;
        writeln!(
            f,
            "model           {} ({} parameters, {} head)",
            m.model_kind,
            m.num_params,
            format!("{:?}", m.model.head).to_lowercase()
        )?;
        writeln!(f, "input           {}", m.model.input)?;
        writeln!(
            f,
            "weights         {} bytes, {}, sha256 {}",
            self.weights.len(),
            m.weights_format,
            m.weights_sha256
        )?;
        writeln!(
            f,
            "schema          {} feature columns (fingerprint {})",
            m.schema.len(),
            &m.schema_fingerprint[..m.schema_fingerprint.len().min(16)]
        )?;
        let shown: Vec<&str> = m
            .schema
            .columns
            .iter()
            .take(8)
            .map(String::as_str)
            .collect();
        let more = m.schema.len().saturating_sub(shown.len());
        writeln!(
            f,
            "                {}{}",
            shown.join(", "),
            if more > 0 {
                format!(", ... (+{more})")
            } else {
                String::new()
            }
        )?;
        write!(f, "preprocessing   ")?;
        for (i, step) in m.pipeline.steps().iter().enumerate() {
            let name = match step {
                nadir_dataset::FittedStep::ImputeMedian { medians } => {
                    format!("impute median ({} columns)", medians.len())
                }
                nadir_dataset::FittedStep::SignedLog => "signed log".to_string(),
                nadir_dataset::FittedStep::SelectColumns { reason, keep, .. }
                    if *reason == nadir_dataset::pipeline::SelectReason::Layout =>
                {
                    format!("{} columns in model order", keep.len())
                }
                nadir_dataset::FittedStep::SelectColumns {
                    reason, dropped, ..
                } => format!("drop {:?} ({} columns)", reason, dropped.len()).to_lowercase(),
                nadir_dataset::FittedStep::Affine { kind, offset, .. } => {
                    format!("{kind:?} scaling ({} columns)", offset.len()).to_lowercase()
                }
                nadir_dataset::FittedStep::Pca(_) => "pca".to_string(),
                nadir_dataset::FittedStep::Quantile(fit) => {
                    format!("quantile scaling ({} columns)", fit.cols())
                }
                nadir_dataset::FittedStep::PiecewiseLinear(fit) => format!(
                    "piecewise-linear encoding ({} columns -> {})",
                    fit.cols(),
                    fit.width()
                ),
                nadir_dataset::FittedStep::Encoder { layers } => format!(
                    "autoencoder reduction to {}",
                    layers.last().map_or(0, |l| l.outputs)
                ),
            };
            write!(f, "{}{name}", if i > 0 { " -> " } else { "" })?;
        }
        writeln!(
            f,
            " => {} model inputs (fitted on {} rows)",
            m.pipeline.output_dim(),
            m.pipeline.train_rows()
        )?;
        writeln!(
            f,
            "labels          {}: {}",
            m.labels.mode,
            m.labels.classes.join(", ")
        )?;
        writeln!(f, "score           {}", m.model.head.score_meaning())?;
        let t = &m.thresholds.decision;
        writeln!(
            f,
            "threshold       {:.6} ({}; on {} validation rows: FPR {:.4}, recall {:.4})",
            t.value, t.rule, t.calibration_rows, t.calibration_fpr, t.calibration_recall
        )?;
        if let Some(b) = &m.thresholds.benign {
            writeln!(
                f,
                "benign-score    p99 {:.6}, p99.9 {:.6}, p99.99 {:.6}, max {:.6}, 1.01max {:.6} (detect --threshold NAME)",
                b.p99, b.p99_9, b.p99_99, b.max, b.max_1_01
            )?;
        }
        if let Some(s) = &m.split {
            writeln!(f, "split           {s}")?;
        }
        writeln!(
            f,
            "training data   {} rows x {} columns, sha256 {} ({})",
            m.training_data.rows,
            m.training_data.cols,
            &m.training_data.sha256[..m.training_data.sha256.len().min(16)],
            m.training_data.sources.join(", ")
        )?;
        let h = &m.history;
        if let Some(last) = h.epochs.last() {
            writeln!(
                f,
                "training        {} epochs{}, best epoch {}, final train loss {:.4}, val loss {:.4}",
                h.epochs.len(),
                if h.stopped_early { " (stopped early)" } else { "" },
                h.best_epoch.map_or("-".into(), |e| e.to_string()),
                last.train_loss,
                last.val_loss
            )?;
        }
        for (name, summary) in [("validation", &m.validation), ("test", &m.evaluation)] {
            if let Some(s) = summary {
                let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
                let ci = s.accuracy_ci.map_or(String::new(), |i| {
                    format!(" [{:.4}, {:.4}]", i.lower, i.upper)
                });
                writeln!(
                    f,
                    "{name:<16}{} rows: accuracy {:.4}{ci}, macro F1 {:.4}, precision {}, recall {}, FPR {}, ROC-AUC {}, PR-AUC {}",
                    s.rows,
                    s.accuracy,
                    s.macro_f1,
                    opt(s.precision),
                    opt(s.recall),
                    opt(s.fpr),
                    opt(s.roc_auc),
                    opt(s.pr_auc)
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threshold::ThresholdRule;
    use nadir_dataset::labels::RawClass;
    use nadir_dataset::{LabelMode, Matrix, PipelineSpec};
    use nadir_model::InputShape;

    fn parts(features: usize) -> (BundleParts, Trained) {
        let schema = FeatureSchema::new((0..features).map(|i| format!("f{i}")));
        let rows = 20;
        let data: Vec<f32> = (0..rows * features)
            .map(|i| (i % 7) as f32 + (i / features) as f32)
            .collect();
        let x = Matrix::new(rows, features, data).unwrap();
        let pipeline = Pipeline::fit(&PipelineSpec::default(), &x, &schema).unwrap();
        let dims = pipeline.output_dim();
        let config =
            ModelConfig::default_for(ModelKind::Hybrid, InputShape::Tabular { features: dims }, 2);
        let model = Trained::untrained(&config, 7).unwrap();
        let labels = LabelMap::build(
            LabelMode::Binary,
            vec![
                RawClass::new("normal", "normal", "normal", true),
                RawClass::new("attack", "attack", "attack", false),
            ],
        );
        let y: Vec<u32> = (0..rows as u32).map(|i| i % 2).collect();
        let scores: Vec<f32> = (0..rows).map(|i| i as f32 / rows as f32).collect();
        let flags: Vec<bool> = y.iter().map(|&c| c == 1).collect();
        let parts = BundleParts {
            model: config,
            num_params: model.num_params(),
            train_options: TrainOptions::default(),
            load_options: LoadOptions::default(),
            pipeline,
            labels,
            split: Some(SplitSpec::default()),
            thresholds: Thresholds {
                decision: ThresholdRule::TargetFpr(0.1)
                    .calibrate(&scores, &flags)
                    .unwrap(),
                benign: None,
            },
            explain_baseline: vec![0.0; dims],
            validation: None,
            evaluation: None,
            training_data: DataFingerprint {
                sha256: fingerprint_training_data(&x.data, rows, features, &y),
                rows,
                cols: features,
                sources: vec!["generated".into()],
            },
            history: History::default(),
            weights: model.to_bytes().unwrap(),
        };
        (parts, model)
    }

    /// `-o` naming a FIFO (or `/dev/null`) writes the bundle through it; the rename that makes
    /// regular saves atomic would have replaced it with a file.
    #[test]
    fn saving_to_a_fifo_writes_through_it_and_keeps_it() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let Some(fifo) = nadir_testdata::fifo(dir.path(), "model.nadir") else {
            return;
        };
        let bundle = Bundle::new(parts(4).0).unwrap();
        let reading = fifo.clone();
        let (sender, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || sender.send(std::fs::read(reading).unwrap()));
        bundle.save(&fifo).unwrap();
        // A save that went around the FIFO leaves its reader waiting: fail, do not hang.
        let bytes = received
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("no bundle came through the FIFO");
        assert_eq!(
            Bundle::from_bytes(&bytes).unwrap().to_bytes().unwrap(),
            bytes
        );
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }

    #[test]
    fn round_trip_restores_manifest_and_identical_scores() {
        let (parts, model) = parts(6);
        let bundle = Bundle::new(parts).unwrap();
        // No tempfile dev-dependency here: it would change burn's feature set.
        let dir = std::env::temp_dir().join(format!("nadir-bundle-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.nadir");
        bundle.save(&path).unwrap();
        let loaded = Bundle::load(&path).unwrap();
        assert_eq!(loaded, bundle);
        let x: Vec<f32> = (0..3 * 6).map(|i| i as f32 * 0.1).collect();
        let shape = InputShape::Tabular { features: 6 };
        let before = model.predict(&x, shape).unwrap().anomaly_scores();
        let after = loaded
            .model()
            .unwrap()
            .predict(&x, shape)
            .unwrap()
            .anomaly_scores();
        assert_eq!(before, after, "weights survive the bundle bit for bit");
        let text = loaded.to_string();
        assert!(
            text.contains("hybrid") && text.contains("fpr:0.1"),
            "{text}"
        );
        // The manifest is readable JSON at offset 60.
        let bytes = std::fs::read(&path).unwrap();
        let m_len = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
        let json: serde_json::Value = serde_json::from_slice(&bytes[60..60 + m_len]).unwrap();
        assert_eq!(json["model_kind"], "hybrid");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = Bundle::new(parts(4).0).unwrap().to_bytes().unwrap();
        // Every cut through the header, and a sample of cuts through the body.
        let cuts = (0..HEADER_LEN + 2).chain((HEADER_LEN..bytes.len()).step_by(997));
        for cut in cuts {
            let err = Bundle::from_bytes(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(err, BundleError::Truncated { .. }),
                "cut at {cut}: {err}"
            );
        }
    }

    #[test]
    fn any_flipped_byte_is_refused() {
        let bytes = Bundle::new(parts(4).0).unwrap().to_bytes().unwrap();
        for pos in (8..bytes.len())
            .step_by(331)
            .chain([28, 59, 60, bytes.len() - 1])
        {
            let mut bad = bytes.clone();
            bad[pos] ^= 0x20;
            let err = Bundle::from_bytes(&bad).unwrap_err();
            // Header fields fail their own checks; everything else fails the checksum.
            assert!(
                matches!(
                    err,
                    BundleError::Checksum { .. }
                        | BundleError::NewerFormat { .. }
                        | BundleError::Truncated { .. }
                        | BundleError::TrailingBytes { .. }
                        | BundleError::ManifestTooLarge { .. }
                ),
                "byte {pos}: {err}"
            );
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(matches!(
            Bundle::from_bytes(&extra),
            Err(BundleError::TrailingBytes { extra: 1, .. })
        ));
    }

    #[test]
    fn older_newer_and_foreign_files_get_clear_errors() {
        let bytes = Bundle::new(parts(4).0).unwrap().to_bytes().unwrap();
        let mut old = bytes.clone();
        // Format 1: before the named benign thresholds and the explanation baseline.
        old[8..12].copy_from_slice(&1u32.to_le_bytes());
        let err = Bundle::from_bytes(&old).unwrap_err();
        assert!(matches!(
            err,
            BundleError::OlderFormat {
                found: 1,
                supported: FORMAT_VERSION
            }
        ));
        assert!(err.to_string().contains("train the model again"), "{err}");
        let mut new = bytes.clone();
        new[8..12].copy_from_slice(&9u32.to_le_bytes());
        assert!(Bundle::from_bytes(&new)
            .unwrap_err()
            .to_string()
            .contains("upgrade nadir"));
        // Format 2 scored classifiers by P(attack): their thresholds are in other units.
        let classifier = Bundle::new(parts(4).0).unwrap();
        let mut manifest = classifier.manifest.clone();
        manifest.format_version = 2;
        let v2 = container(
            2,
            &serde_json::to_vec(&manifest).unwrap(),
            &classifier.weights,
        );
        let err = Bundle::from_bytes(&v2).unwrap_err();
        assert!(
            matches!(err, BundleError::OlderFormat { found: 2, .. }),
            "{err}"
        );
        // A format 2 container around a format 3 manifest is not taken for either.
        let mislabelled = container(
            2,
            &serde_json::to_vec(&classifier.manifest).unwrap(),
            &classifier.weights,
        );
        let err = Bundle::from_bytes(&mislabelled).unwrap_err();
        assert!(matches!(err, BundleError::Inconsistent(_)), "{err}");
        // The shipped demo bundle is a format 2 autoencoder: its scores did not change.
        let demo = include_bytes!("../../../examples/models/demo-k8s-autoencoder.nadir");
        assert_eq!(u32::from_le_bytes(demo[8..12].try_into().unwrap()), 2);
        let demo = Bundle::from_bytes(demo).unwrap();
        assert_eq!(demo.manifest.format_version, FORMAT_VERSION);
        let err = Bundle::from_bytes(b"duration,protocol_type\n0,tcp\n").unwrap_err();
        assert!(matches!(err, BundleError::NotABundle { .. }), "{err}");
    }

    #[test]
    fn tampered_manifest_with_fixed_checksum_still_fails_consistency() {
        let bundle = Bundle::new(parts(4).0).unwrap();
        let mut altered = bundle.clone();
        altered.weights[0] ^= 1; // weights no longer match the recorded hash
        let err = altered.to_bytes().unwrap_err();
        assert!(matches!(err, BundleError::Inconsistent(_)), "{err}");
    }

    #[test]
    fn schema_mismatch_names_the_columns() {
        let bundle = Bundle::new(parts(4).0).unwrap();
        let other = FeatureSchema::new(["f0", "f2", "f1", "g"]);
        let err = bundle.check_schema(&other).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("f3") && text.contains("`g`"), "{text}");
        assert!(bundle.check_schema(&bundle.manifest.schema).is_ok());
    }

    #[test]
    fn pipeline_model_width_mismatch_is_refused() {
        let (mut p, _) = parts(4);
        p.model.input = InputShape::Tabular { features: 99 };
        assert!(matches!(Bundle::new(p), Err(BundleError::Inconsistent(_))));
    }

    #[test]
    fn fingerprint_depends_on_values_and_labels() {
        let a = fingerprint_training_data(&[1.0, 2.0], 1, 2, &[0]);
        assert_eq!(a.len(), 64);
        assert_ne!(a, fingerprint_training_data(&[1.0, 2.5], 1, 2, &[0]));
        assert_ne!(a, fingerprint_training_data(&[1.0, 2.0], 1, 2, &[1]));
        assert_ne!(a, fingerprint_training_data(&[1.0, 2.0], 2, 1, &[0]));
        // More values than one 4 KiB buffer.
        let big: Vec<f32> = (0..5000).map(|i| i as f32).collect();
        assert_ne!(
            fingerprint_training_data(&big, 1, 5000, &[0]),
            fingerprint_training_data(&big[..4999], 1, 4999, &[0])
        );
    }

    #[test]
    fn timestamp_is_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T",
            "{t}"
        );
    }
}
