//! Any bytes as a packet of any link type: decoding never panics, and a record's
//! offsets stay inside the packet.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nadir_capture::{LinkType, RawPacket};
use nadir_decode::{Decoder, DecoderConfig};

fuzz_target!(|input: (u8, &[u8])| {
    let (selector, data) = input;
    let links = [0u16, 1, 9, 12, 14, 101, 108, 113, 228, 229, 276];
    let link_type = LinkType(links[selector as usize % links.len()]);
    let packet = RawPacket { ts_ns: 0, wire_len: data.len() as u32, link_type, interface: 0, data };
    let mut decoder = Decoder::new(DecoderConfig::default());
    if let Ok(record) = decoder.decode(&packet) {
        assert!(record.ip_offset as usize <= data.len());
        assert!(record.payload_captured as usize <= data.len());
    }
});
