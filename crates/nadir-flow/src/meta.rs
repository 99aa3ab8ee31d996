//! What the table knows about each flow, independent of any feature family.

use nadir_decode::Tunnel;
use serde::{Deserialize, Serialize};

use crate::key::{Endpoint, FlowKey};

/// Why a flow was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EndReason {
    /// A packet arrived more than the flow timeout after the flow's first packet; that
    /// packet starts the next flow of the same key.
    FlowTimeout,
    /// The flow saw FIN both ways or an RST; written when the next packet of the
    /// key arrived (CICFlowMeter does the same; that packet starts a new flow).
    TcpTermination,
    /// Untouched for longer than the idle expiry (memory bound on long captures).
    IdleExpired,
    /// Pushed out by a new flow while the table held `max_flows` flows.
    Evicted,
    /// Still live when the input ended.
    EndOfInput,
    /// A snapshot after the first K packets; the flow goes on and is emitted again.
    Early,
}

impl EndReason {
    /// A short stable name (metrics labels, summaries).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::FlowTimeout => "flow-timeout",
            EndReason::TcpTermination => "tcp-termination",
            EndReason::IdleExpired => "idle-expired",
            EndReason::Evicted => "evicted",
            EndReason::EndOfInput => "end-of-input",
            EndReason::Early => "early",
        }
    }
}

/// Table-side facts about a flow, updated before each packet reaches the state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FlowMeta {
    pub key: FlowKey,
    /// Forward source: the first packet's source (kept across a TCP timeout split).
    pub src: Endpoint,
    pub dst: Endpoint,
    pub protocol: u8,
    pub vlan: u16,
    /// Tunnel of the flow's first packet.
    pub tunnel: Option<Tunnel>,
    /// Timestamp of the first packet (ns since the epoch).
    pub first_ts_ns: i64,
    /// Timestamp of the latest packet (as given to the state; see [`crate::TimeOrder`]).
    pub last_ts_ns: i64,
    pub fwd_packets: u64,
    pub bwd_packets: u64,
    /// TCP connection time carried over earlier timeout splits of this connection
    /// (0 for the first flow of a connection and for non-TCP flows).
    pub tcp_time_before_ns: i64,
    /// `now - first_ts` of the packet that ended this flow (timeout or termination
    /// trigger), added to the connection's cumulative TCP time; `None` when the flow
    /// ended otherwise (end of input, eviction, expiry, early snapshot).
    pub trigger_elapsed_ns: Option<i64>,
    /// Number of this flow in the table's order of creation (per shard).
    pub sequence: u64,
    pub end: EndReason,
}

impl FlowMeta {
    pub fn packets(&self) -> u64 {
        self.fwd_packets + self.bwd_packets
    }

    /// The outer tunnel's (source, destination), when the flow was inside one.
    pub fn outer_ends(&self) -> Option<(std::net::IpAddr, std::net::IpAddr)> {
        self.tunnel.map(|t| (t.outer_src, t.outer_dst))
    }
    /// `last_ts - first_ts` (may be negative with [`crate::TimeOrder::AsCaptured`]).
    pub fn duration_ns(&self) -> i64 {
        self.last_ts_ns.saturating_sub(self.first_ts_ns)
    }
}

/// A flow that has ended (or an early snapshot), with its feature state. Tables hand
/// it out as `FinishedFlow<&S, &FlowMeta>`, both borrowed from the table (a meta is
/// ~200 bytes: copying it for every ended flow showed in profiles).
#[derive(Debug, Clone, Copy)]
pub struct FinishedFlow<S, M = FlowMeta> {
    pub meta: M,
    pub state: S,
}

impl<S> FinishedFlow<S> {
    pub fn as_ref(&self) -> FinishedFlow<&S, &FlowMeta> {
        FinishedFlow {
            meta: &self.meta,
            state: &self.state,
        }
    }
}

impl<S: Clone> FinishedFlow<&S, &FlowMeta> {
    /// An owned copy, to keep the flow past the callback.
    pub fn cloned(&self) -> FinishedFlow<S> {
        FinishedFlow {
            meta: *self.meta,
            state: self.state.clone(),
        }
    }
}

/// Counters of one table (sums over shards for the sharded runner).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowStats {
    pub packets: u64,
    /// Flows created (every emitted flow except early snapshots).
    pub flows: u64,
    pub emitted_timeout: u64,
    pub emitted_tcp_termination: u64,
    pub emitted_idle_expired: u64,
    pub evicted: u64,
    pub emitted_end_of_input: u64,
    pub early_snapshots: u64,
    /// Packets whose timestamp was earlier than their flow's last packet.
    pub out_of_order_packets: u64,
    pub live_flows: u64,
    pub peak_live_flows: u64,
}

impl FlowStats {
    /// Adds another shard's counters (live and peak add too: an upper bound of the
    /// sum of peaks, which is what the memory bound is about).
    pub fn merge(&mut self, other: &FlowStats) {
        self.packets += other.packets;
        self.flows += other.flows;
        self.emitted_timeout += other.emitted_timeout;
        self.emitted_tcp_termination += other.emitted_tcp_termination;
        self.emitted_idle_expired += other.emitted_idle_expired;
        self.evicted += other.evicted;
        self.emitted_end_of_input += other.emitted_end_of_input;
        self.early_snapshots += other.early_snapshots;
        self.out_of_order_packets += other.out_of_order_packets;
        self.live_flows += other.live_flows;
        self.peak_live_flows += other.peak_live_flows;
    }

    /// Adds the counters of a stream read after this one (the next capture file): its
    /// flows were never live together with these, so the peak is the larger of the two.
    pub fn merge_later(&mut self, other: &FlowStats) {
        let peak = self.peak_live_flows.max(other.peak_live_flows);
        self.merge(other);
        self.peak_live_flows = peak;
    }
}
