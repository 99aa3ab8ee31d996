//! What to do with each source column, decided once from the header and the options.

use crate::aliases;
use crate::error::DatasetError;
use crate::load::{nsl_kdd, GroupBy, LoadOptions};
use crate::schema::{default_role, ColumnRole, KnownSchema};
use nadir_features::roles::DeclaredRoles;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Parse as a number into numeric output column `.0`.
    Feature(usize),
    /// Parse as a timestamp; also into numeric output column `.0` when the time is a feature.
    Time(Option<usize>),
    /// Symbolic value of categorical slot `.0`.
    Category(usize),
    Label,
    Group,
    Skip,
}

/// One entry of the final feature order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LayoutItem {
    Numeric(usize),
    /// Every category of a slot, learned from this file (sorted).
    AllCategories(usize),
    /// One given category of a slot (from the schema hint).
    Category(usize, String),
}

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub known: KnownSchema,
    pub names: Vec<String>,
    pub roles: Vec<ColumnRole>,
    pub actions: Vec<Action>,
    pub numeric_names: Vec<String>,
    pub categorical: Vec<String>,
    pub layout: Vec<LayoutItem>,
    pub label_name: Option<String>,
    /// Loading unlabelled from a table with a label column: the column is read, not used.
    pub labels_ignored: bool,
    pub has_time: bool,
    /// The time column counts nanoseconds (its name ends in `_ns`, as nadir writes it).
    pub time_in_ns: bool,
    pub dropped: Vec<String>,
    pub warnings: Vec<String>,
    pub raw_feature_columns: usize,
}

impl Plan {
    /// Whether the rows take their classes from the label column.
    pub fn uses_labels(&self) -> bool {
        self.label_name.is_some() && !self.labels_ignored
    }

    pub fn n_numeric(&self) -> usize {
        self.numeric_names.len()
    }

    pub fn is_direct(&self) -> bool {
        self.categorical.is_empty()
    }

    /// `declared`: the roles the table's writer declared, if any; otherwise the name rules
    /// decide (with a warning for tables of no known schema).
    pub fn build(
        path: &std::path::Path,
        header: &[String],
        has_header: bool,
        declared: Option<&DeclaredRoles>,
        opts: &LoadOptions,
    ) -> Result<Plan, DatasetError> {
        let (known, names) = if has_header {
            aliases::recognise_header(header)
        } else {
            (KnownSchema::NslKdd, header.to_vec())
        };
        let n = names.len();
        let mut roles = vec![ColumnRole::Feature; n];
        let mut actions = vec![Action::Skip; n];
        let mut dropped = Vec::new();
        let mut warnings = Vec::new();
        let find = |wanted: &str| {
            names
                .iter()
                .position(|c| c.trim().eq_ignore_ascii_case(wanted.trim()))
        };

        // Label.
        let wanted = opts.label_column.clone().unwrap_or_else(|| {
            if known == KnownSchema::NslKdd {
                nsl_kdd::LABEL.to_string()
            } else {
                "Label".to_string()
            }
        });
        // Unlabelled: a label column the table has anyway is read, only to say how many of
        // the rows taken as normal it calls attacks.
        let labels_ignored = opts.unlabelled && find(&wanted).is_some();
        let label_name = if opts.unlabelled && !labels_ignored {
            None
        } else {
            match find(&wanted) {
                Some(i) => {
                    roles[i] = ColumnRole::Label;
                    actions[i] = Action::Label;
                    Some(names[i].clone())
                }
                None => {
                    let shown: Vec<&str> = names.iter().take(12).map(String::as_str).collect();
                    let more = if n > 12 {
                        format!(", ... ({n} in all)")
                    } else {
                        String::new()
                    };
                    return Err(DatasetError::LabelColumnAbsent {
                        path: path.to_path_buf(),
                        column: wanted,
                        available: format!("{}{more}", shown.join(", ")),
                    });
                }
            }
        };
        // Group column.
        if let GroupBy::Column(g) = &opts.group_by {
            let Some(i) = find(g) else {
                return Err(DatasetError::BadColumn {
                    path: path.to_path_buf(),
                    column: g.clone(),
                    message: "group column not in the header".into(),
                });
            };
            if actions[i] == Action::Label {
                return Err(DatasetError::BadColumn {
                    path: path.to_path_buf(),
                    column: g.clone(),
                    message: "is the label column; use group_by = label".into(),
                });
            }
            actions[i] = Action::Group;
        }
        if let Some(absent) = opts.features.keep.iter().find(|k| find(k).is_none()) {
            return Err(DatasetError::BadColumn {
                path: path.to_path_buf(),
                column: absent.clone(),
                message: "was asked for as a feature but is not in the header".into(),
            });
        }
        // Roles of the rest.
        let mut seen: Vec<&str> = Vec::new();
        let mut categorical = Vec::new();
        let mut candidates: Vec<usize> = Vec::new();
        // The first time column orders the rows; any other is left out unless time is wanted.
        let mut time_column: Option<usize> = None;
        let mut undeclared: Vec<String> = Vec::new();
        for i in 0..n {
            if actions[i] != Action::Skip {
                if actions[i] == Action::Group {
                    roles[i] = ColumnRole::Ignored;
                }
                continue;
            }
            let name = names[i].as_str();
            if known == KnownSchema::NslKdd
                && (name == nsl_kdd::DIFFICULTY || name == nsl_kdd::LABEL)
            {
                roles[i] = ColumnRole::Ignored;
                continue;
            }
            if (known == KnownSchema::NslKdd && name == nsl_kdd::DROPPED)
                || aliases::is_duplicate(name)
                || seen.contains(&name)
            {
                roles[i] = ColumnRole::Ignored;
                dropped.push(name.to_string());
                continue;
            }
            if opts
                .features
                .drop
                .iter()
                .any(|d| d.trim().eq_ignore_ascii_case(name))
            {
                roles[i] = ColumnRole::Ignored;
                continue;
            }
            seen.push(name);
            roles[i] = match declared.map(|d| d.role_of(name)) {
                // Declared the label, but another column was chosen as the label.
                Some(Some(ColumnRole::Label)) => ColumnRole::Ignored,
                Some(Some(role)) => role,
                Some(None) => {
                    undeclared.push(format!("`{name}`"));
                    default_role(name)
                }
                None => default_role(name),
            };
            if roles[i] == ColumnRole::Time && time_column.is_none() {
                time_column = Some(i);
            }
            let kept = opts
                .features
                .keep
                .iter()
                .any(|k| k.trim().eq_ignore_ascii_case(name));
            match roles[i] {
                ColumnRole::Ignored | ColumnRole::Label => {}
                ColumnRole::Identity if !opts.features.include_identity && !kept => {}
                ColumnRole::Time if !opts.features.include_time && !kept => {
                    if time_column == Some(i) {
                        actions[i] = Action::Time(None);
                    }
                }
                role => {
                    if role != ColumnRole::Feature {
                        warnings.push(format!(
                            "column `{name}` ({role:?}) is a feature by explicit choice: it identifies flows or \
                             times, not behaviour, and leaks the label in public datasets"
                        ));
                    }
                    candidates.push(i);
                }
            }
        }
        if !undeclared.is_empty() {
            warnings.push(format!(
                "the table's declared roles do not name {}: the name rules decided for them",
                undeclared.join(", ")
            ));
        }
        if declared.is_none() && known == KnownSchema::Generic {
            warnings.push(undeclared_roles_warning(&names, &roles));
        }
        let has_time = time_column.is_some();
        let time_in_ns = time_column.is_some_and(|i| names[i].trim().ends_with("_ns"));
        let raw_feature_columns = candidates.len() + dropped.len();
        let is_categorical = |i: usize| {
            known == KnownSchema::NslKdd && nsl_kdd::CATEGORICAL.contains(&names[i].as_str())
        };

        let mut numeric_names = Vec::new();
        let mut layout = Vec::new();
        let assign =
            |i: usize, actions: &mut Vec<Action>, numeric_names: &mut Vec<String>| -> usize {
                let out = numeric_names.len();
                numeric_names.push(names[i].clone());
                actions[i] = if time_column == Some(i) {
                    Action::Time(Some(out))
                } else {
                    Action::Feature(out)
                };
                out
            };
        match &opts.schema_hint {
            None => {
                for &i in &candidates {
                    if is_categorical(i) {
                        actions[i] = Action::Category(categorical.len());
                        layout.push(LayoutItem::AllCategories(categorical.len()));
                        categorical.push(names[i].clone());
                    } else {
                        let out = assign(i, &mut actions, &mut numeric_names);
                        layout.push(LayoutItem::Numeric(out));
                    }
                }
            }
            Some(hint) => {
                let mut missing = Vec::new();
                let mut used = vec![false; n];
                for wanted in &hint.columns {
                    // `column=value`: a one-hot category of a symbolic column.
                    if let Some((col, value)) = wanted.split_once('=') {
                        if let Some(i) = candidates
                            .iter()
                            .copied()
                            .find(|&i| names[i] == col && is_categorical(i))
                        {
                            let slot = match actions[i] {
                                Action::Category(s) => s,
                                _ => {
                                    actions[i] = Action::Category(categorical.len());
                                    categorical.push(names[i].clone());
                                    categorical.len() - 1
                                }
                            };
                            used[i] = true;
                            layout.push(LayoutItem::Category(slot, value.to_string()));
                            continue;
                        }
                    }
                    match names
                        .iter()
                        .position(|c| c == wanted)
                        .filter(|&i| !matches!(actions[i], Action::Label))
                    {
                        Some(i) if !used[i] => {
                            if !candidates.contains(&i) {
                                warnings.push(format!("column `{wanted}` is a feature because the expected schema has it"));
                            }
                            used[i] = true;
                            let out = assign(i, &mut actions, &mut numeric_names);
                            layout.push(LayoutItem::Numeric(out));
                        }
                        _ => missing.push(wanted.clone()),
                    }
                }
                if !missing.is_empty() {
                    let actual: Vec<String> =
                        candidates.iter().map(|&i| names[i].clone()).collect();
                    let extra = actual
                        .iter()
                        .filter(|a| !hint.columns.contains(a) && !categorical.contains(a))
                        .cloned()
                        .collect();
                    return Err(DatasetError::SchemaMismatchInFile {
                        path: path.to_path_buf(),
                        mismatch: crate::schema::SchemaMismatch::between(
                            missing,
                            extra,
                            Vec::new(),
                            &hint.columns,
                            &actual,
                        ),
                    });
                }
                let extra: Vec<&str> = candidates
                    .iter()
                    .filter(|&&i| !used[i])
                    .map(|&i| names[i].as_str())
                    .collect();
                if !extra.is_empty() {
                    warnings.push(format!(
                        "{} column(s) not in the expected schema left out: {}",
                        extra.len(),
                        extra.join(", ")
                    ));
                }
                let in_order = numeric_names
                    .iter()
                    .filter_map(|c| names.iter().position(|n| n == c))
                    .collect::<Vec<_>>();
                if in_order.windows(2).any(|w| w[0] > w[1]) {
                    warnings.push(
                        "columns are in another order than the expected schema: matched by name"
                            .into(),
                    );
                }
            }
        }
        for w in &warnings {
            tracing::warn!(path = %path.display(), "{w}");
        }
        Ok(Plan {
            known,
            names,
            roles,
            actions,
            numeric_names,
            categorical,
            layout,
            label_name,
            labels_ignored,
            has_time,
            time_in_ns,
            dropped,
            warnings,
            raw_feature_columns,
        })
    }
}

/// What the name rules decided for a table that declares no roles, so a user can see which
/// columns were kept out of the features, and which were not.
fn undeclared_roles_warning(names: &[String], roles: &[ColumnRole]) -> String {
    let named = |wanted: ColumnRole| -> String {
        let list: Vec<String> = names
            .iter()
            .zip(roles)
            .filter(|(_, r)| **r == wanted)
            .map(|(n, _)| format!("`{n}`"))
            .collect();
        if list.is_empty() {
            "none".to_string()
        } else {
            list.join(", ")
        }
    };
    format!(
        "the table declares no column roles (written by another tool, or by nadir before it \
         declared them), so the name rules decided: identity {}; time {}; every other column \
         but the label is a feature",
        named(ColumnRole::Identity),
        named(ColumnRole::Time)
    )
}
