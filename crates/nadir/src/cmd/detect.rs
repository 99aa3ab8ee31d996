//! `nadir detect`: a bundle + captures (or a feature table) -> scored, explained alerts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use nadir_detect::detect::DetectSummary;
use nadir_detect::{
    detect_captures, detect_table, AlertWriter, Bundle, DetectOptions, Detector, ExplainPolicy,
    ThresholdChoice,
};
use nadir_eval::plot::{plot_timeline, TimelinePoint};
use nadir_features::output::OutputFormat;
use nadir_model::ComputeDevice;
use nadir_pipeline::Progress;

use super::{
    check_inputs_exist, is_capture, is_closed_output, output_format, FlowArgs, FormatArg, Output,
    PodArgs,
};

const LONG_ABOUT: &str = "\
Score captures (or a feature table) with a trained bundle: which flows look wrong, and why.

INPUT is a capture (pcap/pcapng, .gz/.zst, `-` for stdin) or a feature table written by
`nadir extract` (.csv, .csv.gz, .parquet). From a capture nadir computes exactly the features
the bundle was trained on (cic statistics, first bytes or packet windows: read from the
bundle's columns, not from a flag), applies the bundle's fitted preprocessing, scores flows in
batches as the flow table finishes them, and flags a flow when its score reaches the threshold.
Bundles on first bytes or packet windows score a flow as soon as its K-th packet arrives
(`early` in the record).

Each flagged flow gets an explanation: the input features that moved its score most, with their
raw values and contributions (integrated gradients from the training median for classifiers,
whose contributions add up to score - baseline score; each feature's share of the
reconstruction error for the autoencoder; for first-bytes models the packet, offset and header
field of each byte).

Output: without --out, a readable line per alert on stdout; --out FILE writes one record per
flow as JSON lines, CSV or Parquet (from the extension or --format; `-o -` is JSON lines on
stdout). Records: flow_id (as `extract` writes it), source, 5-tuple, tunnel, start/end, packets,
bytes, score, threshold, verdict, class, early, explanation. A summary goes to stderr: packets
read = decoded + skipped, flows = scored + unscorable, alerts by class, destination and source.

Examples:
  nadir detect --model k8s.nadir capture.pcap
  nadir detect --model k8s.nadir a.pcap b.pcapng.zst -o alerts.jsonl --plot timeline.png
  nadir detect --model k8s.nadir flows.csv --all -o scored.parquet
  nadir detect --model ldpi.nadir capture.pcap --threshold p99.9
  tcpdump -w - -i eth0 | nadir detect --model k8s.nadir - -o -";

/// Captures or a feature table -> scored, explained alerts.
#[derive(clap::Args, Debug)]
#[command(long_about = LONG_ABOUT)]
pub struct Args {
    /// The bundle written by `nadir train`.
    #[arg(long, short = 'm', value_name = "BUNDLE")]
    pub model: PathBuf,

    /// Captures (pcap, pcapng, .gz/.zst, `-` for stdin) or one feature table (CSV, .csv.gz,
    /// Parquet); told apart by their first bytes, not their names.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Write one record per flow here (JSON lines, CSV or Parquet); `-` = JSON lines on stdout.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Output format (default: from the --out extension, else JSON lines).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,

    #[command(flatten)]
    pub scoring: ScoringArgs,

    /// Draw scores over time with the threshold line and alerts marked (PNG + SVG).
    #[arg(long, value_name = "FILE.png")]
    pub plot: Option<PathBuf>,

    #[command(flatten)]
    pub flow: FlowArgs,

    #[command(flatten)]
    pub pods: PodArgs,

    /// Never draw the progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

/// How flows are scored and which are written: shared by `detect` and `watch`.
#[derive(clap::Args, Debug, Clone)]
pub struct ScoringArgs {
    /// Write every scored flow, not only anomalies.
    #[arg(long)]
    pub all: bool,

    /// The threshold: a number in the score's units (the log-odds of attack for classifiers;
    /// `nadir inspect` names them), or one the bundle stores: default, p99, p99.9, p99.99,
    /// max, 1.01max (benign validation scores; `nadir inspect` lists them).
    #[arg(
        long,
        value_name = "VALUE|NAME",
        default_value = "default",
        allow_negative_numbers = true
    )]
    pub threshold: String,

    /// Which flows get an explanation.
    #[arg(long, value_enum, default_value_t = ExplainArg::Alerts)]
    pub explain: ExplainArg,

    /// Contributions listed per explanation.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub top: usize,

    /// Flows scored per model call (at most).
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub batch: usize,

    /// Where the model runs: cpu, or cuda / wgpu in a nadir built with `--features cuda` /
    /// `--features wgpu`.
    #[arg(long, value_enum, default_value_t = ComputeDevice::Cpu, value_name = "DEVICE")]
    pub device: ComputeDevice,
}

impl ScoringArgs {
    /// The scoring part of the options (flow settings and the rest at their defaults).
    pub fn options(&self) -> Result<DetectOptions> {
        if self.batch == 0 {
            bail!("--batch must be at least 1");
        }
        Ok(DetectOptions {
            all: self.all,
            explain: self.explain.into(),
            top_features: self.top,
            batch: self.batch,
            ..DetectOptions::default()
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExplainArg {
    /// Flagged flows only.
    Alerts,
    /// Every written flow.
    All,
    /// None (fastest).
    None,
}

impl From<ExplainArg> for ExplainPolicy {
    fn from(arg: ExplainArg) -> Self {
        match arg {
            ExplainArg::Alerts => ExplainPolicy::Alerts,
            ExplainArg::All => ExplainPolicy::All,
            ExplainArg::None => ExplainPolicy::None,
        }
    }
}

/// Options from the arguments (shared with `nadir explain` and `nadir demo`).
pub fn detect_options(args: &Args) -> Result<DetectOptions> {
    Ok(DetectOptions {
        flow: args.flow.flow_config()?,
        cic_mode: args.flow.cic_mode(),
        pods: args.pods.open(std::time::Duration::from_secs(10))?,
        ..args.scoring.options()?
    })
}

/// Loads the bundle, resolves the threshold and moves the model to `device`.
pub fn load_detector(model: &Path, threshold: &str, device: ComputeDevice) -> Result<Detector> {
    // An unbuilt device is a usage error: say so before reading the bundle.
    device.device()?;
    let bundle = Bundle::load(model)?;
    let choice: ThresholdChoice = threshold.parse()?;
    Detector::new(bundle, &choice)
        .and_then(|detector| detector.on_device(device))
        .with_context(|| format!("preparing {} for detection", model.display()))
}

/// Runs detection on the inputs into `writer`.
pub fn run_detection(
    detector: &Detector,
    inputs: &[PathBuf],
    options: &DetectOptions,
    writer: &mut AlertWriter,
    no_progress: bool,
) -> Result<DetectSummary> {
    let tables = inputs.iter().filter(|p| !is_capture(p)).count();
    match (tables, inputs.len()) {
        (0, _) => {
            let mut progress = Progress::new(inputs, no_progress);
            let summary = detect_captures(detector, inputs, options, writer, &mut progress);
            progress.finish();
            Ok(summary?)
        }
        (1, 1) => Ok(detect_table(detector, &inputs[0], options, writer)
            .with_context(|| format!("scoring {}", inputs[0].display()))?),
        _ => bail!(
            "give either captures or one feature table ({tables} of the {} inputs are tables)",
            inputs.len()
        ),
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let options = detect_options(&args)?;
    check_inputs_exist(&args.inputs)?;
    let detector = load_detector(&args.model, &args.scoring.threshold, args.scoring.device)?;
    let format = output_format(args.format, args.out.as_deref(), OutputFormat::JsonLines);
    let (mut writer, target, output) = match &args.out {
        None => (
            AlertWriter::text(Box::new(std::io::stdout()), "stdout"),
            "stdout".to_string(),
            None,
        ),
        Some(path) => {
            let target = match path.to_str() {
                Some("-") => "stdout".to_string(),
                _ => path.display().to_string(),
            };
            let (output, out) = Output::open(path)?;
            (
                AlertWriter::new(format, out, &target, options.pods.is_some())?,
                target,
                Some(output),
            )
        }
    };
    let summary = run_detection(
        &detector,
        &args.inputs,
        &options,
        &mut writer,
        args.no_progress,
    );
    // Whatever happened, what was written is flushed.
    let written = writer.written();
    let finished = writer.finish().map_err(anyhow::Error::from);
    if summary
        .as_ref()
        .err()
        .or(finished.as_ref().err())
        .is_some_and(is_closed_output)
    {
        // `nadir detect -o - | head`: stop quietly, as a Unix tool does, and say how far it got.
        eprintln!("detect: {target} was closed after {written} records; stopped");
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(output) = output {
        let complete = summary.is_ok() && finished.is_ok();
        let kept = output.finish(complete)?;
        if !complete {
            eprintln!(
                "detect: the {written} records written so far are in {}",
                kept.display()
            );
        }
    }
    let summary = summary?;
    finished?;
    print_summary(&summary, &detector, &target);
    if let Some(plot) = &args.plot {
        let files = write_timeline(&summary, plot)?;
        eprintln!("  timeline: {}", files.join(", "));
    }
    if let Err(broken) = summary.check_accounting() {
        bail!("internal accounting error: {broken}");
    }
    if summary.run.errors.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for error in &summary.run.errors {
            eprintln!("error: {error}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// The score timeline as PNG + SVG beside `plot`.
pub fn write_timeline(summary: &DetectSummary, plot: &Path) -> Result<Vec<String>> {
    let first = summary
        .timeline
        .points
        .iter()
        .map(|p| p.ts_ns)
        .min()
        .unwrap_or(0);
    let points: Vec<TimelinePoint> = summary
        .timeline
        .points
        .iter()
        .map(|p| TimelinePoint {
            seconds: (p.ts_ns - first) as f64 / 1e9,
            score: f64::from(p.score),
            anomaly: p.anomaly,
        })
        .collect();
    let files = plot_timeline(
        "nadir detect: flow scores over time",
        &points,
        summary.threshold,
        &plot.with_extension(""),
    )?;
    Ok(files.iter().map(|f| f.display().to_string()).collect())
}

pub fn print_summary(summary: &DetectSummary, detector: &Detector, target: &str) {
    // Whatever went to stdout comes first on a terminal.
    let _ = std::io::stdout().flush();
    let run = &summary.run;
    let manifest = &detector.bundle().manifest;
    eprintln!(
        "detect: {} model ({} features), threshold {:.6} ({})",
        manifest.model_kind,
        summary.family,
        detector.threshold().value,
        detector.threshold().source
    );
    if summary.family == "table" {
        eprintln!(
            "  rows {} = scored {} + unscorable {}",
            summary.table_rows, summary.scored, summary.unscorable
        );
    } else {
        eprintln!(
            "  packets read {} = decoded {} + skipped {}",
            run.packets_read,
            run.flows.packets,
            run.skipped.total()
        );
        for (reason, count) in run.skipped.iter() {
            eprintln!("    skipped {count:>10}  {reason}");
        }
        let dropped = match summary.dropped {
            0 => String::new(),
            n => format!(" + dropped {n} (scoring queue full)"),
        };
        eprintln!(
            "  flows {} = scored {} + unscorable {}{dropped}  (evicted early by --max-flows: {}; scored before their end: {})",
            run.flows.flows, summary.scored, summary.unscorable, run.flows.evicted, summary.early
        );
    }
    if summary.imputed_cells > 0 {
        eprintln!(
            "  {} NaN/inf feature cells replaced by the training median (as training did)",
            summary.imputed_cells
        );
    }
    eprintln!(
        "  anomalies {} of {} scored; {} records to {target}; {} explained ({} distinct inputs){}",
        summary.anomalies,
        summary.scored,
        summary.written,
        summary.explained,
        summary.attributions_computed,
        match summary.worst_completeness {
            Some(gap) => format!(
                " (integrated gradients; largest completeness gap {:.2}%)",
                gap * 100.0
            ),
            None => String::new(),
        }
    );
    if summary.anomalies > 0 {
        let classes: Vec<String> = summary
            .anomalies_by_class
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        eprintln!("  by class: {}", classes.join(", "));
        let top = |tally: &nadir_detect::detect::Tally| {
            let mut parts: Vec<String> = tally
                .top(5)
                .iter()
                .map(|(k, n)| format!("{k} ({n})"))
                .collect();
            if tally.other > 0 {
                parts.push(format!("others ({})", tally.other));
            }
            parts.join(", ")
        };
        eprintln!(
            "  top destinations: {}",
            top(&summary.anomalies_by_destination)
        );
        eprintln!("  top sources: {}", top(&summary.anomalies_by_source));
        if !summary.anomalies_by_src_workload.top(1).is_empty() {
            eprintln!(
                "  by source workload: {}",
                top(&summary.anomalies_by_src_workload)
            );
            eprintln!(
                "  by destination workload: {}",
                top(&summary.anomalies_by_dst_workload)
            );
        }
    }
    let _ = std::io::stderr().flush();
}
