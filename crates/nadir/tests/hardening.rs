//! Regression tests for defects found by trying nadir as a new user would: closed pipes,
//! outputs that must survive a failed run, and error messages a person can read.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};

use common::{fails, s};

/// Runs nadir with its stdout read for `lines` lines and then closed (`| head -n LINES`).
fn with_stdout_closed_after(args: &[&str], lines: usize) -> (ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nadir"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the nadir binary");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..lines {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
    }
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_quiet_stop(status: ExitStatus, stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("error:"), "{stderr}");
    assert!(status.success(), "{status}: {stderr}");
}

#[test]
fn closed_pipe_inspect_capture_json_stops_quietly() {
    let Some(capture) = nadir_testdata::shared_data("labelled/kihy-slowloris/slowloris.pcap")
    else {
        return;
    };
    let mut args = vec!["inspect-capture", "--json"];
    args.extend(std::iter::repeat_n(s(&capture), 30));
    let (status, stderr) = with_stdout_closed_after(&args, 1);
    assert_quiet_stop(status, &stderr);
}

#[test]
fn closed_pipe_extract_to_stdout_counts_the_rows_that_went_out() {
    let Some(capture) = nadir_testdata::shared_data("labelled/kihy-slowloris/slowloris.pcap")
    else {
        return;
    };
    let (status, stderr) = with_stdout_closed_after(&["extract", s(&capture), "-o", "-"], 2);
    assert_quiet_stop(status, &stderr);
    // 300 flows, ~220 KB of CSV: more than a pipe holds, so the reader leaves first.
    let line = stderr
        .lines()
        .find(|l| l.contains("before its reader closed it"))
        .unwrap_or_else(|| panic!("no count of what went out: {stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let (delivered, produced): (u64, u64) = (words[0].parse().unwrap(), words[2].parse().unwrap());
    assert_eq!(produced, 300, "{line}");
    assert!(delivered >= 1 && delivered < produced, "{line}");
    assert!(
        !stderr
            .lines()
            .any(|l| l.trim_start().starts_with("300 rows")),
        "all 300 claimed as written: {stderr}"
    );
}

#[test]
fn closed_pipe_train_still_saves_the_bundle() {
    let Some(data) = nadir_testdata::shared_data("k8s-misuse-dev/dev.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("m.nadir");
    let (status, stderr) = with_stdout_closed_after(
        &[
            "train",
            "--data",
            s(&data),
            "--model",
            "hybrid",
            "--max-train-rows",
            "500",
            "--epochs",
            "1",
            "--quiet",
            "--no-plots",
            "--resamples",
            "0",
            "-o",
            s(&bundle),
        ],
        0,
    );
    assert_quiet_stop(status, &stderr);
    assert!(bundle.exists(), "the bundle was not saved: {stderr}");
    assert!(
        stderr.contains(&format!("train: saved {}", bundle.display())),
        "where the bundle went is said on stderr: {stderr}"
    );

    // What the bundle says of itself reads as words, not Rust debug forms.
    let (shown, _) = common::ok(&["inspect", s(&bundle)]);
    let split = shown
        .lines()
        .find(|l| l.starts_with("split"))
        .expect(&shown);
    assert!(split.contains("train/val/test"), "{split}");
    assert!(!shown.contains('{') && !shown.contains("Some("), "{shown}");
}

#[test]
fn inspect_capture_names_the_format_in_words() {
    let Some(capture) = nadir_testdata::shared_data("labelled/kihy-slowloris/slowloris.pcap")
    else {
        return;
    };
    let (text, _) = common::ok(&["inspect-capture", s(&capture)]);
    assert!(
        text.contains("format        pcap (µs timestamps, little-endian)"),
        "{text}"
    );
    let (json, _) = common::ok(&["inspect-capture", "--json", s(&capture)]);
    let value: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(value["format"], "pcap (µs timestamps, little-endian)");
}

#[test]
fn an_existing_output_survives_a_run_that_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("flows.csv");
    std::fs::write(&existing, "precious\n").unwrap();
    let missing = dir.path().join("missing.pcap");
    fails(&["extract", s(&missing), "-o", s(&existing)]);
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "precious\n");
    assert!(!dir.path().join("flows.csv.partial").exists());
}

/// The `error:` line of a failed run.
fn error_line(args: &[&str]) -> String {
    let stderr = fails(args);
    stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line for {args:?}: {stderr}"))
        .to_string()
}

#[test]
fn error_messages_repeat_no_clause_no_path_and_show_no_debug_forms() {
    let dir = tempfile::tempdir().unwrap();
    let missing_csv = dir.path().join("missing.csv");
    let missing_bundle = dir.path().join("missing.nadir");
    let not_a_bundle = dir.path().join("bad.csv");
    std::fs::write(&not_a_bundle, "a,b\n1,2\n").unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["dataset", "summarize", s(&missing_csv)],
        vec![
            "train",
            "--data",
            s(&missing_csv),
            "--model",
            "hybrid",
            "-o",
            "x.nadir",
        ],
        vec![
            "evaluate",
            "--model",
            s(&missing_bundle),
            "--data",
            s(&missing_csv),
        ],
        vec!["inspect", s(&missing_bundle)],
        vec!["inspect", s(&not_a_bundle)],
        vec!["extract", s(&not_a_bundle), "-o", "/nonexistent-dir/x.csv"],
    ];
    for args in cases {
        let line = error_line(&args);
        let clauses: Vec<&str> = line.trim_start_matches("error: ").split(": ").collect();
        for (i, clause) in clauses.iter().enumerate() {
            assert!(
                !clauses[i + 1..].contains(clause),
                "`{clause}` twice in {line}"
            );
        }
        let path_mentions = line.matches(s(&missing_csv)).count();
        assert!(path_mentions <= 1, "the path {path_mentions} times: {line}");
        for debug in ["{", "Some(", "None", "\"\""] {
            assert!(!line.contains(debug), "debug form `{debug}` in {line}");
        }
    }
}

#[test]
fn every_verb_help_shows_examples() {
    let verbs: [&[&str]; 10] = [
        &["inspect-capture"],
        &["extract"],
        &["dataset", "summarize"],
        &["train"],
        &["evaluate"],
        &["inspect"],
        &["detect"],
        &["explain"],
        &["demo"],
        &["watch"],
    ];
    for verb in verbs {
        let mut args = verb.to_vec();
        args.push("--help");
        let (help, _) = common::ok(&args);
        let examples = help
            .lines()
            .filter(|l| l.trim_start().starts_with(&format!("nadir {}", verb[0])))
            .count();
        assert!(
            examples >= 1,
            "`nadir {}` shows no example:\n{help}",
            verb.join(" ")
        );
        assert!(!help.contains("long help"), "{help}");
    }
}

#[test]
fn peak_live_flows_over_files_read_one_after_another_is_the_largest_not_the_sum() {
    let Some(capture) = nadir_testdata::shared_data("labelled/kihy-slowloris/slowloris.pcap")
    else {
        return;
    };
    let peak = |files: usize| -> u64 {
        let mut args = vec!["extract"];
        args.extend(std::iter::repeat_n(s(&capture), files));
        args.extend(["-o", "/dev/null", "--format", "csv"]);
        let (_, stderr) = common::ok(&args);
        let at = stderr.find("peak live ").expect("a peak in the summary") + "peak live ".len();
        stderr[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let null_was_a_device = is_char_device("/dev/null");
    let one = peak(1);
    assert!(one > 0);
    assert_eq!(peak(3), one);
    // `-o /dev/null` writes through the device: no file renamed over it, no sidecar beside it.
    if null_was_a_device {
        assert!(is_char_device("/dev/null"), "extract replaced /dev/null");
        assert!(!std::path::Path::new("/dev/null.roles.json").exists());
    }
}

fn is_char_device(path: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

#[test]
fn a_pcapng_packet_before_any_interface_says_so() {
    // A section header, then an enhanced packet block for interface 0, no interface block.
    let mut bytes = Vec::new();
    let block = |bytes: &mut Vec<u8>, kind: u32, body: &[u8]| {
        let len = (12 + body.len()) as u32;
        bytes.extend_from_slice(&kind.to_le_bytes());
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(body);
        bytes.extend_from_slice(&len.to_le_bytes());
    };
    let mut shb = vec![];
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut bytes, 0x0a0d_0d0a, &shb);
    let mut epb = vec![0u8; 20];
    epb[12..16].copy_from_slice(&4u32.to_le_bytes());
    epb[16..20].copy_from_slice(&4u32.to_le_bytes());
    epb.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    block(&mut bytes, 6, &epb);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("no-interface.pcapng");
    std::fs::write(&file, &bytes).unwrap();
    let stderr = fails(&["extract", s(&file), "-o", "/dev/null"]);
    assert!(
        stderr.contains("no interface description block came before it"),
        "{stderr}"
    );
    assert!(!stderr.contains("defines only 0"), "{stderr}");
    assert!(!stderr.contains("the 0 packets before it"), "{stderr}");
}

/// A full disk (`/dev/full`: every write fails with ENOSPC) is an error naming the cause, not a
/// run that says its records were written; and a device given as the output is written in
/// place, never replaced by a file (found: `-o /dev/full` renamed a regular file over it).
#[cfg(feature = "ml")]
#[test]
fn a_full_disk_is_an_error_and_a_device_output_stays_a_device() {
    if !is_char_device("/dev/full") {
        eprintln!("skipped: no /dev/full character device here");
        return;
    }
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bundle = root.join("examples/models/demo-k8s-autoencoder.nadir");
    let scan = root.join("examples/data/k8s-nmap-tcp-syn-scan.pcap");
    for args in [
        vec![
            "detect",
            "--model",
            s(&bundle),
            s(&scan),
            "--no-progress",
            "-o",
            "/dev/full",
            "--format",
            "jsonl",
        ],
        vec![
            "extract",
            s(&scan),
            "--no-progress",
            "-o",
            "/dev/full",
            "--format",
            "csv",
        ],
    ] {
        let err = fails(&args);
        assert!(
            err.contains("No space left on device"),
            "{}: {err}",
            args[0]
        );
        assert!(
            is_char_device("/dev/full"),
            "{} replaced /dev/full",
            args[0]
        );
    }
}
