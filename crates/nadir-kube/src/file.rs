//! The file source: `kubectl get pods,svc,nodes -A -o json` (a `List`, or any single
//! `PodList`/`ServiceList`/...), reloaded when it changes; a bad reload keeps the last good map.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::state::{PodFacts, ServiceFacts};
use crate::{ClusterState, KubeError, PodMapHandle};

/// How often the file's modification time is checked.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

fn bad(path: &Path, reason: impl Into<String>) -> KubeError {
    KubeError::BadFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

// Only the fields the map uses, borrowed from the file's text where no escape forces a copy.
// Through `serde_json::Value` and the k8s-openapi types, a 10k-pod, 4 MB file took ~0.2 s
// and 75 MB RSS to read; these structs take half the time and a quarter of the memory
// (figures on `load_pods_file`).

/// A string, borrowed unless it holds an escape.
#[derive(Deserialize, PartialEq, Eq, PartialOrd, Ord)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'a> Text<'a> {
    fn as_str(&self) -> &str {
        &self.0
    }
}

fn text<'t>(value: &'t Option<Text<'_>>) -> Option<&'t str> {
    value.as_ref().map(Text::as_str)
}

type Labels<'a> = BTreeMap<Text<'a>, Text<'a>>;

fn pairs<'t>(labels: &'t Option<Labels<'_>>) -> Vec<(&'t str, &'t str)> {
    labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[derive(Deserialize)]
struct Root<'a> {
    #[serde(borrow)]
    kind: Option<Text<'a>>,
    /// Parsed once its item's kind is known.
    #[serde(borrow)]
    items: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow)]
    spec: Option<&'a RawValue>,
    #[serde(borrow)]
    status: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Meta<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(borrow)]
    namespace: Option<Text<'a>>,
    #[serde(borrow)]
    uid: Option<Text<'a>>,
    creation_timestamp: Option<Time>,
    #[serde(borrow)]
    labels: Option<Labels<'a>>,
    #[serde(borrow)]
    owner_references: Option<Vec<Owner<'a>>>,
}

#[derive(Deserialize)]
struct Owner<'a> {
    #[serde(borrow)]
    kind: Text<'a>,
    #[serde(borrow)]
    name: Text<'a>,
    controller: Option<bool>,
}

impl Meta<'_> {
    /// The controller, else the first owner (as the API source picks).
    fn owner(&self) -> Option<(&str, &str)> {
        let owners = self.owner_references.as_deref()?;
        owners
            .iter()
            .find(|o| o.controller == Some(true))
            .or(owners.first())
            .map(|o| (o.kind.as_str(), o.name.as_str()))
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodSpec<'a> {
    #[serde(borrow, default)]
    containers: Vec<Named<'a>>,
    #[serde(borrow)]
    node_name: Option<Text<'a>>,
    host_network: Option<bool>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow)]
    name: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodStatus<'a> {
    #[serde(borrow, rename = "podIP")]
    pod_ip: Option<Text<'a>>,
    #[serde(borrow, rename = "podIPs")]
    pod_ips: Option<Vec<PodIp<'a>>>,
}

#[derive(Deserialize)]
struct PodIp<'a> {
    #[serde(borrow)]
    ip: Text<'a>,
}

#[derive(Deserialize, Default)]
struct ServiceSpec<'a> {
    #[serde(borrow, rename = "clusterIP")]
    cluster_ip: Option<Text<'a>>,
    #[serde(borrow, rename = "clusterIPs")]
    cluster_ips: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    selector: Option<Labels<'a>>,
}

#[derive(Deserialize, Default)]
struct NodeStatus<'a> {
    #[serde(borrow)]
    addresses: Option<Vec<NodeAddress<'a>>>,
}

#[derive(Deserialize)]
struct NodeAddress<'a> {
    #[serde(borrow, rename = "type")]
    type_: Text<'a>,
    #[serde(borrow)]
    address: Text<'a>,
}

/// Reads one part (`metadata`, `spec`, `status`) of an item; absent or null is the default.
fn part<'a, T: Deserialize<'a> + Default>(
    raw: Option<&'a RawValue>,
    path: &Path,
    what: &dyn Fn() -> String,
    field: &str,
) -> Result<T, KubeError> {
    match raw {
        None => Ok(T::default()),
        Some(raw) => serde_json::from_str(raw.get()).map_err(|e| {
            bad(
                path,
                format!("{}: `{field}`: {e} (within `{field}`)", what()),
            )
        }),
    }
}

fn apply_item(
    state: &mut ClusterState,
    raw: &RawValue,
    list_kind: Option<&str>,
    path: &Path,
    index: usize,
) -> Result<(), KubeError> {
    let item: Item =
        serde_json::from_str(raw.get()).map_err(|e| bad(path, format!("item {index}: {e}")))?;
    let kind = text(&item.kind)
        .or(list_kind)
        .ok_or_else(|| bad(path, format!("item {index} has no `kind`")))?;
    if !matches!(kind, "Pod" | "Service" | "Node" | "ReplicaSet") {
        return Ok(()); // Deployments, Endpoints...: not needed for the map.
    }
    let what = || format!("item {index} ({kind})");
    let meta: Meta = part(item.metadata, path, &what, "metadata")?;
    let what = || {
        let ns = text(&meta.namespace).unwrap_or("default");
        let name = text(&meta.name).unwrap_or("");
        format!("item {index} ({kind} {ns}/{name})")
    };
    match kind {
        "Pod" => {
            let spec: PodSpec = part(item.spec, path, &what, "spec")?;
            let status: PodStatus = part(item.status, path, &what, "status")?;
            let mut ips: Vec<&str> = status.pod_ip.iter().map(Text::as_str).collect();
            ips.extend(status.pod_ips.iter().flatten().map(|p| p.ip.as_str()));
            state.insert_pod(PodFacts {
                uid: text(&meta.uid),
                namespace: text(&meta.namespace),
                name: text(&meta.name),
                labels: pairs(&meta.labels),
                owner: meta.owner(),
                containers: spec.containers.iter().map(|c| c.name.as_str()).collect(),
                node: text(&spec.node_name),
                host_network: spec.host_network.unwrap_or(false),
                ips,
                since_ns: meta
                    .creation_timestamp
                    .as_ref()
                    .and_then(|t| i64::try_from(t.0.as_nanosecond()).ok()),
            });
        }
        "Service" => {
            let spec: ServiceSpec = part(item.spec, path, &what, "spec")?;
            let mut ips: Vec<&str> = spec.cluster_ip.iter().map(Text::as_str).collect();
            ips.extend(spec.cluster_ips.iter().flatten().map(Text::as_str));
            state.insert_service(ServiceFacts {
                uid: text(&meta.uid),
                namespace: text(&meta.namespace),
                name: text(&meta.name),
                cluster_ips: ips,
                selector: pairs(&spec.selector),
            });
        }
        "Node" => {
            let status: NodeStatus = part(item.status, path, &what, "status")?;
            let addresses = status
                .addresses
                .iter()
                .flatten()
                .map(|a| (a.type_.as_str(), a.address.as_str()))
                .collect();
            state.insert_node(text(&meta.name).unwrap_or(""), addresses);
        }
        _ => state.insert_replicaset(
            text(&meta.uid),
            text(&meta.namespace),
            text(&meta.name),
            meta.owner(),
        ),
    }
    Ok(())
}

/// Reads a pods file into a cluster state.
///
/// A 10k-pod, 1k-service file (4 MB, bench/kube's pods-mix.json), 2026-12-05: 0.09-0.11 s CPU
/// and 21 MB peak RSS for a whole `nadir extract` of a 35-packet capture, was 0.18-0.22 s and
/// 75 MB through `Value` + k8s-openapi (`/usr/bin/time`, three runs each).
pub fn load_pods_file(path: &Path) -> Result<ClusterState, KubeError> {
    let bytes = std::fs::read(path).map_err(|source| KubeError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let json = std::str::from_utf8(&bytes).map_err(|e| bad(path, format!("not UTF-8: {e}")))?;
    let root: Root = serde_json::from_str(json).map_err(|e| bad(path, e.to_string()))?;
    // A `PodList`'s items carry no `kind` of their own.
    let list_kind = text(&root.kind)
        .and_then(|k| k.strip_suffix("List"))
        .filter(|k| !k.is_empty());
    let mut state = ClusterState::new();
    match &root.items {
        Some(items) => {
            for (index, item) in items.iter().enumerate() {
                apply_item(&mut state, item, list_kind, path, index)?;
            }
        }
        None if root.kind.is_some() => {
            let whole: &RawValue =
                serde_json::from_str(json).map_err(|e| bad(path, e.to_string()))?;
            apply_item(&mut state, whole, None, path, 0)?;
        }
        None => return Err(bad(path, "no `items` list and no `kind`")),
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
