//! The pod map: an immutable snapshot of who held which IP when, and the attribution of a
//! flow's endpoints through it.
//!
//! Readers (the flow pipeline) load the current snapshot through [`crate::PodMapHandle`]
//! without a lock and look up each flow once, when its record is written: never per packet.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::ops::Range;
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
    pub labels: Vec<(Arc<str>, Arc<str>)>,
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
    pub selector: Vec<(Arc<str>, Arc<str>)>,
}

impl ServiceInfo {
    pub fn selects(&self, pod: &PodInfo) -> bool {
        *self.namespace == *pod.namespace && self.selects_labels(pod)
    }

    /// [`Self::selects`] for a pod already known to be in the service's namespace.
    fn selects_labels(&self, pod: &PodInfo) -> bool {
        !self.selector.is_empty()
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
    csv: PeerCsv,
}

/// Names many pods share (namespaces, nodes, workloads, labels, lists of services), each
/// held once (with each peer's two CSV texts in one allocation and one list of holders, a
/// 10,000-pod file's load went from 202 k to 82 k calls into malloc's slow path, callgrind).
#[derive(Debug, Default)]
pub(crate) struct SharedNames(HashSet<Arc<str>, foldhash::fast::RandomState>);

impl SharedNames {
    pub(crate) fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(held) = self.0.get(name) {
            return Arc::clone(held);
        }
        let held: Arc<str> = Arc::from(name);
        self.0.insert(Arc::clone(&held));
        held
    }

    /// Forgets the names only this set still holds.
    pub(crate) fn prune(&mut self) {
        self.0.retain(|name| Arc::strong_count(name) > 1);
    }
}

/// A peer's columns as CSV text, rendered when the map is built: a CSV writer copies two
/// strings per flow instead of quoting nine fields (`extract --pods`, 10,000 pods, 220 MB
/// bench capture, 1.07 M flows: the per-field writes were 0.08 s of the 0.16 s the pod
/// columns added).
#[derive(Debug, Clone)]
struct PeerCsv {
    /// `namespace,pod,workload,node` (as a source) followed by
    /// `namespace,pod,workload,service,node` (as a destination): one allocation.
    text: Box<str>,
    src_len: usize,
}

impl PeerCsv {
    fn of(peer: PeerRef) -> Self {
        let as_src = [peer.namespace, peer.pod, peer.workload, peer.node];
        let as_dst = [
            peer.namespace,
            peer.pod,
            peer.workload,
            peer.service,
            peer.node,
        ];
        // Exact room (unquoted fields and the commas between them), so that
        // `into_boxed_str` does not shrink: a reallocation and copy for each text.
        let len: usize = as_src
            .iter()
            .chain(&as_dst)
            .flatten()
            .map(|f| f.len())
            .sum();
        let mut text = String::with_capacity(len + as_src.len() + as_dst.len() - 2);
        let mut render = |fields: &[Option<&str>]| {
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                put_csv_field(field.unwrap_or(""), &mut |piece| text.push_str(piece));
            }
            text.len()
        };
        let src_len = render(&as_src);
        render(&as_dst);
        PeerCsv {
            text: text.into_boxed_str(),
            src_len,
        }
    }

    fn as_src(&self) -> &str {
        &self.text[..self.src_len]
    }

    fn as_dst(&self) -> &str {
        &self.text[self.src_len..]
    }
}

/// CSV text of a source nothing is known of, and of such a destination.
const NOTHING_AS_SRC: &str = ",,,";
const NOTHING_AS_DST: &str = ",,,,";
/// The tunnel columns of a flow outside any tunnel, with the comma before them.
const NO_TUNNEL: &str = ",,,,";
/// The nine peer columns while the map is not loaded.
const UNKNOWN_PEERS: &str =
    "unknown,unknown,unknown,unknown,unknown,unknown,unknown,unknown,unknown";

/// One CSV field, quoted when it holds a separator, quote or line break, in pieces.
fn put_csv_field(field: &str, put: &mut impl FnMut(&str)) {
    // Bytes, not a char set: the map renders two of these per pod.
    if !field
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        return put(field);
    }
    put("\"");
    for (i, part) in field.split('"').enumerate() {
        if i > 0 {
            put("\"\"");
        }
        put(part);
    }
    put("\"");
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

/// A [`Peer`] borrowed from the map: what the record writers read, without a clone.
#[derive(Debug, Clone, Copy, Default)]
struct PeerRef<'a> {
    namespace: Option<&'a str>,
    pod: Option<&'a str>,
    workload: Option<&'a str>,
    service: Option<&'a str>,
    node: Option<&'a str>,
}

impl Peer {
    fn as_ref(&self) -> PeerRef<'_> {
        PeerRef {
            namespace: self.namespace.as_deref(),
            pod: self.pod.as_deref(),
            workload: self.workload.as_deref(),
            service: self.service.as_deref(),
            node: self.node.as_deref(),
        }
    }
}

/// The outer endpoints of a tunnel and the nodes they name.
type TunnelRef<'a> = (IpAddr, Option<&'a str>, IpAddr, Option<&'a str>);

/// The one writer of the values of [`ATTRIBUTION_COLUMNS`], in order (`""`: nothing known).
fn put_columns(
    src: PeerRef,
    dst: PeerRef,
    tunnel: Option<TunnelRef>,
    unknown: bool,
    mut put: impl FnMut(&str),
) {
    if unknown {
        (0..9).for_each(|_| put(UNKNOWN));
    } else {
        for value in [
            src.namespace,
            src.pod,
            src.workload,
            src.node,
            dst.namespace,
            dst.pod,
            dst.workload,
            dst.service,
            dst.node,
        ] {
            put(value.unwrap_or(""));
        }
    }
    match tunnel {
        Some((src_ip, src_node, dst_ip, dst_node)) => {
            put(IpText::new(src_ip).as_str());
            put(src_node.unwrap_or(""));
            put(IpText::new(dst_ip).as_str());
            put(dst_node.unwrap_or(""));
        }
        None => (0..4).for_each(|_| put("")),
    }
}

/// An address as text on the stack (records are written per flow: no allocation).
struct IpText {
    buf: [u8; 48],
    len: usize,
}

impl IpText {
    fn new(ip: IpAddr) -> Self {
        use std::io::Write;
        let mut buf = [0u8; 48];
        let mut rest = &mut buf[..];
        // The longest IPv6 text is 45 bytes: it always fits.
        let _ = write!(rest, "{ip}");
        let len = 48 - rest.len();
        IpText { buf, len }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// The outer tunnel's (source, its node, destination, its node).
pub type TunnelEnds = (IpAddr, Option<Arc<str>>, IpAddr, Option<Arc<str>>);

/// Both endpoints of a flow (and of its outer tunnel) attributed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    pub src: Peer,
    pub dst: Peer,
    pub tunnel: Option<TunnelEnds>,
    /// The map was not loaded: every column reads `unknown`.
    pub unknown: bool,
}

impl Attribution {
    /// The values of [`ATTRIBUTION_COLUMNS`], in order (`""`: nothing known of it).
    pub fn for_each_value(&self, put: impl FnMut(&str)) {
        let tunnel = self
            .tunnel
            .as_ref()
            .map(|(s, sn, d, dn)| (*s, sn.as_deref(), *d, dn.as_deref()));
        put_columns(
            self.src.as_ref(),
            self.dst.as_ref(),
            tunnel,
            self.unknown,
            put,
        );
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

/// Maps keyed by address, looked up twice per flow record: foldhash rather than SipHash
/// (no untrusted party chooses the keys' hashes here: they are the cluster's own addresses
/// plus flow addresses, and a collision costs a longer probe, not correctness).
type IpMap<V> = HashMap<IpAddr, V, foldhash::fast::RandomState>;

/// An immutable pod map; build one with [`crate::ClusterState::snapshot`].
#[derive(Debug, Default)]
pub struct PodMap {
    /// What each known address is: one lookup per address of a flow, hit or miss.
    addresses: IpMap<Slot>,
    /// Every IP's holders, one run per IP, each run by start time.
    holders: Vec<Holder>,
    services: Vec<(Arc<ServiceInfo>, PeerCsv)>,
    nodes: Vec<(Arc<str>, PeerCsv)>,
    pods: usize,
    /// False until a source delivered its first complete view.
    loaded: bool,
    /// Tells this map from every other built in the process (see [`LastLookups`]).
    generation: u64,
}

/// What one address is in a [`PodMap`]: indices into its lists (`NONE`: not that).
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The address's run of holders, `holders[first..first + count]`.
    first_holder: u32,
    holder_count: u32,
    service: u32,
    node: u32,
}

impl Slot {
    const NONE: u32 = u32::MAX;
    const EMPTY: Slot = Slot {
        first_holder: 0,
        holder_count: 0,
        service: Slot::NONE,
        node: Slot::NONE,
    };
}

/// The last address looked up on each side of a flow, with what it is: a record writer's
/// consecutive flows often share an address (a scan: one source, one target, many ports),
/// and a hit skips the hash lookup (`extract --pods`, 220 MB `mix` capture: `PodMap::find`
/// was ~3 % of the run's CPU samples, this check and the lookups it still makes <1 %).
#[derive(Debug, Default)]
pub struct LastLookups {
    generation: u64,
    sides: [Option<(IpAddr, Option<Slot>)>; 2],
    /// The last flow's peer columns as CSV text: the flows after it between the same
    /// addresses that started while both were still what they were get the same text, one
    /// copy instead of two lookups and pieces (220 MB `mix` capture, where 99.6 % of flows
    /// have their predecessor's addresses: 16.5 -> 11.2 ns a flow in `examples/lookup_cost`,
    /// and the user CPU the pod columns add to `extract` 73 -> 50 ms, medians of 9).
    flow: LastFlow,
}

#[derive(Debug)]
struct LastFlow {
    src: IpAddr,
    dst: IpAddr,
    /// The start times for which `text` holds (empty until the first flow).
    span: Range<i64>,
    text: String,
}

impl Default for LastFlow {
    fn default() -> Self {
        let nowhere = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        LastFlow {
            src: nowhere,
            dst: nowhere,
            span: 0..0,
            text: String::new(),
        }
    }
}

impl LastLookups {
    /// Forgets what was looked up in another map.
    fn follow(&mut self, map: &PodMap) {
        if self.generation != map.generation {
            *self = LastLookups {
                generation: map.generation,
                ..LastLookups::default()
            };
        }
    }

    /// The nine peer columns of a flow from `src` to `dst` that started at `at_ns`, as CSV.
    fn peers_csv(&mut self, map: &PodMap, src: IpAddr, dst: IpAddr, at_ns: i64) -> &str {
        self.follow(map);
        let last = &self.flow;
        if !(last.src == src && last.dst == dst && last.span.contains(&at_ns)) {
            let (src_found, src_span) = map.found(self.slot(map, 0, src), at_ns);
            let (dst_found, dst_span) = map.found(self.slot(map, 1, dst), at_ns);
            let flow = &mut self.flow;
            flow.text.clear();
            flow.text
                .push_str(src_found.csv().map_or(NOTHING_AS_SRC, PeerCsv::as_src));
            flow.text.push(',');
            flow.text
                .push_str(dst_found.csv().map_or(NOTHING_AS_DST, PeerCsv::as_dst));
            flow.src = src;
            flow.dst = dst;
            flow.span = src_span.start.max(dst_span.start)..src_span.end.min(dst_span.end);
        }
        &self.flow.text
    }

    /// What `ip` is in `map`, through the entry of `side` (0: source, 1: destination).
    fn slot(&mut self, map: &PodMap, side: usize, ip: IpAddr) -> Option<Slot> {
        self.follow(map);
        match self.sides[side] {
            Some((last, slot)) if last == ip => slot,
            _ => {
                let slot = map.addresses.get(&ip).copied();
                self.sides[side] = Some((ip, slot));
                slot
            }
        }
    }
}

/// Numbers every built map (0 is the empty default's).
static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn index(i: usize) -> u32 {
    u32::try_from(i).expect("fewer than 4 billion entries in a pod map")
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
        let mut service_ips = IpMap::default();
        for service in services {
            by_namespace
                .entry(&service.namespace)
                .or_default()
                .push(service);
            let csv = PeerCsv::of(service_peer(service));
            for ip in &service.cluster_ips {
                service_ips.insert(*ip, (Arc::clone(service), csv.clone()));
            }
        }
        let pods = pods.into_iter();
        // Every (IP, holder), then in runs by IP and start time: one list, not one per IP.
        let mut held: Vec<(IpAddr, Holder)> = Vec::with_capacity(pods.size_hint().0);
        let mut count = 0;
        // The services selecting a pod, and their names joined (many pods share a list).
        let (mut selecting, mut joined, mut service_lists) =
            (Vec::new(), String::new(), SharedNames::default());
        for (pod, deleted_ns) in pods {
            count += 1;
            if pod.host_network {
                continue; // its address is the node's: named by the node.
            }
            selecting.clear();
            if let Some(list) = by_namespace.get(&*pod.namespace) {
                let selected = list.iter().filter(|s| s.selects_labels(&pod));
                selecting.extend(selected.map(|s| &*s.name));
            }
            // Services come out of a HashMap: sorted, so records are the same from run to run.
            selecting.sort_unstable();
            let services = (!selecting.is_empty()).then(|| {
                joined.clear();
                for (i, name) in selecting.iter().enumerate() {
                    if i > 0 {
                        joined.push(',');
                    }
                    joined.push_str(name);
                }
                service_lists.get(&joined)
            });
            let holder = Holder {
                since_ns: pod.since_ns,
                until_ns: deleted_ns.unwrap_or(i64::MAX),
                csv: PeerCsv::of(pod_peer(&pod, services.as_deref())),
                services,
                pod: Arc::clone(&pod),
            };
            // Copies for a second IP (dual stack) only.
            if let Some((last, others)) = pod.ips.split_last() {
                held.extend(others.iter().map(|ip| (*ip, holder.clone())));
                held.push((*last, holder));
            }
        }
        held.sort_by_key(|(ip, holder)| (*ip, holder.since_ns));
        let mut addresses: IpMap<Slot> =
            IpMap::with_capacity_and_hasher(held.len() + service_ips.len(), Default::default());
        let mut holders: Vec<Holder> = Vec::with_capacity(held.len());
        for (ip, holder) in held {
            let run = addresses.entry(ip).or_insert(Slot {
                first_holder: index(holders.len()),
                ..Slot::EMPTY
            });
            if run.holder_count > 0 {
                // A later holder of the same IP ends the earlier one's hold, whatever the
                // events said (a deletion may arrive after the IP was reused).
                if let Some(previous) = holders.last_mut() {
                    previous.until_ns = previous.until_ns.min(holder.since_ns);
                }
            }
            run.holder_count += 1;
            holders.push(holder);
        }
        let mut service_list = Vec::with_capacity(service_ips.len());
        for (ip, entry) in service_ips {
            addresses.entry(ip).or_insert(Slot::EMPTY).service = index(service_list.len());
            service_list.push(entry);
        }
        let mut node_list = Vec::new();
        for (ip, node) in nodes {
            addresses.entry(ip).or_insert(Slot::EMPTY).node = index(node_list.len());
            let csv = PeerCsv::of(node_peer(&node));
            node_list.push((node, csv));
        }
        PodMap {
            addresses,
            holders,
            services: service_list,
            nodes: node_list,
            pods: count,
            loaded: true,
            generation: GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// What the map knows of `ip` at `at_ns`, borrowed.
    fn find(&self, ip: IpAddr, at_ns: i64) -> Found<'_> {
        self.found(self.addresses.get(&ip).copied(), at_ns).0
    }

    /// What an address whose [`Slot`] is `slot` was at `at_ns` (the pod holding it then,
    /// else its service, else its node), and the moments around `at_ns` it was that.
    fn found(&self, slot: Option<Slot>, at_ns: i64) -> (Found<'_>, Range<i64>) {
        let mut span = i64::MIN..i64::MAX;
        let Some(slot) = slot else {
            return (Found::Nothing, span);
        };
        let first = slot.first_holder as usize;
        // By start time, and no two holds overlap (`build` ends each at the next's start).
        for h in &self.holders[first..first + slot.holder_count as usize] {
            if at_ns < h.since_ns {
                span.end = h.since_ns;
                break;
            }
            if at_ns < h.until_ns {
                return (Found::Pod(h), h.since_ns..h.until_ns);
            }
            span.start = span.start.max(h.until_ns);
        }
        let found = if let Some((service, csv)) = self.services.get(slot.service as usize) {
            Found::Service(service, csv)
        } else if let Some((node, csv)) = self.nodes.get(slot.node as usize) {
            Found::Node(node, csv)
        } else {
            Found::Nothing
        };
        (found, span)
    }

    fn node(&self, ip: IpAddr) -> Option<&Arc<str>> {
        let slot = self.addresses.get(&ip)?;
        self.nodes.get(slot.node as usize).map(|(node, _)| node)
    }

    /// Who had `ip` at `at_ns`: the pod that held it then, a service's cluster IP, a node
    /// (host network), or nothing known (an address outside the cluster, or a pod IP at a
    /// moment no known pod held it).
    pub fn peer(&self, ip: IpAddr, at_ns: i64) -> Peer {
        match self.find(ip, at_ns) {
            Found::Pod(h) => Peer {
                namespace: Some(Arc::clone(&h.pod.namespace)),
                pod: Some(Arc::clone(&h.pod.name)),
                workload: Some(Arc::clone(&h.pod.workload)),
                service: h.services.clone(),
                node: h.pod.node.clone(),
            },
            Found::Service(service, _) => Peer {
                namespace: Some(Arc::clone(&service.namespace)),
                service: Some(Arc::clone(&service.name)),
                ..Peer::default()
            },
            Found::Node(node, _) => Peer {
                workload: Some(Arc::from(HOST_NETWORK)),
                node: Some(Arc::clone(node)),
                ..Peer::default()
            },
            Found::Nothing => Peer::default(),
        }
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
                self.node(outer_src).cloned(),
                outer_dst,
                self.node(outer_dst).cloned(),
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

    /// The values of [`ATTRIBUTION_COLUMNS`] for a flow, as [`Self::attribute`] would give
    /// them, borrowed from the map: what record writers call once per flow (no clone, no
    /// allocation). `last` is the caller's own (one per record writer).
    pub fn for_each_value(
        &self,
        last: &mut LastLookups,
        src: IpAddr,
        dst: IpAddr,
        tunnel: Option<(IpAddr, IpAddr)>,
        start_ns: i64,
        put: impl FnMut(&str),
    ) {
        let node = |ip| self.node(ip).map(|n| &**n);
        let tunnel = tunnel.map(|(s, d)| (s, node(s), d, node(d)));
        let (src, dst) = if self.loaded {
            (
                self.found(last.slot(self, 0, src), start_ns).0.as_ref(),
                self.found(last.slot(self, 1, dst), start_ns).0.as_ref(),
            )
        } else {
            Default::default()
        };
        put_columns(src, dst, tunnel, !self.loaded, put);
    }

    /// The same columns as [`Self::for_each_value`], as CSV text in pieces whose
    /// concatenation is the fields joined by commas (quoted where CSV needs it; no comma
    /// before the first, no line break after the last): the peers' text comes
    /// ready-made from the map. `last` is the caller's own (one per record writer).
    pub fn for_each_csv_piece(
        &self,
        last: &mut LastLookups,
        src: IpAddr,
        dst: IpAddr,
        tunnel: Option<(IpAddr, IpAddr)>,
        start_ns: i64,
        mut put: impl FnMut(&str),
    ) {
        if self.loaded {
            put(last.peers_csv(self, src, dst, start_ns));
        } else {
            put(UNKNOWN_PEERS);
        }
        let Some((outer_src, outer_dst)) = tunnel else {
            return put(NO_TUNNEL);
        };
        for ip in [outer_src, outer_dst] {
            put(",");
            put(IpText::new(ip).as_str());
            put(",");
            put_csv_field(self.node(ip).map_or("", |n| &**n), &mut put);
        }
    }
}

/// A lookup's result, borrowed from the map.
enum Found<'a> {
    Pod(&'a Holder),
    Service(&'a ServiceInfo, &'a PeerCsv),
    Node(&'a Arc<str>, &'a PeerCsv),
    Nothing,
}

impl<'a> Found<'a> {
    fn as_ref(&self) -> PeerRef<'a> {
        match *self {
            Found::Pod(h) => pod_peer(&h.pod, h.services.as_deref()),
            Found::Service(service, _) => service_peer(service),
            Found::Node(node, _) => node_peer(node),
            Found::Nothing => PeerRef::default(),
        }
    }

    fn csv(&self) -> Option<&'a PeerCsv> {
        match *self {
            Found::Pod(h) => Some(&h.csv),
            Found::Service(_, csv) | Found::Node(_, csv) => Some(csv),
            Found::Nothing => None,
        }
    }
}

/// A pod's IP: the pod, its workload and node, and the services selecting it.
fn pod_peer<'a>(pod: &'a PodInfo, services: Option<&'a str>) -> PeerRef<'a> {
    PeerRef {
        namespace: Some(&pod.namespace),
        pod: Some(&pod.name),
        workload: Some(&pod.workload),
        service: services,
        node: pod.node.as_deref(),
    }
}

/// A service's cluster IP: the service, in its namespace.
fn service_peer(service: &ServiceInfo) -> PeerRef<'_> {
    PeerRef {
        namespace: Some(&service.namespace),
        service: Some(&service.name),
        ..PeerRef::default()
    }
}

/// A node's address: the node's own network namespace.
fn node_peer(node: &str) -> PeerRef<'_> {
    PeerRef {
        workload: Some(HOST_NETWORK),
        node: Some(node),
        ..PeerRef::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_names_are_held_once_and_forgotten_when_unused() {
        let mut names = SharedNames::default();
        let shop = names.get("shop");
        let again = names.get("shop");
        assert!(Arc::ptr_eq(&shop, &again), "one allocation for both");
        drop(names.get("web"));
        names.prune();
        assert_eq!(names.0.len(), 1, "`web` was held by nothing else");
        drop((shop, again));
        names.prune();
        assert!(names.0.is_empty());
    }
}
