//! `packets` features: per-packet header vectors in fixed-length windows (LLN,
//! seeds-spec §2; sequence input of the CNN-LSTM, §5).
//!
//! Each packet becomes a [`PacketVector`] of [`PACKET_FEATURES`]: the 8 LLN columns
//! (IP length, TTL, protocol, ports, TCP window, TCP flags, UDP length; filled for
//! IPv6 too, where LLN wrote zeros) plus the time since the previous packet of the
//! same sequence and the direction within the packet's flow. Values are raw (not
//! scaled): scaling is fitted on training data downstream, never per file.
//!
//! Windows of `window` packets advance by `stride` packets, either over the whole
//! capture as one stream (LLN: window 100, stride 1) or over each flow. A sequence
//! shorter than one window gives one window front-padded with zero rows (LLN pads
//! the same way). Memory: the capture scope keeps one ring of `window` vectors; the
//! flow scope keeps at most `window + (max_windows_per_flow - 1) * stride` vectors
//! per live flow and counts the packets past that bound.

use nadir_decode::{ip_proto, PacketRecord};
use nadir_flow::{Direction, FlowMeta, FlowState};

use crate::output::{ColumnType, RowSink, TableSchema, Value};
use crate::roles::ColumnRole;

/// Names of the per-packet features, in vector order; columns are `f{packet}_{name}`.
pub const PACKET_FEATURES: [&str; 10] = [
    "ip_len",
    "ttl",
    "protocol",
    "src_port",
    "dst_port",
    "tcp_window",
    "tcp_flags",
    "udp_len",
    "time_delta",
    "direction",
];

/// Feature count per packet.
pub const FEATURES_PER_PACKET: usize = PACKET_FEATURES.len();

/// Column name of feature `feature` of packet `packet` in a window: `f{packet}_{feature}`.
pub fn window_column_name(packet: usize, feature: &str) -> String {
    format!("f{packet}_{feature}")
}

/// One packet's features, in [`PACKET_FEATURES`] order.
pub type PacketVector = [f32; FEATURES_PER_PACKET];

/// The header vector of `pkt`. `time_delta_s` is the time since the previous packet
/// of the same sequence (0 for the first); `direction` 0 = forward, 1 = backward.
pub fn packet_vector(pkt: &PacketRecord, time_delta_s: f32, dir: Direction) -> PacketVector {
    let ports = matches!(pkt.protocol, ip_proto::TCP | ip_proto::UDP);
    let (src_port, dst_port) = if ports {
        (pkt.src_port, pkt.dst_port)
    } else {
        (0, 0)
    };
    let (window, flags) = if pkt.is_tcp() {
        (pkt.tcp_window, pkt.tcp_flags)
    } else {
        (0, 0)
    };
    // UDP length field = 8-byte header + payload (the record keeps the payload length).
    let udp_len = if pkt.is_udp() {
        pkt.payload_len.saturating_add(8)
    } else {
        0
    };
    [
        pkt.ip_len as f32,
        f32::from(pkt.ttl),
        f32::from(pkt.protocol),
        f32::from(src_port),
        f32::from(dst_port),
        f32::from(window),
        f32::from(flags),
        udp_len as f32,
        time_delta_s,
        match dir {
            Direction::Forward => 0.0,
            Direction::Backward => 1.0,
        },
    ]
}

/// Seconds between two capture timestamps; 0 when time runs backwards (capture
/// artefact) so the feature is never negative.
pub fn time_delta_s(previous_ns: Option<i64>, now_ns: i64) -> f32 {
    match previous_ns {
        Some(prev) if now_ns > prev => (now_ns.saturating_sub(prev) as f64 / 1e9) as f32,
        _ => 0.0,
    }
}

/// Whether windows run over the whole capture or over each flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowScope {
    Capture,
    Flow,
}

/// Window settings, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    window: usize,
    stride: usize,
    scope: WindowScope,
    max_windows_per_flow: usize,
}

pub const DEFAULT_WINDOW: usize = 100;
pub const DEFAULT_STRIDE: usize = 1;
pub const DEFAULT_MAX_WINDOWS_PER_FLOW: usize = 16;
pub const MAX_WINDOW: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowConfigError {
    #[error("--window must be between 1 and {MAX_WINDOW}, got {0}")]
    Window(usize),
    #[error("--stride must be between 1 and {MAX_WINDOW}, got {0}")]
    Stride(usize),
    #[error("--max-windows-per-flow must be at least 1")]
    MaxWindows,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            window: DEFAULT_WINDOW,
            stride: DEFAULT_STRIDE,
            scope: WindowScope::Capture,
            max_windows_per_flow: DEFAULT_MAX_WINDOWS_PER_FLOW,
        }
    }
}

impl WindowConfig {
    pub fn new(
        window: usize,
        stride: usize,
        scope: WindowScope,
        max_windows_per_flow: usize,
    ) -> Result<Self, WindowConfigError> {
        if window == 0 || window > MAX_WINDOW {
            return Err(WindowConfigError::Window(window));
        }
        if stride == 0 || stride > MAX_WINDOW {
            return Err(WindowConfigError::Stride(stride));
        }
        if max_windows_per_flow == 0 {
            return Err(WindowConfigError::MaxWindows);
        }
        Ok(WindowConfig {
            window,
            stride,
            scope,
            max_windows_per_flow,
        })
    }
    pub fn window(&self) -> usize {
        self.window
    }
    pub fn stride(&self) -> usize {
        self.stride
    }
    pub fn scope(&self) -> WindowScope {
        self.scope
    }
    pub fn max_windows_per_flow(&self) -> usize {
        self.max_windows_per_flow
    }
    /// Packets a flow-scope state keeps: enough for `max_windows_per_flow` windows.
    pub fn flow_packet_limit(&self) -> usize {
        self.window + (self.max_windows_per_flow - 1) * self.stride
    }

    /// Appends the `f{packet}_{feature}` columns (float32) for one window.
    pub fn push_feature_columns(&self, schema: &mut TableSchema) {
        for packet in 0..self.window {
            for name in PACKET_FEATURES {
                schema.push(
                    window_column_name(packet, name),
                    ColumnType::Float32,
                    ColumnRole::Feature,
                );
            }
        }
    }
}

/// One window, borrowed from its windower: `padding` zero rows, then `rows`
/// (split in two slices when the ring wrapped).
#[derive(Debug, Clone, Copy)]
pub struct WindowView<'a> {
    /// Position of this window in its sequence (0, 1, ...).
    pub index: u64,
    /// Index (0-based, in the sequence) of the first and last real packet.
    pub first_packet: u64,
    pub last_packet: u64,
    pub first_ts_ns: i64,
    pub last_ts_ns: i64,
    /// Zero rows in front (sequence shorter than a window).
    pub padding: usize,
    pub rows: [&'a [PacketVector]; 2],
}

impl WindowView<'_> {
    /// Puts the window's feature values (padding first) into the current row of `sink`.
    pub fn put_features(&self, sink: &mut dyn RowSink) {
        for _ in 0..self.padding * FEATURES_PER_PACKET {
            sink.put(Value::F32(0.0));
        }
        for part in self.rows {
            for vector in part {
                for &value in vector {
                    sink.put(Value::F32(value));
                }
            }
        }
    }

    /// The rows as one owned matrix (tests and small tools; allocates).
    pub fn to_matrix(&self) -> Vec<PacketVector> {
        let mut out = vec![[0.0; FEATURES_PER_PACKET]; self.padding];
        for part in self.rows {
            out.extend_from_slice(part);
        }
        out
    }
}

/// Windows over one capture's packet stream, in a ring of `window` vectors.
#[derive(Debug, Clone)]
pub struct CaptureWindower {
    cfg: WindowConfig,
    vectors: Vec<PacketVector>,
    timestamps: Vec<i64>,
    /// Rule index of the packet's label (labels module), `None` = unlabelled.
    labels: Vec<Option<u32>>,
    /// Ring slot of the next packet.
    next: usize,
    total: u64,
    last_ts_ns: Option<i64>,
    /// (window index, padding) of the window ready to be read.
    pending: Option<(u64, usize)>,
}

impl CaptureWindower {
    pub fn new(cfg: WindowConfig) -> Self {
        CaptureWindower {
            cfg,
            vectors: Vec::with_capacity(cfg.window),
            timestamps: Vec::with_capacity(cfg.window),
            labels: Vec::with_capacity(cfg.window),
            next: 0,
            total: 0,
            last_ts_ns: None,
            pending: None,
        }
    }

    /// Packets pushed so far.
    pub fn packets(&self) -> u64 {
        self.total
    }

    /// Adds a packet; true when it completes a window ([`Self::current_window`]).
    pub fn push(&mut self, pkt: &PacketRecord, dir: Direction, label: Option<u32>) -> bool {
        let vector = packet_vector(pkt, time_delta_s(self.last_ts_ns, pkt.ts_ns), dir);
        self.last_ts_ns = Some(pkt.ts_ns);
        let w = self.cfg.window;
        if self.vectors.len() < w {
            self.vectors.push(vector);
            self.timestamps.push(pkt.ts_ns);
            self.labels.push(label);
        } else {
            self.vectors[self.next] = vector;
            self.timestamps[self.next] = pkt.ts_ns;
            self.labels[self.next] = label;
        }
        self.next = (self.next + 1) % w;
        self.total += 1;
        let w64 = w as u64;
        self.pending = None;
        if self.total >= w64 && (self.total - w64).is_multiple_of(self.cfg.stride as u64) {
            self.pending = Some(((self.total - w64) / self.cfg.stride as u64, 0));
        }
        self.pending.is_some()
    }

    /// End of the stream: true when it was shorter than one window, which then
    /// gives one front-padded window ([`Self::current_window`]).
    pub fn finish(&mut self) -> bool {
        let w = self.cfg.window as u64;
        self.pending = (self.total > 0 && self.total < w).then(|| (0, (w - self.total) as usize));
        self.pending.is_some()
    }

    /// The window completed by the last `push` (or made by `finish`).
    pub fn current_window(&self) -> Option<WindowView<'_>> {
        self.pending
            .map(|(index, padding)| self.view(index, padding))
    }

    /// The first label (in packet order) inside the current window.
    pub fn window_label(&self) -> Option<u32> {
        let (older, newer) = self.ring_split();
        self.labels[older.clone()]
            .iter()
            .chain(&self.labels[newer])
            .find_map(|l| *l)
    }

    /// Ring ranges, oldest part first.
    fn ring_split(&self) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        if self.vectors.len() < self.cfg.window {
            (0..self.vectors.len(), 0..0)
        } else {
            (self.next..self.vectors.len(), 0..self.next)
        }
    }

    fn view(&self, index: u64, padding: usize) -> WindowView<'_> {
        let (older, newer) = self.ring_split();
        let count = self.vectors.len() as u64;
        let first_slot = if older.is_empty() {
            newer.start
        } else {
            older.start
        };
        let last_slot = if newer.is_empty() {
            older.end.saturating_sub(1)
        } else {
            newer.end - 1
        };
        WindowView {
            index,
            first_packet: self.total - count,
            last_packet: self.total.saturating_sub(1),
            first_ts_ns: self.timestamps.get(first_slot).copied().unwrap_or(0),
            last_ts_ns: self.timestamps.get(last_slot).copied().unwrap_or(0),
            padding,
            rows: [&self.vectors[older], &self.vectors[newer]],
        }
    }
}

/// Flow-scope state: the flow's first packets' vectors, up to
/// [`WindowConfig::flow_packet_limit`].
#[derive(Debug, Clone)]
pub struct FlowPackets {
    limit: u32,
    vectors: Vec<PacketVector>,
    timestamps: Vec<i64>,
    last_ts_ns: Option<i64>,
    /// Packets past the limit (not in any window).
    dropped: u64,
}

impl FlowPackets {
    pub fn new(cfg: &WindowConfig) -> Self {
        FlowPackets {
            limit: u32::try_from(cfg.flow_packet_limit()).unwrap_or(u32::MAX),
            vectors: Vec::new(),
            timestamps: Vec::new(),
            last_ts_ns: None,
            dropped: 0,
        }
    }

    pub fn push(&mut self, pkt: &PacketRecord, dir: Direction) {
        if self.vectors.len() >= self.limit as usize {
            self.dropped += 1;
            return;
        }
        self.vectors.push(packet_vector(
            pkt,
            time_delta_s(self.last_ts_ns, pkt.ts_ns),
            dir,
        ));
        self.timestamps.push(pkt.ts_ns);
        self.last_ts_ns = Some(pkt.ts_ns);
    }

    /// Packets past the per-flow bound.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Packets kept.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// The flow's windows: full windows every `stride` packets (at most
    /// `max_windows_per_flow`), or one front-padded window for a short flow.
    pub fn windows<'a>(&'a self, cfg: &WindowConfig) -> impl Iterator<Item = WindowView<'a>> + 'a {
        let (w, s, n) = (cfg.window, cfg.stride, self.vectors.len());
        let full = if n >= w {
            ((n - w) / s + 1).min(cfg.max_windows_per_flow)
        } else {
            0
        };
        let padded = (n > 0 && n < w).then(|| self.window_at(0, 0, n, w - n));
        padded
            .into_iter()
            .chain((0..full).map(move |i| self.window_at(i as u64, i * s, w, 0)))
    }

    fn window_at(&self, index: u64, start: usize, len: usize, padding: usize) -> WindowView<'_> {
        let end = start + len;
        WindowView {
            index,
            first_packet: start as u64,
            last_packet: end.saturating_sub(1) as u64,
            first_ts_ns: self.timestamps.get(start).copied().unwrap_or(0),
            last_ts_ns: self
                .timestamps
                .get(end.saturating_sub(1))
                .copied()
                .unwrap_or(0),
            padding,
            rows: [&self.vectors[start..end], &[]],
        }
    }
}

impl FlowState for FlowPackets {
    fn on_packet(&mut self, _meta: &FlowMeta, pkt: &PacketRecord, dir: Direction, _data: &[u8]) {
        self.push(pkt, dir);
    }
}

/// A flow state that records nothing but reports the direction of the packet just
/// pushed, so capture-scope windows can carry each packet's direction within its
/// flow. All flows of one (single-threaded) table share one cell; the table calls
/// [`FlowState::on_packet`] inside `push`, so after `push` returns the cell holds
/// that packet's direction.
#[derive(Debug, Clone, Default)]
pub struct DirectionTap {
    backward: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl DirectionTap {
    /// Direction of the packet most recently seen by any state sharing this cell.
    pub fn last_direction(&self) -> Direction {
        if self.backward.load(std::sync::atomic::Ordering::Relaxed) {
            Direction::Backward
        } else {
            Direction::Forward
        }
    }
}

impl FlowState for DirectionTap {
    fn on_packet(&mut self, _meta: &FlowMeta, _pkt: &PacketRecord, dir: Direction, _data: &[u8]) {
        self.backward.store(
            dir == Direction::Backward,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nadir_decode::Fragment;

    fn pkt(ts_ns: i64, protocol: u8) -> PacketRecord {
        PacketRecord {
            ts_ns,
            wire_len: 74,
            cap_len: 74,
            link_type: nadir_capture::LinkType(1),
            vlan: 0,
            ip_version: 4,
            src: "10.0.0.1".parse().expect("addr"),
            dst: "10.0.0.2".parse().expect("addr"),
            protocol,
            src_port: 40000,
            dst_port: 53,
            ttl: 61,
            ip_id: 0,
            fragment: Fragment::default(),
            ip_offset: 14,
            ip_len: 60,
            ip_header_len: 20,
            tcp_flags: 0x012,
            tcp_window: 29200,
            tcp_seq: 0,
            tcp_ack: 0,
            l4_header_len: 20,
            payload_offset: 54,
            payload_len: 20,
            payload_captured: 20,
            tunnel: None,
        }
    }

    #[test]
    fn vector_follows_lln_columns_and_adds_delta_and_direction() {
        let v = packet_vector(&pkt(0, ip_proto::TCP), 0.25, Direction::Backward);
        assert_eq!(
            v,
            [60.0, 61.0, 6.0, 40000.0, 53.0, 29200.0, 18.0, 0.0, 0.25, 1.0]
        );
        let u = packet_vector(&pkt(0, ip_proto::UDP), 0.0, Direction::Forward);
        assert_eq!(
            u[5..8],
            [0.0, 0.0, 28.0],
            "UDP: no window/flags, length = 8 + payload"
        );
        let i = packet_vector(&pkt(0, ip_proto::ICMP), 0.0, Direction::Forward);
        assert_eq!(i[3..5], [0.0, 0.0], "ICMP type/code are not ports");
    }

    #[test]
    fn time_delta_is_seconds_and_never_negative() {
        assert_eq!(time_delta_s(None, 5), 0.0);
        assert_eq!(time_delta_s(Some(1_000_000_000), 1_500_000_000), 0.5);
        assert_eq!(time_delta_s(Some(2_000_000_000), 1_000_000_000), 0.0);
    }

    #[test]
    fn capture_windows_slide_by_stride_in_packet_order() {
        let cfg = WindowConfig::new(3, 2, WindowScope::Capture, 1).expect("cfg");
        let mut windower = CaptureWindower::new(cfg);
        let mut windows = Vec::new();
        for i in 0..8i64 {
            let mut p = pkt(i * 1_000_000_000, ip_proto::TCP);
            p.ttl = i as u8; // marks the packet
            if windower.push(&p, Direction::Forward, None) {
                let w = windower.current_window().expect("window");
                windows.push((
                    w.index,
                    w.first_packet,
                    w.last_packet,
                    w.to_matrix().iter().map(|r| r[1]).collect::<Vec<_>>(),
                ));
            }
        }
        assert!(!windower.finish(), "long capture: no padded window");
        // 8 packets, window 3, stride 2: windows start at packets 0, 2, 4.
        assert_eq!(
            windows,
            vec![
                (0, 0, 2, vec![0.0, 1.0, 2.0]),
                (1, 2, 4, vec![2.0, 3.0, 4.0]),
                (2, 4, 6, vec![4.0, 5.0, 6.0])
            ]
        );
    }

    #[test]
    fn short_capture_gives_one_front_padded_window() {
        let cfg = WindowConfig::new(5, 1, WindowScope::Capture, 1).expect("cfg");
        let mut windower = CaptureWindower::new(cfg);
        for i in 0..2 {
            assert!(!windower.push(&pkt(i, ip_proto::TCP), Direction::Forward, Some(3)));
        }
        assert_eq!(windower.window_label(), Some(3));
        assert!(windower.finish());
        let window = windower.current_window().expect("padded window");
        assert_eq!(window.padding, 3);
        let matrix = window.to_matrix();
        assert_eq!(matrix.len(), 5);
        assert!(matrix[..3].iter().all(|r| r.iter().all(|&x| x == 0.0)));
        assert_eq!(matrix[3][0], 60.0);
    }

    #[test]
    fn flow_windows_are_bounded_and_padded() {
        let cfg = WindowConfig::new(4, 2, WindowScope::Flow, 2).expect("cfg");
        assert_eq!(cfg.flow_packet_limit(), 6);
        let mut flow = FlowPackets::new(&cfg);
        for i in 0..10 {
            flow.push(&pkt(i, ip_proto::TCP), Direction::Forward);
        }
        assert_eq!((flow.len(), flow.dropped()), (6, 4));
        let windows: Vec<_> = flow
            .windows(&cfg)
            .map(|w| (w.index, w.first_packet, w.padding))
            .collect();
        assert_eq!(windows, vec![(0, 0, 0), (1, 2, 0)]);

        let mut short = FlowPackets::new(&cfg);
        short.push(&pkt(0, ip_proto::TCP), Direction::Forward);
        let windows: Vec<_> = short
            .windows(&cfg)
            .map(|w| (w.padding, w.to_matrix().len()))
            .collect();
        assert_eq!(windows, vec![(3, 4)]);
    }

    #[test]
    fn feature_columns_are_named_by_packet_and_feature() {
        let cfg = WindowConfig::new(2, 1, WindowScope::Capture, 1).expect("cfg");
        let mut schema = TableSchema::new();
        cfg.push_feature_columns(&mut schema);
        assert_eq!(schema.len(), 20);
        assert_eq!(schema.columns()[0].name, "f0_ip_len");
        assert_eq!(schema.columns()[19].name, "f1_direction");
    }
}
