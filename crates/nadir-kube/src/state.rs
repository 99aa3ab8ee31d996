//! What a source knows of the cluster (pods, services, nodes, ReplicaSets), kept up to date
//! by list and watch events, and turned into [`PodMap`] snapshots.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

use crate::map::{PodInfo, PodMap, ServiceInfo, SharedNames};

/// How long a deleted pod stays in the map: a flow that started before the deletion is still
/// attributed to it when its record is written (flows last up to the active timeout, 120 s by
/// default, plus the time their record waits).
pub const DELETED_POD_HISTORY_NS: i64 = 600 * 1_000_000_000;

/// The kinds a source lists and watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Pod,
    Service,
    Node,
    ReplicaSet,
}

#[derive(Debug)]
struct PodRecord {
    info: Arc<PodInfo>,
    /// The pod's direct owner (`ReplicaSet`, `StatefulSet`, ...), resolved at snapshot time.
    owner: Option<(Arc<str>, Arc<str>)>,
    pod_template_hash: Option<Arc<str>>,
    deleted_ns: Option<i64>,
}

/// Maps keyed by names and uids the cluster gave its objects: foldhash rather than SipHash
/// (hashing and rehashing the keys of a 10,000-pod file was a tenth of reading it, perf).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// `namespace/name` -> the ReplicaSet's own owner (kind, name): one string, so that a pod's
/// owner is looked up through a reused buffer, not two new strings per pod.
type ReplicaSetOwners = Map<String, Option<(String, String)>>;

/// The cluster as events describe it. Objects are keyed by uid (name for nodes).
#[derive(Debug, Default)]
pub struct ClusterState {
    /// By uid, the key shared with the pod's [`PodInfo::uid`].
    pods: Map<Arc<str>, PodRecord>,
    services: Map<String, Arc<ServiceInfo>>,
    nodes: Map<String, Vec<IpAddr>>,
    replicasets: ReplicaSetOwners,
    /// uid -> `namespace/name`.
    replicaset_uids: Map<String, String>,
    /// Keys seen since a relist of that kind began.
    relisting: HashMap<Kind, HashSet<String>>,
    /// Reused for each pod's workload.
    workload: String,
    names: SharedNames,
}

fn time_ns(time: &Option<Time>) -> Option<i64> {
    time.as_ref()
        .and_then(|t| i64::try_from(t.0.as_nanosecond()).ok())
}

fn controller(meta: &ObjectMeta) -> Option<&OwnerReference> {
    let owners = meta.owner_references.as_deref()?;
    owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or(owners.first())
}

/// `kind/name`, the kind in lower case (`deployment/web`).
fn put_workload(out: &mut String, kind: &str, name: &str) {
    let start = out.len();
    out.push_str(kind);
    out[start..].make_ascii_lowercase();
    out.push('/');
    out.push_str(name);
}

fn key(meta: &ObjectMeta) -> String {
    key_of(meta.uid.as_deref(), ns(meta), name(meta))
}

fn key_of(uid: Option<&str>, namespace: &str, name: &str) -> String {
    uid.map_or_else(|| format!("{namespace}/{name}"), str::to_string)
}

/// The fields of a pod the map uses, borrowed from wherever it was read.
pub(crate) struct PodFacts<'a> {
    pub uid: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    pub labels: Vec<(&'a str, &'a str)>,
    /// The controller owner (kind, name).
    pub owner: Option<(&'a str, &'a str)>,
    pub containers: Vec<&'a str>,
    pub node: Option<&'a str>,
    pub host_network: bool,
    /// `podIP` first, then `podIPs`.
    pub ips: Vec<&'a str>,
    pub since_ns: Option<i64>,
}

/// The fields of a service the map uses.
pub(crate) struct ServiceFacts<'a> {
    pub uid: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    /// `clusterIP` first, then `clusterIPs`.
    pub cluster_ips: Vec<&'a str>,
    pub selector: Vec<(&'a str, &'a str)>,
}

fn ns(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("default")
}

fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("")
}

fn parse_ips<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = texts.into_iter().filter_map(|t| t.parse().ok()).collect();
    ips.dedup();
    ips
}

impl ClusterState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the start of a full listing of `kind`: objects the listing does not name are
    /// removed when it ends ([`ClusterState::end_relist`]).
    pub fn begin_relist(&mut self, kind: Kind) {
        self.relisting.insert(kind, HashSet::new());
    }

    /// Ends a listing: what it did not name was deleted while nadir was not watching
    /// (deleted at `now_ns`, as far as anyone can tell).
    pub fn end_relist(&mut self, kind: Kind, now_ns: i64) {
        let Some(seen) = self.relisting.remove(&kind) else {
            return;
        };
        match kind {
            Kind::Pod => {
                for (uid, pod) in &mut self.pods {
                    if !seen.contains(&**uid) && pod.deleted_ns.is_none() {
                        pod.deleted_ns = Some(now_ns);
                    }
                }
            }
            Kind::Service => self.services.retain(|k, _| seen.contains(k)),
            Kind::Node => self.nodes.retain(|k, _| seen.contains(k)),
            Kind::ReplicaSet => {
                let gone: Vec<String> = self
                    .replicaset_uids
                    .keys()
                    .filter(|k| !seen.contains(*k))
                    .cloned()
                    .collect();
                for uid in gone {
                    if let Some(id) = self.replicaset_uids.remove(&uid) {
                        self.replicasets.remove(&id);
                    }
                }
            }
        }
    }

    fn seen(&mut self, kind: Kind, key: &str) {
        if let Some(set) = self.relisting.get_mut(&kind) {
            set.insert(key.to_string());
        }
    }

    pub fn apply_pod(&mut self, pod: &Pod) {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let mut ips: Vec<&str> = status
            .and_then(|s| s.pod_ips.as_ref())
            .map(|ips| ips.iter().map(|p| p.ip.as_str()).collect())
            .unwrap_or_default();
        if let Some(ip) = status.and_then(|s| s.pod_ip.as_deref()) {
            ips.insert(0, ip);
        }
        self.insert_pod(PodFacts {
            uid: meta.uid.as_deref(),
            namespace: meta.namespace.as_deref(),
            name: meta.name.as_deref(),
            labels: meta
                .labels
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            owner: controller(meta).map(|o| (o.kind.as_str(), o.name.as_str())),
            containers: spec
                .map(|s| s.containers.iter().map(|c| c.name.as_str()).collect())
                .unwrap_or_default(),
            node: spec.and_then(|s| s.node_name.as_deref()),
            host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
            ips,
            since_ns: time_ns(&meta.creation_timestamp),
        });
    }

    /// A pod as [`PodFacts`] describes it (from the API's typed `Pod` or the pods file).
    pub(crate) fn insert_pod(&mut self, pod: PodFacts<'_>) {
        let namespace = pod.namespace.unwrap_or("default");
        let name = pod.name.unwrap_or("");
        let key = key_of(pod.uid, namespace, name);
        self.seen(Kind::Pod, &key);
        let names = &mut self.names;
        let owner = pod.owner.map(|(k, n)| (names.get(k), names.get(n)));
        let pod_template_hash = pod
            .labels
            .iter()
            .find(|(k, _)| *k == "pod-template-hash")
            .map(|(_, v)| names.get(v));
        let record = Owned {
            namespace,
            name,
            owner: owner.as_ref().map(|(k, n)| (&**k, &**n)),
            pod_template_hash: pod_template_hash.as_deref(),
        };
        // Resolved with the ReplicaSets known now; `snapshot` resolves again.
        record.write_workload(&self.replicasets, &mut self.workload);
        let uid: Arc<str> = Arc::from(key);
        let info = PodInfo {
            uid: Arc::clone(&uid),
            namespace: names.get(namespace),
            name: Arc::from(name),
            containers: pod.containers.iter().map(|c| names.get(c)).collect(),
            workload: names.get(&self.workload),
            labels: pod
                .labels
                .iter()
                .map(|(k, v)| (names.get(k), names.get(v)))
                .collect(),
            node: pod.node.map(|node| names.get(node)),
            host_network: pod.host_network,
            ips: parse_ips(pod.ips),
            since_ns: pod.since_ns.unwrap_or(i64::MIN),
        };
        // A finished pod (Succeeded/Failed) keeps its entry: the IP's next holder ends its
        // hold (see `PodMap::build`).
        self.pods.insert(
            uid,
            PodRecord {
                info: Arc::new(info),
                owner,
                pod_template_hash,
                deleted_ns: None,
            },
        );
    }

    pub fn delete_pod(&mut self, pod: &Pod, at_ns: i64) {
        if let Some(record) = self.pods.get_mut(key(&pod.metadata).as_str()) {
            record.deleted_ns.get_or_insert(at_ns);
        }
    }

    pub fn apply_service(&mut self, service: &Service) {
        let meta = &service.metadata;
        let spec = service.spec.as_ref();
        let mut ips: Vec<&str> = spec
            .and_then(|s| s.cluster_ips.as_ref())
            .map(|ips| ips.iter().map(String::as_str).collect())
            .unwrap_or_default();
        if let Some(ip) = spec.and_then(|s| s.cluster_ip.as_deref()) {
            ips.insert(0, ip);
        }
        self.insert_service(ServiceFacts {
            uid: meta.uid.as_deref(),
            namespace: meta.namespace.as_deref(),
            name: meta.name.as_deref(),
            cluster_ips: ips,
            selector: spec
                .and_then(|s| s.selector.as_ref())
                .iter()
                .flat_map(|l| l.iter())
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        });
    }

    pub(crate) fn insert_service(&mut self, service: ServiceFacts<'_>) {
        let namespace = service.namespace.unwrap_or("default");
        let name = service.name.unwrap_or("");
        let key = key_of(service.uid, namespace, name);
        self.seen(Kind::Service, &key);
        let names = &mut self.names;
        let mut selector: Vec<(Arc<str>, Arc<str>)> = service
            .selector
            .iter()
            .map(|(k, v)| (names.get(k), names.get(v)))
            .collect();
        selector.sort();
        let info = ServiceInfo {
            namespace: Arc::from(namespace),
            name: Arc::from(name),
            cluster_ips: parse_ips(service.cluster_ips), // "None" (headless) does not parse.
            selector,
        };
        self.services.insert(key, Arc::new(info));
    }

    pub fn delete_service(&mut self, service: &Service) {
        self.services.remove(&key(&service.metadata));
    }

    pub fn apply_node(&mut self, node: &Node) {
        let addresses = node
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .iter()
            .flat_map(|list| list.iter())
            .map(|a| (a.type_.as_str(), a.address.as_str()))
            .collect();
        self.insert_node(name(&node.metadata), addresses);
    }

    /// `addresses` are (type, address): only internal and external ones name the node.
    pub(crate) fn insert_node(&mut self, node_name: &str, addresses: Vec<(&str, &str)>) {
        self.seen(Kind::Node, node_name);
        let ips = parse_ips(
            addresses
                .into_iter()
                .filter(|(t, _)| *t == "InternalIP" || *t == "ExternalIP")
                .map(|(_, a)| a),
        );
        self.nodes.insert(node_name.to_string(), ips);
    }

    pub fn delete_node(&mut self, node: &Node) {
        self.nodes.remove(name(&node.metadata));
    }

    pub fn apply_replicaset(&mut self, rs: &ReplicaSet) {
        let meta = &rs.metadata;
        self.insert_replicaset(
            meta.uid.as_deref(),
            meta.namespace.as_deref(),
            meta.name.as_deref(),
            controller(meta).map(|o| (o.kind.as_str(), o.name.as_str())),
        );
    }

    /// `owner` is the ReplicaSet's controller (kind, name).
    pub(crate) fn insert_replicaset(
        &mut self,
        uid: Option<&str>,
        namespace: Option<&str>,
        name: Option<&str>,
        owner: Option<(&str, &str)>,
    ) {
        let namespace = namespace.unwrap_or("default");
        let name = name.unwrap_or("");
        let key = key_of(uid, namespace, name);
        self.seen(Kind::ReplicaSet, &key);
        let id = format!("{namespace}/{name}");
        let owner = owner.map(|(k, n)| (k.to_string(), n.to_string()));
        self.replicasets.insert(id.clone(), owner);
        self.replicaset_uids.insert(key, id);
    }

    pub fn delete_replicaset(&mut self, rs: &ReplicaSet) {
        if let Some(id) = self.replicaset_uids.remove(&key(&rs.metadata)) {
            self.replicasets.remove(&id);
        }
    }

    /// Pods deleted more than [`DELETED_POD_HISTORY_NS`] before `now_ns` are forgotten.
    pub fn prune(&mut self, now_ns: i64) {
        self.pods.retain(|_, p| {
            p.deleted_ns
                .is_none_or(|d| now_ns.saturating_sub(d) < DELETED_POD_HISTORY_NS)
        });
        self.names.prune();
    }

    /// Pods known, deleted ones still in history included.
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// The map as it stands (owners resolved now: a ReplicaSet may arrive after its pods).
    pub fn snapshot(&mut self) -> PodMap {
        let workload = &mut self.workload;
        for record in self.pods.values_mut() {
            let owned = Owned {
                namespace: &record.info.namespace,
                name: &record.info.name,
                owner: record.owner.as_ref().map(|(k, n)| (&**k, &**n)),
                pod_template_hash: record.pod_template_hash.as_deref(),
            };
            owned.write_workload(&self.replicasets, workload);
            if *record.info.workload != *workload {
                // In place unless an earlier snapshot still holds the pod (a pods file's first
                // snapshot: 10,000 pods' labels and containers not copied).
                Arc::make_mut(&mut record.info).workload = self.names.get(workload);
            }
        }
        let services: Vec<Arc<ServiceInfo>> = self.services.values().cloned().collect();
        let pods = self
            .pods
            .values()
            .map(|record| (Arc::clone(&record.info), record.deleted_ns));
        let nodes = self.nodes.iter().flat_map(|(name, ips)| {
            let name: Arc<str> = Arc::from(name.as_str());
            ips.iter().map(move |ip| (*ip, Arc::clone(&name)))
        });
        PodMap::build(pods, &services, nodes)
    }
}

/// What names a pod's workload.
struct Owned<'a> {
    namespace: &'a str,
    name: &'a str,
    /// The controller owner (kind, name).
    owner: Option<(&'a str, &'a str)>,
    pod_template_hash: Option<&'a str>,
}

impl Owned<'_> {
    /// Writes `kind/name` of what runs the pod into `out`: a ReplicaSet is resolved to its
    /// Deployment (from the ReplicaSet itself when known, else from the `pod-template-hash`
    /// suffix the Deployment controller gives its ReplicaSets' names), a Job stays a job.
    fn write_workload(&self, replicasets: &ReplicaSetOwners, out: &mut String) {
        out.clear();
        let Some((kind, owner)) = self.owner else {
            return put_workload(out, "pod", self.name);
        };
        if kind == "ReplicaSet" {
            // The ReplicaSet's `namespace/name` key, written without `fmt` (twice per pod).
            out.push_str(self.namespace);
            out.push('/');
            out.push_str(owner);
            let replicaset = replicasets.get(out.as_str());
            out.clear();
            match replicaset {
                Some(Some((rs_owner_kind, rs_owner))) => {
                    return put_workload(out, rs_owner_kind, rs_owner);
                }
                Some(None) => return put_workload(out, kind, owner),
                None => {}
            }
            let deployment = self
                .pod_template_hash
                .and_then(|hash| owner.strip_suffix(hash)?.strip_suffix('-'));
            if let Some(deployment) = deployment {
                return put_workload(out, "Deployment", deployment);
            }
        }
        put_workload(out, kind, owner);
    }
}
