//! Bad input: each case gets a specific error naming the file and line, or a counted skip.

use std::io::Write;
use std::path::PathBuf;

use nadir_dataset::{
    load, DatasetError, FeatureSchema, LoadOptions, Matrix, Pipeline, PipelineSpec, RowErrorPolicy,
};

fn write(dir: &tempfile::TempDir, name: &str, text: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text)
        .unwrap();
    path
}

const GOOD: &str = "a,b,c,Label\n1,2,3,benign\n4,5,6,attack\n7,8,9,benign\n";

#[test]
fn generic_csv_loads_with_label_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "good.csv", GOOD.as_bytes());
    let ds = load(&path, &LoadOptions::default()).unwrap();
    assert_eq!(ds.schema.columns, ["a", "b", "c"]);
    assert_eq!(ds.x.data, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    assert_eq!(ds.y, [0, 1, 0]);
    let named = LoadOptions {
        label_column: Some("c".into()),
        ..LoadOptions::default()
    };
    let by_c = load(&path, &named).unwrap();
    assert_eq!(by_c.schema.columns, ["a", "b", "Label"]);
    assert_eq!(by_c.labels.raw_classes, ["3", "6", "9"]);
}

#[test]
fn missing_and_renamed_columns_are_listed_against_the_expected_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "renamed.csv", b"a,bee,Label\n1,2,benign\n");
    let opts = LoadOptions {
        schema_hint: Some(FeatureSchema::new(["a", "b", "c"])),
        ..LoadOptions::default()
    };
    let err = load(&path, &opts).unwrap_err();
    let DatasetError::SchemaMismatchInFile { path: p, mismatch } = &err else {
        panic!("{err}")
    };
    assert_eq!(p, &path);
    assert_eq!(mismatch.missing, ["b", "c"]);
    assert_eq!(mismatch.extra, ["bee"]);
    let text = err.to_string();
    assert!(
        text.contains("renamed.csv") && text.contains("`c`") && text.contains("`bee`"),
        "{text}"
    );
}

#[test]
fn another_column_order_is_matched_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "order.csv",
        b"Label,c,a,b\nbenign,3,1,2\nattack,6,4,5\n",
    );
    let opts = LoadOptions {
        schema_hint: Some(FeatureSchema::new(["a", "b", "c"])),
        ..LoadOptions::default()
    };
    let ds = load(&path, &opts).unwrap();
    assert_eq!(ds.schema.columns, ["a", "b", "c"]);
    assert_eq!(ds.x.data, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert!(ds
        .report
        .warnings
        .iter()
        .any(|w| w.contains("another order")));
}

#[test]
fn absent_label_column_names_the_column_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "nolabel.csv", b"a,b\n1,2\n");
    let err = load(&path, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, DatasetError::LabelColumnAbsent { column, .. } if column == "Label"),
        "{err}"
    );
    assert!(err.to_string().contains("nolabel.csv"));
    let unlabelled = LoadOptions {
        unlabelled: true,
        ..LoadOptions::default()
    };
    assert_eq!(load(&path, &unlabelled).unwrap().rows(), 1);
}

#[test]
fn binary_file_is_not_csv() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "capture.pcap",
        &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 10, b'\n'],
    );
    let err = load(&path, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DatasetError::NotCsv { .. }), "{err}");
}

#[test]
fn header_only_and_empty_files_have_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("header.csv", "a,Label\n"), ("empty.csv", "")] {
        let path = write(&dir, name, text.as_bytes());
        let err = load(&path, &LoadOptions::default()).unwrap_err();
        assert!(matches!(err, DatasetError::NoRows { .. }), "{name}: {err}");
    }
}

#[test]
fn wrong_field_count_fails_with_line_or_is_a_counted_skip() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "ragged.csv",
        b"a,b,Label\n1,2,benign\n3,benign\n5,6,attack\n7,8,9,attack\n",
    );
    let err = load(&path, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DatasetError::FieldCount {
                line: 3,
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("ragged.csv: line 3"));
    let skip = LoadOptions {
        on_bad_row: RowErrorPolicy::Skip,
        ..LoadOptions::default()
    };
    let ds = load(&path, &skip).unwrap();
    assert_eq!(ds.rows(), 2);
    assert_eq!(ds.report.skipped_rows, 2);
    assert_eq!(ds.report.skipped_lines, [3, 5]);
}

#[test]
fn junk_nan_inf_and_empty_cells_are_counted_per_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "dirty.csv",
        b"a,b,Label\r\nNaN,Infinity,0\r\n,-Infinity,1\r\nzz,1e3,0\r\n\r\n",
    );
    let ds = load(&path, &LoadOptions::default()).unwrap();
    let a = &ds.report.column("a").unwrap().counts;
    let b = &ds.report.column("b").unwrap().counts;
    assert_eq!((a.nan, a.empty, a.junk), (1, 1, 1));
    assert_eq!(a.first_junk, Some((4, "zz".to_string())));
    assert_eq!((b.pos_inf, b.neg_inf), (1, 1));
    assert_eq!(ds.x.get(2, 1), 1000.0);
    assert_eq!(ds.report.blank_lines, 1);
}

#[test]
fn unknown_label_of_a_known_schema_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let header = nadir_features::cic::columns::CIC_COLUMNS.join(",");
    let row = |label: &str| {
        let mut cells = vec!["0"; 86];
        cells[0] = "f";
        cells[6] = "2023-03-19 15:02:20";
        format!("{},{label}\n", cells.join(","))
    };
    let text = format!("{header}\n{}{}", row("0"), row("12"));
    let path = write(&dir, "k8s.csv", text.as_bytes());
    let err = load(&path, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, DatasetError::UnknownLabel { line: 3, value, .. } if value == "12"),
        "{err}"
    );
    // nadir's own cic output labelled by rules: free-text labels become classes.
    let text = format!(
        "{header}\n{}{}{}",
        row("benign"),
        row("nmap-scan"),
        row("benign")
    );
    let path = write(&dir, "rules.csv", text.as_bytes());
    let ds = load(&path, &LoadOptions::default()).unwrap();
    assert_eq!(ds.labels.raw_classes, ["benign", "nmap-scan"]);
    assert_eq!(ds.y, [0, 1, 0]);
}

#[test]
fn binary_bundle_reads_an_attack_label_it_never_saw_as_an_attack() {
    let dir = tempfile::tempdir().unwrap();
    let train = write(&dir, "train.csv", GOOD.as_bytes());
    let binary = load(&train, &LoadOptions::default()).unwrap().labels;
    let path = write(
        &dir,
        "new.csv",
        b"a,b,c,Label\n1,2,3,portscan\n4,5,6,BENIGN\n7,8,9,attack\n",
    );
    let with_map = |map| LoadOptions {
        label_map: Some(map),
        ..LoadOptions::default()
    };
    let ds = load(&path, &with_map(binary)).unwrap();
    assert_eq!(ds.y, [1, 0, 1], "portscan is an attack, BENIGN benign");
    assert_eq!(ds.labels.classes, ["benign", "attack"]);
    let portscan = ds.labels.raw_id("portscan").unwrap();
    assert_eq!(ds.labels.raw_names[portscan as usize], "portscan");

    // Multiclass classes are fixed by training: the error lists labels by name.
    let k8s = nadir_dataset::LabelMap::build(
        nadir_dataset::LabelMode::Multiclass,
        nadir_dataset::labels::k8s_raw_classes(),
    );
    let err = load(&path, &with_map(k8s)).unwrap_err().to_string();
    assert!(err.contains("unknown label `portscan`"), "{err}");
    assert!(err.contains("3 (Node-RED RCE)"), "{err}");
    assert!(err.contains("11 (DSB Nuclei Scan)"), "{err}");
}

#[test]
fn quoted_fields_with_commas_and_newlines_parse() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "quoted.csv",
        b"a,note,Label\n1,\"x, y\",benign\n2,\"two\nlines\",attack\n3,z,benign\n",
    );
    let opts = LoadOptions {
        features: nadir_dataset::FeaturePolicy {
            drop: vec!["note".into()],
            ..Default::default()
        },
        ..LoadOptions::default()
    };
    let ds = load(&path, &opts).unwrap();
    assert_eq!(ds.x.data, [1.0, 2.0, 3.0]);
    assert_eq!(ds.y, [0, 1, 0]);
}

#[test]
fn gzip_and_parquet_load_like_plain_csv() {
    let dir = tempfile::tempdir().unwrap();
    let gz_path = dir.path().join("good.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz_path).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(GOOD.as_bytes()).unwrap();
    enc.finish().unwrap();
    let plain = load(
        &write(&dir, "good.csv", GOOD.as_bytes()),
        &LoadOptions::default(),
    )
    .unwrap();
    let gz = load(&gz_path, &LoadOptions::default()).unwrap();
    assert_eq!(
        (gz.x.clone(), gz.y.clone()),
        (plain.x.clone(), plain.y.clone())
    );

    use arrow::array::{ArrayRef, Float64Array, StringArray};
    use std::sync::Arc;
    let batch = arrow::record_batch::RecordBatch::try_from_iter([
        (
            "a",
            Arc::new(Float64Array::from(vec![1.0, 4.0, 7.0])) as ArrayRef,
        ),
        (
            "b",
            Arc::new(Float64Array::from(vec![Some(2.0), None, Some(8.0)])) as ArrayRef,
        ),
        (
            "c",
            Arc::new(Float64Array::from(vec![3.0, 6.0, f64::INFINITY])) as ArrayRef,
        ),
        (
            "Label",
            Arc::new(StringArray::from(vec!["benign", "attack", "benign"])) as ArrayRef,
        ),
    ])
    .unwrap();
    let pq_path = dir.path().join("good.parquet");
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&pq_path).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let pq = load(&pq_path, &LoadOptions::default()).unwrap();
    assert_eq!(pq.schema, plain.schema);
    assert_eq!(pq.y, plain.y);
    assert_eq!(pq.report.column("b").unwrap().counts.empty, 1);
    assert_eq!(pq.report.column("c").unwrap().counts.pos_inf, 1);
    assert_eq!(pq.x.get(0, 0), 1.0);
}

#[test]
fn pipeline_fitted_on_one_schema_refuses_another_listing_differences() {
    let schema = FeatureSchema::new(["a", "b", "c"]);
    let x = Matrix::from_rows(&[
        vec![1.0, 2.0, 3.0],
        vec![2.0, 1.0, 0.0],
        vec![5.0, 5.0, 1.0],
    ])
    .unwrap();
    let pipeline = Pipeline::fit(&PipelineSpec::default(), &x, &schema).unwrap();
    let other = FeatureSchema::new(["b", "a", "d"]);
    let err = pipeline.transform_checked(&x, &other).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("missing 1: `c`")
            && text.contains("extra 1: `d`")
            && text.contains("reordered"),
        "{text}"
    );
    assert!(pipeline.transform(&Matrix::zeros(2, 2)).is_err());
}

#[test]
fn nsl_kdd_unknown_test_category_is_all_zeros_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let row = |proto: &str, service: &str, label: &str| {
        let mut cells: Vec<String> = (0..41).map(|i| format!("{}", i % 3)).collect();
        cells[1] = proto.into();
        cells[2] = service.into();
        cells[3] = "SF".into();
        format!("{},{label},20\n", cells.join(","))
    };
    let train_text = [
        row("tcp", "http", "normal"),
        row("udp", "domain_u", "neptune"),
        row("tcp", "ftp", "smurf"),
    ]
    .concat();
    let test_text = [row("icmp", "http", "normal"), row("tcp", "newsvc", "mscan")].concat();
    let train = load(
        &write(&dir, "train.txt", train_text.as_bytes()),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(
        train.report.known_schema,
        Some(nadir_dataset::KnownSchema::NslKdd)
    );
    // 41 features - 3 symbolic - num_outbound_cmds = 37 numeric; + 2 protocols, 3 services, 1 flag.
    assert_eq!(train.x.cols, 37 + 2 + 3 + 1);
    assert!(train.schema.index_of("service=http").is_some());
    let opts = LoadOptions {
        schema_hint: Some(train.schema.clone()),
        label_map: Some(train.labels.clone()),
        ..LoadOptions::default()
    };
    let test = load(&write(&dir, "test.txt", test_text.as_bytes()), &opts).unwrap();
    assert_eq!(test.schema, train.schema);
    let mut unknown = test.report.unknown_categories.clone();
    unknown.sort();
    assert_eq!(
        unknown,
        [
            ("protocol_type".to_string(), "icmp".to_string(), 1),
            ("service".to_string(), "newsvc".to_string(), 1)
        ]
    );
    let service_cols: Vec<usize> = (0..test.x.cols)
        .filter(|&c| test.schema.columns[c].starts_with("service="))
        .collect();
    assert!(service_cols.iter().all(|&c| test.x.get(1, c) == 0.0));
    assert_eq!(
        test.x.get(0, test.schema.index_of("service=http").unwrap()),
        1.0
    );
    assert_eq!(test.labels.raw_names[test.y_raw[1] as usize], "mscan");
    assert_eq!(test.y, [0, 1]);
}

/// A group split that puts every benign capture on the validation or test side cannot train
/// a classifier: the error names the missing class and the groups on each side.
#[test]
fn group_split_without_a_class_in_training_names_the_groups() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("captures.csv");
    let mut text = String::from("capture,size,label\n");
    for (capture, label) in [
        ("office.pcap", "benign"),
        ("scan.pcap", "scan"),
        ("dos.pcap", "dos"),
    ] {
        for i in 0..20 {
            text.push_str(&format!("{capture},{i},{label}\n"));
        }
    }
    std::fs::write(&path, text).unwrap();
    let data = nadir_dataset::load(
        &path,
        &nadir_dataset::LoadOptions {
            group_by: nadir_dataset::GroupBy::Column("capture".into()),
            ..Default::default()
        },
    )
    .unwrap();
    // Three groups for three sides: each side holds one capture, so training misses a class.
    let spec = nadir_dataset::SplitSpec::Group {
        train: 0.34,
        val: 0.33,
        test: 0.33,
        seed: 1,
    };
    let err = nadir_dataset::split(&data, &spec).unwrap_err().to_string();
    assert!(err.contains("leaves no"), "{err}");
    assert!(err.contains("train groups: "), "{err}");
    for capture in ["office.pcap", "scan.pcap", "dos.pcap"] {
        assert!(err.contains(capture), "{capture} not named: {err}");
    }
}

/// First bytes extracted with another packets x bytes shape than the model reads: the error
/// says both shapes and the extract options that match the model.
#[test]
fn bytes_of_another_shape_than_the_bundle_say_how_to_extract_them() {
    let grid = |packets: usize, bytes: usize| -> Vec<String> {
        (0..packets)
            .flat_map(|p| (0..bytes).map(move |b| format!("b{p}_{b}")))
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bytes.csv");
    let columns = grid(3, 5);
    let mut text = format!("{},label\n", columns.join(","));
    for row in 0..4 {
        let values: Vec<String> = (0..columns.len())
            .map(|i| ((i + row) % 256).to_string())
            .collect();
        text.push_str(&format!("{},benign\n", values.join(",")));
    }
    std::fs::write(&path, text).unwrap();
    let options = nadir_dataset::LoadOptions {
        schema_hint: Some(nadir_dataset::FeatureSchema {
            columns: grid(4, 6),
        }),
        ..Default::default()
    };
    let err = nadir_dataset::load(&path, &options)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("first 4 packets x 6 bytes of each flow, the data hold 3 x 5"),
        "{err}"
    );
    assert!(err.contains("--first-packets 4 --first-bytes 6"), "{err}");
}

/// A Parquet page in BYTE_STREAM_SPLIT encoding shorter than its column type needs (a FLOAT
/// column relabelled DOUBLE in the footer): the parquet crate indexes out of bounds on it.
/// The file is the fuzz corpus entry; its first byte is the fuzz target's option selector.
#[test]
fn parquet_decoder_panic_on_a_short_byte_stream_split_page_is_an_error() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus/load_dataset/parquet-byte-stream-split-short-page");
    let bytes = std::fs::read(&corpus).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "short-page.parquet", &bytes[1..]);
    let opts = LoadOptions {
        unlabelled: true,
        ..LoadOptions::default()
    };
    let err = load(&path, &opts).unwrap_err();
    assert!(matches!(err, DatasetError::Parquet { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("short-page.parquet"), "{message}");
    assert!(message.contains("corrupt page data"), "{message}");
    assert!(message.contains("index out of bounds"), "{message}");
}

/// Unlabelled loading of a labelled table: every row is benign, and the label column (even
/// with empty cells) only tells which rows it calls attacks.
#[test]
fn unlabelled_load_keeps_the_label_column_as_a_contamination_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "labelled.csv",
        b"a,b,Label\n1,2,BENIGN\n3,4,DDoS\n5,6,\n7,8,0\n9,1,PortScan\n",
    );
    let unlabelled = LoadOptions {
        unlabelled: true,
        ..LoadOptions::default()
    };
    let ds = load(&path, &unlabelled).unwrap();
    assert_eq!(ds.rows(), 5);
    assert!(ds.y.iter().all(|&c| c == ds.labels.benign_class));
    assert_eq!(ds.schema.len(), 2, "the label is no feature");
    assert_eq!(
        ds.labelled_attack.as_deref(),
        Some(&[false, true, false, false, true][..])
    );
    assert_eq!(ds.subset(&[1, 2]).labelled_attack, Some(vec![true, false]));
    // Loaded with labels, nothing is set aside.
    let labelled = write(&dir, "labels.csv", b"a,b,Label\n1,2,BENIGN\n3,4,DDoS\n");
    assert_eq!(
        load(&labelled, &LoadOptions::default())
            .unwrap()
            .labelled_attack,
        None
    );
}
