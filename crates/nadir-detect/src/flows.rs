//! The bundle's raw feature columns, computed from finished flows.
//!
//! A bundle records the columns it was trained on, by name; this module works out from those
//! names which feature family made them (`cic`, `bytes` or flow-scope `packets` windows, and the
//! family's shape) and where each column's value comes from, so a capture is scored on the very
//! columns `extract` would have written for it. Every value goes through `f32` as the dataset
//! loader parses it from text: the same flow scores the same from a capture and from its
//! extracted table. Text columns (`flow_id`, `end_reason`) read as NaN, as the loader reads them.

pub use nadir_dataset::parse_byte_column_name;
use nadir_dataset::FeatureSchema;
use nadir_features::bytes::{FirstBytes, FirstBytesConfig};
use nadir_features::cic::columns::column_index;
use nadir_features::cic::{CicFeatures, CicIdentity, CIC_FEATURE_COUNT, FIRST_FEATURE_COLUMN};
use nadir_features::packets::{
    FlowPackets, WindowConfig, WindowScope, WindowView, FEATURES_PER_PACKET, PACKET_FEATURES,
};
use nadir_flow::{EndReason, FlowMeta};

use crate::DetectError;

/// The feature family a bundle was trained on, with its shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FlowFamily {
    /// CICFlowMeter-compatible flow statistics (one row per finished flow).
    Cic,
    /// The first N packets x M bytes of each flow; the verdict comes at the N-th packet.
    Bytes(FirstBytesConfig),
    /// Flow-scope per-packet windows; the flow's first window is scored, at its W-th packet.
    Windows(WindowConfig),
}

impl FlowFamily {
    /// Packets after which a flow is scored early, if the family allows it.
    pub fn early_after(&self) -> Option<usize> {
        match self {
            FlowFamily::Cic => None,
            FlowFamily::Bytes(shape) => Some(shape.packets()),
            FlowFamily::Windows(window) => Some(window.window()),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            FlowFamily::Cic => "cic",
            FlowFamily::Bytes(_) => "bytes",
            FlowFamily::Windows(_) => "packets (flow windows)",
        }
    }
}

/// Where one column's value comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    /// A column of the 87 CICFlowMeter columns: `Src Port`, `Dst Port`, `Protocol`, or a feature.
    Cic(usize),
    /// A `FLOW_COLUMNS` identity/time column of the `bytes` and `packets` tables.
    Flow(FlowField),
    /// `packets` of the bytes table.
    BytesPackets,
    /// Byte `i` of the first-bytes tensor.
    Byte(usize),
    /// `window_index`, `first_packet`, `last_packet`, `padding` of a window row.
    Window(WindowField),
    /// Value `i` of the window's `W x FEATURES_PER_PACKET` matrix.
    WindowValue(usize),
    /// A text column, NaN as the loader reads it.
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum FlowField {
    SrcPort,
    DstPort,
    Protocol,
    FirstTs,
    LastTs,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum WindowField {
    Index,
    FirstPacket,
    LastPacket,
    Padding,
}

/// The bundle's columns, resolved for one family.
#[derive(Debug, Clone)]
pub struct FlowColumns {
    family: FlowFamily,
    sources: Vec<Source>,
}

impl FlowColumns {
    /// Works out the family and every column's source from the bundle's schema; names the
    /// columns no family produces.
    pub fn for_schema(schema: &FeatureSchema) -> Result<FlowColumns, DetectError> {
        let columns = &schema.columns;
        let max_byte = columns
            .iter()
            .filter_map(|c| parse_byte_column_name(c))
            .fold(None, max2);
        let max_step = columns
            .iter()
            .filter_map(|c| parse_window(c))
            .fold(None, max2);
        let family = match (max_byte, max_step) {
            (Some(_), Some(_)) => {
                return Err(DetectError::Features(
                    "the bundle's columns mix first-bytes (b*_*) and packet-window (f*_*) features; no extractor writes such a table".into(),
                ))
            }
            (Some((p, b)), None) => FlowFamily::Bytes(
                FirstBytesConfig::new(p + 1, b + 1)
                    .map_err(|e| DetectError::Features(format!("bytes columns: {e}")))?,
            ),
            (None, Some((w, _))) => FlowFamily::Windows(
                WindowConfig::new(w + 1, w + 1, WindowScope::Flow, 1)
                    .map_err(|e| DetectError::Features(format!("window columns: {e}")))?,
            ),
            (None, None) => FlowFamily::Cic,
        };
        let mut sources = Vec::with_capacity(columns.len());
        let mut unknown = Vec::new();
        for name in columns {
            match source_of(family, name) {
                Some(source) => sources.push(source),
                None => unknown.push(name.as_str()),
            }
        }
        if !unknown.is_empty() {
            let shown: Vec<String> = unknown.iter().take(10).map(|n| format!("`{n}`")).collect();
            return Err(DetectError::Features(format!(
                "the bundle reads {} column(s) that no {} extractor computes from packets: {}{} (score its feature table instead: nadir detect --model M TABLE.csv)",
                unknown.len(),
                family.name(),
                shown.join(", "),
                if unknown.len() > 10 { ", ..." } else { "" }
            )));
        }
        Ok(FlowColumns { family, sources })
    }

    pub fn family(&self) -> FlowFamily {
        self.family
    }

    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Appends the row of a `cic` flow, from its features and identity columns.
    pub fn push_cic(
        &self,
        features: &CicFeatures,
        identity: &CicIdentity,
        meta: &FlowMeta,
        out: &mut Vec<f32>,
    ) {
        let values = features.values();
        out.extend(self.sources.iter().map(|source| match *source {
            Source::Cic(2) => f32::from(identity.src.port),
            Source::Cic(4) => f32::from(identity.dst.port),
            Source::Cic(5) => f32::from(identity.protocol),
            Source::Cic(i) => values[i - FIRST_FEATURE_COLUMN].as_f64() as f32,
            Source::Flow(field) => flow_value(field, meta),
            _ => f32::NAN,
        }));
    }

    /// Appends the row of a first-bytes flow.
    pub fn push_bytes(&self, state: &FirstBytes, meta: &FlowMeta, out: &mut Vec<f32>) {
        let tensor = state.tensor();
        out.extend(self.sources.iter().map(|source| match *source {
            Source::Byte(i) => tensor.get(i).map_or(0.0, |&b| f32::from(b)),
            Source::BytesPackets => state.packets() as f32,
            Source::Flow(field) => flow_value(field, meta),
            _ => f32::NAN,
        }));
    }

    /// Appends the row of a flow's first window.
    pub fn push_window(&self, view: &WindowView<'_>, meta: &FlowMeta, out: &mut Vec<f32>) {
        let padding_values = view.padding * FEATURES_PER_PACKET;
        let value_at = |i: usize| -> f32 {
            if i < padding_values {
                return 0.0;
            }
            let mut i = i - padding_values;
            for part in view.rows {
                let len = part.len() * FEATURES_PER_PACKET;
                if i < len {
                    return part[i / FEATURES_PER_PACKET][i % FEATURES_PER_PACKET];
                }
                i -= len;
            }
            0.0
        };
        out.extend(self.sources.iter().map(|source| match *source {
            Source::WindowValue(i) => value_at(i),
            Source::Window(WindowField::Index) => view.index as f32,
            Source::Window(WindowField::FirstPacket) => view.first_packet as f32,
            Source::Window(WindowField::LastPacket) => view.last_packet as f32,
            Source::Window(WindowField::Padding) => view.padding as f32,
            Source::Flow(field) => flow_value(field, meta),
            _ => f32::NAN,
        }));
    }
}

/// Whether a finished flow is the one emission to score for an early-verdict family: the
/// snapshot at K packets, or the flow's end when it stayed shorter (never twice, never lost).
pub fn is_scored_emission(family: FlowFamily, meta: &FlowMeta, packets_kept: usize) -> bool {
    match family.early_after() {
        None => meta.end != EndReason::Early,
        Some(k) => meta.end == EndReason::Early || packets_kept < k,
    }
}

/// The first window of a flow-scope windows state.
pub fn first_window<'a>(state: &'a FlowPackets, family: FlowFamily) -> Option<WindowView<'a>> {
    match family {
        FlowFamily::Windows(window) => state.windows(&window).next(),
        _ => None,
    }
}

fn flow_value(field: FlowField, meta: &FlowMeta) -> f32 {
    match field {
        FlowField::SrcPort => f32::from(meta.src.port),
        FlowField::DstPort => f32::from(meta.dst.port),
        FlowField::Protocol => f32::from(meta.protocol),
        FlowField::FirstTs => meta.first_ts_ns as f32,
        FlowField::LastTs => meta.last_ts_ns as f32,
    }
}

fn max2(acc: Option<(usize, usize)>, (a, b): (usize, usize)) -> Option<(usize, usize)> {
    Some(match acc {
        None => (a, b),
        Some((x, y)) => (x.max(a), y.max(b)),
    })
}

/// `f{packet}_{feature}` -> (packet, feature index).
fn parse_window(name: &str) -> Option<(usize, usize)> {
    let (p, feature) = name.strip_prefix('f')?.split_once('_')?;
    let index = PACKET_FEATURES.iter().position(|f| *f == feature)?;
    Some((p.parse().ok()?, index))
}

fn source_of(family: FlowFamily, name: &str) -> Option<Source> {
    let flow_field = match name {
        "src_port" => Some(Source::Flow(FlowField::SrcPort)),
        "dst_port" => Some(Source::Flow(FlowField::DstPort)),
        "protocol" => Some(Source::Flow(FlowField::Protocol)),
        "first_ts_ns" => Some(Source::Flow(FlowField::FirstTs)),
        "last_ts_ns" => Some(Source::Flow(FlowField::LastTs)),
        "flow_id" | "src_ip" | "dst_ip" | "end_reason" => Some(Source::Text),
        _ => None,
    };
    match family {
        FlowFamily::Cic => {
            let index = column_index(name)?;
            let usable = matches!(index, 2 | 4 | 5)
                || (FIRST_FEATURE_COLUMN..FIRST_FEATURE_COLUMN + CIC_FEATURE_COUNT)
                    .contains(&index);
            usable.then_some(Source::Cic(index))
        }
        FlowFamily::Bytes(shape) => {
            if let Some((p, b)) = parse_byte_column_name(name) {
                return Some(Source::Byte(p * shape.bytes() + b));
            }
            if name == "packets" {
                return Some(Source::BytesPackets);
            }
            flow_field
        }
        FlowFamily::Windows(_) => {
            if let Some((p, f)) = parse_window(name) {
                return Some(Source::WindowValue(p * FEATURES_PER_PACKET + f));
            }
            match name {
                "window_index" => Some(Source::Window(WindowField::Index)),
                "first_packet" => Some(Source::Window(WindowField::FirstPacket)),
                "last_packet" => Some(Source::Window(WindowField::LastPacket)),
                "padding" => Some(Source::Window(WindowField::Padding)),
                _ => flow_field,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_and_shape_come_from_the_column_names() {
        let cic = FeatureSchema::new(["Protocol", "Flow Duration", "Total Fwd Packet"]);
        assert_eq!(
            FlowColumns::for_schema(&cic).unwrap().family(),
            FlowFamily::Cic
        );
        let bytes = FeatureSchema::new(["protocol", "packets", "b0_0", "b0_1", "b2_0", "b2_1"]);
        match FlowColumns::for_schema(&bytes).unwrap().family() {
            FlowFamily::Bytes(shape) => assert_eq!((shape.packets(), shape.bytes()), (3, 2)),
            other => panic!("{other:?}"),
        }
        let windows = FeatureSchema::new(["padding", "f0_ip_len", "f4_direction"]);
        match FlowColumns::for_schema(&windows).unwrap().family() {
            FlowFamily::Windows(w) => assert_eq!(w.window(), 5),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn columns_no_extractor_computes_are_named() {
        let odd = FeatureSchema::new(["Flow Duration", "duration", "src_bytes", "Timestamp"]);
        let err = FlowColumns::for_schema(&odd).unwrap_err().to_string();
        assert!(
            err.contains("`duration`")
                && err.contains("`src_bytes`")
                && err.contains("`Timestamp`"),
            "{err}"
        );
        assert!(!err.contains("`Flow Duration`"), "{err}");
    }
}
