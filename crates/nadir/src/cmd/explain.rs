//! `nadir explain`: one flow's explanation in full.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use nadir_detect::{AlertWriter, ExplainPolicy};
use nadir_model::ComputeDevice;

use super::detect::{detect_options, load_detector, run_detection};
use super::is_closed_output;
use super::FlowArgs;

/// Print why one flow got its score: every input's contribution, largest first.
///
/// The flow is found by its id as `extract` and `detect` write it (`Flow ID` for cic
/// features, `src-dst-srcport-dstport-protocol` of its first packet). A 5-tuple reused by
/// several flows (a connection split by a timeout) prints each of them.
///
/// Examples:
///
///   nadir explain --model k8s.nadir --flow-id 10.0.2.15-192.168.56.102-43232-80-6 slowloris.pcap
///
///   nadir explain --model k8s.nadir --flow-id 10.0.2.15-192.168.56.102-43232-80-6 flows.csv --json
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The bundle written by `nadir train`.
    #[arg(long, short = 'm', value_name = "BUNDLE")]
    pub model: PathBuf,

    /// The flow's id.
    #[arg(long, value_name = "ID")]
    pub flow_id: String,

    /// Captures or one feature table holding the flow.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// The threshold the verdict is given against (see `nadir detect --help`).
    #[arg(
        long,
        value_name = "VALUE|NAME",
        default_value = "default",
        allow_negative_numbers = true
    )]
    pub threshold: String,

    /// Print the record as JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// Where the model runs: cpu, or cuda / wgpu in a nadir built with `--features cuda` /
    /// `--features wgpu`.
    #[arg(long, value_enum, default_value_t = ComputeDevice::Cpu, value_name = "DEVICE")]
    pub device: ComputeDevice,

    #[command(flatten)]
    pub flow: FlowArgs,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let detect_args = super::detect::Args {
        model: args.model.clone(),
        inputs: args.inputs.clone(),
        out: None,
        format: None,
        scoring: super::detect::ScoringArgs {
            all: true,
            threshold: args.threshold.clone(),
            explain: super::detect::ExplainArg::All,
            top: usize::MAX,
            batch: 1024,
            device: args.device,
        },
        plot: None,
        flow: args.flow.clone(),
        pods: Default::default(),
        no_progress: true,
    };
    let mut options = detect_options(&detect_args)?;
    options.only_flow_id = Some(args.flow_id.clone());
    options.explain = ExplainPolicy::All;
    let detector = load_detector(&args.model, &args.threshold, args.device)?;
    let mut writer = if args.json {
        AlertWriter::new(
            nadir_features::output::OutputFormat::JsonLines,
            Box::new(std::io::stdout()),
            "stdout",
            false,
        )?
    } else {
        AlertWriter::text(Box::new(std::io::stdout()), "stdout")
    };
    let summary = run_detection(&detector, &args.inputs, &options, &mut writer, true);
    let written = writer.finish().map_err(anyhow::Error::from);
    if summary
        .as_ref()
        .err()
        .or(written.as_ref().err())
        .is_some_and(is_closed_output)
    {
        return Ok(ExitCode::SUCCESS);
    }
    summary?;
    let written = written?;
    if written == 0 {
        bail!(
            "no flow with id {} in {} (ids are as `nadir extract` writes them; `nadir detect --all -o -` lists every flow)",
            args.flow_id,
            args.inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
