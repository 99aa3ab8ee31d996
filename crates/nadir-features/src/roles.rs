//! Column roles: what each column of a feature table is for. The writer (`extract`) declares
//! them with the table and the reader (dataset loading) honours them, so a time or identity
//! column never reaches a model because its name looked like a feature.
//!
//! Parquet carries the declaration in its key-value metadata ([`PARQUET_KEY`]); CSV and JSON
//! lines have no place for it, so it sits beside the table in a small sidecar file
//! ([`sidecar_path`]: `flows.csv` -> `flows.csv.roles.json`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a column is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ColumnRole {
    /// A numeric model input.
    Feature,
    /// Identifies a flow, host or position (Flow ID, addresses, ports, window index): leaks,
    /// excluded by default.
    Identity,
    /// Absolute time (Timestamp, first_ts_ns): leaks, excluded by default; used for time order.
    Time,
    /// The label column.
    Label,
    /// Bookkeeping (NSL-KDD difficulty, why a flow ended); never a feature.
    Ignored,
}

impl ColumnRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnRole::Feature => "feature",
            ColumnRole::Identity => "identity",
            ColumnRole::Time => "time",
            ColumnRole::Label => "label",
            ColumnRole::Ignored => "ignored",
        }
    }
}

impl std::fmt::Display for ColumnRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Parquet key-value metadata key holding a table's [`DeclaredRoles`] (JSON).
pub const PARQUET_KEY: &str = "nadir.column_roles";

/// Identifies the declaration's JSON layout, so a later layout is refused, not misread.
const FORMAT: &str = "nadir-column-roles/1";

/// One declared column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredColumn {
    pub name: String,
    pub role: ColumnRole,
}

/// The role of every column of one table, in column order, as its writer declared them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredRoles {
    format: String,
    pub columns: Vec<DeclaredColumn>,
}

impl DeclaredRoles {
    pub fn new(columns: impl IntoIterator<Item = (String, ColumnRole)>) -> DeclaredRoles {
        DeclaredRoles {
            format: FORMAT.to_string(),
            columns: columns
                .into_iter()
                .map(|(name, role)| DeclaredColumn { name, role })
                .collect(),
        }
    }

    /// The declared role of `name` (exact name; `None` when the table did not declare it).
    pub fn role_of(&self, name: &str) -> Option<ColumnRole> {
        self.columns.iter().find(|c| c.name == name).map(|c| c.role)
    }

    pub fn to_json(&self) -> String {
        // A struct of strings and unit enums always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<DeclaredRoles, String> {
        let roles: DeclaredRoles = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if roles.format != FORMAT {
            return Err(format!(
                "declares roles in layout `{}`; this nadir reads `{FORMAT}`",
                roles.format
            ));
        }
        Ok(roles)
    }

    /// Writes the sidecar of `table` (see [`sidecar_path`]) and returns its path.
    pub fn write_sidecar(&self, table: &Path) -> std::io::Result<PathBuf> {
        let path = sidecar_path(table);
        std::fs::write(&path, self.to_json() + "\n")?;
        Ok(path)
    }

    /// The sidecar of `table`: `Ok(None)` when there is none; an error names the sidecar
    /// when it exists but cannot be read or understood.
    pub fn read_sidecar(table: &Path) -> Result<Option<DeclaredRoles>, String> {
        let path = sidecar_path(table);
        match std::fs::read_to_string(&path) {
            Ok(text) => DeclaredRoles::from_json(&text)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }
}

/// Where the roles of a CSV or JSON-lines table are declared: beside it, `NAME.roles.json`.
pub fn sidecar_path(table: &Path) -> PathBuf {
    let mut name = table.as_os_str().to_owned();
    name.push(".roles.json");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declaration_round_trips_and_refuses_another_layout() {
        let roles = DeclaredRoles::new([
            ("first_ts_ns".to_string(), ColumnRole::Time),
            ("f0_ip_len".to_string(), ColumnRole::Feature),
        ]);
        let back = DeclaredRoles::from_json(&roles.to_json()).expect("round trip");
        assert_eq!(back, roles);
        assert_eq!(back.role_of("first_ts_ns"), Some(ColumnRole::Time));
        assert_eq!(back.role_of("nope"), None);
        let other = roles.to_json().replace(FORMAT, "nadir-column-roles/9");
        let err = DeclaredRoles::from_json(&other).unwrap_err();
        assert!(err.contains("nadir-column-roles/9"), "{err}");
        assert_eq!(
            sidecar_path(Path::new("out/flows.csv")),
            Path::new("out/flows.csv.roles.json")
        );
    }
}
