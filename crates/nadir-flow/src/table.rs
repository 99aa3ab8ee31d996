//! The single-threaded flow table.
//!
//! Live flows sit in a slab (`slots`) found through a hash table of slot numbers,
//! and on an intrusive doubly linked list in order of last touch (head = least
//! recently touched). The table holds 4-byte slot numbers, not keys: it stays small
//! enough for the cache, and each slot keeps its key and hash next to its links, so
//! a lookup reads one line of the slot it needs anyway. The list gives O(1)
//! eviction of the least recently used flow and O(1) amortised expiry of idle
//! flows; slots are reused through a free list, so after warm-up a packet
//! allocates nothing. The list is written by hand because it must
//! live inside the slab next to the map (no LRU crate offers slab-indexed entries
//! with custom expiry by timestamp).

use std::hash::BuildHasher;

use hashbrown::HashTable;
use nadir_decode::{ip_proto, tcp_flags, PacketRecord};

use crate::config::{FlowConfig, FlowConfigError, TimeOrder};
use crate::key::{keyed_ports, Direction, Endpoint, FlowKey, KeySide};
use crate::meta::{EndReason, FinishedFlow, FlowMeta, FlowStats};
use crate::FlowState;

/// Marks the end of the LRU list.
const NIL: u32 = u32::MAX;

struct LiveFlow<S> {
    meta: FlowMeta,
    state: S,
    /// Which canonical side is the flow's forward source.
    forward_side: KeySide,
    fin_fwd: bool,
    fin_bwd: bool,
    /// FIN both ways or RST seen: the next packet of the key ends this flow.
    to_terminate: bool,
}

struct Slot<S> {
    /// Key and hash of the flow in this slot (of the last one, when empty).
    key: FlowKey,
    hash: u64,
    prev: u32,
    next: u32,
    /// Table clock when the flow was last touched (monotone along the list).
    touched_ns: i64,
    flow: Option<LiveFlow<S>>,
}

/// A packet's flow key, its hash and the side of the key its source is on.
#[derive(Clone, Copy)]
struct PacketKey {
    key: FlowKey,
    hash: u64,
    side: KeySide,
}

/// Groups packets into bidirectional flows; see the crate documentation.
///
/// `make_state` builds a flow's [`FlowState`] from its metadata when the flow's
/// first packet arrives.
pub struct FlowTable<S, F> {
    cfg: FlowConfig,
    make_state: F,
    /// Slot numbers of the live flows, by the hash of their key.
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    slots: Vec<Slot<S>>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    /// Latest timestamp seen (the table's notion of "now" for idle expiry).
    clock_ns: i64,
    next_sequence: u64,
    stats: FlowStats,
}

impl<S: FlowState, F: FnMut(&FlowMeta) -> S> FlowTable<S, F> {
    pub fn new(cfg: FlowConfig, make_state: F) -> Result<Self, FlowConfigError> {
        cfg.validate()?;
        // Start small and grow (amortised) up to max_flows, never past it: a small
        // index stays in cache, and most captures keep a few thousand flows live.
        let initial = cfg.max_flows.min(1 << 10);
        Ok(FlowTable {
            cfg,
            make_state,
            index: HashTable::with_capacity(initial),
            hasher: foldhash::fast::RandomState::default(),
            slots: Vec::with_capacity(initial),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            clock_ns: i64::MIN,
            next_sequence: 0,
            stats: FlowStats::default(),
        })
    }

    pub fn config(&self) -> &FlowConfig {
        &self.cfg
    }

    /// Counters so far (`live_flows` is the current number of live flows).
    pub fn stats(&self) -> FlowStats {
        FlowStats {
            live_flows: self.index.len() as u64,
            ..self.stats
        }
    }

    /// Number of flows currently held.
    pub fn live_flows(&self) -> usize {
        self.index.len()
    }

    /// Adds one packet; flows that end because of it (timeouts, termination,
    /// eviction, idle expiry, early snapshots) go to `emit` in the order they end.
    /// `data` is the packet's captured bytes, handed to the flow's state.
    pub fn push(
        &mut self,
        pkt: &PacketRecord,
        data: &[u8],
        emit: &mut impl FnMut(FinishedFlow<&S, &FlowMeta>),
    ) {
        self.push_at(pkt, data, pkt.ts_ns, emit);
    }

    /// [`Self::push`] with the capture's clock (latest timestamp over all shards), so
    /// a shard expires idle flows exactly when a single table would.
    pub(crate) fn push_at(
        &mut self,
        pkt: &PacketRecord,
        data: &[u8],
        clock_ns: i64,
        emit: &mut impl FnMut(FinishedFlow<&S, &FlowMeta>),
    ) {
        self.stats.packets += 1;
        let data = &data[..data.len().min(self.cfg.data_bytes)];
        self.clock_ns = self.clock_ns.max(clock_ns).max(pkt.ts_ns);
        self.expire_idle(emit);

        let (key, side) = FlowKey::of_packet(pkt);
        let at = PacketKey {
            key,
            hash: self.hasher.hash_one(key),
            side,
        };
        let slots = &self.slots;
        let found = self
            .index
            .find(at.hash, |&slot| slots[slot as usize].key == key);
        match found.copied() {
            Some(slot) => self.continue_flow(slot, at, pkt, data, emit),
            None => {
                if self.index.len() >= self.cfg.max_flows {
                    self.evict_lru(emit);
                }
                self.start_flow(at, pkt, data, None, emit);
            }
        }
    }

    /// Moves the clock to `clock_ns` (if later) and expires idle flows: a shard
    /// calls this at the end with the capture's last timestamp, so it ends exactly
    /// the flows a single table would have expired.
    pub(crate) fn advance_clock(
        &mut self,
        clock_ns: i64,
        emit: &mut impl FnMut(FinishedFlow<&S, &FlowMeta>),
    ) {
        self.clock_ns = self.clock_ns.max(clock_ns);
        self.expire_idle(emit);
    }

    /// Emits every live flow (end of input), least recently used first.
    pub fn finish(&mut self, emit: &mut impl FnMut(FinishedFlow<&S, &FlowMeta>)) {
        while self.head != NIL {
            self.remove_head(EndReason::EndOfInput, emit);
        }
    }

    /// Emits flows untouched for longer than the idle expiry.
    fn expire_idle(&mut self, emit: &mut impl FnMut(FinishedFlow<&S, &FlowMeta>)) {
        while self.head != NIL {
            let touched = self.slots[self.head as usize].touched_ns;
            if self.clock_ns.saturating_sub(touched) <= self.cfg.idle_expiry_ns {
                break;
            }
            self.remove_head(EndReason::IdleExpired, emit);
        }
    }

    fn evict_lru(&mut self, emit: &mut impl FnMut(FinishedFlow<&S, &FlowMeta>)) {
        if self.head != NIL {
            self.remove_head(EndReason::Evicted, emit);
        }
    }

    fn remove_head(
        &mut self,
        reason: EndReason,
        emit: &mut impl FnMut(FinishedFlow<&S, &FlowMeta>),
    ) {
        let slot = self.head;
        self.unlink(slot);
        self.free.push(slot);
        if self.slots[slot as usize].flow.is_some() {
            self.unindex(slot);
            self.emit_flow(slot, reason, None, emit);
            self.slots[slot as usize].flow = None;
        }
    }

    /// Takes `slot` out of the index.
    fn unindex(&mut self, slot: u32) {
        let hash = self.slots[slot as usize].hash;
        if let Ok(entry) = self.index.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
    }

    /// Hands the flow in `slot` to `emit` by reference (a state is ~1 KB: moving it
    /// out of the slab for every ended flow cost about a tenth of extraction time).
    fn emit_flow(
        &mut self,
        slot: u32,
        reason: EndReason,
        trigger_elapsed_ns: Option<i64>,
        emit: &mut impl FnMut(FinishedFlow<&S, &FlowMeta>),
    ) {
        let Some(flow) = self.slots[slot as usize].flow.as_mut() else {
            return;
        };
        let stat = match reason {
            EndReason::FlowTimeout => &mut self.stats.emitted_timeout,
            EndReason::TcpTermination => &mut self.stats.emitted_tcp_termination,
            EndReason::IdleExpired => &mut self.stats.emitted_idle_expired,
            EndReason::Evicted => &mut self.stats.evicted,
            EndReason::EndOfInput => &mut self.stats.emitted_end_of_input,
            EndReason::Early => &mut self.stats.early_snapshots,
        };
        *stat += 1;
        // Written into the live meta (the next emission, if any, overwrites them).
        flow.meta.end = reason;
        flow.meta.trigger_elapsed_ns = trigger_elapsed_ns;
        emit(FinishedFlow {
            meta: &flow.meta,
            state: &flow.state,
        });
    }

    /// Opens a flow with `pkt` as its first packet. `carried` = (forward source,
    /// forward destination, forward side, TCP time so far) of a TCP connection split
    /// by the flow timeout: the new flow keeps the old direction.
    fn start_flow(
        &mut self,
        at: PacketKey,
        pkt: &PacketRecord,
        data: &[u8],
        carried: Option<(Endpoint, Endpoint, KeySide, i64)>,
        emit: &mut impl FnMut(FinishedFlow<&S, &FlowMeta>),
    ) {
        let (sport, dport) = keyed_ports(pkt);
        let pkt_src = Endpoint {
            addr: pkt.src,
            port: sport,
        };
        let pkt_dst = Endpoint {
            addr: pkt.dst,
            port: dport,
        };
        let (src, dst, forward_side, tcp_time_before_ns) =
            carried.unwrap_or((pkt_src, pkt_dst, at.side, 0));
        let dir = if at.side == forward_side {
            Direction::Forward
        } else {
            Direction::Backward
        };
        let meta = FlowMeta {
            key: at.key,
            src,
            dst,
            protocol: pkt.protocol,
            vlan: pkt.vlan,
            tunnel: pkt.tunnel,
            first_ts_ns: pkt.ts_ns,
            last_ts_ns: pkt.ts_ns,
            fwd_packets: u64::from(dir == Direction::Forward),
            bwd_packets: u64::from(dir == Direction::Backward),
            tcp_time_before_ns,
            trigger_elapsed_ns: None,
            sequence: self.next_sequence,
            end: EndReason::EndOfInput,
        };
        self.next_sequence += 1;
        self.stats.flows += 1;
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot {
                    key: at.key,
                    hash: at.hash,
                    prev: NIL,
                    next: NIL,
                    touched_ns: 0,
                    flow: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let entry = &mut self.slots[slot as usize];
        entry.key = at.key;
        entry.hash = at.hash;
        // Built in its slot and updated there: no ~1 KB state moves per new flow.
        let flow = entry.flow.insert(LiveFlow {
            meta,
            state: (self.make_state)(&meta),
            forward_side,
            fin_fwd: false,
            fin_bwd: false,
            to_terminate: false,
        });
        flow.state.on_packet(&flow.meta, pkt, dir, data);
        Self::note_tcp_end(flow, pkt, dir);
        if self.cfg.early_after == Some(1) {
            self.emit_flow(slot, EndReason::Early, None, emit);
        }
        let slots = &self.slots;
        self.index
            .insert_unique(at.hash, slot, |&s| slots[s as usize].hash);
        self.push_back(slot);
        let live = self.index.len() as u64;
        if live > self.stats.peak_live_flows {
            self.stats.peak_live_flows = live;
        }
    }

    fn continue_flow(
        &mut self,
        slot: u32,
        at: PacketKey,
        pkt: &PacketRecord,
        data: &[u8],
        emit: &mut impl FnMut(FinishedFlow<&S, &FlowMeta>),
    ) {
        let Some(flow) = self.slots[slot as usize].flow.as_mut() else {
            // Unreachable by construction (the index only names occupied slots);
            // recover by treating the packet as a new flow rather than panicking.
            self.unindex(slot);
            self.start_flow(at, pkt, data, None, emit);
            return;
        };
        let elapsed = pkt.ts_ns.saturating_sub(flow.meta.first_ts_ns);
        let timed_out = elapsed > self.cfg.flow_timeout_ns;
        if timed_out || flow.to_terminate {
            // CICFlowMeter order: the timeout test comes first, and only a TCP timeout
            // split keeps the old direction and carries the connection time.
            let reason = if timed_out {
                EndReason::FlowTimeout
            } else {
                EndReason::TcpTermination
            };
            let carried = (timed_out && flow.meta.protocol == ip_proto::TCP).then(|| {
                (
                    flow.meta.src,
                    flow.meta.dst,
                    flow.forward_side,
                    flow.meta.tcp_time_before_ns + elapsed,
                )
            });
            self.unlink(slot);
            self.free.push(slot);
            self.unindex(slot);
            self.emit_flow(slot, reason, Some(elapsed), emit);
            self.slots[slot as usize].flow = None;
            self.start_flow(at, pkt, data, carried, emit);
            return;
        }

        let dir = if at.side == flow.forward_side {
            Direction::Forward
        } else {
            Direction::Backward
        };
        let clamped;
        let mut effective = pkt;
        if pkt.ts_ns < flow.meta.last_ts_ns {
            self.stats.out_of_order_packets += 1;
            if self.cfg.time_order == TimeOrder::Monotonic {
                clamped = PacketRecord {
                    ts_ns: flow.meta.last_ts_ns,
                    ..*pkt
                };
                effective = &clamped;
            }
        }
        flow.meta.last_ts_ns = effective.ts_ns;
        match dir {
            Direction::Forward => flow.meta.fwd_packets += 1,
            Direction::Backward => flow.meta.bwd_packets += 1,
        }
        flow.state.on_packet(&flow.meta, effective, dir, data);
        Self::note_tcp_end(flow, pkt, dir);
        let early = self
            .cfg
            .early_after
            .is_some_and(|k| flow.meta.packets() == u64::from(k));
        if early {
            self.emit_flow(slot, EndReason::Early, None, emit);
        }
        self.unlink(slot);
        self.push_back(slot);
    }

    /// CICFlowMeter termination: FIN seen both ways, or any RST (TCP only).
    fn note_tcp_end(flow: &mut LiveFlow<S>, pkt: &PacketRecord, dir: Direction) {
        if pkt.protocol != ip_proto::TCP {
            return;
        }
        if pkt.tcp_flags & tcp_flags::FIN != 0 {
            match dir {
                Direction::Forward => flow.fin_fwd = true,
                Direction::Backward => flow.fin_bwd = true,
            }
            if flow.fin_fwd && flow.fin_bwd {
                flow.to_terminate = true;
            }
        } else if pkt.tcp_flags & tcp_flags::RST != 0 {
            flow.to_terminate = true;
        }
    }

    fn unlink(&mut self, slot: u32) {
        let (prev, next) = {
            let s = &self.slots[slot as usize];
            (s.prev, s.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        let s = &mut self.slots[slot as usize];
        s.prev = NIL;
        s.next = NIL;
    }

    fn push_back(&mut self, slot: u32) {
        let tail = self.tail;
        {
            let s = &mut self.slots[slot as usize];
            s.prev = tail;
            s.next = NIL;
            s.touched_ns = self.clock_ns;
        }
        if tail == NIL {
            self.head = slot;
        } else {
            self.slots[tail as usize].next = slot;
        }
        self.tail = slot;
    }
}
