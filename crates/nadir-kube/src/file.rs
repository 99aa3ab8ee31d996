//! The file source: `kubectl get pods,svc,nodes -A -o json` (a `List`, or any single
//! `PodList`/`ServiceList`/...), reloaded when it changes; a bad reload keeps the last good map.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use serde_json::Value;

use crate::{ClusterState, KubeError, PodMapHandle};

/// How often the file's modification time is checked.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

fn bad(path: &Path, reason: impl Into<String>) -> KubeError {
    KubeError::BadFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn typed<T: serde::de::DeserializeOwned>(
    item: Value,
    path: &Path,
    index: usize,
) -> Result<T, KubeError> {
    serde_json::from_value(item).map_err(|e| bad(path, format!("item {index}: {e}")))
}

/// Reads a pods file into a cluster state.
pub fn load_pods_file(path: &Path) -> Result<ClusterState, KubeError> {
    let text = std::fs::read(path).map_err(|source| KubeError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let mut root: Value = serde_json::from_slice(&text).map_err(|e| bad(path, e.to_string()))?;
    // A `PodList`'s items carry no `kind` of their own.
    let list_kind = root
        .get("kind")
        .and_then(Value::as_str)
        .and_then(|k| k.strip_suffix("List"))
        .filter(|k| !k.is_empty())
        .map(str::to_string);
    let items = match root.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => items,
        _ if root.get("kind").is_some() => vec![root],
        _ => return Err(bad(path, "no `items` list and no `kind`")),
    };
    let mut state = ClusterState::new();
    for (index, item) in items.into_iter().enumerate() {
        let kind = item
            .get("kind")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| list_kind.clone())
            .ok_or_else(|| bad(path, format!("item {index} has no `kind`")))?;
        match kind.as_str() {
            "Pod" => state.apply_pod(&typed::<Pod>(item, path, index)?),
            "Service" => state.apply_service(&typed::<Service>(item, path, index)?),
            "Node" => state.apply_node(&typed::<Node>(item, path, index)?),
            "ReplicaSet" => state.apply_replicaset(&typed::<ReplicaSet>(item, path, index)?),
            _ => {} // Deployments, Endpoints...: not needed for the map.
        }
    }
    Ok(state)
}

fn modified(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Loads `path` into `handle` now (an error here is the caller's), then reloads it on a thread
/// whenever it changes, for as long as anyone else holds the handle.
pub fn spawn_file_source(path: PathBuf, handle: Arc<PodMapHandle>) -> Result<(), KubeError> {
    let mut stamp = modified(&path);
    handle.publish(load_pods_file(&path)?.snapshot());
    std::thread::Builder::new()
        .name("nadir-pods-file".into())
        .spawn(move || {
            while handle.wanted() {
                std::thread::sleep(RELOAD_CHECK);
                let now = modified(&path);
                if now == stamp {
                    continue;
                }
                stamp = now;
                match load_pods_file(&path) {
                    Ok(mut state) => {
                        handle.publish(state.snapshot());
                        tracing::info!("pod map: reloaded {}", path.display());
                    }
                    Err(e) => handle.failed(format!("{e}; keeping the last good map")),
                }
            }
        })
        .map_err(KubeError::Thread)?;
    Ok(())
}
