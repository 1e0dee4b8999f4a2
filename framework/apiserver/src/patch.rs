//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902, `test` included) and
//! Kubernetes strategic merge patch for built-in types (lists merged by their merge keys,
//! `$patch: delete|replace|merge`, `$deleteFromPrimitiveList`, `$setElementOrder` and
//! `$retainKeys` directives).
//!
//! Mirrors kube-apiserver's `endpoints/handlers/patch.go` and apimachinery's `strategicpatch`.

use serde_json::{Map, Value};

/// The merge key of a list field in built-in types (`patchMergeKey`), by field name.
fn merge_key(field: &str, parent_path: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "imagePullSecrets"
        | "env"
        | "hostAliases"
        | "readinessGates"
        | "resourceClaims"
        | "topologySpreadConstraints" => match field {
            "hostAliases" => Some("ip"),
            "readinessGates" => Some("conditionType"),
            "topologySpreadConstraints" => Some("topologyKey"),
            _ => Some("name"),
        },
        "ports" if parent_path.ends_with("spec") => Some("port"),
        "ports" => Some("containerPort"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "envFrom" => None,
        _ => None,
    }
}

/// Primitive lists whose patch strategy is `merge` (set union).
fn merges_primitives(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Applies a JSON merge patch.
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies an RFC 6902 patch, all or nothing. As in kube-apiserver (evanphx/json-patch), a
/// `test` of `null` passes for a path that does not exist (clients use it to say "not set yet").
///
/// Bounded as kube-apiserver bounds it: at most [`MAX_JSON_PATCH_OPERATIONS`] operations, and the
/// values `copy` operations duplicate add up to at most `copy_limit` bytes (a few operations
/// doubling a value would otherwise grow the object exponentially).
pub(crate) fn json(target: &mut Value, patch: &Value, copy_limit: usize) -> Result<(), String> {
    if let Some(ops) = patch.as_array()
        && ops.len() > MAX_JSON_PATCH_OPERATIONS
    {
        return Err(format!(
            "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
            ops.len()
        ));
    }
    let patch: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| format!("invalid JSON patch: {e}"))?;
    let original = target.clone();
    let mut copied = 0usize;
    for op in patch.0 {
        if let json_patch::PatchOperation::Copy(c) = &op
            && let Some(source) = target.pointer(c.from.as_str())
        {
            copied = copied.saturating_add(encoded_len(source));
            if copied > copy_limit {
                *target = original;
                return Err(format!(
                    "Unable to apply patch: Copy operation's accumulated size exceeded limit: {copy_limit} bytes"
                ));
            }
        }
        if let json_patch::PatchOperation::Test(t) = &op
            && t.value.is_null()
            && target.pointer(t.path.as_str()).is_none()
        {
            continue;
        }
        if let Err(e) = json_patch::patch(target, &[op]) {
            *target = original;
            return Err(e.to_string());
        }
    }
    Ok(())
}

/// kube-apiserver's `maxJSONPatchOperations`.
pub(crate) const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The length of a value encoded as JSON, without building the encoding.
pub(crate) fn encoded_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, and a Value always serializes.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Applies a strategic merge patch to a built-in object.
pub(crate) fn strategic(target: &mut Value, patch: &Value) -> Result<(), String> {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => strategic_map(t, p, ""),
        _ => Err("a strategic merge patch must be a JSON object".into()),
    }
}

fn strategic_map(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    path: &str,
) -> Result<(), String> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = patch.clone();
            target.remove("$patch");
            strip_directives(target);
            return Ok(());
        }
        Some("delete") => {
            target.clear();
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("unknown patch type: {other}")),
    }
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        target.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (target.get_mut(field), value) {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        let child_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        if value.is_null() {
            target.remove(key);
            continue;
        }
        match (target.get_mut(key), value) {
            (Some(Value::Object(t)), Value::Object(p)) => {
                strategic_map(t, p, &child_path)?;
                if p.get("$patch").and_then(Value::as_str) == Some("delete") {
                    target.remove(key);
                }
            }
            (Some(Value::Array(t)), Value::Array(p)) => strategic_list(t, p, key, path)?,
            (_, v) => {
                let mut v = v.clone();
                if let Value::Object(m) = &mut v {
                    if m.get("$patch").and_then(Value::as_str) == Some("delete") {
                        target.remove(key);
                        continue;
                    }
                    strip_directives(m);
                }
                if let Value::Array(items) = &mut v {
                    items.retain(|i| i.get("$patch").is_none());
                    for i in items.iter_mut() {
                        if let Value::Object(m) = i {
                            strip_directives(m);
                        }
                    }
                }
                target.insert(key.clone(), v);
            }
        }
    }
    Ok(())
}

fn strip_directives(map: &mut Map<String, Value>) {
    map.retain(|k, _| !k.starts_with('$'));
    for v in map.values_mut() {
        if let Value::Object(m) = v {
            strip_directives(m);
        }
    }
}

fn strategic_list(
    target: &mut Vec<Value>,
    patch: &[Value],
    field: &str,
    parent_path: &str,
) -> Result<(), String> {
    // `[{"$patch": "replace"}, ...]` replaces the whole list.
    if patch.iter().any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace")) {
        *target = patch.iter().filter(|p| p.get("$patch").is_none()).cloned().collect();
        return Ok(());
    }
    if let Some(key) = merge_key(field, parent_path) {
        for p in patch {
            let Some(pm) = p.as_object() else {
                return Err(format!("{field}: expected a list of objects"));
            };
            let Some(id) = pm.get(key) else {
                if pm.get("$patch").is_some() {
                    continue;
                }
                return Err(format!("{field}: map: {pm:?} does not contain declared merge key: {key}"));
            };
            let existing = target.iter().position(|t| t.get(key) == Some(id));
            match (existing, pm.get("$patch").and_then(Value::as_str)) {
                (Some(i), Some("delete")) => {
                    target.remove(i);
                }
                (None, Some("delete")) => {}
                (Some(i), _) => {
                    if let Some(t) = target[i].as_object_mut() {
                        strategic_map(t, pm, field)?;
                    }
                }
                (None, _) => {
                    let mut m = pm.clone();
                    strip_directives(&mut m);
                    target.push(Value::Object(m));
                }
            }
        }
        return Ok(());
    }
    if merges_primitives(field) {
        for p in patch {
            if !target.contains(p) {
                target.push(p.clone());
            }
        }
        return Ok(());
    }
    *target = patch.to_vec();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_containers_by_name_and_deletes_with_directive() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}
        ]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [
                {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
                {"name": "b", "$patch": "delete"},
                {"name": "c", "image": "c:1"}
            ]
        }});
        strategic(&mut pod, &patch).unwrap();
        assert_eq!(
            pod,
            json!({"spec": {"containers": [
                {"name": "a", "image": "a:2", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
                {"name": "c", "image": "c:1"}
            ]}})
        );
    }

    #[test]
    fn null_removes_and_finalizers_union() {
        let mut obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x"]}});
        strategic(&mut obj, &json!({"metadata": {"labels": {"a": null}, "finalizers": ["y"]}})).unwrap();
        assert_eq!(obj, json!({"metadata": {"labels": {"b": "2"}, "finalizers": ["x", "y"]}}));
        strategic(&mut obj, &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}})).unwrap();
        assert_eq!(obj["metadata"]["finalizers"], json!(["y"]));
    }

    #[test]
    fn json_patch_test_op() {
        let mut obj = json!({"metadata": {}, "spec": {"replicas": 1}});
        assert!(
            json(&mut obj, &json!([{"op": "test", "path": "/spec/replicas", "value": 2}]), 1 << 20).is_err()
        );
        // test null of a missing path passes (kube-apiserver's behaviour); the patch is atomic.
        json(&mut obj, &json!([{"op": "test", "path": "/metadata/finalizers", "value": null}, {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}]), 1 << 20).unwrap();
        assert_eq!(obj["metadata"]["finalizers"], json!(["f"]));
        let before = obj.clone();
        assert!(json(&mut obj, &json!([{"op": "add", "path": "/spec/x", "value": 1}, {"op": "test", "path": "/spec/replicas", "value": 9}]), 1 << 20).is_err());
        assert_eq!(obj, before, "nothing applied when one op fails");
        json(&mut obj, &json!([{"op": "test", "path": "/spec/replicas", "value": 1}, {"op": "replace", "path": "/spec/replicas", "value": 3}]), 1 << 20).unwrap();
        // Copies that double a value stop at the limit, and the object is left as it was.
        let mut big = json!({"a": ["x".repeat(1000)]});
        let doubling: Vec<Value> =
            (0..30).map(|_| json!({"op": "copy", "from": "/a", "path": "/a/-"})).collect();
        let before = big.clone();
        let error = json(&mut big, &Value::Array(doubling), 100_000).unwrap_err();
        assert!(error.contains("accumulated size exceeded"), "{error}");
        assert_eq!(big, before);
        let many: Vec<Value> =
            (0..10_001).map(|_| json!({"op": "test", "path": "/a/0", "value": "y"})).collect();
        assert!(json(&mut big, &Value::Array(many), 1 << 20).unwrap_err().contains("maximum operations"));
        assert_eq!(obj["spec"]["replicas"], 3);
    }
}
