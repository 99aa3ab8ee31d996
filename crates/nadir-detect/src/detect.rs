//! Detection runs: captures (packets -> flows -> the bundle's features -> scores -> verdicts)
//! or feature tables written by `extract` (rows -> scores -> verdicts), with explanations and
//! a summary whose counts add up.
//!
//! Flows are scored in batches as the flow table finishes them, so memory holds the live flows
//! and one batch, whatever the capture's size. Families whose features are complete after K
//! packets (`bytes`, `packets` windows) are scored at the K-th packet (an early verdict).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nadir_dataset::{LoadOptions, Matrix};
use nadir_features::bytes::FirstBytes;
use nadir_features::cic::{CicConfig, CicFlow, CicIdentity, CicMode};
use nadir_features::labels::{FileLabeler, LabelRules};
use nadir_features::packets::FlowPackets;
use nadir_flow::{CloneFlows, EndReason, FinishedFlow, FlowConfig, FlowMeta, FlowState};
use nadir_pipeline::extract::{cic_flow, first_bytes_flow};
use nadir_pipeline::{each_flow, run_flow_family_from, Input, PipelineError, Progress, RunSummary};
use serde::Serialize;

use nadir_kube::PodMapHandle;

use crate::alert::{rfc3339_micros, Alert, AlertWriter, Verdict};
use crate::explain::{attributions, Attribution, ExplainMethod, InputNames};
use crate::flows::{first_window, is_scored_emission, FlowColumns, FlowFamily};
use crate::scorer::Detector;
use crate::table::{read_identities, TableIdentity};
use crate::DetectError;

/// Which scored flows get an explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExplainPolicy {
    None,
    /// Flows at or above the threshold (the default).
    Alerts,
    /// Every written flow.
    All,
}

/// How to run detection.
#[derive(Debug, Clone)]
pub struct DetectOptions {
    /// Write every scored flow, not only anomalies.
    pub all: bool,
    pub explain: ExplainPolicy,
    /// Contributions kept per explanation (largest first).
    pub top_features: usize,
    /// Flows scored per model call.
    pub batch: usize,
    /// Timeouts, memory bound and worker threads of the flow table (the family sets the rest).
    pub flow: FlowConfig,
    /// cic features as CICFlowMeter computes them (compat, the datasets' way) or repaired.
    pub cic_mode: CicMode,
    /// Only this flow id is written (and explained): `nadir explain`.
    pub only_flow_id: Option<String>,
    /// Most points kept for the score timeline (older points are thinned, anomalies kept).
    pub timeline_points: usize,
    /// Name the pods, workloads, services and nodes of each record (`--kube`, `--pods`).
    pub pods: Option<Arc<PodMapHandle>>,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            all: false,
            explain: ExplainPolicy::Alerts,
            top_features: 5,
            batch: 1024,
            flow: FlowConfig::default(),
            cic_mode: CicMode::Compat,
            only_flow_id: None,
            timeline_points: 100_000,
            pods: None,
        }
    }
}

/// Counts per key, bounded: past `cap` keys new ones are counted together as `other`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    counts: HashMap<String, u64>,
    pub other: u64,
}

impl Tally {
    const CAP: usize = 100_000;

    pub fn add(&mut self, key: &str) {
        if let Some(n) = self.counts.get_mut(key) {
            *n += 1;
        } else if self.counts.len() < Self::CAP {
            self.counts.insert(key.to_string(), 1);
        } else {
            self.other += 1;
        }
    }

    /// The `n` largest counts, largest first (ties by key).
    pub fn top(&self, n: usize) -> Vec<(&str, u64)> {
        let mut all: Vec<(&str, u64)> = self.counts.iter().map(|(k, &v)| (k.as_str(), v)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        all.truncate(n);
        all
    }
}

/// One point of the score timeline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TimelinePoint {
    pub ts_ns: i64,
    pub score: f32,
    pub anomaly: bool,
}

/// Scores over time, bounded: when full, every other point is dropped and the keeping stride
/// doubles, so the points stay spread evenly over the whole run (O(1) amortised per flow).
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub points: Vec<TimelinePoint>,
    stride: u64,
    seen: u64,
    cap: usize,
}

impl Timeline {
    fn new(cap: usize) -> Self {
        Timeline {
            points: Vec::new(),
            stride: 1,
            seen: 0,
            cap: cap.max(2),
        }
    }

    fn push(&mut self, point: TimelinePoint) {
        self.seen += 1;
        if !(self.seen - 1).is_multiple_of(self.stride) {
            return;
        }
        if self.points.len() >= self.cap {
            let mut keep = false;
            self.points.retain(|_| {
                keep = !keep;
                keep
            });
            self.stride *= 2;
            if !(self.seen - 1).is_multiple_of(self.stride) {
                return;
            }
        }
        self.points.push(point);
    }
}

/// What a detection run did; the counts add up (see [`DetectSummary::check_accounting`]).
#[derive(Debug, Default)]
pub struct DetectSummary {
    /// Packets, skips, flows (captures only).
    pub run: RunSummary,
    /// `cic`, `bytes`, ... or `table`.
    pub family: String,
    /// Rows read from a table (table input only).
    pub table_rows: u64,
    pub scored: u64,
    /// Flows (rows) whose features were still not finite after preprocessing.
    pub unscorable: u64,
    /// Flows not scored because the scoring queue was full (`watch` only; counted, never silent).
    pub dropped: u64,
    /// Flows scored before they ended.
    pub early: u64,
    pub anomalies: u64,
    pub written: u64,
    pub explained: u64,
    /// Distinct model inputs whose attributions were computed (identical inputs share one).
    pub attributions_computed: u64,
    /// Largest integrated-gradients completeness gap among the explanations (none for the
    /// autoencoder's exact reconstruction shares).
    pub worst_completeness: Option<f32>,
    /// NaN/inf feature cells replaced by the training median.
    pub imputed_cells: u64,
    pub anomalies_by_class: BTreeMap<String, u64>,
    pub anomalies_by_destination: Tally,
    pub anomalies_by_source: Tally,
    /// Anomalies by the `namespace/kind/name` workload that sent them (with a pod map;
    /// `outside the cluster` for the rest).
    pub anomalies_by_src_workload: Tally,
    /// ... and that received them.
    pub anomalies_by_dst_workload: Tally,
    pub timeline: Timeline,
    pub threshold: f64,
}

impl DetectSummary {
    /// `Err` with the broken identity when the counts do not add up: packets read =
    /// decoded + skipped (the flow table saw every decoded packet), and every flow created
    /// was scored or counted unscorable (table rows likewise).
    pub fn check_accounting(&self) -> Result<(), String> {
        let run = &self.run;
        let decoded = run.flows.packets;
        if run.packets_read != decoded + run.skipped.total() {
            return Err(format!(
                "packets read {} != decoded {decoded} + skipped {}",
                run.packets_read,
                run.skipped.total()
            ));
        }
        let created = if self.family == "table" {
            self.table_rows
        } else {
            run.flows.flows
        };
        if created != self.scored + self.unscorable + self.dropped {
            return Err(format!(
                "flows {created} != scored {} + unscorable {} + dropped {}",
                self.scored, self.unscorable, self.dropped
            ));
        }
        Ok(())
    }
}

/// Who a scored row is, as the alert names it.
#[derive(Debug, Clone)]
enum Identity {
    /// A cic flow: its `Flow ID` is the first packet's direction (CICFlowMeter's rule).
    Cic(CicIdentity),
    /// Other families: `flow_id` from the flow's forward direction (`extract`'s rule).
    Flow {
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        protocol: u8,
    },
    Table(TableIdentity),
}

/// Who a scored row is, and when it was decided.
#[derive(Debug, Clone)]
pub struct RowInfo {
    identity: Identity,
    source: Arc<str>,
    tunnel: Option<String>,
    /// The outer tunnel's endpoints.
    outer: Option<(IpAddr, IpAddr)>,
    start_ns: i64,
    end_ns: i64,
    packets: Option<u64>,
    bytes: Option<u64>,
    early: bool,
    /// Why the flow table emitted the flow (captures only).
    pub end: Option<EndReason>,
    /// When the verdict could first be given (ns since the epoch): an early flow's K-th packet,
    /// otherwise the moment the flow table ended the flow (for verdict latency).
    decided_ns: i64,
}

impl RowInfo {
    fn flow_id(&self) -> String {
        match &self.identity {
            Identity::Cic(id) => {
                let mut out = Vec::with_capacity(48);
                id.write_flow_id(&mut out);
                String::from_utf8_lossy(&out).into_owned()
            }
            Identity::Flow { src, dst, protocol } => {
                format!("{}-{}-{}-{}-{protocol}", src.0, dst.0, src.1, dst.1)
            }
            Identity::Table(t) => t.flow_id.clone(),
        }
    }

    /// The source (or destination) as the alert reports it: the flow's forward direction.
    /// Formatted only for the rows that are written or counted as anomalies.
    fn endpoint(&self, source: bool) -> (String, u16) {
        match &self.identity {
            Identity::Cic(id) => {
                let end = if source { id.src } else { id.dst };
                (end.addr.to_string(), end.port)
            }
            Identity::Flow { src, dst, .. } => {
                let (addr, port) = if source { src } else { dst };
                (addr.to_string(), *port)
            }
            Identity::Table(t) if source => (t.src_ip.clone(), t.src_port),
            Identity::Table(t) => (t.dst_ip.clone(), t.dst_port),
        }
    }

    /// Source and destination addresses (table rows: when their text parses).
    fn addresses(&self) -> Option<(IpAddr, IpAddr)> {
        match &self.identity {
            Identity::Cic(id) => Some((id.src.addr, id.dst.addr)),
            Identity::Flow { src, dst, .. } => Some((src.0, dst.0)),
            Identity::Table(t) => Some((t.src_ip.parse().ok()?, t.dst_ip.parse().ok()?)),
        }
    }

    fn protocol(&self) -> u8 {
        match &self.identity {
            Identity::Cic(id) => id.protocol,
            Identity::Flow { protocol, .. } => *protocol,
            Identity::Table(t) => t.protocol,
        }
    }
}

fn tunnel_text(meta: &FlowMeta) -> Option<String> {
    meta.tunnel.map(|t| {
        let mut text = format!("{:?}", t.kind).to_ascii_lowercase();
        if t.id != 0 {
            let _ = write!(text, " id {}", t.id);
        }
        let _ = write!(text, " {} -> {}", t.outer_src, t.outer_dst);
        if t.depth > 1 {
            let _ = write!(text, " ({} layers)", t.depth);
        }
        text
    })
}

fn captured_info(meta: &FlowMeta, identity: Identity, source: &Arc<str>) -> RowInfo {
    let early = meta.end == EndReason::Early;
    RowInfo {
        decided_ns: if early {
            meta.last_ts_ns
        } else {
            wall_clock_ns()
        },
        end: Some(meta.end),
        identity,
        source: Arc::clone(source),
        tunnel: tunnel_text(meta),
        outer: meta.outer_ends(),
        start_ns: meta.first_ts_ns,
        end_ns: meta.last_ts_ns,
        packets: Some(meta.packets()),
        bytes: None,
        early,
    }
}

/// Now, in ns since the Unix epoch (the clock packet timestamps use).
pub fn wall_clock_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Where scored records go: a writer (`detect`) or a queue to one (`watch`).
pub trait AlertSink {
    /// One record; `decided_ns` is when its verdict could first be given.
    fn send(&mut self, alert: Alert, decided_ns: i64) -> Result<(), DetectError>;
}

impl AlertSink for AlertWriter {
    fn send(&mut self, alert: Alert, _decided_ns: i64) -> Result<(), DetectError> {
        self.write(&alert)
    }
}

/// Where the rows of finished flows go: scored in place (`detect`) or queued for a scoring
/// thread (`watch`).
pub trait RowQueue {
    /// The buffer the next row's raw values are appended to.
    fn raw(&mut self) -> &mut Vec<f32>;
    /// The row just appended to [`RowQueue::raw`], and who it is.
    fn queued(&mut self, info: RowInfo) -> Result<(), DetectError>;
}

/// Rows waiting to be scored, and everything scoring writes to.
pub struct Scoring<'a> {
    detector: &'a Detector,
    names: InputNames,
    options: &'a DetectOptions,
    writer: &'a mut dyn AlertSink,
    summary: &'a mut DetectSummary,
    width: usize,
    raw: Vec<f32>,
    rows: Vec<RowInfo>,
    /// Attributions by the bits of the model input, bounded by [`EXPLANATION_CACHE`].
    explained: HashMap<Vec<u32>, Attribution>,
    method: Option<ExplainMethod>,
}

/// Distinct model inputs whose attributions are kept for reuse.
const EXPLANATION_CACHE: usize = 16_384;

impl<'a> Scoring<'a> {
    pub fn new(
        detector: &'a Detector,
        options: &'a DetectOptions,
        writer: &'a mut dyn AlertSink,
        summary: &'a mut DetectSummary,
    ) -> Self {
        let pipeline = &detector.bundle().manifest.pipeline;
        let names = InputNames::new(
            &pipeline.input_schema().columns,
            &pipeline.output_schema().columns,
            detector.model().config().input,
        );
        summary.threshold = detector.threshold().value;
        Scoring {
            detector,
            names,
            options,
            writer,
            summary,
            width: detector.schema().len(),
            raw: Vec::new(),
            rows: Vec::new(),
            explained: HashMap::new(),
            method: None,
        }
    }

    /// The counts so far.
    pub fn summary(&self) -> &DetectSummary {
        self.summary
    }

    /// Rows queued and not scored yet.
    pub fn pending(&self) -> usize {
        self.rows.len()
    }

    /// Scores what is queued.
    pub fn flush(&mut self) -> Result<(), DetectError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let raw = Matrix::new(rows.len(), self.width, std::mem::take(&mut self.raw))?;
        let prepared = self.detector.preprocess(&raw)?;
        self.summary.imputed_cells += prepared.imputed_cells;
        // Rows still not finite cannot be scored: counted, never silently dropped.
        let scorable: Vec<usize> = (0..rows.len())
            .filter(|r| prepared.unscorable.binary_search(r).is_err())
            .collect();
        self.summary.unscorable += (rows.len() - scorable.len()) as u64;
        let x = if scorable.len() == rows.len() {
            prepared.x
        } else {
            prepared.x.select_rows(&scorable)
        };
        let scored = self.detector.score(&x)?;
        let mut to_write = Vec::new();
        for (k, &r) in scorable.iter().enumerate() {
            let info = &rows[r];
            let score = scored.scores[k];
            let anomaly = self.detector.is_anomaly(score);
            self.summary.scored += 1;
            self.summary.early += u64::from(info.early);
            self.summary.timeline.push(TimelinePoint {
                ts_ns: info.start_ns,
                score,
                anomaly,
            });
            if anomaly {
                let (src, dst) = (info.endpoint(true), info.endpoint(false));
                self.summary.anomalies += 1;
                let class = scored
                    .class_of(k)
                    .and_then(|c| self.detector.class_name(c))
                    .unwrap_or("anomaly")
                    .to_string();
                *self.summary.anomalies_by_class.entry(class).or_default() += 1;
                self.summary
                    .anomalies_by_destination
                    .add(&format!("{}:{}", dst.0, dst.1));
                self.summary.anomalies_by_source.add(&src.0);
            }
            let wanted = match &self.options.only_flow_id {
                Some(id) => info.flow_id() == *id,
                None => anomaly || self.options.all,
            };
            if wanted {
                to_write.push((k, r, anomaly));
            }
        }
        // Explanations for the rows written that the policy asks for, in one batch.
        let explain_rows: Vec<usize> = to_write
            .iter()
            .filter(|(_, _, anomaly)| match self.options.explain {
                ExplainPolicy::None => false,
                ExplainPolicy::Alerts => *anomaly || self.options.only_flow_id.is_some(),
                ExplainPolicy::All => true,
            })
            .map(|&(k, _, _)| k)
            .collect();
        let mut explanations = HashMap::new();
        if !explain_rows.is_empty() {
            // Identical model inputs have identical attributions: compute each distinct input
            // once (scans and floods repeat the same feature vector thousands of times).
            let key = |k: usize| -> Vec<u32> { x.row(k).iter().map(|v| v.to_bits()).collect() };
            let mut inputs = Vec::new();
            let mut pending: Vec<Vec<u32>> = Vec::new();
            let mut queued = HashSet::new();
            for &k in &explain_rows {
                let row_key = key(k);
                if !self.explained.contains_key(&row_key) && queued.insert(row_key.clone()) {
                    inputs.extend_from_slice(x.row(k));
                    pending.push(row_key);
                }
            }
            if !pending.is_empty() {
                let bundle = &self.detector.bundle().manifest;
                let (method, found) = attributions(
                    self.detector.model(),
                    self.detector.benign_class(),
                    &inputs,
                    &bundle.explain_baseline,
                )?;
                if self.explained.len() + found.len() > EXPLANATION_CACHE {
                    self.explained.clear();
                }
                self.method = Some(method);
                self.summary.attributions_computed += found.len() as u64;
                self.explained.extend(pending.into_iter().zip(found));
            }
            let method = self.method.unwrap_or(ExplainMethod::IntegratedGradients);
            for &k in &explain_rows {
                let r = scorable[k];
                let Some(attribution) = self.explained.get(&key(k)) else {
                    continue;
                };
                let explanation = self.names.explain(
                    method,
                    attribution,
                    raw.row(r),
                    x.row(k),
                    self.options.top_features,
                );
                if let Some(gap) = explanation.completeness_error {
                    let worst = self.summary.worst_completeness.get_or_insert(gap);
                    *worst = worst.max(gap);
                }
                explanations.insert(k, explanation);
                self.summary.explained += 1;
            }
        }
        // One snapshot per batch: loaded without a lock, looked up once per written record.
        let pod_map = self.options.pods.as_ref().map(|handle| handle.load());
        for (k, r, anomaly) in to_write {
            let info = &rows[r];
            let (src, dst) = (info.endpoint(true), info.endpoint(false));
            let pods = pod_map.as_ref().and_then(|map| {
                let (src, dst) = info.addresses()?;
                Some(map.attribute(src, dst, info.outer, info.start_ns))
            });
            if let (true, Some(pods)) = (anomaly, &pods) {
                let outside = || "outside the cluster".to_string();
                let summary = &mut *self.summary;
                summary
                    .anomalies_by_src_workload
                    .add(&pods.src_workload().unwrap_or_else(outside));
                summary
                    .anomalies_by_dst_workload
                    .add(&pods.dst_workload().unwrap_or_else(outside));
            }
            let alert = Alert {
                flow_id: info.flow_id(),
                source: info.source.to_string(),
                src_ip: src.0,
                src_port: src.1,
                dst_ip: dst.0,
                dst_port: dst.1,
                protocol: info.protocol(),
                tunnel: info.tunnel.clone(),
                pods,
                start: rfc3339_micros(info.start_ns),
                start_ns: info.start_ns,
                end_ns: info.end_ns,
                packets: info.packets,
                bytes: info.bytes,
                score: scored.scores[k],
                threshold: self.detector.threshold().value,
                verdict: if anomaly {
                    Verdict::Anomaly
                } else {
                    Verdict::Normal
                },
                class: scored
                    .class_of(k)
                    .and_then(|c| self.detector.class_name(c))
                    .map(str::to_string),
                early: info.early,
                early_packets: info.early.then_some(info.packets).flatten(),
                early_after_ms: info
                    .early
                    .then(|| (info.end_ns - info.start_ns) as f64 / 1e6),
                explanation: explanations.remove(&k),
            };
            self.writer.send(alert, info.decided_ns)?;
            self.summary.written += 1;
        }
        self.raw = raw.data;
        self.raw.clear();
        Ok(())
    }
}

impl RowQueue for Scoring<'_> {
    fn raw(&mut self) -> &mut Vec<f32> {
        &mut self.raw
    }

    /// Scores when the batch is full.
    fn queued(&mut self, info: RowInfo) -> Result<(), DetectError> {
        self.rows.push(info);
        if self.rows.len() >= self.options.batch.max(1) {
            self.flush()?;
        }
        Ok(())
    }
}

impl From<DetectError> for PipelineError {
    fn from(err: DetectError) -> Self {
        PipelineError::Sink(Box::new(err))
    }
}

/// Takes a [`DetectError`] back out of a pipeline error that carries one.
fn unwrap_pipeline(err: PipelineError) -> DetectError {
    match err {
        PipelineError::Sink(inner) => match inner.downcast::<DetectError>() {
            Ok(detect) => *detect,
            Err(other) => DetectError::Pipeline(PipelineError::Sink(other)),
        },
        other => DetectError::Pipeline(other),
    }
}

/// Detection over capture files (`-` for stdin): every flow is scored with the bundle's own
/// features; anomalies (or all flows with `options.all`) go to `writer`. A capture that breaks
/// off is scored up to the fault and named in `summary.run.errors`.
pub fn detect_captures(
    detector: &Detector,
    captures: &[PathBuf],
    options: &DetectOptions,
    writer: &mut AlertWriter,
    progress: &mut Progress,
) -> Result<DetectSummary, DetectError> {
    let mut summary = DetectSummary::for_captures(detector, options)?;
    let mut run = RunSummary::default();
    let result = {
        let mut scoring = Scoring::new(detector, options, writer, &mut summary);
        let inputs = captures.iter().cloned().map(Input::Path);
        flow_rows(detector, inputs, options, &mut scoring, progress, &mut run)
            .and_then(|()| scoring.flush())
    };
    summary.run = run;
    result.map(|()| summary)
}

impl DetectSummary {
    /// An empty summary of a run over captures with `detector`'s feature family.
    pub fn for_captures(detector: &Detector, options: &DetectOptions) -> Result<Self, DetectError> {
        let family = FlowColumns::for_schema(detector.schema())?.family();
        Ok(DetectSummary {
            family: family.name().to_string(),
            timeline: Timeline::new(options.timeline_points),
            ..DetectSummary::default()
        })
    }
}

/// Packets of every input -> flows -> the bundle's feature rows, each handed to `queue` as its
/// flow ends (or at its K-th packet for early-verdict families). Counters go to `run`.
pub fn flow_rows<Q: RowQueue>(
    detector: &Detector,
    inputs: impl IntoIterator<Item = Input>,
    options: &DetectOptions,
    queue: &mut Q,
    progress: &mut Progress,
    run: &mut RunSummary,
) -> Result<(), DetectError> {
    let columns = FlowColumns::for_schema(detector.schema())?;
    let family = columns.family();
    let rules = LabelRules::none();
    for input in inputs {
        let source: Arc<str> = Arc::from(input.name());
        let one = std::iter::once(input);
        match family {
            FlowFamily::Cic => {
                let cic = CicConfig {
                    mode: options.cic_mode,
                    activity_timeout_ns: options.flow.activity_timeout_ns,
                };
                let cfg = cic_flow(options.flow, options.cic_mode, None);
                drive(
                    one,
                    cfg,
                    CicFlow::factory(cic),
                    &rules,
                    progress,
                    run,
                    queue,
                    |flow: FinishedFlow<&CicFlow, &FlowMeta>, queue: &mut Q| {
                        if !is_scored_emission(family, flow.meta, 0) {
                            return Ok(());
                        }
                        let identity = flow.state.identity(flow.meta);
                        let features = flow.state.features(flow.meta);
                        columns.push_cic(&features, &identity, flow.meta, queue.raw());
                        let mut info = captured_info(flow.meta, Identity::Cic(identity), &source);
                        // Payload bytes both ways.
                        let total = |column| features.get(column).map_or(f64::NAN, |v| v.as_f64());
                        let bytes = total("Total Length of Fwd Packet")
                            + total("Total Length of Bwd Packet");
                        info.bytes = (bytes.is_finite() && bytes >= 0.0).then_some(bytes as u64);
                        queue.queued(info)
                    },
                )?
            }
            FlowFamily::Bytes(shape) => {
                let cfg = first_bytes_flow(options.flow, shape);
                drive(
                    one,
                    cfg,
                    move |_: &FlowMeta| FirstBytes::new(shape),
                    &rules,
                    progress,
                    run,
                    queue,
                    |flow: FinishedFlow<&FirstBytes, &FlowMeta>, queue: &mut Q| {
                        if !is_scored_emission(family, flow.meta, flow.state.packets()) {
                            return Ok(());
                        }
                        columns.push_bytes(flow.state, flow.meta, queue.raw());
                        queue.queued(captured_info(flow.meta, flow_identity(flow.meta), &source))
                    },
                )?
            }
            FlowFamily::Windows(window) => {
                // The first window is complete at its W-th packet: scored then.
                let cfg = FlowConfig {
                    early_after: u32::try_from(window.window()).ok(),
                    data_bytes: 0,
                    ..options.flow
                };
                drive(
                    one,
                    cfg,
                    move |_: &FlowMeta| FlowPackets::new(&window),
                    &rules,
                    progress,
                    run,
                    queue,
                    |flow: FinishedFlow<&FlowPackets, &FlowMeta>, queue: &mut Q| {
                        if !is_scored_emission(family, flow.meta, flow.state.len()) {
                            return Ok(());
                        }
                        let Some(view) = first_window(flow.state, family) else {
                            return Ok(());
                        };
                        columns.push_window(&view, flow.meta, queue.raw());
                        queue.queued(captured_info(flow.meta, flow_identity(flow.meta), &source))
                    },
                )?
            }
        }
    }
    Ok(())
}

fn flow_identity(meta: &FlowMeta) -> Identity {
    Identity::Flow {
        src: (meta.src.addr, meta.src.port),
        dst: (meta.dst.addr, meta.dst.port),
        protocol: meta.protocol,
    }
}

/// One input through the flow table, each finished flow handed to `on_flow` (on this thread).
#[allow(clippy::too_many_arguments)]
fn drive<S, F, Q: RowQueue>(
    inputs: impl IntoIterator<Item = Input>,
    cfg: FlowConfig,
    make_state: F,
    rules: &LabelRules,
    progress: &mut Progress,
    run: &mut RunSummary,
    queue: &mut Q,
    mut on_flow: impl FnMut(FinishedFlow<&S, &FlowMeta>, &mut Q) -> Result<(), DetectError>,
) -> Result<(), DetectError>
where
    S: FlowState + Clone,
    F: FnMut(&FlowMeta) -> S + Clone + Send + 'static,
{
    run_flow_family_from(
        inputs,
        cfg,
        make_state,
        rules,
        progress,
        run,
        queue,
        |_: &FileLabeler| CloneFlows::default(),
        each_flow(|flow, _: &FileLabeler, queue: &mut Q| on_flow(flow, queue)),
    )
    .map_err(unwrap_pipeline)
}

/// Detection over a feature table written by `extract` (CSV or Parquet): the bundle's columns
/// are matched by name (a missing column is named), NaN/inf cells are imputed as training did.
pub fn detect_table(
    detector: &Detector,
    path: &Path,
    options: &DetectOptions,
    writer: &mut AlertWriter,
) -> Result<DetectSummary, DetectError> {
    let load = LoadOptions {
        unlabelled: true,
        ..detector.bundle().load_options()
    };
    let data = nadir_dataset::load(path, &load)?;
    let identities = read_identities(path, data.rows(), data.report.has_header())?;
    let mut summary = DetectSummary {
        family: "table".into(),
        table_rows: data.rows() as u64,
        timeline: Timeline::new(options.timeline_points),
        ..DetectSummary::default()
    };
    {
        let mut scoring = Scoring::new(detector, options, writer, &mut summary);
        let source: Arc<str> = Arc::from(path.display().to_string());
        for (r, mut identity) in identities.into_iter().enumerate() {
            // cic tables carry their start as a `Timestamp` text the loader parses.
            if let (0, Some(time)) = (identity.start_ns, &data.time) {
                if time[r].is_finite() {
                    let duration = identity.end_ns - identity.start_ns;
                    identity.start_ns = (time[r] * 1e9) as i64;
                    identity.end_ns = identity.start_ns + duration;
                }
            }
            scoring.raw().extend_from_slice(data.x.row(r));
            scoring.queued(RowInfo {
                source: Arc::clone(&source),
                tunnel: None,
                outer: None,
                start_ns: identity.start_ns,
                end_ns: identity.end_ns,
                packets: identity.packets,
                bytes: identity.bytes,
                early: identity.early,
                decided_ns: 0,
                end: None,
                identity: Identity::Table(identity),
            })?;
        }
        scoring.flush()?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_stays_bounded_and_spread() {
        let mut timeline = Timeline::new(100);
        for i in 0..100_000 {
            timeline.push(TimelinePoint {
                ts_ns: i,
                score: 1.0,
                anomaly: true,
            });
        }
        let points = &timeline.points;
        assert!(
            points.len() <= 100 && points.len() >= 50,
            "{}",
            points.len()
        );
        assert!(points
            .windows(2)
            .all(|w| w[1].ts_ns - w[0].ts_ns == timeline.stride as i64));
        assert!(points.last().unwrap().ts_ns > 99_000);
    }
}
