//! Parquet input (arrow record batches), through the same column plan and assembly as CSV.

use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use nadir_features::roles::{DeclaredRoles, PARQUET_KEY};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::assemble::{Assembler, ChunkOut};
use super::cell::{classify, parse_timestamp};
use super::plan::{Action, Plan};
use super::{Dataset, LoadOptions};
use crate::error::DatasetError;

pub(crate) fn load_parquet(path: &Path, opts: &LoadOptions) -> Result<Dataset, DatasetError> {
    let err = |message: String| DatasetError::Parquet {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| err(e.to_string()))?;
    let header: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let declared = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == PARQUET_KEY))
        .and_then(|e| e.value.as_deref())
        .map(DeclaredRoles::from_json)
        .transpose()
        .map_err(|message| DatasetError::DeclaredRoles {
            path: path.to_path_buf(),
            message,
        })?;
    let plan = Plan::build(path, &header, true, declared.as_ref(), opts)?;
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| err(e.to_string()))?;
    let mut assembler = Assembler::new(path, &plan, opts);
    let n_num = plan.n_numeric();
    let n_cat = plan.categorical.len();
    // "Line" of a Parquet row = its 1-based row number.
    let mut first_row = 1u64;
    for batch in reader {
        let batch = batch.map_err(|e| err(e.to_string()))?;
        let n = batch.num_rows();
        let mut out = ChunkOut::new(&plan);
        out.rows = n;
        out.x = vec![f32::NAN; n * n_num];
        out.cats = vec![0; n * n_cat];
        for (col, &action) in plan.actions.iter().enumerate() {
            let array = batch.column(col);
            let column_err = |e: arrow::error::ArrowError| DatasetError::BadColumn {
                path: path.to_path_buf(),
                column: plan.names[col].clone(),
                message: e.to_string(),
            };
            match action {
                Action::Skip => {}
                Action::Feature(i) => {
                    let values = cast(array, &DataType::Float64).map_err(column_err)?;
                    let values = values.as_primitive::<Float64Type>();
                    let counts = &mut out.counts[col];
                    for r in 0..n {
                        out.x[r * n_num + i] = if values.is_null(r) {
                            counts.empty += 1;
                            f32::NAN
                        } else {
                            classify(values.value(r), counts)
                        };
                    }
                }
                _ => {
                    let text = cast(array, &DataType::Utf8).map_err(column_err)?;
                    let text = text.as_string::<i32>();
                    for r in 0..n {
                        let line = first_row + r as u64;
                        let value = if text.is_null(r) { "" } else { text.value(r) };
                        match action {
                            Action::Time(feature) => {
                                let t = parse_timestamp(value.as_bytes());
                                if t.is_none() {
                                    out.time_bad += 1;
                                }
                                let t = t.unwrap_or(f64::NAN);
                                out.time.push(t);
                                if let Some(i) = feature {
                                    out.x[r * n_num + i] = t as f32;
                                }
                            }
                            Action::Category(slot) => {
                                out.cats[r * n_cat + slot] =
                                    out.cat_vocab[slot].id(value.trim().as_bytes(), line)
                            }
                            Action::Label => {
                                if value.trim().is_empty() {
                                    return Err(DatasetError::UnknownLabel {
                                        path: path.to_path_buf(),
                                        line,
                                        column: plan.names[col].clone(),
                                        value: String::new(),
                                        known: "the label cell is empty".into(),
                                    });
                                }
                                let id = out.label_vocab.id(value.trim().as_bytes(), line);
                                out.labels.push(id);
                            }
                            Action::Group => {
                                let id = out.group_vocab.id(value.trim().as_bytes(), line);
                                out.groups.push(id);
                            }
                            Action::Skip | Action::Feature(_) => {}
                        }
                    }
                }
            }
        }
        first_row += n as u64;
        assembler.push(out);
    }
    assembler.finish()
}
