//! `--device`: every verb that runs a model takes it; `cpu` trains and scores; a device
//! whose cargo feature was not built in is a one-line error naming the feature, not a panic.
//! (CUDA and wgpu runs need a GPU: CI only compile-checks them.)
#![cfg(feature = "ml")]

mod common;

use common::{nadir, s};

/// The binary's stdout, after checking it succeeded.
fn ok(args: &[&str]) -> String {
    common::ok(args).0
}

/// The devices this binary was built without, with their cargo features.
fn unbuilt() -> Vec<(&'static str, &'static str)> {
    let mut devices = Vec::new();
    if !cfg!(feature = "cuda") {
        devices.push(("cuda", "CUDA"));
    }
    if !cfg!(feature = "wgpu") {
        devices.push(("wgpu", "wgpu"));
    }
    devices
}

#[test]
fn every_model_verb_takes_device() {
    let mut verbs = vec!["train", "evaluate", "detect", "explain"];
    if cfg!(feature = "live") {
        verbs.push("watch");
    }
    for verb in verbs {
        let help = ok(&[verb, "--help"]);
        assert!(help.contains("--device <DEVICE>"), "{verb} --help:\n{help}");
        assert!(
            help.contains("cpu") && help.contains("cuda") && help.contains("wgpu"),
            "{verb}"
        );
    }
}

#[test]
fn device_cpu_trains_and_evaluates() {
    let Some(sample) = nadir_testdata::shared_data("k8s-misuse-sample/sample.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("cpu.nadir");
    let stdout = ok(&[
        "train",
        "--data",
        s(&sample),
        "--model",
        "hybrid",
        "--epochs",
        "1",
        "--resamples",
        "20",
        "--no-plots",
        "--quiet",
        "--device",
        "cpu",
        "-o",
        s(&bundle),
    ]);
    assert!(stdout.contains("test evaluation"), "{stdout}");
    assert!(bundle.exists());
    let out = dir.path().join("eval");
    ok(&[
        "evaluate",
        "--model",
        s(&bundle),
        "--data",
        s(&sample),
        "--resamples",
        "20",
        "--no-plots",
        "--device",
        "cpu",
        "-o",
        s(&out),
    ]);
    assert!(out.join("evaluation.json").exists());
}

#[test]
fn an_unbuilt_device_is_a_one_line_error_naming_the_feature() {
    let Some(sample) = nadir_testdata::shared_data("k8s-misuse-sample/sample.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The device is checked before the bundle is read: no bundle is needed.
    let bundle = dir.path().join("absent.nadir");
    let (sample, bundle) = (s(&sample), s(&bundle));
    for (device, name) in unbuilt() {
        let mut runs: Vec<Vec<&str>> = vec![
            vec!["train", "--data", sample, "--model", "hybrid", "-o", bundle],
            vec!["evaluate", "--model", bundle, "--data", sample],
            vec!["detect", "--model", bundle, sample],
            vec!["explain", "--model", bundle, "--flow-id", "x", sample],
        ];
        if cfg!(feature = "live") {
            runs.push(vec![
                "watch",
                "--interface",
                "lo",
                "--model",
                bundle,
                "--no-metrics",
            ]);
        }
        for mut args in runs {
            args.extend(["--device", device]);
            let out = nadir(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}:\n{stderr}");
            assert!(!stderr.contains("panicked"), "{args:?}:\n{stderr}");
            let expected = format!(
                "this nadir was built without {name}; rebuild with `cargo build --release --features {device}`"
            );
            assert!(stderr.contains(&expected), "{args:?}:\n{stderr}");
            assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}:\n{stderr}");
        }
    }
}
