//! The identity columns that lead every per-flow row of the `packets` and `bytes`
//! families: which flow, when, why it ended, and its label.

use std::fmt::Write as _;

use nadir_flow::{EndReason, FlowMeta};

use super::{ColumnType, RowSink, TableSchema, Value};
use crate::roles::ColumnRole;

/// Column names, types and roles, in order, of [`put_flow_columns`].
pub const FLOW_COLUMNS: [(&str, ColumnType, ColumnRole); 10] = [
    ("flow_id", ColumnType::Utf8, ColumnRole::Identity),
    ("src_ip", ColumnType::Utf8, ColumnRole::Identity),
    ("src_port", ColumnType::UInt16, ColumnRole::Identity),
    ("dst_ip", ColumnType::Utf8, ColumnRole::Identity),
    ("dst_port", ColumnType::UInt16, ColumnRole::Identity),
    ("protocol", ColumnType::UInt16, ColumnRole::Feature),
    ("first_ts_ns", ColumnType::Int64, ColumnRole::Time),
    ("last_ts_ns", ColumnType::Int64, ColumnRole::Time),
    // How the flow ended says when the capture stopped, not how the flow behaved.
    ("end_reason", ColumnType::Utf8, ColumnRole::Ignored),
    ("label", ColumnType::Utf8, ColumnRole::Label),
];

/// Appends the flow identity columns.
pub fn push_flow_columns(schema: &mut TableSchema) {
    for (name, kind, role) in FLOW_COLUMNS {
        schema.push(name, kind, role);
    }
}

/// Stable lower-case name of an end reason, as written in `end_reason`.
pub fn end_reason_name(reason: EndReason) -> &'static str {
    match reason {
        EndReason::FlowTimeout => "flow_timeout",
        EndReason::TcpTermination => "tcp_termination",
        EndReason::IdleExpired => "idle_expired",
        EndReason::Evicted => "evicted",
        EndReason::EndOfInput => "end_of_input",
        EndReason::Early => "early",
    }
}

/// Reusable text buffers for the address columns (no allocation once warm).
#[derive(Debug, Default)]
pub struct FlowColumnText {
    flow_id: String,
    src: String,
    dst: String,
}

/// Puts the identity values of `meta` with `label` into the current row.
/// `flow_id` follows CICFlowMeter's `src-dst-srcport-dstport-protocol`.
pub fn put_flow_columns(
    sink: &mut dyn RowSink,
    text: &mut FlowColumnText,
    meta: &FlowMeta,
    label: &str,
) {
    text.src.clear();
    text.dst.clear();
    text.flow_id.clear();
    // Writing into a String cannot fail.
    let _ = write!(text.src, "{}", meta.src.addr);
    let _ = write!(text.dst, "{}", meta.dst.addr);
    let _ = write!(
        text.flow_id,
        "{}-{}-{}-{}-{}",
        text.src, text.dst, meta.src.port, meta.dst.port, meta.protocol
    );
    sink.put(Value::Str(&text.flow_id));
    sink.put(Value::Str(&text.src));
    sink.put(Value::U16(meta.src.port));
    sink.put(Value::Str(&text.dst));
    sink.put(Value::U16(meta.dst.port));
    sink.put(Value::U16(u16::from(meta.protocol)));
    sink.put(Value::I64(meta.first_ts_ns));
    sink.put(Value::I64(meta.last_ts_ns));
    sink.put(Value::Str(end_reason_name(meta.end)));
    sink.put(Value::Str(label));
}
