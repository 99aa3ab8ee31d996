//! Loading CSV (plain or gzip) and Parquet into a [`Dataset`]: an `f32` feature matrix, labels,
//! groups, optional timestamps, and a report of what was found per column.
//!
//! Big CSVs stream in blocks of a few MiB that are parsed on every core; memory holds the
//! output matrix and labels plus a bounded number of blocks in flight.

mod assemble;
pub(crate) mod cell;
mod csv_engine;
mod nsl_kdd;
mod parquet_reader;
pub use parquet_reader::next_batch as next_parquet_batch;
mod plan;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use cell::CellCounts;

use crate::error::DatasetError;
use crate::labels::{LabelMap, LabelMode};
use crate::matrix::Matrix;
use crate::schema::{ColumnRole, FeatureSchema, KnownSchema};
use crate::split::UNGROUPED;

/// Which columns become features.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FeaturePolicy {
    /// Include Flow ID / addresses / ports as features (they leak; a warning is logged and
    /// reported). IPv4 addresses become 32-bit numbers; Flow IDs are junk (NaN).
    pub include_identity: bool,
    /// Include the Timestamp (seconds since 1970) as a feature (leaks: scenarios are time windows).
    pub include_time: bool,
    /// Further columns to exclude, by name.
    pub drop: Vec<String>,
    /// Identity or time columns to count as features all the same, by name (e.g. `Dst Port`,
    /// which names the attacked service: borderline, so a choice to report beside the figure).
    pub keep: Vec<String>,
}

/// What a row with the wrong number of fields does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowErrorPolicy {
    /// Stop with an error naming the file and line (default).
    #[default]
    Fail,
    /// Skip the row, count it, and list the first lines skipped in the report.
    Skip,
}

/// Where the per-row group id (capture file, scenario) comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The file a row came from ([`load_many`] numbers the files; one file is group 0).
    #[default]
    File,
    /// The values of a column.
    Column(String),
    /// The raw label (Kubernetes dataset: one scenario per capture).
    Label,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Parquet,
}

/// How to load.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadOptions {
    pub label_mode: LabelMode,
    /// The label column; `None` = the schema's own (`Label`; NSL-KDD field 42).
    pub label_column: Option<String>,
    /// Load without labels (every row gets raw class `unlabelled`, benign).
    pub unlabelled: bool,
    pub features: FeaturePolicy,
    /// The feature columns expected, in order (e.g. the training schema or a bundle's). Columns
    /// are then matched by name: another order is reordered to this one (safe), extra columns
    /// are left out (reported), a missing column is an error listing every difference. For
    /// NSL-KDD it also gives the one-hot categories (`service=http`) learned on training data.
    pub schema_hint: Option<FeatureSchema>,
    /// The label mapping to use (e.g. the training set's), instead of building one.
    pub label_map: Option<LabelMap>,
    /// `None` = from the file's first bytes.
    pub format: Option<FileFormat>,
    pub group_by: GroupBy,
    pub on_bad_row: RowErrorPolicy,
    /// Parser threads; 0 = all cores.
    pub threads: usize,
}

/// Per-column findings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ColumnReport {
    pub name: String,
    pub role: Option<ColumnRole>,
    #[serde(flatten)]
    pub counts: CellCounts,
}

/// What loading found.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LoadReport {
    pub path: PathBuf,
    pub known_schema: Option<KnownSchema>,
    pub rows: usize,
    /// Columns in the file (fields per row).
    pub source_columns: usize,
    /// Source columns used as features, before any one-hot encoding.
    pub raw_feature_columns: usize,
    /// Every source column with its role and cell counts (counts for parsed columns only).
    pub columns: Vec<ColumnReport>,
    /// Columns dropped by rule (NSL-KDD `num_outbound_cmds`, CIC-IDS2017 duplicate header).
    pub dropped: Vec<String>,
    pub blank_lines: u64,
    pub skipped_rows: u64,
    /// The first lines skipped (at most 20).
    pub skipped_lines: Vec<u64>,
    /// Categorical values not among the training categories: (column, value, rows) — encoded
    /// as all zeros.
    pub unknown_categories: Vec<(String, String, u64)>,
    /// Rows per raw label, in raw label id order: (label, name, rows).
    pub label_counts: Vec<(String, String, u64)>,
    pub warnings: Vec<String>,
}

impl LoadReport {
    /// Whether the file's first line was a header: every table but NSL-KDD's, the one
    /// headerless schema the loader recognises (by its first record).
    pub fn has_header(&self) -> bool {
        self.known_schema != Some(KnownSchema::NslKdd)
    }

    pub fn column(&self, name: &str) -> Option<&ColumnReport> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A loaded table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub schema: FeatureSchema,
    pub x: Matrix,
    /// Class id per row, in `labels.mode`.
    pub y: Vec<u32>,
    /// Raw label id per row (`labels.raw_classes`): the attack name or scenario behind `y`.
    pub y_raw: Vec<u32>,
    pub labels: LabelMap,
    /// Group id per row (`group_names[id]`): capture file, scenario or a column's value;
    /// [`UNGROUPED`] for rows of no group (benign rows when grouping by scenario).
    pub groups: Vec<u32>,
    pub group_names: Vec<String>,
    /// Seconds since 1970 per row (NaN where unparsable), when the file has a time column.
    pub time: Option<Vec<f64>>,
    /// Loaded `unlabelled` from a table that has a label column anyway: whether that column
    /// calls each row an attack. Never a class: it measures how many of the rows taken as
    /// normal are not (the contamination of a normal-only training set).
    #[serde(default)]
    pub labelled_attack: Option<Vec<bool>>,
    pub report: LoadReport,
}

impl Dataset {
    pub fn rows(&self) -> usize {
        self.x.rows
    }

    /// The rows `idx` as a new dataset (same schema, labels and group names).
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        Dataset {
            schema: self.schema.clone(),
            x: self.x.select_rows(idx),
            y: idx.iter().map(|&i| self.y[i]).collect(),
            y_raw: idx.iter().map(|&i| self.y_raw[i]).collect(),
            labels: self.labels.clone(),
            groups: idx.iter().map(|&i| self.groups[i]).collect(),
            group_names: self.group_names.clone(),
            time: self
                .time
                .as_ref()
                .map(|t| idx.iter().map(|&i| t[i]).collect()),
            labelled_attack: self
                .labelled_attack
                .as_ref()
                .map(|a| idx.iter().map(|&i| a[i]).collect()),
            report: self.report.clone(),
        }
    }

    /// Rows per class of `y`: (class name, rows).
    pub fn class_counts(&self) -> Vec<(String, u64)> {
        let mut counts = vec![0u64; self.labels.n_classes()];
        for &c in &self.y {
            if let Some(slot) = counts.get_mut(c as usize) {
                *slot += 1;
            }
        }
        self.labels.classes.iter().cloned().zip(counts).collect()
    }
}

/// Loads one file (CSV, gzip CSV or Parquet; known schemas recognised by header).
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Dataset, DatasetError> {
    let format = match opts.format {
        Some(f) => f,
        None => sniff_format(path)?,
    };
    let mut dataset = match format {
        FileFormat::Csv => csv_engine::load_csv(path, opts)?,
        FileFormat::Parquet => parquet_reader::load_parquet(path, opts)?,
    };
    if opts.group_by == GroupBy::File {
        dataset.groups = vec![0; dataset.x.rows];
        dataset.group_names = vec![path.display().to_string()];
    }
    Ok(dataset)
}

/// Loads several files of one schema into one dataset; with [`GroupBy::File`] each file is a
/// group (so a group split keeps every capture on one side). Later files are loaded with the
/// first file's schema and label mapping.
pub fn load_many(paths: &[PathBuf], opts: &LoadOptions) -> Result<Dataset, DatasetError> {
    let Some((first, rest)) = paths.split_first() else {
        return Err(DatasetError::InvalidSpec("no files to load".into()));
    };
    let mut all = load(first, opts)?;
    let mut next_opts = opts.clone();
    next_opts.schema_hint = Some(all.schema.clone());
    next_opts.label_map = Some(all.labels.clone());
    for path in rest {
        let part = load(path, &next_opts)?;
        all.x.append_rows(&part.x)?;
        all.y.extend_from_slice(&part.y);
        all.y_raw.extend_from_slice(&part.y_raw);
        let offset = all.group_names.len() as u32;
        all.groups.extend(part.groups.iter().map(|&g| match g {
            UNGROUPED => UNGROUPED,
            g => g + offset,
        }));
        all.group_names.extend(part.group_names);
        match (&mut all.time, part.time) {
            (Some(t), Some(p)) => t.extend(p),
            (Some(t), None) => t.extend(std::iter::repeat_n(f64::NAN, part.x.rows)),
            _ => {}
        }
        // A file without a label column contributes rows of no known label: not attacks.
        match (&mut all.labelled_attack, part.labelled_attack) {
            (Some(a), Some(p)) => a.extend(p),
            (Some(a), None) => a.extend(std::iter::repeat_n(false, part.x.rows)),
            (None, Some(p)) => {
                let mut a = vec![false; all.y.len() - p.len()];
                a.extend(p);
                all.labelled_attack = Some(a);
            }
            (None, None) => {}
        }
        all.report.rows += part.report.rows;
        all.report.skipped_rows += part.report.skipped_rows;
        for (a, b) in all.report.columns.iter_mut().zip(&part.report.columns) {
            a.counts.merge(&b.counts);
        }
        for (a, b) in all
            .report
            .label_counts
            .iter_mut()
            .zip(&part.report.label_counts)
        {
            a.2 += b.2;
        }
        all.report.warnings.extend(part.report.warnings);
    }
    Ok(all)
}

/// Parquet by its magic bytes, everything else CSV (gzip is detected by the CSV reader).
fn sniff_format(path: &Path) -> Result<FileFormat, DatasetError> {
    use std::io::Read;
    let mut head = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let n = file
        .read(&mut head)
        .map_err(|e| DatasetError::io(path, e))?;
    Ok(if n == 4 && &head == b"PAR1" {
        FileFormat::Parquet
    } else {
        FileFormat::Csv
    })
}
