//! The sharded runner gives the same flows as one table, whatever the thread count.

mod common;

use common::*;
use nadir_decode::tcp_flags::{ACK, FIN, RST, SYN};
use nadir_flow::{Ended, FinishedFlow, FlowConfig, FlowMeta, ShardOutput, ShardedFlowTable};
use proptest::prelude::*;

/// A flow as comparable data: the sequence number differs between shards.
fn canonical(meta: &FlowMeta, seen: &Seen) -> String {
    let mut meta = *meta;
    meta.sequence = 0;
    format!("{meta:?}|{seen:?}")
}

fn flows_with(
    threads: usize,
    max_flows: usize,
    packets: &[nadir_decode::PacketRecord],
) -> (Vec<String>, nadir_flow::FlowStats) {
    let cfg = FlowConfig {
        threads,
        max_flows,
        ..FlowConfig::default()
    };
    let mut table =
        ShardedFlowTable::new(cfg, |_: &FlowMeta| Seen::default()).expect("valid config");
    let mut out = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let data = [i as u8; 3];
        table.push(p, &data, &mut |f| out.push(canonical(f.meta, f.state)));
    }
    let stats = table
        .finish(&mut |f| out.push(canonical(f.meta, f.state)))
        .expect("no worker panicked");
    out.sort();
    (out, stats)
}

fn packet_strategy() -> impl Strategy<Value = nadir_decode::PacketRecord> {
    (
        0u8..6,
        0u8..6,
        0u16..3,
        any::<bool>(),
        0usize..5,
        0u32..200,
        0i64..400,
    )
        .prop_map(|(h1, h2, port, is_udp, flag_pick, payload, t)| {
            let flags = [ACK, SYN, FIN | ACK, RST, ACK][flag_pick];
            let (a, b) = (v4(10, 0, 0, h1), v4(10, 0, 1, h2));
            if is_udp {
                udp(t * SEC, a, 1000 + port, b, 53, payload)
            } else {
                tcp(t * SEC, a, 1000 + port, b, 80, flags, payload)
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Shuffling flows across threads changes no flow (only the output order).
    #[test]
    fn sharded_output_equals_single_table(mut packets in proptest::collection::vec(packet_strategy(), 1..3000)) {
        // Mostly increasing time with some disorder, as real captures have.
        packets.sort_by_key(|p| p.ts_ns / (50 * SEC));
        let (single, single_stats) = flows_with(1, 1 << 20, &packets);
        for threads in [2, 3] {
            let (sharded, stats) = flows_with(threads, 1 << 20, &packets);
            prop_assert_eq!(&sharded, &single);
            prop_assert_eq!(stats.packets, single_stats.packets);
            prop_assert_eq!(stats.flows, single_stats.flows);
        }
    }
}

#[test]
fn sharded_flood_respects_the_total_flow_budget() {
    let victim = v4(10, 0, 0, 80);
    let cfg = FlowConfig {
        threads: 4,
        max_flows: 1000,
        ..FlowConfig::default()
    };
    let mut table = ShardedFlowTable::new(cfg, |_: &FlowMeta| ()).expect("valid");
    let mut emitted = 0u64;
    for i in 0..50_000u32 {
        let src = std::net::IpAddr::V4(std::net::Ipv4Addr::from(i.wrapping_mul(0x9E37_79B1)));
        table.push(
            &tcp(i64::from(i), src, 7, victim, 80, SYN, 0),
            &[],
            &mut |_| emitted += 1,
        );
    }
    let stats = table.finish(&mut |_| emitted += 1).expect("no panic");
    assert_eq!(emitted, 50_000);
    assert_eq!(stats.packets, 50_000);
    // Each of 4 shards holds at most ceil(1000/4) = 250 flows.
    assert!(
        stats.peak_live_flows <= 1000,
        "peak {}",
        stats.peak_live_flows
    );
    assert_eq!(stats.evicted + stats.emitted_end_of_input, 50_000);
}

/// A worker output that keeps only counts: flows and their packets per batch.
#[derive(Default)]
struct Counts {
    flows: u64,
    packets: u64,
}

impl ShardOutput<()> for Counts {
    type Batch = (u64, u64);
    fn add(&mut self, flow: FinishedFlow<&(), &FlowMeta>) {
        self.flows += 1;
        self.packets += flow.meta.packets();
    }
    fn take(&mut self) -> Option<(u64, u64)> {
        let batch = (self.flows, self.packets);
        *self = Counts::default();
        (batch.0 > 0).then_some(batch)
    }
}

/// Workers run their own output; the caller gets its batches (or, with one
/// thread, the flows themselves), and together they cover every flow and packet.
#[test]
fn worker_outputs_cover_every_flow() {
    let packets: Vec<_> = (0..5000u32)
        .map(|i| {
            let src = v4(10, 0, (i % 7) as u8, (i % 250) as u8);
            tcp(i64::from(i) * 1000, src, 1000, v4(10, 0, 9, 9), 80, ACK, 0)
        })
        .collect();
    let run = |threads| {
        let cfg = FlowConfig {
            threads,
            ..FlowConfig::default()
        };
        let mut table =
            ShardedFlowTable::with_output(cfg, |_: &FlowMeta| (), Counts::default).expect("valid");
        let (mut flows, mut in_flows, mut batches) = (0, 0, 0);
        let mut on = |ended: Ended<'_, (), (u64, u64)>| match ended {
            Ended::Flow(flow) => {
                flows += 1;
                in_flows += flow.meta.packets();
            }
            Ended::Batch((n, p)) => {
                batches += 1;
                flows += n;
                in_flows += p;
            }
        };
        for p in &packets {
            table.push_ended(p, &[], &mut on);
        }
        let stats = table.finish_ended(&mut on).expect("no panic");
        assert_eq!(stats.flows, flows);
        (flows, in_flows, batches)
    };
    let (flows, in_flows, batches) = run(1);
    assert_eq!(
        (in_flows, batches),
        (5000, 0),
        "one thread: flows, no batches"
    );
    assert_eq!(flows, 7 * 250);
    for threads in [2, 3] {
        let (sharded, in_sharded, batches) = run(threads);
        assert_eq!((sharded, in_sharded), (flows, in_flows));
        assert!(batches >= threads as u64, "{batches} batches");
    }
}

/// A quiet live source moves the clock with no packet: flows idle past the timeout end then,
/// not at the next packet or the end of input, with one thread or several.
#[test]
fn advancing_the_clock_without_packets_ends_idle_flows() {
    const S: i64 = 1_000_000_000;
    for threads in [1, 2, 3] {
        let cfg = FlowConfig {
            threads,
            idle_expiry_ns: 5 * S,
            ..FlowConfig::default()
        };
        let mut table =
            ShardedFlowTable::with_output(cfg, |_: &FlowMeta| (), Counts::default).expect("valid");
        let ended = std::cell::Cell::new(0);
        let mut on = |e: Ended<'_, (), (u64, u64)>| match e {
            Ended::Flow(_) => ended.set(ended.get() + 1),
            Ended::Batch((n, _)) => ended.set(ended.get() + n),
        };
        for i in 0..10u8 {
            let pkt = tcp(S, v4(10, 0, 0, i), 1000, v4(10, 0, 9, 9), 80, ACK, 0);
            table.push_ended(&pkt, &[], &mut on);
        }
        let late = tcp(4 * S, v4(10, 0, 1, 1), 1000, v4(10, 0, 9, 9), 80, ACK, 0);
        table.push_ended(&late, &[], &mut on);
        // Not idle long enough yet: nothing ends.
        table.advance_clock_ended(5 * S, &mut on);
        assert_eq!(ended.get(), 0, "{threads} thread(s)");
        // Past the timeout: the ten flows idle since 1 s end now, even on worker threads.
        table.advance_clock_ended(6 * S + 1, &mut on);
        assert_eq!(
            ended.get(),
            10,
            "{threads} thread(s): the ten flows idle since 1 s"
        );
        let stats = table.finish_ended(&mut on).expect("no panic");
        assert_eq!(ended.get(), 11);
        assert_eq!(stats.emitted_idle_expired, 10, "{threads} thread(s)");
        assert_eq!(stats.emitted_end_of_input, 1, "{threads} thread(s)");
    }
}
