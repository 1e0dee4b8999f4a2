//! Events are one resource with two APIs in kube-apiserver: core/v1 `Event` and
//! events.k8s.io/v1 `Event` are stored once and served in either shape, so `kubectl describe`
//! (core/v1) shows what a controller recorded through events.k8s.io/v1. Here each API keeps its
//! own table and every write to one is copied into the other, converted (same name, namespace
//! and uid; its own resourceVersion), as kube-apiserver's conversion maps the fields:
//! `involvedObject`/`regarding`, `message`/`note`, `source`/`deprecatedSource`,
//! `firstTimestamp`, `lastTimestamp` and `count` / their `deprecated` names,
//! `reportingComponent`/`reportingController`.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::{
    object::key,
    resources::ResourceDef,
    server::Server,
    status::ApiError,
    store::{Write, Written},
};

/// (core/v1 name, events.k8s.io/v1 name) of the fields that differ.
const RENAMES: [(&str, &str); 7] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// `event` in the other API's shape (`to_core`: into core/v1, else into events.k8s.io/v1).
pub(crate) fn convert(event: &Value, to_core: bool) -> Value {
    let Some(fields) = event.as_object() else {
        return event.clone();
    };
    let mut out = Map::new();
    for (name, value) in fields {
        let renamed = RENAMES.iter().find_map(|(core, new)| match to_core {
            true if name == new => Some(*core),
            false if name == core => Some(*new),
            _ => None,
        });
        out.insert(renamed.unwrap_or(name).to_string(), value.clone());
    }
    out.insert("apiVersion".into(), json!(if to_core { "v1" } else { "events.k8s.io/v1" }));
    Value::Object(out)
}

/// Whether `res` is one of the two Event resources.
pub(crate) fn is_event(res: &ResourceDef) -> bool {
    res.plural == "events" && (res.group.is_empty() || res.group == "events.k8s.io")
}

/// Copies a write to one Event API into the other one's table.
pub(crate) fn mirror(server: &Server, res: &ResourceDef, written: &Written) {
    let to_core = res.group == "events.k8s.io";
    let other: Arc<str> = Arc::from(if to_core { "/events" } else { "events.k8s.io/events" });
    match written {
        Written::Put { obj, .. } => {
            let value = obj.value();
            let meta = &value["metadata"];
            let k = key(
                meta["namespace"].as_str().unwrap_or_default(),
                meta["name"].as_str().unwrap_or_default(),
            );
            let converted = convert(&value, to_core);
            let _ = server.store.write::<ApiError>(&other, &k, |_, _| Ok(Write::Put(converted)));
        }
        Written::Deleted(obj) => {
            let k = key(&obj.summary.namespace, &obj.summary.name);
            let _ = server.store.write::<ApiError>(&other, &k, |current, _| {
                Ok(match current {
                    Some(c) => Write::Delete(c.value()),
                    None => Write::Unchanged(obj.clone()),
                })
            });
        }
        Written::Unchanged(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways_and_back() {
        let new = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "regarding": {"kind": "Website", "name": "hello"}, "note": "created", "reason": "Created",
            "reportingController": "website-operator", "reportingInstance": "pod-1", "action": "Reconcile",
            "type": "Normal", "eventTime": "2026-01-01T00:00:00.000000Z",
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"},
            "deprecatedCount": 2
        });
        let core = convert(&new, true);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "hello");
        assert_eq!(core["message"], "created");
        assert_eq!(core["reportingComponent"], "website-operator");
        assert_eq!(core["count"], 2);
        assert_eq!(core["series"]["count"], 2);
        assert!(core.get("regarding").is_none() && core.get("note").is_none());
        assert_eq!(convert(&core, false), new);
    }
}
