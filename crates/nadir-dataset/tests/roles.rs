//! Column roles declared by a table's writer decide what is a feature, not the column names:
//! a time column under a name no rule knows never reaches the model.

use std::path::{Path, PathBuf};

use nadir_dataset::{load, DatasetError, LoadOptions};
use nadir_features::output::{open_sink, ColumnType, OutputFormat, TableSchema, Value};
use nadir_features::roles::{sidecar_path, ColumnRole, DeclaredRoles};

/// 40 rows where `capture_clock` alone separates the classes (attacks all come later) and
/// `hops`/`size` do not.
fn rows() -> Vec<(i64, f64, f64, &'static str)> {
    (0..40)
        .map(|i| {
            let attack = i >= 20;
            let clock = 1_000 + i64::from(i) * 10 + if attack { 5_000 } else { 0 };
            (
                clock,
                f64::from(i % 7),
                f64::from((i * 13) % 11),
                if attack { "1" } else { "0" },
            )
        })
        .collect()
}

fn schema() -> TableSchema {
    TableSchema::new()
        .with("capture_clock", ColumnType::Int64, ColumnRole::Time)
        .with("hops", ColumnType::Float64, ColumnRole::Feature)
        .with("size", ColumnType::Float64, ColumnRole::Feature)
        .with("label", ColumnType::Utf8, ColumnRole::Label)
}

fn write_table(dir: &Path, format: OutputFormat) -> PathBuf {
    let path = dir.join(format!("flows.{}", format.extension()));
    let file = std::fs::File::create(&path).unwrap();
    let mut sink = open_sink(format, schema(), Box::new(file)).unwrap();
    for (clock, hops, size, label) in rows() {
        sink.put(Value::I64(clock));
        sink.put(Value::F64(hops));
        sink.put(Value::F64(size));
        sink.put(Value::Str(label));
        sink.end_row().unwrap();
    }
    sink.finish().unwrap();
    path
}

fn options() -> LoadOptions {
    LoadOptions {
        label_column: Some("label".into()),
        ..LoadOptions::default()
    }
}

#[test]
fn declared_time_column_is_no_feature_in_csv_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_table(dir.path(), OutputFormat::Csv);
    schema().declared_roles().write_sidecar(&csv).unwrap();
    let parquet = write_table(dir.path(), OutputFormat::Parquet);
    assert!(
        !sidecar_path(&parquet).exists(),
        "Parquet carries its roles inside"
    );
    for path in [csv, parquet] {
        let data = load(&path, &options()).unwrap();
        assert_eq!(data.schema.columns, ["hops", "size"], "{}", path.display());
        // Still the time order of the rows, for time splits.
        let time = data.time.expect("time column");
        assert_eq!(time[0], 1_000.0);
        assert_eq!(time[39], 6_390.0);
        assert_eq!(data.y.iter().filter(|&&y| y == 1).count(), 20);
        assert!(
            data.report
                .warnings
                .iter()
                .all(|w| !w.contains("declares no column roles")),
            "{:?}",
            data.report.warnings
        );
    }
}

#[test]
fn table_without_declared_roles_falls_back_to_names_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_table(dir.path(), OutputFormat::Csv);
    let data = load(&csv, &options()).unwrap();
    // No rule knows `capture_clock`: it is a feature, and the warning says what was decided.
    assert_eq!(data.schema.columns, ["capture_clock", "hops", "size"]);
    let warning = data
        .report
        .warnings
        .iter()
        .find(|w| w.contains("declares no column roles"))
        .expect("a warning about the missing declaration");
    assert!(warning.contains("identity none; time none"), "{warning}");

    // nadir's own tables from before the declaration: the name rules know their columns.
    let old = dir.path().join("old_packets.csv");
    std::fs::write(
        &old,
        "flow_id,src_ip,first_ts_ns,last_ts_ns,end_reason,window_index,padding,f0_ip_len,label\n\
         a,10.0.0.1,5,6,idle_expired,0,0,60,0\n\
         b,10.0.0.2,7,9,end_of_input,1,2,1500,1\n",
    )
    .unwrap();
    let data = load(&old, &options()).unwrap();
    assert_eq!(data.schema.columns, ["f0_ip_len"]);
    // `first_ts_ns` counts nanoseconds; the rows' time is in seconds.
    assert_eq!(data.time.as_deref(), Some(&[5e-9, 7e-9][..]));
    let warning = data
        .report
        .warnings
        .iter()
        .find(|w| w.contains("declares no column roles"))
        .unwrap();
    assert!(
        warning.contains(
            "identity `flow_id`, `src_ip`, `window_index`; time `first_ts_ns`, `last_ts_ns`"
        ),
        "{warning}"
    );
}

#[test]
fn declaration_that_misses_a_column_or_cannot_be_read_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_table(dir.path(), OutputFormat::Csv);
    // Declares two of the four columns: the others fall to the name rules, named.
    DeclaredRoles::new([
        ("capture_clock".to_string(), ColumnRole::Time),
        ("label".to_string(), ColumnRole::Label),
    ])
    .write_sidecar(&csv)
    .unwrap();
    let data = load(&csv, &options()).unwrap();
    assert_eq!(data.schema.columns, ["hops", "size"]);
    assert!(
        data.report
            .warnings
            .iter()
            .any(|w| w.contains("do not name `hops`, `size`")),
        "{:?}",
        data.report.warnings
    );

    std::fs::write(sidecar_path(&csv), "{ not json").unwrap();
    let err = load(&csv, &options()).unwrap_err();
    assert!(matches!(err, DatasetError::DeclaredRoles { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("flows.csv.roles.json") && text.contains("fall back"),
        "{text}"
    );
}
