//! The file source: `kubectl get pods,svc,nodes -A -o json` (a `List`, or any single
//! `PodList`/`ServiceList`/...), reloaded when it changes; a bad reload keeps the last good map.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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
// and 75 MB RSS to read; these structs take a sixth of the time and a third of the
// memory (figures on `load_pods_file`).

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

/// One object of the file, or the file itself (a `List` is an object with `items`), read in
/// one pass over the text: `spec` and `status` are read as the object's kind has them when
/// the kind comes first, as kubectl and the API write it. Reading items as raw text first and
/// then each part took three passes over the text (figures on [`load_pods_file`]).
struct Object<'a> {
    kind: Option<Text<'a>>,
    meta: Meta<'a>,
    spec: Part<'a, Spec<'a>>,
    status: Part<'a, Status<'a>>,
    /// The file has an `items` list (handed to [`Items`] as read; items hold none).
    has_items: bool,
}

/// A `spec` or `status` as read.
enum Part<'a, T> {
    Absent,
    /// It came before its object's kind (or the kind comes from the list: `PodList` items
    /// carry none): read once the kind is known.
    Raw(&'a RawValue),
    Read(T),
}

impl<'a, T: ByKind<'a>> Part<'a, T> {
    fn resolve(self, kind: &str) -> Result<T, serde_json::Error> {
        let raw = match self {
            Part::Read(part) => return Ok(part),
            Part::Raw(raw) => raw.get(),
            Part::Absent => "null",
        };
        T::read(kind, &mut serde_json::Deserializer::from_str(raw))
    }
}

/// A part whose fields depend on its object's kind.
trait ByKind<'de>: Sized {
    const FIELD: &'static str;
    /// Reads the part as `kind` has it (null reads as empty); other kinds' parts are skipped.
    fn read<D: Deserializer<'de>>(kind: &str, part: D) -> Result<Self, D::Error>;
}

/// The `spec` fields the map uses.
enum Spec<'a> {
    Pod(PodSpec<'a>),
    Service(ServiceSpec<'a>),
    Unused,
}

/// The `status` fields the map uses.
enum Status<'a> {
    Pod(PodStatus<'a>),
    Node(NodeStatus<'a>),
    Unused,
}

fn or_empty<'de, T: Deserialize<'de> + Default, D: Deserializer<'de>>(
    part: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(part)?.unwrap_or_default())
}

impl<'de> ByKind<'de> for Spec<'de> {
    const FIELD: &'static str = "spec";
    fn read<D: Deserializer<'de>>(kind: &str, part: D) -> Result<Self, D::Error> {
        Ok(match kind {
            "Pod" => Spec::Pod(or_empty(part)?),
            "Service" => Spec::Service(or_empty(part)?),
            _ => {
                IgnoredAny::deserialize(part)?;
                Spec::Unused
            }
        })
    }
}

impl<'de> ByKind<'de> for Status<'de> {
    const FIELD: &'static str = "status";
    fn read<D: Deserializer<'de>>(kind: &str, part: D) -> Result<Self, D::Error> {
        Ok(match kind {
            "Pod" => Status::Pod(or_empty(part)?),
            "Node" => Status::Node(or_empty(part)?),
            _ => {
                IgnoredAny::deserialize(part)?;
                Status::Unused
            }
        })
    }
}

/// Reads a part as its object's kind has it.
struct PartOf<'k, T> {
    kind: &'k str,
    part: PhantomData<T>,
}

impl<'de, T: ByKind<'de>> DeserializeSeed<'de> for PartOf<'_, T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, part: D) -> Result<T, D::Error> {
        T::read(self.kind, part)
    }
}

/// Where reading stands, so that an error names the item, its object and the part
/// (`item 3 (Pod shop/web): `spec`: ...`) beside serde's line and column.
#[derive(Default)]
struct Place {
    item: Cell<Option<usize>>,
    part: Cell<Option<&'static str>>,
    /// `Pod shop/web`, once known (the text is reused from item to item).
    object: RefCell<String>,
}

impl Place {
    fn start(&self, item: Option<usize>) {
        self.item.set(item);
        self.part.set(None);
        self.object.borrow_mut().clear();
    }

    fn name(&self, kind: &str, meta: &Meta) {
        let mut object = self.object.borrow_mut();
        object.clear();
        let _ = match text(&meta.namespace) {
            Some(ns) => write!(object, "{kind} {ns}/{}", text(&meta.name).unwrap_or("")),
            None => write!(object, "{kind} {}", text(&meta.name).unwrap_or("")),
        };
    }

    /// The prefix of an error message.
    fn describe(&self) -> String {
        let mut place = String::new();
        if let Some(item) = self.item.get() {
            let _ = write!(place, "item {item}");
        }
        let object = self.object.borrow();
        if !object.is_empty() {
            let _ = write!(place, " ({object})");
        }
        if let Some(part) = self.part.get() {
            let _ = write!(place, ": `{part}`");
        }
        if !place.is_empty() {
            place.push_str(": ");
        }
        place.trim_start().to_string()
    }
}

/// Reads one object: the file itself or one of its items.
struct ObjectSeed<'p, 's, 'de> {
    place: &'p Place,
    what: Whole<'p, 's, 'de>,
}

/// What an [`ObjectSeed`] reads.
enum Whole<'p, 's, 'de> {
    /// The file, whose items go to [`Items`].
    File(&'p mut Items<'s, 'de>),
    /// The item at this place in the file's list.
    Item(usize),
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, '_, 'de> {
    type Value = Object<'de>;
    fn deserialize<D: Deserializer<'de>>(self, object: D) -> Result<Object<'de>, D::Error> {
        self.place.start(match self.what {
            Whole::File(_) => None,
            Whole::Item(index) => Some(index),
        });
        object.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_, '_, 'de> {
    type Value = Object<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Object<'de>, A::Error> {
        let place = self.place;
        let mut object = Object {
            kind: None,
            meta: Meta::default(),
            spec: Part::Absent,
            status: Part::Absent,
            has_items: false,
        };
        loop {
            place.part.set(None);
            let Some(key) = map.next_key::<Text<'de>>()? else {
                break;
            };
            match key.as_str() {
                "kind" => object.kind = map.next_value()?,
                "metadata" => {
                    place.part.set(Some("metadata"));
                    object.meta = map.next_value::<Option<Meta>>()?.unwrap_or_default();
                }
                "spec" => object.spec = next_part(&mut map, place, &object)?,
                "status" => object.status = next_part(&mut map, place, &object)?,
                "items" => match &mut self.what {
                    Whole::File(items) => {
                        map.next_value_seed(ItemsSeed { place, items })?;
                        object.has_items = true;
                    }
                    Whole::Item(_) => {
                        map.next_value::<IgnoredAny>()?; // an item's own `items`
                    }
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(object)
    }
}

fn next_part<'de, A: MapAccess<'de>, T: ByKind<'de>>(
    map: &mut A,
    place: &Place,
    object: &Object<'de>,
) -> Result<Part<'de, T>, A::Error> {
    place.part.set(Some(T::FIELD));
    Ok(match text(&object.kind) {
        Some(kind) => {
            place.name(kind, &object.meta);
            Part::Read(map.next_value_seed(PartOf {
                kind,
                part: PhantomData,
            })?)
        }
        None => map
            .next_value::<Option<&'de RawValue>>()?
            .map_or(Part::Absent, Part::Raw),
    })
}

/// Where the file's items go as they are read: into the cluster state, none held (a
/// 10,000-pod file: peak RSS 26.0 -> 23.5 MB). Items without a kind of their own (a
/// `PodList`'s, whose kind may come after them) wait for the end.
struct Items<'s, 'de> {
    state: &'s mut ClusterState,
    path: &'s Path,
    kindless: Vec<(usize, Object<'de>)>,
    /// What stopped the reading (the reader's own error then says only that).
    failed: Option<KubeError>,
}

impl<'de> Items<'_, 'de> {
    fn take(&mut self, index: usize, item: Object<'de>) -> Result<(), KubeError> {
        if item.kind.is_none() {
            self.kindless.push((index, item));
            return Ok(());
        }
        apply_object(self.state, item, None, self.path, index)
    }

    /// Applies the items that waited for the list's kind.
    fn finish(&mut self, list_kind: Option<&str>) -> Result<(), KubeError> {
        for (index, item) in std::mem::take(&mut self.kindless) {
            apply_object(self.state, item, list_kind, self.path, index)?;
        }
        Ok(())
    }
}

/// Reads the file's `items` into [`Items`], counting them for error messages (null reads
/// as none).
struct ItemsSeed<'p, 's, 'de> {
    place: &'p Place,
    items: &'p mut Items<'s, 'de>,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, items: D) -> Result<(), D::Error> {
        items.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of Kubernetes objects")
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, items: D) -> Result<(), D::Error> {
        items.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        for index in 0.. {
            let seed = ObjectSeed {
                place: self.place,
                what: Whole::Item(index),
            };
            let Some(item) = seq.next_element_seed(seed)? else {
                break;
            };
            if let Err(e) = self.items.take(index, item) {
                self.items.failed = Some(e);
                return Err(serde::de::Error::custom("stopped at a bad item"));
            }
        }
        self.place.start(None);
        Ok(())
    }
}

fn apply_object(
    state: &mut ClusterState,
    object: Object,
    list_kind: Option<&str>,
    path: &Path,
    index: usize,
) -> Result<(), KubeError> {
    let kind = text(&object.kind)
        .or(list_kind)
        .ok_or_else(|| bad(path, format!("item {index} has no `kind`")))?;
    if !matches!(kind, "Pod" | "Service" | "Node" | "ReplicaSet") {
        return Ok(()); // Deployments, Endpoints...: not needed for the map.
    }
    let meta = object.meta;
    // Parts read only now, from their raw text.
    let late = |field: &str, e: serde_json::Error| {
        let place = Place::default();
        place.start(Some(index));
        place.name(kind, &meta);
        bad(path, format!("{}`{field}`: {e}", place.describe()))
    };
    let spec = object
        .spec
        .resolve(kind)
        .map_err(|e| late(Spec::FIELD, e))?;
    let status = object
        .status
        .resolve(kind)
        .map_err(|e| late(Status::FIELD, e))?;
    match (spec, status) {
        (Spec::Pod(spec), Status::Pod(status)) => {
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
        (Spec::Service(spec), _) => {
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
        (_, Status::Node(status)) => {
            let addresses = status
                .addresses
                .iter()
                .flatten()
                .map(|a| (a.type_.as_str(), a.address.as_str()))
                .collect();
            state.insert_node(text(&meta.name).unwrap_or(""), addresses);
        }
        // A pod, service or node was read as such above: this is a ReplicaSet.
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
/// A 10k-pod, 1k-service file (4 MB, bench/kube's pods-mix.json), 2026-12-07: a whole
/// `nadir extract` of a 35-packet capture takes 29 ms of CPU and 26 MB peak RSS (`perf stat
/// -r 20`, `/usr/bin/time`); 32.5 ms -> 27.6 ms and 16.4 MB (`perf stat -r 15`, three
/// alternating rounds) since items are applied as read and names are shared; in three passes
/// it took 34 ms and 23 MB, through `Value` and the k8s-openapi types 0.18-0.22 s and 75 MB.
pub fn load_pods_file(path: &Path) -> Result<ClusterState, KubeError> {
    let bytes = std::fs::read(path).map_err(|source| KubeError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let json = std::str::from_utf8(&bytes).map_err(|e| bad(path, format!("not UTF-8: {e}")))?;
    let place = Place::default();
    let mut state = ClusterState::new();
    let mut items = Items {
        state: &mut state,
        path,
        kindless: Vec::new(),
        failed: None,
    };
    let mut reader = serde_json::Deserializer::from_str(json);
    let root = ObjectSeed {
        place: &place,
        what: Whole::File(&mut items),
    }
    .deserialize(&mut reader)
    .and_then(|root| reader.end().map(|()| root));
    let root = match (root, items.failed.take()) {
        (_, Some(failed)) => return Err(failed),
        (Err(e), None) => return Err(bad(path, format!("{}{e}", place.describe()))),
        (Ok(root), None) => root,
    };
    if root.has_items {
        // A `PodList`'s items carry no `kind` of their own.
        let list_kind = text(&root.kind)
            .and_then(|k| k.strip_suffix("List"))
            .filter(|k| !k.is_empty());
        items.finish(list_kind)?;
    } else if root.kind.is_some() {
        apply_object(&mut state, root, None, path, 0)?;
    } else {
        return Err(bad(path, "no `items` list and no `kind`"));
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
