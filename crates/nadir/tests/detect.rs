//! `nadir detect` and `nadir explain` end to end through the binary: real captures scored
//! by a bundle trained inside the test on real Kubernetes flows, the record schema of every
//! output format, capture vs. extracted table, the counts adding up, and bad input.
#![cfg(feature = "ml")]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::{fails, jsonl, k8s_bundle, nadir, ok, s, train_quick};

/// The record fields, in order, that the README documents (CSV/Parquet columns).
const COLUMNS: [&str; 25] = [
    "flow_id",
    "source",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "protocol",
    "tunnel",
    "start",
    "start_ns",
    "end_ns",
    "packets",
    "bytes",
    "score",
    "threshold",
    "verdict",
    "class",
    "early",
    "early_packets",
    "early_after_ms",
    "explain_method",
    "baseline_score",
    "completeness_error",
    "top_features",
    "explanation",
];

/// JSON lines carry the explanation nested: the same fields less the flattened ones.
const FLATTENED: [&str; 4] = [
    "explain_method",
    "baseline_score",
    "completeness_error",
    "top_features",
];

#[test]
fn slowloris_attackers_flows_are_flagged_and_explained() {
    let Some(bundle) = k8s_bundle() else { return };
    let Some(capture) = nadir_testdata::shared_data("labelled/kihy-slowloris/slowloris.pcap")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alerts.jsonl");
    let (_, stderr) = ok(&[
        "detect",
        "--model",
        s(&bundle),
        s(&capture),
        "--all",
        "-o",
        s(&out),
    ]);
    let records = jsonl(&out);
    // Ground truth: every TCP flow of the capture is the attacker's (10.0.2.15 -> :80).
    let attack: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["src_ip"] == "10.0.2.15" && r["dst_port"] == 80)
        .collect();
    assert!(
        attack.len() >= 290,
        "{} attack flows\n{stderr}",
        attack.len()
    );
    let flagged = attack.iter().filter(|r| r["verdict"] == "anomaly").count();
    assert!(
        flagged * 10 >= attack.len() * 9,
        "only {flagged} of {} slowloris flows flagged\n{stderr}",
        attack.len()
    );
    for r in attack.iter().filter(|r| r["verdict"] == "anomaly") {
        let e = &r["explanation"];
        assert_eq!(e["method"], "integrated-gradients", "{r}");
        let gap = e["completeness_error"].as_f64().unwrap();
        assert!(gap <= 0.01, "completeness gap {gap} in {r}");
        assert_eq!(e["top"].as_array().unwrap().len(), 5, "{r}");
    }
    assert!(
        stderr.contains("flows ") && stderr.contains("anomalies "),
        "{stderr}"
    );
}

#[test]
fn explanations_name_bundle_columns_with_raw_values() {
    let Some(bundle) = k8s_bundle() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.jsonl");
    ok(&[
        "detect",
        "--model",
        s(&bundle),
        "../../examples/data/k8s-nmap-tcp-syn-scan.pcap",
        "--all",
        "--explain",
        "all",
        "-o",
        s(&out),
    ]);
    let manifest = nadir(&["inspect", s(&bundle), "--json"]);
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.stdout).unwrap();
    let columns: Vec<&str> = manifest["schema"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let records = jsonl(&out);
    assert!(!records.is_empty());
    for r in &records {
        for c in r["explanation"]["top"].as_array().unwrap() {
            let name = c["feature"].as_str().unwrap();
            assert!(columns.contains(&name), "{name} is not a bundle column");
            assert!(c["value"].is_number(), "{c}");
        }
    }
}

#[test]
fn capture_and_its_extracted_table_score_the_same() {
    let Some(bundle) = k8s_bundle() else { return };
    let Some(capture) = nadir_testdata::shared_data("labelled/chrissanders-synscan/synscan.pcapng")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("flows.csv");
    ok(&["extract", s(&capture), "-o", s(&table)]);
    let from_capture = dir.path().join("capture.jsonl");
    let from_table = dir.path().join("table.jsonl");
    let common = ["--all", "--explain", "none"];
    let mut args = vec![
        "detect",
        "--model",
        s(&bundle),
        s(&capture),
        "-o",
        s(&from_capture),
    ];
    args.extend(common);
    ok(&args);
    let mut args = vec![
        "detect",
        "--model",
        s(&bundle),
        s(&table),
        "-o",
        s(&from_table),
    ];
    args.extend(common);
    ok(&args);
    let a = jsonl(&from_capture);
    let b = jsonl(&from_table);
    assert_eq!(a.len(), b.len(), "one record per flow both ways");
    // The table's Timestamp has a coarser precision: pair records by id in order instead.
    let mut by_id: HashMap<&str, Vec<&serde_json::Value>> = HashMap::new();
    for r in &b {
        by_id
            .entry(r["flow_id"].as_str().unwrap())
            .or_default()
            .push(r);
    }
    for list in by_id.values_mut() {
        list.reverse();
    }
    let mut compared = 0;
    for r in &a {
        let other = by_id
            .get_mut(r["flow_id"].as_str().unwrap())
            .and_then(Vec::pop)
            .unwrap_or_else(|| panic!("{} missing from the table's records", r["flow_id"]));
        let (x, y) = (
            r["score"].as_f64().unwrap(),
            other["score"].as_f64().unwrap(),
        );
        assert!((x - y).abs() <= 1e-6, "{}: {x} vs {y}", r["flow_id"]);
        assert_eq!(r["verdict"], other["verdict"]);
        compared += 1;
    }
    assert!(compared > 100, "{compared}");
}

#[test]
fn every_output_format_has_the_documented_schema() {
    let Some(bundle) = k8s_bundle() else { return };
    let dir = tempfile::tempdir().unwrap();
    let capture = "../../examples/data/k8s-nmap-udp-scan.pcap";
    // Every flow's record, in the format the extension names.
    let write = |name: &str| {
        let out = dir.path().join(name);
        ok(&[
            "detect",
            "--model",
            s(&bundle),
            capture,
            "--all",
            "-o",
            s(&out),
        ]);
        out
    };
    // JSON lines: the documented fields, in order, on every record.
    let out = write("a.jsonl");
    let mut expected: Vec<&str> = COLUMNS
        .into_iter()
        .filter(|c| !FLATTENED.contains(c))
        .collect();
    expected.sort_unstable();
    for r in jsonl(&out) {
        // serde_json's map is sorted by key.
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, expected, "{r}");
    }
    // CSV: the documented header.
    let out = write("a.csv");
    let mut csv = csv::Reader::from_path(&out).unwrap();
    let header: Vec<String> = csv.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, COLUMNS);
    let rows = csv.records().count();
    assert!(rows > 0);
    // Parquet: the same columns, the same row count.
    let out = write("a.parquet");
    let file = std::fs::File::open(&out).unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let names: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, COLUMNS);
    let parquet_rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(parquet_rows, rows);
}

#[test]
fn counts_add_up_and_explain_finds_one_flow() {
    let Some(bundle) = k8s_bundle() else { return };
    let (_, stderr) = ok(&[
        "detect",
        "--model",
        s(&bundle),
        "../../examples/data/k8s-nmap-tcp-syn-scan.pcap",
        "../../examples/data/cicids2017-tls-benign.pcap",
        "-o",
        "-",
    ]);
    // `packets read R = decoded D + skipped S` and `flows F = scored C + unscorable U`.
    let numbers = |line: &str| -> Vec<u64> {
        line.split(|c: char| !c.is_ascii_digit())
            .filter(|t| !t.is_empty())
            .map(|t| t.parse().unwrap())
            .collect()
    };
    let packets = stderr.lines().find(|l| l.contains("packets read")).unwrap();
    let [read, decoded, skipped] = numbers(packets)[..3] else {
        panic!("{packets}")
    };
    assert_eq!(read, decoded + skipped, "{packets}");
    assert_eq!(read, 45 + 35, "both captures whole");
    let flows = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("flows"))
        .unwrap();
    let [created, scored, unscorable] = numbers(flows)[..3] else {
        panic!("{flows}")
    };
    assert_eq!(created, scored + unscorable, "{flows}");
    assert!(scored > 0);

    let (all, _) = ok(&[
        "detect",
        "--model",
        s(&bundle),
        "../../examples/data/cicids2017-tls-benign.pcap",
        "--all",
        "-o",
        "-",
    ]);
    let first: serde_json::Value = serde_json::from_str(all.lines().next().unwrap()).unwrap();
    let id = first["flow_id"].as_str().unwrap();
    let (text, _) = ok(&[
        "explain",
        "--model",
        s(&bundle),
        "--flow-id",
        id,
        "../../examples/data/cicids2017-tls-benign.pcap",
        "--json",
    ]);
    let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(record["flow_id"], id);
    let top = record["explanation"]["top"].as_array().unwrap();
    assert!(top.len() > 50, "every input listed: {}", top.len());
    let sum: f64 = top
        .iter()
        .map(|c| c["contribution"].as_f64().unwrap())
        .sum();
    let expected = record["score"].as_f64().unwrap()
        - record["explanation"]["baseline_score"].as_f64().unwrap();
    assert!(
        (sum - expected).abs() <= 0.01 * expected.abs() + 1e-5,
        "contributions {sum} vs score - baseline {expected}"
    );
    let err = fails(&[
        "explain",
        "--model",
        s(&bundle),
        "--flow-id",
        "1.2.3.4-5.6.7.8-1-2-6",
        "../../examples/data/cicids2017-tls-benign.pcap",
    ]);
    assert!(err.contains("no flow with id"), "{err}");
}

#[test]
fn bad_bundles_inputs_and_outputs_get_clear_errors() {
    let Some(bundle) = k8s_bundle() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A flipped byte fails the checksum.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let broken = dir.path().join("broken.nadir");
    std::fs::write(&broken, &bytes).unwrap();
    let err = fails(&[
        "detect",
        "--model",
        s(&broken),
        "../../examples/data/k8s-nmap-udp-scan.pcap",
    ]);
    assert!(err.contains("checksum"), "{err}");
    // A table missing the bundle's columns: they are named.
    let table = dir.path().join("short.csv");
    std::fs::write(&table, "Flow Duration,Label\n12,0\n").unwrap();
    let err = fails(&["detect", "--model", s(&bundle), s(&table)]);
    assert!(
        err.contains("missing") && err.contains("Total Fwd Packet"),
        "{err}"
    );
    // An output that cannot be created.
    let err = fails(&[
        "detect",
        "--model",
        s(&bundle),
        "../../examples/data/k8s-nmap-udp-scan.pcap",
        "-o",
        "/nonexistent-dir/alerts.jsonl",
    ]);
    assert!(err.contains("cannot create output"), "{err}");
    // A missing input is named before the output is created: an existing file survives.
    let kept = dir.path().join("kept.jsonl");
    std::fs::write(&kept, "earlier alerts\n").unwrap();
    let err = fails(&[
        "detect",
        "--model",
        s(&bundle),
        "missing.pcap",
        "-o",
        s(&kept),
    ]);
    assert!(err.contains("missing.pcap"), "{err}");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "earlier alerts\n");
    // An unknown threshold name lists the stored ones.
    let err = fails(&[
        "detect",
        "--model",
        s(&bundle),
        "../../examples/data/k8s-nmap-udp-scan.pcap",
        "--threshold",
        "p42",
    ]);
    assert!(err.contains("p99.9"), "{err}");
    // A truncated capture: what was read is scored, the fault is named, exit non-zero.
    let whole = std::fs::read("../../examples/data/k8s-nmap-tcp-syn-scan.pcap").unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &whole[..whole.len() - 30]).unwrap();
    let out = nadir(&["detect", "--model", s(&bundle), s(&cut), "--all", "-o", "-"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cut.pcap") && stderr.contains("byte"),
        "{stderr}"
    );
    assert!(
        !out.stdout.is_empty(),
        "flows read before the fault are scored"
    );
}

#[test]
fn demo_runs_on_what_ships_and_ends_in_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, _) = ok(&["demo", "--out", s(dir.path())]);
    assert!(stdout.contains(" >= "), "no alert shown:\n{stdout}");
    assert!(stdout.contains("why: "), "no explanation shown:\n{stdout}");
    for file in [
        "flows.jsonl",
        "k8s-nmap-udp-scan-timeline.png",
        "k8s-nmap-udp-scan-timeline.svg",
        "demo-k8s-autoencoder.nadir",
    ] {
        assert!(dir.path().join(file).exists(), "{file} missing\n{stdout}");
    }
    let records = jsonl(&dir.path().join("flows.jsonl"));
    assert!(records.iter().any(|r| r["verdict"] == "anomaly"));
}

/// The README's first command, `./demo.sh`, runs to its end with this build: every `nadir`
/// command in it (an option renamed, or a threshold rule the shipped data cannot calibrate,
/// stops the script: it once did, at its fifth step, with no test to notice).
#[test]
fn demo_script_runs_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bash")
        .arg("../../demo.sh")
        .env("NADIR", env!("CARGO_BIN_EXE_nadir"))
        .env("OUT", dir.path())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo.sh failed\n{stdout}\n{stderr}");
    assert!(stdout.contains(" >= "), "no alert shown:\n{stdout}");
    for file in [
        "flows.jsonl",
        "k8s-nmap-flows.csv",
        "benign-flows.parquet",
        "k8s-nmap-first-bytes.csv",
        "nslkdd-hybrid.nadir",
        "nslkdd-autoencoder.nadir",
        "nslkdd-hybrid-eval",
    ] {
        assert!(dir.path().join(file).exists(), "{file} missing\n{stdout}");
    }
    assert!(
        stdout.contains("Wrote "),
        "the script's last line missing:\n{stdout}"
    );
}

/// The README's command that rebuilt the shipped demo bundle still makes a bundle the loader
/// accepts, with the shipped bundle's model and columns.
#[test]
fn readme_command_rebuilds_the_demo_bundle() {
    let Some(data) = nadir_testdata::shared_data("k8s-misuse-dev/dev.csv") else {
        return;
    };
    let readme = std::fs::read_to_string("../../README.md").unwrap();
    let start = readme
        .find("nadir train --data ../shared/data/k8s-misuse-dev/dev.csv")
        .expect("the README gives the demo bundle's command");
    let end = start + readme[start..].find("```").unwrap();
    let command = readme[start..end].replace("\\\n", " ");
    let dir = tempfile::tempdir().unwrap();
    let rebuilt = dir.path().join("demo.nadir");
    let mut args: Vec<String> = command
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect();
    for arg in &mut args {
        if arg.starts_with("../shared/data/k8s-misuse-dev/dev.csv") {
            *arg = s(&data).to_string();
        } else if arg.ends_with(".nadir") {
            *arg = s(&rebuilt).to_string();
        }
    }
    args.push("--quiet".into());
    args.push("--no-plots".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&args);
    let manifest = |path: &Path| -> serde_json::Value {
        serde_json::from_slice(&nadir(&["inspect", s(path), "--json"]).stdout).unwrap()
    };
    let ours = manifest(&rebuilt);
    let shipped = manifest(Path::new(
        "../../examples/models/demo-k8s-autoencoder.nadir",
    ));
    assert_eq!(ours["model_kind"], shipped["model_kind"]);
    assert_eq!(ours["schema"], shipped["schema"]);
    assert_eq!(ours["model"], shipped["model"]);
}

/// A first-bytes bundle (LDPI's input) scores each flow at its 4th packet, from a capture and
/// from the table `extract` wrote alike; its explanations name header fields.
#[test]
fn bytes_bundle_gives_early_verdicts_and_names_header_fields() {
    let Some(capture) = nadir_testdata::shared_data("labelled/chrissanders-synscan/synscan.pcapng")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Every flow of the capture is the scan's: for two classes, this test (about the mechanics,
    // not detection quality) calls the flows that start in its first 4 seconds the attack.
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "unlabelled = \"benign\"\n[[rule]]\nlabel = \"portscan\"\nfrom = 2010-07-04T20:24:00Z\nuntil = 2010-07-04T20:24:20Z\n",
    )
    .unwrap();
    let table = dir.path().join("bytes.csv");
    ok(&[
        "extract",
        s(&capture),
        "--features",
        "bytes",
        "--labels",
        s(&rules),
        "-o",
        s(&table),
    ]);
    let bundle = dir.path().join("ldpi.nadir");
    train_quick(&table, "ldpi", &bundle);
    let from_capture = dir.path().join("c.jsonl");
    let (_, stderr) = ok(&[
        "detect",
        "--model",
        s(&bundle),
        s(&capture),
        "--all",
        "--explain",
        "none",
        "-o",
        s(&from_capture),
    ]);
    let records = jsonl(&from_capture);
    let early: Vec<&serde_json::Value> = records.iter().filter(|r| r["early"] == true).collect();
    assert!(!early.is_empty(), "{stderr}");
    for r in &records {
        let packets = r["packets"].as_u64().unwrap();
        if r["early"] == true {
            assert_eq!(r["early_packets"], 4, "{r}");
            assert_eq!(packets, 4, "scored at the 4th packet: {r}");
        } else {
            assert!(
                packets < 4,
                "a flow that reached 4 packets is scored early: {r}"
            );
        }
    }
    // One early flow explained in full: its bytes are named by packet, offset and field.
    let id = early[0]["flow_id"].as_str().unwrap();
    let (text, _) = ok(&[
        "explain",
        "--model",
        s(&bundle),
        "--flow-id",
        id,
        s(&capture),
        "--json",
    ]);
    let record: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let fields: Vec<&str> = record["explanation"]["top"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("packet ") && f.contains("TCP flags")),
        "{fields:?}"
    );
    // The same flows from the extracted table score the same.
    let from_table = dir.path().join("t.jsonl");
    ok(&[
        "detect",
        "--model",
        s(&bundle),
        s(&table),
        "--all",
        "--explain",
        "none",
        "-o",
        s(&from_table),
    ]);
    let table_records = jsonl(&from_table);
    assert_eq!(table_records.len(), records.len());
    let key = |r: &serde_json::Value| (r["flow_id"].to_string(), r["start_ns"].as_i64().unwrap());
    let by_key: HashMap<_, f64> = table_records
        .iter()
        .map(|r| (key(r), r["score"].as_f64().unwrap()))
        .collect();
    for r in &records {
        let other = by_key[&key(r)];
        assert!(
            (r["score"].as_f64().unwrap() - other).abs() <= 1e-6,
            "{r} vs {other}"
        );
    }
}

/// Regression (issue 20's kind): `nadir detect -o - | head -1` stops quietly and says how far
/// it got, instead of failing with "Broken pipe".
#[test]
fn closed_stdout_stops_detect_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let Some(bundle) = k8s_bundle() else { return };
    let Some(capture) = nadir_testdata::shared_data("labelled/kihy-slowloris/slowloris.pcap")
    else {
        return;
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_nadir"))
        .args([
            "detect",
            "--model",
            s(&bundle),
            s(&capture),
            "--all",
            "--explain",
            "all",
        ])
        .args(["-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader goes away after one record (its end of the pipe is dropped here).
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(first.starts_with('{'), "{first}");
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("was closed after"), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}
