//! What keeping the pod map current costs (bench/kube/run.sh): a cluster of PODS pods and
//! SERVICES services, then EVENTS pod events applied one by one and published as the API
//! source does (at most every `ApiTiming::default().publish_every`, 1 s: a burst of 1,000
//! events/s is one snapshot a second, i.e. one per EVENTS_PER_PUBLISH events).
//! Prints JSON: the snapshot build time and the share of one core that 1,000 events/s cost.
//!
//!   cargo run --release -p nadir-kube --example snapshot_cost -- 10000 1000 5000

use std::time::Instant;

use k8s_openapi::api::core::v1::{Pod, Service};
use nadir_kube::ClusterState;

/// 1,000 events/s for one `publish_every` (1 s).
const EVENTS_PER_PUBLISH: usize = 1_000;

fn pod(i: usize) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("web-{i}"), "namespace": format!("ns-{}", i % 100),
            "uid": format!("uid-{i}"), "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": format!("app-{}", i % 1000), "pod-template-hash": "abc"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": format!("app-{}-abc", i % 1000), "uid": "x", "controller": true}]},
        "spec": {"nodeName": format!("node-{}", i % 50), "containers": [{"name": "c"}]},
        "status": {"podIP": format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255)},
    }))
    .expect("pod")
}

fn main() {
    let arg = |n: usize, default: usize| {
        std::env::args()
            .nth(n)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (pods, services, events) = (arg(1, 10_000), arg(2, 1_000), arg(3, 5_000));
    let mut state = ClusterState::new();
    for i in 0..pods {
        state.apply_pod(&pod(i));
    }
    for i in 0..services {
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("svc-{i}"), "namespace": format!("ns-{}", i % 100), "uid": format!("s-{i}")},
            "spec": {"clusterIP": format!("10.96.{}.{}", i >> 8, i & 255), "selector": {"app": format!("app-{i}")}},
        }))
        .expect("service");
        state.apply_service(&service);
    }
    let start = Instant::now();
    let map = state.snapshot();
    let snapshot_s = start.elapsed().as_secs_f64();
    assert!(map.pods() == pods);
    // Events arrive as objects already decoded by the watcher; decode them up front.
    let updates: Vec<Pod> = (0..events).map(|i| pod(pods + i)).collect();
    let start = Instant::now();
    for (i, update) in updates.iter().enumerate() {
        state.apply_pod(update);
        if (i + 1) % EVENTS_PER_PUBLISH == 0 {
            std::hint::black_box(state.snapshot());
        }
    }
    let per_event_s = start.elapsed().as_secs_f64() / events as f64;
    println!(
        "{{\"pods\": {pods}, \"services\": {services}, \"snapshot_ms\": {:.3}, \"us_per_event_with_publishing\": {:.2}, \"core_share_at_1000_events_per_s\": {:.4}}}",
        snapshot_s * 1e3,
        per_event_s * 1e6,
        per_event_s * 1000.0
    );
}
