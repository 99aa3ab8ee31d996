//! The read + decode hot path allocates nothing per packet: once a capture is open,
//! reading and decoding all of its packets allocates at most for the few pcapng
//! metadata blocks (section and interface options), never per packet.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use nadir_capture::{FileSource, OpenOptions, PacketSource};
use nadir_decode::{Decoder, DecoderConfig};

struct Counting;

// Per thread: the test harness's own threads allocate now and then (more so on a loaded
// machine), and only the thread running the hot path matters.
thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn reading_and_decoding_allocates_nothing_per_packet() {
    // Real traffic with tunnels, VLANs and IPv6 as well as plain TCP.
    let files = [
        "labelled/kihy-slowloris/slowloris.pcap",
        "pcap-robustness/suricata-verify-robustness/vxlan-decoder-03__vxlan.pcap",
        "pcap-robustness/zeek-traces/pppoe-over-qinq.pcap",
        "pcap-robustness/zeek-traces/tunnels__gre-within-gre.pcap",
        "labelled/chrissanders-synscan/synscan.pcapng",
        "pcap-robustness/pcap-parser-assets/assets__wireshark_samples-test.pcapng",
    ];
    for file in files {
        let Some(path) = nadir_testdata::shared_data(file) else {
            return;
        };
        let bytes = std::fs::read(&path).unwrap();
        let mut source = FileSource::from_reader(
            file.into(),
            Box::new(std::io::Cursor::new(bytes)),
            &OpenOptions::default(),
        )
        .unwrap();
        let mut decoder = Decoder::new(DecoderConfig::default());
        let before = allocations();
        let mut packets = 0;
        while let Some(packet) = source.next_packet().unwrap() {
            let _ = decoder.decode(&packet);
            packets += 1;
        }
        let made = allocations() - before;
        assert!(packets > 50, "{file}");
        assert!(
            made <= 8,
            "{file}: {made} allocations for {packets} packets"
        );
        if file.ends_with(".pcap") {
            assert_eq!(made, 0, "{file}: classic pcap allocates nothing");
        }
    }
}
