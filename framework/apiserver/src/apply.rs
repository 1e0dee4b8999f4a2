//! Field ownership (`metadata.managedFields`, FieldsV1) and server-side apply.
//!
//! A field set is a set of leaf paths: `f:<name>` steps through a map field, `k:{"name":"x"}`
//! through the list element with that merge key. Lists without a merge key and scalars are
//! leaves (atomic). Every write records who changed what (`Update` entries); an apply
//! (`application/apply-patch+yaml`) records what the manager applied (`Apply` entry), conflicts
//! when it would change a field another manager owns to a different value (unless `force`), and
//! removes the fields the manager applied last time, no longer applies, and nobody else owns.
//!
//! Mirrors kube-apiserver's `fieldmanager` (structured-merge-diff's managed fields and apply).

use std::collections::{BTreeMap, BTreeSet};

use http::{Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::{
    handlers::{
        Ctx, after_write, check_namespace, decode_body, prepare_create, prepare_update, present_value,
    },
    http_util::{Body, json_response},
    object::{key, meta_mut, now},
    resources::ResourceDef,
    status::{ApiError, ApiResult},
    store::Write,
};

type Path = Vec<String>;

/// The merge keys of lists in built-in types (subset of `patchMergeKey`).
fn list_key(field: &str) -> Option<&'static str> {
    match field {
        "containers" | "initContainers" | "ephemeralContainers" | "volumes" | "env" | "imagePullSecrets" => {
            Some("name")
        }
        "volumeMounts" => Some("mountPath"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        _ => None,
    }
}

/// Ports are keyed by containerPort in containers and by port in services.
fn list_key_in(field: &str, parent: &Path) -> Option<&'static str> {
    if field == "ports" {
        return Some(if parent.last().map(String::as_str) == Some("f:spec") {
            "port"
        } else {
            "containerPort"
        });
    }
    list_key(field)
}

fn element_id(key: &str, item: &Value) -> Option<String> {
    item.get(key).map(|v| format!("k:{}", json!({key: v})))
}

/// The leaf paths of an object (without apiVersion, kind, status, and the metadata fields the
/// server owns).
fn leaves(value: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "status") {
                    continue;
                }
                if path.len() == 1
                    && path[0] == "f:metadata"
                    && !matches!(k.as_str(), "labels" | "annotations" | "finalizers" | "ownerReferences")
                {
                    continue;
                }
                if let (Value::Array(items), Some(key)) = (v, list_key_in(k, path)) {
                    path.push(format!("f:{k}"));
                    for item in items {
                        match element_id(key, item) {
                            Some(id) => {
                                path.push(id);
                                leaves(item, path, out);
                                path.pop();
                            }
                            None => {
                                out.insert(path.clone());
                            }
                        }
                    }
                    if items.is_empty() {
                        out.insert(path.clone());
                    }
                    path.pop();
                    continue;
                }
                path.push(format!("f:{k}"));
                leaves(v, path, out);
                path.pop();
            }
        }
        _ => {
            if !path.is_empty() {
                out.insert(path.clone());
            }
        }
    }
}

fn leaf_set(value: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    leaves(value, &mut Vec::new(), &mut out);
    out
}

/// FieldsV1 JSON of a set of paths.
fn to_fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for p in paths {
        let mut node = &mut root;
        for (i, step) in p.iter().enumerate() {
            let entry = node.entry(step.clone()).or_insert_with(|| Value::Object(Map::new()));
            if step.starts_with("k:") && i + 1 < p.len() {
                entry.as_object_mut().map(|m| m.entry(".").or_insert_with(|| json!({})));
            }
            node = match entry {
                Value::Object(m) => m,
                _ => return Value::Object(root),
            };
        }
        if p.last().is_some_and(|s| s.starts_with("k:")) {
            node.insert(".".into(), json!({}));
        }
    }
    Value::Object(root)
}

fn from_fields_v1(fields: &Value) -> BTreeSet<Path> {
    fn walk(node: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
        let Some(map) = node.as_object() else { return };
        let children: Vec<_> = map.iter().filter(|(k, _)| *k != ".").collect();
        if children.is_empty() {
            if !path.is_empty() {
                out.insert(path.clone());
            }
            return;
        }
        for (k, v) in children {
            path.push(k.clone());
            walk(v, path, out);
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(fields, &mut Vec::new(), &mut out);
    out
}

fn value_at<'a>(obj: &'a Value, path: &Path) -> Option<&'a Value> {
    let mut node = obj;
    for step in path {
        node = if let Some(name) = step.strip_prefix("f:") {
            node.get(name)?
        } else if let Some(id) = step.strip_prefix("k:") {
            let want: Map<String, Value> = serde_json::from_str(id).ok()?;
            node.as_array()?.iter().find(|item| want.iter().all(|(k, v)| item.get(k) == Some(v)))?
        } else {
            return None;
        };
    }
    Some(node)
}

fn remove_at(obj: &mut Value, path: &Path) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut node = obj;
    for step in parents {
        let next = if let Some(name) = step.strip_prefix("f:") {
            node.get_mut(name)
        } else if let Some(id) = step.strip_prefix("k:") {
            let Ok(want) = serde_json::from_str::<Map<String, Value>>(id) else { return };
            node.as_array_mut()
                .and_then(|a| a.iter_mut().find(|item| want.iter().all(|(k, v)| item.get(k) == Some(v))))
        } else {
            None
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    if let Some(name) = last.strip_prefix("f:") {
        node.as_object_mut().map(|m| m.remove(name));
    } else if let Some(id) = last.strip_prefix("k:")
        && let Ok(want) = serde_json::from_str::<Map<String, Value>>(id)
        && let Some(list) = node.as_array_mut()
    {
        list.retain(|item| !want.iter().all(|(k, v)| item.get(k) == Some(v)));
    }
}

/// Merges an applied configuration into the live object (maps merged, keyed lists merged by key,
/// other lists and scalars replaced).
fn merge_applied(live: &mut Value, applied: &Value, field: &str, parent: &Path) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            let mut path = parent.clone();
            if !field.is_empty() {
                path.push(format!("f:{field}"));
            }
            for (k, v) in a {
                match l.get_mut(k) {
                    Some(existing) => merge_applied(existing, v, k, &path),
                    None => {
                        l.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(a)) if list_key_in(field, parent).is_some() => {
            let key = list_key_in(field, parent).unwrap_or("name");
            // An element's path is the list's and its key (`ports` in a container is keyed by
            // containerPort, in a Service's spec by port).
            let mut list_path = parent.clone();
            list_path.push(format!("f:{field}"));
            for item in a {
                match l.iter_mut().find(|x| x.get(key).is_some() && x.get(key) == item.get(key)) {
                    Some(existing) => {
                        let mut element = list_path.clone();
                        element.extend(element_id(key, item));
                        merge_applied(existing, item, "", &element)
                    }
                    None => l.push(item.clone()),
                }
            }
        }
        (l, a) => *l = a.clone(),
    }
}

struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    subresource: Option<String>,
    fields: BTreeSet<Path>,
}

fn entries(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| Entry {
                    manager: e["manager"].as_str().unwrap_or_default().to_string(),
                    operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                    api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                    subresource: e["subresource"].as_str().map(str::to_string),
                    fields: from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                "time": now(), "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(&e.fields),
            });
            if let Some(s) = &e.subresource {
                v["subresource"] = json!(s);
            }
            v
        })
        .collect();
    let meta = meta_mut(obj);
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

/// Records a non-apply write: the fields it changed belong to `manager` (an `Update` entry),
/// and no longer to anyone else.
pub(crate) fn record_update(
    obj: &mut Value,
    prev: Option<&Value>,
    manager: &str,
    res: &ResourceDef,
    operation: &str,
) {
    let now_set = leaf_set(obj);
    let changed: BTreeSet<Path> = match prev {
        None => now_set.clone(),
        Some(p) => now_set.iter().filter(|path| value_at(obj, path) != value_at(p, path)).cloned().collect(),
    };
    let source = prev.unwrap_or(obj);
    let mut list = entries(source);
    if changed.is_empty() {
        return;
    }
    for e in &mut list {
        e.fields.retain(|p| !changed.contains(p) && now_set.contains(p));
    }
    match list
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == operation && e.subresource.is_none())
    {
        Some(e) => e.fields.extend(changed),
        None => list.push(Entry {
            manager: manager.to_string(),
            operation: operation.to_string(),
            api_version: res.api_version(),
            subresource: None,
            fields: changed,
        }),
    }
    write_entries(obj, &list);
}

/// `PATCH` with `application/apply-patch+yaml`.
pub(crate) fn server_side_apply(ctx: Ctx) -> ApiResult<Response<Body>> {
    let res = ctx.target.res.clone();
    let name = ctx.target.name.clone().unwrap_or_default();
    let namespace = ctx.target.namespace.clone().unwrap_or_default();
    let manager = match ctx.query.get("fieldManager") {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => {
            return Err(ApiError::bad_request(
                "PATCH, application/apply-patch+yaml requires fieldManager parameter",
            ));
        }
    };
    let force = ctx.query.flag("force")?;
    let mut applied = decode_body("application/yaml", &ctx.body)?;
    for (field, expected) in [("apiVersion", res.api_version()), ("kind", res.kind.clone())] {
        match applied[field].as_str() {
            Some(v) if v == expected => {}
            Some(v) => {
                return Err(ApiError::bad_request(format!(
                    "the {field} in the applied configuration ({v}) does not match the expected {field} ({expected})"
                )));
            }
            None => {
                return Err(ApiError::bad_request(format!(
                    "{field} must be set in an applied configuration"
                )));
            }
        }
    }
    if let Some(n) = applied["metadata"]["name"].as_str()
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    meta_mut(&mut applied).insert("name".into(), json!(name));
    let sub = ctx.target.sub.clone();
    let applied_paths = if sub.as_deref() == Some("status") {
        // The status subresource resets everything but the status (kube-apiserver's reset
        // fields): what an apply sends elsewhere is neither merged, nor owned, nor a conflict.
        let status = applied["status"].take();
        applied = json!({
            "apiVersion": applied["apiVersion"].take(),
            "kind": applied["kind"].take(),
            "metadata": {"name": name},
            "status": status,
        });
        let mut paths = BTreeSet::new();
        leaves(&applied["status"], &mut vec!["f:status".to_string()], &mut paths);
        paths
    } else {
        leaf_set(&applied)
    };
    let storage: std::sync::Arc<str> = std::sync::Arc::from(res.storage.as_str());
    if ctx.server.store.get(&storage, &key(&namespace, &name)).is_none() && res.namespaced {
        check_namespace(&ctx.server, &namespace, &res, &name)?;
    }
    let server = ctx.server.clone();
    // dryRun=All: the decision is computed under the store's lock like a real write, then
    // returned instead of stored (the closure stops the write with a marker error).
    let dry_run = ctx.dry_run();
    let preview: parking_lot::Mutex<Option<(Value, bool)>> = parking_lot::Mutex::new(None);
    let decide = |current: Option<&crate::object::Stored>| -> ApiResult<Write> {
        let Some(current) = current else {
            // Apply creates.
            let (mut obj, _) = prepare_create(&server, &res, &namespace, applied.clone())?;
            let entry = Entry {
                manager: manager.clone(),
                operation: "Apply".into(),
                api_version: res.api_version(),
                subresource: None,
                fields: applied_paths.clone(),
            };
            write_entries(&mut obj, &[entry]);
            return Ok(Write::Put(obj));
        };
        let live = current.value();
        let mut list = entries(&live);
        // Conflicts: fields another manager owns that this apply would change.
        let mut conflicts: BTreeMap<Path, Vec<(String, String)>> = BTreeMap::new();
        for e in list.iter().filter(|e| !(e.manager == manager && e.operation == "Apply")) {
            for p in e.fields.intersection(&applied_paths) {
                if value_at(&live, p) != value_at(&applied, p) {
                    conflicts.entry(p.clone()).or_default().push((e.manager.clone(), e.api_version.clone()));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            let mut causes = Vec::new();
            let mut lines = Vec::new();
            for (p, owners) in &conflicts {
                let field = dotted(p);
                for (m, v) in owners {
                    causes.push(json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\" using {v}"), "field": field}));
                    lines.push(format!("- {m}: {field}"));
                }
            }
            let message = format!(
                "Apply failed with {} conflict{}: {}",
                causes.len(),
                if causes.len() == 1 { "" } else { "s" },
                conflicts
                    .iter()
                    .flat_map(|(p, o)| o
                        .iter()
                        .map(move |(m, v)| format!("conflict with \"{m}\" using {v}: {}", dotted(p))))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            return Err(ApiError::new(StatusCode::CONFLICT, "Conflict", message)
                .with_details(json!({"causes": causes})));
        }
        // Forced: the others lose the conflicting fields.
        for e in list.iter_mut().filter(|e| !(e.manager == manager && e.operation == "Apply")) {
            e.fields.retain(|p| !conflicts.contains_key(p));
        }
        let previous: BTreeSet<Path> = list
            .iter()
            .find(|e| e.manager == manager && e.operation == "Apply")
            .map(|e| e.fields.clone())
            .unwrap_or_default();
        let others: BTreeSet<Path> = list
            .iter()
            .filter(|e| !(e.manager == manager && e.operation == "Apply"))
            .flat_map(|e| e.fields.iter().cloned())
            .collect();
        let mut merged = live.clone();
        for p in previous.difference(&applied_paths) {
            if !others.contains(p) {
                remove_at(&mut merged, p);
            }
        }
        let mut body = applied.clone();
        if sub.as_deref() == Some("status") {
            body = json!({"status": applied["status"].clone()});
        }
        merge_applied(&mut merged, &body, "", &Vec::new());
        meta_mut(&mut merged).remove("resourceVersion");
        list.retain(|e| !(e.manager == manager && e.operation == "Apply"));
        list.push(Entry {
            manager: manager.clone(),
            operation: "Apply".into(),
            api_version: res.api_version(),
            subresource: sub.clone(),
            fields: applied_paths.clone(),
        });
        let decision = prepare_update(&server.allocations, &res, current, merged, sub.as_deref(), &manager)?;
        Ok(match decision {
            Write::Put(mut obj) => {
                write_entries(&mut obj, &list);
                Write::Put(obj)
            }
            Write::Unchanged(s) => {
                // The values did not change, but the ownership may have.
                let mut obj = s.value();
                let before = obj["metadata"]["managedFields"].clone();
                write_entries(&mut obj, &list);
                let after_fields: Vec<Value> = obj["metadata"]["managedFields"]
                    .as_array()
                    .map(|a| a.iter().map(|e| json!([e["manager"], e["operation"], e["fieldsV1"]])).collect())
                    .unwrap_or_default();
                let before_fields: Vec<Value> = before
                    .as_array()
                    .map(|a| a.iter().map(|e| json!([e["manager"], e["operation"], e["fieldsV1"]])).collect())
                    .unwrap_or_default();
                if after_fields == before_fields {
                    Write::Unchanged(s)
                } else {
                    meta_mut(&mut obj).remove("resourceVersion");
                    Write::Put(obj)
                }
            }
            other => other,
        })
    };
    if !dry_run {
        let attrs = ctx.attributes(crate::admission::Operation::Update);
        let written =
            crate::admission::write(&ctx.server, &attrs, &storage, &key(&namespace, &name), decide)?;
        after_write(&ctx.server, &res, &written);
        let created = matches!(written, crate::store::Written::Put { created: true, .. });
        let code = if created { StatusCode::CREATED } else { StatusCode::OK };
        return Ok(json_response(
            code,
            present_value(&res, &crate::conversion::view(&ctx.server, &res, written.object())?),
        ));
    }
    let result = ctx.server.store.write(&storage, &key(&namespace, &name), |current, _| {
        let created = current.is_none();
        let decision = decide(current)?;
        if dry_run {
            let value = match &decision {
                Write::Put(obj) => obj.clone(),
                Write::Unchanged(s) => s.value(),
                Write::Delete(obj) => obj.clone(),
            };
            *preview.lock() = Some((value, created));
            return Err(ApiError::bad_request("dry run".to_string()));
        }
        Ok(decision)
    });
    if let Some((value, created)) = preview.lock().take() {
        let code = if created { StatusCode::CREATED } else { StatusCode::OK };
        return Ok(json_response(code, bytes::Bytes::from(value.to_string())));
    }
    result.map(|_| json_response(StatusCode::OK, bytes::Bytes::new()))
}

fn dotted(path: &Path) -> String {
    path.iter()
        .map(|s| match s.strip_prefix("f:") {
            Some(n) => format!(".{n}"),
            None => format!("[{}]", s.strip_prefix("k:").unwrap_or(s)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_round_trip() {
        let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}], "nodeName": "n"}, "status": {"phase": "P"}});
        let set = leaf_set(&obj);
        let v1 = to_fields_v1(&set);
        assert_eq!(
            v1,
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}, "f:nodeName": {}}})
        );
        assert_eq!(from_fields_v1(&v1), set);
        let p = set.iter().find(|p| p.last().map(String::as_str) == Some("f:image")).unwrap();
        assert_eq!(value_at(&obj, p), Some(&json!("i")));
        assert_eq!(dotted(p), ".spec.containers[{\"name\":\"c\"}].image");
    }

    #[test]
    fn applying_the_same_keyed_lists_again_changes_nothing() {
        // Container ports are keyed by containerPort (they sit under a container, not a
        // Service's spec): applying them again must not append copies.
        let deployment = json!({"spec": {"template": {"spec": {
            "containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}],
                "volumeMounts": [{"name": "content", "mountPath": "/html"}]}],
            "volumes": [{"name": "content", "configMap": {"name": "c"}}]}}}});
        let mut live = deployment.clone();
        merge_applied(&mut live, &deployment, "", &Vec::new());
        assert_eq!(live, deployment);
        let service = json!({"spec": {"ports": [{"name": "http", "port": 80}]}});
        let mut live = service.clone();
        merge_applied(
            &mut live,
            &json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}),
            "",
            &Vec::new(),
        );
        assert_eq!(live, json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}));
    }
}
