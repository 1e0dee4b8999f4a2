//! What kube-apiserver fills in when built-in objects are written: the defaults of the API
//! types (`SetDefaults_*` of k8s.io/api's versions), the admission plugins every cluster runs
//! (ServiceAccount, DefaultTolerationSeconds, Priority) and the allocations of the Service and
//! Job strategies. Objects read back then look like a cluster's, and a client that compares its
//! desired state with the stored one does not see a difference that never goes away.
//!
//! Applied on create and on every write of the whole object (update, patch, apply), once the
//! object has been checked against its type (so every field holds what its type says), as
//! kube-apiserver defaults an object when it decodes it. The README lists them.

use std::collections::HashSet;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::resources::ResourceDef;

/// ClusterIPs and node ports handed out (never given back: an in-memory server lives shortly).
#[derive(Default)]
pub(crate) struct Allocations {
    next_ip: u32,
    ips: HashSet<String>,
    next_port: u16,
    ports: HashSet<i64>,
}

/// The Service ClusterIP range (kube-apiserver's default `--service-cluster-ip-range`); `.1` is
/// the `kubernetes` Service's, `.10` kube-dns'.
const SERVICE_NET: [u8; 2] = [10, 96];
/// The node port range (`--service-node-port-range`).
const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

impl Allocations {
    fn cluster_ip(&mut self) -> String {
        loop {
            self.next_ip += 1;
            // 10.96.0.0/12: skip .0, .1 and .10 of the first block.
            let n = self.next_ip + 1;
            if n == 10 {
                continue;
            }
            let second = u32::from(SERVICE_NET[1]) + ((n >> 16) & 15);
            let ip = format!("{}.{second}.{}.{}", SERVICE_NET[0], (n >> 8) & 255, n & 255);
            if n & 255 != 0 && self.ips.insert(ip.clone()) {
                return ip;
            }
        }
    }

    fn node_port(&mut self) -> Option<i64> {
        let span = NODE_PORTS.end() - NODE_PORTS.start() + 1;
        for _ in 0..span {
            let port = i64::from(NODE_PORTS.start() + self.next_port % span);
            self.next_port = self.next_port.wrapping_add(1) % span;
            if self.ports.insert(port) {
                return Some(port);
            }
        }
        None
    }
}

/// Fills in `obj` (of `res`, being created when `old` is `None`, else replacing `old`).
pub(crate) fn apply(
    res: &ResourceDef,
    obj: &mut Value,
    old: Option<&Value>,
    alloc: &parking_lot::Mutex<Allocations>,
) {
    if res.custom {
        return;
    }
    match (res.group.as_str(), res.plural.as_str()) {
        ("", "secrets") => secret(obj),
        ("", "namespaces") => {
            let name = obj["metadata"]["name"].clone();
            let labels = object(&mut obj["metadata"], "labels");
            labels.insert("kubernetes.io/metadata.name".into(), name);
        }
        ("", "pods") => pod(obj),
        ("", "podtemplates") => pod_template(obj, "/template"),
        ("", "replicationcontrollers") => {
            let spec = object(obj, "spec");
            set(spec, "replicas", json!(1));
            pod_template(obj, "/spec/template");
        }
        ("", "services") => service(obj, old, alloc),
        ("", "persistentvolumeclaims") => {
            set(object(obj, "spec"), "volumeMode", json!("Filesystem"));
        }
        ("apps", "deployments") => {
            let spec = object(obj, "spec");
            set(spec, "replicas", json!(1));
            set(spec, "revisionHistoryLimit", json!(10));
            set(spec, "progressDeadlineSeconds", json!(600));
            let strategy = object(&mut obj["spec"], "strategy");
            set(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                let rolling = object(&mut obj["spec"]["strategy"], "rollingUpdate");
                set(rolling, "maxUnavailable", json!("25%"));
                set(rolling, "maxSurge", json!("25%"));
            }
            pod_template(obj, "/spec/template");
        }
        ("apps", "replicasets") => {
            set(object(obj, "spec"), "replicas", json!(1));
            pod_template(obj, "/spec/template");
        }
        ("apps", "statefulsets") => {
            let spec = object(obj, "spec");
            set(spec, "replicas", json!(1));
            set(spec, "podManagementPolicy", json!("OrderedReady"));
            set(spec, "revisionHistoryLimit", json!(10));
            let strategy = object(&mut obj["spec"], "updateStrategy");
            set(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                set(object(&mut obj["spec"]["updateStrategy"], "rollingUpdate"), "partition", json!(0));
            }
            let retention = object(&mut obj["spec"], "persistentVolumeClaimRetentionPolicy");
            set(retention, "whenDeleted", json!("Retain"));
            set(retention, "whenScaled", json!("Retain"));
            if let Some(claims) = obj.pointer_mut("/spec/volumeClaimTemplates").and_then(Value::as_array_mut)
            {
                for claim in claims {
                    set(object(claim, "spec"), "volumeMode", json!("Filesystem"));
                }
            }
            pod_template(obj, "/spec/template");
        }
        ("apps", "daemonsets") => {
            set(object(obj, "spec"), "revisionHistoryLimit", json!(10));
            let strategy = object(&mut obj["spec"], "updateStrategy");
            set(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                let rolling = object(&mut obj["spec"]["updateStrategy"], "rollingUpdate");
                set(rolling, "maxUnavailable", json!(1));
                set(rolling, "maxSurge", json!(0));
            }
            pod_template(obj, "/spec/template");
        }
        ("batch", "jobs") => job(obj, old),
        ("batch", "cronjobs") => {
            let spec = object(obj, "spec");
            set(spec, "concurrencyPolicy", json!("Allow"));
            set(spec, "suspend", json!(false));
            set(spec, "successfulJobsHistoryLimit", json!(3));
            set(spec, "failedJobsHistoryLimit", json!(1));
            pod_template(obj, "/spec/jobTemplate/spec/template");
        }
        _ => {}
    }
}

/// `stringData` is written into `data` (base64), winning over the same keys there, and
/// dropped; `type` defaults to `Opaque`.
fn secret(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else { return };
    if let Some(Value::Object(strings)) = map.remove("stringData") {
        let data = object(obj, "data");
        for (k, v) in strings {
            let text = v.as_str().unwrap_or_default();
            data.insert(k, json!(base64::engine::general_purpose::STANDARD.encode(text)));
        }
    }
    if let Some(map) = obj.as_object_mut() {
        set(map, "type", json!("Opaque"));
    }
}

/// A Pod: its spec's defaults plus what the admission plugins add.
fn pod(obj: &mut Value) {
    pod_spec(&mut obj["spec"]);
    let spec = object(obj, "spec");
    set(spec, "enableServiceLinks", json!(true));
    // ServiceAccount admission (and the deprecated alias kept in step).
    let account = spec
        .get("serviceAccountName")
        .or_else(|| spec.get("serviceAccount"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string();
    spec.insert("serviceAccountName".into(), json!(account));
    spec.insert("serviceAccount".into(), json!(account));
    // Priority admission.
    set(spec, "priority", json!(0));
    set(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    // DefaultTolerationSeconds admission.
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if let Some(list) = tolerations.as_array_mut() {
        for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
            if !list.iter().any(|t| t["key"] == key) {
                list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
            }
        }
    }
}

/// A pod template (`.spec.template` of the workloads).
/// The pod template at `pointer` of `obj`, when there is one (nothing is added when not).
fn pod_template(obj: &mut Value, pointer: &str) {
    if let Some(spec) = obj.pointer_mut(&format!("{pointer}/spec")) {
        pod_spec(spec);
    }
}

/// `SetDefaults_PodSpec` and the defaults of what a PodSpec holds.
fn pod_spec(spec: &mut Value) {
    let Some(map) = spec.as_object_mut() else { return };
    set(map, "restartPolicy", json!("Always"));
    set(map, "dnsPolicy", json!("ClusterFirst"));
    set(map, "schedulerName", json!("default-scheduler"));
    set(map, "terminationGracePeriodSeconds", json!(30));
    set(map, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(containers) = map.get_mut(list).and_then(Value::as_array_mut) {
            containers.iter_mut().for_each(container);
        }
    }
    if let Some(volumes) = map.get_mut("volumes").and_then(Value::as_array_mut) {
        volumes.iter_mut().for_each(volume);
    }
}

/// `SetDefaults_Container` and its ports, probes and environment.
fn container(c: &mut Value) {
    let Some(map) = c.as_object_mut() else { return };
    set(map, "terminationMessagePath", json!("/dev/termination-log"));
    set(map, "terminationMessagePolicy", json!("File"));
    set(map, "resources", json!({}));
    if map.get("imagePullPolicy").is_none_or(|p| p.as_str().is_none_or(|p| p.is_empty())) {
        let image = map.get("image").and_then(Value::as_str).unwrap_or_default();
        map.insert("imagePullPolicy".into(), json!(pull_policy(image)));
    }
    if let Some(ports) = map.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            set(port, "protocol", json!("TCP"));
        }
    }
    if let Some(env) = map.get_mut("env").and_then(Value::as_array_mut) {
        for var in env {
            if let Some(field) = var.pointer_mut("/valueFrom/fieldRef").and_then(Value::as_object_mut) {
                set(field, "apiVersion", json!("v1"));
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = map.get_mut(probe).and_then(Value::as_object_mut) {
            set(p, "timeoutSeconds", json!(1));
            set(p, "periodSeconds", json!(10));
            set(p, "successThreshold", json!(1));
            set(p, "failureThreshold", json!(3));
            if let Some(get) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
                set(get, "path", json!("/"));
                set(get, "scheme", json!("HTTP"));
            }
        }
    }
}

/// `IfNotPresent` for an image with a tag other than `latest` or a digest, else `Always`.
fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

/// The volume sources' defaults (file modes 0644).
fn volume(v: &mut Value) {
    let Some(map) = v.as_object_mut() else { return };
    let sources = ["secret", "configMap", "downwardAPI", "projected"];
    for source in sources {
        if let Some(s) = map.get_mut(source).and_then(Value::as_object_mut) {
            set(s, "defaultMode", json!(420));
        }
    }
    if let Some(h) = map.get_mut("hostPath").and_then(Value::as_object_mut) {
        set(h, "type", json!(""));
    }
    let has_source = map.keys().any(|k| k != "name");
    if !has_source {
        map.insert("emptyDir".into(), json!({}));
    }
}

/// Service defaults, and its ClusterIP and node ports: allocated on create, kept from the old
/// object on an update that does not set them (kube-apiserver's `patchAllocatedValues`).
fn service(obj: &mut Value, old: Option<&Value>, alloc: &parking_lot::Mutex<Allocations>) {
    let spec = object(obj, "spec");
    set(spec, "type", json!("ClusterIP"));
    let kind = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if kind == "ExternalName" {
        return;
    }
    set(spec, "sessionAffinity", json!("None"));
    set(spec, "internalTrafficPolicy", json!("Cluster"));
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            set(port, "protocol", json!("TCP"));
            if let Some(p) = port.get("port").cloned() {
                set(port, "targetPort", p);
            }
        }
    }
    let old_spec = old.map(|o| &o["spec"]);
    let mut alloc = alloc.lock();
    // ClusterIP: kept, or "None" (headless), or allocated.
    let unset = |v: Option<&Value>| v.is_none_or(|v| v.is_null() || v.as_str() == Some(""));
    if unset(spec.get("clusterIP")) {
        let ip = match old_spec.and_then(|o| o["clusterIP"].as_str()).filter(|ip| !ip.is_empty()) {
            Some(ip) => ip.to_string(),
            None => alloc.cluster_ip(),
        };
        spec.insert("clusterIP".into(), json!(ip));
    } else if let Some(ip) = spec["clusterIP"].as_str() {
        alloc.ips.insert(ip.to_string());
    }
    if unset(spec.get("clusterIPs")) || spec["clusterIPs"].as_array().is_some_and(|a| a.is_empty()) {
        let ip = spec["clusterIP"].clone();
        spec.insert("clusterIPs".into(), json!([ip]));
    }
    set(spec, "ipFamilies", json!(["IPv4"]));
    set(spec, "ipFamilyPolicy", json!("SingleStack"));
    if kind == "NodePort" || kind == "LoadBalancer" {
        set(spec, "externalTrafficPolicy", json!("Cluster"));
        if kind == "LoadBalancer" {
            set(spec, "allocateLoadBalancerNodePorts", json!(true));
        }
        let old_ports = old_spec.and_then(|o| o["ports"].as_array()).cloned().unwrap_or_default();
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                if port.get("nodePort").and_then(Value::as_i64).is_some_and(|p| p != 0) {
                    if let Some(p) = port["nodePort"].as_i64() {
                        alloc.ports.insert(p);
                    }
                    continue;
                }
                let kept = old_ports
                    .iter()
                    .find(|o| o["port"] == port["port"] && o["protocol"] == port["protocol"])
                    .and_then(|o| o["nodePort"].as_i64());
                if let Some(p) = kept.or_else(|| alloc.node_port()) {
                    port.insert("nodePort".into(), json!(p));
                }
            }
        }
    }
}

/// Job defaults, and the selector and labels its strategy generates (from the Job's uid) when
/// `manualSelector` is not set; an update keeps the old ones.
fn job(obj: &mut Value, old: Option<&Value>) {
    let uid = obj["metadata"]["uid"].as_str().unwrap_or_default().to_string();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let spec = object(obj, "spec");
    match (
        spec.get("completions").is_some_and(|v| !v.is_null()),
        spec.get("parallelism").is_some_and(|v| !v.is_null()),
    ) {
        (false, false) => {
            spec.insert("completions".into(), json!(1));
            spec.insert("parallelism".into(), json!(1));
        }
        (_, false) => {
            spec.insert("parallelism".into(), json!(1));
        }
        _ => {}
    }
    set(spec, "backoffLimit", json!(6));
    set(spec, "completionMode", json!("NonIndexed"));
    set(spec, "suspend", json!(false));
    set(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    let manual = spec.get("manualSelector").and_then(Value::as_bool).unwrap_or(false);
    if !manual {
        let old_selector = old.map(|o| o["spec"]["selector"].clone()).filter(|s| s.is_object());
        let selector = old_selector
            .unwrap_or_else(|| json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}));
        let uid = selector["matchLabels"]["batch.kubernetes.io/controller-uid"].clone();
        spec.insert("selector".into(), selector);
        let labels = object(&mut obj["spec"]["template"]["metadata"], "labels");
        for (k, v) in [
            ("batch.kubernetes.io/controller-uid", uid.clone()),
            ("batch.kubernetes.io/job-name", json!(name)),
            ("controller-uid", uid),
            ("job-name", json!(name)),
        ] {
            labels.entry(k).or_insert(v);
        }
    }
    pod_template(obj, "/spec/template");
}

/// Sets `key` when it is absent or null.
fn set(map: &mut Map<String, Value>, key: &str, value: Value) {
    match map.get(key) {
        Some(v) if !v.is_null() => {}
        _ => {
            map.insert(key.to_string(), value);
        }
    }
}

/// The object at `key` of `parent` (made an object, and created, when it is not one).
fn object<'a>(parent: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    object_value(&mut parent[key])
}

/// `v` as an object (replacing a null or a non-object).
fn object_value(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = json!({});
    }
    match v {
        Value::Object(m) => m,
        // Just made an object above.
        _ => unreachable!("an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies_follow_the_tag() {
        assert_eq!(pull_policy("nginx"), "Always");
        assert_eq!(pull_policy("nginx:latest"), "Always");
        assert_eq!(pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(pull_policy("registry:5000/team/app"), "Always");
        assert_eq!(pull_policy("registry:5000/team/app:v2"), "IfNotPresent");
        assert_eq!(pull_policy("app@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn cluster_ips_are_distinct_and_skip_the_reserved_ones() {
        let mut a = Allocations::default();
        let ips: Vec<String> = (0..600).map(|_| a.cluster_ip()).collect();
        assert_eq!(ips[0], "10.96.0.2");
        assert!(!ips.contains(&"10.96.0.10".to_string()));
        assert!(!ips.iter().any(|ip| ip.ends_with(".0")));
        assert_eq!(ips.iter().collect::<HashSet<_>>().len(), 600);
    }
}
