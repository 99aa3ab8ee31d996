//! Flow table behaviour: direction, CICFlowMeter end rules, keys, memory bound.

mod common;

use common::*;
use nadir_decode::tcp_flags::{ACK, FIN, PSH, RST, SYN};
use nadir_flow::{Direction, EndReason, FinishedFlow, FlowConfig, FlowKey, FlowTable, TimeOrder};

fn run(
    cfg: FlowConfig,
    packets: &[nadir_decode::PacketRecord],
) -> (Vec<FinishedFlow<Seen>>, nadir_flow::FlowStats) {
    let mut table =
        FlowTable::new(cfg, |_: &nadir_flow::FlowMeta| Seen::default()).expect("valid config");
    let mut out = Vec::new();
    for p in packets {
        table.push(p, &[0u8; 60], &mut |f| out.push(f.cloned()));
    }
    table.finish(&mut |f| out.push(f.cloned()));
    (out, table.stats())
}

#[test]
fn both_directions_join_one_flow_and_the_first_packet_is_forward() {
    let (a, b) = (v4(10, 0, 0, 2), v4(10, 0, 0, 1));
    let pkts = [
        tcp(0, a, 40000, b, 80, SYN, 0),
        tcp(SEC / 10, b, 80, a, 40000, SYN | ACK, 0),
        tcp(SEC / 5, a, 40000, b, 80, ACK, 0),
    ];
    let (flows, stats) = run(FlowConfig::default(), &pkts);
    assert_eq!(flows.len(), 1);
    let m = &flows[0].meta;
    assert_eq!(
        (m.src.addr, m.src.port, m.dst.addr, m.dst.port),
        (a, 40000, b, 80)
    );
    assert_eq!((m.fwd_packets, m.bwd_packets), (2, 1));
    assert_eq!((flows[0].state.forward, flows[0].state.backward), (2, 1));
    assert_eq!(m.end, EndReason::EndOfInput);
    assert_eq!(m.duration_ns(), SEC / 5);
    assert_eq!(stats.flows, 1);
    assert_eq!(stats.packets, 3);
}

#[test]
fn fin_both_ways_ends_the_flow_at_the_next_packet_which_starts_a_new_flow() {
    let (a, b) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
    let pkts = [
        tcp(0, a, 1000, b, 80, SYN, 0),
        tcp(1, b, 80, a, 1000, SYN | ACK, 0),
        tcp(2, a, 1000, b, 80, FIN | ACK, 0),
        tcp(3, b, 80, a, 1000, FIN | ACK, 0),
        // Final ACK from the server side: written as its own flow, forward = server.
        tcp(4, b, 80, a, 1000, ACK, 0),
    ];
    let (flows, stats) = run(FlowConfig::default(), &pkts);
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[0].meta.end, EndReason::TcpTermination);
    assert_eq!(flows[0].meta.packets(), 4);
    assert_eq!(flows[0].meta.trigger_elapsed_ns, Some(4));
    assert_eq!(flows[1].meta.packets(), 1);
    assert_eq!(
        flows[1].meta.src.addr, b,
        "after termination the new packet's source is forward"
    );
    assert_eq!(flows[1].meta.tcp_time_before_ns, 0);
    assert_eq!(stats.emitted_tcp_termination, 1);
}

#[test]
fn one_fin_does_not_end_the_flow_but_rst_does() {
    let (a, b) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
    let one_fin = [
        tcp(0, a, 1000, b, 80, ACK, 10),
        tcp(1, a, 1000, b, 80, FIN | ACK, 0),
        tcp(2, b, 80, a, 1000, ACK, 0),
        tcp(3, b, 80, a, 1000, PSH | ACK, 5),
    ];
    assert_eq!(run(FlowConfig::default(), &one_fin).0.len(), 1);
    let rst = [
        tcp(0, a, 1000, b, 80, ACK, 10),
        tcp(1, b, 80, a, 1000, RST, 0),
        tcp(2, a, 1000, b, 80, ACK, 0),
    ];
    let (flows, _) = run(FlowConfig::default(), &rst);
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[0].meta.end, EndReason::TcpTermination);
    assert_eq!(flows[0].meta.packets(), 2);
}

#[test]
fn tcp_timeout_split_keeps_direction_and_carries_connection_time() {
    let (a, b) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
    let pkts = [
        tcp(0, a, 1000, b, 80, ACK, 1),
        tcp(100 * SEC, b, 80, a, 1000, ACK, 1),
        // 121 s after the start, from the server: splits, new flow keeps a -> b.
        tcp(121 * SEC, b, 80, a, 1000, ACK, 1),
        tcp(122 * SEC, a, 1000, b, 80, ACK, 1),
    ];
    let (flows, stats) = run(FlowConfig::default(), &pkts);
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[0].meta.end, EndReason::FlowTimeout);
    assert_eq!(flows[0].meta.trigger_elapsed_ns, Some(121 * SEC));
    let second = &flows[1].meta;
    assert_eq!(second.src.addr, a);
    assert_eq!((second.fwd_packets, second.bwd_packets), (1, 1));
    assert_eq!(flows[1].state.backward, 1);
    assert_eq!(second.tcp_time_before_ns, 121 * SEC);
    assert_eq!(stats.emitted_timeout, 1);
}

#[test]
fn udp_timeout_split_takes_the_new_packets_direction() {
    let (a, b) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
    let pkts = [
        udp(0, a, 53000, b, 53, 30),
        udp(90 * SEC, b, 53, a, 53000, 90),
        udp(121 * SEC, b, 53, a, 53000, 90),
    ];
    let (flows, _) = run(FlowConfig::default(), &pkts);
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[1].meta.src.addr, b);
    assert_eq!(flows[1].meta.tcp_time_before_ns, 0);
}

#[test]
fn vlan_and_tunnel_id_keep_identical_tuples_apart() {
    let (a, b) = (v4(10, 16, 0, 5), v4(10, 16, 0, 6));
    let base = tcp(0, a, 1000, b, 80, SYN, 0);
    let mut vlan7 = base;
    vlan7.vlan = 7;
    let pkts = [
        base,
        vlan7,
        in_vxlan(base, 100),
        in_vxlan(base, 200),
        in_vxlan(base, 100),
    ];
    let (flows, _) = run(FlowConfig::default(), &pkts);
    assert_eq!(flows.len(), 4);
    let keys: std::collections::HashSet<FlowKey> = flows.iter().map(|f| f.meta.key).collect();
    assert_eq!(keys.len(), 4);
    assert!(flows
        .iter()
        .any(|f| f.meta.key.tunnel_id() == 100 && f.meta.packets() == 2));
}

#[test]
fn ipv6_flows_are_keyed_and_reported() {
    let a: std::net::IpAddr = "2001:db8::1".parse().expect("literal");
    let b: std::net::IpAddr = "2001:db8::2".parse().expect("literal");
    let (flows, _) = run(
        FlowConfig::default(),
        &[tcp(0, a, 5, b, 6, SYN, 0), tcp(1, b, 6, a, 5, SYN | ACK, 0)],
    );
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].meta.src.addr, a);
    let (lo, hi) = flows[0].meta.key.endpoints();
    assert_eq!((lo.addr, hi.addr), (a, b));
}

#[test]
fn least_recently_used_flow_is_evicted_and_counted() {
    let b = v4(10, 0, 0, 1);
    let cfg = FlowConfig {
        max_flows: 3,
        ..FlowConfig::default()
    };
    let pkts = [
        udp(0, v4(1, 0, 0, 1), 1, b, 53, 0),
        udp(1, v4(1, 0, 0, 2), 1, b, 53, 0),
        udp(2, v4(1, 0, 0, 3), 1, b, 53, 0),
        udp(3, v4(1, 0, 0, 1), 1, b, 53, 0), // touch flow 1: flow 2 is now the oldest
        udp(4, v4(1, 0, 0, 4), 1, b, 53, 0), // evicts flow 2
        udp(5, v4(1, 0, 0, 5), 1, b, 53, 0), // evicts flow 3
    ];
    let (flows, stats) = run(cfg, &pkts);
    assert_eq!(stats.evicted, 2);
    assert_eq!(stats.peak_live_flows, 3);
    let evicted: Vec<_> = flows
        .iter()
        .filter(|f| f.meta.end == EndReason::Evicted)
        .map(|f| f.meta.src.addr)
        .collect();
    assert_eq!(evicted, vec![v4(1, 0, 0, 2), v4(1, 0, 0, 3)]);
    assert_eq!(flows.len(), 5);
}

#[test]
fn idle_flows_expire_so_long_captures_stay_bounded() {
    let b = v4(10, 0, 0, 1);
    let cfg = FlowConfig {
        idle_expiry_ns: 10 * SEC,
        ..FlowConfig::default()
    };
    let mut table = FlowTable::new(cfg, |_: &nadir_flow::FlowMeta| Seen::default()).expect("valid");
    let mut out = Vec::new();
    for i in 0..1000u32 {
        let src = v4(1, (i >> 16) as u8, (i >> 8) as u8, i as u8);
        table.push(&udp(i64::from(i) * SEC, src, 1, b, 53, 0), &[], &mut |f| {
            out.push(f.cloned())
        });
        assert!(
            table.live_flows() <= 11,
            "live flows grew to {}",
            table.live_flows()
        );
    }
    assert!(out.iter().all(|f| f.meta.end == EndReason::IdleExpired));
    assert_eq!(out.len() as u64, table.stats().emitted_idle_expired);
    assert_eq!(out.len() + table.live_flows(), 1000);
}

#[test]
fn early_snapshot_after_k_packets_and_the_flow_goes_on() {
    let (a, b) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
    let cfg = FlowConfig {
        early_after: Some(2),
        ..FlowConfig::default()
    };
    let pkts: Vec<_> = (0..5).map(|i| tcp(i, a, 1, b, 2, ACK, 1)).collect();
    let (flows, stats) = run(cfg, &pkts);
    assert_eq!(flows.len(), 2);
    assert_eq!(flows[0].meta.end, EndReason::Early);
    assert_eq!(flows[0].meta.packets(), 2);
    assert_eq!(flows[0].state.ts, vec![0, 1]);
    assert_eq!(flows[1].meta.packets(), 5);
    assert_eq!(stats.early_snapshots, 1);
    assert_eq!(stats.flows, 1);
}

#[test]
fn backward_timestamps_are_counted_and_clamped_in_monotonic_mode() {
    let (a, b) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
    let pkts = [
        tcp(10, a, 1, b, 2, ACK, 0),
        tcp(5, b, 2, a, 1, ACK, 0),
        tcp(7, a, 1, b, 2, ACK, 0),
        tcp(20, a, 1, b, 2, ACK, 0),
    ];
    let (flows, stats) = run(FlowConfig::default(), &pkts);
    assert_eq!(flows[0].state.ts, vec![10, 5, 7, 20]);
    assert_eq!(
        stats.out_of_order_packets, 1,
        "7 follows 5: only the jump back from 10 counts"
    );
    let cfg = FlowConfig {
        time_order: TimeOrder::Monotonic,
        ..FlowConfig::default()
    };
    let (flows, _) = run(cfg, &pkts);
    assert_eq!(flows[0].state.ts, vec![10, 10, 10, 20]);
    assert!(flows[0].state.ts.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn duplicates_zero_payloads_and_single_packet_flows_are_plain_flows() {
    let (a, b) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
    let p = tcp(0, a, 1, b, 2, ACK, 0);
    let (flows, _) = run(FlowConfig::default(), &[p, p, p, udp(1, a, 7, b, 9, 0)]);
    assert_eq!(flows.len(), 2);
    assert!(flows
        .iter()
        .any(|f| f.meta.packets() == 3 && f.meta.fwd_packets == 3));
    assert!(flows
        .iter()
        .any(|f| f.meta.packets() == 1 && f.meta.duration_ns() == 0));
}

#[test]
fn data_passed_to_states_is_capped() {
    let (a, b) = (v4(10, 0, 0, 1), v4(10, 0, 0, 2));
    let cfg = FlowConfig {
        data_bytes: 16,
        ..FlowConfig::default()
    };
    let (flows, _) = run(
        cfg,
        &[tcp(0, a, 1, b, 2, ACK, 0), tcp(1, a, 1, b, 2, ACK, 0)],
    );
    assert_eq!(flows[0].state.bytes_seen, 32);
}

#[test]
fn invalid_configs_are_refused() {
    let bad = [
        FlowConfig {
            max_flows: 0,
            ..FlowConfig::default()
        },
        FlowConfig {
            flow_timeout_ns: 0,
            ..FlowConfig::default()
        },
        FlowConfig {
            early_after: Some(0),
            ..FlowConfig::default()
        },
        FlowConfig {
            threads: 0,
            ..FlowConfig::default()
        },
    ];
    for cfg in bad {
        assert!(
            FlowTable::new(cfg, |_: &nadir_flow::FlowMeta| ()).is_err(),
            "{cfg:?} accepted"
        );
    }
}

/// SYN flood from distinct sources: the live-flow bound holds at every packet and
/// the eviction count is exact (200k packets, 10k flows: seconds in a test build).
#[test]
fn syn_flood_is_bounded_and_every_eviction_counted() {
    const PACKETS: u32 = 200_000;
    const MAX: usize = 10_000;
    let victim = v4(10, 0, 0, 80);
    let cfg = FlowConfig {
        max_flows: MAX,
        ..FlowConfig::default()
    };
    let mut table = FlowTable::new(cfg, |_: &nadir_flow::FlowMeta| ()).expect("valid");
    let mut emitted = 0u64;
    let mut evicted = 0u64;
    for i in 0..PACKETS {
        // Odd multiplier: a bijection on u32, so every source is distinct but scattered.
        let x = i.wrapping_mul(0x9E37_79B1);
        let src = std::net::IpAddr::V4(std::net::Ipv4Addr::from(x));
        let pkt = tcp(
            i64::from(i) * 1000,
            src,
            (x >> 16) as u16,
            victim,
            80,
            SYN,
            0,
        );
        table.push(&pkt, &[], &mut |f| {
            emitted += 1;
            evicted += u64::from(f.meta.end == EndReason::Evicted);
        });
        assert!(table.live_flows() <= MAX);
    }
    let stats = table.stats();
    assert_eq!(stats.evicted, u64::from(PACKETS) - MAX as u64);
    assert_eq!(evicted, stats.evicted);
    assert_eq!(stats.peak_live_flows, MAX as u64);
    table.finish(&mut |_| emitted += 1);
    assert_eq!(emitted, u64::from(PACKETS));
    assert_eq!(table.live_flows(), 0);
}

#[test]
fn direction_is_reported_relative_to_the_first_packet() {
    let (a, b) = (v4(10, 0, 0, 9), v4(10, 0, 0, 1));
    #[derive(Clone, Default)]
    struct Dirs(Vec<Direction>);
    impl nadir_flow::FlowState for Dirs {
        fn on_packet(
            &mut self,
            _: &nadir_flow::FlowMeta,
            _: &nadir_decode::PacketRecord,
            d: Direction,
            _: &[u8],
        ) {
            self.0.push(d);
        }
    }
    let mut table = FlowTable::new(FlowConfig::default(), |_: &nadir_flow::FlowMeta| {
        Dirs::default()
    })
    .expect("valid");
    let mut out = Vec::new();
    for p in [
        tcp(0, a, 9, b, 1, SYN, 0),
        tcp(1, b, 1, a, 9, SYN | ACK, 0),
        tcp(2, a, 9, b, 1, ACK, 0),
    ] {
        table.push(&p, &[], &mut |f| out.push(f.cloned()));
    }
    table.finish(&mut |f| out.push(f.cloned()));
    assert_eq!(
        out[0].state.0,
        vec![Direction::Forward, Direction::Backward, Direction::Forward]
    );
}
