//! Flow tables on worker threads, sharded by key hash.
//!
//! Each shard owns every flow whose [`FlowKey::shard`] names it, so each flow sees
//! exactly the packets (in the same order) it would see in a single table: output
//! is the same flows as one thread, only their interleaving differs. The one
//! exception is eviction: each shard holds 1/N of `max_flows` and evicts its own
//! least recently used flow, which a single table (one LRU over all flows) may not
//! pick; a global LRU would need every packet to pass through one lock. Packets travel
//! in batches whose buffers are recycled, so the steady state allocates nothing.
//! Input queues are bounded (memory stays bounded when a worker falls behind).

use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nadir_decode::PacketRecord;

use crate::config::{FlowConfig, FlowConfigError};
use crate::key::FlowKey;
use crate::meta::{FinishedFlow, FlowMeta, FlowStats};
use crate::table::FlowTable;
use crate::FlowState;

/// Packets per batch sent to a worker.
const BATCH_PACKETS: usize = 1024;
/// Batches queued per worker before the producer waits.
const QUEUE_BATCHES: usize = 4;
/// The longest a quiet moment waits for a worker to move its clock (it takes microseconds).
const WORKER_SILENCE: Duration = Duration::from_secs(1);

struct Batch {
    records: Vec<PacketRecord>,
    /// The capture clock (latest timestamp over all shards) at each packet.
    clocks: Vec<i64>,
    /// Captured bytes of all packets back to back; `ends[i]` closes packet i.
    data: Vec<u8>,
    ends: Vec<usize>,
    /// The capture clock after the packets, when it moved on without one (a quiet live
    /// source); `i64::MIN` otherwise.
    advance_to: i64,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            records: Vec::new(),
            clocks: Vec::new(),
            data: Vec::new(),
            ends: Vec::new(),
            advance_to: i64::MIN,
        }
    }
}

impl Batch {
    fn clear(&mut self) {
        self.records.clear();
        self.clocks.clear();
        self.data.clear();
        self.ends.clear();
        self.advance_to = i64::MIN;
    }
}

/// What a worker thread does with each flow its shard ends.
pub trait ShardOutput<S>: Send + 'static {
    /// What the worker sends back to the caller's thread: its output since the last
    /// [`ShardOutput::take`].
    type Batch: Send + 'static;
    fn add(&mut self, flow: FinishedFlow<&S, &FlowMeta>);
    /// The output gathered since the last call; `None` when there is none. Called
    /// after each batch of packets and at the end.
    fn take(&mut self) -> Option<Self::Batch>;
}

/// The default [`ShardOutput`]: owned copies of the flows, emitted on the caller's thread.
pub struct CloneFlows<S>(Vec<FinishedFlow<S>>);

impl<S> Default for CloneFlows<S> {
    fn default() -> Self {
        CloneFlows(Vec::new())
    }
}

impl<S: FlowState> ShardOutput<S> for CloneFlows<S> {
    type Batch = Vec<FinishedFlow<S>>;
    fn add(&mut self, flow: FinishedFlow<&S, &FlowMeta>) {
        self.0.push(flow.cloned());
    }
    fn take(&mut self) -> Option<Self::Batch> {
        (!self.0.is_empty()).then(|| std::mem::take(&mut self.0))
    }
}

/// What a sharded table hands its caller: with one thread, each flow as it ends; with
/// workers, each batch of a worker's [`ShardOutput`] as it arrives.
pub enum Ended<'a, S, B> {
    Flow(FinishedFlow<&'a S, &'a FlowMeta>),
    Batch(B),
}

enum WorkerReply<B> {
    Output(B),
    /// The worker has moved its clock as a batch asked (its output, if any, came before).
    Advanced,
    Done(FlowStats),
}

struct Worker {
    input: SyncSender<Batch>,
    recycled: Receiver<Batch>,
    pending: Batch,
    handle: JoinHandle<()>,
    /// The worker's live flows after its last batch.
    live: Arc<AtomicU64>,
}

enum Engine<S, F, B> {
    Inline(Box<FlowTable<S, F>>),
    Threads {
        workers: Vec<Worker>,
        replies: Receiver<WorkerReply<B>>,
        /// The capture clock at the end of input, read by workers before they finish.
        final_clock: Arc<AtomicI64>,
    },
}

/// A flow table over `cfg.threads` worker threads (or inline when 1), whose workers
/// hand their flows to a [`ShardOutput`] `O`.
pub struct ShardedFlowTable<S, F, O: ShardOutput<S> = CloneFlows<S>> {
    engine: Engine<S, F, O::Batch>,
    data_bytes: usize,
    clock_ns: i64,
}

impl<S, F> ShardedFlowTable<S, F>
where
    S: FlowState,
    F: FnMut(&FlowMeta) -> S + Clone + Send + 'static,
{
    /// Workers send copies of their flows back; see [`Self::push`].
    pub fn new(cfg: FlowConfig, make_state: F) -> Result<Self, FlowConfigError> {
        Self::with_output(cfg, make_state, CloneFlows::default)
    }

    /// Adds one packet; finished flows from any shard are passed to `emit` (on the
    /// caller's thread) as they arrive.
    pub fn push(
        &mut self,
        pkt: &PacketRecord,
        data: &[u8],
        emit: &mut impl FnMut(FinishedFlow<&S, &FlowMeta>),
    ) {
        self.push_ended(pkt, data, &mut |ended| ended.for_each_flow(&mut *emit));
    }

    /// Ends the input: flushes every shard, emits all remaining flows and returns
    /// the summed counters.
    pub fn finish(
        self,
        emit: &mut impl FnMut(FinishedFlow<&S, &FlowMeta>),
    ) -> Result<FlowStats, ShardPanicked> {
        self.finish_ended(&mut |ended| ended.for_each_flow(&mut *emit))
    }
}

impl<S> Ended<'_, S, Vec<FinishedFlow<S>>> {
    /// `f` on each flow, whether it ended on the caller's thread or came in a
    /// worker's batch of copies ([`CloneFlows`]); stops at the first error.
    pub fn try_for_each_flow<E>(
        self,
        mut f: impl FnMut(FinishedFlow<&S, &FlowMeta>) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            Ended::Flow(flow) => f(flow),
            Ended::Batch(flows) => flows.iter().try_for_each(|flow| f(flow.as_ref())),
        }
    }

    /// [`Self::try_for_each_flow`] for an `f` that cannot fail.
    pub fn for_each_flow(self, mut f: impl FnMut(FinishedFlow<&S, &FlowMeta>)) {
        let _ = self.try_for_each_flow(|flow| {
            f(flow);
            Ok::<(), Infallible>(())
        });
    }
}

impl<S, F, O> ShardedFlowTable<S, F, O>
where
    S: FlowState,
    F: FnMut(&FlowMeta) -> S + Clone + Send + 'static,
    O: ShardOutput<S>,
{
    /// Each worker gets an output from `make_output`; with one thread there is no
    /// worker and flows reach the caller directly ([`Ended::Flow`]).
    pub fn with_output(
        cfg: FlowConfig,
        make_state: F,
        mut make_output: impl FnMut() -> O,
    ) -> Result<Self, FlowConfigError> {
        cfg.validate()?;
        let threads = cfg.threads;
        if threads == 1 {
            return Ok(ShardedFlowTable {
                engine: Engine::Inline(Box::new(FlowTable::new(cfg, make_state)?)),
                data_bytes: cfg.data_bytes,
                clock_ns: i64::MIN,
            });
        }
        // Each shard gets an equal share of the flow budget, so the total stays bounded.
        let shard_cfg = FlowConfig {
            max_flows: cfg.max_flows.div_ceil(threads).max(1),
            threads: 1,
            ..cfg
        };
        let (reply_tx, replies) = channel::<WorkerReply<O::Batch>>();
        let final_clock = Arc::new(AtomicI64::new(i64::MIN));
        let mut workers = Vec::with_capacity(threads);
        for _ in 0..threads {
            let table = FlowTable::new(shard_cfg, make_state.clone())?;
            let (input, input_rx) = sync_channel::<Batch>(QUEUE_BATCHES);
            let (recycle_tx, recycled) = channel::<Batch>();
            let reply_tx = reply_tx.clone();
            let final_clock = Arc::clone(&final_clock);
            let output = make_output();
            let live = Arc::new(AtomicU64::new(0));
            let worker_live = Arc::clone(&live);
            let handle = std::thread::Builder::new()
                .name("nadir-flow-shard".into())
                .spawn(move || {
                    run_worker(
                        table,
                        output,
                        input_rx,
                        recycle_tx,
                        reply_tx,
                        final_clock,
                        worker_live,
                    )
                })
                .map_err(|_| FlowConfigError::Threads(threads))?;
            workers.push(Worker {
                input,
                recycled,
                pending: Batch::default(),
                handle,
                live,
            });
        }
        Ok(ShardedFlowTable {
            engine: Engine::Threads {
                workers,
                replies,
                final_clock,
            },
            data_bytes: cfg.data_bytes,
            clock_ns: i64::MIN,
        })
    }

    /// Flows held now (with worker threads: as of each worker's last batch).
    pub fn live_flows(&self) -> u64 {
        match &self.engine {
            Engine::Inline(table) => table.live_flows() as u64,
            Engine::Threads { workers, .. } => {
                workers.iter().map(|w| w.live.load(Ordering::Relaxed)).sum()
            }
        }
    }

    /// Adds one packet; what ends goes to `on` (on the caller's thread) as it
    /// arrives: flows with one thread, workers' output batches with more.
    pub fn push_ended(
        &mut self,
        pkt: &PacketRecord,
        data: &[u8],
        on: &mut impl FnMut(Ended<'_, S, O::Batch>),
    ) {
        match &mut self.engine {
            Engine::Inline(table) => table.push(pkt, data, &mut |flow| on(Ended::Flow(flow))),
            Engine::Threads {
                workers, replies, ..
            } => {
                let shard = FlowKey::from_packet(pkt).shard(workers.len());
                let worker = &mut workers[shard];
                let data = &data[..data.len().min(self.data_bytes)];
                self.clock_ns = self.clock_ns.max(pkt.ts_ns);
                worker.pending.records.push(*pkt);
                worker.pending.clocks.push(self.clock_ns);
                worker.pending.data.extend_from_slice(data);
                worker.pending.ends.push(worker.pending.data.len());
                if worker.pending.records.len() >= BATCH_PACKETS {
                    let fresh = worker.recycled.try_recv().unwrap_or_default();
                    let full = std::mem::replace(&mut worker.pending, fresh);
                    // A send fails only if the worker died; its panic surfaces at finish().
                    let _ = worker.input.send(full);
                    drain(replies, on);
                }
            }
        }
    }

    /// Moves the capture clock to `clock_ns` with no packet (a quiet live source) and ends
    /// the flows idle since before the timeout; with workers, each gets the packets it was
    /// waiting to batch as well, so nothing waits for more traffic.
    pub fn advance_clock_ended(
        &mut self,
        clock_ns: i64,
        on: &mut impl FnMut(Ended<'_, S, O::Batch>),
    ) {
        match &mut self.engine {
            Engine::Inline(table) => {
                table.advance_clock(clock_ns, &mut |flow| on(Ended::Flow(flow)))
            }
            Engine::Threads {
                workers, replies, ..
            } => {
                self.clock_ns = self.clock_ns.max(clock_ns);
                let mut asked = 0;
                for worker in workers.iter_mut() {
                    let fresh = worker.recycled.try_recv().unwrap_or_default();
                    let mut batch = std::mem::replace(&mut worker.pending, fresh);
                    batch.advance_to = self.clock_ns;
                    asked += usize::from(worker.input.send(batch).is_ok());
                }
                // Waits for every worker (the input is quiet: nothing else to do), so what
                // ended reaches the caller now, not at the next batch.
                while asked > 0 {
                    match replies.recv_timeout(WORKER_SILENCE) {
                        Ok(WorkerReply::Output(batch)) => on(Ended::Batch(batch)),
                        Ok(WorkerReply::Advanced) => asked -= 1,
                        // A worker that died mid-batch never answers: its panic surfaces at
                        // finish().
                        Ok(WorkerReply::Done(_)) | Err(_) => break,
                    }
                }
            }
        }
    }

    /// Ends the input: flushes every shard, hands over all that remains and returns
    /// the summed counters.
    pub fn finish_ended(
        self,
        on: &mut impl FnMut(Ended<'_, S, O::Batch>),
    ) -> Result<FlowStats, ShardPanicked> {
        match self.engine {
            Engine::Inline(mut table) => {
                table.finish(&mut |flow| on(Ended::Flow(flow)));
                Ok(table.stats())
            }
            Engine::Threads {
                workers,
                replies,
                final_clock,
            } => {
                // Set before any queue closes; a worker reads it only after its queue closed.
                final_clock.store(self.clock_ns, Ordering::SeqCst);
                let mut handles = Vec::with_capacity(workers.len());
                for worker in workers {
                    if !worker.pending.records.is_empty() {
                        let _ = worker.input.send(worker.pending);
                    }
                    drop(worker.input); // closing the queue tells the worker to finish
                    handles.push(worker.handle);
                }
                let handles_len = handles.len();
                let mut stats = FlowStats::default();
                let mut done = 0;
                while done < handles_len {
                    match replies.recv() {
                        Ok(WorkerReply::Output(batch)) => on(Ended::Batch(batch)),
                        Ok(WorkerReply::Advanced) => {}
                        Ok(WorkerReply::Done(shard_stats)) => {
                            stats.merge(&shard_stats);
                            done += 1;
                        }
                        Err(_) => break, // every worker gone: a panic, reported below
                    }
                }
                let mut panicked = false;
                for handle in handles {
                    panicked |= handle.join().is_err();
                }
                if panicked || done < handles_len {
                    return Err(ShardPanicked);
                }
                Ok(stats)
            }
        }
    }
}

/// A worker thread panicked (a bug in a flow state); its flows are lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a flow shard worker thread panicked; flows of that shard were lost")]
pub struct ShardPanicked;

fn drain<S, B>(replies: &Receiver<WorkerReply<B>>, on: &mut impl FnMut(Ended<'_, S, B>)) {
    while let Ok(reply) = replies.try_recv() {
        if let WorkerReply::Output(batch) = reply {
            on(Ended::Batch(batch));
        }
    }
}

fn run_worker<S, F, O>(
    mut table: FlowTable<S, F>,
    mut output: O,
    input: Receiver<Batch>,
    recycle: Sender<Batch>,
    replies: Sender<WorkerReply<O::Batch>>,
    final_clock: Arc<AtomicI64>,
    live: Arc<AtomicU64>,
) where
    S: FlowState,
    F: FnMut(&FlowMeta) -> S,
    O: ShardOutput<S>,
{
    while let Ok(mut batch) = input.recv() {
        let mut start = 0;
        for ((record, &end), &clock) in batch.records.iter().zip(&batch.ends).zip(&batch.clocks) {
            table.push_at(record, &batch.data[start..end], clock, &mut |flow| {
                output.add(flow)
            });
            start = end;
        }
        let advanced = batch.advance_to != i64::MIN;
        if advanced {
            table.advance_clock(batch.advance_to, &mut |flow| output.add(flow));
        }
        if let Some(out) = output.take() {
            let _ = replies.send(WorkerReply::Output(out));
        }
        if advanced {
            let _ = replies.send(WorkerReply::Advanced);
        }
        live.store(table.live_flows() as u64, Ordering::Relaxed);
        batch.clear();
        let _ = recycle.send(batch);
    }
    table.advance_clock(final_clock.load(Ordering::SeqCst), &mut |flow| {
        output.add(flow)
    });
    table.finish(&mut |flow| output.add(flow));
    if let Some(out) = output.take() {
        let _ = replies.send(WorkerReply::Output(out));
    }
    let _ = replies.send(WorkerReply::Done(table.stats()));
}
