//! OpenAPI v3 (`/openapi/v3` and a document per group-version), as kubectl reads it for
//! `kubectl explain` and strategic merge patches: built-in kinds' schemas (generated into
//! `builtin.json` from k8s-pb's messages and doc comments by `codegen/protobuf_json.py`, with
//! their patch and list-type markers) and custom resources' `openAPIV3Schema`s, each with its
//! `x-kubernetes-group-version-kind` and the schemas it refers to.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, LazyLock},
};

use serde_json::{Map, Value, json};

use crate::resources::ResourceDef;

/// The built-in kinds' schemas, by OpenAPI name (`io.k8s.api.apps.v1.Deployment`).
static BUILTIN: LazyLock<Map<String, Value>> =
    LazyLock::new(|| serde_json::from_str(include_str!("builtin.json")).unwrap_or_default());

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// The schema name of a built-in kind.
fn builtin_name(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    BUILTIN.iter().find_map(|(name, schema)| {
        let gvks = schema.get("x-kubernetes-group-version-kind")?.as_array()?;
        gvks.iter()
            .any(|g| g["group"] == group && g["version"] == version && g["kind"] == kind)
            .then_some(name.as_str())
    })
}

/// A custom resource's schema name: the group reversed, the version, the kind
/// (`org.example.v1.Website`), as kube-apiserver names them.
fn custom_name(res: &ResourceDef) -> String {
    let reversed: Vec<&str> = res.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), res.version, res.kind)
}

/// A custom resource's schema: its `openAPIV3Schema` with apiVersion, kind and metadata.
fn custom_schema(res: &ResourceDef) -> Value {
    let mut schema = res.schema.as_ref().map(|s| s.root.clone()).unwrap_or_else(|| json!({}));
    if let Some(map) = schema.as_object_mut() {
        map.entry("type").or_insert_with(|| json!("object"));
        let props = map.entry("properties").or_insert_with(|| json!({}));
        if let Some(props) = props.as_object_mut() {
            let builtin = BUILTIN.get("io.k8s.api.core.v1.ConfigMap").and_then(|c| c.get("properties"));
            for field in ["apiVersion", "kind", "metadata"] {
                if let Some(s) = builtin.and_then(|b| b.get(field)) {
                    props.insert(field.into(), s.clone());
                }
            }
        }
        map.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": res.group, "kind": res.kind, "version": res.version}]),
        );
    }
    schema
}

/// Adds the built-in schemas `schema` refers to (and theirs) to `out`.
fn add_refs(schema: &Value, out: &mut BTreeMap<String, Value>) {
    match schema {
        Value::Object(map) => {
            if let Some(name) =
                map.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/"))
                && !out.contains_key(name)
                && let Some(target) = BUILTIN.get(name)
            {
                out.insert(name.to_string(), target.clone());
                add_refs(target, out);
            }
            for v in map.values() {
                add_refs(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| add_refs(v, out)),
        _ => {}
    }
}

/// The group-versions served, as OpenAPI v3 paths (`api/v1`, `apis/apps/v1`).
fn group_versions(resources: &[Arc<ResourceDef>]) -> BTreeSet<(String, String)> {
    resources.iter().map(|r| (r.group.clone(), r.version.clone())).collect()
}

fn path_of(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// The OpenAPI v3 document of one group-version, or `None` when it is not served.
pub(crate) fn document(resources: &[Arc<ResourceDef>], group: &str, version: &str) -> Option<Value> {
    let served: Vec<&Arc<ResourceDef>> =
        resources.iter().filter(|r| r.group == group && r.version == version).collect();
    if served.is_empty() {
        return None;
    }
    let mut schemas = BTreeMap::new();
    let mut paths = Map::new();
    for res in served.iter().filter(|r| !r.verbs.is_empty()) {
        // kubectl explain finds a resource's kind through the get operation of its path.
        let prefix =
            if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
        let path = if res.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", res.plural)
        } else {
            format!("{prefix}/{}/{{name}}", res.plural)
        };
        let gvk = json!({"group": res.group, "kind": res.kind, "version": res.version});
        paths.insert(
            path,
            json!({
                "get": {
                    "description": format!("read the specified {}", res.kind),
                    "operationId": format!("read{}", res.kind),
                    "x-kubernetes-action": "get",
                    "x-kubernetes-group-version-kind": gvk,
                    "responses": {"200": {"description": "OK"}},
                },
                // kubectl sends `fieldValidation` (server-side field validation) to a kind whose
                // patch operation lists it.
                "patch": {
                    "description": format!("partially update the specified {}", res.kind),
                    "operationId": format!("patch{}", res.kind),
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": [
                        {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                        {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                        {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                        {"name": "force", "in": "query", "schema": {"type": "boolean"}},
                    ],
                    "responses": {"200": {"description": "OK"}},
                },
            }),
        );
    }
    for res in served {
        let (name, schema) = if res.custom {
            (custom_name(res), custom_schema(res))
        } else {
            match builtin_name(group, version, &res.kind).and_then(|n| Some((n, BUILTIN.get(n)?))) {
                Some((name, schema)) => (name.to_string(), schema.clone()),
                None => continue,
            }
        };
        add_refs(&schema, &mut schemas);
        schemas.insert(name, schema);
    }
    if let Some(meta) = BUILTIN.get(OBJECT_META) {
        schemas.entry(OBJECT_META.to_string()).or_insert_with(|| meta.clone());
        add_refs(meta, &mut schemas);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": crate::server::version()["gitVersion"].clone()},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// `/openapi/v3`: every served group-version and where its document is, with a hash of it
/// (clients cache documents by that URL).
pub(crate) fn root(resources: &[Arc<ResourceDef>]) -> Value {
    let mut paths = Map::new();
    for (group, version) in group_versions(resources) {
        let path = path_of(&group, &version);
        let hash = document(resources, &group, &version)
            .map(|d| {
                let digest = ring::digest::digest(&ring::digest::SHA512, d.to_string().as_bytes());
                digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<String>()
            })
            .unwrap_or_default();
        paths.insert(path.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}));
    }
    json!({"paths": paths})
}

/// The fields of `obj` (a body for `res`: an object, a merge or strategic merge patch, an apply
/// configuration) that `res`'s schema does not declare, as kube-apiserver names them in
/// `unknown field "spec.foo"` (server-side field validation). Strategic merge patch directives
/// (`$patch`, `$setElementOrder/…`) are not fields.
pub(crate) fn unknown_fields(res: &ResourceDef, obj: &Value) -> Vec<String> {
    let schema = if res.custom {
        if res.schema.is_none() {
            return Vec::new();
        }
        custom_schema(res)
    } else {
        match builtin_name(&res.group, &res.version, &res.kind).and_then(|n| BUILTIN.get(n)) {
            Some(schema) => schema.clone(),
            None => return Vec::new(),
        }
    };
    let mut out = Vec::new();
    unknown_in(&schema, obj, "", &mut out, 0);
    out
}

/// A schema with its `$ref` (or single `allOf` reference) followed.
fn resolved(schema: &Value) -> &Value {
    if let Some(name) =
        schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        return BUILTIN.get(name).unwrap_or(schema);
    }
    match schema.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
        Some([only]) if schema.get("properties").is_none() => resolved(only),
        _ => schema,
    }
}

fn unknown_in(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>, depth: usize) {
    // Bodies are nested at most 100 deep (the server refuses deeper ones before parsing).
    if depth > 128 {
        return;
    }
    let schema = resolved(schema);
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
            if props.is_none() && additional.is_none() {
                // A free-form object (raw JSON, an embedded object, preserve-unknown-fields).
                return;
            }
            for (key, child) in map {
                if key.starts_with('$') {
                    continue;
                }
                let child_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                if let Some(child_schema) = props.and_then(|p| p.get(key)) {
                    unknown_in(child_schema, child, &child_path, out, depth + 1);
                } else if let Some(child_schema) = additional.filter(|a| a.is_object()) {
                    unknown_in(child_schema, child, &child_path, out, depth + 1);
                } else if !(preserve || additional.and_then(Value::as_bool) == Some(true)) {
                    out.push(child_path);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    unknown_in(item_schema, item, &format!("{path}[{i}]"), out, depth + 1);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_schemas_load_and_name_their_kinds() {
        assert!(BUILTIN.len() > 200, "builtin.json parses");
        assert_eq!(builtin_name("apps", "v1", "Deployment"), Some("io.k8s.api.apps.v1.Deployment"));
        assert_eq!(builtin_name("", "v1", "Pod"), Some("io.k8s.api.core.v1.Pod"));
        let resources = crate::resources::builtins();
        let apps = document(&resources, "apps", "v1").unwrap();
        let schemas = &apps["components"]["schemas"];
        assert!(schemas.get("io.k8s.api.core.v1.Container").is_some(), "refs are followed");
        let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(schemas["io.k8s.api.apps.v1.Deployment"]["properties"]["kind"]["type"], "string");
        let root = root(&resources);
        assert!(
            root["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/apps/v1?hash=")
        );
        assert!(root["paths"]["api/v1"].is_object());
        assert!(document(&resources, "nope", "v1").is_none());
        let deployments = resources.iter().find(|r| r.plural == "deployments").unwrap();
        let body = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a", "labelz": {}},
            "spec": {"replicas": 1, "bogus": true, "template": {"spec": {"containers": [{"name": "c", "imagee": "x"}],
                "$setElementOrder/containers": [{"name": "c"}]}}, "strategy": {"rollingUpdate": {"maxSurge": "25%"}}}});
        assert_eq!(
            unknown_fields(deployments, &body),
            ["metadata.labelz", "spec.bogus", "spec.template.spec.containers[0].imagee"]
        );
        let config_maps = resources.iter().find(|r| r.plural == "configmaps").unwrap();
        assert!(unknown_fields(config_maps, &json!({"data": {"any": "key"}, "binaryData": {}})).is_empty());
    }
}
