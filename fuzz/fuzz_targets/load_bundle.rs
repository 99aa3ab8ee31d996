//! Any bytes as a .nadir bundle: `Bundle::from_bytes` must return an error, never panic,
//! allocate hugely or hang. The first byte's low bit rewrites the header checksum so the
//! fuzzer also reaches the manifest and consistency checks behind it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nadir_detect::bundle::{Bundle, HEADER_LEN, MAGIC};
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let mut bytes = body.to_vec();
    if selector & 1 != 0 && bytes.len() >= HEADER_LEN && bytes[..8] == MAGIC {
        let sum = Sha256::new()
            .chain_update(&bytes[..28])
            .chain_update(&bytes[HEADER_LEN..])
            .finalize();
        bytes[28..HEADER_LEN].copy_from_slice(&sum);
    }
    if let Ok(bundle) = Bundle::from_bytes(&bytes) {
        // What was accepted must write out and read back.
        let again = bundle.to_bytes().expect("an accepted bundle writes out");
        Bundle::from_bytes(&again).expect("a written bundle reads back");
    }
});
