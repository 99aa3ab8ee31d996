//! `nadir watch`: live detection on an interface, with Prometheus metrics.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nadir_capture::LiveOptions;
use nadir_detect::watch::{watch, RotatingFile, WatchOptions};
use nadir_detect::{AlertWriter, DetectOptions};
use nadir_features::output::OutputFormat;

use super::detect::{load_detector, print_summary, ScoringArgs};
use super::{FlowArgs, PodArgs};

const LONG_ABOUT: &str = "\
Live detection: the `nadir detect` pipeline on a network interface, until SIGINT/SIGTERM.

Packets come from the kernel's capture ring (libpcap; TPACKET_V3 on Linux), become flows
(CICFlowMeter timeouts on packet time, which the clock moves on when the interface is quiet,
so idle flows end on time), then the bundle's features; flows are scored in
batches as they end (bundles on first bytes or packet windows at their K-th packet), and each
alert is written as one JSON line with its explanation: to stdout (for a log pipeline) or to
--out, a file rotated by size.

Nothing is lost silently: capture, scoring and the output are joined by bounded queues, so a
slow output never stalls capture; a flow the scoring queue has no room for and a record the
output queue has no room for are counted (metrics and summary), as are the kernel's drops.
On SIGINT/SIGTERM every live flow is scored and written, then the summary (stderr) shows
packets read = decoded + skipped, flows = scored + unscorable + dropped, records = written +
dropped.

Metrics (Prometheus/OpenMetrics) on http://ADDR/metrics and a health check on /healthz:
packets, bytes, kernel and interface drops, decoder skips by reason, flows ended by reason,
flows scored and dropped, alerts by class, records written and dropped, the scoring queue, a
histogram of verdict latency (deciding packet -> record written) and the bundle in use.

Capturing needs root or CAP_NET_RAW (+ CAP_NET_ADMIN for promiscuous mode):
  sudo setcap cap_net_raw,cap_net_admin=eip $(command -v nadir)

Examples:
  nadir watch -i eth0 --model k8s.nadir
  nadir watch -i any --model k8s.nadir --filter 'not port 22' --out /var/log/nadir/alerts.jsonl
  nadir watch -i cni0 --model k8s.nadir --listen 0.0.0.0:9750 --threshold p99.9
  nadir watch -i any --model k8s.nadir --kube       # alerts name pods (in a pod: deploy/)
  curl -s localhost:9750/metrics | grep nadir_kernel_drops";

/// Live detection on an interface, with metrics.
#[derive(clap::Args, Debug)]
#[command(long_about = LONG_ABOUT)]
pub struct Args {
    /// The interface to capture on (`any`: every interface).
    #[arg(long, short = 'i', value_name = "IFACE")]
    pub interface: String,

    /// The bundle written by `nadir train`.
    #[arg(long, short = 'm', value_name = "BUNDLE")]
    pub model: PathBuf,

    /// BPF filter (tcpdump syntax), e.g. 'not port 22'.
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,

    /// Bytes kept of each packet.
    #[arg(long, default_value_t = 262_144, value_name = "BYTES")]
    pub snaplen: u32,

    /// Do not put the interface in promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,

    /// Kernel capture ring size, MiB. 16 kept every packet of the bench replay up to 400k
    /// packets/s (bench/watch/run.sh, 2026-12-06) and takes 48 MiB less resident memory than
    /// 64; raise it when the kernel drops counter rises.
    #[arg(long, default_value_t = 16, value_name = "MIB")]
    pub ring_mb: u32,

    /// Hand each packet over as it arrives (libpcap's TPACKET_V2 ring) instead of in ring
    /// blocks (TPACKET_V3, the default: a packet waits at most one kernel tick, ~4 ms, and
    /// high rates cost less CPU).
    #[arg(long)]
    pub immediate: bool,

    /// Write JSON lines here instead of stdout; rotated by size.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Rotate --out at this size, MiB (FILE.1 ... FILE.N keep the older records).
    #[arg(long, default_value_t = 100, value_name = "MIB")]
    pub rotate_mb: u64,

    /// Rotated files kept.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub keep: usize,

    /// Serve /metrics and /healthz here.
    #[arg(long, default_value = "127.0.0.1:9750", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Serve no metrics.
    #[arg(long)]
    pub no_metrics: bool,

    #[command(flatten)]
    pub scoring: ScoringArgs,

    /// Score a partial batch when its oldest flow has waited this many milliseconds (the
    /// batch-filling part of the verdict latency).
    #[arg(long, default_value_t = 2, value_name = "MS")]
    pub flush_ms: u64,

    /// Flows that may wait for scoring, and records for the output (each queue).
    #[arg(long, default_value_t = 65_536, value_name = "N")]
    pub queue: usize,

    #[command(flatten)]
    pub flow: FlowArgs,

    #[command(flatten)]
    pub pods: PodArgs,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.queue == 0 {
        bail!("--queue must be at least 1");
    }
    let detector = load_detector(&args.model, &args.scoring.threshold, args.scoring.device)?;
    let options = WatchOptions {
        live: LiveOptions {
            interface: args.interface.clone(),
            filter: args.filter.clone(),
            snaplen: args.snaplen,
            promiscuous: !args.no_promisc,
            buffer_bytes: args.ring_mb.saturating_mul(1 << 20),
            immediate: args.immediate,
        },
        detect: DetectOptions {
            flow: args.flow.flow_config()?,
            cic_mode: args.flow.cic_mode(),
            // A sensor runs for days; the timeline is for `detect --plot`: keep it small.
            timeline_points: 1024,
            // Capture starts soon either way; until the API answers, pods read `unknown`.
            pods: args.pods.open(Duration::from_secs(3))?,
            ..args.scoring.options()?
        },
        listen: (!args.no_metrics).then_some(args.listen),
        row_queue: args.queue,
        record_queue: args.queue,
        flush_after: Duration::from_millis(args.flush_ms),
    };
    let (writer, target) = match &args.out {
        None => (
            AlertWriter::new(
                OutputFormat::JsonLines,
                Box::new(std::io::stdout()),
                "stdout",
                false,
            )?,
            "stdout".to_string(),
        ),
        Some(path) => {
            let file =
                RotatingFile::create(path, args.rotate_mb.saturating_mul(1 << 20), args.keep)
                    .with_context(|| format!("cannot open {} for the alerts", path.display()))?;
            let target = path.display().to_string();
            (
                AlertWriter::new(OutputFormat::JsonLines, Box::new(file), &target, false)?,
                target,
            )
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the SIGINT/SIGTERM handler")?;
    }
    let interface = args.interface.clone();
    let summary = watch(&detector, &options, writer, stop, |metrics| {
        match metrics {
            Some(addr) => eprintln!(
                "watch: capturing on {interface}; metrics on http://{addr}/metrics; SIGINT/SIGTERM stops"
            ),
            None => eprintln!("watch: capturing on {interface}; SIGINT/SIGTERM stops"),
        }
    })
    .with_context(|| format!("watching {}", args.interface))?;

    print_summary(&summary.detect, &detector, &target);
    eprintln!(
        "  records {} = written {} + dropped {} (output too slow or failed); flows dropped (scoring queue full): {}",
        summary.detect.written, summary.records_written, summary.records_dropped, summary.detect.dropped
    );
    eprintln!(
        "  kernel drops {}, interface drops {}",
        summary.kernel_drops, summary.interface_drops
    );
    let ms = |ns: Option<u64>| ns.map_or("-".to_string(), |ns| format!("{:.3}", ns as f64 / 1e6));
    let latency = &summary.latency;
    eprintln!(
        "  verdict latency (deciding packet -> record written), ms: p50 {} p99 {} max {} over {} records",
        ms(latency.quantile_ns(0.5)),
        ms(latency.quantile_ns(0.99)),
        ms((latency.count() > 0).then(|| latency.max_ns())),
        latency.count()
    );
    if let Err(broken) = summary.check_accounting() {
        bail!("internal accounting error: {broken}");
    }
    let mut failed = false;
    if let Some(err) = &summary.output_error {
        if matches!(err, nadir_detect::DetectError::ClosedOutput { .. }) {
            eprintln!("watch: {target} was closed by its reader; stopped");
        } else {
            eprintln!("error: {err}");
            failed = true;
        }
    }
    for error in &summary.detect.run.errors {
        eprintln!("error: {error}");
        failed = true;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
