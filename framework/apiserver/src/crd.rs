//! CustomResourceDefinitions: turning a CRD into served resources, its status conditions, and
//! validating and pruning custom objects against `openAPIV3Schema` (type, required, enum,
//! minimum/maximum, pattern, minLength/maxLength, items, properties, additionalProperties,
//! nullable, `x-kubernetes-preserve-unknown-fields`, `x-kubernetes-int-or-string`).
//!
//! Mirrors kube-apiserver's apiextensions-apiserver (CRD establishing, schema pruning and validation).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::resources::{ALL_VERBS, Generation, ResourceDef, Subresource};

/// The schema of one served version, with its validation rules compiled.
#[derive(Debug)]
pub(crate) struct Schema {
    pub root: Value,
    rules: crate::cel::Rules,
    /// Whether any node has a `default` (objects read back are defaulted then).
    has_defaults: bool,
}

/// The resources a CRD serves (one per served version), or the reasons it is invalid.
/// The types a structural schema may name.
const SCHEMA_TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];

/// Checks what a schema node and the nodes under it declare: known `type`s and `pattern`s that
/// compile (kube-apiserver's `ValidateCustomResourceDefinitionOpenAPISchema`, in part).
fn check_schema(node: &Value, at: &str, errors: &mut Vec<(String, String)>) {
    let Some(map) = node.as_object() else {
        errors.push((at.to_string(), "Invalid value: must be an object".into()));
        return;
    };
    match map.get("type") {
        None => {}
        Some(Value::String(t)) if t.is_empty() || SCHEMA_TYPES.contains(&t.as_str()) => {}
        Some(other) => {
            let supported = SCHEMA_TYPES.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", ");
            errors.push((
                format!("{at}.type"),
                format!("Unsupported value: {other}: supported values: {supported}"),
            ));
        }
    }
    if let Some(pattern) = map.get("pattern") {
        match pattern.as_str().map(regex_lite::Regex::new) {
            Some(Ok(_)) => {}
            Some(Err(e)) => errors.push((
                format!("{at}.pattern"),
                format!("Invalid value: {pattern}: must be a valid regular expression, but isn't: {e}"),
            )),
            None => errors.push((format!("{at}.pattern"), "Invalid value: must be a string".into())),
        }
    }
    crate::cel::check(node, at, errors);
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            check_schema(child, &format!("{at}.properties[{name}]"), errors);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child) = map.get(key).filter(|c| c.is_object()) {
            check_schema(child, &format!("{at}.{key}"), errors);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(children) = map.get(key).and_then(Value::as_array) {
            for (i, child) in children.iter().enumerate() {
                check_schema(child, &format!("{at}.{key}[{i}]"), errors);
            }
        }
    }
}

pub(crate) fn resources_of(crd: &Value) -> Result<Vec<Arc<ResourceDef>>, Vec<(String, String)>> {
    let spec = &crd["spec"];
    let mut errors = Vec::new();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let group = text(&spec["group"]);
    let names = &spec["names"];
    let plural = text(&names["plural"]);
    let kind = text(&names["kind"]);
    let singular = match text(&names["singular"]) {
        s if s.is_empty() => kind.to_lowercase(),
        s => s,
    };
    let list_kind = match text(&names["listKind"]) {
        s if s.is_empty() => format!("{kind}List"),
        s => s,
    };
    if group.is_empty() {
        errors.push(("spec.group".into(), "Required value".into()));
    }
    if plural.is_empty() {
        errors.push(("spec.names.plural".into(), "Required value".into()));
    }
    if kind.is_empty() {
        errors.push(("spec.names.kind".into(), "Required value".into()));
    }
    let name = text(&crd["metadata"]["name"]);
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        errors.push((
            "metadata.name".into(),
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let scope = text(&spec["scope"]);
    if scope != "Namespaced" && scope != "Cluster" {
        errors.push((
            "spec.scope".into(),
            format!("Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""),
        ));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        errors.push((
            "spec.versions".into(),
            "Invalid value: must have exactly one version marked as storage version".into(),
        ));
    }
    let storage_count = versions.iter().filter(|v| v["storage"].as_bool() == Some(true)).count();
    if !versions.is_empty() && storage_count != 1 {
        errors.push((
            "spec.versions".into(),
            "Invalid value: must have exactly one version marked as storage version".into(),
        ));
    }
    for (i, version) in versions.iter().enumerate() {
        if let Some(schema) = version["schema"].get("openAPIV3Schema") {
            check_schema(schema, &format!("spec.versions[{i}].schema.openAPIV3Schema"), &mut errors);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let mut defs = Vec::new();
    let conversion = crate::conversion::Conversion::of(crd);
    for v in versions.iter().filter(|v| v["served"].as_bool() == Some(true)) {
        let mut subresources = Vec::new();
        let subs = &v["subresources"];
        if subs.get("scale").is_some_and(|s| s.is_object()) {
            subresources.push(Subresource {
                name: "scale".into(),
                kind: "Scale".into(),
                group: "autoscaling".into(),
                version: "v1".into(),
            });
        }
        if subs.get("status").is_some_and(|s| s.is_object()) {
            subresources.push(Subresource {
                name: "status".into(),
                kind: kind.clone(),
                group: String::new(),
                version: String::new(),
            });
        }
        let schema = v["schema"]["openAPIV3Schema"].clone();
        defs.push(Arc::new(ResourceDef {
            group: group.clone(),
            version: text(&v["name"]),
            kind: kind.clone(),
            list_kind: list_kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            namespaced: scope == "Namespaced",
            short_names: list(&names["shortNames"]),
            categories: list(&names["categories"]),
            verbs: ALL_VERBS.iter().map(|s| s.to_string()).collect(),
            subresources,
            generation: Generation::AllButMetadataAndStatus,
            custom: true,
            storage: format!("{group}/{plural}"),
            schema: (!schema.is_null()).then(|| Arc::new(Schema::new(schema))),
            columns: crate::table::columns_of(v),
            conversion: conversion.clone(),
        }));
    }
    Ok(defs)
}

/// The status a CRD gets once served: accepted names, Established and NamesAccepted.
pub(crate) fn established_status(crd: &Value, now: &str) -> Value {
    let names = crd["spec"]["names"].clone();
    let stored: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .map(|v| {
            v.iter().filter(|v| v["storage"].as_bool() == Some(true)).map(|v| v["name"].clone()).collect()
        })
        .unwrap_or_default();
    let mut accepted = names.clone();
    if accepted["singular"].as_str().unwrap_or_default().is_empty() {
        accepted["singular"] = json!(names["kind"].as_str().unwrap_or_default().to_lowercase());
    }
    if accepted["listKind"].as_str().unwrap_or_default().is_empty() {
        accepted["listKind"] = json!(format!("{}List", names["kind"].as_str().unwrap_or_default()));
    }
    json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
        ],
        "acceptedNames": accepted,
        "storedVersions": stored,
    })
}

impl Schema {
    /// The schema of a CRD version (its rules compiled; the CRD was checked before).
    pub fn new(root: Value) -> Schema {
        let rules = crate::cel::Rules::of(&root);
        let mut has_defaults = false;
        any_default(&root, &mut has_defaults);
        Schema { root, rules, has_defaults }
    }

    /// Whether objects may lack a default (see [`Schema::default`]).
    pub fn has_defaults(&self) -> bool {
        self.has_defaults
    }

    /// Fills in the schema's `default`s where `object` lacks the field (or holds a null the
    /// schema does not allow), parents before children, as kube-apiserver defaults custom
    /// resources on create, update and read. Returns whether anything was added.
    pub fn default(&self, object: &mut Value) -> bool {
        self.has_defaults && default_node(&self.root, object, true)
    }

    /// Defaults, validates (the schema, then its `x-kubernetes-validations` rules against the
    /// object and, on updates, the `old` one) and prunes unknown fields of `object` (its
    /// non-metadata fields). Returns the errors as (field path, message).
    pub fn admit(&self, object: &mut Value, old: Option<&Value>) -> Vec<(String, String)> {
        self.default(object);
        let mut errors = self.validate_and_prune(object);
        if errors.is_empty() && !self.rules.is_empty() {
            self.rules.validate(&self.root, object, old, "", &mut errors);
        }
        errors
    }

    /// Validates `object` (its non-metadata fields) and prunes unknown fields. Returns the
    /// errors as (field path, message).
    pub fn validate_and_prune(&self, object: &mut Value) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        let Some(props) = self.root.get("properties").and_then(Value::as_object) else {
            return errors;
        };
        let Some(map) = object.as_object_mut() else { return errors };
        let preserve = self.root["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
        for (key, value) in map.iter_mut() {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(schema) = props.get(key) {
                check(schema, value, key, &mut errors);
            }
        }
        if !preserve {
            map.retain(|k, _| {
                matches!(k.as_str(), "apiVersion" | "kind" | "metadata") || props.contains_key(k)
            });
        }
        if let Some(required) = self.root["required"].as_array() {
            for r in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(r) {
                    errors.push((r.to_string(), "Required value".into()));
                }
            }
        }
        errors
    }
}

fn any_default(schema: &Value, found: &mut bool) {
    let Some(map) = schema.as_object() else { return };
    if map.contains_key("default") {
        *found = true;
        return;
    }
    for child in map.get("properties").and_then(Value::as_object).into_iter().flat_map(|p| p.values()) {
        any_default(child, found);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = map.get(key) {
            any_default(child, found);
        }
    }
}

/// Defaults `value` under `schema`; `root` skips apiVersion, kind and metadata.
fn default_node(schema: &Value, value: &mut Value, root: bool) -> bool {
    let mut changed = false;
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (key, child) in props {
                    if root && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    let Some(default) = child.get("default") else { continue };
                    let missing = match map.get(key) {
                        None => true,
                        Some(Value::Null) => child["nullable"].as_bool() != Some(true),
                        Some(_) => false,
                    };
                    if missing {
                        map.insert(key.clone(), default.clone());
                        changed = true;
                    }
                }
                for (key, child) in map.iter_mut() {
                    if root && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    if let Some(child_schema) = props.get(key) {
                        changed |= default_node(child_schema, child, false);
                    }
                }
            }
            if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for child in map.values_mut() {
                    changed |= default_node(additional, child, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    changed |= default_node(item_schema, item, false);
                }
            }
        }
        _ => {}
    }
    changed
}

/// The schema type name of a JSON value.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check(schema: &Value, value: &mut Value, path: &str, errors: &mut Vec<(String, String)>) {
    if value.is_null() {
        if schema["nullable"].as_bool() != Some(true) {
            // Like the real server: a null for a non-nullable field is pruned.
            *value = Value::Null;
        }
        return;
    }
    let int_or_string = schema["x-kubernetes-int-or-string"].as_bool() == Some(true);
    if let Some(expected) = schema["type"].as_str() {
        let actual = type_name(value);
        let ok = actual == expected || (expected == "number" && actual == "integer");
        if !(ok || int_or_string && matches!(actual, "integer" | "string")) {
            errors.push((
                path.to_string(),
                format!(
                    "Invalid value: \"{actual}\": {path} in body must be of type {expected}: \"{actual}\""
                ),
            ));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
        errors.push((
            path.to_string(),
            format!("Unsupported value: {value}: supported values: {}", list.join(", ")),
        ));
    }
    match value {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            if let Some(min) = schema["minimum"].as_f64() {
                let exclusive = schema["exclusiveMinimum"].as_bool() == Some(true);
                if x < min || (exclusive && x == min) {
                    errors.push((
                        path.to_string(),
                        format!(
                            "Invalid value: {n}: {path} in body should be greater than or equal to {min}"
                        ),
                    ));
                }
            }
            if let Some(max) = schema["maximum"].as_f64() {
                let exclusive = schema["exclusiveMaximum"].as_bool() == Some(true);
                if x > max || (exclusive && x == max) {
                    errors.push((
                        path.to_string(),
                        format!("Invalid value: {n}: {path} in body should be less than or equal to {max}"),
                    ));
                }
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(max) = schema["maxLength"].as_u64()
                && len > max
            {
                errors.push((path.to_string(), format!("Too long: may not be more than {max} bytes")));
            }
            if let Some(min) = schema["minLength"].as_u64()
                && len < min
            {
                errors.push((
                    path.to_string(),
                    format!("Invalid value: \"{s}\": {path} in body should be at least {min} chars long"),
                ));
            }
            if let Some(pattern) = schema["pattern"].as_str() {
                match regex_lite::Regex::new(pattern) {
                    Ok(re) if !re.is_match(s) => errors.push((
                        path.to_string(),
                        format!("Invalid value: \"{s}\": {path} in body should match '{pattern}'"),
                    )),
                    _ => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    check(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
            if let Some(max) = schema["maxItems"].as_u64()
                && items.len() as u64 > max
            {
                errors.push((
                    path.to_string(),
                    format!("Too many: {}: must have at most {max} items", items.len()),
                ));
            }
        }
        Value::Object(map) => check_object(schema, map, path, errors),
        _ => {}
    }
}

fn check_object(
    schema: &Value,
    map: &mut Map<String, Value>,
    path: &str,
    errors: &mut Vec<(String, String)>,
) {
    let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
    let props = schema["properties"].as_object();
    let additional = schema.get("additionalProperties");
    for (key, value) in map.iter_mut() {
        let child = format!("{path}.{key}");
        if let Some(s) = props.and_then(|p| p.get(key)) {
            check(s, value, &child, errors);
        } else if let Some(s) = additional.filter(|a| a.is_object()) {
            check(s, value, &child, errors);
        }
    }
    let keeps_unknown = preserve || additional.is_some_and(|a| a.is_object() || a.as_bool() == Some(true));
    if !keeps_unknown && props.is_some() {
        let props = props.cloned().unwrap_or_default();
        map.retain(|k, _| props.contains_key(k));
    } else if !keeps_unknown && props.is_none() && schema["type"].as_str() == Some("object") {
        map.clear();
    }
    if let Some(required) = schema["required"].as_array() {
        for r in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(r) {
                errors.push((format!("{path}.{r}"), "Required value".into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::new(json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["image"], "properties": {
                "image": {"type": "string", "pattern": "^[a-z]+:[0-9.]+$", "maxLength": 20},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 5},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "ports": {"type": "array", "items": {"type": "integer"}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
        }}))
    }

    #[test]
    fn defaults_fill_what_is_missing_parents_first() {
        let schema = Schema::new(json!({"type": "object", "properties": {
            "metadata": {"type": "object"},
            "spec": {"type": "object", "default": {}, "properties": {
                "replicas": {"type": "integer", "default": 2},
                "tier": {"type": "string", "nullable": true, "default": "web"},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "protocol": {"type": "string", "default": "TCP"}, "port": {"type": "integer"}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                    "weight": {"type": "integer", "default": 1}}}}
            }}
        }}));
        assert!(schema.has_defaults());
        let mut empty = json!({"metadata": {"name": "a"}});
        assert!(schema.default(&mut empty));
        assert_eq!(
            empty["spec"],
            json!({"replicas": 2, "tier": "web"}),
            "a defaulted parent gets its children's defaults"
        );
        let mut partial =
            json!({"spec": {"replicas": null, "tier": null, "ports": [{"port": 80}], "labels": {"a": {}}}});
        schema.default(&mut partial);
        assert_eq!(
            partial["spec"],
            json!({"replicas": 2, "tier": null, "ports": [{"port": 80, "protocol": "TCP"}], "labels": {"a": {"weight": 1}}}),
            "a null is defaulted unless the field is nullable"
        );
        assert!(!schema.default(&mut partial), "nothing more to add");
    }

    #[test]
    fn validates_and_prunes() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a"},
            "spec": {"image": "nginx:1.2", "replicas": 3, "unknown": 1, "extra": {"anything": true}}, "junk": 1});
        assert!(schema().validate_and_prune(&mut obj).is_empty());
        assert_eq!(obj["spec"].get("unknown"), None, "unknown fields are pruned");
        assert_eq!(obj.get("junk"), None);
        assert_eq!(obj["spec"]["extra"]["anything"], true, "preserve-unknown-fields keeps them");

        let mut bad = json!({"spec": {"replicas": 9, "mode": "c", "ports": [1, "x"], "image": "Bad Image"}});
        let errors = schema().validate_and_prune(&mut bad);
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["spec.image", "spec.mode", "spec.ports[1]", "spec.replicas"], "{errors:?}");
        let mut missing = json!({"spec": {}});
        assert_eq!(
            schema().validate_and_prune(&mut missing),
            [("spec.image".to_string(), "Required value".to_string())]
        );
    }
}
