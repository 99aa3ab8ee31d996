//! The pod map from cluster state (pods, services, nodes, ReplicaSets as the API describes
//! them), and the file source.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use nadir_kube::{
    load_pods_file, spawn_file_source, Attribution, ClusterState, Kind, KubeError, LastLookups,
    Peer, PodMap, PodMapHandle, ATTRIBUTION_COLUMNS, DELETED_POD_HISTORY_NS, HOST_NETWORK, UNKNOWN,
};
use serde_json::{json, Value};

const S: i64 = 1_000_000_000;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// RFC 3339, as `creationTimestamp` carries it.
fn stamp(secs: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(secs)
        .unwrap()
        .to_string()
}

fn pod_json(namespace: &str, name: &str, pod_ip: &str, created_s: i64) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("uid-{namespace}-{name}"),
            "creationTimestamp": stamp(created_s),
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "main", "image": "busybox"}],
        },
        "status": {"phase": "Running", "podIP": pod_ip, "podIPs": [{"ip": pod_ip}]},
    })
}

fn with(mut value: Value, pointer: &str, field: &str, extra: Value) -> Value {
    value.pointer_mut(pointer).unwrap()[field] = extra;
    value
}

fn pod(value: Value) -> Pod {
    serde_json::from_value(value).unwrap()
}

fn simple_pod(namespace: &str, name: &str, pod_ip: &str, created_s: i64) -> Pod {
    pod(pod_json(namespace, name, pod_ip, created_s))
}

fn owned_pod(name: &str, pod_ip: &str, owner_kind: &str, owner: &str, hash: Option<&str>) -> Pod {
    let mut value = pod_json("shop", name, pod_ip, 10);
    value["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "apps/v1", "kind": owner_kind, "name": owner,
        "uid": format!("uid-{owner}"), "controller": true,
    }]);
    if let Some(hash) = hash {
        value["metadata"]["labels"] = json!({"pod-template-hash": hash});
    }
    pod(value)
}

fn service_json(namespace: &str, name: &str, cluster_ip: &str, selector: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-svc-{namespace}-{name}")},
        "spec": {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "selector": selector},
    })
}

fn service(namespace: &str, name: &str, cluster_ip: &str, selector: Value) -> Service {
    serde_json::from_value(service_json(namespace, name, cluster_ip, selector)).unwrap()
}

fn node_json(name: &str, internal_ip: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "uid": format!("uid-node-{name}")},
        "status": {"addresses": [
            {"type": "InternalIP", "address": internal_ip},
            {"type": "Hostname", "address": name},
        ]},
    })
}

fn node(name: &str, internal_ip: &str) -> Node {
    serde_json::from_value(node_json(name, internal_ip)).unwrap()
}

fn replicaset(name: &str, owner: Option<(&str, &str)>) -> ReplicaSet {
    let mut value = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}")},
    });
    if let Some((kind, owner)) = owner {
        value["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": kind, "name": owner,
            "uid": format!("uid-{owner}"), "controller": true,
        }]);
    }
    serde_json::from_value(value).unwrap()
}

fn pod_name(map: &PodMap, addr: &str, at_s: i64) -> Option<String> {
    map.peer(ip(addr), at_s * S).pod.map(|p| p.to_string())
}

fn workload(map: &PodMap, addr: &str) -> String {
    map.peer(ip(addr), 1_000 * S)
        .workload
        .map(|w| w.to_string())
        .unwrap_or_default()
}

fn values(attribution: &Attribution) -> Vec<String> {
    let mut out = Vec::new();
    attribution.for_each_value(|v| out.push(v.to_string()));
    out
}

// ---------------------------------------------------------------- IP reuse

#[test]
fn reused_ip_is_attributed_to_the_pod_that_held_it_at_the_flow_start() {
    let mut state = ClusterState::new();
    let a = simple_pod("shop", "a", "10.244.1.5", 100);
    state.apply_pod(&a);
    state.delete_pod(&a, 200 * S);
    state.apply_pod(&simple_pod("shop", "b", "10.244.1.5", 250));
    let map = state.snapshot();

    assert!(map.is_loaded());
    assert_eq!(map.pods(), 2, "the deleted pod stays for history");
    assert_eq!(pod_name(&map, "10.244.1.5", 150).as_deref(), Some("a"));
    assert_eq!(pod_name(&map, "10.244.1.5", 300).as_deref(), Some("b"));
    // Between A's deletion and B's creation nobody held it.
    assert_eq!(map.peer(ip("10.244.1.5"), 220 * S), Peer::default());
    // Before A existed, nobody either.
    assert_eq!(map.peer(ip("10.244.1.5"), 50 * S), Peer::default());
    // The edges: A's hold ends (exclusive) at its deletion, B's starts at its creation.
    assert_eq!(pod_name(&map, "10.244.1.5", 100).as_deref(), Some("a"));
    assert_eq!(map.peer(ip("10.244.1.5"), 200 * S), Peer::default());
    assert_eq!(pod_name(&map, "10.244.1.5", 250).as_deref(), Some("b"));

    // Both directions of a flow.
    let flow = map.attribute(ip("10.244.1.5"), ip("10.244.1.5"), None, 150 * S);
    assert_eq!(flow.src.pod.as_deref(), Some("a"));
    assert_eq!(flow.dst.pod.as_deref(), Some("a"));
    assert_eq!(flow.src.namespace.as_deref(), Some("shop"));
    assert_eq!(flow.src.node.as_deref(), Some("node-1"));
    let flow = map.attribute(ip("10.244.1.5"), ip("192.0.2.1"), None, 220 * S);
    assert!(!flow.unknown);
    assert_eq!(flow.src, Peer::default());
    assert_eq!(flow.dst, Peer::default(), "an address outside the cluster");
}

/// A record writer keeps its last lookups from one map to the next: a new map (a reload, a
/// watch event) must not answer from the old one's.
#[test]
fn last_lookups_follow_the_map_that_is_current() {
    let csv = |map: &PodMap, last: &mut LastLookups| {
        let mut text = String::new();
        map.for_each_csv_piece(
            last,
            ip("10.244.1.5"),
            ip("10.244.1.6"),
            None,
            300 * S,
            |p| text.push_str(p),
        );
        text
    };
    let mut state = ClusterState::new();
    state.apply_pod(&simple_pod("shop", "a", "10.244.1.5", 100));
    let first = state.snapshot();
    let mut last = LastLookups::default();
    assert!(csv(&first, &mut last).starts_with("shop,a,pod/a,node-1,,,,,,"));
    // The same map again: the same answer (from the last lookups).
    assert_eq!(
        csv(&first, &mut last),
        csv(&first, &mut LastLookups::default())
    );
    state.delete_pod(&simple_pod("shop", "a", "10.244.1.5", 100), 200 * S);
    state.apply_pod(&simple_pod("web", "b", "10.244.1.5", 250));
    state.apply_pod(&simple_pod("web", "c", "10.244.1.6", 250));
    let second = state.snapshot();
    assert_eq!(
        csv(&second, &mut last),
        "web,b,pod/b,node-1,web,c,pod/c,,node-1,,,,"
    );
    // And back: each map answers for itself.
    assert!(csv(&first, &mut last).starts_with("shop,a,"));
}

/// Flows between the same two addresses, written one after another through one writer's
/// last lookups (which reuse the last flow's text while both ends are what they were),
/// starting before, inside, between and after the holds of a reused IP, in both orders of
/// time: each reads as its own attribution.
#[test]
fn one_writers_flows_across_the_holds_of_a_reused_ip() {
    let mut state = ClusterState::new();
    let a = simple_pod("shop", "a", "10.244.1.5", 100);
    state.apply_pod(&a);
    state.delete_pod(&a, 200 * S);
    state.apply_pod(&simple_pod("shop", "b", "10.244.1.5", 250));
    state.apply_pod(&simple_pod("web", "c", "10.244.1.6", 150));
    state.apply_service(&service(
        "shop",
        "svc",
        "10.244.1.6",
        json!({"app": "none"}),
    ));
    let map = state.snapshot();
    let starts = [50, 99, 100, 149, 150, 199, 200, 220, 249, 250, 300, 1000];
    let mut last = LastLookups::default();
    let mut texts = std::collections::BTreeSet::new();
    for (src, dst) in [("10.244.1.5", "10.244.1.6"), ("10.244.1.6", "10.244.1.5")] {
        for start in starts.iter().chain(starts.iter().rev()).chain(&starts) {
            let (src, dst, at) = (ip(src), ip(dst), start * S);
            let mut text = String::new();
            map.for_each_csv_piece(&mut last, src, dst, None, at, |p| text.push_str(p));
            let read: Vec<String> = text.split(',').map(str::to_string).collect();
            let expected = values(&map.attribute(src, dst, None, at));
            assert_eq!(read, expected, "{src} -> {dst} at {start} s: {text}");
            texts.insert(text);
        }
    }
    // a, b or nobody at one end, c or its service at the other, both directions.
    assert_eq!(texts.len(), 2 * 5, "{texts:#?}");
}

#[test]
fn reused_ip_whose_new_pod_arrives_before_the_old_ones_deletion() {
    let mut state = ClusterState::new();
    let a = simple_pod("shop", "a", "10.244.1.5", 100);
    // Added in the opposite order on purpose: the map must not depend on arrival order.
    state.apply_pod(&simple_pod("shop", "b", "10.244.1.5", 250));
    state.apply_pod(&a);
    let map = state.snapshot();
    assert_eq!(pod_name(&map, "10.244.1.5", 150).as_deref(), Some("a"));
    assert_eq!(pod_name(&map, "10.244.1.5", 249).as_deref(), Some("a"));
    assert_eq!(pod_name(&map, "10.244.1.5", 250).as_deref(), Some("b"));
    assert_eq!(pod_name(&map, "10.244.1.5", 300).as_deref(), Some("b"));

    // A's DELETE arrives late, after B took the address: B keeps it.
    state.delete_pod(&a, 400 * S);
    let map = state.snapshot();
    assert_eq!(pod_name(&map, "10.244.1.5", 150).as_deref(), Some("a"));
    assert_eq!(pod_name(&map, "10.244.1.5", 300).as_deref(), Some("b"));
    assert_eq!(pod_name(&map, "10.244.1.5", 500).as_deref(), Some("b"));
}

#[test]
fn deleted_pods_are_forgotten_after_the_history_window() {
    let mut state = ClusterState::new();
    let a = simple_pod("shop", "a", "10.244.1.5", 100);
    state.apply_pod(&a);
    state.apply_pod(&simple_pod("shop", "live", "10.244.1.6", 100));
    state.delete_pod(&a, 200 * S);
    state.prune(200 * S + DELETED_POD_HISTORY_NS - 1);
    assert_eq!(state.pod_count(), 2);
    assert_eq!(
        pod_name(&state.snapshot(), "10.244.1.5", 150).as_deref(),
        Some("a")
    );
    state.prune(200 * S + DELETED_POD_HISTORY_NS);
    assert_eq!(state.pod_count(), 1);
    let map = state.snapshot();
    assert_eq!(pod_name(&map, "10.244.1.5", 150), None);
    assert_eq!(pod_name(&map, "10.244.1.6", 150).as_deref(), Some("live"));
}

// ---------------------------------------------------------------- workloads

#[test]
fn workloads_are_resolved_through_owners() {
    let mut state = ClusterState::new();
    // A ReplicaSet the map never saw, named by the Deployment controller: NAME-HASH.
    state.apply_pod(&owned_pod(
        "web-7d9f8c-x1",
        "10.244.1.1",
        "ReplicaSet",
        "web-7d9f8c",
        Some("7d9f8c"),
    ));
    // A known ReplicaSet owned by Deployment `api`.
    state.apply_pod(&owned_pod(
        "api-5c8d-x1",
        "10.244.1.2",
        "ReplicaSet",
        "api-5c8d",
        Some("5c8d"),
    ));
    state.apply_replicaset(&replicaset("api-5c8d", Some(("Deployment", "api"))));
    // A known ReplicaSet owned by something else than a Deployment (an Argo Rollout): the
    // object wins over the name.
    state.apply_pod(&owned_pod(
        "canary-6b7c-x1",
        "10.244.1.3",
        "ReplicaSet",
        "canary-6b7c",
        Some("6b7c"),
    ));
    state.apply_replicaset(&replicaset("canary-6b7c", Some(("Rollout", "canary"))));
    // A bare ReplicaSet (no owner).
    state.apply_pod(&owned_pod(
        "bare-x1",
        "10.244.1.4",
        "ReplicaSet",
        "bare",
        None,
    ));
    state.apply_replicaset(&replicaset("bare", None));
    // An unknown ReplicaSet whose name does not end in the hash.
    state.apply_pod(&owned_pod(
        "odd-x1",
        "10.244.1.8",
        "ReplicaSet",
        "odd",
        Some("1234"),
    ));
    state.apply_pod(&owned_pod("db-0", "10.244.1.5", "StatefulSet", "db", None));
    state.apply_pod(&owned_pod(
        "agent-abcde",
        "10.244.1.6",
        "DaemonSet",
        "agent",
        None,
    ));
    state.apply_pod(&simple_pod("shop", "lonely", "10.244.1.7", 10));
    let map = state.snapshot();

    assert_eq!(workload(&map, "10.244.1.1"), "deployment/web");
    assert_eq!(workload(&map, "10.244.1.2"), "deployment/api");
    assert_eq!(workload(&map, "10.244.1.3"), "rollout/canary");
    assert_eq!(workload(&map, "10.244.1.4"), "replicaset/bare");
    assert_eq!(workload(&map, "10.244.1.8"), "replicaset/odd");
    assert_eq!(workload(&map, "10.244.1.5"), "statefulset/db");
    assert_eq!(workload(&map, "10.244.1.6"), "daemonset/agent");
    assert_eq!(workload(&map, "10.244.1.7"), "pod/lonely");

    let flow = map.attribute(ip("10.244.1.1"), ip("10.244.1.5"), None, 1_000 * S);
    assert_eq!(flow.src_workload().as_deref(), Some("shop/deployment/web"));
    assert_eq!(flow.dst_workload().as_deref(), Some("shop/statefulset/db"));
}

#[test]
fn a_replicaset_arriving_after_its_pods_is_resolved_at_the_next_snapshot() {
    let mut state = ClusterState::new();
    state.apply_pod(&owned_pod(
        "x-1",
        "10.244.1.1",
        "ReplicaSet",
        "front-abc",
        Some("zzz"),
    ));
    assert_eq!(
        workload(&state.snapshot(), "10.244.1.1"),
        "replicaset/front-abc"
    );
    state.apply_replicaset(&replicaset("front-abc", Some(("Deployment", "frontend"))));
    assert_eq!(
        workload(&state.snapshot(), "10.244.1.1"),
        "deployment/frontend"
    );
    state.delete_replicaset(&replicaset("front-abc", Some(("Deployment", "frontend"))));
    assert_eq!(
        workload(&state.snapshot(), "10.244.1.1"),
        "replicaset/front-abc"
    );
}

#[test]
fn the_controller_owner_wins_over_the_first() {
    let mut value = pod_json("shop", "p", "10.244.1.1", 10);
    value["metadata"]["ownerReferences"] = json!([
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "u1"},
        {"apiVersion": "batch/v1", "kind": "Job", "name": "nightly", "uid": "u2", "controller": true},
    ]);
    let mut state = ClusterState::new();
    state.apply_pod(&pod(value));
    assert_eq!(workload(&state.snapshot(), "10.244.1.1"), "job/nightly");
}

// ---------------------------------------------------------------- services

#[test]
fn services_name_the_pods_they_select_and_their_cluster_ips() {
    let mut state = ClusterState::new();
    let labelled = |namespace: &str, name: &str, addr: &str, labels: Value| {
        pod(with(
            pod_json(namespace, name, addr, 10),
            "/metadata",
            "labels",
            labels,
        ))
    };
    state.apply_pod(&labelled(
        "shop",
        "web-1",
        "10.244.1.1",
        json!({"app": "web", "tier": "front"}),
    ));
    state.apply_pod(&labelled(
        "other",
        "web-1",
        "10.244.2.1",
        json!({"app": "web"}),
    ));
    state.apply_pod(&labelled(
        "shop",
        "db-0",
        "10.244.1.2",
        json!({"app": "db"}),
    ));
    state.apply_service(&service("shop", "web", "10.96.0.10", json!({"app": "web"})));
    state.apply_service(&service(
        "shop",
        "front",
        "10.96.0.11",
        json!({"tier": "front"}),
    ));
    // Needs both labels: selects nothing.
    state.apply_service(&service(
        "shop",
        "strict",
        "10.96.0.12",
        json!({"app": "web", "tier": "back"}),
    ));
    // Headless.
    state.apply_service(&service("shop", "db", "None", json!({"app": "db"})));
    // No selector: endpoints by hand, selects nobody.
    let manual: Service = serde_json::from_value(json!({
        "metadata": {"name": "manual", "namespace": "shop", "uid": "uid-manual"},
        "spec": {"clusterIP": "10.96.0.13"},
    }))
    .unwrap();
    state.apply_service(&manual);
    let map = state.snapshot();

    let flow = map.attribute(ip("10.244.1.2"), ip("10.244.1.1"), None, 100 * S);
    // Sorted, whatever order the services were stored in.
    assert_eq!(flow.dst.service.as_deref(), Some("front,web"));
    assert_eq!(flow.dst.pod.as_deref(), Some("web-1"));
    assert_eq!(
        flow.src.service.as_deref(),
        Some("db"),
        "headless still selects"
    );
    let columns = values(&flow);
    assert_eq!(columns[7], "front,web", "dst_service");

    // Same labels, other namespace: no service.
    let other = map.peer(ip("10.244.2.1"), 100 * S);
    assert_eq!(other.namespace.as_deref(), Some("other"));
    assert_eq!(other.service, None);

    // A cluster IP is the service's.
    let vip = map.peer(ip("10.96.0.10"), 100 * S);
    assert_eq!(vip.service.as_deref(), Some("web"));
    assert_eq!(vip.namespace.as_deref(), Some("shop"));
    assert_eq!(vip.pod, None);
    assert_eq!(vip.workload, None);
    assert_eq!(
        map.peer(ip("10.96.0.13"), 0).service.as_deref(),
        Some("manual")
    );

    // Deleting a service removes its name and its cluster IP.
    state.delete_service(&service("shop", "web", "10.96.0.10", json!({"app": "web"})));
    let map = state.snapshot();
    assert_eq!(map.peer(ip("10.96.0.10"), 100 * S), Peer::default());
    assert_eq!(
        map.peer(ip("10.244.1.1"), 100 * S).service.as_deref(),
        Some("front")
    );
}

// ---------------------------------------------------------------- host network, tunnels

#[test]
fn host_network_addresses_are_the_nodes() {
    let mut state = ClusterState::new();
    state.apply_node(&node("node-1", "10.0.0.11"));
    let mut value = pod_json("kube-system", "kube-proxy-abcde", "10.0.0.11", 10);
    value["spec"]["hostNetwork"] = json!(true);
    state.apply_pod(&pod(value));
    state.apply_pod(&simple_pod("shop", "web-1", "10.244.1.1", 10));
    let map = state.snapshot();
    assert_eq!(map.pods(), 2);

    let peer = map.peer(ip("10.0.0.11"), 100 * S);
    assert_eq!(peer.workload.as_deref(), Some(HOST_NETWORK));
    assert_eq!(peer.node.as_deref(), Some("node-1"));
    assert_eq!(peer.pod, None, "never the host-network pod's name");
    assert_eq!(peer.namespace, None);

    let flow = map.attribute(ip("10.0.0.11"), ip("10.244.1.1"), None, 100 * S);
    let columns = values(&flow);
    assert_eq!(&columns[..4], ["", "", HOST_NETWORK, "node-1"]);
    assert_eq!(&columns[4..9], ["shop", "web-1", "pod/web-1", "", "node-1"]);

    state.delete_node(&node("node-1", "10.0.0.11"));
    assert_eq!(
        state.snapshot().peer(ip("10.0.0.11"), 100 * S),
        Peer::default()
    );
}

#[test]
fn tunnel_endpoints_are_named_as_nodes() {
    let mut state = ClusterState::new();
    state.apply_node(&node("node-1", "10.0.0.11"));
    state.apply_node(&node("node-2", "10.0.0.12"));
    state.apply_pod(&simple_pod("shop", "web-1", "10.244.1.1", 10));
    let map = state.snapshot();

    let flow = map.attribute(
        ip("10.244.1.1"),
        ip("10.244.2.9"),
        Some((ip("10.0.0.11"), ip("10.0.0.12"))),
        100 * S,
    );
    let (src, src_node, dst, dst_node) = flow.tunnel.clone().unwrap();
    assert_eq!((src, dst), (ip("10.0.0.11"), ip("10.0.0.12")));
    assert_eq!(src_node.as_deref(), Some("node-1"));
    assert_eq!(dst_node.as_deref(), Some("node-2"));
    let columns = values(&flow);
    assert_eq!(columns.len(), ATTRIBUTION_COLUMNS.len());
    assert_eq!(
        &columns[9..],
        ["10.0.0.11", "node-1", "10.0.0.12", "node-2"]
    );
    assert_eq!(columns[1], "web-1");

    // An outer endpoint that is no node: its IP, no name.
    let flow = map.attribute(
        ip("10.244.1.1"),
        ip("10.244.2.9"),
        Some((ip("10.0.0.11"), ip("203.0.113.7"))),
        100 * S,
    );
    assert_eq!(
        &values(&flow)[9..],
        ["10.0.0.11", "node-1", "203.0.113.7", ""]
    );
    // No tunnel: four empty columns.
    let flow = map.attribute(ip("10.244.1.1"), ip("10.244.2.9"), None, 100 * S);
    assert_eq!(&values(&flow)[9..], ["", "", "", ""]);
}

/// What CSV writers append: the pieces joined, read back by a CSV reader, are the values.
#[test]
fn csv_text_of_a_flow_reads_back_as_its_values() {
    let mut state = ClusterState::new();
    state.apply_node(&node("node-1", "10.0.0.11"));
    state.apply_node(&node("node \"two\", b", "fd00::12"));
    state.apply_pod(&pod(with(
        pod_json("shop", "web-1", "10.244.1.1", 10),
        "/metadata",
        "labels",
        json!({"app": "web", "tier": "front"}),
    )));
    state.apply_pod(&simple_pod("shop", "odd \"name\", here", "10.244.1.2", 10));
    state.apply_service(&service("shop", "web", "10.96.0.10", json!({"app": "web"})));
    state.apply_service(&service(
        "shop",
        "front",
        "10.96.0.11",
        json!({"tier": "front"}),
    ));
    let loaded = state.snapshot();
    let not_loaded = PodMap::not_loaded();

    let addresses = [
        "10.244.1.1",
        "10.244.1.2",
        "10.96.0.10",
        "10.0.0.11",
        "fd00::12",
        "203.0.113.7",
    ];
    let tunnels = [
        None,
        Some((ip("10.0.0.11"), ip("fd00::12"))),
        Some((ip("fd00::12"), ip("203.0.113.7"))),
    ];
    let mut checked = 0;
    // One writer's lookups across every map and address, as a record writer keeps them.
    let (mut last, mut last_values) = (LastLookups::default(), LastLookups::default());
    for map in [&loaded, &not_loaded] {
        for src in addresses {
            for dst in addresses {
                for tunnel in tunnels {
                    let (src, dst) = (ip(src), ip(dst));
                    let mut text = String::new();
                    map.for_each_csv_piece(&mut last, src, dst, tunnel, 100 * S, |p| {
                        text.push_str(p)
                    });
                    let record = csv::ReaderBuilder::new()
                        .has_headers(false)
                        .from_reader(text.as_bytes())
                        .records()
                        .next()
                        .unwrap()
                        .unwrap();
                    let read: Vec<&str> = record.iter().collect();
                    let expected = values(&map.attribute(src, dst, tunnel, 100 * S));
                    assert_eq!(read, expected, "{src} -> {dst} via {tunnel:?}: {text}");
                    // The JSON-lines writers' values, through their own last lookups.
                    let mut borrowed = Vec::new();
                    map.for_each_value(&mut last_values, src, dst, tunnel, 100 * S, |v| {
                        borrowed.push(v.to_string())
                    });
                    assert_eq!(borrowed, expected, "{src} -> {dst} via {tunnel:?}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 2 * 6 * 6 * 3);
    let mut text = String::new();
    loaded.for_each_csv_piece(
        &mut last,
        ip("10.244.1.2"),
        ip("10.244.1.1"),
        None,
        100 * S,
        |p| text.push_str(p),
    );
    assert_eq!(
        text,
        "shop,\"odd \"\"name\"\", here\",\"pod/odd \"\"name\"\", here\",node-1,\
         shop,web-1,pod/web-1,\"front,web\",node-1,,,,"
    );
}

// ---------------------------------------------------------------- relist

#[test]
fn relist_deletes_what_it_did_not_name() {
    let mut state = ClusterState::new();
    for (name, addr) in [
        ("p1", "10.244.1.1"),
        ("p2", "10.244.1.2"),
        ("p3", "10.244.1.3"),
    ] {
        state.apply_pod(&simple_pod("shop", name, addr, 100));
    }
    state.apply_service(&service("shop", "keep", "10.96.0.1", json!({"app": "x"})));
    state.apply_service(&service("shop", "gone", "10.96.0.2", json!({"app": "x"})));
    state.apply_node(&node("node-1", "10.0.0.11"));
    state.apply_node(&node("node-2", "10.0.0.12"));

    state.begin_relist(Kind::Pod);
    state.apply_pod(&simple_pod("shop", "p1", "10.244.1.1", 100));
    state.apply_pod(&simple_pod("shop", "p3", "10.244.1.3", 100));
    state.end_relist(Kind::Pod, 500 * S);
    state.begin_relist(Kind::Service);
    state.apply_service(&service("shop", "keep", "10.96.0.1", json!({"app": "x"})));
    state.end_relist(Kind::Service, 500 * S);
    state.begin_relist(Kind::Node);
    state.apply_node(&node("node-2", "10.0.0.12"));
    state.end_relist(Kind::Node, 500 * S);
    let map = state.snapshot();

    assert_eq!(
        pod_name(&map, "10.244.1.2", 400).as_deref(),
        Some("p2"),
        "before the relist"
    );
    assert_eq!(pod_name(&map, "10.244.1.2", 600), None, "after the relist");
    assert_eq!(map.peer(ip("10.244.1.2"), 600 * S), Peer::default());
    assert_eq!(pod_name(&map, "10.244.1.1", 600).as_deref(), Some("p1"));
    assert_eq!(pod_name(&map, "10.244.1.3", 600).as_deref(), Some("p3"));
    assert_eq!(
        map.peer(ip("10.96.0.1"), 0).service.as_deref(),
        Some("keep")
    );
    assert_eq!(map.peer(ip("10.96.0.2"), 0), Peer::default());
    assert_eq!(map.peer(ip("10.0.0.11"), 0), Peer::default());
    assert_eq!(map.peer(ip("10.0.0.12"), 0).node.as_deref(), Some("node-2"));

    // A pod deleted before the relist keeps its own deletion time.
    let mut state = ClusterState::new();
    let p = simple_pod("shop", "p", "10.244.1.1", 100);
    state.apply_pod(&p);
    state.delete_pod(&p, 200 * S);
    state.begin_relist(Kind::Pod);
    state.end_relist(Kind::Pod, 500 * S);
    let map = state.snapshot();
    assert_eq!(pod_name(&map, "10.244.1.1", 150).as_deref(), Some("p"));
    assert_eq!(pod_name(&map, "10.244.1.1", 300), None);
}

// ---------------------------------------------------------------- unknown, serialization

#[test]
fn a_map_not_loaded_says_unknown() {
    let map = PodMap::not_loaded();
    assert!(!map.is_loaded());
    let flow = map.attribute(ip("10.244.1.1"), ip("10.244.1.2"), None, 100 * S);
    assert!(flow.unknown);
    let columns = values(&flow);
    assert_eq!(columns.len(), 13);
    assert!(columns[..9].iter().all(|v| v == UNKNOWN), "{columns:?}");
    assert!(columns[9..].iter().all(String::is_empty), "{columns:?}");

    // Records carry the columns as flat fields, in order.
    let text = serde_json::to_string(&flow).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    let object = value.as_object().unwrap();
    assert_eq!(object.len(), ATTRIBUTION_COLUMNS.len());
    for (i, name) in ATTRIBUTION_COLUMNS.iter().enumerate() {
        let expected = if i < 9 { UNKNOWN } else { "" };
        assert_eq!(object[*name], json!(expected), "{name}");
    }
    let positions: Vec<usize> = ATTRIBUTION_COLUMNS
        .iter()
        .map(|name| text.find(&format!("\"{name}\":")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");

    // A handle starts out the same, and says it is not synced.
    let handle = PodMapHandle::new();
    assert!(
        handle
            .load()
            .attribute(ip("10.244.1.1"), ip("10.244.1.2"), None, 0)
            .unknown
    );
    assert!(!handle.status().synced);
    assert!(!handle.wait_synced(Duration::from_millis(50)));
}

#[test]
fn a_loaded_attribution_serializes_to_flat_fields() {
    let mut state = ClusterState::new();
    state.apply_node(&node("node-1", "10.0.0.11"));
    state.apply_node(&node("node-2", "10.0.0.12"));
    state.apply_pod(&owned_pod("db-0", "10.244.1.5", "StatefulSet", "db", None));
    state.apply_service(&service("shop", "db", "10.96.0.5", json!({"app": "db"})));
    let mut value = pod_json("shop", "web-1", "10.244.1.1", 10);
    value["metadata"]["labels"] = json!({"app": "db"});
    state.apply_pod(&pod(value));
    let handle = PodMapHandle::fixed(state.snapshot());
    assert!(handle.status().synced);
    assert_eq!(handle.status().pods, 2);

    let flow = handle.load().attribute(
        ip("10.244.1.5"),
        ip("10.244.1.1"),
        Some((ip("10.0.0.11"), ip("10.0.0.12"))),
        100 * S,
    );
    let value = serde_json::to_value(&flow).unwrap();
    assert_eq!(
        value,
        json!({
            "src_namespace": "shop", "src_pod": "db-0", "src_workload": "statefulset/db",
            "src_node": "node-1",
            "dst_namespace": "shop", "dst_pod": "web-1", "dst_workload": "pod/web-1",
            "dst_service": "db", "dst_node": "node-1",
            "tunnel_src_ip": "10.0.0.11", "tunnel_src_node": "node-1",
            "tunnel_dst_ip": "10.0.0.12", "tunnel_dst_node": "node-2",
        })
    );
}

#[test]
fn dual_stack_pods_hold_both_addresses() {
    let mut value = pod_json("shop", "web-1", "10.244.1.1", 10);
    value["status"]["podIPs"] = json!([{"ip": "10.244.1.1"}, {"ip": "fd00:10:244:1::1"}]);
    let mut state = ClusterState::new();
    state.apply_pod(&pod(value));
    let map = state.snapshot();
    assert_eq!(pod_name(&map, "10.244.1.1", 100).as_deref(), Some("web-1"));
    assert_eq!(
        pod_name(&map, "fd00:10:244:1::1", 100).as_deref(),
        Some("web-1")
    );
}

// ---------------------------------------------------------------- the file source

fn kubectl_list(items: Vec<Value>) -> String {
    serde_json::to_string_pretty(&json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": items,
    }))
    .unwrap()
}

/// Replaces `path` at once (a reader never sees half a file).
fn write_atomically(path: &Path, text: &str) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

fn poll(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    done()
}

#[test]
fn load_a_kubectl_list() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pods.json");
    let mut web = pod_json("shop", "web-7d9f8c-x1", "10.244.1.1", 10);
    web["metadata"]["labels"] = json!({"app": "web", "pod-template-hash": "7d9f8c"});
    web["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8c",
        "uid": "uid-rs", "controller": true,
    }]);
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-7d9f8c", "namespace": "shop", "uid": "uid-rs",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "website",
                "uid": "uid-d", "controller": true}]},
    });
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "website", "namespace": "shop", "uid": "uid-d"},
    });
    std::fs::write(
        &path,
        kubectl_list(vec![
            web,
            service_json("shop", "web", "10.96.0.10", json!({"app": "web"})),
            node_json("node-1", "10.0.0.11"),
            rs,
            deployment,
        ]),
    )
    .unwrap();

    let mut state = load_pods_file(&path).unwrap();
    assert_eq!(state.pod_count(), 1);
    let map = state.snapshot();
    let peer = map.peer(ip("10.244.1.1"), 100 * S);
    assert_eq!(peer.pod.as_deref(), Some("web-7d9f8c-x1"));
    // From the ReplicaSet object (the name alone would say `deployment/web`).
    assert_eq!(peer.workload.as_deref(), Some("deployment/website"));
    assert_eq!(peer.service.as_deref(), Some("web"));
    assert_eq!(
        map.peer(ip("10.96.0.10"), 0).service.as_deref(),
        Some("web")
    );
    assert_eq!(map.peer(ip("10.0.0.11"), 0).node.as_deref(), Some("node-1"));
}

#[test]
fn load_a_pod_list_whose_items_have_no_kind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pods.json");
    let strip = |mut v: Value| {
        let object = v.as_object_mut().unwrap();
        object.remove("kind");
        object.remove("apiVersion");
        v
    };
    let list = json!({
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {"resourceVersion": "42"},
        "items": [
            strip(pod_json("shop", "a", "10.244.1.1", 10)),
            strip(pod_json("shop", "b", "10.244.1.2", 10)),
        ],
    });
    std::fs::write(&path, list.to_string()).unwrap();
    let map = load_pods_file(&path).unwrap().snapshot();
    assert_eq!(map.pods(), 2);
    assert_eq!(pod_name(&map, "10.244.1.1", 100).as_deref(), Some("a"));
    assert_eq!(pod_name(&map, "10.244.1.2", 100).as_deref(), Some("b"));
}

#[test]
fn an_object_is_read_whatever_the_order_of_its_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pods.json");
    // By hand, not as kubectl writes it: `spec` and `status` before `kind`, the list's
    // `kind` after its items, a Deployment whose `spec.selector` is not a service's.
    let text = r#"{"items": [
        {"status": {"podIP": "10.244.1.1"}, "spec": {"nodeName": "node-1",
         "containers": [{"name": "app"}]},
         "metadata": {"name": "web", "namespace": "shop"}, "kind": "Pod"},
        {"spec": {"selector": {"matchLabels": {"app": "web"}}}, "kind": "Deployment",
         "metadata": {"name": "web", "namespace": "shop"}},
        {"kind": "Service", "metadata": {"name": "front", "namespace": "shop"},
         "spec": {"clusterIP": "10.96.0.1"}}
    ], "kind": "List"}"#;
    std::fs::write(&path, text).unwrap();
    let map = load_pods_file(&path).unwrap().snapshot();
    assert_eq!(map.pods(), 1);
    let peer = map.peer(ip("10.244.1.1"), 100 * S);
    assert_eq!(peer.pod.as_deref(), Some("web"));
    assert_eq!(peer.node.as_deref(), Some("node-1"));
    assert_eq!(
        map.peer(ip("10.96.0.1"), 0).service.as_deref(),
        Some("front")
    );

    // A wrong field read late still names its item, object and part.
    std::fs::write(&path, text.replace(r#"{"name": "app"}"#, r#"{"name": 5}"#)).unwrap();
    let error = load_pods_file(&path).unwrap_err().to_string();
    assert!(error.contains("item 0 (Pod shop/web): `spec`"), "{error}");
}

#[test]
fn bad_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken-pods.json");
    std::fs::write(&path, "{\"items\": [ this is not json").unwrap();
    let error = load_pods_file(&path).unwrap_err();
    assert!(matches!(error, KubeError::BadFile { .. }), "{error:?}");
    assert!(error.to_string().contains("broken-pods.json"), "{error}");

    std::fs::write(&path, "{\"hello\": 1}").unwrap();
    let error = load_pods_file(&path).unwrap_err();
    assert!(error.to_string().contains("broken-pods.json"), "{error}");

    // A pod that is not a pod.
    std::fs::write(
        &path,
        kubectl_list(vec![json!({"kind": "Pod", "metadata": {"name": 7}})]),
    )
    .unwrap();
    let error = load_pods_file(&path).unwrap_err();
    assert!(error.to_string().contains("item 0"), "{error}");

    // A wrong field names the item, the object and the part that holds it.
    let mut bad_spec = pod_json("shop", "web", "10.244.1.1", 10);
    bad_spec["spec"]["containers"] = json!([{"name": 5}]);
    std::fs::write(
        &path,
        kubectl_list(vec![
            service_json("shop", "s", "10.96.0.1", json!({})),
            bad_spec,
        ]),
    )
    .unwrap();
    let error = load_pods_file(&path).unwrap_err().to_string();
    assert!(error.contains("item 1 (Pod shop/web): `spec`"), "{error}");

    // An item of a plain `List` without a kind of its own (it waits for the list's kind).
    let mut kindless = pod_json("shop", "web", "10.244.1.1", 10);
    kindless.as_object_mut().unwrap().remove("kind");
    std::fs::write(
        &path,
        kubectl_list(vec![
            service_json("shop", "s", "10.96.0.1", json!({})),
            kindless,
        ]),
    )
    .unwrap();
    let error = load_pods_file(&path).unwrap_err().to_string();
    assert!(error.contains("item 1 has no `kind`"), "{error}");

    let missing = dir.path().join("missing.json");
    let error = load_pods_file(&missing).unwrap_err();
    assert!(matches!(error, KubeError::ReadFile { .. }), "{error:?}");
    assert!(error.to_string().contains("missing.json"), "{error}");

    // The source refuses it at once too.
    let handle = PodMapHandle::new();
    assert!(spawn_file_source(missing, Arc::clone(&handle)).is_err());
    assert!(!handle.load().is_loaded());
}

#[test]
fn the_file_source_reloads_and_keeps_the_last_good_map() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pods.json");
    write_atomically(
        &path,
        &kubectl_list(vec![pod_json("shop", "a", "10.244.1.1", 10)]),
    );

    let handle = PodMapHandle::new();
    spawn_file_source(path.clone(), Arc::clone(&handle)).unwrap();
    // Read at once, before the call returns.
    assert!(handle.status().synced);
    assert_eq!(
        pod_name(&handle.load(), "10.244.1.1", 100).as_deref(),
        Some("a")
    );
    assert_eq!(pod_name(&handle.load(), "10.244.1.2", 100), None);

    write_atomically(
        &path,
        &kubectl_list(vec![
            pod_json("shop", "a", "10.244.1.1", 10),
            pod_json("shop", "b", "10.244.1.2", 10),
        ]),
    );
    assert!(
        poll(Duration::from_secs(4), || pod_name(
            &handle.load(),
            "10.244.1.2",
            100
        )
        .is_some()),
        "the new pod never showed up"
    );
    assert_eq!(
        pod_name(&handle.load(), "10.244.1.2", 100).as_deref(),
        Some("b")
    );
    let status = handle.status();
    assert_eq!(status.errors, 0);
    assert!(status.synced);
    assert_eq!(status.pods, 2);

    write_atomically(&path, "garbage, not JSON");
    assert!(
        poll(Duration::from_secs(4), || handle.status().errors >= 1),
        "the bad reload was not counted"
    );
    let status = handle.status();
    assert!(!status.synced);
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("pods.json"),
        "{status:?}"
    );
    // The last good map stays.
    assert_eq!(status.pods, 2);
    assert_eq!(
        pod_name(&handle.load(), "10.244.1.1", 100).as_deref(),
        Some("a")
    );
    assert_eq!(
        pod_name(&handle.load(), "10.244.1.2", 100).as_deref(),
        Some("b")
    );

    // Fixed again: synced again.
    write_atomically(
        &path,
        &kubectl_list(vec![pod_json("shop", "c", "10.244.1.3", 10)]),
    );
    assert!(poll(Duration::from_secs(4), || handle.status().synced));
    assert_eq!(
        pod_name(&handle.load(), "10.244.1.3", 100).as_deref(),
        Some("c")
    );
    assert_eq!(pod_name(&handle.load(), "10.244.1.1", 100), None);

    // The source's thread lets go of the handle once nobody else holds it.
    let weak = Arc::downgrade(&handle);
    drop(handle);
    assert!(
        poll(Duration::from_secs(4), || weak.strong_count() == 0),
        "the file source's thread kept running"
    );
}

#[test]
fn escaped_strings_in_the_file_are_read_as_their_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pods.json");
    // kubectl (Go) escapes some characters; such strings cannot be borrowed from the file.
    let text = kubectl_list(vec![pod_json("shop", "web-PLACEHOLDER", "10.244.1.1", 10)])
        .replace("web-PLACEHOLDER", "web\\u002d1");
    std::fs::write(&path, text).unwrap();
    let map = load_pods_file(&path).unwrap().snapshot();
    assert_eq!(pod_name(&map, "10.244.1.1", 100).as_deref(), Some("web-1"));
}
