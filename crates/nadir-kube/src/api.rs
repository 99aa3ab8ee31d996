//! The Kubernetes API source: list + watch of pods, services, nodes and ReplicaSets with
//! kube-runtime's watcher (which keeps the resourceVersion, relists after 410 Gone and
//! reconnects; we add its default exponential backoff), on a thread with its own
//! single-threaded tokio runtime so the capture threads never wait on the network.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Config};

use crate::{now_ns, ClusterState, Kind, KubeError, PodMapHandle};

/// A burst of events is published at most this often (a snapshot of 10,000 pods takes a few
/// ms to build), and a quiet stream's last changes after this long.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// The watcher retries at most 30 s apart (its default backoff) and reports every failed try:
/// this long without a failure means the watch is open again, even on a quiet cluster that
/// sends no event to prove it.
const RECOVERED_AFTER: Duration = Duration::from_secs(35);

enum Object {
    Pod(Pod),
    Service(Service),
    Node(Node),
    ReplicaSet(ReplicaSet),
}

type Change = (Kind, Result<Event<Object>, watcher::Error>);

fn watch<K>(
    client: &Client,
    kind: Kind,
    wrap: fn(K) -> Object,
) -> Pin<Box<dyn Stream<Item = Change> + Send>>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    Box::pin(
        watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .map(move |event| {
                let event = event.map(|e| match e {
                    Event::Apply(o) => Event::Apply(wrap(o)),
                    Event::Delete(o) => Event::Delete(wrap(o)),
                    Event::Init => Event::Init,
                    Event::InitApply(o) => Event::InitApply(wrap(o)),
                    Event::InitDone => Event::InitDone,
                });
                (kind, event)
            }),
    )
}

fn apply(state: &mut ClusterState, object: &Object) {
    match object {
        Object::Pod(o) => state.apply_pod(o),
        Object::Service(o) => state.apply_service(o),
        Object::Node(o) => state.apply_node(o),
        Object::ReplicaSet(o) => state.apply_replicaset(o),
    }
}

fn delete(state: &mut ClusterState, object: &Object, at_ns: i64) {
    match object {
        Object::Pod(o) => state.delete_pod(o, at_ns),
        Object::Service(o) => state.delete_service(o),
        Object::Node(o) => state.delete_node(o),
        Object::ReplicaSet(o) => state.delete_replicaset(o),
    }
}

async fn client(url: Option<String>) -> Result<Client, String> {
    let config = match url {
        Some(url) => Config::new(
            url.parse()
                .map_err(|e| format!("--kube-url {url:?} is not a URL: {e}"))?,
        ),
        None => Config::infer().await.map_err(|e| {
            format!(
                "{e} (inside a pod: a service account; outside: a kubeconfig, or --kube-url http://127.0.0.1:8001 with `kubectl proxy`)"
            )
        })?,
    };
    Client::try_from(config).map_err(|e| e.to_string())
}

async fn run(url: Option<String>, handle: Arc<PodMapHandle>) {
    let client = loop {
        match client(url.clone()).await {
            Ok(client) => break client,
            Err(e) => {
                handle.failed(format!("cannot reach the Kubernetes API: {e}"));
                tokio::time::sleep(Duration::from_secs(5)).await;
                if !handle.wanted() {
                    return;
                }
            }
        }
    };
    let mut changes = futures::stream::select_all([
        watch(&client, Kind::Pod, Object::Pod),
        watch(&client, Kind::Service, Object::Service),
        watch(&client, Kind::Node, Object::Node),
        watch(&client, Kind::ReplicaSet, Object::ReplicaSet),
    ]);
    let mut state = ClusterState::new();
    // Kinds whose first listing is complete: the map is published once all four are.
    let mut listed = std::collections::HashSet::new();
    let mut dirty = false;
    let mut last_publish = Instant::now();
    // Kinds whose watch failed lately: the map is out of date until each shows it works
    // again (an event, or RECOVERED_AFTER without a failure).
    let mut failing = std::collections::HashMap::new();
    while handle.wanted() {
        let next = tokio::time::timeout(PUBLISH_EVERY, changes.next()).await;
        match next {
            Ok(None) => break,
            Ok(Some((kind, Ok(event)))) => {
                failing.remove(&kind);
                match event {
                    Event::Init => state.begin_relist(kind),
                    Event::InitApply(o) | Event::Apply(o) => apply(&mut state, &o),
                    Event::Delete(o) => delete(&mut state, &o, now_ns()),
                    Event::InitDone => {
                        state.end_relist(kind, now_ns());
                        listed.insert(kind);
                    }
                }
                dirty = true;
            }
            Ok(Some((kind, Err(e)))) => {
                handle.failed(format!(
                    "watching {kind:?}s: {e}; retrying with backoff, attribution from the last good map"
                ));
                failing.insert(kind, Instant::now());
            }
            Err(_quiet) => {}
        }
        // A snapshot taken in the middle of a relist is sound: objects the relist has not
        // named yet stay in the map until it ends.
        if dirty && listed.len() == 4 && last_publish.elapsed() >= PUBLISH_EVERY {
            state.prune(now_ns());
            handle.publish(state.snapshot());
            dirty = false;
            last_publish = Instant::now();
        }
        failing.retain(|_, at: &mut Instant| at.elapsed() < RECOVERED_AFTER);
        if !failing.is_empty() {
            handle.mark_stale();
        } else if listed.len() == 4 && !dirty {
            // Only once the published map holds every listed change.
            handle.mark_synced();
        }
    }
}

/// Connects to the API on a thread of its own and keeps `handle`'s map current until nothing
/// else holds the handle. Unreachable or failing: the map says `unknown` (or keeps its last
/// good state), the failure is counted, and the watcher retries with backoff.
pub fn spawn_api_source(url: Option<String>, handle: Arc<PodMapHandle>) -> Result<(), KubeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(KubeError::Thread)?;
    std::thread::Builder::new()
        .name("nadir-kube-api".into())
        .spawn(move || runtime.block_on(run(url, handle)))
        .map_err(KubeError::Thread)?;
    Ok(())
}
