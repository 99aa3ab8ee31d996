//! One module per verb; each has `Args` (clap) and `run(Args) -> Result<ExitCode>`.

/// A line of the verb's product on stdout (`println!` panics on a closed pipe): a reader
/// that went away ends the verb, and `main` stops quietly.
macro_rules! outln {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout(), $($arg)*)?
    };
}

/// A line of a report whose verb's product lies elsewhere (a bundle, report files): a
/// closed stdout silences the rest of the report, and the work goes on.
#[cfg(feature = "ml")]
macro_rules! noteln {
    ($($arg:tt)*) => {
        $crate::cmd::note(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[cfg(feature = "ml")]
pub mod adapt;
pub mod dataset;
#[cfg(feature = "ml")]
pub mod demo;
#[cfg(feature = "ml")]
pub mod detect;
#[cfg(feature = "ml")]
pub mod evaluate;
#[cfg(feature = "ml")]
pub mod explain;
pub mod extract;
#[cfg(feature = "ml")]
pub mod inspect;
pub mod inspect_capture;
#[cfg(feature = "ml")]
pub mod train;
#[cfg(feature = "live")]
pub mod watch;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

#[cfg(feature = "ml")]
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use nadir_features::cic::CicMode;
use nadir_features::output::OutputFormat;
use nadir_flow::{FlowConfig, TimeOrder};
use nadir_kube::{PodMapHandle, PodSource};

/// Table formats a verb can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Csv,
    Parquet,
    Jsonl,
}

/// The output format: `--format`, else the output file's extension, else `default`.
pub fn output_format(
    explicit: Option<FormatArg>,
    output: Option<&Path>,
    default: OutputFormat,
) -> OutputFormat {
    match explicit {
        Some(FormatArg::Csv) => OutputFormat::Csv,
        Some(FormatArg::Parquet) => OutputFormat::Parquet,
        Some(FormatArg::Jsonl) => OutputFormat::JsonLines,
        None => output
            .and_then(|p| p.extension())
            .and_then(|e| e.to_str())
            .and_then(|e| e.parse().ok())
            .unwrap_or(default),
    }
}

/// Refuses a missing input by name. Verbs call it before creating their output, so a typo
/// in an input never truncates an existing output file.
pub fn check_inputs_exist(inputs: &[PathBuf]) -> Result<()> {
    match inputs.iter().find(|p| *p != Path::new("-") && !p.exists()) {
        Some(missing) => bail!("input {} does not exist", missing.display()),
        None => Ok(()),
    }
}

/// Whether `err` comes from a reader that went away (`nadir ... | head`): the verb stops
/// quietly and exits 0.
pub fn is_closed_output(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(feature = "ml")]
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes a report line (see `noteln!`); after a closed pipe, nothing more.
#[cfg(feature = "ml")]
pub fn note(text: std::fmt::Arguments) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = std::io::stdout().write_fmt(text) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            tracing::warn!("stdout: {e}; the rest of the report is not printed");
        }
    }
}

/// Whether report lines stopped reaching stdout (its reader went away).
#[cfg(feature = "ml")]
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// A verb's table output: a file, or stdout for `-`.
///
/// A file is written as `NAME.partial` beside the target and renamed into place by
/// [`Output::finish`] only when everything was written, so a failed run neither truncates
/// an existing file nor leaves a half-written one under the real name. Stdout counts the
/// lines that reached it, so a reader that leaves early (`| head`) is told how far it got.
/// A target that exists and is not a regular file (a FIFO, a device, `/dev/stdout`) is
/// written in place: renaming over it would replace it.
pub struct Output {
    target: PathBuf,
    partial: Option<PathBuf>,
    lines: Arc<AtomicU64>,
}

impl Output {
    /// The output and its writer; drop the writer before [`Output::finish`].
    pub fn open(path: &Path) -> Result<(Output, Box<dyn Write + Send>)> {
        let lines = Arc::new(AtomicU64::new(0));
        if path == Path::new("-") {
            let writer = CountedStdout {
                lines: Arc::clone(&lines),
            };
            let output = Output {
                target: path.to_path_buf(),
                partial: None,
                lines,
            };
            return Ok((output, Box::new(writer)));
        }
        if nadir_features::output::writes_in_place(path) {
            let file = File::options()
                .write(true)
                .open(path)
                .with_context(|| format!("cannot open output {}", path.display()))?;
            let output = Output {
                target: path.to_path_buf(),
                partial: None,
                lines,
            };
            return Ok((output, Box::new(file)));
        }
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial)
            .with_context(|| format!("cannot create output {}", partial.display()))?;
        let output = Output {
            target: path.to_path_buf(),
            partial: Some(partial),
            lines,
        };
        Ok((output, Box::new(file)))
    }

    /// Lines written to stdout so far (0 for a file).
    pub fn lines_delivered(&self) -> u64 {
        self.lines.load(Ordering::Relaxed)
    }

    /// Where the rows now are: the target after a complete run; otherwise the `.partial`
    /// file, kept, so nothing written is lost.
    pub fn finish(self, complete: bool) -> Result<PathBuf> {
        let Some(partial) = self.partial else {
            return Ok(self.target);
        };
        if !complete {
            return Ok(partial);
        }
        std::fs::rename(&partial, &self.target).with_context(|| {
            format!(
                "moving {} into place as {}",
                partial.display(),
                self.target.display()
            )
        })?;
        Ok(self.target)
    }
}

/// Stdout that counts the lines the OS took (the sinks' own counts include rows still in
/// their buffers when the reader leaves).
struct CountedStdout {
    lines: Arc<AtomicU64>,
}

impl Write for CountedStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = std::io::stdout().write(buf)?;
        let lines = buf[..n].iter().filter(|&&b| b == b'\n').count();
        self.lines.fetch_add(lines as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

/// How raw labels become classes (`train`, `dataset summarize`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LabelModeArg {
    /// Benign vs attack: every label but the benign one is an attack.
    Binary,
    /// One class per label.
    Multiclass,
    /// NSL-KDD attack families (normal, dos, probe, r2l, u2r).
    Family,
}

impl From<LabelModeArg> for nadir_dataset::LabelMode {
    fn from(mode: LabelModeArg) -> Self {
        match mode {
            LabelModeArg::Binary => nadir_dataset::LabelMode::Binary,
            LabelModeArg::Multiclass => nadir_dataset::LabelMode::Multiclass,
            LabelModeArg::Family => nadir_dataset::LabelMode::Family,
        }
    }
}

/// How CICFlowMeter features are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CicModeArg {
    /// Reproduce CICFlowMeter's quirks, as the public datasets were made.
    Compat,
    /// Repair its bugs; never NaN or Infinity.
    Fixed,
}

/// Flow-table settings shared by the verbs that read packets (`extract`, `detect`).
#[derive(clap::Args, Debug, Clone)]
pub struct FlowArgs {
    /// cic: reproduce CICFlowMeter's quirks (compat) or repair them (fixed).
    #[arg(long, value_enum, default_value_t = CicModeArg::Compat)]
    pub cic_mode: CicModeArg,

    /// Worker threads for the flow table (flows are sharded by key; each thread evicts
    /// from its own 1/N share of --max-flows).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,

    /// Most live flows held at once; beyond it the least recently used flow is
    /// emitted early and counted as evicted.
    #[arg(long, default_value_t = 1 << 20, value_name = "N")]
    pub max_flows: usize,

    /// Flow timeout in seconds, from the flow's first packet (CICFlowMeter: 120).
    #[arg(long, default_value_t = 120.0, value_name = "SECS")]
    pub flow_timeout: f64,

    /// Activity timeout in seconds separating active/idle periods (CICFlowMeter: 5).
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub activity_timeout: f64,
}

/// Where the pod map comes from (`extract`, `detect`, `watch`): records gain who sent and
/// received each flow (src/dst namespace, pod, workload, node; dst service; tunnel nodes).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PodArgs {
    /// Name pods from the Kubernetes API: the in-cluster service account, else the kubeconfig
    /// (list + watch of pods, services, nodes, ReplicaSets; read-only).
    #[arg(long, conflicts_with = "pods")]
    pub kube: bool,

    /// The API server's URL instead of the service account or kubeconfig (e.g. `kubectl
    /// proxy`'s http://127.0.0.1:8001); implies --kube.
    #[arg(long, value_name = "URL", conflicts_with = "pods")]
    pub kube_url: Option<String>,

    /// Name pods from a file written by `kubectl get pods,svc,nodes,rs -A -o json` (reloaded
    /// when it changes). A flow is attributed to the pod that held each address at its start.
    #[arg(long, value_name = "FILE")]
    pub pods: Option<PathBuf>,
}

impl PodArgs {
    /// The pod map, if asked for. A pods file is read now (a bad one is an error); the API is
    /// waited for at most `wait` (records say `unknown` until it answers).
    pub fn open(&self, wait: std::time::Duration) -> Result<Option<Arc<PodMapHandle>>> {
        let source = match (&self.pods, self.kube || self.kube_url.is_some()) {
            (Some(path), _) => PodSource::File(path.clone()),
            (None, true) => PodSource::Api {
                url: self.kube_url.clone(),
            },
            (None, false) => return Ok(None),
        };
        let handle = nadir_kube::open(&source)?;
        if matches!(source, PodSource::Api { .. }) && !handle.wait_synced(wait) {
            let status = handle.status();
            eprintln!(
                "warning: the Kubernetes API has not answered in {:.0} s{}; pods read `unknown` until it does",
                wait.as_secs_f64(),
                status
                    .last_error
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        }
        Ok(Some(handle))
    }
}

/// Whether an input is a capture rather than a feature table, by its first bytes (pcap or
/// pcapng, compressed or not), whatever its name: one rule for `train` and `detect`
/// (`KDDTest+.txt.gz` is a table, a `tcpdump -w dump` file a capture). An empty file has no
/// bytes to tell by: its name does (`.pcap`, `.pcapng`, `.cap`, compressed or not). `-`
/// (stdin) and a file no reader can open count as captures, so that the capture reader says
/// what is wrong.
#[cfg(feature = "ml")]
pub fn is_capture(path: &Path) -> bool {
    use nadir_capture::{CaptureErrorKind, FileSource, OpenOptions};
    if path.as_os_str() == "-" {
        return true;
    }
    match FileSource::open(path, &OpenOptions::default()) {
        Err(e) if matches!(e.kind, CaptureErrorKind::NotACapture(_)) => false,
        Err(e) if matches!(e.kind, CaptureErrorKind::Empty) => {
            let name = path.to_string_lossy().to_ascii_lowercase();
            let name = [".gz", ".zst"]
                .iter()
                .find_map(|z| name.strip_suffix(z))
                .unwrap_or(&name);
            [".pcap", ".pcapng", ".cap"]
                .iter()
                .any(|ext| name.ends_with(ext))
        }
        _ => true,
    }
}

fn seconds_to_ns(name: &str, seconds: f64) -> Result<i64> {
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 1e9 {
        bail!("--{name} must be a positive number of seconds, got {seconds}");
    }
    Ok((seconds * 1e9) as i64)
}

impl FlowArgs {
    pub fn cic_mode(&self) -> CicMode {
        match self.cic_mode {
            CicModeArg::Compat => CicMode::Compat,
            CicModeArg::Fixed => CicMode::Fixed,
        }
    }

    /// The flow table's settings (feature families adjust early emission and packet bytes).
    pub fn flow_config(&self) -> Result<FlowConfig> {
        let flow_timeout_ns = seconds_to_ns("flow-timeout", self.flow_timeout)?;
        let cfg = FlowConfig {
            flow_timeout_ns,
            activity_timeout_ns: seconds_to_ns("activity-timeout", self.activity_timeout)?,
            idle_expiry_ns: flow_timeout_ns,
            max_flows: self.max_flows,
            early_after: None,
            time_order: match self.cic_mode {
                CicModeArg::Compat => TimeOrder::AsCaptured,
                CicModeArg::Fixed => TimeOrder::Monotonic,
            },
            data_bytes: 0,
            threads: self.threads,
        };
        cfg.validate().context("invalid flow settings")?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_file_replaces_its_target_only_when_complete() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("rows.csv");
        std::fs::write(&target, "old\n").unwrap();

        let (output, mut writer) = Output::open(&target).unwrap();
        writer.write_all(b"half\n").unwrap();
        drop(writer);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old\n");
        let kept = output.finish(false).unwrap();
        assert_eq!(kept, dir.path().join("rows.csv.partial"));
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "half\n");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old\n");

        let (output, mut writer) = Output::open(&target).unwrap();
        writer.write_all(b"whole\n").unwrap();
        drop(writer);
        assert_eq!(output.finish(true).unwrap(), target);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "whole\n");
        assert!(!kept.exists());
    }
}
