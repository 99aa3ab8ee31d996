//! Kubernetes awareness: which namespace, pod, workload, service and node sent and received
//! each flow.
//!
//! A source (the Kubernetes API, or a `kubectl get pods,svc,nodes -A -o json` file) keeps a
//! [`ClusterState`] up to date and publishes immutable [`PodMap`] snapshots through a
//! [`PodMapHandle`]; the flow pipeline loads the current snapshot without a lock and
//! attributes each flow once, when its record is written, to the pod that held each address
//! at the flow's start (pod IPs are reused; deleted pods stay in the map for a while).

mod file;
mod map;
mod state;

#[cfg(feature = "api")]
mod api;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::cache::Cache;
use arc_swap::{ArcSwap, Guard};

#[cfg(feature = "api")]
pub use api::{spawn_api_source, spawn_api_source_with, ApiTiming};
pub use file::{load_pods_file, spawn_file_source};
pub use map::{
    Attribution, LastLookups, Peer, PodInfo, PodMap, ServiceInfo, ATTRIBUTION_COLUMNS,
    HOST_NETWORK, UNKNOWN,
};
pub use state::{ClusterState, Kind, DELETED_POD_HISTORY_NS};

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("cannot read the pods file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the pods file {path} is not what `kubectl get pods,svc,nodes -A -o json` writes: {reason}"
    )]
    BadFile { path: PathBuf, reason: String },
    #[error("cannot reach the Kubernetes API: {0}")]
    Api(String),
    #[error("cannot start the pod-map thread: {0}")]
    Thread(std::io::Error),
}

/// Where the pod map comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodSource {
    /// A `kubectl get pods,svc,nodes -A -o json` file (ReplicaSets too if listed), reloaded
    /// when it changes.
    File(PathBuf),
    /// The API server: in-cluster service account or kubeconfig (`None`), or a plain URL
    /// such as `kubectl proxy`'s `http://127.0.0.1:8001`.
    Api { url: Option<String> },
}

/// One writer's view of the current map, for a load per flow record: a check of one pointer
/// (arc-swap's `Cache`) while the map is unchanged, where [`PodMapHandle::load`] pays a full
/// guarded load (`extract --pods`, 1.07 M flows: ~1 % of the run's CPU samples).
pub struct PodMapReader {
    map: Cache<HandleMap, Arc<PodMap>>,
    last: LastLookups,
}

struct HandleMap(Arc<PodMapHandle>);

impl std::ops::Deref for HandleMap {
    type Target = ArcSwap<PodMap>;

    fn deref(&self) -> &ArcSwap<PodMap> {
        &self.0.map
    }
}

impl PodMapReader {
    pub fn new(handle: Arc<PodMapHandle>) -> Self {
        PodMapReader {
            map: Cache::new(HandleMap(handle)),
            last: LastLookups::default(),
        }
    }

    /// The current snapshot, and this reader's last lookups for its record writers
    /// ([`PodMap::for_each_value`], [`PodMap::for_each_csv_piece`]).
    pub fn current(&mut self) -> (&PodMap, &mut LastLookups) {
        (self.map.load(), &mut self.last)
    }
}

/// How a source is doing, for `/metrics` and the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStatus {
    /// The map reflects the source now (false while unreachable or before the first load).
    pub synced: bool,
    /// Failed reads or requests so far.
    pub errors: u64,
    /// Pods in the current map.
    pub pods: u64,
    pub last_error: Option<String>,
}

/// The current pod map, shared between a source's thread (which publishes) and the
/// pipeline (which reads). Sources stop when nothing else holds the handle.
#[derive(Debug)]
pub struct PodMapHandle {
    map: ArcSwap<PodMap>,
    synced: AtomicBool,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Default for PodMapHandle {
    fn default() -> Self {
        PodMapHandle {
            map: ArcSwap::from_pointee(PodMap::not_loaded()),
            synced: AtomicBool::new(false),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }
}

impl PodMapHandle {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A handle with a fixed map (tests, and files that are not reloaded).
    pub fn fixed(map: PodMap) -> Arc<Self> {
        let handle = Self::new();
        handle.publish(map);
        handle
    }

    /// The current snapshot: no lock, no allocation.
    pub fn load(&self) -> Guard<Arc<PodMap>> {
        self.map.load()
    }

    pub fn publish(&self, map: PodMap) {
        self.map.store(Arc::new(map));
        self.synced.store(true, Ordering::Relaxed);
    }

    /// The map is current again without a new one (a watch reopened on a quiet cluster).
    #[cfg(feature = "api")]
    pub(crate) fn mark_synced(&self) {
        self.synced.store(true, Ordering::Relaxed);
    }

    /// The map may be out of date (a watch failed lately), though parts of it were updated.
    #[cfg(feature = "api")]
    pub(crate) fn mark_stale(&self) {
        self.synced.store(false, Ordering::Relaxed);
    }

    /// A failed read or request: the last good map stays, marked out of date.
    pub fn failed(&self, error: String) {
        tracing::warn!("pod map: {error}");
        self.synced.store(false, Ordering::Relaxed);
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error);
        }
    }

    pub fn status(&self) -> SourceStatus {
        SourceStatus {
            synced: self.synced.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            pods: self.load().pods() as u64,
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }

    /// Waits until the map is synced, at most `limit`; says whether it is.
    pub fn wait_synced(&self, limit: Duration) -> bool {
        let start = Instant::now();
        while !self.synced.load(Ordering::Relaxed) {
            if start.elapsed() >= limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Whether the pipeline still holds the handle (a source's thread holds one more).
    fn wanted(self: &Arc<Self>) -> bool {
        Arc::strong_count(self) > 1
    }
}

/// Opens `source`: a file is read now (a bad file is an error here); the API is connected
/// to on a thread of its own, and the map says `unknown` until its first listing arrives.
pub fn open(source: &PodSource) -> Result<Arc<PodMapHandle>, KubeError> {
    let handle = PodMapHandle::new();
    match source {
        PodSource::File(path) => spawn_file_source(path.clone(), Arc::clone(&handle))?,
        #[cfg(feature = "api")]
        PodSource::Api { url } => spawn_api_source(url.clone(), Arc::clone(&handle))?,
        #[cfg(not(feature = "api"))]
        PodSource::Api { .. } => {
            return Err(KubeError::Api(
                "this nadir was built without the Kubernetes API client (feature `api`)".into(),
            ))
        }
    }
    Ok(handle)
}

/// Now, ns since the Unix epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
