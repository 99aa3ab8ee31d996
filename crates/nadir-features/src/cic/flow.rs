//! The per-flow `cic` state: every statistic of seeds-spec §6.2.7 kept in constant
//! space (running moments, no packet lists), updated per packet without allocating.

use nadir_decode::{ip_proto, tcp_flags, PacketRecord};
use nadir_flow::{Direction, Endpoint, FlowMeta, FlowState};
use serde::{Deserialize, Serialize};

use super::format::{self, TextBlock};
use super::stats::RunningStats;
use super::values::{CicFeatures, CollectFeatures, FeatureVisitor};
use super::{CicIdentity, CicRecord};

/// Which CICFlowMeter behaviour to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CicMode {
    /// Reproduce the GintsEngelen fork @273d097 (the Kubernetes misuse dataset's
    /// extractor), quirks included, NaN/Infinity for zero-duration flows.
    #[default]
    Compat,
    /// Repair the documented bugs; never NaN or infinite. See [`CicFlow`] for the list.
    Fixed,
}

/// Settings of the `cic` state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CicConfig {
    pub mode: CicMode,
    /// Gap (ns) that ends an active period (CICFlowMeter: 5 s).
    pub activity_timeout_ns: i64,
}

impl Default for CicConfig {
    fn default() -> Self {
        CicConfig {
            mode: CicMode::Compat,
            activity_timeout_ns: 5_000_000_000,
        }
    }
}

/// The flow table settings CICFlowMeter uses, for `mode`: 120 s flow timeout,
/// 5 s activity timeout; `fixed` also clamps backward timestamps so no
/// inter-arrival time is negative.
pub fn cic_flow_config(mode: CicMode) -> nadir_flow::FlowConfig {
    nadir_flow::FlowConfig {
        time_order: match mode {
            CicMode::Compat => nadir_flow::TimeOrder::AsCaptured,
            CicMode::Fixed => nadir_flow::TimeOrder::Monotonic,
        },
        // The cic state reads no packet bytes; do not copy them between threads.
        data_bytes: 0,
        ..nadir_flow::FlowConfig::default()
    }
}

/// Microseconds per second, as CICFlowMeter divides durations.
const US_PER_S: f64 = 1_000_000.0;
/// Bulk and subflow gap: 1 s in µs.
const ONE_SECOND_US: i64 = 1_000_000;

/// Bulk transfer detection of one direction (CICFlowMeter `updateForwardBulk`).
#[derive(Debug, Clone, Copy, Default)]
struct Bulk {
    /// Start of the candidate bulk (`None` = no candidate).
    start: Option<i64>,
    /// Time of the last payload packet of the candidate bulk.
    last: Option<i64>,
    candidate_packets: u64,
    candidate_bytes: u64,
    bulks: u64,
    packets: u64,
    bytes: u64,
    duration_us: i64,
}

impl Bulk {
    fn update(&mut self, other_last: Option<i64>, size: u64, ts: i64) {
        // A payload packet of the other direction after our candidate began breaks it.
        if let (Some(other), Some(start)) = (other_last, self.start) {
            if other > start {
                self.start = None;
            }
        }
        if size == 0 {
            return;
        }
        match (self.start, self.last) {
            (Some(_), Some(last)) if ts - last <= ONE_SECOND_US => {
                self.candidate_packets += 1;
                self.candidate_bytes += size;
                if self.candidate_packets == 4 {
                    self.bulks += 1;
                    self.packets += self.candidate_packets;
                    self.bytes += self.candidate_bytes;
                    self.duration_us += ts - self.start.unwrap_or(ts);
                } else if self.candidate_packets > 4 {
                    self.packets += 1;
                    self.bytes += size;
                    self.duration_us += ts - last;
                }
                self.last = Some(ts);
            }
            _ => {
                self.start = Some(ts);
                self.last = Some(ts);
                self.candidate_packets = 1;
                self.candidate_bytes = size;
            }
        }
    }

    fn bytes_per_bulk(&self) -> i64 {
        (self.bytes.checked_div(self.bulks).unwrap_or(0)) as i64
    }
    fn packets_per_bulk(&self) -> i64 {
        (self.packets.checked_div(self.bulks).unwrap_or(0)) as i64
    }
    /// Bytes per second of bulk time, truncated (Java `(long)` cast).
    fn rate(&self) -> i64 {
        if self.duration_us == 0 {
            0
        } else {
            (self.bytes as f64 / (self.duration_us as f64 / US_PER_S)) as i64
        }
    }
}

/// Statistics of one direction.
#[derive(Debug, Clone, Copy, Default)]
struct DirectionStats {
    lengths: RunningStats,
    iat: RunningStats,
    last_ts: i64,
    bytes: u64,
    header_bytes: u64,
    psh: u32,
    urg: u32,
    rst: u32,
    bulk: Bulk,
}

impl DirectionStats {
    fn packets(&self) -> u64 {
        self.lengths.count()
    }
}

/// Flag counters of the whole flow, in column order FIN SYN RST PSH ACK URG CWR ECE.
const FLAG_ORDER: [u16; 8] = [
    tcp_flags::FIN,
    tcp_flags::SYN,
    tcp_flags::RST,
    tcp_flags::PSH,
    tcp_flags::ACK,
    tcp_flags::URG,
    tcp_flags::CWR,
    tcp_flags::ECE,
];

/// CICFlowMeter flow statistics, as a [`FlowState`].
///
/// `fixed` mode differs from `compat` (the fork's quirks) in these documented ways:
/// direction by address *and* port (compat: by source address only); RST counts
/// and Fwd Act Data Pkts include the first packet; subflows are real (gap > 1 s)
/// and the Subflow columns are per-subflow averages; Bwd Init Win Bytes is the
/// first backward packet's window; FWD Init Win Bytes is the first forward packet's
/// (also when a split flow starts backward); Fwd Seg Size Min is the smallest
/// forward payload; the protocol, payload and header length of non-TCP/UDP packets
/// are kept (compat zeroes them); rates and IAT statistics of zero-duration or
/// one-packet flows are 0 instead of NaN/Infinity; inter-arrival times are never
/// negative.
#[derive(Debug, Clone)]
pub struct CicFlow {
    cfg: CicConfig,
    fwd: DirectionStats,
    bwd: DirectionStats,
    lengths: RunningStats,
    flow_iat: RunningStats,
    start_us: i64,
    last_us: i64,
    flags: [u32; 8],
    active: RunningStats,
    idle: RunningStats,
    start_active_us: i64,
    end_active_us: i64,
    init_win_fwd: u16,
    init_win_bwd: u16,
    init_win_fwd_seen: bool,
    init_win_bwd_seen: bool,
    fwd_act_data: u64,
    /// Compat: smallest forward L4 header length; fixed: smallest forward payload.
    fwd_seg_min: Option<u64>,
    subflows: u64,
    subflow_last_us: i64,
    /// Whether the flow's first packet went forward (it does unless a TCP
    /// connection split by the flow timeout resumes with a backward packet).
    first_packet_forward: bool,
    packets: u64,
}

/// Hands values to a [`FeatureVisitor`]; in fixed mode a non-finite real becomes 0.
struct Put<'v, V> {
    out: &'v mut V,
    compat: bool,
}

impl<V: FeatureVisitor> Put<'_, V> {
    #[inline]
    fn int(&mut self, x: i64) {
        self.out.int(x);
    }
    #[inline]
    fn real(&mut self, x: f64) {
        self.out
            .real(if self.compat || x.is_finite() { x } else { 0.0 });
    }
    /// `n` integer zeros (the statistics of an empty set).
    #[inline]
    fn zeros(&mut self, n: usize) {
        (0..n).for_each(|_| self.out.int(0));
    }
}

fn micros(ts_ns: i64) -> i64 {
    ts_ns.div_euclid(1000)
}

impl CicFlow {
    pub fn new(cfg: CicConfig) -> CicFlow {
        CicFlow {
            cfg,
            fwd: DirectionStats::default(),
            bwd: DirectionStats::default(),
            lengths: RunningStats::default(),
            flow_iat: RunningStats::default(),
            start_us: 0,
            last_us: 0,
            flags: [0; 8],
            active: RunningStats::default(),
            idle: RunningStats::default(),
            start_active_us: 0,
            end_active_us: 0,
            init_win_fwd: 0,
            init_win_bwd: 0,
            init_win_fwd_seen: false,
            init_win_bwd_seen: false,
            fwd_act_data: 0,
            fwd_seg_min: None,
            subflows: 0,
            subflow_last_us: 0,
            first_packet_forward: true,
            packets: 0,
        }
    }

    /// A factory for [`nadir_flow::FlowTable::new`].
    pub fn factory(cfg: CicConfig) -> impl FnMut(&FlowMeta) -> CicFlow + Clone + Send + 'static {
        move |_meta: &FlowMeta| CicFlow::new(cfg)
    }

    pub fn mode(&self) -> CicMode {
        self.cfg.mode
    }

    /// Whether the first packet went in the forward direction.
    pub fn first_packet_forward(&self) -> bool {
        self.first_packet_forward
    }

    fn compat(&self) -> bool {
        self.cfg.mode == CicMode::Compat
    }

    /// Payload and header length as the mode counts them.
    fn sizes(&self, pkt: &PacketRecord) -> (u64, u64) {
        let tcp_or_udp = pkt.protocol == ip_proto::TCP || pkt.protocol == ip_proto::UDP;
        if self.compat() && !tcp_or_udp {
            (0, 0)
        } else {
            (u64::from(pkt.payload_len), u64::from(pkt.l4_header_len))
        }
    }

    fn update_active_idle(&mut self, now_us: i64) {
        let threshold_us = self.cfg.activity_timeout_ns / 1000;
        if now_us - self.end_active_us > threshold_us {
            if self.end_active_us - self.start_active_us > 0 {
                self.active
                    .push((self.end_active_us - self.start_active_us) as f64);
            }
            self.idle.push((now_us - self.end_active_us) as f64);
            self.start_active_us = now_us;
        }
        self.end_active_us = now_us;
    }

    fn update_subflows(&mut self, now_us: i64, first: bool) {
        if self.compat() {
            // The fork's precedence bug: `ts - last / 1e6 > 1` holds for every real
            // timestamp, so each packet opens a "subflow".
            if first {
                self.subflow_last_us = now_us;
            }
            if (now_us as f64 - self.subflow_last_us as f64 / US_PER_S) > 1.0 {
                self.subflows += 1;
            }
        } else if first || now_us - self.subflow_last_us > ONE_SECOND_US {
            self.subflows += 1;
        }
        self.subflow_last_us = now_us;
    }

    fn add_packet(&mut self, meta: &FlowMeta, pkt: &PacketRecord, table_dir: Direction) {
        let compat = self.compat();
        let first = self.packets == 0;
        let now_us = micros(pkt.ts_ns);
        // The fork decides direction by source address alone.
        let forward = if compat {
            pkt.src == meta.src.addr
        } else {
            table_dir == Direction::Forward
        };
        let (payload, header) = self.sizes(pkt);

        if first {
            self.start_us = now_us;
            self.last_us = now_us;
            self.start_active_us = now_us;
            self.end_active_us = now_us;
            self.first_packet_forward = forward;
        } else {
            self.update_active_idle(now_us);
        }

        // Bulk first (the fork updates it before anything else).
        if forward {
            let other = self.bwd.bulk.last;
            self.fwd.bulk.update(other, payload, now_us);
        } else {
            let other = self.fwd.bulk.last;
            self.bwd.bulk.update(other, payload, now_us);
        }
        self.update_subflows(now_us, first);
        for (count, flag) in self.flags.iter_mut().zip(FLAG_ORDER) {
            if pkt.tcp_flags & flag != 0 {
                *count += 1;
            }
        }
        self.lengths.push(payload as f64);

        let window = pkt.tcp_window;
        let count_rst = !(compat && first);
        let dir = if forward {
            &mut self.fwd
        } else {
            &mut self.bwd
        };
        dir.lengths.push(payload as f64);
        dir.bytes += payload;
        dir.header_bytes += header;
        if dir.packets() > 1 {
            let gap = now_us - dir.last_ts;
            dir.iat.push(if compat { gap } else { gap.max(0) } as f64);
        }
        dir.last_ts = now_us;
        if pkt.tcp_flags & tcp_flags::PSH != 0 {
            dir.psh += 1;
        }
        if pkt.tcp_flags & tcp_flags::URG != 0 {
            dir.urg += 1;
        }
        if count_rst && pkt.tcp_flags & tcp_flags::RST != 0 {
            dir.rst += 1;
        }

        if forward {
            if !(compat && first) && payload >= 1 {
                self.fwd_act_data += 1;
            }
            if compat {
                // First packet sets it; a flow that starts backward keeps 0 (Java default).
                let current = if first {
                    header
                } else {
                    self.fwd_seg_min.unwrap_or(0)
                };
                self.fwd_seg_min = Some(current.min(header));
                if first {
                    self.init_win_fwd = window;
                }
            } else {
                self.fwd_seg_min = Some(self.fwd_seg_min.map_or(payload, |m| m.min(payload)));
                if !self.init_win_fwd_seen {
                    self.init_win_fwd = window;
                    self.init_win_fwd_seen = true;
                }
            }
        } else if compat {
            // Overwritten by every backward packet (the fork's bug).
            self.init_win_bwd = window;
        } else if !self.init_win_bwd_seen {
            self.init_win_bwd = window;
            self.init_win_bwd_seen = true;
        }

        if !first {
            let gap = now_us - self.last_us;
            self.flow_iat
                .push(if compat { gap } else { gap.max(0) } as f64);
        }
        self.last_us = now_us;
        self.packets += 1;
    }

    /// The 79 feature values (seeds-spec §6.2.7 order) of the flow as it stands.
    pub fn features(&self, meta: &FlowMeta) -> CicFeatures {
        let mut values = CollectFeatures::new();
        self.visit_features(meta, &mut values);
        values.finish()
    }

    /// Computes the 79 features into `out`, in column order: the one definition of
    /// the features, shared by [`Self::features`] and the CSV writer.
    #[inline]
    pub(crate) fn visit_features(&self, meta: &FlowMeta, out: &mut impl FeatureVisitor) {
        let compat = self.compat();
        let mut put = Put { out, compat };

        let duration_us = self.last_us - self.start_us;
        let duration_s = duration_us as f64 / US_PER_S;
        let packets = self.fwd.packets() + self.bwd.packets();
        let bytes = self.fwd.bytes + self.bwd.bytes;

        put.int(duration_us);
        put.int(self.fwd.packets() as i64);
        put.int(self.bwd.packets() as i64);
        put.real(self.fwd.lengths.sum());
        put.real(self.bwd.lengths.sum());
        for dir in [&self.fwd, &self.bwd] {
            if dir.packets() > 0 {
                put.real(dir.lengths.max());
                put.real(dir.lengths.min());
                put.real(dir.lengths.mean());
                put.real(dir.lengths.std());
            } else {
                put.zeros(4);
            }
        }
        // Zero duration: bytes/0 and packets/0 (NaN or Infinity in compat, 0 in fixed).
        put.real(bytes as f64 / duration_s);
        put.real(packets as f64 / duration_s);
        if compat || self.flow_iat.count() > 0 {
            put.real(self.flow_iat.mean());
            put.real(self.flow_iat.std());
            put.real(self.flow_iat.max());
            put.real(self.flow_iat.min());
        } else {
            (0..4).for_each(|_| put.real(0.0));
        }
        for dir in [&self.fwd, &self.bwd] {
            if dir.packets() > 1 {
                put.real(dir.iat.sum());
                put.real(dir.iat.mean());
                put.real(dir.iat.std());
                put.real(dir.iat.max());
                put.real(dir.iat.min());
            } else {
                put.zeros(5);
            }
        }
        put.int(i64::from(self.fwd.psh));
        put.int(i64::from(self.bwd.psh));
        put.int(i64::from(self.fwd.urg));
        put.int(i64::from(self.bwd.urg));
        put.int(i64::from(self.fwd.rst));
        put.int(i64::from(self.bwd.rst));
        put.int(self.fwd.header_bytes as i64);
        put.int(self.bwd.header_bytes as i64);
        for dir in [&self.fwd, &self.bwd] {
            put.real(if duration_us > 0 {
                dir.packets() as f64 / duration_s
            } else {
                0.0
            });
        }
        if packets > 0 {
            put.real(self.lengths.min());
            put.real(self.lengths.max());
            put.real(self.lengths.mean());
            put.real(self.lengths.std());
            put.real(self.lengths.variance());
        } else {
            put.zeros(5);
        }
        for count in self.flags {
            put.int(i64::from(count));
        }
        let per = |num: f64, den: u64| if den > 0 { num / den as f64 } else { 0.0 };
        put.real(per(self.bwd.packets() as f64, self.fwd.packets()));
        put.real(per(self.lengths.sum(), packets));
        put.real(per(self.fwd.lengths.sum(), self.fwd.packets()));
        put.real(per(self.bwd.lengths.sum(), self.bwd.packets()));
        for dir in [&self.fwd, &self.bwd] {
            put.int(dir.bulk.bytes_per_bulk());
            put.int(dir.bulk.packets_per_bulk());
            put.int(dir.bulk.rate());
        }
        let sf = self.subflows;
        if compat {
            // Java long division.
            let div = |x: u64| x.checked_div(sf).unwrap_or(0) as i64;
            put.int(div(self.fwd.packets()));
            put.int(div(self.fwd.bytes));
            put.int(div(self.bwd.packets()));
            put.int(div(self.bwd.bytes));
        } else {
            put.real(per(self.fwd.packets() as f64, sf));
            put.real(per(self.fwd.bytes as f64, sf));
            put.real(per(self.bwd.packets() as f64, sf));
            put.real(per(self.bwd.bytes as f64, sf));
        }
        put.int(i64::from(self.init_win_fwd));
        put.int(i64::from(self.init_win_bwd));
        put.int(self.fwd_act_data as i64);
        put.int(self.fwd_seg_min.unwrap_or(0) as i64);
        for stats in [&self.active, &self.idle] {
            if stats.count() > 0 {
                put.real(stats.mean());
                put.real(stats.std());
                put.real(stats.max());
                put.real(stats.min());
            } else {
                put.zeros(4);
            }
        }
        let tcp_time_us = if meta.protocol == ip_proto::TCP {
            let this_flow = match meta.trigger_elapsed_ns {
                // Elapsed from the flow's start to the packet that ended it, in the
                // fork's µs arithmetic (both ends truncated to µs first).
                Some(elapsed) => micros(meta.first_ts_ns.saturating_add(elapsed)) - self.start_us,
                None => duration_us,
            };
            meta.tcp_time_before_ns / 1000 + this_flow
        } else {
            0
        };
        put.int(tcp_time_us);
    }

    /// The identity columns of the flow's row (`Flow ID` ... `Timestamp`).
    pub fn identity(&self, meta: &FlowMeta) -> CicIdentity {
        let compat = self.compat();
        let tcp_or_udp = meta.protocol == ip_proto::TCP || meta.protocol == ip_proto::UDP;
        let protocol = if compat && !tcp_or_udp {
            0
        } else {
            meta.protocol
        };
        let (first_src, first_dst): (Endpoint, Endpoint) = if self.first_packet_forward {
            (meta.src, meta.dst)
        } else {
            (meta.dst, meta.src)
        };
        CicIdentity {
            src: meta.src,
            dst: meta.dst,
            first_src,
            first_dst,
            protocol,
            start_ts_ns: meta.first_ts_ns,
        }
    }

    /// Everything a CSV/Parquet row needs: identity columns plus the features.
    pub fn record(&self, meta: &FlowMeta) -> CicRecord {
        CicRecord {
            identity: self.identity(meta),
            features: self.features(meta),
        }
    }

    /// Appends the flow's CSV row (see [`CicRecord::write_csv_row`]), formatting
    /// each feature as it is computed.
    pub fn write_csv_row(&self, meta: &FlowMeta, out: &mut TextBlock, label: &str) {
        format::write_csv_row(out, &self.identity(meta), self.cfg.mode, label, |values| {
            self.visit_features(meta, values)
        });
    }
}

impl FlowState for CicFlow {
    fn on_packet(&mut self, meta: &FlowMeta, pkt: &PacketRecord, dir: Direction, _data: &[u8]) {
        self.add_packet(meta, pkt, dir);
    }
}
