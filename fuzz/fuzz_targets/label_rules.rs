//! Any text as a label-rules file: parsing must end with rules or an error, never panic,
//! and the parsed rules must label flows without panicking.
#![no_main]
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nadir_features::labels::{LabelRules, LabelTarget};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rules) = LabelRules::parse(text, Path::new("fuzz.toml")) else {
        return;
    };
    let v4 = LabelTarget {
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        src_port: 40000,
        dst: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2)),
        dst_port: 80,
        protocol: 6,
        first_ts_ns: 1_499_000_000_000_000_000,
    };
    let v6 = LabelTarget {
        src: IpAddr::V6(Ipv6Addr::LOCALHOST),
        dst: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        protocol: 17,
        first_ts_ns: i64::MIN,
        ..v4
    };
    for file in ["capture.pcap", "dir/other.pcapng", ""] {
        let labeler = rules.for_file(Path::new(file));
        for flow in [&v4, &v6] {
            let _ = labeler.label(flow);
        }
    }
});
