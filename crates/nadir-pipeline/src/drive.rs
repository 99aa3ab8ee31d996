//! The drivers: capture -> decode -> flow table -> what ends, handed to a sink.
//!
//! Each capture file is read as its own stream: its flows are emitted as they end
//! and all remaining flows at the end of the file (also when the file breaks off
//! with an error, so no packet read before the fault is lost).

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use nadir_capture::{FileSource, OpenOptions, PacketSource, SourceEvent};
use nadir_decode::{Decoder, DecoderConfig, PacketRecord};
use nadir_features::labels::{FileLabeler, LabelRules, LabelTarget};
use nadir_flow::{
    Ended, FinishedFlow, FlowConfig, FlowMeta, FlowState, ShardOutput, ShardedFlowTable,
};

use crate::{PipelineError, Progress, RunSummary};

/// Packets between progress-bar updates.
pub const PROGRESS_EVERY: u64 = 1 << 14;

/// Where packets come from: a capture file (`-` for stdin) or a source already open (a live
/// interface, which ends when it is told to stop).
pub enum Input {
    Path(PathBuf),
    Source(Box<dyn PacketSource + Send>),
}

impl Input {
    /// The capture's path or the source's name, as records and messages name it.
    pub fn name(&self) -> String {
        self.path().display().to_string()
    }

    /// The path (a live source: its name), for labels and progress.
    fn path(&self) -> PathBuf {
        match self {
            Input::Path(path) => path.clone(),
            Input::Source(source) => PathBuf::from(source.name()),
        }
    }
}

/// Reads one capture (`-`: stdin), decodes each packet and hands it to
/// `on_packet`; returns the bytes read. A capture that will not open or breaks off
/// mid-file is recorded in `summary.errors` and ends this file only (what was read
/// is kept by the caller, which flushes its flows afterwards); only `on_packet`'s
/// error stops the run.
pub fn for_each_packet<E>(
    path: &Path,
    progress: &Progress,
    summary: &mut RunSummary,
    mut on_packet: impl FnMut(&PacketRecord, &[u8]) -> Result<(), E>,
) -> Result<u64, E> {
    let mut on_seen = |seen: Seen<'_>| match seen {
        Seen::Packet(pkt, data) => on_packet(pkt, data),
        Seen::Quiet { .. } => Ok(()), // files are never quiet
    };
    match FileSource::open(path, &OpenOptions::default()) {
        Ok(mut source) => for_each_packet_from(&mut source, progress, summary, &mut on_seen),
        Err(err) => {
            summary.errors.push(err.to_string());
            Ok(0)
        }
    }
}

/// What [`for_each_packet_from`] hands on: a decoded packet, or a quiet moment of a live
/// source (packet time stands at `now_ns`).
pub enum Seen<'a> {
    Packet(&'a PacketRecord, &'a [u8]),
    Quiet { now_ns: i64 },
}

/// [`for_each_packet`] on a source already open; a live source's quiet moments are passed on
/// too.
pub fn for_each_packet_from<E>(
    source: &mut dyn PacketSource,
    progress: &Progress,
    summary: &mut RunSummary,
    mut on_seen: impl FnMut(Seen<'_>) -> Result<(), E>,
) -> Result<u64, E> {
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut record = PacketRecord::default();
    let mut packets = 0u64;
    loop {
        let raw = match source.next_event() {
            Ok(Some(SourceEvent::Packet(raw))) => raw,
            Ok(Some(SourceEvent::Quiet { now_ns })) => {
                on_seen(Seen::Quiet { now_ns })?;
                continue;
            }
            Ok(None) => break,
            Err(err) => {
                summary.errors.push(match packets {
                    0 => err.to_string(),
                    n => format!("{err} (flows from the {n} packets before it were kept)"),
                });
                break;
            }
        };
        packets += 1;
        // Skipped packets are counted by the decoder, per reason.
        if decoder.decode_into(&raw, &mut record).is_ok() {
            on_seen(Seen::Packet(&record, raw.data))?;
        }
        if packets.is_multiple_of(progress.every()) {
            progress.update(source.bytes_read());
            progress.skipped(decoder.skipped());
        }
    }
    summary.packets_read += packets;
    summary.skipped.merge(decoder.skipped());
    summary.subsecond_out_of_range += source.subsecond_out_of_range();
    let bytes = source.bytes_read();
    summary.bytes_read += bytes;
    Ok(bytes)
}

/// Drives a (sharded) flow table over every capture. With worker threads each
/// worker hands its flows to an output from `make_output` (given the file's
/// labeler); `write` turns what ends, flows or workers' batches, into rows.
///
/// The first `write` error stops the writing, not the reading: the file is read
/// to its end (so the counters stay whole), then the error is returned.
#[allow(clippy::too_many_arguments)]
pub fn run_flow_family<S, F, K, O, E>(
    captures: &[PathBuf],
    flow_cfg: FlowConfig,
    make_state: F,
    rules: &LabelRules,
    progress: &mut Progress,
    summary: &mut RunSummary,
    sink: &mut O,
    make_output: impl Fn(&FileLabeler) -> K,
    write: impl FnMut(Ended<'_, S, K::Batch>, &FileLabeler, &mut O) -> Result<(), E>,
) -> Result<(), PipelineError>
where
    S: FlowState,
    F: FnMut(&FlowMeta) -> S + Clone + Send + 'static,
    K: ShardOutput<S>,
    O: ?Sized,
    E: Into<PipelineError>,
{
    let inputs = captures.iter().cloned().map(Input::Path);
    run_flow_family_from(
        inputs,
        flow_cfg,
        make_state,
        rules,
        progress,
        summary,
        sink,
        make_output,
        write,
    )
}

/// [`run_flow_family`] over inputs of any kind (files, live sources).
#[allow(clippy::too_many_arguments)]
pub fn run_flow_family_from<S, F, K, O, E>(
    inputs: impl IntoIterator<Item = Input>,
    flow_cfg: FlowConfig,
    make_state: F,
    rules: &LabelRules,
    progress: &mut Progress,
    summary: &mut RunSummary,
    sink: &mut O,
    make_output: impl Fn(&FileLabeler) -> K,
    mut write: impl FnMut(Ended<'_, S, K::Batch>, &FileLabeler, &mut O) -> Result<(), E>,
) -> Result<(), PipelineError>
where
    S: FlowState,
    F: FnMut(&FlowMeta) -> S + Clone + Send + 'static,
    K: ShardOutput<S>,
    O: ?Sized,
    E: Into<PipelineError>,
{
    for (index, input) in inputs.into_iter().enumerate() {
        let path = input.path();
        progress.start_file(index, &path);
        summary.files += 1;
        let labeler = rules.for_file(&path);
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
        let every = progress.every();
        let live_flows = progress.live_flows_sink();
        let mut pushed = 0u64;
        let mut on_seen = |seen: Seen<'_>| {
            let publish = match seen {
                Seen::Packet(pkt, data) => {
                    table.push_ended(pkt, data, &mut emit);
                    pushed += 1;
                    pushed.is_multiple_of(every)
                }
                // A quiet network still ends its idle flows on time.
                Seen::Quiet { now_ns } => {
                    table.advance_clock_ended(now_ns, &mut emit);
                    true
                }
            };
            if let (Some(live), true) = (&live_flows, publish) {
                live.store(table.live_flows(), std::sync::atomic::Ordering::Relaxed);
            }
            Ok::<(), Infallible>(())
        };
        let Ok(bytes) = match input {
            Input::Path(path) => for_each_packet(&path, progress, summary, |pkt, data| {
                on_seen(Seen::Packet(pkt, data))
            }),
            Input::Source(mut source) => {
                for_each_packet_from(source.as_mut(), progress, summary, &mut on_seen)
            }
        };
        let stats = table.finish_ended(&mut emit)?;
        progress.live_flows(0);
        summary.flows.merge_later(&stats);
        progress.end_file(bytes);
        if let Some(err) = write_error {
            return Err(err.into());
        }
    }
    Ok(())
}

/// What a table whose workers send copies of their flows
/// ([`CloneFlows`](nadir_flow::CloneFlows)) hands over.
pub type EndedCopies<'a, S> = Ended<'a, S, Vec<FinishedFlow<S>>>;

/// [`run_flow_family`]'s `write` for families whose rows are written on the main
/// thread: workers send copies of their flows ([`CloneFlows`](nadir_flow::CloneFlows))
/// and `write` sees each flow alike.
pub fn each_flow<S, O: ?Sized, E>(
    mut write: impl FnMut(FinishedFlow<&S, &FlowMeta>, &FileLabeler, &mut O) -> Result<(), E>,
) -> impl FnMut(EndedCopies<'_, S>, &FileLabeler, &mut O) -> Result<(), E> {
    move |ended, labeler, sink| ended.try_for_each_flow(|flow| write(flow, labeler, sink))
}

/// What the label rules match a flow on: its endpoints, protocol and start.
pub fn label_target(meta: &FlowMeta) -> LabelTarget {
    LabelTarget {
        src: meta.src.addr,
        src_port: meta.src.port,
        dst: meta.dst.addr,
        dst_port: meta.dst.port,
        protocol: meta.protocol,
        first_ts_ns: meta.first_ts_ns,
    }
}
