//! Print the decoded record of every packet of a capture (one line each), then the
//! skip counts: `cargo run -p nadir-decode --example decode_capture -- FILE [MAX]`.
use nadir_capture::{FileSource, OpenOptions, PacketSource};
use nadir_decode::{Decoder, DecoderConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: decode_capture FILE [MAX]")?;
    let max: usize = args
        .next()
        .map(|m| m.parse())
        .transpose()?
        .unwrap_or(usize::MAX);
    let mut source = FileSource::open(&path, &OpenOptions::default())?;
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut shown = 0;
    while let Some(packet) = source.next_packet()? {
        let line = match decoder.decode(&packet) {
            Ok(r) => format!(
                "{} {}:{} -> {}:{} proto {} vlan {} flags {:#05x} payload {}/{} frag {:?} tunnel {:?}",
                r.ts_ns, r.src, r.src_port, r.dst, r.dst_port, r.protocol, r.vlan, r.tcp_flags,
                r.payload_len, r.payload_captured, r.fragment, r.tunnel.map(|t| (t.kind, t.id, t.depth))
            ),
            Err(reason) => format!("skip {reason}"),
        };
        if shown < max {
            println!("{line}");
            shown += 1;
        }
    }
    for (reason, n) in decoder.skipped().iter() {
        println!("skipped {reason}: {n}");
    }
    println!("decoded {}", decoder.decoded());
    Ok(())
}
