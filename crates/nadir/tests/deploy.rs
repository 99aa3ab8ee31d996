//! The Kubernetes deployment in `deploy/`: every manifest is a Kubernetes object of a known
//! kind with no field its typed form would drop (a misspelt field is silently ignored by the
//! API server's clients and by k8s-openapi, so each document is read into the typed object,
//! written back and compared); the kustomization lists exactly those files; the DaemonSet
//! captures on the host network with NET_RAW and NET_ADMIN only, as non-root, probed and
//! scraped on the port `--listen` names; the ClusterRole only reads; the Dockerfile builds
//! with the README's release command and runs non-root with file capabilities; the Grafana
//! dashboard and the Prometheus rules name only metrics that `nadir watch` exports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Not Kubernetes objects: the kustomize file and a plain Prometheus rule file.
const NOT_OBJECTS: [&str; 2] = ["kustomization.yaml", "prometheus-rules.yaml"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deploy() -> PathBuf {
    repo().join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every non-empty YAML document of a file, as JSON values.
fn yaml_documents(path: &Path) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(&read(path))
        .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
        .into_iter()
        .filter(|doc| !doc.is_null())
        .collect()
}

fn yaml_document(path: &Path) -> Value {
    let mut docs = yaml_documents(path);
    assert_eq!(docs.len(), 1, "{}: one document expected", path.display());
    docs.remove(0)
}

/// The first place where `a` (the file) and `b` (after the typed round trip) differ.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let here = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => first_difference(u, v, &here),
                    (Some(u), None) => Some(format!("{here} ({u}) is not a field of this kind")),
                    (None, Some(v)) => Some(format!(
                        "{here} is required (the typed object fills in {v})"
                    )),
                    (None, None) => None,
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (u, v))| first_difference(u, v, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path}: {a} in the file, {b} as the typed object")),
    }
}

/// `doc` read as the typed object `T`, which must hold every field of it unchanged.
fn strict<T: DeserializeOwned + Serialize>(doc: &Value, what: &str) -> T {
    let typed: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    if let Some(diff) = first_difference(doc, &back, "") {
        panic!("{what}: {diff}");
    }
    typed
}

// A handful of manifests per test: the size of the large variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Object {
    Namespace(Namespace),
    ServiceAccount(ServiceAccount),
    ClusterRole(ClusterRole),
    ClusterRoleBinding(ClusterRoleBinding),
    ConfigMap(ConfigMap),
    DaemonSet(DaemonSet),
}

/// Every Kubernetes object in deploy/*.yaml, with the file it is in.
fn objects() -> Vec<(String, Object)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy())
        .expect("deploy/")
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        if NOT_OBJECTS.contains(&file.as_str()) {
            continue;
        }
        for (i, doc) in yaml_documents(&path).iter().enumerate() {
            let kind = doc["kind"].as_str().unwrap_or_else(|| {
                panic!("deploy/{file}, document {}: no kind", i + 1);
            });
            let what = format!("deploy/{file}, document {} ({kind})", i + 1);
            let object = match kind {
                "Namespace" => Object::Namespace(strict(doc, &what)),
                "ServiceAccount" => Object::ServiceAccount(strict(doc, &what)),
                "ClusterRole" => Object::ClusterRole(strict(doc, &what)),
                "ClusterRoleBinding" => Object::ClusterRoleBinding(strict(doc, &what)),
                "ConfigMap" => Object::ConfigMap(strict(doc, &what)),
                "DaemonSet" => Object::DaemonSet(strict(doc, &what)),
                _ => panic!("{what}: a kind this test does not know; add it to the test"),
            };
            out.push((file.clone(), object));
        }
    }
    out
}

fn the_one<T>(found: Vec<T>, kind: &str) -> T {
    let n = found.len();
    let mut found = found.into_iter();
    match (found.next(), n) {
        (Some(one), 1) => one,
        _ => panic!("deploy/ holds {n} {kind} objects, one expected"),
    }
}

fn namespace_object() -> Namespace {
    let found = objects().into_iter().filter_map(|(_, o)| match o {
        Object::Namespace(x) => Some(x),
        _ => None,
    });
    the_one(found.collect(), "Namespace")
}

fn service_account() -> ServiceAccount {
    let found = objects().into_iter().filter_map(|(_, o)| match o {
        Object::ServiceAccount(x) => Some(x),
        _ => None,
    });
    the_one(found.collect(), "ServiceAccount")
}

fn cluster_role() -> ClusterRole {
    let found = objects().into_iter().filter_map(|(_, o)| match o {
        Object::ClusterRole(x) => Some(x),
        _ => None,
    });
    the_one(found.collect(), "ClusterRole")
}

fn cluster_role_binding() -> ClusterRoleBinding {
    let found = objects().into_iter().filter_map(|(_, o)| match o {
        Object::ClusterRoleBinding(x) => Some(x),
        _ => None,
    });
    the_one(found.collect(), "ClusterRoleBinding")
}

fn config_maps() -> Vec<ConfigMap> {
    objects()
        .into_iter()
        .filter_map(|(_, o)| match o {
            Object::ConfigMap(x) => Some(x),
            _ => None,
        })
        .collect()
}

fn daemon_set() -> DaemonSet {
    let found = objects().into_iter().filter_map(|(_, o)| match o {
        Object::DaemonSet(x) => Some(x),
        _ => None,
    });
    the_one(found.collect(), "DaemonSet")
}

/// The DaemonSet's one container.
fn sensor(ds: &DaemonSet) -> Container {
    let pod = ds.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.containers.len(), 1, "the DaemonSet runs one container");
    pod.containers[0].clone()
}

/// The container's argv: command (if any) then args.
fn argv(c: &Container) -> Vec<String> {
    let mut v = c.command.clone().unwrap_or_default();
    v.extend(c.args.clone().unwrap_or_default());
    v
}

/// The value of `--flag VALUE` or `--flag=VALUE` (also under a short alias).
fn flag_value(argv: &[String], names: &[&str]) -> Option<String> {
    argv.iter().enumerate().find_map(|(i, a)| {
        names.iter().find_map(|n| {
            if a == n {
                argv.get(i + 1).cloned()
            } else {
                a.strip_prefix(&format!("{n}=")).map(str::to_string)
            }
        })
    })
}

/// The port `--listen ADDR` names; the address must be reachable from the node (probes,
/// Prometheus), so not loopback.
fn listen_port(c: &Container) -> u16 {
    let addr = flag_value(&argv(c), &["--listen"])
        .expect("the container passes --listen (the default, 127.0.0.1, is unreachable)");
    let (host, port) = addr.rsplit_once(':').expect("--listen HOST:PORT");
    assert!(
        !matches!(host, "127.0.0.1" | "localhost" | "[::1]"),
        "--listen {addr}: loopback cannot be probed or scraped"
    );
    port.parse().expect("--listen port")
}

#[test]
fn every_manifest_is_a_strict_kubernetes_object() {
    let objects = objects();
    let kinds: BTreeSet<&str> = objects
        .iter()
        .map(|(_, o)| match o {
            Object::Namespace(_) => "Namespace",
            Object::ServiceAccount(_) => "ServiceAccount",
            Object::ClusterRole(_) => "ClusterRole",
            Object::ClusterRoleBinding(_) => "ClusterRoleBinding",
            Object::ConfigMap(_) => "ConfigMap",
            Object::DaemonSet(_) => "DaemonSet",
        })
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "DaemonSet"
        ])
    );
}

#[test]
fn strictness_catches_a_misspelt_field() {
    // The check the manifests rely on: a field the typed object does not have is reported,
    // and so is one in the wrong place.
    let doc: Value = serde_saphyr::from_str(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  lables: {a: b}\n",
    )
    .unwrap();
    let caught = std::panic::catch_unwind(|| strict::<ConfigMap>(&doc, "misspelt"));
    assert!(caught.is_err(), "a misspelt field went unnoticed");
    let doc: Value =
        serde_saphyr::from_str("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n").unwrap();
    strict::<ConfigMap>(&doc, "well-formed");
}

#[test]
fn kustomization_lists_every_manifest() {
    let k = yaml_document(&deploy().join("kustomization.yaml"));
    assert_eq!(k["kind"], "Kustomization");
    let namespace = k["namespace"].as_str().expect("kustomization namespace");
    let listed: BTreeSet<String> = k["resources"]
        .as_array()
        .expect("kustomization resources")
        .iter()
        .map(|r| r.as_str().expect("a resource path").to_string())
        .collect();
    for r in &listed {
        assert!(
            deploy().join(r).is_file(),
            "kustomization.yaml lists {r}, which is not in deploy/"
        );
    }
    let files: BTreeSet<String> = objects().into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        listed, files,
        "kustomization.yaml must list exactly the manifests in deploy/"
    );

    // The Namespace object is the kustomization's, and nothing names another one.
    assert_eq!(namespace_object().metadata.name.as_deref(), Some(namespace));
    let sa = service_account();
    assert_eq!(sa.metadata.namespace.as_deref(), Some(namespace));
    for cm in config_maps() {
        assert_eq!(cm.metadata.namespace.as_deref(), Some(namespace));
    }
    assert_eq!(daemon_set().metadata.namespace.as_deref(), Some(namespace));

    // `images:` retargets the DaemonSet's image.
    let image = sensor(&daemon_set()).image.expect("container image");
    let image_name = image.split([':', '@']).next().unwrap();
    let names: Vec<&str> = k["images"]
        .as_array()
        .expect("kustomization images (where the built image is pushed)")
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&image_name),
        "kustomization images {names:?} do not name the container image {image}"
    );
}

#[test]
fn daemonset_captures_on_the_host_with_least_privilege() {
    let ds = daemon_set();
    let template = &ds.spec.as_ref().unwrap().template;
    let pod = template.spec.as_ref().unwrap();
    let c = sensor(&ds);
    let args = argv(&c);

    assert_eq!(
        pod.host_network,
        Some(true),
        "hostNetwork: the node's traffic"
    );
    assert_ne!(pod.host_pid, Some(true));
    assert_ne!(pod.host_ipc, Some(true));

    // The command: `nadir watch ... --kube`, interface and bundle from the env.
    let verb = args.iter().position(|a| a == "watch").expect("`watch`");
    assert!(
        args[..verb].iter().all(|a| a.ends_with("nadir")),
        "argv {args:?}"
    );
    assert!(args.contains(&"--kube".to_string()), "--kube: the pod map");
    assert_eq!(
        flag_value(&args, &["--interface", "-i"]).as_deref(),
        Some("$(NADIR_INTERFACE)")
    );
    assert_eq!(
        flag_value(&args, &["--model", "-m"]).as_deref(),
        Some("$(NADIR_MODEL)")
    );

    // Every $(VAR) in argv is set, from a ConfigMap key that exists or the downward API.
    let env: BTreeMap<String, _> = c
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name.clone(), e))
        .collect();
    for a in &args {
        let mut rest = a.as_str();
        while let Some(start) = rest.find("$(") {
            let end = rest[start..].find(')').expect("$(VAR)") + start;
            let var = &rest[start + 2..end];
            assert!(env.contains_key(var), "argv uses $({var}), not in env");
            rest = &rest[end..];
        }
    }
    let config_maps = config_maps();
    for var in ["NADIR_INTERFACE", "NADIR_MODEL"] {
        let from = env[var]
            .value_from
            .as_ref()
            .and_then(|v| v.config_map_key_ref.as_ref());
        let key_ref = from.unwrap_or_else(|| panic!("{var} comes from a ConfigMap"));
        let cm = config_maps
            .iter()
            .find(|cm| cm.metadata.name.as_deref() == Some(key_ref.name.as_str()))
            .unwrap_or_else(|| panic!("{var}: no ConfigMap {} in deploy/", key_ref.name));
        assert!(
            cm.data
                .as_ref()
                .is_some_and(|d| d.contains_key(&key_ref.key)),
            "{var}: ConfigMap {} has no key {}",
            key_ref.name,
            key_ref.key
        );
    }
    let node = env["NODE_NAME"]
        .value_from
        .as_ref()
        .and_then(|v| v.field_ref.as_ref());
    assert_eq!(node.map(|f| f.field_path.as_str()), Some("spec.nodeName"));

    // Probes and scraping on the port --listen names.
    let port = listen_port(&c);
    let ports = c.ports.clone().unwrap_or_default();
    assert!(
        ports.iter().any(|p| p.container_port == i32::from(port)),
        "containerPort {port} declared"
    );
    for p in &ports {
        if let Some(host) = p.host_port {
            assert_eq!(
                host, p.container_port,
                "hostNetwork: hostPort = containerPort"
            );
        }
    }
    for (which, probe) in [
        ("livenessProbe", &c.liveness_probe),
        ("readinessProbe", &c.readiness_probe),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .unwrap_or_else(|| panic!("{which}: httpGet"));
        assert_eq!(get.path.as_deref(), Some("/healthz"), "{which}");
        let probed = match &get.port {
            IntOrString::Int(p) => *p,
            IntOrString::String(name) => {
                ports
                    .iter()
                    .find(|p| p.name.as_deref() == Some(name.as_str()))
                    .unwrap_or_else(|| panic!("{which}: no port named {name}"))
                    .container_port
            }
        };
        assert_eq!(probed, i32::from(port), "{which} on the --listen port");
        assert!(
            matches!(get.scheme.as_deref(), None | Some("HTTP")),
            "{which}"
        );
    }
    let annotations = template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.clone());
    let annotations = annotations.expect("Prometheus scrape annotations on the pod template");
    let annotation = |k: &str| annotations.get(k).map(String::as_str);
    assert_eq!(annotation("prometheus.io/scrape"), Some("true"));
    assert_eq!(
        annotation("prometheus.io/port"),
        Some(port.to_string().as_str())
    );
    assert_eq!(annotation("prometheus.io/path"), Some("/metrics"));

    // Non-root with exactly the capture capabilities.
    let sc = c
        .security_context
        .as_ref()
        .expect("container securityContext");
    assert_eq!(sc.run_as_non_root, Some(true));
    assert!(sc.run_as_user.is_some_and(|u| u != 0), "runAsUser non-zero");
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_ne!(sc.privileged, Some(true));
    let caps = sc.capabilities.as_ref().expect("capabilities");
    let mut add = caps.add.clone().unwrap_or_default();
    add.sort();
    assert_eq!(add, ["NET_ADMIN", "NET_RAW"], "capabilities.add");
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
    if let Some(pod_sc) = &pod.security_context {
        assert_ne!(pod_sc.run_as_user, Some(0));
        assert_ne!(pod_sc.run_as_non_root, Some(false));
    }

    // Requests and limits set, requests within limits, the limit above the measured RSS.
    let res = c.resources.as_ref().expect("resources");
    let requests = res.requests.clone().expect("resources.requests");
    let limits = res.limits.clone().expect("resources.limits");
    for r in ["cpu", "memory"] {
        let (req, lim) = (
            requests.get(r).unwrap_or_else(|| panic!("requests.{r}")),
            limits.get(r).unwrap_or_else(|| panic!("limits.{r}")),
        );
        assert!(
            quantity(&req.0) <= quantity(&lim.0),
            "{r}: request {} above limit {}",
            req.0,
            lim.0
        );
    }
    // README "Benchmarks", `watch`: peak RSS 176 MiB with ~54k live flows.
    assert!(quantity(&limits["memory"].0) > 176.0 * 1024.0 * 1024.0);

    // The service account the ClusterRole is bound to.
    let sa = service_account();
    assert_eq!(pod.service_account_name, sa.metadata.name);
    assert_ne!(pod.automount_service_account_token, Some(false));
}

/// A Kubernetes quantity as a number (cores or bytes).
fn quantity(q: &str) -> f64 {
    let suffixes: [(&str, f64); 10] = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0f64.powi(4)),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("", 1.0),
    ];
    let (number, scale) = suffixes
        .iter()
        .find_map(|(s, f)| q.strip_suffix(s).map(|n| (n, *f)))
        .unwrap();
    number
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("quantity {q}"))
        * scale
}

#[test]
fn cluster_role_only_reads_what_the_pod_map_needs() {
    let role = cluster_role();
    let mut covered = BTreeSet::new();
    for rule in role.rules.as_ref().expect("rules") {
        assert!(rule.non_resource_urls.is_none(), "no non-resource URLs");
        for verb in &rule.verbs {
            assert!(
                matches!(verb.as_str(), "get" | "list" | "watch"),
                "verb {verb}: read-only (get, list, watch)"
            );
        }
        for group in rule.api_groups.as_deref().unwrap_or_default() {
            for resource in rule.resources.as_deref().unwrap_or_default() {
                covered.insert((group.clone(), resource.clone()));
            }
        }
    }
    let needed: BTreeSet<(String, String)> = [
        ("", "pods"),
        ("", "services"),
        ("", "nodes"),
        ("apps", "replicasets"),
    ]
    .into_iter()
    .map(|(g, r)| (g.to_string(), r.to_string()))
    .collect();
    assert_eq!(covered, needed, "exactly the objects the pod map reads");

    let binding = cluster_role_binding();
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(binding.role_ref.api_group, "rbac.authorization.k8s.io");
    assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref());
    let sa = service_account();
    let subjects = binding.subjects.unwrap_or_default();
    assert!(
        subjects.iter().any(|s| s.kind == "ServiceAccount"
            && Some(&s.name) == sa.metadata.name.as_ref()
            && s.namespace == sa.metadata.namespace),
        "the binding names the sensor's service account: {subjects:?}"
    );
}

/// A Dockerfile's instructions by stage: (INSTRUCTION, rest), continuations joined, comments
/// dropped.
fn dockerfile_stages(text: &str) -> Vec<Vec<(String, String)>> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(t);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    for l in logical {
        let (word, rest) = l.split_once(char::is_whitespace).unwrap_or((&l, ""));
        let word = word.to_ascii_uppercase();
        if word == "FROM" {
            stages.push(Vec::new());
        }
        let stage = stages.last_mut().expect("the Dockerfile starts with FROM");
        stage.push((word, rest.trim().to_string()));
    }
    stages
}

/// The `cargo build ...` command in a line of shell, as words (to `&&`, `;`, a backquote or
/// the end).
fn cargo_build(line: &str) -> Option<Vec<String>> {
    let start = line.find("cargo build")?;
    let rest = &line[start..];
    let end = ["&&", ";", "`", "|"]
        .iter()
        .filter_map(|s| rest.find(s))
        .min()
        .unwrap_or(rest.len());
    Some(rest[..end].split_whitespace().map(str::to_string).collect())
}

#[test]
fn dockerfile_builds_as_the_readme_says_and_runs_unprivileged() {
    let stages = dockerfile_stages(&read(&deploy().join("Dockerfile")));
    assert!(
        stages.len() >= 2,
        "multi-stage: build, then a small runtime"
    );
    let (runtime, build) = stages.split_last().unwrap();
    let from = |stage: &[(String, String)]| stage[0].1.clone();

    // The toolchain the workspace requires, and the same Debian release in both stages.
    let manifest = read(&repo().join("Cargo.toml"));
    let rust_version = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version = \""))
        .and_then(|l| l.split('"').next())
        .expect("rust-version in Cargo.toml");
    let build_from = from(&build[0]);
    assert!(
        build_from.starts_with(&format!("rust:{rust_version}-")),
        "build stage FROM {build_from}: rust {rust_version}"
    );
    let runtime_from = from(runtime);
    let codename = build_from.split([' ', '-']).nth(1).unwrap().to_string();
    assert!(
        runtime_from.contains(&codename),
        "runtime FROM {runtime_from}: the build's Debian release ({codename}) for the same glibc"
    );

    // The build command is the README's release build, with --locked.
    let docker_build = build
        .iter()
        .flatten()
        .filter(|(w, _)| w == "RUN")
        .find_map(|(_, cmd)| cargo_build(cmd))
        .expect("a RUN cargo build in the build stage");
    let readme = read(&repo().join("README.md"));
    // The GPU builds (`--features cuda` / `wgpu`) are optional extras, not the image's build.
    let documented =
        match readme.lines().filter_map(cargo_build).find(|c| {
            c.contains(&"--release".to_string()) && !c.contains(&"--features".to_string())
        }) {
            Some(c) => c,
            // The README has no release command of its own: "`demo.sh` builds nadir in release
            // mode", so its build (with libpcap, every feature) is the one.
            None => {
                assert!(
                    readme.contains("`demo.sh` builds nadir in release mode"),
                    "README.md names no release build"
                );
                read(&repo().join("demo.sh"))
                    .lines()
                    .filter_map(cargo_build)
                    .find(|c| c.contains(&"--release".to_string()))
                    .expect("demo.sh's release build")
            }
        };
    assert!(docker_build.contains(&"--locked".to_string()), "--locked");
    let without = |c: &[String], flags: &[&str]| -> Vec<String> {
        c.iter()
            .filter(|w| !flags.contains(&w.as_str()))
            .cloned()
            .collect()
    };
    // Output verbosity and the lock check do not change what is built.
    assert_eq!(
        without(&docker_build, &["--locked"]),
        without(&documented, &["-q", "--quiet", "--locked"]),
        "deploy/Dockerfile builds with {docker_build:?}, the README with {documented:?}"
    );

    // Runtime: the binary gets its capabilities in this stage (COPY drops xattrs), the
    // entrypoint is that binary, the user is not root and is the DaemonSet's.
    let runs: Vec<&String> = runtime
        .iter()
        .filter(|(w, _)| w == "RUN")
        .map(|(_, c)| c)
        .collect();
    let setcap = runs
        .iter()
        .flat_map(|c| c.split("&&"))
        .map(str::trim)
        .find(|c| c.starts_with("setcap ") && !c.starts_with("setcap -v"))
        .expect("setcap on the binary in the runtime stage");
    let words: Vec<&str> = setcap.split_whitespace().collect();
    assert_eq!(words.len(), 3, "setcap CAPS FILE: {setcap}");
    let mut caps: Vec<&str> = words[1].trim_end_matches("=eip").split(',').collect();
    caps.sort();
    assert_eq!(caps, ["cap_net_admin", "cap_net_raw"], "{setcap}");
    assert!(words[1].ends_with("=eip"), "{setcap}");
    let binary = words[2];
    let entrypoint = runtime
        .iter()
        .rev()
        .find(|(w, _)| w == "ENTRYPOINT")
        .map(|(_, e)| serde_json::from_str::<Vec<String>>(e).expect("ENTRYPOINT [\"...\"]"))
        .expect("ENTRYPOINT");
    assert!(
        entrypoint[0] == binary || (binary == format!("/usr/local/bin/{}", entrypoint[0])),
        "ENTRYPOINT {entrypoint:?} runs {binary}"
    );
    let user = runtime
        .iter()
        .rev()
        .find(|(w, _)| w == "USER")
        .map(|(_, u)| u.split(':').next().unwrap().to_string())
        .expect("USER in the runtime stage");
    assert!(user != "root" && user != "0", "USER {user}");
    let run_as = sensor(&daemon_set())
        .security_context
        .and_then(|s| s.run_as_user)
        .map(|u| u.to_string());
    assert_eq!(
        Some(user),
        run_as,
        "the image's USER is the DaemonSet's runAsUser"
    );

    // The shipped bundle lands where the ConfigMap's default points, from a file in the repo.
    let model = config_maps()
        .iter()
        .find_map(|cm| cm.data.as_ref().and_then(|d| d.get("model").cloned()))
        .expect("a ConfigMap with the bundle path");
    let copy = runtime
        .iter()
        .filter(|(w, _)| w == "COPY")
        .map(|(_, c)| c.split_whitespace().collect::<Vec<_>>())
        .find(|c| c.last() == Some(&model.as_str()))
        .unwrap_or_else(|| panic!("the runtime stage copies a bundle to {model}"));
    for src in &copy[..copy.len() - 1] {
        if !src.starts_with("--") {
            assert!(repo().join(src).is_file(), "COPY {src}: not in the repo");
        }
    }
}

/// Every `nadir_*` metric name in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut names = Vec::new();
    let mut i = 0;
    while let Some(at) = expr[i..].find("nadir_") {
        let start = i + at;
        let end = start
            + expr[start..]
                .bytes()
                .take_while(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                .count();
        if start == 0 || !word(bytes[start - 1]) {
            names.push(expr[start..end].to_string());
        }
        i = end;
    }
    names
}

/// The dashboard's PromQL: every panel target's `expr` and the variables' queries.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "definition" | "query", Value::String(s)) => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    walk(&dashboard["templating"], &mut out);
    out
}

fn dashboard() -> Value {
    serde_json::from_str(&read(&deploy().join("grafana-dashboard.json")))
        .expect("grafana-dashboard.json is JSON")
}

/// The rule file's (alert name, expr) pairs.
fn rules() -> Vec<(String, String)> {
    let doc = yaml_document(&deploy().join("prometheus-rules.yaml"));
    let mut out = Vec::new();
    for group in doc["groups"].as_array().expect("groups") {
        assert!(group["name"].is_string(), "every group is named");
        for rule in group["rules"].as_array().expect("rules") {
            let name = rule["alert"].as_str().expect("alerting rules only");
            let expr = rule["expr"].as_str().expect("expr");
            assert!(rule["labels"]["severity"].is_string(), "{name}: severity");
            assert!(
                rule["annotations"]["summary"].is_string(),
                "{name}: summary"
            );
            out.push((name.to_string(), expr.to_string()));
        }
    }
    out
}

#[test]
fn dashboard_and_rules_cover_the_sensor() {
    let dash = dashboard();
    for panel in dash["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().expect("panel title");
        let targets = panel["targets"].as_array();
        assert!(
            targets.is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["expr"].is_string())),
            "panel {title}: PromQL targets"
        );
    }
    let used: BTreeSet<String> = dashboard_exprs(&dash)
        .iter()
        .flat_map(|e| metric_names(e))
        .collect();
    for m in [
        "nadir_packets_total",
        "nadir_kernel_drops_total",
        "nadir_decoder_skips_total",
        "nadir_live_flows",
        "nadir_flows_ended_total",
        "nadir_flows_scored_total",
        "nadir_flows_dropped_total",
        "nadir_alerts_total",
        "nadir_workload_alerts_total",
        "nadir_records_dropped_total",
        "nadir_verdict_latency_seconds_bucket",
        "nadir_score_queue",
        "nadir_kube_synced",
    ] {
        assert!(used.contains(m), "the dashboard shows no {m}");
    }
    let alerts: BTreeSet<String> = rules().into_iter().map(|(n, _)| n).collect();
    for a in [
        "NadirSensorDown",
        "NadirKernelDropsRising",
        "NadirRecordsDropped",
        "NadirAlertBurst",
        "NadirPodMapStale",
    ] {
        assert!(alerts.contains(a), "prometheus-rules.yaml has no {a}");
    }
}

#[test]
fn metric_names_are_found_in_promql() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.99, sum by (le) (rate(nadir_verdict_latency_seconds_bucket{job=~".*nadir.*"}[5m]))) / x_nadir_y + nadir_score_queue"#
        ),
        ["nadir_verdict_latency_seconds_bucket", "nadir_score_queue"]
    );
}

#[cfg(feature = "live")]
#[test]
fn dashboard_and_rules_name_only_exported_metrics() {
    let exported: BTreeSet<String> = nadir_detect::metrics::exported_metric_names()
        .into_iter()
        .collect();
    let mut exprs: Vec<(String, String)> = dashboard_exprs(&dashboard())
        .into_iter()
        .map(|e| ("grafana-dashboard.json".to_string(), e))
        .collect();
    exprs.extend(
        rules()
            .into_iter()
            .map(|(name, e)| (format!("prometheus-rules.yaml {name}"), e)),
    );
    let mut checked = 0;
    let mut unknown = BTreeSet::new();
    for (where_, expr) in &exprs {
        for name in metric_names(expr) {
            if !exported.contains(&name) {
                unknown.insert(format!("{name} ({where_})"));
            }
            checked += 1;
        }
    }
    assert!(
        unknown.is_empty(),
        "not metrics nadir exports: {unknown:#?}\nexported: {exported:?}"
    );
    assert!(checked > 20, "only {checked} metric references found");
}
