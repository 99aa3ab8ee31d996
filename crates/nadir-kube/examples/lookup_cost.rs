//! What naming a flow's pods costs a CSV record writer, alone: the pod columns of every
//! flow of an `extract` CSV written through one writer's [`LastLookups`], in the file's
//! order (bench/kube/run.sh runs it on its captures' flows).
//!
//!   lookup_cost PODS.json FLOWS.csv [ROUNDS]

use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

use nadir_kube::LastLookups;

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

    let mut text = Vec::with_capacity(1 << 20);
    let mut per_flow_ns = Vec::new();
    for _ in 0..rounds {
        let mut last = LastLookups::default();
        let started = Instant::now();
        for &(src, dst) in &pairs {
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
    println!(
        "{{\"flows\": {}, \"same_addresses_as_the_flow_before\": {:.3}, \"ns_per_flow_median\": {:.1}}}",
        pairs.len(),
        repeated as f64 / pairs.len() as f64,
        per_flow_ns[per_flow_ns.len() / 2]
    );
    Ok(())
}
