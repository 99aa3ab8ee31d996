//! `nadir demo`: detection in seconds on captures and a bundle that ship inside nadir.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use nadir_detect::{AlertWriter, Bundle, DetectOptions, Detector, ThresholdChoice};
use nadir_features::output::OutputFormat;

use super::detect::{print_summary, run_detection, write_timeline};
use super::is_closed_output;

/// The demo bundle: an autoencoder trained by nadir on the benign flows of the real Kubernetes
/// development split (README, "The demo bundle", gives the command that rebuilt it).
pub const DEMO_BUNDLE: &[u8] =
    include_bytes!("../../../../examples/models/demo-k8s-autoencoder.nadir");

/// Alerts shown on screen per capture (all of them are in flows.jsonl).
const SHOWN: u64 = 4;

/// The shipped captures (examples/data/README.md): two nmap scans between Kubernetes pods
/// and one benign TLS session; none of them was seen in training.
const CAPTURES: [(&str, &[u8]); 3] = [
    (
        "k8s-nmap-tcp-syn-scan.pcap",
        include_bytes!("../../../../examples/data/k8s-nmap-tcp-syn-scan.pcap"),
    ),
    (
        "k8s-nmap-udp-scan.pcap",
        include_bytes!("../../../../examples/data/k8s-nmap-udp-scan.pcap"),
    ),
    (
        "cicids2017-tls-benign.pcap",
        include_bytes!("../../../../examples/data/cicids2017-tls-benign.pcap"),
    ),
];

/// Run detection on captures and a model that ship inside nadir, and show the alerts.
///
/// The bundle is an autoencoder that nadir trained on the benign flows of a real Kubernetes
/// cluster (the misuse dataset's development split): it learned what that cluster's normal
/// traffic looks like, with no attack labels, and flags a flow whose CICFlowMeter features it
/// cannot reconstruct (above the 99th percentile of held-out benign flows). The captures were
/// never seen in training: an nmap SYN scan and an nmap UDP scan between Kubernetes pods
/// (ConCap) and one benign TLS session from another network (CIC-IDS2017), which such a model
/// flags too: it is unlike anything that cluster does. nadir computes their features, scores
/// every flow, prints each alert with the features whose reconstruction failed most, and
/// writes the records, a score timeline and the inputs to --out.
///
/// Examples:
///
///   nadir demo
///
///   nadir demo --out /tmp/nadir-demo
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Folder for the captures, the bundle, every flow's record and the timeline.
    #[arg(long, short = 'o', default_value = "demo-out", value_name = "DIR")]
    pub out: PathBuf,
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

pub fn run(args: Args) -> Result<ExitCode> {
    match demo(&args) {
        // `nadir demo | head`: the reader went away; stop quietly.
        Err(err) if is_closed_output(&err) => Ok(ExitCode::SUCCESS),
        other => other,
    }
}

fn demo(args: &Args) -> Result<ExitCode> {
    let dir = &args.out;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let bundle_path = dir.join("demo-k8s-autoencoder.nadir");
    write(&bundle_path, DEMO_BUNDLE)?;
    let mut captures = Vec::new();
    for (name, bytes) in CAPTURES {
        let path = dir.join(name);
        write(&path, bytes)?;
        captures.push(path);
    }
    let bundle = Bundle::from_bytes(DEMO_BUNDLE).context("the demo bundle built into nadir")?;
    outln!(
        "nadir demo: {} model trained on the benign rows of {} ({} training rows), scoring {} captures it never saw\n",
        bundle.manifest.model_kind,
        bundle
            .manifest
            .training_data
            .sources
            .first()
            .map_or("?", |s| s.rsplit('/').next().unwrap_or(s)),
        bundle.manifest.training_data.rows,
        captures.len()
    );
    let detector = Detector::new(bundle, &ThresholdChoice::Default)?;

    // The alerts, readable, on stdout: the first few of each capture, and its timeline.
    let options = DetectOptions::default();
    let mut timelines = Vec::new();
    for capture in &captures {
        outln!("== {}", capture.display());
        let mut screen =
            AlertWriter::text(Box::new(std::io::stdout()), "stdout").showing_at_most(SHOWN);
        let summary = run_detection(
            &detector,
            std::slice::from_ref(capture),
            &options,
            &mut screen,
            true,
        )?;
        if screen.finish()? == 0 {
            outln!("no alert");
        }
        outln!();
        let stem = capture
            .file_stem()
            .map_or("capture".into(), |s| s.to_string_lossy());
        timelines.extend(write_timeline(
            &summary,
            &dir.join(format!("{stem}-timeline.png")),
        )?);
    }

    // Every flow's record, and the timeline, in the folder.
    let records = dir.join("flows.jsonl");
    let file = std::fs::File::create(&records)
        .with_context(|| format!("cannot create output {}", records.display()))?;
    let mut writer = AlertWriter::new(
        OutputFormat::JsonLines,
        Box::new(file),
        &records.display().to_string(),
        false,
    )?;
    let all = DetectOptions {
        all: true,
        ..DetectOptions::default()
    };
    let summary = run_detection(&detector, &captures, &all, &mut writer, true)?;
    writer.finish()?;
    print_summary(&summary, &detector, &records.display().to_string());
    outln!("\nfiles in {}:", dir.display());
    outln!(
        "  {}  every flow: score, verdict, explanation of the alerts",
        records.display()
    );
    outln!("  scores over time with the threshold, per capture:");
    for timeline in &timelines {
        outln!("    {timeline}");
    }
    outln!("  {}  the bundle (nadir inspect it)", bundle_path.display());
    for capture in &captures {
        outln!("  {}", capture.display());
    }
    outln!(
        "\nnext: nadir explain --model {} --flow-id ID {}   (ids are in {})",
        bundle_path.display(),
        captures[0].display(),
        records.display()
    );
    Ok(ExitCode::SUCCESS)
}
