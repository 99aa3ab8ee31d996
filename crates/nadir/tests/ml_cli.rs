//! End to end through the binary: `nadir train` -> `nadir evaluate` -> `nadir inspect`
//! on real data (NSL-KDD, the Kubernetes sample), small and fast; plus the ways a
//! bundle or data can be wrong.
#![cfg(feature = "ml")]

mod common;

use std::path::{Path, PathBuf};

use common::{fails, nadir, s};

/// What `nadir inspect --json` says of a bundle.
fn manifest(bundle: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(&["inspect", s(bundle), "--json"])).unwrap()
}

/// The binary's stdout, after checking it succeeded.
fn ok(args: &[&str]) -> String {
    common::ok(args).0
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Regression floor: hybrid trained on 3,000 rows of KDDTrain+_20Percent for 3
/// epochs, threshold chosen on a validation split of the same file, scored on
/// the whole of KDDTest+ (22,544 rows, attack types unseen in training).
#[test]
fn nsl_kdd_train_evaluate_inspect_round_trip() {
    let Some(train) = nadir_testdata::shared_data("nsl-kdd/KDDTrain+_20Percent.txt.gz") else {
        return;
    };
    let Some(test) = nadir_testdata::shared_data("nsl-kdd/KDDTest+.txt.gz") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("nsl.nadir");
    let stdout = ok(&[
        "train",
        "--data",
        s(&train),
        "--test",
        s(&test),
        "--model",
        "hybrid",
        "--max-train-rows",
        "3000",
        "--epochs",
        "3",
        "--threshold",
        "fixed:0.5",
        "--resamples",
        "100",
        "--quiet",
        "-o",
        s(&bundle),
    ]);
    assert!(stdout.contains("test evaluation"), "{stdout}");
    let report_dir = PathBuf::from(format!("{}.report", bundle.display()));
    let report = json(&report_dir.join("evaluation.json"));
    let accuracy = report["classification"]["accuracy"].as_f64().unwrap();
    let auc = report["detection"]["roc_auc"].as_f64().unwrap();
    // Floors well below what this run gets, far above chance (57% of KDDTest+ is attack).
    assert!(accuracy >= 0.70, "KDDTest+ accuracy {accuracy}");
    assert!(auc >= 0.80, "KDDTest+ ROC-AUC {auc}");
    assert_eq!(report["rows"], 22544);
    for plot in [
        "confusion.png",
        "roc.svg",
        "pr.png",
        "scores.svg",
        "history_loss.png",
    ] {
        assert!(report_dir.join(plot).is_file(), "{plot} missing");
    }

    // `evaluate` with the saved bundle reproduces the training-time test metrics.
    let evaluate = |out: &Path, extra: &[&str]| {
        let mut args = vec!["evaluate", "--model", s(&bundle), "--data", s(&test)];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", s(out)]);
        ok(&args);
        json(&out.join("evaluation.json"))
    };
    let eval_dir = dir.path().join("eval");
    let again = evaluate(&eval_dir, &["--resamples", "100"]);
    assert_eq!(
        again["classification"]["confusion"],
        report["classification"]["confusion"]
    );
    assert_eq!(
        again["detection"]["roc_auc"],
        report["detection"]["roc_auc"]
    );

    // `detect` reads the same `.txt.gz` as a table, as `train` did: captures and tables are
    // told apart by their bytes, not their names.
    let alerts = dir.path().join("alerts.jsonl");
    ok(&[
        "detect",
        "--model",
        s(&bundle),
        s(&test),
        "--explain",
        "none",
        "--no-progress",
        "-o",
        s(&alerts),
    ]);
    let flagged = std::fs::read_to_string(&alerts).unwrap().lines().count() as u64;
    // Every row the test evaluation predicted an attack (false and true positives) is an alert.
    let counts = &report["classification"]["confusion"]["counts"];
    assert_eq!(
        flagged,
        counts[1].as_u64().unwrap() + counts[3].as_u64().unwrap(),
        "{counts}"
    );

    // Classifier scores are log-odds, so a lower threshold is often negative: it must parse
    // as a value, not as a flag.
    let lower = dir.path().join("lower.jsonl");
    ok(&[
        "detect",
        "--model",
        s(&bundle),
        s(&test),
        "--threshold",
        "-1",
        "--explain",
        "none",
        "--no-progress",
        "-o",
        s(&lower),
    ]);
    let flagged_lower = std::fs::read_to_string(&lower).unwrap().lines().count() as u64;
    assert!(flagged_lower > flagged, "{flagged_lower} vs {flagged}");
    // `evaluate` at the same threshold flags the same rows.
    let at_lower = evaluate(
        &dir.path().join("eval-lower"),
        &["--threshold", "-1", "--resamples", "0"],
    );
    let counts = &at_lower["classification"]["confusion"]["counts"];
    assert_eq!(
        flagged_lower,
        counts[1].as_u64().unwrap() + counts[3].as_u64().unwrap(),
        "{counts}"
    );

    let shown = ok(&["inspect", s(&bundle)]);
    assert!(
        shown.contains("verified") && shown.contains("hybrid"),
        "{shown}"
    );
    assert!(shown.contains("fixed:0.5"), "{shown}");
    assert!(
        shown.contains("score           log-odds of attack"),
        "{shown}"
    );
    let manifest = manifest(&bundle);
    assert_eq!(manifest["model_kind"], "hybrid");
    assert_eq!(manifest["training_data"]["rows"], 3000);
    assert_eq!(manifest["labels"]["classes"][1], "attack");

    // An altered byte anywhere is caught by the checksum.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    let altered = dir.path().join("altered.nadir");
    std::fs::write(&altered, &bytes).unwrap();
    let err = fails(&["inspect", s(&altered)]);
    assert!(err.contains("checksum mismatch"), "{err}");
    // A truncated bundle is refused with the sizes.
    let cut = dir.path().join("cut.nadir");
    std::fs::write(&cut, &bytes[..mid]).unwrap();
    let err = fails(&["evaluate", "--model", s(&cut), "--data", s(&test)]);
    assert!(err.contains("truncated"), "{err}");
    // Data of another schema is refused before scoring, naming the columns.
    if let Some(k8s) = nadir_testdata::shared_data("k8s-misuse-sample/sample.csv") {
        let err = fails(&["evaluate", "--model", s(&bundle), "--data", s(&k8s)]);
        assert!(err.contains("missing") || err.contains("schema"), "{err}");
    }
}

/// Kubernetes sample: scenarios are whole groups, so no attack run has flows on
/// both sides of the split (checked per scenario in the split's counts).
#[test]
fn k8s_sample_group_split_by_scenario_end_to_end() {
    let Some(sample) = nadir_testdata::shared_data("k8s-misuse-sample/sample.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("k8s.nadir");
    let stdout = ok(&[
        "train",
        "--data",
        s(&sample),
        "--model",
        "llaformer",
        "--split",
        "group",
        "--label-mode",
        "multiclass",
        "--val-fraction",
        "0.2",
        "--test-fraction",
        "0.2",
        "--epochs",
        "2",
        "--resamples",
        "50",
        "--no-plots",
        "--quiet",
        "-o",
        s(&bundle),
    ]);
    assert!(stdout.contains("split (whole groups"), "{stdout}");
    // The split line counts rows per scenario on each side: every attack scenario's
    // 20 flows sit whole on exactly one side.
    let split_line = stdout.lines().find(|l| l.starts_with("split (")).unwrap();
    let sides: Vec<Vec<(String, usize)>> = split_line
        .split(" rows (")
        .skip(1)
        .map(|side| {
            side.split(')')
                .next()
                .unwrap()
                .split(", ")
                .map(|count| {
                    let (name, n) = count.rsplit_once(' ').unwrap();
                    (name.to_string(), n.parse().unwrap())
                })
                .filter(|(name, _)| name != "Benign")
                .collect()
        })
        .collect();
    assert_eq!(sides.len(), 3, "train, validation and test: {split_line}");
    let mut seen: Vec<&str> = Vec::new();
    for (name, n) in sides.iter().flatten() {
        assert_eq!(*n, 20, "{name} is split across sides: {split_line}");
        assert!(
            !seen.contains(&name.as_str()),
            "{name} on two sides: {split_line}"
        );
        seen.push(name);
    }
    assert_eq!(
        seen.len(),
        10,
        "every attack scenario is somewhere: {split_line}"
    );
    let manifest = manifest(&bundle);
    assert_eq!(manifest["split"]["kind"], "group");
    assert_eq!(manifest["load_options"]["group_by"], "label");
    // Identity and time columns are not features (seeds-spec §7.3).
    let columns: Vec<&str> = manifest["schema"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for leak in ["Src IP", "Dst IP", "Flow ID", "Timestamp"] {
        assert!(!columns.contains(&leak), "{leak} is a feature");
    }
    let eval = ok(&[
        "evaluate",
        "--model",
        s(&bundle),
        "--data",
        s(&sample),
        "--resamples",
        "0",
    ]);
    assert!(eval.contains("400 rows"), "{eval}");
}

#[test]
fn bad_requests_fail_before_training_with_a_reason() {
    let Some(train) = nadir_testdata::shared_data("nsl-kdd/KDDTrain+_20Percent.txt.gz") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.nadir");
    let err = fails(&[
        "train",
        "--data",
        s(&train),
        "--model",
        "transformer",
        "-o",
        s(&out),
    ]);
    assert!(err.contains("unknown model"), "{err}");
    let err = fails(&[
        "train",
        "--data",
        s(&train),
        "--model",
        "hybrid",
        "--threshold",
        "fpr:2",
        "-o",
        s(&out),
    ]);
    assert!(err.contains("false-positive rate"), "{err}");
    let err = fails(&[
        "train",
        "--data",
        s(&train),
        "--model",
        "hybrid",
        "--val-fraction",
        "0.9",
        "--test-fraction",
        "0.2",
        "-o",
        s(&out),
    ]);
    assert!(err.contains("--val-fraction"), "{err}");
    let err = fails(&["evaluate", "--model", s(&train), "--data", s(&train)]);
    assert!(err.contains("not a nadir bundle"), "{err}");
    assert!(
        !out.exists(),
        "no bundle is written when training never starts"
    );
}

/// `extract` declares what each column of its table is; `train` honours the declaration, so
/// the flow's addresses, times and window position never reach the model (issue 19).
#[test]
fn extracted_windows_train_on_their_packet_features_only() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("windows.csv");
    let scan = root.join("examples/data/k8s-nmap-tcp-syn-scan.pcap");
    let benign = root.join("examples/data/cicids2017-tls-benign.pcap");
    let rules = root.join("examples/labels/demo-k8s-nmap.toml");
    let out = nadir(&[
        "extract",
        s(&scan),
        s(&benign),
        "--features",
        "packets",
        "--window-scope",
        "flow",
        "--window",
        "4",
        "--stride",
        "4",
        "--labels",
        s(&rules),
        "--no-progress",
        "-o",
        s(&table),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let declared = json(&dir.path().join("windows.csv.roles.json"));
    let role = |name: &str| -> String {
        declared["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["role"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{name} not declared"))
    };
    assert_eq!(role("first_ts_ns"), "Time");
    assert_eq!(role("window_index"), "Identity");
    assert_eq!(role("src_ip"), "Identity");
    assert_eq!(role("label"), "Label");
    assert_eq!(role("f3_ip_len"), "Feature");

    let bundle = dir.path().join("windows.nadir");
    ok(&[
        "train",
        "--data",
        s(&table),
        "--model",
        "hybrid",
        "--epochs",
        "1",
        "--quiet",
        "-o",
        s(&bundle),
    ]);
    let manifest = manifest(&bundle);
    let columns: Vec<&str> = manifest["schema"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    // protocol, then 4 packets x 10 header features; nothing else.
    assert_eq!(columns.len(), 1 + 4 * 10, "{columns:?}");
    assert_eq!(columns[0], "protocol");
    assert!(
        columns[1..].iter().all(|c| c.starts_with('f')),
        "{columns:?}"
    );
}

/// Each design trains end to end from `extract` on the input it was published with (issue 19):
/// LLN and CNN-LSTM on packet windows as (packet features x packets), LDPI on the first bytes
/// alone, scaled by /255; and each bundle then detects on the captures.
#[test]
fn each_design_trains_from_extract_on_its_published_input() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let scan = root.join("examples/data/k8s-nmap-tcp-syn-scan.pcap");
    let benign = root.join("examples/data/cicids2017-tls-benign.pcap");
    let rules = root.join("examples/labels/demo-k8s-nmap.toml");
    let extract = |family: &str, extra: &[&str]| -> PathBuf {
        let table = dir.path().join(format!("{family}.csv"));
        let mut args = vec![
            "extract",
            s(&scan),
            s(&benign),
            "--features",
            family,
            "--labels",
            s(&rules),
            "--no-progress",
            "-o",
            s(&table),
        ];
        args.extend_from_slice(extra);
        ok(&args);
        table
    };
    let windows = extract(
        "packets",
        &["--window-scope", "flow", "--window", "8", "--stride", "8"],
    );
    let bytes = extract("bytes", &[]);
    for (model, table, input) in [
        ("lln", &windows, "windows (N, 10, 8)"),
        ("cnn-lstm", &windows, "windows (N, 10, 8)"),
        ("ldpi", &bytes, "bytes (N, 1, 240)"),
    ] {
        let bundle = dir.path().join(format!("{model}.nadir"));
        let (stdout, stderr) = common::ok(&[
            "train",
            "--data",
            s(table),
            "--model",
            model,
            "--epochs",
            "1",
            "--quiet",
            "-o",
            s(&bundle),
        ]);
        let said = format!("{stdout}{stderr}");
        assert!(said.contains(&format!("on {input}")), "{model}: {said}");
        let manifest: serde_json::Value = manifest(&bundle);
        let steps = manifest["pipeline"]["steps"].as_array().unwrap();
        let layout = &steps[0];
        assert_eq!(layout["reason"], "layout", "{model}: {layout}");
        let keep = layout["keep"].as_array().unwrap();
        let columns = manifest["schema"]["columns"].as_array().unwrap();
        let name = |i: usize| {
            columns[keep[i].as_u64().unwrap() as usize]
                .as_str()
                .unwrap()
        };
        if model == "ldpi" {
            // Only the 4 x 60 bytes, packet after packet; protocol and packets are left out.
            assert_eq!(keep.len(), 240);
            assert_eq!((name(0), name(1), name(60)), ("b0_0", "b0_1", "b1_0"));
            let scale = steps.iter().find(|s| s["step"] == "affine").unwrap();
            assert_eq!(scale["kind"], "bytes", "{scale}");
            let factor = scale["factor"][0].as_f64().unwrap();
            assert!((factor - 1.0 / 255.0).abs() < 1e-9, "{factor}");
        } else {
            // Channel-major: one feature over the 8 packets, then the next feature.
            assert_eq!(keep.len(), 80);
            assert_eq!(
                (name(0), name(1), name(7), name(8)),
                ("f0_ip_len", "f1_ip_len", "f7_ip_len", "f0_ttl")
            );
            assert!(steps.iter().all(|s| s["reason"] != "constant"), "{model}");
        }
        let verdicts = dir.path().join(format!("{model}.jsonl"));
        ok(&[
            "detect",
            s(&scan),
            "--model",
            s(&bundle),
            "--all",
            "--no-progress",
            "-o",
            s(&verdicts),
        ]);
        let text = std::fs::read_to_string(&verdicts).unwrap();
        assert!(text.lines().count() > 0, "{model}: no records from detect");
    }
}

/// `train` reads captures as LLN's `--pcap-file` did: the features the model reads are
/// extracted on the fly and labelled by the rules (issue 19); the bundle then detects the scan.
#[test]
fn train_reads_captures_labelled_by_rules() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let scan = root.join("examples/data/k8s-nmap-tcp-syn-scan.pcap");
    let benign = root.join("examples/data/cicids2017-tls-benign.pcap");
    // A capture is known by its bytes, not its name (`tcpdump -w dump`).
    let benign_dump = dir.path().join("benign-dump");
    std::fs::copy(&benign, &benign_dump).unwrap();
    let rules = root.join("examples/labels/demo-k8s-nmap.toml");
    let bundle = dir.path().join("trees.nadir");
    let (stdout, stderr) = common::ok(&[
        "train",
        "-d",
        s(&scan),
        "-d",
        s(&benign_dump),
        "--labels",
        s(&rules),
        "--model",
        "gbdt",
        "--quiet",
        "-o",
        s(&bundle),
    ]);
    assert!(
        stdout.contains("rows of cic features from 2 capture(s)"),
        "{stdout}{stderr}"
    );
    let manifest = manifest(&bundle);
    let columns = manifest["schema"]["columns"].as_array().unwrap();
    assert!(columns.iter().any(|c| c == "Flow Duration"), "{columns:?}");
    assert!(
        !columns.iter().any(|c| c == "Src Port" || c == "Timestamp"),
        "identity and time stay out: {columns:?}"
    );
    let alerts = dir.path().join("alerts.jsonl");
    ok(&[
        "detect",
        s(&scan),
        "--model",
        s(&bundle),
        "--no-progress",
        "-o",
        s(&alerts),
    ]);
    let text = std::fs::read_to_string(&alerts).unwrap();
    assert!(text.lines().count() > 10, "the scan raises alerts: {text}");

    // Each capture is its own group for --group-by file, named after the capture: here the
    // one benign capture cannot be on both sides, and the error names the captures.
    let udp = root.join("examples/data/k8s-nmap-udp-scan.pcap");
    let err = fails(&[
        "train",
        "-d",
        s(&scan),
        "-d",
        s(&benign),
        "-d",
        s(&udp),
        "--labels",
        s(&rules),
        "--model",
        "gbdt",
        "--split",
        "group",
        "--group-by",
        "file",
        "-o",
        s(&bundle),
    ]);
    assert!(err.contains("cicids2017-tls-benign.pcap"), "{err}");
    assert!(err.contains("k8s-nmap-udp-scan.pcap"), "{err}");
    assert!(!err.contains(".parquet"), "{err}");

    // Captures need rules; a table has its own labels; tables and captures do not mix.
    let table = dir.path().join("t.csv");
    std::fs::write(&table, "a,b,label\n1,2,benign\n").unwrap();
    // An empty file has no bytes to tell by: its name says it is a table.
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    for (args, says) in [
        (vec!["-d", s(&empty)], "no data rows"),
        (vec!["-d", s(&scan)], "needs --labels RULES"),
        (vec!["-d", s(&table), "--labels", s(&rules)], "is a table"),
        (
            vec!["-d", s(&table), "-d", s(&scan)],
            "one table, or captures",
        ),
    ] {
        let mut all = vec!["train", "--model", "gbdt", "-o", s(&bundle)];
        all.extend(args);
        let err = fails(&all);
        assert!(err.contains(says), "{err}");
    }
}

/// The hybrid's published autoencoder reduction (seeds-spec §3.1) as a pipeline step: fitted
/// on the training rows, kept in the bundle, applied by `evaluate` to new rows (issue 19).
#[test]
fn autoencoder_reduction_is_a_pipeline_step_the_bundle_applies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("flows.csv");
    normal_and_attack_table(&data);
    let config = dir.path().join("ae.toml");
    std::fs::write(
        &config,
        "[pipeline]\nreduction = { kind = \"autoencoder\", dim = 4 }\n",
    )
    .unwrap();
    let bundle = dir.path().join("reduced.nadir");
    let stdout = ok(&[
        "train",
        "--data",
        s(&data),
        "--model",
        "hybrid",
        "--config",
        s(&config),
        "--epochs",
        "2",
        "--resamples",
        "0",
        "--no-plots",
        "--quiet",
        "-o",
        s(&bundle),
    ]);
    assert!(
        stdout.contains("fitting the autoencoder reduction: 8 -> 4 codes"),
        "{stdout}"
    );
    let manifest = manifest(&bundle);
    let steps = manifest["pipeline"]["steps"].as_array().unwrap();
    let encoder = steps.last().unwrap();
    assert_eq!(encoder["step"], "encoder", "{encoder}");
    let layer = &encoder["layers"][0];
    assert_eq!(
        (layer["inputs"].as_u64(), layer["outputs"].as_u64()),
        (Some(8), Some(4))
    );
    assert_eq!(
        manifest["model"]["input"]["features"], 4,
        "{}",
        manifest["model"]
    );
    let text = ok(&["inspect", s(&bundle)]);
    assert!(text.contains("autoencoder reduction to 4"), "{text}");
    evaluate_scores_every_row(&bundle, &data);
}

/// `nadir evaluate` scores every row of the table of [`normal_and_attack_table`] with `bundle`.
fn evaluate_scores_every_row(bundle: &Path, data: &Path) {
    let eval = ok(&[
        "evaluate",
        "--model",
        s(bundle),
        "--data",
        s(data),
        "--resamples",
        "0",
    ]);
    assert!(eval.contains("720 rows"), "{eval}");
}

/// A timed table: benign rows follow one pattern, attacks (interleaved in time) another.
fn normal_and_attack_table(path: &Path) {
    let mut text = String::from("timestamp,f0,f1,f2,f3,f4,f5,f6,f7,label\n");
    for i in 0..720u32 {
        let attack = i % 6 == 5;
        let phase = (i as f32 * 0.37).sin() * 3.0;
        let row: Vec<String> = (0..8)
            .map(|j| {
                let v = if attack {
                    ((i * 31 + j * 17) % 23) as f32 / 2.0 - 3.0
                } else {
                    (phase + j as f32 * 0.8).sin() + ((i + j) % 5) as f32 * 0.02
                };
                format!("{v:.4}")
            })
            .collect();
        let label = if attack { "attack" } else { "BENIGN" };
        text.push_str(&format!(
            "{},{},{label}\n",
            1_700_000_000 + i,
            row.join(",")
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// `nadir train --data DATA OPTIONS... --split time -o BUNDLE`, quiet, no plots or bootstrap:
/// (stdout, stderr) after checking it succeeded.
fn train_by_time(data: &Path, options: &[&str], bundle: &Path) -> (String, String) {
    let mut args = vec!["train", "--data", s(data)];
    args.extend_from_slice(options);
    args.extend([
        "--split",
        "time",
        "--resamples",
        "0",
        "--no-plots",
        "--quiet",
        "-o",
        s(bundle),
    ]);
    common::ok(&args)
}

/// `--mode deepsad` learns from normal rows only: no attack in training or validation,
/// every attack in the test split, a hypersphere head in the bundle, and the attacks
/// ranked above the held-out normal rows (issue 18).
#[test]
fn deepsad_mode_trains_on_normal_rows_only_and_tests_on_every_attack() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("flows.csv");
    normal_and_attack_table(&data);
    let config = dir.path().join("tiny.toml");
    std::fs::write(
        &config,
        "[arch]\nkind = \"ldpi\"\nblock_channels = [8, 8, 8, 8]\nhead_layers = 1\nembedding_dim = 8\n\
         [train]\nepochs = 4\nbatch_size = 32\n\
         [train.deep_sad.pretrain]\nepochs = 3\nbatch_size = 32\n",
    )
    .unwrap();
    let bundle = dir.path().join("sad.nadir");
    let (stdout, _) = train_by_time(
        &data,
        &[
            "--mode",
            "deepsad",
            "--config",
            s(&config),
            "--layout",
            "tabular",
        ],
        &bundle,
    );
    let split_line = stdout.lines().find(|l| l.starts_with("split (")).unwrap();
    // 600 benign rows split 70/15/15 by time; all 120 attacks in the test split.
    assert!(
        split_line.contains("train 420 rows (benign 420), validation 90 rows (benign 90)"),
        "{split_line}"
    );
    assert!(split_line.contains("attack 120"), "{split_line}");
    assert!(stdout.contains("training ldpi (deepsad)"), "{stdout}");
    let manifest = manifest(&bundle);
    assert_eq!(manifest["model"]["head"], "hypersphere");
    let rule = &manifest["thresholds"]["decision"]["rule"];
    assert_eq!(
        (rule["rule"].as_str(), rule["value"].as_f64()),
        (Some("benign-percentile"), Some(99.0))
    );
    let report =
        json(&PathBuf::from(format!("{}.report", bundle.display())).join("evaluation.json"));
    let auc = report["detection"]["roc_auc"].as_f64().unwrap();
    assert!(auc > 0.9, "ROC-AUC {auc}");
    // One attack type here, told from the same benign test rows, at 1% FPR too.
    let per_type = report["per_attack_type"].as_array().unwrap();
    assert_eq!(per_type.len(), 1, "{per_type:?}");
    assert_eq!(per_type[0]["rows"], 120);
    assert_eq!(
        per_type[0]["recall_at_fpr"][1]["target_fpr"].as_f64(),
        Some(0.01)
    );
    assert!(stdout.contains("per attack type"), "{stdout}");

    // The detection verb scores with the hypersphere too.
    evaluate_scores_every_row(&bundle, &data);

    // Modes and families that do not fit are refused before any data is read.
    let err = fails(&[
        "train",
        "--data",
        s(&data),
        "--mode",
        "deepsad",
        "--model",
        "hybrid",
        "-o",
        s(&bundle),
    ]);
    assert!(err.contains("--model ldpi"), "{err}");
    let err = fails(&[
        "train",
        "--data",
        s(&data),
        "--mode",
        "autoencoder",
        "--labelled-anomalies",
        "-o",
        s(&bundle),
    ]);
    assert!(err.contains("is for --mode deepsad"), "{err}");
}

/// `--unlabelled` on a table that has labels anyway: every row is learnt as normal, as asked,
/// but the share of training rows its label column calls attacks is reported (issue 18's
/// contaminated normal set).
#[test]
fn unlabelled_training_reports_the_attacks_it_learns_as_normal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("flows.csv");
    normal_and_attack_table(&data);
    let config = dir.path().join("ae.toml");
    std::fs::write(&config, "[arch]\nkind = \"autoencoder\"\ncode_dim = 4\n").unwrap();
    let bundle = dir.path().join("ae.nadir");
    let (stdout, stderr) = train_by_time(
        &data,
        &["--unlabelled", "--config", s(&config), "--epochs", "2"],
        &bundle,
    );
    // 720 rows split 70/15/15 by time, all taken as normal: rows 0..504 train, every
    // sixth an attack by the label column.
    let split_line = stdout.lines().find(|l| l.starts_with("split (")).unwrap();
    assert!(split_line.contains("train 504 rows"), "{split_line}");
    assert!(
        stderr.contains("calls 84 of the 504 training rows (16.7 %) attacks"),
        "{stderr}"
    );

    // A table of benign rows only gives no warning.
    let benign = dir.path().join("benign.csv");
    let text = std::fs::read_to_string(&data).unwrap();
    let kept: Vec<&str> = text.lines().filter(|l| !l.ends_with(",attack")).collect();
    std::fs::write(&benign, kept.join("\n") + "\n").unwrap();
    let (_, stderr) = train_by_time(
        &benign,
        &["--unlabelled", "--config", s(&config), "--epochs", "1"],
        &bundle,
    );
    assert!(!stderr.contains("--unlabelled: the table"), "{stderr}");
}

/// `--model tabm` through the CLI: by default its periodic embeddings read quantile-scaled
/// columns (learnt, in the weights); `embedding = "none"` is the paper's TabM-mini on the
/// piecewise-linear encoding (8 columns -> more model inputs); a [pipeline] table overrides
/// either; and the bundle detects.
#[test]
fn tabm_embeds_each_feature_unless_told_to_read_the_papers_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("flows.csv");
    normal_and_attack_table(&data);
    let small = |arch: &str| {
        format!("[arch]\nkind = \"tabm\"\nmembers = 4\nwidth = 16\n{arch}[train]\nepochs = 3\n")
    };
    let train = |name: &str, config: &str| {
        let config_path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&config_path, config).unwrap();
        let bundle = dir.path().join(format!("{name}.nadir"));
        let (stdout, _) = train_by_time(&data, &["--config", s(&config_path)], &bundle);
        let line = stdout
            .lines()
            .find(|l| l.starts_with("preprocessing:"))
            .unwrap()
            .to_string();
        let manifest = manifest(&bundle);
        let steps: Vec<String> = manifest["pipeline"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|step| step.to_string())
            .collect();
        (bundle, line, manifest, steps)
    };
    let has = |steps: &[String], what: &str| steps.iter().any(|step| step.contains(what));

    let (bundle, line, manifest, steps) = train("tabm", &small(""));
    assert_eq!(manifest["model"]["arch"]["kind"], "tabm");
    assert_eq!(manifest["model"]["arch"]["embedding"], "periodic");
    assert!(
        line.starts_with("preprocessing: 8 columns -> 8 model inputs"),
        "{line}"
    );
    assert!(has(&steps, "quantiles"), "no quantile scaling: {steps:?}");
    evaluate_scores_every_row(&bundle, &data);

    let (bundle, line, manifest, steps) = train("mini", &small("embedding = \"none\"\n"));
    assert_eq!(manifest["model"]["arch"]["embedding"], "none");
    assert!(line.starts_with("preprocessing: 8 columns -> "), "{line}");
    assert!(
        !line.starts_with("preprocessing: 8 columns -> 8 model inputs"),
        "no piecewise-linear encoding: {line}"
    );
    assert!(has(&steps, "piecewise_linear"), "{steps:?}");
    evaluate_scores_every_row(&bundle, &data);

    let (_, line, _, steps) = train(
        "standard",
        &format!("{}[pipeline]\nscaler = \"standard\"\n", small("")),
    );
    assert!(
        line.starts_with("preprocessing: 8 columns -> 8 model inputs"),
        "{line}"
    );
    assert!(!has(&steps, "quantiles"), "{steps:?}");
}

/// `--feature-column "Dst Port"`: an identity column the name rules leave out becomes a feature
/// on request (the bundle carries it, and `evaluate` reads it back); a name the table lacks
/// is an error naming it.
#[test]
fn feature_column_makes_an_identity_column_a_feature_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ports.csv");
    // Only the destination port tells attacks (4444) from benign rows (80, 443).
    let mut text = String::from("timestamp,Dst Port,f0,f1,label\n");
    for i in 0..720u32 {
        let attack = i % 6 == 5;
        let port = if attack {
            4444
        } else {
            [80, 443][i as usize % 2]
        };
        let noise = |k: u32| ((i * 37 + k * 11) % 17) as f32 / 17.0;
        let label = if attack { "attack" } else { "BENIGN" };
        text.push_str(&format!(
            "{},{port},{:.3},{:.3},{label}\n",
            1_700_000_000 + i,
            noise(1),
            noise(2)
        ));
    }
    std::fs::write(&data, text).unwrap();
    let columns = |bundle: &Path| -> Vec<String> {
        manifest(bundle)["schema"]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    };
    let without = dir.path().join("without.nadir");
    train_by_time(&data, &["--model", "gbdt"], &without);
    assert_eq!(columns(&without), ["f0", "f1"]);

    let with = dir.path().join("with.nadir");
    let (_, stderr) = train_by_time(
        &data,
        &["--model", "gbdt", "--feature-column", "Dst Port"],
        &with,
    );
    assert!(stderr.contains("`Dst Port`"), "no warning: {stderr}");
    assert_eq!(columns(&with), ["Dst Port", "f0", "f1"]);
    evaluate_scores_every_row(&with, &data);

    let err = fails(&[
        "train",
        "--data",
        s(&data),
        "--model",
        "gbdt",
        "--feature-column",
        "Src Port",
        "-o",
        s(&dir.path().join("bad.nadir")),
    ]);
    assert!(
        err.contains("Src Port") && err.contains("not in the header"),
        "{err}"
    );
}

/// Gradient-boosted trees through the whole CLI on the real Kubernetes flows: trained with
/// whole scenarios held out, evaluated, and their alerts explained with TreeSHAP values that
/// add up to the flow's log-odds.
#[test]
fn gbdt_trains_on_k8s_flows_and_explains_alerts_with_tree_shap() {
    let Some(dev) = nadir_testdata::shared_data("k8s-misuse-dev/dev.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("trees.nadir");
    let stdout = ok(&[
        "train",
        "--data",
        s(&dev),
        "--model",
        "gbdt",
        "--split",
        "group",
        "--resamples",
        "50",
        "--no-plots",
        "--quiet",
        "-o",
        s(&bundle),
    ]);
    assert!(stdout.contains("trained trees with"), "{stdout}");
    let auc: f64 = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("ROC-AUC"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no ROC-AUC in {stdout}"));
    // A held-out scenario: trees rank it far better than chance (0.75 measured).
    assert!(auc > 0.65, "ROC-AUC {auc}");
    let manifest = manifest(&bundle);
    assert_eq!(manifest["model"]["arch"]["kind"], "gbdt");

    let alerts = dir.path().join("alerts.jsonl");
    ok(&["detect", "--model", s(&bundle), s(&dev), "-o", s(&alerts)]);
    let records = common::jsonl(&alerts);
    let explained: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["explanation"].is_object())
        .collect();
    assert!(!explained.is_empty(), "no alert was explained");
    for record in explained {
        let e = &record["explanation"];
        assert_eq!(e["method"], "tree-shap");
        let score = record["score"].as_f64().unwrap();
        // The score is the log-odds TreeSHAP values add up to.
        let log_odds = e["baseline_score"].as_f64().unwrap() + e["total"].as_f64().unwrap();
        assert!((log_odds - score).abs() < 1e-4, "{log_odds} vs {score}");
        assert!(!e["top"].as_array().unwrap().is_empty());
    }
}
