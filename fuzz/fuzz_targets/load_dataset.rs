//! Any bytes as a dataset file (CSV, gzip CSV or Parquet, sniffed or forced): loading
//! must end with a dataset or an error, never panic. The first byte picks the options.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nadir_dataset::load::{FileFormat, LoadOptions, RowErrorPolicy};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    // The loader takes paths only: one scratch file per fuzzing process.
    let path = std::env::temp_dir().join(format!("nadir-fuzz-dataset-{}", std::process::id()));
    if std::fs::write(&path, body).is_err() {
        return;
    }
    let opts = LoadOptions {
        format: match selector & 3 {
            1 => Some(FileFormat::Csv),
            2 => Some(FileFormat::Parquet),
            _ => None,
        },
        on_bad_row: if selector & 4 != 0 {
            RowErrorPolicy::Skip
        } else {
            RowErrorPolicy::Fail
        },
        unlabelled: selector & 8 != 0,
        threads: 1,
        ..LoadOptions::default()
    };
    // load_many runs the later-file path (schema and label map from the first file).
    let result = if selector & 16 != 0 {
        nadir_dataset::load::load_many(&[path.clone(), path.clone()], &opts)
    } else {
        nadir_dataset::load::load(&path, &opts)
    };
    if let Ok(dataset) = result {
        assert_eq!(dataset.y.len(), dataset.x.rows);
    }
});
