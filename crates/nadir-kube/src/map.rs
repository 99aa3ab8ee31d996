//! The pod map: an immutable snapshot of who held which IP when, and the attribution of a
//! flow's endpoints through it.
//!
//! Readers (the flow pipeline) load the current snapshot through [`crate::PodMapHandle`]
//! without a lock and look up each flow once, when its record is written: never per packet.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, Serializer};

/// One pod, as records name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    pub uid: Arc<str>,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub containers: Vec<Arc<str>>,
    /// The owning workload as `kind/name` (`deployment/web`: ReplicaSets resolved to their
    /// Deployment), or `pod/NAME` for a pod nothing owns.
    pub workload: Arc<str>,
    pub labels: Vec<(String, String)>,
    pub node: Option<Arc<str>>,
    pub host_network: bool,
    pub ips: Vec<IpAddr>,
    /// When the pod was created (ns since the epoch): it cannot have held an IP before.
    pub since_ns: i64,
}

/// A service: its cluster IPs name it directly; its selector names the pods behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub cluster_ips: Vec<IpAddr>,
    /// Empty: a service without a selector (its endpoints are managed by hand).
    pub selector: Vec<(String, String)>,
}

impl ServiceInfo {
    pub fn selects(&self, pod: &PodInfo) -> bool {
        !self.selector.is_empty()
            && *self.namespace == *pod.namespace
            && self
                .selector
                .iter()
                .all(|(k, v)| pod.labels.iter().any(|(pk, pv)| pk == k && pv == v))
    }
}

/// A pod's hold on one IP, from `since_ns` until `until_ns` (exclusive).
#[derive(Debug, Clone)]
struct Holder {
    since_ns: i64,
    until_ns: i64,
    pod: Arc<PodInfo>,
    /// Services selecting the pod, comma-separated.
    services: Option<Arc<str>>,
}

/// Who is behind one address at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    pub namespace: Option<Arc<str>>,
    pub pod: Option<Arc<str>>,
    pub workload: Option<Arc<str>>,
    pub service: Option<Arc<str>>,
    pub node: Option<Arc<str>>,
}

/// The enrichment columns, in the order they are appended to records.
pub const ATTRIBUTION_COLUMNS: [&str; 13] = [
    "src_namespace",
    "src_pod",
    "src_workload",
    "src_node",
    "dst_namespace",
    "dst_pod",
    "dst_workload",
    "dst_service",
    "dst_node",
    "tunnel_src_ip",
    "tunnel_src_node",
    "tunnel_dst_ip",
    "tunnel_dst_node",
];

/// What `workload` says of an address on a node's own network namespace: the node itself
/// or any pod with `hostNetwork: true` there, which the address cannot tell apart.
pub const HOST_NETWORK: &str = "host-network";
/// What every column says while the map has not been loaded yet (the API is unreachable).
pub const UNKNOWN: &str = "unknown";

/// Both endpoints of a flow (and of its outer tunnel) attributed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    pub src: Peer,
    pub dst: Peer,
    pub tunnel: Option<(IpAddr, Option<Arc<str>>, IpAddr, Option<Arc<str>>)>,
    /// The map was not loaded: every column reads `unknown`.
    pub unknown: bool,
}

impl Attribution {
    /// The values of [`ATTRIBUTION_COLUMNS`], in order (`""`: nothing known of it).
    pub fn for_each_value(&self, mut put: impl FnMut(&str)) {
        if self.unknown {
            for _ in 0..9 {
                put(UNKNOWN);
            }
        } else {
            let mut text = |v: &Option<Arc<str>>| put(v.as_deref().unwrap_or(""));
            text(&self.src.namespace);
            text(&self.src.pod);
            text(&self.src.workload);
            text(&self.src.node);
            text(&self.dst.namespace);
            text(&self.dst.pod);
            text(&self.dst.workload);
            text(&self.dst.service);
            text(&self.dst.node);
        }
        match &self.tunnel {
            Some((src, src_node, dst, dst_node)) => {
                let mut ip = String::with_capacity(40);
                use std::fmt::Write;
                let _ = write!(ip, "{src}");
                put(&ip);
                put(src_node.as_deref().unwrap_or(""));
                ip.clear();
                let _ = write!(ip, "{dst}");
                put(&ip);
                put(dst_node.as_deref().unwrap_or(""));
            }
            None => (0..4).for_each(|_| put("")),
        }
    }

    /// `namespace/workload` of the source, for grouping alerts.
    pub fn src_workload(&self) -> Option<String> {
        workload_key(&self.src)
    }

    pub fn dst_workload(&self) -> Option<String> {
        workload_key(&self.dst)
    }
}

fn workload_key(peer: &Peer) -> Option<String> {
    match (&peer.namespace, &peer.workload) {
        (Some(ns), Some(w)) => Some(format!("{ns}/{w}")),
        (None, Some(w)) => Some(w.to_string()),
        _ => None,
    }
}

/// Records carry the columns as flat fields (JSON lines: `"src_pod": "web-1"`, ...).
impl Serialize for Attribution {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(ATTRIBUTION_COLUMNS.len()))?;
        let mut values = Vec::with_capacity(ATTRIBUTION_COLUMNS.len());
        self.for_each_value(|v| values.push(v.to_string()));
        for (name, value) in ATTRIBUTION_COLUMNS.iter().zip(&values) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// An immutable pod map; build one with [`crate::ClusterState::snapshot`].
#[derive(Debug, Default)]
pub struct PodMap {
    holders: HashMap<IpAddr, Vec<Holder>>,
    services: HashMap<IpAddr, Arc<ServiceInfo>>,
    nodes: HashMap<IpAddr, Arc<str>>,
    pods: usize,
    /// False until a source delivered its first complete view.
    loaded: bool,
}

impl PodMap {
    /// The empty map of a source that has not loaded yet: attribution says `unknown`.
    pub fn not_loaded() -> Self {
        PodMap::default()
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Pods in the map (deleted ones kept for history included).
    pub fn pods(&self) -> usize {
        self.pods
    }

    pub(crate) fn build(
        pods: impl IntoIterator<Item = (Arc<PodInfo>, Option<i64>)>,
        services: &[Arc<ServiceInfo>],
        nodes: impl IntoIterator<Item = (IpAddr, Arc<str>)>,
    ) -> Self {
        let mut by_namespace: HashMap<&str, Vec<&ServiceInfo>> = HashMap::new();
        let mut service_ips = HashMap::new();
        for service in services {
            by_namespace
                .entry(&service.namespace)
                .or_default()
                .push(service);
            for ip in &service.cluster_ips {
                service_ips.insert(*ip, Arc::clone(service));
            }
        }
        let mut holders: HashMap<IpAddr, Vec<Holder>> = HashMap::new();
        let mut count = 0;
        for (pod, deleted_ns) in pods {
            count += 1;
            if pod.host_network {
                continue; // its address is the node's: named by the node.
            }
            let mut names: Vec<&str> = by_namespace
                .get(&*pod.namespace)
                .map(|list| {
                    list.iter()
                        .filter(|s| s.selects(&pod))
                        .map(|s| &*s.name)
                        .collect()
                })
                .unwrap_or_default();
            // Services come out of a HashMap: sorted, so records are the same from run to run.
            names.sort_unstable();
            let services = (!names.is_empty()).then(|| Arc::from(names.join(",")));
            for ip in &pod.ips {
                holders.entry(*ip).or_default().push(Holder {
                    since_ns: pod.since_ns,
                    until_ns: deleted_ns.unwrap_or(i64::MAX),
                    pod: Arc::clone(&pod),
                    services: services.clone(),
                });
            }
        }
        // A later holder of the same IP ends the earlier one's hold, whatever the events
        // said (a deletion may arrive after the IP was reused).
        for list in holders.values_mut() {
            list.sort_by_key(|h| h.since_ns);
            for i in 1..list.len() {
                let next_since = list[i].since_ns;
                let previous = &mut list[i - 1];
                previous.until_ns = previous.until_ns.min(next_since);
            }
        }
        PodMap {
            holders,
            services: service_ips,
            nodes: nodes.into_iter().collect(),
            pods: count,
            loaded: true,
        }
    }

    /// Who had `ip` at `at_ns`: the pod that held it then, a service's cluster IP, a node
    /// (host network), or nothing known (an address outside the cluster, or a pod IP at a
    /// moment no known pod held it).
    pub fn peer(&self, ip: IpAddr, at_ns: i64) -> Peer {
        if let Some(list) = self.holders.get(&ip) {
            if let Some(h) = list
                .iter()
                .rev()
                .find(|h| h.since_ns <= at_ns && at_ns < h.until_ns)
            {
                return Peer {
                    namespace: Some(Arc::clone(&h.pod.namespace)),
                    pod: Some(Arc::clone(&h.pod.name)),
                    workload: Some(Arc::clone(&h.pod.workload)),
                    service: h.services.clone(),
                    node: h.pod.node.clone(),
                };
            }
        }
        if let Some(service) = self.services.get(&ip) {
            return Peer {
                namespace: Some(Arc::clone(&service.namespace)),
                service: Some(Arc::clone(&service.name)),
                ..Peer::default()
            };
        }
        if let Some(node) = self.nodes.get(&ip) {
            return Peer {
                workload: Some(Arc::from(HOST_NETWORK)),
                node: Some(Arc::clone(node)),
                ..Peer::default()
            };
        }
        Peer::default()
    }

    /// Attributes a flow that started at `start_ns` (inner addresses; the outer tunnel's
    /// endpoints are named as nodes).
    pub fn attribute(
        &self,
        src: IpAddr,
        dst: IpAddr,
        tunnel: Option<(IpAddr, IpAddr)>,
        start_ns: i64,
    ) -> Attribution {
        let tunnel = tunnel.map(|(outer_src, outer_dst)| {
            (
                outer_src,
                self.nodes.get(&outer_src).cloned(),
                outer_dst,
                self.nodes.get(&outer_dst).cloned(),
            )
        });
        if !self.loaded {
            return Attribution {
                tunnel,
                unknown: true,
                ..Attribution::default()
            };
        }
        Attribution {
            src: self.peer(src, start_ns),
            dst: self.peer(dst, start_ns),
            tunnel,
            unknown: false,
        }
    }
}
