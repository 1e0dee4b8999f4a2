//! Objects as the store keeps them: the serialized JSON (what every read and watch sends, so
//! nothing is serialized twice) and a small parsed summary for selectors, garbage collection and
//! finalizers.
//!
//! Mirrors kube-apiserver's storage objects (`runtime.Object` as stored in etcd, `metav1.ObjectMeta` rules).

use std::{collections::BTreeMap, sync::Arc};

use bytes::Bytes;
use serde_json::{Map, Value};

/// What the server needs to know of an object without parsing its JSON again.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub api_version: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    /// Selectable fields besides metadata.name/namespace (`spec.nodeName`, `status.phase`).
    pub fields: Vec<(&'static str, String)>,
    /// uids of the owners.
    pub owners: Vec<String>,
    pub finalizers: Vec<String>,
    pub deleting: bool,
}

/// One stored version of an object.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub rv: u64,
    pub json: Bytes,
    pub summary: Arc<Summary>,
}

impl Stored {
    /// Serializes `object` (whose resourceVersion is already `rv`).
    pub fn new(rv: u64, object: &Value) -> Stored {
        let mut json = serde_json::to_vec(object).unwrap_or_default();
        // The serializer's buffer grows by doubling: keep only what the object needs.
        json.shrink_to_fit();
        let json = Bytes::from(json);
        Stored { rv, json, summary: Arc::new(summarize(object)) }
    }

    /// The object parsed again (for writes).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }
}

fn summarize(object: &Value) -> Summary {
    let meta = &object["metadata"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut fields = Vec::new();
    if let Some(node) = object["spec"]["nodeName"].as_str() {
        fields.push(("spec.nodeName", node.to_string()));
    }
    if let Some(phase) = object["status"]["phase"].as_str() {
        fields.push(("status.phase", phase.to_string()));
    }
    if object["kind"] == "Event" {
        event_fields(object, &mut fields);
    }
    Summary {
        api_version: text(&object["apiVersion"]),
        namespace: text(&meta["namespace"]),
        name: text(&meta["name"]),
        uid: text(&meta["uid"]),
        labels: meta["labels"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
            .unwrap_or_default(),
        fields,
        owners: meta["ownerReferences"]
            .as_array()
            .map(|refs| refs.iter().filter_map(|r| r["uid"].as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        finalizers: meta["finalizers"]
            .as_array()
            .map(|f| f.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        deleting: meta.get("deletionTimestamp").is_some_and(|v| !v.is_null()),
    }
}

/// The selectable fields of an Event, under their core/v1 and events.k8s.io/v1 names.
fn event_fields(event: &Value, fields: &mut Vec<(&'static str, String)>) {
    const REFERENCE: [(&str, &str, &str); 7] = [
        ("kind", "involvedObject.kind", "regarding.kind"),
        ("namespace", "involvedObject.namespace", "regarding.namespace"),
        ("name", "involvedObject.name", "regarding.name"),
        ("uid", "involvedObject.uid", "regarding.uid"),
        ("apiVersion", "involvedObject.apiVersion", "regarding.apiVersion"),
        ("resourceVersion", "involvedObject.resourceVersion", "regarding.resourceVersion"),
        ("fieldPath", "involvedObject.fieldPath", "regarding.fieldPath"),
    ];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let object =
        if event["involvedObject"].is_object() { &event["involvedObject"] } else { &event["regarding"] };
    for (key, core, new) in REFERENCE {
        fields.push((core, text(&object[key])));
        fields.push((new, text(&object[key])));
    }
    let controller = if event["reportingComponent"].is_string() {
        text(&event["reportingComponent"])
    } else {
        text(&event["reportingController"])
    };
    fields.push(("reportingComponent", controller.clone()));
    fields.push(("reportingController", controller));
    let source = if event["source"].is_object() { &event["source"] } else { &event["deprecatedSource"] };
    fields.push(("source", text(&source["component"])));
    fields.push(("reason", text(&event["reason"])));
    fields.push(("type", text(&event["type"])));
}

/// The store key of an object: `namespace/name`, or `name` for cluster-scoped objects.
pub(crate) fn key(namespace: &str, name: &str) -> String {
    if namespace.is_empty() { name.to_string() } else { format!("{namespace}/{name}") }
}

/// `metadata` as a mutable map, created when absent.
pub(crate) fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object["metadata"].is_object() {
        object["metadata"] = Value::Object(Map::new());
    }
    match object.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        // Just made an object above.
        _ => unreachable!("metadata is an object"),
    }
}

/// Sets `obj.a.b...= value`, turning missing or non-object steps into objects (indexing a
/// string or number would panic, and clients may store anything under `spec`).
pub(crate) fn set_path(obj: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut node = obj;
    for step in parents.iter().chain(std::iter::once(last)) {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let map = match node {
            Value::Object(m) => m,
            _ => return,
        };
        if step == last {
            map.insert(step.to_string(), value);
            return;
        }
        node = map.entry(step.to_string()).or_insert(Value::Null);
    }
}

/// A random RFC 4122 version-4 UUID.
pub(crate) fn new_uid() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    // The system RNG failing is not recoverable in any useful way; fall back to the clock.
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        b = nanos.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Now, as Kubernetes writes timestamps (RFC 3339, seconds, UTC).
pub(crate) fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A random suffix for `generateName` (5 characters, Kubernetes' alphabet without vowels).
pub(crate) fn random_suffix() -> String {
    use ring::rand::SecureRandom;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut b = [0u8; 5];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b.iter().map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char).collect()
}
