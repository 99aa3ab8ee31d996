//! What naming a flow's pods costs a CSV record writer, alone: the pod columns of every
//! flow of an `extract` CSV written through one writer's [`LastLookups`], in the file's
//! order and shuffled (bench/kube/run.sh runs it on its captures' flows).
//!
//!   lookup_cost PODS.json FLOWS.csv [ROUNDS]

use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

use nadir_kube::{LastLookups, PodMap};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, pods, flows, rest @ ..] = args.as_slice() else {
        return Err("usage: lookup_cost PODS.json FLOWS.csv [ROUNDS]".into());
    };
    let rounds: usize = rest.first().map_or(Ok(5), |r| r.parse())?;
    let map = nadir_kube::load_pods_file(Path::new(pods))?.snapshot();

    let mut reader = csv::Reader::from_path(flows)?;
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("{flows} has no `{name}` column"))
    };
    let (src, dst) = (column("Src IP")?, column("Dst IP")?);
    let mut pairs: Vec<(IpAddr, IpAddr)> = Vec::new();
    for record in reader.records() {
        let record = record?;
        pairs.push((record[src].parse()?, record[dst].parse()?));
    }
    if pairs.is_empty() {
        return Err(format!("{flows} has no flows").into());
    }
    let repeated = pairs.windows(2).filter(|w| w[0] == w[1]).count();

    let in_order = median_ns_per_flow(&map, &pairs, rounds);
    // The same flows in a shuffled order (a fixed xorshift): almost no flow has its
    // predecessor's addresses, the worst case for each writer's last lookups.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for i in (1..pairs.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        pairs.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let shuffled = median_ns_per_flow(&map, &pairs, rounds);
    println!(
        "{{\"flows\": {}, \"same_addresses_as_the_flow_before\": {:.3}, \"ns_per_flow_median\": {in_order:.1}, \"ns_per_flow_median_shuffled\": {shuffled:.1}}}",
        pairs.len(),
        repeated as f64 / pairs.len() as f64,
    );
    Ok(())
}

/// Every flow's pod columns through one writer's last lookups, `rounds` times.
fn median_ns_per_flow(map: &PodMap, pairs: &[(IpAddr, IpAddr)], rounds: usize) -> f64 {
    let mut text = Vec::with_capacity(1 << 20);
    let mut per_flow_ns = Vec::new();
    for _ in 0..rounds.max(1) {
        let mut last = LastLookups::default();
        let started = Instant::now();
        for &(src, dst) in pairs {
            map.for_each_csv_piece(&mut last, src, dst, None, 0, |piece| {
                text.extend_from_slice(piece.as_bytes())
            });
            if text.len() > 1 << 20 {
                text.clear();
            }
        }
        per_flow_ns.push(started.elapsed().as_nanos() as f64 / pairs.len() as f64);
    }
    per_flow_ns.sort_by(f64::total_cmp);
    per_flow_ns[per_flow_ns.len() / 2]
}
