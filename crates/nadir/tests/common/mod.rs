//! Helpers shared by the binary's integration tests: running `nadir`, and a bundle trained
//! once per test binary on the real Kubernetes development flows.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn nadir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nadir"))
        .args(args)
        .output()
        .expect("running the nadir binary")
}

pub fn ok(args: &[&str]) -> (String, String) {
    let out = nadir(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "nadir {} failed:\nstdout:\n{stdout}\nstderr:\n{stderr}",
        args.join(" ")
    );
    (stdout, stderr)
}

pub fn fails(args: &[&str]) -> String {
    let out = nadir(args);
    assert!(
        !out.status.success(),
        "nadir {} should fail",
        args.join(" ")
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A `hybrid` bundle trained on the real Kubernetes development flows (cic columns), 2 epochs;
/// shared by the tests of this file (trained once).
pub fn k8s_bundle() -> Option<PathBuf> {
    static BUNDLE: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            let data = nadir_testdata::shared_data("k8s-misuse-dev/dev.csv")?;
            let dir = tempfile::tempdir().unwrap().keep();
            let bundle = dir.join("k8s-hybrid.nadir");
            train_quick(&data, "hybrid", &bundle);
            Some(bundle)
        })
        .clone()
}

/// `nadir train` for 2 epochs, no report extras.
pub fn train_quick(data: &Path, model: &str, bundle: &Path) {
    ok(&[
        "train",
        "--data",
        s(data),
        "--model",
        model,
        "--epochs",
        "2",
        "--quiet",
        "--no-plots",
        "--resamples",
        "0",
        "-o",
        s(bundle),
    ]);
}

pub fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
