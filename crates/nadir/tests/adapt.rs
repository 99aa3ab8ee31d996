//! `nadir adapt` through the binary: a bundle trained on the Kubernetes sample, adapted to a
//! few labelled flows of the development split; and the support sets it must refuse.
#![cfg(feature = "ml")]

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{fails, ok, s, train_quick};

/// A hybrid bundle trained for 2 epochs on the 400-row Kubernetes sample (once per binary).
fn sample_bundle() -> Option<PathBuf> {
    static BUNDLE: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            let data = nadir_testdata::shared_data("k8s-misuse-sample/sample.csv")?;
            let dir = tempfile::tempdir().unwrap().keep();
            let bundle = dir.join("sample-hybrid.nadir");
            train_quick(&data, "hybrid", &bundle);
            Some(bundle)
        })
        .clone()
}

/// The header and the first `per_label` rows of each label in `labels` of the development
/// flows, with `edit` applied to every line (header included) split into fields.
fn support_csv(
    dir: &Path,
    name: &str,
    labels: &[&str],
    per_label: usize,
    edit: impl Fn(&mut Vec<String>),
) -> Option<PathBuf> {
    let dev = nadir_testdata::shared_data("k8s-misuse-dev/dev.csv")?;
    let text = std::fs::read_to_string(dev).unwrap();
    let mut lines = text.lines();
    let mut header: Vec<String> = lines.next()?.split(',').map(str::to_string).collect();
    let mut out = Vec::new();
    edit(&mut header);
    out.push(header.join(","));
    let mut taken = vec![0usize; labels.len()];
    for line in lines {
        let mut fields: Vec<String> = line.split(',').map(str::to_string).collect();
        let label = fields.last().map(String::as_str).unwrap_or("");
        if let Some(i) = labels.iter().position(|l| *l == label) {
            if taken[i] < per_label {
                taken[i] += 1;
                edit(&mut fields);
                out.push(fields.join(","));
            }
        }
    }
    let path = dir.join(name);
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    Some(path)
}

fn weights_sha(bundle: &Path) -> String {
    let (stdout, _) = ok(&["inspect", s(bundle)]);
    stdout
        .lines()
        .find(|l| l.starts_with("weights"))
        .and_then(|l| l.split("sha256 ").nth(1))
        .unwrap_or_else(|| panic!("no weights line in:\n{stdout}"))
        .trim()
        .to_string()
}

#[test]
fn adapt_fine_tunes_a_bundle_on_a_few_labelled_flows() {
    let Some(bundle) = sample_bundle() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(support) = support_csv(dir.path(), "few.csv", &["0", "4"], 10, |_| {}) else {
        return;
    };
    let adapted = dir.path().join("adapted.nadir");
    let (stdout, _) = ok(&[
        "adapt",
        "--model",
        s(&bundle),
        "--support",
        s(&support),
        "--steps",
        "15",
        "-o",
        s(&adapted),
    ]);
    assert!(stdout.contains("20 rows"), "{stdout}");
    assert!(stdout.contains("15 SGD steps"), "{stdout}");
    assert!(stdout.contains("threshold kept"), "{stdout}");
    let before = weights_sha(&bundle);
    let after = weights_sha(&adapted);
    assert_ne!(before, after, "adaptation left the weights unchanged");
    // The adapted bundle is a working bundle: it scores labelled data.
    let (evaluation, _) = ok(&[
        "evaluate",
        "--model",
        s(&adapted),
        "--data",
        s(&support),
        "--resamples",
        "0",
    ]);
    assert!(evaluation.contains("accuracy"), "{evaluation}");
    // Its provenance names the support file.
    let (inspect, _) = ok(&["inspect", s(&adapted)]);
    assert!(inspect.contains("few.csv"), "{inspect}");
}

#[test]
fn adapt_refuses_support_rows_that_do_not_match_the_bundle() {
    let Some(bundle) = sample_bundle() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never.nadir");

    // A feature column missing: named in the error, nothing written.
    let drop_column = |fields: &mut Vec<String>| {
        fields.remove(7); // `Flow Duration`
    };
    let Some(narrow) = support_csv(dir.path(), "narrow.csv", &["0", "4"], 5, drop_column) else {
        return;
    };
    let stderr = fails(&[
        "adapt",
        "--model",
        s(&bundle),
        "--support",
        s(&narrow),
        "-o",
        s(&out),
    ]);
    assert!(stderr.contains("Flow Duration"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists());

    // One class only.
    let benign = support_csv(dir.path(), "benign.csv", &["0"], 10, |_| {}).unwrap();
    let stderr = fails(&[
        "adapt",
        "--model",
        s(&bundle),
        "--support",
        s(&benign),
        "-o",
        s(&out),
    ]);
    assert!(stderr.contains("at least two classes"), "{stderr}");
    assert!(!out.exists());

    // No label column.
    let unlabelled = support_csv(dir.path(), "unlabelled.csv", &["0", "4"], 5, |fields| {
        fields.pop();
    })
    .unwrap();
    let stderr = fails(&[
        "adapt",
        "--model",
        s(&bundle),
        "--support",
        s(&unlabelled),
        "-o",
        s(&out),
    ]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists());

    // Zero steps, a bad rate.
    let good = support_csv(dir.path(), "good.csv", &["0", "4"], 5, |_| {}).unwrap();
    for (option, expected) in [
        ("--steps=0", "steps"),
        ("--lr=-1", "lr"),
        ("--lr=NaN", "lr"),
    ] {
        let stderr = fails(&[
            "adapt",
            "--model",
            s(&bundle),
            "--support",
            s(&good),
            option,
            "-o",
            s(&out),
        ]);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!out.exists());
    }
}

/// `train --mode maml` (first-order MAML, one task per scenario) makes a bundle that `adapt`
/// takes.
#[test]
fn maml_training_then_adaptation() {
    let Some(data) = nadir_testdata::shared_data("k8s-misuse-sample/sample.csv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let meta = dir.path().join("meta.nadir");
    let (stdout, _) = ok(&[
        "train",
        "--data",
        s(&data),
        "--mode",
        "maml",
        "--split",
        "group",
        "--quiet",
        "--no-plots",
        "--resamples",
        "0",
        "-o",
        s(&meta),
    ]);
    assert!(stdout.contains("maml"), "{stdout}");
    let support = support_csv(dir.path(), "few.csv", &["0", "3"], 5, |_| {}).unwrap();
    let adapted = dir.path().join("adapted.nadir");
    ok(&[
        "adapt",
        "--model",
        s(&meta),
        "--support",
        s(&support),
        "-o",
        s(&adapted),
    ]);
    assert_ne!(weights_sha(&meta), weights_sha(&adapted));
}

#[test]
fn adapt_help_has_an_example() {
    let (stdout, _) = ok(&["adapt", "--help"]);
    assert!(stdout.contains("nadir adapt --model"), "{stdout}");
    assert!(stdout.contains("--support"), "{stdout}");
}
