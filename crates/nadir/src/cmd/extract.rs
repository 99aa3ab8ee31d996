//! `nadir extract`: captures -> flows -> feature rows (CSV, Parquet or JSON lines).
//!
//! Each capture file is read as its own stream: its flows are emitted as they end
//! and all remaining flows at the end of the file (also when the file breaks off
//! with an error, so no packet read before the fault is lost). Rows of all files go
//! to one output.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nadir_capture::{FileSource, OpenOptions, PacketSource};
use nadir_decode::{Decoder, DecoderConfig, PacketRecord, SkipCounts};
use nadir_features::bytes::{self, FirstBytes, FirstBytesConfig};
use nadir_features::cic::{
    cic_flow_config, write_csv_header, write_ip, write_timestamp, CicConfig, CicFlow, CicIdentity,
    CicMode, TextBlock, CIC_COLUMNS,
};
use nadir_features::labels::{FileLabeler, LabelRules, LabelTarget};
use nadir_features::output::{
    open_sink, push_flow_columns, put_flow_columns, ColumnType, FlowColumnText, OutputError,
    OutputFormat, RowSink, TableSchema, Value,
};
use nadir_features::packets::{
    CaptureWindower, DirectionTap, FlowPackets, WindowConfig, WindowScope, WindowView,
    PACKET_FEATURES,
};
use nadir_flow::{
    CloneFlows, Ended, FinishedFlow, FlowConfig, FlowMeta, FlowState, FlowStats, FlowTable,
    ShardOutput, ShardedFlowTable, TimeOrder,
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

    /// cic: reproduce CICFlowMeter's quirks (compat) or repair them (fixed).
    #[arg(long, value_enum, default_value_t = CicModeArg::Compat)]
    pub cic_mode: CicModeArg,

    /// Worker threads for the flow table (flows are sharded by key; cic CSV rows are
    /// also formatted there; output is the same flows as one thread, in another
    /// order, as long as no flow is evicted: each thread evicts from its own 1/N
    /// share of --max-flows).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,

    /// Label rules (TOML); see the long help.
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
pub enum FormatArg {
    Csv,
    Parquet,
    Jsonl,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CicModeArg {
    Compat,
    Fixed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    Capture,
    Flow,
}

/// Counters of the whole run, for the summary.
#[derive(Debug, Default)]
struct Summary {
    files: usize,
    packets_read: u64,
    bytes_read: u64,
    skipped: SkipCounts,
    flows: FlowStats,
    rows: u64,
    /// Flow-scope windows: packets past the per-flow bound.
    packets_past_window_bound: u64,
    errors: Vec<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let started = Instant::now();
    let format = resolve_format(&args)?;
    let rules = match &args.labels {
        Some(path) => LabelRules::load(path)?,
        None => LabelRules::none(),
    };
    let flow_cfg = flow_config(&args)?;
    // Check every family setting before the output file is created.
    let shape = FirstBytesConfig::new(args.first_packets, args.first_bytes)?;
    let scope = match args.window_scope {
        ScopeArg::Capture => WindowScope::Capture,
        ScopeArg::Flow => WindowScope::Flow,
    };
    let window = WindowConfig::new(args.window, args.stride, scope, args.max_windows_per_flow)?;
    let out = open_output(&args.output)?;
    let mut progress = Progress::new(&args.captures, args.no_progress);

    let mut summary = Summary::default();
    let (p, s) = (&mut progress, &mut summary);
    let result = match (args.features, scope) {
        (Family::Cic, _) => run_cic(&args, flow_cfg, format, out, &rules, p, s),
        (Family::Bytes, _) => run_bytes(&args, flow_cfg, shape, format, out, &rules, p, s),
        (Family::Packets, WindowScope::Capture) => {
            run_capture_windows(&args, flow_cfg, window, format, out, &rules, p, s)
        }
        (Family::Packets, WindowScope::Flow) => {
            run_flow_windows(&args, flow_cfg, window, format, out, &rules, p, s)
        }
    };
    progress.finish();
    print_summary(&summary, &args, started);
    result?;
    if summary.errors.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for error in &summary.errors {
            eprintln!("error: {error}");
        }
        Ok(ExitCode::FAILURE)
    }
}

fn resolve_format(args: &Args) -> Result<OutputFormat> {
    if let Some(format) = args.format {
        return Ok(match format {
            FormatArg::Csv => OutputFormat::Csv,
            FormatArg::Parquet => OutputFormat::Parquet,
            FormatArg::Jsonl => OutputFormat::JsonLines,
        });
    }
    if args.output == Path::new("-") {
        return Ok(OutputFormat::Csv);
    }
    match args.output.extension().and_then(|e| e.to_str()) {
        Some(ext) => Ok(ext.parse().unwrap_or(OutputFormat::Csv)),
        None => Ok(OutputFormat::Csv),
    }
}

fn seconds_to_ns(name: &str, seconds: f64) -> Result<i64> {
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 1e9 {
        bail!("--{name} must be a positive number of seconds, got {seconds}");
    }
    Ok((seconds * 1e9) as i64)
}

fn flow_config(args: &Args) -> Result<FlowConfig> {
    let flow_timeout_ns = seconds_to_ns("flow-timeout", args.flow_timeout)?;
    let cfg = FlowConfig {
        flow_timeout_ns,
        activity_timeout_ns: seconds_to_ns("activity-timeout", args.activity_timeout)?,
        idle_expiry_ns: flow_timeout_ns,
        max_flows: args.max_flows,
        early_after: None,
        time_order: match args.cic_mode {
            CicModeArg::Compat => TimeOrder::AsCaptured,
            CicModeArg::Fixed => TimeOrder::Monotonic,
        },
        // The cic features read no packet bytes; other families set what they need.
        data_bytes: 0,
        threads: args.threads,
    };
    cfg.validate().context("invalid flow settings")?;
    Ok(cfg)
}

fn open_output(path: &Path) -> Result<Box<dyn Write + Send>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdout()));
    }
    let file =
        File::create(path).with_context(|| format!("cannot create output {}", path.display()))?;
    Ok(Box::new(file))
}

/// A progress bar over the bytes of all captures, hidden when stderr is not a terminal.
struct Progress {
    bar: ProgressBar,
    total_files: usize,
    /// Bytes of files already finished.
    done_bytes: u64,
}

impl Progress {
    fn new(captures: &[PathBuf], disabled: bool) -> Self {
        let total: u64 = captures
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let bar = if disabled || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        };
        Progress {
            bar,
            total_files: captures.len(),
            done_bytes: 0,
        }
    }
    fn start_file(&self, index: usize, path: &Path) {
        self.bar.set_message(format!(
            "file {}/{} {}",
            index + 1,
            self.total_files,
            path.display()
        ));
    }
    fn update(&self, file_bytes: u64) {
        self.bar.set_position(self.done_bytes + file_bytes);
    }
    fn end_file(&mut self, file_bytes: u64) {
        self.done_bytes += file_bytes;
        self.bar.set_position(self.done_bytes);
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Packets between progress-bar updates.
const PROGRESS_EVERY: u64 = 1 << 14;

/// Reads one capture, decodes each packet and hands it to `on_packet`. A read
/// error mid-file is recorded in the summary and ends this file (what was read is
/// kept by the caller, which flushes its flows afterwards).
fn for_each_packet(
    path: &Path,
    progress: &Progress,
    summary: &mut Summary,
    mut on_packet: impl FnMut(&PacketRecord, &[u8]) -> Result<()>,
) -> Result<u64> {
    let mut source = match FileSource::open(path, &OpenOptions::default()) {
        Ok(source) => source,
        Err(err) => {
            summary.errors.push(err.to_string());
            return Ok(0);
        }
    };
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut record = PacketRecord::default();
    let mut packets = 0u64;
    loop {
        let raw = match source.next_packet() {
            Ok(Some(raw)) => raw,
            Ok(None) => break,
            Err(err) => {
                summary.errors.push(format!(
                    "{err} (flows from the {packets} packets before it were kept)"
                ));
                break;
            }
        };
        packets += 1;
        // Skipped packets are counted by the decoder, per reason.
        if decoder.decode_into(&raw, &mut record).is_ok() {
            on_packet(&record, raw.data)?;
        }
        if packets.is_multiple_of(PROGRESS_EVERY) {
            progress.update(source.bytes_read());
        }
    }
    summary.packets_read += packets;
    summary.skipped.merge(decoder.skipped());
    let bytes = source.bytes_read();
    summary.bytes_read += bytes;
    Ok(bytes)
}

/// Drives a (sharded) flow table over every capture. With worker threads each
/// worker hands its flows to an output from `make_output` (given the file's
/// labeler); `write` turns what ends, flows or workers' batches, into rows.
#[allow(clippy::too_many_arguments)]
fn run_flow_family<S, F, K, O>(
    captures: &[PathBuf],
    flow_cfg: FlowConfig,
    make_state: F,
    rules: &LabelRules,
    progress: &mut Progress,
    summary: &mut Summary,
    sink: &mut O,
    make_output: impl Fn(&FileLabeler) -> K,
    mut write: impl FnMut(Ended<'_, S, K::Batch>, &FileLabeler, &mut O) -> Result<(), OutputError>,
) -> Result<()>
where
    S: FlowState,
    F: FnMut(&FlowMeta) -> S + Clone + Send + 'static,
    K: ShardOutput<S>,
    O: ?Sized,
{
    for (index, path) in captures.iter().enumerate() {
        progress.start_file(index, path);
        summary.files += 1;
        let labeler = rules.for_file(path);
        let mut table =
            ShardedFlowTable::with_output(flow_cfg, make_state.clone(), || make_output(&labeler))?;
        let mut write_error = None;
        let mut emit = |ended: Ended<'_, S, K::Batch>| {
            if write_error.is_none() {
                if let Err(err) = write(ended, &labeler, &mut *sink) {
                    write_error = Some(err);
                }
            }
        };
        let bytes = for_each_packet(path, progress, summary, |pkt, data| {
            table.push_ended(pkt, data, &mut emit);
            Ok(())
        })?;
        let stats = table.finish_ended(&mut emit)?;
        summary.flows.merge(&stats);
        progress.end_file(bytes);
        if let Some(err) = write_error {
            return Err(err).context("writing features");
        }
    }
    Ok(())
}

/// What a table whose workers send copies of their flows ([`CloneFlows`]) hands over.
type EndedCopies<'a, S> = Ended<'a, S, Vec<FinishedFlow<S>>>;

/// [`run_flow_family`]'s `write` for families whose rows are written on the main
/// thread: workers send copies of their flows ([`CloneFlows`]) and `write` sees
/// each flow alike.
fn each_flow<S, O: ?Sized>(
    mut write: impl FnMut(FinishedFlow<&S, &FlowMeta>, &FileLabeler, &mut O) -> Result<(), OutputError>,
) -> impl FnMut(EndedCopies<'_, S>, &FileLabeler, &mut O) -> Result<(), OutputError> {
    move |ended, labeler, sink| ended.try_for_each_flow(|flow| write(flow, labeler, sink))
}

fn label_target(meta: &FlowMeta) -> LabelTarget {
    LabelTarget {
        src: meta.src.addr,
        src_port: meta.src.port,
        dst: meta.dst.addr,
        dst_port: meta.dst.port,
        protocol: meta.protocol,
        first_ts_ns: meta.first_ts_ns,
    }
}

#[allow(clippy::too_many_arguments)]
fn run_bytes(
    args: &Args,
    flow_cfg: FlowConfig,
    shape: FirstBytesConfig,
    format: OutputFormat,
    out: Box<dyn Write + Send>,
    rules: &LabelRules,
    progress: &mut Progress,
    summary: &mut Summary,
) -> Result<()> {
    let mut schema = TableSchema::new();
    push_flow_columns(&mut schema);
    schema.push("packets", ColumnType::UInt16);
    for packet in 0..shape.packets() {
        for byte in 0..shape.bytes() {
            schema.push(
                FirstBytesConfig::column_name(packet, byte),
                ColumnType::UInt8,
            );
        }
    }
    let mut sink = open_sink(format, schema, out)?;
    // The sample is complete after N packets: take it then (early snapshot) and
    // skip the flow's final emission unless the flow stayed shorter.
    let flow_cfg = FlowConfig {
        early_after: Some(u32::try_from(shape.packets()).unwrap_or(u32::MAX)),
        // Frame bytes up to the IP header (tunnels included) plus M.
        data_bytes: shape.bytes() + MAX_HEADER_BYTES_BEFORE_IP,
        ..flow_cfg
    };
    let mut text = FlowColumnText::default();
    run_flow_family(
        &args.captures,
        flow_cfg,
        move |_: &FlowMeta| FirstBytes::new(shape),
        rules,
        progress,
        summary,
        sink.as_mut(),
        |_| CloneFlows::default(),
        each_flow::<FirstBytes, dyn RowSink>(|flow, labeler, sink| {
            if !bytes::should_emit(flow.meta, flow.state) {
                return Ok(());
            }
            let label = labeler.label(&label_target(flow.meta));
            put_flow_columns(sink, &mut text, flow.meta, label);
            sink.put(Value::U16(flow.state.packets() as u16));
            for &byte in flow.state.tensor() {
                sink.put(Value::U8(byte));
            }
            sink.end_row()
        }),
    )?;
    summary.rows = sink.rows();
    sink.finish()?;
    Ok(())
}

/// The cic rows go out as the reference tool prints them (CSV: the fork's exact
/// number formatting) or through a typed sink (Parquet, JSON lines: the identity
/// columns as text/integers, the 79 features as float64 since the tool itself mixes
/// integer and real printing within a column).
fn run_cic(
    args: &Args,
    flow_cfg: FlowConfig,
    format: OutputFormat,
    out: Box<dyn Write + Send>,
    rules: &LabelRules,
    progress: &mut Progress,
    summary: &mut Summary,
) -> Result<()> {
    let mode = match args.cic_mode {
        CicModeArg::Compat => CicMode::Compat,
        CicModeArg::Fixed => CicMode::Fixed,
    };
    let cic_cfg = CicConfig {
        mode,
        activity_timeout_ns: flow_cfg.activity_timeout_ns,
    };
    let flow_cfg = FlowConfig {
        early_after: args.early_after,
        ..FlowConfig {
            time_order: cic_flow_config(mode).time_order,
            data_bytes: cic_flow_config(mode).data_bytes,
            ..flow_cfg
        }
    };
    flow_cfg.validate().context("invalid flow settings")?;
    let mut writer = CicWriter::new(format, out, mode)?;
    let write_flow =
        |flow: FinishedFlow<&CicFlow, &FlowMeta>, labeler: &FileLabeler, writer: &mut CicWriter| {
            writer.write(
                flow.meta,
                flow.state,
                labeler.label(&label_target(flow.meta)),
            )
        };
    let make_state = CicFlow::factory(cic_cfg);
    if format == OutputFormat::Csv {
        // Workers format their own rows; the main thread only writes the text.
        run_flow_family(
            &args.captures,
            flow_cfg,
            make_state,
            rules,
            progress,
            summary,
            &mut writer,
            |labeler| CsvRows::new(labeler.clone()),
            |ended, labeler, writer| match ended {
                Ended::Flow(flow) => write_flow(flow, labeler, writer),
                Ended::Batch(rows) => writer.write_rows(&rows),
            },
        )?;
    } else {
        run_flow_family(
            &args.captures,
            flow_cfg,
            make_state,
            rules,
            progress,
            summary,
            &mut writer,
            |_| CloneFlows::default(),
            each_flow(write_flow),
        )?;
    }
    summary.rows = writer.rows();
    writer.finish()?;
    Ok(())
}

/// Bytes of CSV rows gathered before each write to the output.
const CSV_BLOCK: usize = 1 << 20;

/// A flow-table worker's cic CSV rows: labelled and formatted on the worker thread.
struct CsvRows {
    labeler: FileLabeler,
    text: TextBlock,
    rows: u64,
}

/// A batch of [`CsvRows`]: `rows` rows of CSV text.
struct CsvText {
    text: Vec<u8>,
    rows: u64,
}

impl CsvRows {
    fn new(labeler: FileLabeler) -> Self {
        CsvRows {
            labeler,
            text: TextBlock::with_capacity(256 << 10),
            rows: 0,
        }
    }
}

impl ShardOutput<CicFlow> for CsvRows {
    type Batch = CsvText;

    fn add(&mut self, flow: FinishedFlow<&CicFlow, &FlowMeta>) {
        let label = self.labeler.label(&label_target(flow.meta));
        flow.state.write_csv_row(flow.meta, &mut self.text, label);
        self.rows += 1;
    }

    fn take(&mut self) -> Option<CsvText> {
        if self.rows == 0 {
            return None;
        }
        let batch = CsvText {
            text: self.text.as_bytes().to_vec(),
            rows: self.rows,
        };
        self.text.clear();
        self.rows = 0;
        Some(batch)
    }
}

/// Where cic rows go: CSV bytes formatted by the cic module, or a typed sink.
enum CicWriter {
    /// Rows are formatted straight into `pending`, written out in ~1 MiB blocks
    /// (a `BufWriter` would copy every row once more).
    Csv {
        out: Box<dyn Write + Send>,
        pending: TextBlock,
        rows: u64,
    },
    Sink {
        sink: Box<dyn RowSink>,
        text: CicText,
        rows: u64,
    },
}

/// Reused text of one cic row's identity columns (no allocation once warm).
struct CicText {
    mode: CicMode,
    flow_id: Vec<u8>,
    src: Vec<u8>,
    dst: Vec<u8>,
    timestamp: Vec<u8>,
}

impl CicText {
    fn fill(&mut self, id: &CicIdentity) {
        self.flow_id.clear();
        id.write_flow_id(&mut self.flow_id);
        self.src.clear();
        write_ip(&mut self.src, id.src.addr);
        self.dst.clear();
        write_ip(&mut self.dst, id.dst.addr);
        self.timestamp.clear();
        write_timestamp(&mut self.timestamp, id.start_ts_ns, self.mode);
    }
}

/// The cic module writes only ASCII (addresses, digits, dashes, colons).
fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or("")
}

impl CicWriter {
    fn new(format: OutputFormat, out: Box<dyn Write + Send>, mode: CicMode) -> Result<Self> {
        Ok(match format {
            OutputFormat::Csv => {
                let mut header = Vec::new();
                write_csv_header(&mut header);
                // Past the flush point, room for the longest row (~28 KB in fixed
                // mode) without growing; a longer label grows the block once.
                let mut pending = TextBlock::with_capacity(CSV_BLOCK + (64 << 10));
                pending.extend_from_slice(&header);
                CicWriter::Csv {
                    out,
                    pending,
                    rows: 0,
                }
            }
            _ => {
                let mut schema = TableSchema::new();
                for (index, name) in CIC_COLUMNS.iter().enumerate() {
                    let kind = match index {
                        2 | 4 | 5 => ColumnType::UInt16,        // ports, protocol
                        0 | 1 | 3 | 6 | 86 => ColumnType::Utf8, // Flow ID, IPs, Timestamp, Label
                        _ => ColumnType::Float64,
                    };
                    schema.push(*name, kind);
                }
                let text = CicText {
                    mode,
                    flow_id: Vec::new(),
                    src: Vec::new(),
                    dst: Vec::new(),
                    timestamp: Vec::new(),
                };
                CicWriter::Sink {
                    sink: open_sink(format, schema, out)?,
                    text,
                    rows: 0,
                }
            }
        })
    }
}

impl CicWriter {
    fn rows(&self) -> u64 {
        match self {
            CicWriter::Csv { rows, .. } | CicWriter::Sink { rows, .. } => *rows,
        }
    }

    fn write(&mut self, meta: &FlowMeta, flow: &CicFlow, label: &str) -> Result<(), OutputError> {
        match self {
            CicWriter::Csv { out, pending, rows } => {
                flow.write_csv_row(meta, pending, label);
                *rows += 1;
                if pending.len() < CSV_BLOCK {
                    return Ok(());
                }
                let written = out.write_all(pending.as_bytes());
                pending.clear();
                written.map_err(|source| OutputError::Io { row: *rows, source })
            }
            CicWriter::Sink { sink, text, rows } => {
                let record = flow.record(meta);
                let id = &record.identity;
                text.fill(id);
                sink.put(Value::Str(ascii(&text.flow_id)));
                sink.put(Value::Str(ascii(&text.src)));
                sink.put(Value::U16(id.src.port));
                sink.put(Value::Str(ascii(&text.dst)));
                sink.put(Value::U16(id.dst.port));
                sink.put(Value::U16(u16::from(id.protocol)));
                sink.put(Value::Str(ascii(&text.timestamp)));
                for value in record.features.values() {
                    sink.put(Value::F64(value.as_f64()));
                }
                sink.put(Value::Str(label));
                *rows += 1;
                sink.end_row()
            }
        }
    }

    /// Writes rows formatted by a worker ([`CsvRows`]): what is pending first, then
    /// the batch as it is.
    fn write_rows(&mut self, batch: &CsvText) -> Result<(), OutputError> {
        let CicWriter::Csv { out, pending, rows } = self else {
            // Workers format rows only for CSV output.
            return Ok(());
        };
        let mut written = Ok(());
        if !pending.is_empty() {
            written = out.write_all(pending.as_bytes());
            pending.clear();
        }
        *rows += batch.rows;
        written
            .and_then(|()| out.write_all(&batch.text))
            .map_err(|source| OutputError::Io { row: *rows, source })
    }

    fn finish(self) -> Result<()> {
        match self {
            CicWriter::Csv {
                mut out, pending, ..
            } => out
                .write_all(pending.as_bytes())
                .and_then(|()| out.flush())
                .context("writing the output"),
            CicWriter::Sink { mut sink, .. } => Ok(sink.finish()?),
        }
    }
}

/// Link, VLAN/MPLS and tunnel headers in front of the (inner) IP header that the
/// bytes family allows for when it limits the bytes copied per packet.
const MAX_HEADER_BYTES_BEFORE_IP: usize = 512;

#[allow(clippy::too_many_arguments)]
fn run_flow_windows(
    args: &Args,
    flow_cfg: FlowConfig,
    window: WindowConfig,
    format: OutputFormat,
    out: Box<dyn Write + Send>,
    rules: &LabelRules,
    progress: &mut Progress,
    summary: &mut Summary,
) -> Result<()> {
    let mut schema = TableSchema::new();
    push_flow_columns(&mut schema);
    schema.push("window_index", ColumnType::UInt64);
    schema.push("first_packet", ColumnType::UInt64);
    schema.push("last_packet", ColumnType::UInt64);
    schema.push("padding", ColumnType::UInt16);
    window.push_feature_columns(&mut schema);
    let mut sink = open_sink(format, schema, out)?;
    let mut text = FlowColumnText::default();
    let mut past_bound = 0u64;
    run_flow_family(
        &args.captures,
        FlowConfig {
            early_after: None,
            data_bytes: 0,
            ..flow_cfg
        },
        move |_: &FlowMeta| FlowPackets::new(&window),
        rules,
        progress,
        summary,
        sink.as_mut(),
        |_| CloneFlows::default(),
        each_flow::<FlowPackets, dyn RowSink>(|flow, labeler, sink| {
            past_bound += flow.state.dropped();
            let label = labeler.label(&label_target(flow.meta));
            for view in flow.state.windows(&window) {
                put_flow_columns(sink, &mut text, flow.meta, label);
                put_window_position(sink, &view);
                view.put_features(sink);
                sink.end_row()?;
            }
            Ok(())
        }),
    )?;
    summary.packets_past_window_bound = past_bound;
    summary.rows = sink.rows();
    sink.finish()?;
    Ok(())
}

fn put_window_position(sink: &mut dyn RowSink, view: &WindowView<'_>) {
    sink.put(Value::U64(view.index));
    sink.put(Value::U64(view.first_packet));
    sink.put(Value::U64(view.last_packet));
    sink.put(Value::U16(u16::try_from(view.padding).unwrap_or(u16::MAX)));
}

#[allow(clippy::too_many_arguments)]
fn run_capture_windows(
    args: &Args,
    flow_cfg: FlowConfig,
    window: WindowConfig,
    format: OutputFormat,
    out: Box<dyn Write + Send>,
    rules: &LabelRules,
    progress: &mut Progress,
    summary: &mut Summary,
) -> Result<()> {
    let mut schema = TableSchema::new()
        .with("source", ColumnType::Utf8)
        .with("window_index", ColumnType::UInt64)
        .with("first_packet", ColumnType::UInt64)
        .with("last_packet", ColumnType::UInt64)
        .with("first_ts_ns", ColumnType::Int64)
        .with("last_ts_ns", ColumnType::Int64)
        .with("padding", ColumnType::UInt16)
        .with("label", ColumnType::Utf8);
    window.push_feature_columns(&mut schema);
    debug_assert_eq!(schema.len(), 8 + window.window() * PACKET_FEATURES.len());
    let mut sink = open_sink(format, schema, out)?;
    // One stream in capture order: the table only tracks directions, on this thread.
    let flow_cfg = FlowConfig {
        threads: 1,
        early_after: None,
        data_bytes: 0,
        ..flow_cfg
    };
    for (index, path) in args.captures.iter().enumerate() {
        progress.start_file(index, path);
        summary.files += 1;
        let labeler = rules.for_file(path);
        let source_name = path.display().to_string();
        let tap = DirectionTap::default();
        let state = tap.clone();
        let mut table = FlowTable::new(flow_cfg, move |_: &FlowMeta| state.clone())?;
        let mut windower = CaptureWindower::new(window);
        let mut ignore = |_: FinishedFlow<&DirectionTap, &FlowMeta>| {};
        let sink_ref = sink.as_mut();
        let bytes = for_each_packet(path, progress, summary, |pkt, data| {
            table.push(pkt, data, &mut ignore);
            let label = if labeler.is_empty() {
                None
            } else {
                labeler.rule_index(&LabelTarget {
                    src: pkt.src,
                    src_port: pkt.src_port,
                    dst: pkt.dst,
                    dst_port: pkt.dst_port,
                    protocol: pkt.protocol,
                    first_ts_ns: pkt.ts_ns,
                })
            };
            if windower.push(pkt, tap.last_direction(), label) {
                write_capture_window(sink_ref, &source_name, &labeler, &windower)?;
            }
            Ok(())
        })?;
        if windower.finish() {
            write_capture_window(sink.as_mut(), &source_name, &labeler, &windower)?;
        }
        table.finish(&mut ignore);
        summary.flows.merge(&table.stats());
        progress.end_file(bytes);
    }
    summary.rows = sink.rows();
    sink.finish()?;
    Ok(())
}

/// Writes the windower's current window.
fn write_capture_window(
    sink: &mut dyn RowSink,
    source: &str,
    labeler: &FileLabeler,
    windower: &CaptureWindower,
) -> Result<()> {
    let label = labeler.label_of(windower.window_label());
    let Some(view) = windower.current_window() else {
        return Ok(());
    };
    sink.put(Value::Str(source));
    sink.put(Value::U64(view.index));
    sink.put(Value::U64(view.first_packet));
    sink.put(Value::U64(view.last_packet));
    sink.put(Value::I64(view.first_ts_ns));
    sink.put(Value::I64(view.last_ts_ns));
    sink.put(Value::U16(u16::try_from(view.padding).unwrap_or(u16::MAX)));
    sink.put(Value::Str(label));
    view.put_features(sink);
    sink.end_row().context("writing features")
}

fn print_summary(summary: &Summary, args: &Args, started: Instant) {
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
    eprintln!(
        "  {} rows of {:?} features written to {}",
        summary.rows,
        args.features,
        args.output.display()
    );
}
