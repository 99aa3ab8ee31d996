//! Flow assembly: the third stage of the nadir pipeline.
//!
//! [`FlowTable`] groups decoded packets ([`nadir_decode::PacketRecord`]) into
//! bidirectional flows keyed by [`FlowKey`] (canonical 5-tuple + VLAN + tunnel id),
//! with the CICFlowMeter rules (flow timeout from flow start, TCP FIN/RST
//! termination written when the next packet of the key arrives) and a hard bound on
//! live flows (least recently used evicted first, counted). Each flow carries a
//! caller-chosen [`FlowState`] that sees every packet; finished flows are handed to
//! an `emit` callback as [`FinishedFlow`]s. [`ShardedFlowTable`] runs N tables on
//! worker threads, sharded by key hash, with the same flows as one table.

mod config;
mod key;
mod meta;
mod sharded;
mod table;

pub use config::{FlowConfig, FlowConfigError, TimeOrder};
pub use key::{Direction, Endpoint, FlowKey};
pub use meta::{EndReason, FinishedFlow, FlowMeta, FlowStats};
pub use sharded::{CloneFlows, Ended, ShardOutput, ShardPanicked, ShardedFlowTable};
pub use table::FlowTable;

use nadir_decode::PacketRecord;

/// Per-flow state that a feature extractor keeps while the flow is live.
///
/// The table calls [`FlowState::on_packet`] for every packet of the flow, the first
/// included, in arrival order. `Clone` is needed only to hand out early snapshots
/// ([`FlowConfig::early_after`]); keep states small and allocation-free per packet.
pub trait FlowState: Send + Clone + 'static {
    /// `meta` is already updated for this packet (counts, last timestamp);
    /// `data` is the packet's captured bytes (the link-layer frame).
    fn on_packet(&mut self, meta: &FlowMeta, pkt: &PacketRecord, dir: Direction, data: &[u8]);
}

/// A state that records nothing: for counting flows or tests of the table itself.
impl FlowState for () {
    fn on_packet(&mut self, _: &FlowMeta, _: &PacketRecord, _: Direction, _: &[u8]) {}
}
