//! Flow table configuration, validated before use.

use serde::{Deserialize, Serialize};

/// How the table treats packets whose timestamp is earlier than the flow's last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TimeOrder {
    /// Pass timestamps through as captured (CICFlowMeter does; gives negative IATs).
    #[default]
    AsCaptured,
    /// Clamp each packet's timestamp to at least the flow's last timestamp, so
    /// inter-arrival times are never negative (the `fixed` cic mode uses this).
    Monotonic,
}

/// Flow table settings. Times are nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FlowConfig {
    /// A flow is split when a packet arrives more than this long after the flow's
    /// first packet (CICFlowMeter: 120 s).
    pub flow_timeout_ns: i64,
    /// Gap that separates active periods (CICFlowMeter: 5 s). The table does not use
    /// it; feature states read it from here.
    pub activity_timeout_ns: i64,
    /// Flows untouched for longer than this are emitted ([`crate::EndReason::IdleExpired`])
    /// so memory does not grow on long captures. Defaults to the flow timeout: any
    /// later packet would have split such a flow anyway.
    pub idle_expiry_ns: i64,
    /// Most live flows held at once; beyond it the least recently used flow is
    /// emitted as [`crate::EndReason::Evicted`] and counted.
    pub max_flows: usize,
    /// When set, a snapshot of each flow is emitted after its first K packets
    /// ([`crate::EndReason::Early`]); the flow continues and is emitted again at its end.
    pub early_after: Option<u32>,
    pub time_order: TimeOrder,
    /// At most this many captured bytes of each packet reach [`crate::FlowState::on_packet`]
    /// (the sharded runner copies them to its workers, so keep it small when the
    /// states do not read packet bytes: the `cic` features need none).
    pub data_bytes: usize,
    /// Worker threads for [`crate::ShardedFlowTable`] (1 = run in the caller's thread).
    pub threads: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            flow_timeout_ns: 120_000_000_000,
            activity_timeout_ns: 5_000_000_000,
            idle_expiry_ns: 120_000_000_000,
            max_flows: 1 << 20,
            early_after: None,
            time_order: TimeOrder::AsCaptured,
            data_bytes: 65_535,
            threads: 1,
        }
    }
}

/// A setting out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlowConfigError {
    #[error("flow config: {field} must be positive, got {value}")]
    NotPositive { field: &'static str, value: i64 },
    #[error("flow config: max_flows must be between 1 and {max}, got {value}")]
    MaxFlows { value: usize, max: usize },
    #[error("flow config: early_after must be at least 1")]
    EarlyAfterZero,
    #[error("flow config: threads must be between 1 and 1024, got {0}")]
    Threads(usize),
}

/// Slot indices are u32; one below u32::MAX is reserved as the list end marker.
pub(crate) const MAX_FLOWS_LIMIT: usize = (u32::MAX - 1) as usize;

impl FlowConfig {
    /// Checks every field; the table and the sharded runner call this.
    pub fn validate(&self) -> Result<(), FlowConfigError> {
        for (field, value) in [
            ("flow_timeout_ns", self.flow_timeout_ns),
            ("activity_timeout_ns", self.activity_timeout_ns),
            ("idle_expiry_ns", self.idle_expiry_ns),
        ] {
            if value <= 0 {
                return Err(FlowConfigError::NotPositive { field, value });
            }
        }
        if self.max_flows == 0 || self.max_flows > MAX_FLOWS_LIMIT {
            return Err(FlowConfigError::MaxFlows {
                value: self.max_flows,
                max: MAX_FLOWS_LIMIT,
            });
        }
        if self.early_after == Some(0) {
            return Err(FlowConfigError::EarlyAfterZero);
        }
        if self.threads == 0 || self.threads > 1024 {
            return Err(FlowConfigError::Threads(self.threads));
        }
        Ok(())
    }
}
