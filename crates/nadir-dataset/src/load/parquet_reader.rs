//! Parquet input (arrow record batches), through the same column plan and assembly as CSV.

use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use arrow::record_batch::RecordBatch;
use nadir_features::roles::{DeclaredRoles, PARQUET_KEY};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

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
    let mut reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| err(e.to_string()))?;
    let mut assembler = Assembler::new(path, &plan, opts);
    let n_num = plan.n_numeric();
    let n_cat = plan.categorical.len();
    // "Line" of a Parquet row = its 1-based row number.
    let mut first_row = 1u64;
    while let Some(batch) = next_batch(&mut reader) {
        let batch = batch.map_err(err)?;
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
                                if value.trim().is_empty() && !plan.labels_ignored {
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

/// The next record batch, with a panic of the Parquet decoder turned into an error.
///
/// parquet 60.1/60.2 index out of bounds on corrupt pages instead of returning an error (found
/// by `fuzz/fuzz_targets/load_dataset.rs`: a BYTE_STREAM_SPLIT page shorter than its column
/// type needs, `byte_stream_split_decoder.rs`); no version fixes it yet. The reader is dropped
/// after such an error, so no broken state is used again.
pub fn next_batch(reader: &mut ParquetRecordBatchReader) -> Option<Result<RecordBatch, String>> {
    let decoded = quiet_panics::catch(|| reader.next());
    match decoded {
        Ok(batch) => batch.map(|b| b.map_err(|e| e.to_string())),
        Err(panic) => Some(Err(format!(
            "corrupt page data: the Parquet decoder failed ({panic})"
        ))),
    }
}

/// `catch_unwind` whose caught panics print nothing: a corrupt file is an error for the caller
/// to report, not a crash report on stderr. Panics elsewhere, on any thread, still reach the
/// hook that was installed before.
mod quiet_panics {
    use std::cell::Cell;
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::Once;

    thread_local! {
        static CATCHING: Cell<bool> = const { Cell::new(false) };
    }

    pub(super) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            let previous = panic::take_hook();
            panic::set_hook(Box::new(move |info| {
                if !CATCHING.with(Cell::get) {
                    previous(info);
                }
            }));
        });
        let was = CATCHING.with(|c| c.replace(true));
        // Unwind safety: the caller drops the reader after an error and never reads it again.
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        CATCHING.with(|c| c.set(was));
        result.map_err(|payload| {
            payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into())
        })
    }
}
