//! The `bytes` and `packets` families driven through a real flow table with
//! hand-built frames: what is emitted when, shapes, padding, masking, labels.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use nadir_decode::{tcp_flags, Fragment, PacketRecord};
use nadir_features::bytes::{should_emit, FirstBytes, FirstBytesConfig};
use nadir_features::labels::{LabelRules, LabelTarget};
use nadir_features::output::{
    open_sink, push_flow_columns, put_flow_columns, ColumnType, FlowColumnText, OutputFormat,
    TableSchema, Value,
};
use nadir_features::packets::{FlowPackets, WindowConfig, WindowScope};
use nadir_features::roles::ColumnRole;
use nadir_flow::{EndReason, FinishedFlow, FlowConfig, FlowMeta, FlowTable};

/// An Ethernet + IPv4 + TCP frame and its record. Address bytes are the real
/// addresses, so masking is visible.
fn tcp(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    flags: u16,
    ts_ms: i64,
    payload: usize,
) -> (PacketRecord, Vec<u8>) {
    let ip_len = 20 + 20 + payload;
    let mut f = vec![0u8; 14 + ip_len];
    f[12] = 0x08; // ethertype IPv4
    let ip = &mut f[14..];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[10] = 0xAA; // header checksum (any non-zero value)
    ip[11] = 0xBB;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let tcp = &mut ip[20..];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[12] = 0x50;
    tcp[13] = flags as u8;
    tcp[14..16].copy_from_slice(&1024u16.to_be_bytes());
    tcp[16] = 0xCC; // checksum
    tcp[17] = 0xDD;
    for (i, b) in tcp[20..].iter_mut().enumerate() {
        *b = 0x30 + (i % 10) as u8;
    }
    let record = PacketRecord {
        ts_ns: ts_ms * 1_000_000,
        wire_len: f.len() as u32,
        cap_len: f.len() as u32,
        link_type: nadir_capture::LinkType(1),
        vlan: 0,
        ip_version: 4,
        src: IpAddr::V4(Ipv4Addr::from(src)),
        dst: IpAddr::V4(Ipv4Addr::from(dst)),
        protocol: 6,
        src_port: sport,
        dst_port: dport,
        ttl: 64,
        ip_id: 0,
        fragment: Fragment::default(),
        ip_offset: 14,
        ip_len: ip_len as u32,
        ip_header_len: 20,
        tcp_flags: flags,
        tcp_window: 1024,
        tcp_seq: 0,
        tcp_ack: 0,
        l4_header_len: 20,
        payload_offset: 54,
        payload_len: payload as u32,
        payload_captured: payload as u32,
        tunnel: None,
    };
    (record, f)
}

const CLIENT: [u8; 4] = [10, 0, 2, 15];
const SERVER: [u8; 4] = [192, 168, 56, 102];
const OTHER: [u8; 4] = [10, 9, 9, 9];

/// A 6-packet connection (client opens) and a 2-packet one, interleaved.
fn traffic() -> Vec<(PacketRecord, Vec<u8>)> {
    use tcp_flags::{ACK, PSH, SYN};
    vec![
        tcp(CLIENT, SERVER, 40000, 80, SYN, 0, 0),
        tcp(SERVER, CLIENT, 80, 40000, SYN | ACK, 1, 0),
        tcp(OTHER, SERVER, 5555, 22, SYN, 2, 0),
        tcp(CLIENT, SERVER, 40000, 80, ACK, 3, 0),
        tcp(CLIENT, SERVER, 40000, 80, PSH | ACK, 4, 100),
        tcp(SERVER, OTHER, 22, 5555, tcp_flags::RST, 5, 0),
        tcp(SERVER, CLIENT, 80, 40000, ACK, 6, 0),
        tcp(CLIENT, SERVER, 40000, 80, PSH | ACK, 7, 50),
    ]
}

#[test]
fn bytes_family_emits_each_flow_once_full_at_n_short_at_end() {
    let shape = FirstBytesConfig::default();
    let cfg = FlowConfig {
        early_after: Some(shape.packets() as u32),
        ..FlowConfig::default()
    };
    let mut table = FlowTable::new(cfg, move |_: &FlowMeta| FirstBytes::new(shape)).expect("table");
    let mut samples: Vec<FinishedFlow<FirstBytes>> = Vec::new();
    let mut emit = |flow: FinishedFlow<&FirstBytes, &FlowMeta>| {
        if should_emit(flow.meta, flow.state) {
            samples.push(flow.cloned());
        }
    };
    for (pkt, frame) in traffic() {
        table.push(&pkt, &frame, &mut emit);
    }
    table.finish(&mut emit);

    assert_eq!(samples.len(), 2, "one sample per flow, no duplicates");
    let long = samples
        .iter()
        .find(|s| s.meta.src.port == 40000)
        .expect("long flow");
    assert_eq!(long.meta.end, EndReason::Early, "taken at the N-th packet");
    assert_eq!(long.state.packets(), 4);
    let short = samples
        .iter()
        .find(|s| s.meta.src.port == 5555)
        .expect("short flow");
    assert_eq!(short.state.packets(), 2);
    assert_ne!(short.meta.end, EndReason::Early);
    assert!(
        short.state.row(2).expect("row").iter().all(|&b| b == 0),
        "missing packets are zero"
    );

    for sample in &samples {
        for p in 0..sample.state.packets() {
            let row = sample.state.row(p).expect("row");
            assert!(row[12..20].iter().all(|&b| b == 0), "addresses masked");
            assert!(row[10..12].iter().all(|&b| b == 0), "IPv4 checksum masked");
            assert!(row[20..24].iter().all(|&b| b == 0), "ports masked");
            assert!(row[36..38].iter().all(|&b| b == 0), "TCP checksum masked");
            assert_eq!(row[0], 0x45, "version/IHL kept");
            assert_eq!(row[9], 6, "protocol kept");
        }
    }
    // The 4th packet of the long flow carries 100 payload bytes: bytes 40..60 are payload.
    assert_eq!(long.state.row(3).expect("row")[40], 0x30);
    // Byte 33 is the TCP flags of the SYN/ACK (2nd packet, server to client).
    assert_eq!(
        long.state.row(1).expect("row")[33],
        (tcp_flags::SYN | tcp_flags::ACK) as u8
    );
}

#[test]
fn flow_windows_through_the_table_have_the_configured_shape() {
    let window = WindowConfig::new(4, 2, WindowScope::Flow, 8).expect("cfg");
    let mut table = FlowTable::new(FlowConfig::default(), move |_: &FlowMeta| {
        FlowPackets::new(&window)
    })
    .expect("table");
    let mut flows = Vec::new();
    let mut emit = |flow: FinishedFlow<&FlowPackets, &FlowMeta>| flows.push(flow.cloned());
    for (pkt, frame) in traffic() {
        table.push(&pkt, &frame, &mut emit);
    }
    table.finish(&mut emit);
    let long = flows
        .iter()
        .find(|f| f.meta.src.port == 40000)
        .expect("long flow");
    // 6 packets, window 4, stride 2: windows at packets 0 and 2.
    let windows: Vec<_> = long
        .state
        .windows(&window)
        .map(|w| (w.first_packet, w.padding, w.to_matrix()))
        .collect();
    assert_eq!(windows.len(), 2);
    assert_eq!(windows[0].0, 0);
    assert_eq!(windows[1].0, 2);
    // direction column (index 9): forward, backward (SYN/ACK), forward, forward.
    let directions: Vec<f32> = windows[0].2.iter().map(|r| r[9]).collect();
    assert_eq!(directions, vec![0.0, 1.0, 0.0, 0.0]);
    // time_delta column (index 8) is within the flow: 1 ms, then 2 ms (packet 3 at 3 ms).
    assert!((windows[0].2[1][8] - 0.001).abs() < 1e-6);
    assert!((windows[0].2[2][8] - 0.002).abs() < 1e-6);

    let short = flows
        .iter()
        .find(|f| f.meta.src.port == 5555)
        .expect("short flow");
    let padded: Vec<_> = short.state.windows(&window).collect();
    assert_eq!(padded.len(), 1);
    assert_eq!(padded[0].padding, 2);
    let matrix = padded[0].to_matrix();
    assert_eq!(matrix.len(), 4);
    assert!(
        matrix[..2].iter().all(|r| r.iter().all(|&x| x == 0.0)),
        "front padding is zeros"
    );
    assert_eq!(matrix[2][4], 22.0, "dst_port of the first real packet");
}

#[test]
fn labelled_rows_round_trip_through_csv() {
    let rules = LabelRules::parse(
        "unlabelled = \"benign\"\n[[rule]]\nlabel = \"slowloris\"\nattacker = [\"10.0.2.15\"]\nvictim_ports = [80]\n",
        Path::new("inline.toml"),
    )
    .expect("rules");
    let labeler = rules.for_file(Path::new("x.pcap"));
    let mut table = FlowTable::new(FlowConfig::default(), |_: &FlowMeta| ()).expect("table");
    let mut metas = Vec::new();
    let mut emit = |flow: FinishedFlow<&(), &FlowMeta>| metas.push(*flow.meta);
    for (pkt, frame) in traffic() {
        table.push(&pkt, &frame, &mut emit);
    }
    table.finish(&mut emit);

    let mut schema = TableSchema::new();
    push_flow_columns(&mut schema);
    schema.push("packets", ColumnType::UInt64, ColumnRole::Feature);
    let file = tempfile::NamedTempFile::new().expect("tmp");
    let mut sink = open_sink(
        OutputFormat::Csv,
        schema,
        Box::new(file.reopen().expect("reopen")),
    )
    .expect("sink");
    let mut text = FlowColumnText::default();
    for meta in &metas {
        let target = LabelTarget {
            src: meta.src.addr,
            src_port: meta.src.port,
            dst: meta.dst.addr,
            dst_port: meta.dst.port,
            protocol: meta.protocol,
            first_ts_ns: meta.first_ts_ns,
        };
        put_flow_columns(sink.as_mut(), &mut text, meta, labeler.label(&target));
        sink.put(Value::U64(meta.packets()));
        sink.end_row().expect("row");
    }
    sink.finish().expect("finish");

    let mut reader = csv::Reader::from_path(file.path()).expect("csv");
    let header = reader.headers().expect("header").clone();
    assert_eq!(header.len(), 11);
    let label_col = header
        .iter()
        .position(|h| h == "label")
        .expect("label column");
    let mut rows: Vec<(String, String)> = reader
        .records()
        .map(|r| r.expect("record"))
        .map(|r| (r[0].to_string(), r[label_col].to_string()))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            (
                "10.0.2.15-192.168.56.102-40000-80-6".to_string(),
                "slowloris".to_string()
            ),
            (
                "10.9.9.9-192.168.56.102-5555-22-6".to_string(),
                "benign".to_string()
            ),
        ]
    );
}
