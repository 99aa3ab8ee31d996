//! Feature schemas: the ordered column names a matrix was built from, and the known
//! public schemas recognised by their header.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The ordered feature columns of a [`crate::Matrix`]. Stored in the model bundle; data of
/// another schema is refused with the differences listed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FeatureSchema {
    pub columns: Vec<String>,
}

/// How two schemas differ: columns missing from the data, extra columns, and columns present in
/// both but at different positions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, thiserror::Error)]
#[error("feature schema differs from the one fitted: {}", self.describe())]
pub struct SchemaMismatch {
    /// In the expected schema, absent from the data.
    pub missing: Vec<String>,
    /// In the data, not in the expected schema.
    pub extra: Vec<String>,
    /// (name, expected position, actual position) for columns in both, out of order.
    pub reordered: Vec<(String, usize, usize)>,
    /// What to do about it, where the columns say (e.g. another first-bytes shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl SchemaMismatch {
    /// The mismatch between `expected` and `actual` column names, with a hint where both are
    /// first-bytes grids of different shapes.
    pub fn between(
        missing: Vec<String>,
        extra: Vec<String>,
        reordered: Vec<(String, usize, usize)>,
        expected: &[String],
        actual: &[String],
    ) -> Self {
        let hint = match (byte_grid(expected), byte_grid(actual)) {
            (Some((p, b)), Some((q, c))) if (p, b) != (q, c) => Some(format!(
                "the model reads the first {p} packets x {b} bytes of each flow, the data hold {q} x {c}: \
                 extract with --first-packets {p} --first-bytes {b}"
            )),
            _ => None,
        };
        Self {
            missing,
            extra,
            reordered,
            hint,
        }
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!(
                "missing {}: {}",
                self.missing.len(),
                quote_list(&self.missing)
            ));
        }
        if !self.extra.is_empty() {
            parts.push(format!(
                "extra {}: {}",
                self.extra.len(),
                quote_list(&self.extra)
            ));
        }
        if !self.reordered.is_empty() {
            let moved: Vec<String> = self
                .reordered
                .iter()
                .take(10)
                .map(|(name, want, got)| format!("`{name}` expected at {want}, found at {got}"))
                .collect();
            let more = self.reordered.len().saturating_sub(10);
            let tail = if more > 0 {
                format!(" (+{more} more)")
            } else {
                String::new()
            };
            parts.push(format!(
                "reordered {}: {}{tail}",
                self.reordered.len(),
                moved.join(", ")
            ));
        }
        if let Some(hint) = &self.hint {
            parts.push(hint.clone());
        }
        parts.join("; ")
    }

    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.reordered.is_empty()
    }
}

/// `b{packet}_{byte}` (a `bytes` column) -> (packet, byte).
pub fn parse_byte_column_name(name: &str) -> Option<(usize, usize)> {
    let (p, b) = name.strip_prefix('b')?.split_once('_')?;
    Some((p.parse().ok()?, b.parse().ok()?))
}

/// Packets x bytes of a first-bytes table's `b{p}_{o}` columns; `None` without any.
pub fn byte_grid(columns: &[String]) -> Option<(usize, usize)> {
    columns
        .iter()
        .filter_map(|c| parse_byte_column_name(c))
        .fold(None, |grid, (p, b)| match grid {
            None => Some((p + 1, b + 1)),
            Some((np, nb)) => Some((np.max(p + 1), nb.max(b + 1))),
        })
}

fn quote_list(names: &[String]) -> String {
    let shown: Vec<String> = names.iter().take(10).map(|n| format!("`{n}`")).collect();
    let more = names.len().saturating_sub(10);
    if more > 0 {
        format!("{} (+{more} more)", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

impl FeatureSchema {
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> FeatureSchema {
        FeatureSchema {
            columns: columns.into_iter().map(Into::into).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// `Ok` when `other` has exactly these columns in this order; otherwise lists what is
    /// missing, extra and reordered.
    pub fn check_compatible(&self, other: &FeatureSchema) -> Result<(), SchemaMismatch> {
        if self.columns == other.columns {
            return Ok(());
        }
        let mut mismatch = SchemaMismatch::between(
            Vec::new(),
            Vec::new(),
            Vec::new(),
            &self.columns,
            &other.columns,
        );
        for name in &self.columns {
            if other.index_of(name).is_none() {
                mismatch.missing.push(name.clone());
            }
        }
        for name in &other.columns {
            if self.index_of(name).is_none() {
                mismatch.extra.push(name.clone());
            }
        }
        // Positions among the shared columns only, so one missing column does not mark every
        // later column as moved.
        let shared_expected: Vec<&String> = self
            .columns
            .iter()
            .filter(|c| other.index_of(c).is_some())
            .collect();
        let shared_actual: Vec<&String> = other
            .columns
            .iter()
            .filter(|c| self.index_of(c).is_some())
            .collect();
        for (want, name) in shared_expected.iter().enumerate() {
            if shared_actual.get(want) != Some(name) {
                let got = shared_actual.iter().position(|c| c == name).unwrap_or(want);
                mismatch.reordered.push(((*name).clone(), want, got));
            }
        }
        if mismatch.is_empty() {
            // Duplicated names can make equal sets with different lengths.
            mismatch.extra.push(format!(
                "(column count {} vs {})",
                other.columns.len(),
                self.columns.len()
            ));
        }
        Err(mismatch)
    }

    /// SHA-256 over the column names in order (hex), a short identity for bundles and reports.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        for name in &self.columns {
            hasher.update(name.as_bytes());
            hasher.update([0u8]);
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Public schemas recognised from a header (or its absence, for NSL-KDD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KnownSchema {
    /// Kubernetes misuse dataset = nadir's own `cic` output: 87 columns of the GintsEngelen
    /// CICFlowMeter fork, numeric `Label` 0-11.
    KubernetesMisuse,
    /// CICFlowMeter-4.0 long names (CIC-IDS2017 CSVs, often with leading spaces).
    CicIds2017,
    /// CSE-CIC-IDS2018 / CICFlowMeter-V3 short names (`Tot Fwd Pkts`, `Flow Byts/s`).
    CseCicIds2018,
    /// NSL-KDD: no header, 41 features, label, difficulty.
    NslKdd,
    /// Any other CSV or Parquet with a header; needs a label column.
    Generic,
}

impl KnownSchema {
    pub fn name(self) -> &'static str {
        match self {
            KnownSchema::KubernetesMisuse => "kubernetes-misuse (nadir cic, 87 columns)",
            KnownSchema::CicIds2017 => "CIC-IDS2017 (CICFlowMeter long names)",
            KnownSchema::CseCicIds2018 => "CSE-CIC-IDS2018 (CICFlowMeter-V3 short names)",
            KnownSchema::NslKdd => "NSL-KDD (41 features, label, difficulty)",
            KnownSchema::Generic => "generic CSV",
        }
    }
}

impl std::fmt::Display for KnownSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a column is for: declared by the table's writer when it is nadir's own
/// (`extract`), otherwise decided by the name rules below.
pub use nadir_features::roles::ColumnRole;

/// Columns that identify a flow or its endpoints, in every naming variant we know.
const IDENTITY_COLUMNS: &[&str] = &[
    "flow id",
    "src ip",
    "dst ip",
    "src port",
    "dst port",
    "source ip",
    "destination ip",
    "source port",
    "destination port",
    "src_ip",
    "dst_ip",
    "src_port",
    "dst_port",
    // nadir's own packets and bytes tables.
    "flow_id",
    "source",
    "window_index",
    "first_packet",
    "last_packet",
];

const TIME_COLUMNS: &[&str] = &["timestamp", "first_ts_ns", "last_ts_ns"];

/// nadir's own bookkeeping columns (tables written before roles were declared).
const IGNORED_COLUMNS: &[&str] = &["end_reason", "padding"];

/// The role a column name has when its table declares none (before the feature policy's
/// explicit choices).
pub fn default_role(name: &str) -> ColumnRole {
    let lower = name.trim().to_ascii_lowercase();
    if IDENTITY_COLUMNS.contains(&lower.as_str()) {
        ColumnRole::Identity
    } else if TIME_COLUMNS.contains(&lower.as_str()) {
        ColumnRole::Time
    } else if IGNORED_COLUMNS.contains(&lower.as_str()) {
        ColumnRole::Ignored
    } else {
        ColumnRole::Feature
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_compatible_lists_missing_extra_and_reordered() {
        let fitted = FeatureSchema::new(["a", "b", "c", "d"]);
        assert!(fitted.check_compatible(&fitted.clone()).is_ok());
        let other = FeatureSchema::new(["b", "a", "d", "e"]);
        let m = fitted.check_compatible(&other).unwrap_err();
        assert_eq!(m.missing, ["c"]);
        assert_eq!(m.extra, ["e"]);
        assert_eq!(
            m.reordered,
            [("a".to_string(), 0, 1), ("b".to_string(), 1, 0)]
        );
        // A missing column alone does not mark the later ones as moved.
        let m = fitted
            .check_compatible(&FeatureSchema::new(["a", "c", "d"]))
            .unwrap_err();
        assert!(m.reordered.is_empty() && m.missing == ["b"]);
    }

    #[test]
    fn fingerprint_depends_on_names_and_order() {
        let ab = FeatureSchema::new(["a", "b"]).fingerprint();
        assert_eq!(ab.len(), 64);
        assert_ne!(ab, FeatureSchema::new(["b", "a"]).fingerprint());
        assert_ne!(ab, FeatureSchema::new(["ab"]).fingerprint());
    }

    #[test]
    fn identity_and_time_columns_have_leaking_roles() {
        assert_eq!(default_role(" Src IP"), ColumnRole::Identity);
        assert_eq!(default_role("Destination Port"), ColumnRole::Identity);
        assert_eq!(default_role("Timestamp"), ColumnRole::Time);
        assert_eq!(default_role("Flow Duration"), ColumnRole::Feature);
    }
}
