//! The Kubernetes API source: list + watch of pods, services, nodes and ReplicaSets with
//! kube-runtime's watcher (which keeps the resourceVersion, relists after 410 Gone and
//! reconnects; we add its default exponential backoff), on a thread with its own
//! single-threaded tokio runtime so the capture threads never wait on the network.

use std::collections::{HashMap, HashSet};
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

/// How the API source paces itself; [`ApiTiming::default`] is what `--kube` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiTiming {
    /// Changes are published at most this often, and a quiet stream's last changes after
    /// this long: the map lags the API by at most this (plus the build, ~33 ms for 10,000
    /// pods). At 1 s, 1,000 events/s cost one snapshot a second instead of ten.
    pub publish_every: Duration,
    /// The watcher retries at most 30 s apart (its default backoff) and reports every failed
    /// try: this long without a failure means the watch is open again, even on a quiet
    /// cluster that sends no event to prove it.
    pub recovered_after: Duration,
}

impl Default for ApiTiming {
    fn default() -> Self {
        ApiTiming {
            publish_every: Duration::from_secs(1),
            recovered_after: Duration::from_secs(35),
        }
    }
}

/// Kinds whose watch failed lately: the map is out of date until each shows it works again
/// (an event, or `recovered_after` without a failure).
struct Health {
    recovered_after: Duration,
    failing: HashMap<Kind, Instant>,
}

impl Health {
    fn new(recovered_after: Duration) -> Self {
        Health {
            recovered_after,
            failing: HashMap::new(),
        }
    }

    fn event(&mut self, kind: Kind) {
        self.failing.remove(&kind);
    }

    fn failed(&mut self, kind: Kind, at: Instant) {
        self.failing.insert(kind, at);
    }

    /// Marks `handle` stale while any kind is failing, else synced once `current` (every
    /// kind listed and every change published).
    fn settle(&mut self, handle: &PodMapHandle, now: Instant, current: bool) {
        let recovered_after = self.recovered_after;
        self.failing
            .retain(|_, at| now.saturating_duration_since(*at) < recovered_after);
        if !self.failing.is_empty() {
            handle.mark_stale();
        } else if current {
            handle.mark_synced();
        }
    }
}

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

async fn run(url: Option<String>, handle: Arc<PodMapHandle>, timing: ApiTiming) {
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
    let mut listed = HashSet::new();
    let mut dirty = false;
    let mut last_publish = Instant::now();
    let mut health = Health::new(timing.recovered_after);
    while handle.wanted() {
        let next = tokio::time::timeout(timing.publish_every, changes.next()).await;
        match next {
            Ok(None) => break,
            Ok(Some((kind, Ok(event)))) => {
                health.event(kind);
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
                health.failed(kind, Instant::now());
            }
            Err(_quiet) => {}
        }
        // A snapshot taken in the middle of a relist is sound: objects the relist has not
        // named yet stay in the map until it ends.
        if dirty && listed.len() == 4 && last_publish.elapsed() >= timing.publish_every {
            state.prune(now_ns());
            handle.publish(state.snapshot());
            dirty = false;
            last_publish = Instant::now();
        }
        // Only once the published map holds every listed change.
        health.settle(&handle, Instant::now(), listed.len() == 4 && !dirty);
    }
}

/// Connects to the API on a thread of its own and keeps `handle`'s map current until nothing
/// else holds the handle. Unreachable or failing: the map says `unknown` (or keeps its last
/// good state), the failure is counted, and the watcher retries with backoff.
pub fn spawn_api_source(url: Option<String>, handle: Arc<PodMapHandle>) -> Result<(), KubeError> {
    spawn_api_source_with(url, handle, ApiTiming::default())
}

/// [`spawn_api_source`] with its pacing chosen (tests shorten it).
pub fn spawn_api_source_with(
    url: Option<String>,
    handle: Arc<PodMapHandle>,
    timing: ApiTiming,
) -> Result<(), KubeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(KubeError::Thread)?;
    std::thread::Builder::new()
        .name("nadir-kube-api".into())
        .spawn(move || runtime.block_on(run(url, handle, timing)))
        .map_err(KubeError::Thread)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A handle whose map was published, then a watch failure reported.
    fn failed_handle() -> Arc<PodMapHandle> {
        let handle = PodMapHandle::new();
        handle.publish(crate::PodMap::not_loaded());
        handle.failed("watching Pods: connection reset".into());
        handle
    }

    #[test]
    fn a_failed_watch_is_synced_again_only_after_recovered_after_without_failure() {
        let handle = failed_handle();
        let mut health = Health::new(500 * MS);
        let t0 = Instant::now();
        health.failed(Kind::Pod, t0);
        for at in [0, 100, 499] {
            health.settle(&handle, t0 + at * MS, true);
            assert!(!handle.status().synced, "synced {at} ms after the failure");
        }
        health.settle(&handle, t0 + 500 * MS, true);
        assert!(handle.status().synced, "still unsynced at 500 ms");
    }

    #[test]
    fn a_second_failure_restarts_the_wait() {
        let handle = failed_handle();
        let mut health = Health::new(500 * MS);
        let t0 = Instant::now();
        health.failed(Kind::Pod, t0);
        health.failed(Kind::Pod, t0 + 400 * MS);
        health.settle(&handle, t0 + 600 * MS, true);
        assert!(
            !handle.status().synced,
            "synced 200 ms after the last failure"
        );
        health.settle(&handle, t0 + 900 * MS, true);
        assert!(handle.status().synced);
    }

    #[test]
    fn an_event_proves_recovery_at_once_but_a_pending_change_waits() {
        let handle = failed_handle();
        let mut health = Health::new(500 * MS);
        let t0 = Instant::now();
        health.failed(Kind::Pod, t0);
        health.failed(Kind::Service, t0);
        health.event(Kind::Pod);
        health.settle(&handle, t0 + MS, true);
        assert!(!handle.status().synced, "services are still failing");
        health.event(Kind::Service);
        // Not yet published: the map is not current.
        health.settle(&handle, t0 + 2 * MS, false);
        assert!(!handle.status().synced);
        health.settle(&handle, t0 + 3 * MS, true);
        assert!(handle.status().synced);
    }

    #[test]
    fn the_default_waits_out_the_watchers_30_s_backoff() {
        let timing = ApiTiming::default();
        assert!(timing.recovered_after > Duration::from_secs(30));
        let handle = failed_handle();
        let mut health = Health::new(timing.recovered_after);
        let t0 = Instant::now();
        health.failed(Kind::Node, t0);
        health.settle(&handle, t0 + Duration::from_secs(30), true);
        assert!(!handle.status().synced, "synced within one backoff period");
    }
}
