//! Kubernetes awareness end to end: real pod-to-pod captures with a pods file name both pods
//! on every flow (`extract` and `detect`), tunnelled traffic is attributed by its inner
//! addresses with the outer endpoints named as nodes, and a bad pods file is refused at start.
#![cfg(feature = "ml")]

mod common;

use std::path::Path;

use common::{fails, jsonl, ok, s};

const CONCAP: &str =
    "cicflowmeter-reference/concap-examples/example__completed__nmap-tcp-syn-version__dump.pcap";
/// From the scenario file beside the capture.
const ATTACKER: &str = "192.168.126.228";
const TARGET: &str = "192.168.126.224";

fn pod(
    name: &str,
    namespace: &str,
    ip: &str,
    owner: Option<(&str, &str)>,
    labels: serde_json::Value,
) -> serde_json::Value {
    let mut meta = serde_json::json!({
        "name": name, "namespace": namespace, "uid": format!("uid-{name}"),
        "creationTimestamp": "2024-07-26T17:00:00Z", "labels": labels,
    });
    if let Some((kind, owner)) = owner {
        meta["ownerReferences"] = serde_json::json!([{
            "apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": format!("uid-{owner}"),
            "controller": true,
        }]);
    }
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {"nodeName": "worker-1", "containers": [{"name": name}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    })
}

/// What `kubectl get pods,svc,nodes -A -o json` would say of the scenario's cluster.
fn write_pods_file(dir: &Path, extra: Vec<serde_json::Value>) -> std::path::PathBuf {
    let mut items = vec![
        pod(
            "nmap-x7k2p",
            "attack",
            ATTACKER,
            Some(("Job", "nmap")),
            serde_json::json!({"job-name": "nmap"}),
        ),
        pod(
            "httpd-6d8f9c7b5-q2w4e",
            "web",
            TARGET,
            Some(("ReplicaSet", "httpd-6d8f9c7b5")),
            serde_json::json!({"app": "httpd", "pod-template-hash": "6d8f9c7b5"}),
        ),
        serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "httpd", "namespace": "web", "uid": "uid-svc"},
            "spec": {"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"], "selector": {"app": "httpd"}},
        }),
    ];
    items.extend(extra);
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let path = dir.join("pods.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&list).unwrap()).unwrap();
    path
}

fn both_pods_named(src_ip: &str, row: impl Fn(&str) -> String) {
    let (attacker_side, target_side) = if src_ip == ATTACKER {
        ("src", "dst")
    } else {
        assert_eq!(src_ip, TARGET, "a flow between other hosts");
        ("dst", "src")
    };
    assert_eq!(row(&format!("{attacker_side}_namespace")), "attack");
    assert_eq!(row(&format!("{attacker_side}_pod")), "nmap-x7k2p");
    assert_eq!(row(&format!("{attacker_side}_workload")), "job/nmap");
    assert_eq!(row(&format!("{target_side}_namespace")), "web");
    assert_eq!(row(&format!("{target_side}_pod")), "httpd-6d8f9c7b5-q2w4e");
    assert_eq!(row(&format!("{target_side}_workload")), "deployment/httpd");
    if target_side == "dst" {
        assert_eq!(row("dst_service"), "httpd");
    }
}

/// Checks that every row of the CSV at `path` (more than 10) names both pods; the header.
fn every_row_names_both_pods(path: &Path, src_ip_column: &str) -> Vec<String> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.unwrap();
        let column = |name: &str| {
            let i = header.iter().position(|h| h == name).unwrap();
            record[i].to_string()
        };
        both_pods_named(&column(src_ip_column), column);
        rows += 1;
    }
    assert!(rows > 10, "{rows} rows in {}", path.display());
    header
}

#[test]
fn extract_names_both_pods_of_every_concap_flow() {
    let Some(capture) = nadir_testdata::shared_data(CONCAP) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pods = write_pods_file(dir.path(), Vec::new());
    let out = dir.path().join("flows.csv");
    ok(&["extract", s(&capture), "--pods", s(&pods), "-o", s(&out)]);
    let header = every_row_names_both_pods(&out, "Src IP");
    // The CICFlowMeter columns stay first and unchanged; the pod columns come after.
    assert_eq!(header[0], "Flow ID");
    assert_eq!(header[86], "Label");
    assert_eq!(
        &header[87..],
        nadir_kube::ATTRIBUTION_COLUMNS.map(String::from)
    );

    // Without a pods file, the CSV is exactly CICFlowMeter's 87 columns.
    let plain = dir.path().join("plain.csv");
    ok(&["extract", s(&capture), "-o", s(&plain)]);
    let mut reader = csv::Reader::from_path(&plain).unwrap();
    assert_eq!(reader.headers().unwrap().len(), 87);
}

/// Flow windows (`--features packets --window-scope flow`) name their flow's pods like cic and
/// bytes rows; capture-scope windows mix many flows and name none.
#[test]
fn packet_windows_of_a_flow_name_its_pods() {
    let Some(capture) = nadir_testdata::shared_data(CONCAP) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pods = write_pods_file(dir.path(), Vec::new());
    let out = dir.path().join("windows.csv");
    let windows = ["--features", "packets", "--window", "4", "--stride", "4"];
    let mut args = vec!["extract", s(&capture), "--pods", s(&pods), "-o", s(&out)];
    args.extend(windows);
    args.extend(["--window-scope", "flow"]);
    ok(&args);
    let header = every_row_names_both_pods(&out, "src_ip");
    let first_pod = header.len() - nadir_kube::ATTRIBUTION_COLUMNS.len();
    assert_eq!(
        &header[first_pod..],
        nadir_kube::ATTRIBUTION_COLUMNS.map(String::from)
    );

    let capture_scope = dir.path().join("capture.csv");
    let mut args = vec![
        "extract",
        s(&capture),
        "--pods",
        s(&pods),
        "-o",
        s(&capture_scope),
    ];
    args.extend(windows);
    ok(&args);
    let mut reader = csv::Reader::from_path(&capture_scope).unwrap();
    assert!(!reader.headers().unwrap().iter().any(|h| h == "src_pod"));
}

#[test]
fn detect_names_both_pods_and_groups_alerts_by_workload() {
    let Some(capture) = nadir_testdata::shared_data(CONCAP) else {
        return;
    };
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/models/demo-k8s-autoencoder.nadir");
    let dir = tempfile::tempdir().unwrap();
    let pods = write_pods_file(dir.path(), Vec::new());
    let out = dir.path().join("alerts.jsonl");
    let (_, stderr) = ok(&[
        "detect",
        "--model",
        s(&bundle),
        s(&capture),
        "--all",
        "--pods",
        s(&pods),
        "-o",
        s(&out),
    ]);
    let records = jsonl(&out);
    assert!(records.len() > 10, "{} records", records.len());
    for record in &records {
        let src = record["src_ip"].as_str().unwrap();
        both_pods_named(src, |name| {
            record[name].as_str().unwrap_or_default().to_string()
        });
    }
    // The scan is flagged, and the summary says which workloads were involved.
    assert!(
        stderr.contains("by source workload: attack/job/nmap"),
        "{stderr}"
    );
    assert!(stderr.contains("web/deployment/httpd"), "{stderr}");

    // Parquet/CSV records get the pod columns after the fixed ones.
    let table = dir.path().join("alerts.csv");
    ok(&[
        "detect",
        "--model",
        s(&bundle),
        s(&capture),
        "--pods",
        s(&pods),
        "-o",
        s(&table),
    ]);
    let mut reader = csv::Reader::from_path(&table).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        header[25..],
        nadir_kube::ATTRIBUTION_COLUMNS.map(String::from)
    );
}

#[test]
fn a_pod_created_after_the_capture_is_not_named_for_its_flows() {
    let Some(capture) = nadir_testdata::shared_data(CONCAP) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The target's IP now belongs to a pod created a year later: the flows predate it.
    let mut late = pod("later-pod", "web", TARGET, None, serde_json::json!({}));
    late["metadata"]["creationTimestamp"] = serde_json::json!("2025-07-26T17:00:00Z");
    let pods = write_pods_file(dir.path(), vec![late]);
    let out = dir.path().join("flows.jsonl");
    ok(&["extract", s(&capture), "--pods", s(&pods), "-o", s(&out)]);
    let records = jsonl(&out);
    assert!(!records.is_empty());
    for record in &records {
        let target_pod = if record["Src IP"] == TARGET {
            &record["src_pod"]
        } else {
            &record["dst_pod"]
        };
        assert_eq!(target_pod, "httpd-6d8f9c7b5-q2w4e", "{record}");
    }
}

#[test]
fn tunnelled_flows_are_attributed_by_inner_addresses_with_outer_nodes() {
    let Some(capture) =
        nadir_testdata::shared_data("pcap-robustness/tcpdump-tests/vxlan_port_8472.pcap")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // First learn the inner and outer addresses nadir sees, then name them.
    let probe = dir.path().join("probe.jsonl");
    ok(&[
        "detect",
        "--model",
        &format!(
            "{}/../../examples/models/demo-k8s-autoencoder.nadir",
            env!("CARGO_MANIFEST_DIR")
        ),
        s(&capture),
        "--all",
        "-o",
        s(&probe),
    ]);
    let records = jsonl(&probe);
    let tunnelled = records
        .iter()
        .find(|r| r["tunnel"].is_string())
        .expect("a flow inside the VXLAN tunnel");
    let tunnel = tunnelled["tunnel"].as_str().unwrap();
    let (inner_src, inner_dst) = (
        tunnelled["src_ip"].as_str().unwrap(),
        tunnelled["dst_ip"].as_str().unwrap(),
    );
    let words: Vec<&str> = tunnel.split_whitespace().collect();
    let arrow = words.iter().position(|w| *w == "->").unwrap();
    let (outer_src, outer_dst) = (words[arrow - 1], words[arrow + 1]);
    let node = |name: &str, ip: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": format!("uid-{name}")},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}]}})
    };
    // The capture is from 2013: these pods were created before it.
    let early = |mut pod: serde_json::Value| {
        pod["metadata"]["creationTimestamp"] = serde_json::json!("2010-01-01T00:00:00Z");
        pod
    };
    let pods = write_pods_file(
        dir.path(),
        vec![
            early(pod("client", "app", inner_src, None, serde_json::json!({}))),
            early(pod("server", "app", inner_dst, None, serde_json::json!({}))),
            node("node-a", outer_src),
            node("node-b", outer_dst),
        ],
    );
    let out = dir.path().join("flows.jsonl");
    ok(&["extract", s(&capture), "--pods", s(&pods), "-o", s(&out)]);
    let rows = jsonl(&out);
    let row = rows
        .iter()
        .find(|r| {
            let ends = [&r["Src IP"], &r["Dst IP"]];
            ends.contains(&&serde_json::json!(inner_src))
                && ends.contains(&&serde_json::json!(inner_dst))
        })
        .expect("the tunnelled flow");
    let pods_named: Vec<&str> = [&row["src_pod"], &row["dst_pod"]]
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        pods_named.contains(&"client") && pods_named.contains(&"server"),
        "{row}"
    );
    let nodes: Vec<&str> = [&row["tunnel_src_node"], &row["tunnel_dst_node"]]
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        nodes.contains(&"node-a") && nodes.contains(&"node-b"),
        "{row}"
    );
}

#[test]
fn a_bad_pods_file_is_refused_at_start_naming_it() {
    let Some(capture) = nadir_testdata::shared_data(CONCAP) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("pods.json");
    std::fs::write(&bad, b"{ not json").unwrap();
    let out = dir.path().join("flows.csv");
    let stderr = fails(&["extract", s(&capture), "--pods", s(&bad), "-o", s(&out)]);
    assert!(
        stderr.contains("pods.json") && stderr.contains("kubectl get"),
        "{stderr}"
    );
    assert!(
        !out.exists(),
        "the output is not created before the pods file is read"
    );
}
