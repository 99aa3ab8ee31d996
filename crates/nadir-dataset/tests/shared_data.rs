//! Loading the real third-party data in `../shared/data`.

use nadir_dataset::labels::NSL_KDD_ATTACKS;
use nadir_dataset::{load, KnownSchema, LabelMode, LoadOptions};

/// The training label counts published in the data README.
const NSL_TRAIN_COUNTS: [(&str, u64); 23] = [
    ("normal", 67343),
    ("neptune", 41214),
    ("satan", 3633),
    ("ipsweep", 3599),
    ("portsweep", 2931),
    ("smurf", 2646),
    ("nmap", 1493),
    ("back", 956),
    ("teardrop", 892),
    ("warezclient", 890),
    ("pod", 201),
    ("guess_passwd", 53),
    ("buffer_overflow", 30),
    ("warezmaster", 20),
    ("land", 18),
    ("imap", 11),
    ("rootkit", 10),
    ("loadmodule", 9),
    ("ftp_write", 8),
    ("multihop", 7),
    ("phf", 4),
    ("perl", 3),
    ("spy", 2),
];

#[test]
fn nsl_kdd_train_and_test_load_with_known_counts_and_training_categories() {
    let Some(train_path) = nadir_testdata::shared_data("nsl-kdd/KDDTrain+.txt.gz") else {
        return;
    };
    let Some(test_path) = nadir_testdata::shared_data("nsl-kdd/KDDTest+.txt.gz") else {
        return;
    };
    let opts = LoadOptions {
        label_mode: LabelMode::Binary,
        ..LoadOptions::default()
    };
    let train = load(&train_path, &opts).unwrap();
    assert_eq!(train.report.known_schema, Some(KnownSchema::NslKdd));
    assert_eq!(train.rows(), 125_973);
    assert_eq!(train.report.source_columns, 43);
    assert_eq!(train.report.raw_feature_columns, 41);
    assert_eq!(train.report.dropped, ["num_outbound_cmds"]);
    for (name, count) in NSL_TRAIN_COUNTS {
        let got = train
            .report
            .label_counts
            .iter()
            .find(|(l, _, _)| l == name)
            .map(|c| c.2);
        assert_eq!(got, Some(count), "{name}");
    }
    let attacks = train.y.iter().filter(|&&c| c == 1).count();
    assert_eq!(attacks, 58_630);
    // 41 - 3 symbolic - num_outbound_cmds = 37 numeric, + one-hot (3 protocols, 11 flags, ...).
    let one_hot: Vec<&String> = train
        .schema
        .columns
        .iter()
        .filter(|c| c.contains('='))
        .collect();
    assert_eq!(
        one_hot
            .iter()
            .filter(|c| c.starts_with("protocol_type="))
            .count(),
        3
    );
    assert_eq!(
        one_hot.iter().filter(|c| c.starts_with("flag=")).count(),
        11
    );
    assert_eq!(train.x.cols, 37 + one_hot.len());
    // Every row has exactly one protocol bit set.
    let proto: Vec<usize> = (0..train.x.cols)
        .filter(|&c| train.schema.columns[c].starts_with("protocol_type="))
        .collect();
    assert!((0..train.rows()).all(|r| proto.iter().map(|&c| train.x.get(r, c)).sum::<f32>() == 1.0));

    // Test with the training schema: same columns, categories from training only.
    let test_opts = LoadOptions {
        schema_hint: Some(train.schema.clone()),
        label_map: Some(train.labels.clone()),
        ..opts
    };
    let test = load(&test_path, &test_opts).unwrap();
    assert_eq!(test.rows(), 22_544);
    assert_eq!(test.schema, train.schema);
    assert_eq!(test.y.iter().filter(|&&c| c == 0).count(), 9_711);
    assert_eq!(test.y.iter().filter(|&&c| c == 1).count(), 12_833);
    // Services absent from training are counted and encoded as all zeros.
    let unknown: u64 = test.report.unknown_categories.iter().map(|u| u.2).sum();
    let service_cols: Vec<usize> = (0..test.x.cols)
        .filter(|&c| test.schema.columns[c].starts_with("service="))
        .collect();
    let rows_without_service = (0..test.rows())
        .filter(|&r| service_cols.iter().all(|&c| test.x.get(r, c) == 0.0))
        .count() as u64;
    assert_eq!(unknown, rows_without_service);
    let test_alone = load(&test_path, &LoadOptions::default()).unwrap();
    let test_services = test_alone
        .schema
        .columns
        .iter()
        .filter(|c| c.starts_with("service="))
        .count();
    assert!(test_services != service_cols.len() || unknown == 0);
}

#[test]
fn nsl_kdd_families_agree_with_attack_types_csv() {
    let Some(path) = nadir_testdata::shared_data("nsl-kdd/Attack_Types.csv") else {
        return;
    };
    let text = std::fs::read_to_string(path).unwrap();
    let mut checked = 0;
    for line in text.split(['\r', '\n']).filter(|l| !l.is_empty()) {
        let (name, family) = line.split_once(',').unwrap();
        if name == "unknown" {
            continue;
        }
        let ours = NSL_KDD_ATTACKS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f);
        assert_eq!(ours, Some(family), "{name}");
        checked += 1;
    }
    assert_eq!(checked, 23);
}

/// NaN / Infinity cells per column and the label set, counted with plain string splitting.
fn count_specials(
    text: &str,
) -> (
    Vec<String>,
    Vec<u64>,
    Vec<u64>,
    std::collections::BTreeSet<u32>,
) {
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let mut nan = vec![0u64; header.len()];
    let mut inf = vec![0u64; header.len()];
    let mut labels = std::collections::BTreeSet::new();
    for line in lines {
        for (i, f) in line.split(',').enumerate() {
            nan[i] += u64::from(f == "NaN");
            inf[i] += u64::from(f == "Infinity");
        }
        labels.insert(line.rsplit(',').next().unwrap().parse::<u32>().unwrap());
    }
    (header, nan, inf, labels)
}

fn check_counts(path: &std::path::Path, text: &str) -> nadir_dataset::Dataset {
    let (header, nan, inf, labels) = count_specials(text);
    let opts = LoadOptions {
        label_mode: LabelMode::Multiclass,
        ..LoadOptions::default()
    };
    let ds = load(path, &opts).unwrap();
    assert_eq!(ds.report.known_schema, Some(KnownSchema::KubernetesMisuse));
    assert_eq!(ds.rows(), 400);
    assert_eq!(ds.report.source_columns, 87);
    for (i, name) in header.iter().enumerate() {
        let col = ds.report.column(name).unwrap();
        if let Some(c) = ds.schema.index_of(name) {
            assert_eq!(
                (col.counts.nan, col.counts.pos_inf),
                (nan[i], inf[i]),
                "{name}"
            );
            // The matrix holds NaN / inf exactly where the file does.
            let column = ds.x.column(c);
            assert_eq!(
                column.iter().filter(|v| v.is_nan()).count() as u64,
                nan[i],
                "{name}"
            );
            assert_eq!(
                column.iter().filter(|v| **v == f32::INFINITY).count() as u64,
                inf[i],
                "{name}"
            );
        }
    }
    let got: std::collections::BTreeSet<u32> = ds.y_raw.iter().copied().collect();
    assert_eq!(got, labels);
    ds
}

#[test]
fn kubernetes_sample_loads_with_nan_and_infinity_counted() {
    let Some(path) = nadir_testdata::shared_data("k8s-misuse-sample/sample.csv") else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    // The 400-row sample itself holds no NaN / Infinity cell (counted independently: 0).
    let ds = check_counts(&path, &text);
    assert_eq!(
        ds.report
            .columns
            .iter()
            .map(|c| c.counts.non_finite())
            .sum::<u64>(),
        0
    );
    // Identity and time columns are not features by default: 79 flow features + Protocol remain.
    for leak in [
        "Flow ID",
        "Src IP",
        "Dst IP",
        "Src Port",
        "Dst Port",
        "Timestamp",
    ] {
        assert!(
            ds.schema.index_of(leak).is_none(),
            "{leak} leaked into the features"
        );
    }
    assert_eq!(ds.x.cols, 80);
    assert_eq!(
        ds.y_raw
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<u32>>(),
        (0..=10).collect()
    );
    assert_eq!(ds.labels.raw_names[3], "Node-RED RCE");
    assert_eq!(ds.class_counts()[0].1, 200);
    assert!(ds
        .time
        .as_ref()
        .is_some_and(|t| t.iter().all(|v| v.is_finite())));

    // The same rows as CICFlowMeter writes zero-duration flows (seeds-spec 6.2.6): NaN and
    // Infinity literals in rate and IAT columns of some rows.
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (bytes, packets, iat) = (
        col("Flow Bytes/s"),
        col("Flow Packets/s"),
        col("Flow IAT Mean"),
    );
    let mut dirty = String::new();
    for (r, line) in text.lines().enumerate() {
        let mut cells: Vec<&str> = line.split(',').collect();
        if r > 0 && r % 7 == 0 {
            cells[bytes] = "NaN";
            cells[packets] = "Infinity";
            cells[iat] = "NaN";
        } else if r > 0 && r % 11 == 0 {
            cells[bytes] = "Infinity";
            cells[packets] = "Infinity";
        }
        dirty.push_str(&cells.join(","));
        dirty.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let dirty_path = dir.path().join("dirty.csv");
    std::fs::write(&dirty_path, &dirty).unwrap();
    let ds = check_counts(&dirty_path, &dirty);
    let counts = &ds.report.column("Flow Packets/s").unwrap().counts;
    assert_eq!(counts.pos_inf, 57 + 31);
}

#[test]
fn cse_cic_ids2018_short_names_are_recognised() {
    let Some(path) = nadir_testdata::shared_data("labelled/kihy-slowloris/slowloris.pcap_Flow.csv")
    else {
        return;
    };
    let ds = load(&path, &LoadOptions::default()).unwrap();
    assert_eq!(ds.report.known_schema, Some(KnownSchema::CseCicIds2018));
    assert_eq!(ds.rows(), 300);
    assert!(ds.schema.index_of("Total Fwd Packet").is_some());
    assert!(ds.schema.index_of("CWR Flag Count").is_some());
    // "No Label" is the only raw label.
    assert_eq!(
        ds.report.label_counts,
        [("No Label".to_string(), "No Label".to_string(), 300)]
    );
}
