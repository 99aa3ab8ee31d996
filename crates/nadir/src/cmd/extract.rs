//! `nadir extract`: captures -> flows -> feature rows (CSV, Parquet or JSON lines).
//!
//! Arguments only: the drivers (capture -> decode -> flow table -> rows) live in
//! `nadir_pipeline::extract`, shared with `detect` and `watch`. Each capture file
//! is read as its own stream; rows of all files go to one output.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::ValueEnum;
use nadir_features::bytes::{self, FirstBytesConfig};
use nadir_features::labels::LabelRules;
use nadir_features::output::OutputFormat;
use nadir_features::packets::{WindowConfig, WindowScope};
use nadir_pipeline::extract::{extract, ExtractSpec};
use nadir_pipeline::{Progress, RunSummary};

use super::{
    check_inputs_exist, is_closed_output, output_format, FlowArgs, FormatArg, Output, PodArgs,
};

const LONG_ABOUT: &str = "\
Captures -> flow features, one row per flow (cic, bytes) or per window (packets).

Feature families (--features):
  cic      The 87 columns of the Kubernetes misuse dataset / GintsEngelen CICFlowMeter
           (Flow ID ... Total TCP Flow Time, Label), same names and units.
           --cic-mode compat reproduces that tool, quirks included (default);
           --cic-mode fixed repairs its bugs and never writes NaN or Infinity.
  packets  Per-packet header vectors in windows of --window packets every --stride
           packets, over the whole capture (--window-scope capture, LLN's default:
           window 100, stride 1) or per flow (--window-scope flow). Per packet, in
           order: ip_len ttl protocol src_port dst_port tcp_window tcp_flags udp_len
           (the 8 LLN columns) time_delta (seconds since the previous packet of the
           sequence) direction (0 forward, 1 backward in its flow). Columns:
             capture scope: source window_index first_packet last_packet first_ts_ns
                            last_ts_ns padding label f0_ip_len ... f{W-1}_direction
             flow scope:    flow_id src_ip src_port dst_ip dst_port protocol
                            first_ts_ns last_ts_ns end_reason label window_index
                            first_packet last_packet padding f0_ip_len ...
           A sequence shorter than one window gives one window with `padding` zero
           rows in front. Values are raw: scale them downstream.
  bytes    The first --first-packets N packets x --first-bytes M bytes of each flow
           (LDPI; default 4 x 60) as uint8, from the IP header on, with addresses,
           ports and address-covering checksums zeroed, each packet cut or zero-padded
           to M and missing packets zero. Columns: flow_id src_ip src_port dst_ip
           dst_port protocol first_ts_ns last_ts_ns end_reason label packets
           b0_0 ... b{N-1}_{M-1}. A flow is written once: at its N-th packet, or at its
           end (FIN/RST, timeout, eviction, end of input) when it is shorter.

Labels (--labels RULES.toml): the first matching [[rule]] names a flow's label,
by attacker/victim address or CIDR, ports, protocol, time window or capture file;
unmatched flows get the file's `unlabelled` value (default empty). The label column
is always present. Example: examples/labels/slowloris.toml.

Output: --format csv|parquet|jsonl, or guessed from the -o extension; `-o -`
writes to stdout (CSV unless --format says otherwise). At the end a summary goes to
stderr: packets, skipped packets by reason, flows, evicted flows, rows. A capture
that breaks off mid-file keeps every flow of the packets read before the fault;
the error is reported and nadir exits non-zero after writing everything else.

Column roles: the table declares which columns are features and which are identity
(addresses, ports, window position), time (Timestamp, first_ts_ns), label or
bookkeeping (end_reason, padding): Parquet in its metadata, CSV and JSON lines in
OUT.roles.json beside the table. `train` and `detect` feed features only.

Examples:
  nadir extract slowloris.pcap -o flows.csv
  nadir extract a.pcap b.pcapng.zst -o flows.parquet --labels examples/labels/slowloris.toml
  nadir extract capture.pcap --features packets --window 100 --stride 1 -o windows.parquet
  nadir extract capture.pcap --features packets --window-scope flow --window 20 --stride 20 -o w.csv
  nadir extract capture.pcap --features bytes --first-packets 4 --first-bytes 60 -o bytes.parquet
  nadir extract big.pcap --threads 4 --max-flows 500000 -o - | head";

/// Captures -> flow features (cic, packets, bytes) as CSV, Parquet or JSON lines.
#[derive(clap::Args, Debug)]
#[command(long_about = LONG_ABOUT)]
pub struct Args {
    /// Capture files (pcap, pcapng; .gz/.zst compressed).
    #[arg(required = true, value_name = "CAPTURE")]
    pub captures: Vec<PathBuf>,

    /// Output file, or `-` for stdout.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,

    /// Feature family.
    #[arg(long, value_enum, default_value_t = Family::Cic)]
    pub features: Family,

    /// Output format (default: from the output extension, else csv).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,

    /// Label rules (TOML); `--help` (not `-h`) shows how they read.
    #[arg(long, value_name = "RULES")]
    pub labels: Option<PathBuf>,

    /// packets: packets per window.
    #[arg(long, default_value_t = nadir_features::packets::DEFAULT_WINDOW, value_name = "W")]
    pub window: usize,

    /// packets: packets between the starts of consecutive windows.
    #[arg(long, default_value_t = nadir_features::packets::DEFAULT_STRIDE, value_name = "S")]
    pub stride: usize,

    /// packets: windows over the whole capture or over each flow.
    #[arg(long, value_enum, default_value_t = ScopeArg::Capture)]
    pub window_scope: ScopeArg,

    /// packets, flow scope: at most this many windows per flow (bounds memory).
    #[arg(long, default_value_t = nadir_features::packets::DEFAULT_MAX_WINDOWS_PER_FLOW, value_name = "K")]
    pub max_windows_per_flow: usize,

    /// bytes: packets per flow (N).
    #[arg(long, default_value_t = bytes::DEFAULT_FIRST_PACKETS, value_name = "N")]
    pub first_packets: usize,

    /// bytes: bytes per packet (M).
    #[arg(long, default_value_t = bytes::DEFAULT_FIRST_BYTES, value_name = "M")]
    pub first_bytes: usize,

    /// cic: also write a row for each flow after its first K packets (early
    /// detection); the flow's final row follows when it ends.
    #[arg(long, value_name = "K")]
    pub early_after: Option<u32>,

    #[command(flatten)]
    pub flow: FlowArgs,

    #[command(flatten)]
    pub pods: PodArgs,

    /// Never draw the progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Family {
    Cic,
    Packets,
    Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    Capture,
    Flow,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let started = Instant::now();
    // `-o -` writes CSV unless --format says otherwise.
    let format = output_format(args.format, Some(&args.output), OutputFormat::Csv);
    check_inputs_exist(&args.captures)?;
    let rules = match &args.labels {
        Some(path) => LabelRules::load(path)?,
        None => LabelRules::none(),
    };
    let spec = spec(&args)?;
    // Check every family setting before the output file is created.
    spec.validate()?;
    let (output, out) = Output::open(&args.output)?;
    let mut progress = Progress::new(&args.captures, args.no_progress);

    let mut summary = RunSummary::default();
    let result = extract(
        &spec,
        &args.captures,
        format,
        out,
        &rules,
        &mut progress,
        &mut summary,
    )
    .map_err(anyhow::Error::from);
    progress.finish();
    let closed = result.as_ref().err().is_some_and(is_closed_output);
    let delivered = output.lines_delivered();
    let written_to = output.finish(result.is_ok())?;
    print_summary(&summary, &args, started);
    let family = args
        .features
        .to_possible_value()
        .map_or(String::new(), |v| v.get_name().to_string());
    if closed {
        // `-o - | head`: the rows the reader's pipe took (CSV's first line is its header).
        let header = u64::from(format == OutputFormat::Csv);
        eprintln!(
            "  {} of {} rows of {family} features written to - before its reader closed it; stopped",
            delivered.saturating_sub(header),
            summary.rows
        );
        return Ok(ExitCode::SUCCESS);
    }
    match &result {
        Ok(()) => {
            eprintln!(
                "  {} rows of {family} features written to {}",
                summary.rows,
                written_to.display()
            );
            declare_roles(&spec, format, &args.output, &written_to)?;
        }
        Err(_) => eprintln!(
            "  writing stopped after {} rows of {family} features; they are in {}",
            summary.rows,
            written_to.display()
        ),
    }
    result.with_context(|| format!("extracting features to {}", args.output.display()))?;
    if summary.errors.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for error in &summary.errors {
            eprintln!("error: {error}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// CSV and JSON lines cannot carry the column roles that keep identity and time columns out of
/// a model, so they go beside the table (Parquet carries them inside).
fn declare_roles(
    spec: &ExtractSpec,
    format: OutputFormat,
    target: &Path,
    written_to: &Path,
) -> Result<()> {
    // A device or FIFO (`-o /dev/null`) has no "beside" to declare them in.
    if format == OutputFormat::Parquet
        || target == Path::new("-")
        || nadir_features::output::writes_in_place(written_to)
    {
        return Ok(());
    }
    let sidecar = spec
        .table_schema()
        .declared_roles()
        .write_sidecar(written_to)
        .with_context(|| format!("declaring the column roles beside {}", written_to.display()))?;
    eprintln!(
        "  column roles (identity, time, label, features) declared in {}",
        sidecar.display()
    );
    Ok(())
}

/// The library's settings from the arguments; each is checked here, with the
/// flag's name in the message.
fn spec(args: &Args) -> Result<ExtractSpec> {
    let flow = args.flow.flow_config()?;
    let first_bytes = FirstBytesConfig::new(args.first_packets, args.first_bytes)?;
    let scope = match args.window_scope {
        ScopeArg::Capture => WindowScope::Capture,
        ScopeArg::Flow => WindowScope::Flow,
    };
    let window = WindowConfig::new(args.window, args.stride, scope, args.max_windows_per_flow)?;
    Ok(ExtractSpec {
        features: match args.features {
            Family::Cic => nadir_pipeline::Family::Cic,
            Family::Packets => nadir_pipeline::Family::Packets,
            Family::Bytes => nadir_pipeline::Family::Bytes,
        },
        cic_mode: args.flow.cic_mode(),
        flow,
        early_after: args.early_after,
        window,
        first_bytes,
        pods: args.pods.open(std::time::Duration::from_secs(10))?,
    })
}

fn print_summary(summary: &RunSummary, args: &Args, started: Instant) {
    let elapsed = started.elapsed().as_secs_f64();
    let flows = &summary.flows;
    let skipped = summary.skipped.total();
    let rate = if elapsed > 0.0 {
        summary.packets_read as f64 / elapsed
    } else {
        0.0
    };
    eprintln!(
        "extract: {} file(s), {} packets ({} bytes) in {:.2} s ({:.0} packets/s), {} skipped",
        summary.files, summary.packets_read, summary.bytes_read, elapsed, rate, skipped
    );
    for (reason, count) in summary.skipped.iter() {
        eprintln!("  skipped {count:>10}  {reason}");
    }
    if summary.subsecond_out_of_range > 0 {
        eprintln!(
            "  warning: {} packets had a sub-second timestamp field of a whole second or more (corrupt?); read with the excess carried into the seconds",
            summary.subsecond_out_of_range
        );
    }
    eprintln!(
        "  flows {} (ended by timeout {}, TCP FIN/RST {}, idle expiry {}, end of input {}; evicted {}; early snapshots {}; peak live {}); out-of-order packets {}",
        flows.flows,
        flows.emitted_timeout,
        flows.emitted_tcp_termination,
        flows.emitted_idle_expired,
        flows.emitted_end_of_input,
        flows.evicted,
        flows.early_snapshots,
        flows.peak_live_flows,
        flows.out_of_order_packets,
    );
    if summary.packets_past_window_bound > 0 {
        eprintln!(
            "  {} packets were past --max-windows-per-flow {} and not windowed",
            summary.packets_past_window_bound, args.max_windows_per_flow
        );
    }
}
