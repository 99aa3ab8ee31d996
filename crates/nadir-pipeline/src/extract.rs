//! Feature tables: the four table writers of `nadir extract` (cic, bytes, and
//! packets windows per flow or over the whole capture), one entry point.
//!
//! Rows of all capture files go to one output.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

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
use nadir_features::roles::ColumnRole;
use nadir_flow::{CloneFlows, Ended, FinishedFlow, FlowConfig, FlowMeta, FlowTable, ShardOutput};
use nadir_kube::{PodMapHandle, PodMapReader, ATTRIBUTION_COLUMNS};

use crate::drive::{each_flow, for_each_packet, label_target, run_flow_family};
use crate::{PipelineError, Progress, RunSummary};

/// Feature family: what one row describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// CICFlowMeter-compatible flow statistics, one row per flow.
    Cic,
    /// Per-packet header vectors in windows (over the capture or per flow).
    Packets,
    /// The first N packets x M bytes of each flow.
    Bytes,
}

impl Family {
    /// The family's name, as `extract --features` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Family::Cic => "cic",
            Family::Packets => "packets",
            Family::Bytes => "bytes",
        }
    }
}

/// What to extract, with every family's settings (only `features`' are used).
#[derive(Clone, Debug)]
pub struct ExtractSpec {
    pub features: Family,
    /// cic: reproduce CICFlowMeter's quirks or repair them.
    pub cic_mode: CicMode,
    /// The flow table's settings; each family adjusts what it needs
    /// ([`ExtractSpec::flow_config`]).
    pub flow: FlowConfig,
    /// cic: also a row for each flow after its first K packets (early detection).
    pub early_after: Option<u32>,
    /// packets: window shape and scope (capture or flow).
    pub window: WindowConfig,
    /// bytes: N packets x M bytes.
    pub first_bytes: FirstBytesConfig,
    /// cic and bytes rows gain the [`ATTRIBUTION_COLUMNS`] (who sent and received the flow)
    /// after their own columns, so CICFlowMeter consumers keep working.
    pub pods: Option<Arc<PodMapHandle>>,
}

/// Link, VLAN/MPLS and tunnel headers in front of the (inner) IP header that the
/// bytes family allows for when it limits the bytes copied per packet.
pub const MAX_HEADER_BYTES_BEFORE_IP: usize = 512;

/// The flow table as the cic features need it (CICFlowMeter's time order, no packet bytes).
pub fn cic_flow(flow: FlowConfig, mode: CicMode, early_after: Option<u32>) -> FlowConfig {
    let cic = cic_flow_config(mode);
    FlowConfig {
        early_after,
        time_order: cic.time_order,
        data_bytes: cic.data_bytes,
        ..flow
    }
}

/// The flow table as the first-bytes family needs it: the sample is complete after N packets,
/// so it is taken then (early snapshot) and the flow's final emission is skipped unless the flow
/// stayed shorter; each packet brings the frame bytes up to the IP header plus M.
pub fn first_bytes_flow(flow: FlowConfig, shape: FirstBytesConfig) -> FlowConfig {
    FlowConfig {
        early_after: Some(u32::try_from(shape.packets()).unwrap_or(u32::MAX)),
        data_bytes: shape.bytes() + MAX_HEADER_BYTES_BEFORE_IP,
        ..flow
    }
}

impl ExtractSpec {
    /// The flow table's settings as the family runs them.
    pub fn flow_config(&self) -> FlowConfig {
        let flow = self.flow;
        match (self.features, self.window.scope()) {
            (Family::Cic, _) => cic_flow(flow, self.cic_mode, self.early_after),
            (Family::Bytes, _) => first_bytes_flow(flow, self.first_bytes),
            (Family::Packets, WindowScope::Flow) => FlowConfig {
                early_after: None,
                data_bytes: 0,
                ..flow
            },
            // One stream in capture order: the table only tracks directions, on
            // the caller's thread.
            (Family::Packets, WindowScope::Capture) => FlowConfig {
                threads: 1,
                early_after: None,
                data_bytes: 0,
                ..flow
            },
        }
    }

    /// Checks the settings as the family runs them, so a caller can refuse them
    /// before it creates the output.
    pub fn validate(&self) -> Result<(), PipelineError> {
        Ok(self.flow_config().validate()?)
    }

    /// The columns of the family's table, each with its declared role: the writers write
    /// them, and a reader learns from the roles which columns are features.
    pub fn table_schema(&self) -> TableSchema {
        let mut schema = TableSchema::new();
        match (self.features, self.window.scope()) {
            (Family::Cic, _) => {
                for (index, name) in CIC_COLUMNS.iter().enumerate() {
                    let (kind, role) = match index {
                        0 | 1 | 3 => (ColumnType::Utf8, ColumnRole::Identity), // Flow ID, IPs
                        2 | 4 => (ColumnType::UInt16, ColumnRole::Identity),   // ports
                        5 => (ColumnType::UInt16, ColumnRole::Feature),        // protocol
                        6 => (ColumnType::Utf8, ColumnRole::Time),             // Timestamp
                        86 => (ColumnType::Utf8, ColumnRole::Label),
                        _ => (ColumnType::Float64, ColumnRole::Feature),
                    };
                    schema.push(*name, kind, role);
                }
            }
            (Family::Bytes, _) => {
                push_flow_columns(&mut schema);
                schema.push("packets", ColumnType::UInt16, ColumnRole::Feature);
                for packet in 0..self.first_bytes.packets() {
                    for byte in 0..self.first_bytes.bytes() {
                        schema.push(
                            FirstBytesConfig::column_name(packet, byte),
                            ColumnType::UInt8,
                            ColumnRole::Feature,
                        );
                    }
                }
            }
            (Family::Packets, WindowScope::Flow) => {
                push_flow_columns(&mut schema);
                push_window_position_columns(&mut schema, true);
                self.window.push_feature_columns(&mut schema);
            }
            (Family::Packets, WindowScope::Capture) => {
                schema.push("source", ColumnType::Utf8, ColumnRole::Identity);
                push_window_position_columns(&mut schema, false);
                schema.push("first_ts_ns", ColumnType::Int64, ColumnRole::Time);
                schema.push("last_ts_ns", ColumnType::Int64, ColumnRole::Time);
                schema.push("padding", ColumnType::UInt16, ColumnRole::Ignored);
                schema.push("label", ColumnType::Utf8, ColumnRole::Label);
                self.window.push_feature_columns(&mut schema);
            }
        }
        // Capture-scope windows mix the packets of many flows: they name no pod.
        let per_flow = self.features != Family::Packets || self.window.scope() == WindowScope::Flow;
        if self.pods.is_some() && per_flow {
            for name in ATTRIBUTION_COLUMNS {
                schema.push(name, ColumnType::Utf8, ColumnRole::Identity);
            }
        }
        schema
    }
}

/// Where a window sits in its flow or capture (identity, not behaviour), then, with
/// `padding`, how many of its slots are padding (bookkeeping: those slots are already zeros
/// in the window itself).
fn push_window_position_columns(schema: &mut TableSchema, padding: bool) {
    schema.push("window_index", ColumnType::UInt64, ColumnRole::Identity);
    schema.push("first_packet", ColumnType::UInt64, ColumnRole::Identity);
    schema.push("last_packet", ColumnType::UInt64, ColumnRole::Identity);
    if padding {
        schema.push("padding", ColumnType::UInt16, ColumnRole::Ignored);
    }
}

/// Reads every capture and writes the family's rows to `out` in `format`;
/// `summary` gets the counters (also when an error stops the run).
pub fn extract(
    spec: &ExtractSpec,
    captures: &[PathBuf],
    format: OutputFormat,
    out: Box<dyn Write + Send>,
    rules: &LabelRules,
    progress: &mut Progress,
    summary: &mut RunSummary,
) -> Result<(), PipelineError> {
    spec.validate()?;
    let flow_cfg = spec.flow_config();
    let schema = spec.table_schema();
    match (spec.features, spec.window.scope()) {
        (Family::Cic, _) => run_cic(
            schema,
            spec.cic_mode,
            spec.pods.clone(),
            flow_cfg,
            captures,
            format,
            out,
            rules,
            progress,
            summary,
        ),
        (Family::Bytes, _) => run_bytes(
            schema,
            spec.first_bytes,
            spec.pods.clone(),
            flow_cfg,
            captures,
            format,
            out,
            rules,
            progress,
            summary,
        ),
        (Family::Packets, WindowScope::Capture) => run_capture_windows(
            schema,
            spec.window,
            flow_cfg,
            captures,
            format,
            out,
            rules,
            progress,
            summary,
        ),
        (Family::Packets, WindowScope::Flow) => run_flow_windows(
            schema,
            spec.window,
            spec.pods.clone(),
            flow_cfg,
            captures,
            format,
            out,
            rules,
            progress,
            summary,
        ),
    }
}

fn open(
    format: OutputFormat,
    schema: TableSchema,
    out: Box<dyn Write + Send>,
) -> Result<Box<dyn RowSink>, PipelineError> {
    open_sink(format, schema, out).map_err(PipelineError::OpenOutput)
}

#[allow(clippy::too_many_arguments)]
fn run_bytes(
    schema: TableSchema,
    shape: FirstBytesConfig,
    pods: Option<Arc<PodMapHandle>>,
    flow_cfg: FlowConfig,
    captures: &[PathBuf],
    format: OutputFormat,
    out: Box<dyn Write + Send>,
    rules: &LabelRules,
    progress: &mut Progress,
    summary: &mut RunSummary,
) -> Result<(), PipelineError> {
    let mut sink = open(format, schema, out)?;
    let mut text = FlowColumnText::default();
    let mut pods = pods.map(PodMapReader::new);
    run_flow_family(
        captures,
        flow_cfg,
        move |_: &FlowMeta| FirstBytes::new(shape),
        rules,
        progress,
        summary,
        sink.as_mut(),
        |_| CloneFlows::default(),
        each_flow::<FirstBytes, dyn RowSink, OutputError>(|flow, labeler, sink| {
            if !bytes::should_emit(flow.meta, flow.state) {
                return Ok(());
            }
            let label = labeler.label(&label_target(flow.meta));
            put_flow_columns(sink, &mut text, flow.meta, label);
            sink.put(Value::U16(flow.state.packets() as u16));
            for &byte in flow.state.tensor() {
                sink.put(Value::U8(byte));
            }
            if let Some(pods) = &mut pods {
                let (src, dst) = (flow.meta.src.addr, flow.meta.dst.addr);
                put_attribution(pods, flow.meta, src, dst, |v| sink.put(Value::Str(v)));
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
#[allow(clippy::too_many_arguments)]
fn run_cic(
    schema: TableSchema,
    mode: CicMode,
    pods: Option<Arc<PodMapHandle>>,
    flow_cfg: FlowConfig,
    captures: &[PathBuf],
    format: OutputFormat,
    out: Box<dyn Write + Send>,
    rules: &LabelRules,
    progress: &mut Progress,
    summary: &mut RunSummary,
) -> Result<(), PipelineError> {
    let cic_cfg = CicConfig {
        mode,
        activity_timeout_ns: flow_cfg.activity_timeout_ns,
    };
    let mut writer = CicWriter::new(schema, format, out, mode, pods.clone())?;
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
            captures,
            flow_cfg,
            make_state,
            rules,
            progress,
            summary,
            &mut writer,
            |labeler| CsvRows::new(labeler.clone(), pods.clone()),
            |ended, labeler, writer| match ended {
                Ended::Flow(flow) => write_flow(flow, labeler, writer),
                Ended::Batch(rows) => writer.write_rows(&rows),
            },
        )?;
    } else {
        run_flow_family(
            captures,
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
    pods: Option<PodMapReader>,
    text: TextBlock,
    rows: u64,
}

/// A batch of [`CsvRows`]: `rows` rows of CSV text.
struct CsvText {
    text: Vec<u8>,
    rows: u64,
}

impl CsvRows {
    fn new(labeler: FileLabeler, pods: Option<Arc<PodMapHandle>>) -> Self {
        CsvRows {
            labeler,
            pods: pods.map(PodMapReader::new),
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
        if let Some(pods) = &mut self.pods {
            append_attribution_csv(&mut self.text, pods, flow.meta, flow.state);
        }
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
        pods: Option<PodMapReader>,
    },
    Sink {
        sink: Box<dyn RowSink>,
        text: CicText,
        rows: u64,
        pods: Option<PodMapReader>,
    },
}

/// Who sent and received a flow, from the pod map as it is now (one lookup per flow, never
/// per packet; the values are borrowed from the map, nothing is allocated).
fn put_attribution(
    pods: &mut PodMapReader,
    meta: &FlowMeta,
    src: IpAddr,
    dst: IpAddr,
    put: impl FnMut(&str),
) {
    let (map, last) = pods.current();
    map.for_each_value(last, src, dst, meta.outer_ends(), meta.first_ts_ns, put);
}

/// Appends the attribution to the cic CSV row just written (before its line break). The
/// row's `Src IP` is the flow's first packet's source, as CICFlowMeter names it.
fn append_attribution_csv(
    text: &mut TextBlock,
    pods: &mut PodMapReader,
    meta: &FlowMeta,
    flow: &CicFlow,
) {
    let id = flow.identity(meta);
    text.truncate(text.len() - 1);
    text.extend_from_slice(b",");
    let (map, last) = pods.current();
    map.for_each_csv_piece(
        last,
        id.first_src.addr,
        id.first_dst.addr,
        meta.outer_ends(),
        meta.first_ts_ns,
        |piece| text.extend_from_slice(piece.as_bytes()),
    );
    text.extend_from_slice(b"\n");
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
    fn new(
        schema: TableSchema,
        format: OutputFormat,
        out: Box<dyn Write + Send>,
        mode: CicMode,
        pods: Option<Arc<PodMapHandle>>,
    ) -> Result<Self, PipelineError> {
        Ok(match format {
            OutputFormat::Csv => {
                let mut header = Vec::new();
                write_csv_header(&mut header);
                if pods.is_some() {
                    header.pop(); // the line break
                    for name in ATTRIBUTION_COLUMNS {
                        header.push(b',');
                        header.extend_from_slice(name.as_bytes());
                    }
                    header.push(b'\n');
                }
                // Past the flush point, room for the longest row (~28 KB in fixed
                // mode) without growing; a longer label grows the block once.
                let mut pending = TextBlock::with_capacity(CSV_BLOCK + (64 << 10));
                pending.extend_from_slice(&header);
                CicWriter::Csv {
                    out,
                    pending,
                    rows: 0,
                    pods: pods.map(PodMapReader::new),
                }
            }
            _ => {
                let text = CicText {
                    mode,
                    flow_id: Vec::new(),
                    src: Vec::new(),
                    dst: Vec::new(),
                    timestamp: Vec::new(),
                };
                CicWriter::Sink {
                    sink: open(format, schema, out)?,
                    text,
                    rows: 0,
                    pods: pods.map(PodMapReader::new),
                }
            }
        })
    }

    fn rows(&self) -> u64 {
        match self {
            CicWriter::Csv { rows, .. } | CicWriter::Sink { rows, .. } => *rows,
        }
    }

    fn write(&mut self, meta: &FlowMeta, flow: &CicFlow, label: &str) -> Result<(), OutputError> {
        match self {
            CicWriter::Csv {
                out,
                pending,
                rows,
                pods,
            } => {
                flow.write_csv_row(meta, pending, label);
                if let Some(pods) = pods {
                    append_attribution_csv(pending, pods, meta, flow);
                }
                *rows += 1;
                if pending.len() < CSV_BLOCK {
                    return Ok(());
                }
                let written = out.write_all(pending.as_bytes());
                pending.clear();
                written.map_err(|source| OutputError::Io { row: *rows, source })
            }
            CicWriter::Sink {
                sink,
                text,
                rows,
                pods,
            } => {
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
                if let Some(pods) = pods {
                    put_attribution(pods, meta, id.src.addr, id.dst.addr, |v| {
                        sink.put(Value::Str(v))
                    });
                }
                *rows += 1;
                sink.end_row()
            }
        }
    }

    /// Writes rows formatted by a worker ([`CsvRows`]): what is pending first, then
    /// the batch as it is.
    fn write_rows(&mut self, batch: &CsvText) -> Result<(), OutputError> {
        let CicWriter::Csv {
            out, pending, rows, ..
        } = self
        else {
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

    fn finish(self) -> Result<(), OutputError> {
        match self {
            CicWriter::Csv {
                mut out,
                pending,
                rows,
                ..
            } => out
                .write_all(pending.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|source| OutputError::Io { row: rows, source }),
            CicWriter::Sink { mut sink, .. } => sink.finish(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_flow_windows(
    schema: TableSchema,
    window: WindowConfig,
    pods: Option<Arc<PodMapHandle>>,
    flow_cfg: FlowConfig,
    captures: &[PathBuf],
    format: OutputFormat,
    out: Box<dyn Write + Send>,
    rules: &LabelRules,
    progress: &mut Progress,
    summary: &mut RunSummary,
) -> Result<(), PipelineError> {
    let mut sink = open(format, schema, out)?;
    let mut text = FlowColumnText::default();
    let mut past_bound = 0u64;
    let mut pods = pods.map(PodMapReader::new);
    run_flow_family(
        captures,
        flow_cfg,
        move |_: &FlowMeta| FlowPackets::new(&window),
        rules,
        progress,
        summary,
        sink.as_mut(),
        |_| CloneFlows::default(),
        each_flow::<FlowPackets, dyn RowSink, OutputError>(|flow, labeler, sink| {
            past_bound += flow.state.dropped();
            let label = labeler.label(&label_target(flow.meta));
            for view in flow.state.windows(&window) {
                put_flow_columns(sink, &mut text, flow.meta, label);
                put_window_position(sink, &view);
                view.put_features(sink);
                if let Some(pods) = &mut pods {
                    let (src, dst) = (flow.meta.src.addr, flow.meta.dst.addr);
                    put_attribution(pods, flow.meta, src, dst, |v| sink.put(Value::Str(v)));
                }
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
    schema: TableSchema,
    window: WindowConfig,
    flow_cfg: FlowConfig,
    captures: &[PathBuf],
    format: OutputFormat,
    out: Box<dyn Write + Send>,
    rules: &LabelRules,
    progress: &mut Progress,
    summary: &mut RunSummary,
) -> Result<(), PipelineError> {
    debug_assert_eq!(schema.len(), 8 + window.window() * PACKET_FEATURES.len());
    let mut sink = open(format, schema, out)?;
    for (index, path) in captures.iter().enumerate() {
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
            Ok::<(), OutputError>(())
        })?;
        if windower.finish() {
            write_capture_window(sink.as_mut(), &source_name, &labeler, &windower)?;
        }
        table.finish(&mut ignore);
        summary.flows.merge_later(&table.stats());
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
) -> Result<(), OutputError> {
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
    sink.end_row()
}
