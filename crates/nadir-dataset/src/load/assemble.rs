//! Parsed chunks -> one [`Dataset`]: string interning, label mapping, one-hot expansion.

use std::collections::HashMap;
use std::path::Path;

use super::cell::CellCounts;
use super::plan::{LayoutItem, Plan};
use super::{ColumnReport, Dataset, GroupBy, LoadOptions, LoadReport, RowErrorPolicy};
use crate::error::DatasetError;
use crate::labels::{self, LabelMap, RawClass};
use crate::matrix::Matrix;
use crate::schema::{FeatureSchema, KnownSchema};
use crate::split::UNGROUPED;

/// Distinct byte strings seen, with the line each first appeared on.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    ids: HashMap<Box<[u8]>, u32>,
    pub names: Vec<(Box<[u8]>, u64)>,
}

impl Interner {
    /// Id of `value`; allocates only the first time a value is seen.
    #[inline]
    pub fn id(&mut self, value: &[u8], line: u64) -> u32 {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(value.into(), id);
        self.names.push((value.into(), line));
        id
    }
}

/// One parsed block of rows.
#[derive(Debug, Default)]
pub(crate) struct ChunkOut {
    pub rows: usize,
    /// `rows x plan.n_numeric()`, row-major.
    pub x: Vec<f32>,
    /// `rows x plan.categorical.len()`, local ids into `cat_vocab[slot]`.
    pub cats: Vec<u32>,
    pub labels: Vec<u32>,
    pub label_vocab: Interner,
    pub groups: Vec<u32>,
    pub group_vocab: Interner,
    pub cat_vocab: Vec<Interner>,
    pub time: Vec<f64>,
    pub time_bad: u64,
    /// Per source column.
    pub counts: Vec<CellCounts>,
    pub blank_lines: u64,
    pub skipped_rows: u64,
    pub skipped_lines: Vec<u64>,
    pub input_bytes: usize,
}

impl ChunkOut {
    pub fn new(plan: &Plan) -> ChunkOut {
        ChunkOut {
            cat_vocab: (0..plan.categorical.len())
                .map(|_| Interner::default())
                .collect(),
            counts: vec![CellCounts::default(); plan.names.len()],
            ..ChunkOut::default()
        }
    }

    /// Records a row with the wrong field count: an error, or a counted skip.
    pub fn bad_row(
        &mut self,
        path: &Path,
        policy: RowErrorPolicy,
        line: u64,
        expected: usize,
        found: usize,
    ) -> Result<(), DatasetError> {
        match policy {
            RowErrorPolicy::Fail => Err(DatasetError::FieldCount {
                path: path.to_path_buf(),
                line,
                expected,
                found,
            }),
            RowErrorPolicy::Skip => {
                self.skipped_rows += 1;
                if self.skipped_lines.len() < 20 {
                    self.skipped_lines.push(line);
                }
                Ok(())
            }
        }
    }
}

/// Global state while chunks arrive in file order.
pub(crate) struct Assembler<'a> {
    path: &'a Path,
    plan: &'a Plan,
    opts: &'a LoadOptions,
    pub x: Vec<f32>,
    cats: Vec<u32>,
    labels: Vec<u32>,
    label_vocab: Interner,
    groups: Vec<u32>,
    group_vocab: Interner,
    cat_vocab: Vec<Interner>,
    time: Vec<f64>,
    time_bad: u64,
    counts: Vec<CellCounts>,
    blank_lines: u64,
    skipped_rows: u64,
    skipped_lines: Vec<u64>,
    rows: usize,
    remap: Vec<u32>,
}

impl<'a> Assembler<'a> {
    pub fn new(path: &'a Path, plan: &'a Plan, opts: &'a LoadOptions) -> Assembler<'a> {
        Assembler {
            path,
            plan,
            opts,
            x: Vec::new(),
            cats: Vec::new(),
            labels: Vec::new(),
            label_vocab: Interner::default(),
            groups: Vec::new(),
            group_vocab: Interner::default(),
            cat_vocab: (0..plan.categorical.len())
                .map(|_| Interner::default())
                .collect(),
            time: Vec::new(),
            time_bad: 0,
            counts: vec![CellCounts::default(); plan.names.len()],
            blank_lines: 0,
            skipped_rows: 0,
            skipped_lines: Vec::new(),
            rows: 0,
            remap: Vec::new(),
        }
    }

    pub fn push(&mut self, chunk: ChunkOut) {
        self.rows += chunk.rows;
        self.x.extend_from_slice(&chunk.x);
        remap_into(
            &mut self.remap,
            &chunk.label_vocab,
            &mut self.label_vocab,
            &chunk.labels,
            &mut self.labels,
        );
        remap_into(
            &mut self.remap,
            &chunk.group_vocab,
            &mut self.group_vocab,
            &chunk.groups,
            &mut self.groups,
        );
        let n_cat = self.plan.categorical.len();
        if n_cat > 0 {
            let start = self.cats.len();
            self.cats.extend_from_slice(&chunk.cats);
            for slot in 0..n_cat {
                self.remap.clear();
                let global = &mut self.cat_vocab[slot];
                self.remap.extend(
                    chunk.cat_vocab[slot]
                        .names
                        .iter()
                        .map(|(v, line)| global.id(v, *line)),
                );
                for code in self.cats[start..].iter_mut().skip(slot).step_by(n_cat) {
                    *code = self.remap[*code as usize];
                }
            }
        }
        self.time.extend_from_slice(&chunk.time);
        self.time_bad += chunk.time_bad;
        for (a, b) in self.counts.iter_mut().zip(&chunk.counts) {
            a.merge(b);
        }
        self.blank_lines += chunk.blank_lines;
        self.skipped_rows += chunk.skipped_rows;
        for line in chunk.skipped_lines {
            if self.skipped_lines.len() < 20 {
                self.skipped_lines.push(line);
            }
        }
    }

    pub fn finish(self) -> Result<Dataset, DatasetError> {
        let Assembler {
            path,
            plan,
            opts,
            x,
            cats,
            labels,
            label_vocab,
            groups,
            group_vocab,
            cat_vocab,
            time,
            time_bad,
            mut counts,
            ..
        } = self;
        let rows = self.rows;
        if rows == 0 {
            return Err(DatasetError::NoRows {
                path: path.to_path_buf(),
            });
        }
        let mut warnings = plan.warnings.clone();
        // Labels: raw strings -> raw classes -> classes.
        let mut label_map = match &opts.label_map {
            Some(map) => map.clone(),
            None => {
                let seen: Vec<String> = label_vocab
                    .names
                    .iter()
                    .map(|(v, _)| String::from_utf8_lossy(v).trim().to_string())
                    .collect();
                let raw: Vec<RawClass> = match plan.known {
                    _ if !plan.uses_labels() => vec![RawClass::new(
                        "unlabelled",
                        "unlabelled",
                        "unlabelled",
                        true,
                    )],
                    KnownSchema::NslKdd => labels::nsl_kdd_raw_classes(),
                    // The published dataset's numeric scenario ids (an unknown number is an
                    // error below); nadir's own cic output labelled by rules carries
                    // free-text labels instead.
                    KnownSchema::KubernetesMisuse
                        if seen.iter().all(|l| l.parse::<f64>().is_ok()) =>
                    {
                        labels::k8s_raw_classes()
                    }
                    _ => labels::generic_raw_classes(seen),
                };
                LabelMap::build(opts.label_mode, raw)
            }
        };
        // Under `unlabelled`, which rows the table's own label column calls attacks.
        let labelled_attack = plan.labels_ignored.then(|| {
            let attack: Vec<bool> = label_vocab
                .names
                .iter()
                .map(|(v, _)| {
                    let text = String::from_utf8_lossy(v);
                    !text.trim().is_empty() && !labels::is_benign_label(&text)
                })
                .collect();
            labels.iter().map(|&l| attack[l as usize]).collect()
        });
        let mut string_to_raw = Vec::with_capacity(label_vocab.names.len());
        for (value, line) in label_vocab.names.iter().filter(|_| plan.uses_labels()) {
            let text = String::from_utf8_lossy(value);
            let id = label_map.raw_id(&text).or_else(|| {
                // `3.0` for `3`.
                text.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.fract() == 0.0 && *v >= 0.0)
                    .and_then(|v| label_map.raw_id(&format!("{}", v as u64)))
            });
            // A given map (a bundle's, the training file's) meets labels its data never had.
            let id = match id {
                None if opts.label_map.is_some() => label_map.admit(&text),
                id => id,
            };
            match id {
                Some(id) => string_to_raw.push(id),
                None => {
                    return Err(DatasetError::UnknownLabel {
                        path: path.to_path_buf(),
                        line: *line,
                        column: plan.label_name.clone().unwrap_or_default(),
                        value: text.into_owned(),
                        known: format!("known: {}", label_map.known_labels(15)),
                    });
                }
            }
        }
        let y_raw: Vec<u32> = if plan.uses_labels() {
            labels.iter().map(|&l| string_to_raw[l as usize]).collect()
        } else {
            vec![0; rows]
        };
        let y: Vec<u32> = y_raw
            .iter()
            .map(|&r| label_map.raw_to_class[r as usize])
            .collect();
        let mut label_counts: Vec<(String, String, u64)> = label_map
            .raw_classes
            .iter()
            .zip(&label_map.raw_names)
            .map(|(l, n)| (l.clone(), n.clone(), 0))
            .collect();
        for &r in &y_raw {
            label_counts[r as usize].2 += 1;
        }
        // Groups.
        let (groups, group_names) = match &opts.group_by {
            GroupBy::Column(_) => (
                groups,
                group_vocab
                    .names
                    .iter()
                    .map(|(v, _)| String::from_utf8_lossy(v).into_owned())
                    .collect(),
            ),
            // Attack scenarios are the groups; benign rows belong to none of them.
            GroupBy::Label => (
                y_raw
                    .iter()
                    .map(|&r| {
                        if labels::is_benign_label(&label_map.raw_classes[r as usize]) {
                            UNGROUPED
                        } else {
                            r
                        }
                    })
                    .collect(),
                label_map.raw_names.clone(),
            ),
            GroupBy::File => (vec![0; rows], vec![path.display().to_string()]),
        };
        // Features: direct, or expanded with one-hot categories.
        let n_num = plan.n_numeric();
        let mut unknown_categories = Vec::new();
        let (x, columns) = if plan.is_direct() {
            (Matrix::new(rows, n_num, x)?, plan.numeric_names.clone())
        } else {
            expand_categories(plan, rows, &x, &cats, &cat_vocab, &mut unknown_categories)?
        };
        if !unknown_categories.is_empty() {
            let total: u64 = unknown_categories
                .iter()
                .map(|u: &(String, String, u64)| u.2)
                .sum();
            warnings.push(format!("{total} categorical value(s) not in the training categories were encoded as all zeros"));
        }
        // nadir's own tables keep time in integer nanoseconds (`first_ts_ns`); rows carry seconds.
        let time = plan.has_time.then(|| {
            if plan.time_in_ns {
                time.into_iter().map(|t| t / 1e9).collect()
            } else {
                time
            }
        });
        if time_bad > 0 {
            warnings.push(format!(
                "{time_bad} timestamp(s) could not be parsed (time = NaN, sorted last)"
            ));
        }
        let report_columns = plan
            .names
            .iter()
            .zip(&plan.roles)
            .zip(counts.iter_mut())
            .map(|((name, role), counts)| ColumnReport {
                name: name.clone(),
                role: Some(*role),
                counts: std::mem::take(counts),
            })
            .collect();
        let report = LoadReport {
            path: path.to_path_buf(),
            known_schema: Some(plan.known),
            rows,
            source_columns: plan.names.len(),
            raw_feature_columns: plan.raw_feature_columns,
            columns: report_columns,
            dropped: plan.dropped.clone(),
            blank_lines: self.blank_lines,
            skipped_rows: self.skipped_rows,
            skipped_lines: self.skipped_lines,
            unknown_categories,
            label_counts,
            warnings,
        };
        Ok(Dataset {
            schema: FeatureSchema { columns },
            x,
            y,
            y_raw,
            labels: label_map,
            groups,
            group_names,
            time,
            labelled_attack,
            report,
        })
    }
}

fn remap_into(
    remap: &mut Vec<u32>,
    local: &Interner,
    global: &mut Interner,
    codes: &[u32],
    out: &mut Vec<u32>,
) {
    remap.clear();
    remap.extend(local.names.iter().map(|(v, line)| global.id(v, *line)));
    out.extend(codes.iter().map(|&c| remap[c as usize]));
}

fn expand_categories(
    plan: &Plan,
    rows: usize,
    x: &[f32],
    cats: &[u32],
    cat_vocab: &[Interner],
    unknown: &mut Vec<(String, String, u64)>,
) -> Result<(Matrix, Vec<String>), DatasetError> {
    let n_num = plan.n_numeric();
    let n_cat = plan.categorical.len();
    let vocab_text: Vec<Vec<String>> = cat_vocab
        .iter()
        .map(|v| {
            v.names
                .iter()
                .map(|(b, _)| String::from_utf8_lossy(b).trim().to_string())
                .collect()
        })
        .collect();
    // Output columns, and for each slot: global code -> output column (or none).
    let mut columns = Vec::new();
    let mut targets: Vec<Vec<Option<usize>>> =
        vocab_text.iter().map(|v| vec![None; v.len()]).collect();
    let mut numeric_pos = Vec::new();
    for item in &plan.layout {
        match item {
            LayoutItem::Numeric(i) => {
                numeric_pos.push((*i, columns.len()));
                columns.push(plan.numeric_names[*i].clone());
            }
            LayoutItem::AllCategories(slot) => {
                let mut values: Vec<(usize, &String)> =
                    vocab_text[*slot].iter().enumerate().collect();
                values.sort_by(|a, b| a.1.cmp(b.1));
                for (code, value) in values {
                    targets[*slot][code] = Some(columns.len());
                    columns.push(format!("{}={value}", plan.categorical[*slot]));
                }
            }
            LayoutItem::Category(slot, value) => {
                if let Some(code) = vocab_text[*slot].iter().position(|v| v == value) {
                    targets[*slot][code] = Some(columns.len());
                }
                columns.push(format!("{}={value}", plan.categorical[*slot]));
            }
        }
    }
    let width = columns.len();
    let mut out = Matrix::zeros(rows, width);
    let mut unknown_counts: Vec<Vec<u64>> = vocab_text.iter().map(|v| vec![0; v.len()]).collect();
    for r in 0..rows {
        let dst = out.row_mut(r);
        let src = &x[r * n_num..(r + 1) * n_num];
        for &(i, pos) in &numeric_pos {
            dst[pos] = src[i];
        }
        for slot in 0..n_cat {
            let code = cats[r * n_cat + slot] as usize;
            match targets[slot][code] {
                Some(pos) => dst[pos] = 1.0,
                None => unknown_counts[slot][code] += 1,
            }
        }
    }
    for (slot, counts) in unknown_counts.iter().enumerate() {
        for (code, &count) in counts.iter().enumerate() {
            if count > 0 {
                unknown.push((
                    plan.categorical[slot].clone(),
                    vocab_text[slot][code].clone(),
                    count,
                ));
            }
        }
    }
    Ok((out, columns))
}
