//! The API source against a real HTTP server in the test, playing back the shapes the
//! Kubernetes API answers with: lists, then watch streams (one JSON event per line), a
//! dropped connection, a 410 Gone that forces a relist.
#![cfg(feature = "api")]

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nadir_kube::{now_ns, spawn_api_source, Peer, PodMapHandle, UNKNOWN};
use serde_json::{json, Value};

const S: i64 = 1_000_000_000;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn stamp(secs: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(secs)
        .unwrap()
        .to_string()
}

fn poll(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

// ---------------------------------------------------------------- the server

/// What the pods' script has reached, and what the test lets it do next.
#[derive(Default)]
struct Script {
    /// Request lines seen, in order.
    requests: Mutex<Vec<String>>,
    pod_lists: AtomicUsize,
    pod_watches: AtomicUsize,
    /// The first watch sends its events once this is set...
    send_events: AtomicBool,
    /// ... and drops the connection once this is.
    drop_connection: AtomicBool,
    /// The test is over: every held connection closes.
    stop: AtomicBool,
}

struct Server {
    addr: String,
    script: Arc<Script>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.script.stop.store(true, Ordering::SeqCst);
    }
}

/// The pods, as the API sends them (`creationTimestamp` in seconds).
struct Pods {
    a_created: i64,
    b_created: i64,
    c_created: i64,
    d_created: i64,
}

fn pod(name: &str, addr: &str, created: i64, rv: &str, labels: Value) -> Value {
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": format!("uid-{name}"),
            "resourceVersion": rv,
            "creationTimestamp": stamp(created),
            "labels": labels,
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5f6d7c",
                "uid": "uid-rs", "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [{"name": "web", "image": "nginx:1.27"}],
        },
        "status": {
            "phase": "Running",
            "hostIP": "10.0.0.11",
            "podIP": addr,
            "podIPs": [{"ip": addr}],
        },
    })
}

fn list(kind: &str, rv: &str, items: Vec<Value>) -> Value {
    // Items of a list carry no kind of their own.
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut item| {
            let object = item.as_object_mut().unwrap();
            object.remove("kind");
            object.remove("apiVersion");
            item
        })
        .collect();
    json!({
        "kind": kind,
        "apiVersion": if kind == "ReplicaSetList" { "apps/v1" } else { "v1" },
        "metadata": {"resourceVersion": rv},
        "items": items,
    })
}

fn respond_list(stream: &mut TcpStream, body: &Value) {
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
}

fn start_watch(stream: &mut TcpStream) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.flush();
}

fn send_event(stream: &mut TcpStream, kind: &str, object: &Value) {
    let line = format!("{}\n", json!({"type": kind, "object": object}));
    let _ = stream.write_all(line.as_bytes());
    let _ = stream.flush();
}

/// Holds a watch open (no events) until `until` or the end of the test.
fn hold(script: &Script, until: impl Fn() -> bool) {
    while !script.stop.load(Ordering::SeqCst) && !until() {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn serve(mut stream: TcpStream, script: &Script, pods: &Pods) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // The headers, up to the empty line (a GET has no body).
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(_) if header == "\r\n" || header == "\n" => break,
            Ok(_) => {}
        }
    }
    let request_line = request_line.trim_end().to_string();
    script.requests.lock().unwrap().push(request_line.clone());
    let target = request_line.split(' ').nth(1).unwrap_or("").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let watching = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");

    match path {
        "/api/v1/pods" if !watching => {
            let n = script.pod_lists.fetch_add(1, Ordering::SeqCst);
            let body = if n == 0 {
                list(
                    "PodList",
                    "10",
                    vec![pod(
                        "a",
                        "10.244.1.5",
                        pods.a_created,
                        "10",
                        json!({"app": "web"}),
                    )],
                )
            } else {
                // The relist after 410: C is gone, D is new.
                list(
                    "PodList",
                    "20",
                    vec![
                        pod(
                            "b",
                            "10.244.1.5",
                            pods.b_created,
                            "14",
                            json!({"app": "web"}),
                        ),
                        pod(
                            "d",
                            "10.244.1.7",
                            pods.d_created,
                            "19",
                            json!({"app": "web"}),
                        ),
                    ],
                )
            };
            respond_list(&mut stream, &body);
        }
        "/api/v1/pods" => {
            let n = script.pod_watches.fetch_add(1, Ordering::SeqCst);
            start_watch(&mut stream);
            match n {
                0 => {
                    hold(script, || script.send_events.load(Ordering::SeqCst));
                    let c = pod(
                        "c",
                        "10.244.1.9",
                        pods.c_created,
                        "11",
                        json!({"app": "web"}),
                    );
                    send_event(&mut stream, "ADDED", &c);
                    let a = pod(
                        "a",
                        "10.244.1.5",
                        pods.a_created,
                        "12",
                        json!({"app": "web", "tier": "front"}),
                    );
                    send_event(&mut stream, "MODIFIED", &a);
                    let mut deleted = pod(
                        "a",
                        "10.244.1.5",
                        pods.a_created,
                        "13",
                        json!({"app": "web", "tier": "front"}),
                    );
                    deleted["metadata"]["deletionTimestamp"] = json!(stamp(pods.a_created + 60));
                    send_event(&mut stream, "DELETED", &deleted);
                    let b = pod(
                        "b",
                        "10.244.1.5",
                        pods.b_created,
                        "14",
                        json!({"app": "web"}),
                    );
                    send_event(&mut stream, "ADDED", &b);
                    // Then the connection drops.
                    hold(script, || script.drop_connection.load(Ordering::SeqCst));
                }
                1 => {
                    // Resumed from rv 14: the server has compacted past it.
                    send_event(
                        &mut stream,
                        "ERROR",
                        &json!({
                            "kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": "too old resource version: 14 (19)",
                            "reason": "Expired", "code": 410,
                        }),
                    );
                }
                _ => hold(script, || false),
            }
        }
        "/api/v1/services" | "/api/v1/nodes" | "/apis/apps/v1/replicasets" if watching => {
            start_watch(&mut stream);
            hold(script, || false);
        }
        "/api/v1/services" => {
            let front = json!({
                "kind": "Service", "apiVersion": "v1",
                "metadata": {"name": "front", "namespace": "shop", "uid": "uid-svc-front", "resourceVersion": "5"},
                "spec": {"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"], "selector": {"tier": "front"},
                    "ports": [{"port": 80, "protocol": "TCP"}]},
            });
            respond_list(&mut stream, &list("ServiceList", "10", vec![front]));
        }
        "/api/v1/nodes" => {
            let node = json!({
                "kind": "Node", "apiVersion": "v1",
                "metadata": {"name": "node-1", "uid": "uid-node-1", "resourceVersion": "3"},
                "status": {"addresses": [
                    {"type": "InternalIP", "address": "10.0.0.11"},
                    {"type": "Hostname", "address": "node-1"},
                ]},
            });
            respond_list(&mut stream, &list("NodeList", "10", vec![node]));
        }
        "/apis/apps/v1/replicasets" => {
            let rs = json!({
                "kind": "ReplicaSet", "apiVersion": "apps/v1",
                "metadata": {"name": "web-5f6d7c", "namespace": "shop", "uid": "uid-rs", "resourceVersion": "4",
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "storefront",
                        "uid": "uid-deploy", "controller": true}]},
                "spec": {"selector": {"matchLabels": {"app": "web"}}},
            });
            respond_list(&mut stream, &list("ReplicaSetList", "10", vec![rs]));
        }
        _ => {
            let body = b"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"reason\":\"NotFound\",\"code\":404}";
            let head = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn start_server(pods: Pods) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let script = Arc::new(Script::default());
    let pods = Arc::new(pods);
    let shared = Arc::clone(&script);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            let script = Arc::clone(&shared);
            let pods = Arc::clone(&pods);
            std::thread::spawn(move || serve(stream, &script, &pods));
        }
    });
    Server { addr, script }
}

// ---------------------------------------------------------------- the tests

fn pod_at(handle: &PodMapHandle, addr: &str, at_ns: i64) -> Option<String> {
    handle
        .load()
        .peer(ip(addr), at_ns)
        .pod
        .map(|p| p.to_string())
}

#[test]
fn list_watch_reconnect_and_relist_after_410() {
    let now_s = now_ns() / S;
    let pods = Pods {
        a_created: now_s - 3600,
        // B is created after A's deletion (the DELETED event is processed now): the gap
        // between the two is nobody's.
        b_created: now_s + 600,
        c_created: now_s - 1800,
        d_created: now_s - 60,
    };
    let (a_at, b_at, c_at, d_at) = (
        (pods.a_created + 10) * S,
        (pods.b_created + 10) * S,
        (pods.c_created + 10) * S,
        (pods.d_created + 10) * S,
    );
    let server = start_server(pods);
    let script = Arc::clone(&server.script);

    let handle = PodMapHandle::new();
    let started = Instant::now();
    spawn_api_source(Some(format!("http://{}", server.addr)), Arc::clone(&handle)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "spawn blocked");
    let limit = Duration::from_secs(20);

    // Stage 1: the first listing of every kind: pod A only.
    assert!(
        handle.wait_synced(limit),
        "never synced; requests: {:?}, status: {:?}",
        script.requests.lock().unwrap(),
        handle.status()
    );
    eprintln!("requests so far: {:#?}", script.requests.lock().unwrap());
    assert!(handle.load().is_loaded());
    assert_eq!(handle.status().pods, 1);
    let a = handle.load().peer(ip("10.244.1.5"), a_at);
    assert_eq!(a.pod.as_deref(), Some("a"));
    assert_eq!(a.namespace.as_deref(), Some("shop"));
    assert_eq!(a.node.as_deref(), Some("node-1"));
    // The ReplicaSet from the API names the Deployment (not the name's prefix `web`).
    assert_eq!(a.workload.as_deref(), Some("deployment/storefront"));
    assert_eq!(a.service, None, "A has no tier label yet");
    assert_eq!(
        pod_at(&handle, "10.244.1.5", now_ns()).as_deref(),
        Some("a")
    );
    assert_eq!(pod_at(&handle, "10.244.1.9", now_ns()), None);
    assert_eq!(
        handle.load().peer(ip("10.96.0.20"), 0).service.as_deref(),
        Some("front")
    );
    let node = handle.load().peer(ip("10.0.0.11"), 0);
    assert_eq!(node.node.as_deref(), Some("node-1"));
    {
        let requests = script.requests.lock().unwrap();
        for path in [
            "/api/v1/pods?",
            "/api/v1/services?",
            "/api/v1/nodes?",
            "/apis/apps/v1/replicasets?",
        ] {
            assert!(
                requests
                    .iter()
                    .any(|r| r.starts_with(&format!("GET {path}")) && r.contains("limit=500")),
                "no list of {path}: {requests:?}"
            );
        }
    }

    // Stage 2: the watch's events: C added, A relabelled then deleted, B reusing A's IP.
    script.send_events.store(true, Ordering::SeqCst);
    assert!(
        poll(limit, || pod_at(&handle, "10.244.1.5", b_at).as_deref()
            == Some("b")
            && pod_at(&handle, "10.244.1.9", now_ns()).is_some()),
        "the watch's events never showed; requests: {:?}",
        script.requests.lock().unwrap()
    );
    let gap = now_ns(); // after A's deletion, before B's creation.
    assert_eq!(pod_at(&handle, "10.244.1.9", c_at).as_deref(), Some("c"));
    let a = handle.load().peer(ip("10.244.1.5"), a_at);
    assert_eq!(a.pod.as_deref(), Some("a"), "A before its deletion");
    assert_eq!(
        a.service.as_deref(),
        Some("front"),
        "the MODIFIED label applied"
    );
    assert_eq!(handle.load().peer(ip("10.244.1.5"), gap), Peer::default());
    assert_eq!(pod_at(&handle, "10.244.1.5", b_at).as_deref(), Some("b"));
    assert_eq!(handle.load().peer(ip("10.244.1.5"), b_at).service, None);
    assert_eq!(handle.status().errors, 0, "{:?}", handle.status());

    // Stage 3: the connection drops; the resumed watch gets 410 Gone; the relist names B
    // and D, not C.
    script.drop_connection.store(true, Ordering::SeqCst);
    assert!(
        // (A snapshot may be published half way through the relist: wait for its end.)
        poll(limit, || pod_at(&handle, "10.244.1.7", now_ns()).is_some()
            && pod_at(&handle, "10.244.1.9", now_ns()).is_none()),
        "the relist never showed; requests: {:?}, status: {:?}",
        script.requests.lock().unwrap(),
        handle.status()
    );
    eprintln!("requests: {:#?}", script.requests.lock().unwrap());
    let after_relist = now_ns();
    assert_eq!(pod_at(&handle, "10.244.1.7", d_at).as_deref(), Some("d"));
    assert_eq!(
        handle.load().peer(ip("10.244.1.9"), after_relist),
        Peer::default(),
        "C is gone after the relist"
    );
    assert_eq!(
        pod_at(&handle, "10.244.1.9", c_at).as_deref(),
        Some("c"),
        "C's history stays"
    );
    assert_eq!(
        pod_at(&handle, "10.244.1.5", a_at).as_deref(),
        Some("a"),
        "A's history stays"
    );
    assert_eq!(pod_at(&handle, "10.244.1.5", b_at).as_deref(), Some("b"));
    assert_eq!(handle.load().peer(ip("10.244.1.5"), gap), Peer::default());
    let status = handle.status();
    assert!(status.errors >= 1, "the 410 was not counted: {status:?}");
    assert!(
        status.last_error.as_deref().unwrap_or("").contains("Pod"),
        "{status:?}"
    );
    assert!(
        status.synced,
        "the relist published a fresh map: {status:?}"
    );
    assert!(script.pod_lists.load(Ordering::SeqCst) >= 2);
    assert!(script.pod_watches.load(Ordering::SeqCst) >= 2);
    {
        let requests = script.requests.lock().unwrap();
        // The watch after the dropped connection resumed from the last event's version.
        assert!(
            requests.iter().any(|r| r.starts_with("GET /api/v1/pods?")
                && r.contains("watch=true")
                && r.contains("resourceVersion=14")),
            "{requests:?}"
        );
    }

    // Nobody else holds the handle: the source's thread lets go of it.
    let weak = Arc::downgrade(&handle);
    drop(handle);
    assert!(
        poll(Duration::from_secs(5), || weak.strong_count() == 0),
        "the API source's thread kept running"
    );
    drop(server);
}

#[test]
fn an_unreachable_api_leaves_attribution_unknown() {
    // A port nothing listens on.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let handle = PodMapHandle::new();
    let started = Instant::now();
    spawn_api_source(
        Some(format!("http://127.0.0.1:{port}")),
        Arc::clone(&handle),
    )
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "spawn blocked");

    assert!(
        poll(Duration::from_secs(10), || handle.status().errors >= 1),
        "no error counted: {:?}",
        handle.status()
    );
    let status = handle.status();
    assert!(!status.synced);
    assert_eq!(status.pods, 0);
    assert!(status.last_error.is_some());
    let flow = handle
        .load()
        .attribute(ip("10.244.1.5"), ip("10.244.1.6"), None, now_ns());
    assert!(flow.unknown);
    let mut columns = Vec::new();
    flow.for_each_value(|v| columns.push(v.to_string()));
    assert!(columns[..9].iter().all(|v| v == UNKNOWN), "{columns:?}");

    // A URL that is no URL: counted too, and spawn still returns at once.
    let bad = PodMapHandle::new();
    let started = Instant::now();
    spawn_api_source(Some("not a url".into()), Arc::clone(&bad)).unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "spawn blocked");
    assert!(poll(Duration::from_secs(5), || bad.status().errors >= 1));
    assert!(
        bad.load()
            .attribute(ip("10.244.1.5"), ip("10.244.1.6"), None, 0)
            .unknown
    );
}
