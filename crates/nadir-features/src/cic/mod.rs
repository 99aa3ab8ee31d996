//! CICFlowMeter-compatible flow statistics (`--features cic`).
//!
//! [`CicFlow`] is a [`nadir_flow::FlowState`] that keeps the statistics of one flow
//! in constant space; [`CicFlow::record`] turns a finished flow into a
//! [`CicRecord`] (identity columns + 79 features) and [`CicRecord::write_csv_row`]
//! prints it as one row of the 87-column dataset CSV ([`columns::CIC_COLUMNS`]).
//! [`CicFlow::write_csv_row`] writes the same row straight from the state, each
//! value formatted as it is computed (the extraction path).
//! Semantics follow seeds-spec §6.2 (the GintsEngelen fork @273d097); the `fixed`
//! mode's repairs are listed on [`CicFlow`].

pub mod columns;
mod flow;
pub(crate) mod format;
mod stats;
mod values;

pub use columns::{
    canonical_column, column_index, is_duplicate_column, CIC_COLUMNS, CIC_COLUMN_ALIASES,
};
pub use flow::{cic_flow_config, CicConfig, CicFlow, CicMode};
pub use format::{
    write_csv_field, write_int, write_ip, write_java_double, write_timestamp, write_uint,
    write_value, TextBlock,
};
pub use stats::RunningStats;
pub use values::{CicFeatures, CicValue, FeatureVisitor, CIC_FEATURE_COUNT, FIRST_FEATURE_COLUMN};

use nadir_flow::Endpoint;

/// The identity columns of a row: who talked to whom, and when.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CicIdentity {
    /// Flow source/destination (`Src IP`, `Src Port`, `Dst IP`, `Dst Port`).
    pub src: Endpoint,
    pub dst: Endpoint,
    /// Source/destination of the flow's first packet (the `Flow ID` uses these).
    pub first_src: Endpoint,
    pub first_dst: Endpoint,
    /// Protocol as printed (compat: 0 for anything but TCP/UDP).
    pub protocol: u8,
    pub start_ts_ns: i64,
}

/// One finished flow ready to print: the identity columns and the features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CicRecord {
    pub identity: CicIdentity,
    pub features: CicFeatures,
}

impl CicIdentity {
    /// Appends the `Flow ID` (`srcIP-dstIP-srcPort-dstPort-proto` of the first packet).
    pub fn write_flow_id(&self, out: &mut Vec<u8>) {
        format::write_flow_id(out, self);
    }
}

impl CicRecord {
    /// Appends one CSV row (87 fields and a newline) in dataset order. `label` is
    /// the `Label` column (always present; e.g. `NeedManualLabel` or a class id).
    pub fn write_csv_row(&self, out: &mut TextBlock, mode: CicMode, label: &str) {
        format::write_csv_row(out, &self.identity, mode, label, |values| {
            self.features.visit(values)
        });
    }
}

/// Appends the dataset's header line (87 names and a newline).
pub fn write_csv_header(out: &mut Vec<u8>) {
    for (i, name) in CIC_COLUMNS.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_csv_field(out, name);
    }
    out.push(b'\n');
}
