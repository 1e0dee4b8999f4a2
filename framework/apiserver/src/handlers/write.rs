//! create and update (kube-apiserver's `endpoints/handlers/create.go`, `update.go` and the
//! generic store's BeforeCreate/BeforeUpdate): names, generateName, namespaces, validation,
//! generation and resourceVersion rules, the status and scale subresources.

use std::sync::Arc;

use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::*;
use crate::{
    admission, apply, crd,
    http_util::{Body, json_response},
    object::{Stored, key, meta_mut, new_uid, now, random_suffix},
    resources::{Generation, ResourceDef},
    server::Server,
    status::{ApiError, ApiResult},
    store::{Write, Written},
};

/// kube's DNS-1123 subdomain (most names) or label (namespaces) check.
pub(crate) fn name_errors(res: &ResourceDef, name: &str) -> Option<String> {
    let label = res.plural == "namespaces" && res.group.is_empty();
    let max = if label { 63 } else { 253 };
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (!label && c == '.');
    let edges = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.len() <= max && name.chars().all(ok_char) && edges {
        return None;
    }
    Some(if label {
        format!(
            "Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    } else {
        format!(
            "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    })
}

/// apiVersion and kind of a body must be the resource's (or absent).
pub(crate) fn check_type(res: &ResourceDef, obj: &mut Value) -> ApiResult<()> {
    let expected = res.api_version();
    match obj["apiVersion"].as_str() {
        Some(v) if v != expected => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected})"
            )));
        }
        _ => obj["apiVersion"] = json!(expected),
    }
    match obj["kind"].as_str() {
        Some(k) if k != res.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                res.kind
            )));
        }
        _ => obj["kind"] = json!(res.kind),
    }
    Ok(())
}

/// The namespace a new object goes into must exist and not be terminating.
pub(crate) fn check_namespace(
    server: &Server,
    namespace: &str,
    res: &ResourceDef,
    name: &str,
) -> ApiResult<()> {
    let ns =
        server.store.get("/namespaces", namespace).ok_or_else(|| ApiError::namespace_not_found(namespace))?;
    if ns.summary.deleting {
        return Err(ApiError::forbidden(format!(
            "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
            res.qualified()
        ))
        .with_details(json!({
            "name": name, "kind": res.plural,
            "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {namespace} is being terminated"), "field": "metadata.namespace"}]
        })));
    }
    Ok(())
}

/// Validates and fills a new object; returns it with its final name.
pub(crate) fn prepare_create(
    server: &Server,
    res: &ResourceDef,
    namespace: &str,
    mut obj: Value,
) -> ApiResult<(Value, String)> {
    check_type(res, &mut obj)?;
    let meta = meta_mut(&mut obj);
    if res.namespaced {
        match meta.get("namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns != namespace => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                meta.insert("namespace".into(), json!(namespace));
            }
        }
    } else {
        meta.remove("namespace");
    }
    let name = match meta.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => match meta.get("generateName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            Some(prefix) => format!("{prefix}{}", random_suffix()),
            None => {
                return Err(ApiError::invalid(
                    res,
                    "",
                    &[("metadata.name".into(), "Required value: name or generateName is required".into())],
                ));
            }
        },
    };
    if let Some(e) = name_errors(res, &name) {
        return Err(ApiError::invalid(res, &name, &[("metadata.name".into(), e)]));
    }
    if meta.get("resourceVersion").and_then(Value::as_str).is_some_and(|rv| !rv.is_empty()) {
        return Err(ApiError::internal("resourceVersion should not be set on objects to be created"));
    }
    meta.insert("name".into(), json!(name));
    meta.insert("uid".into(), json!(new_uid()));
    meta.insert("creationTimestamp".into(), json!(now()));
    for k in ["deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
        meta.remove(k);
    }
    if res.generation != Generation::None {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    if res.has_subresource("status")
        && let Some(o) = obj.as_object_mut()
    {
        o.remove("status");
    }
    match (res.group.as_str(), res.plural.as_str()) {
        ("", "pods") => obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"}),
        ("", "namespaces") => {
            obj["status"] = json!({"phase": "Active"});
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            crd::resources_of(&obj).map_err(|errors| ApiError::invalid(res, &name, &errors))?;
            obj["status"] = crd::established_status(&obj, &now());
        }
        _ => {}
    }
    validate_custom(res, &name, &mut obj, None)?;
    crate::shape::check(res, &name, &obj)?;
    crate::defaults::apply(res, &mut obj, None, &server.allocations);
    Ok((obj, name))
}

/// Defaults, validates (schema and CEL rules; `old` on updates) and prunes a custom object.
pub(crate) fn validate_custom(
    res: &ResourceDef,
    name: &str,
    obj: &mut Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    if let Some(schema) = &res.schema {
        let errors = schema.admit(obj, old);
        if !errors.is_empty() {
            return Err(ApiError::invalid(res, name, &errors));
        }
    }
    Ok(())
}

pub(crate) fn create(ctx: Ctx) -> ApiResult<Response<Body>> {
    let res = ctx.target.res.clone();
    if res.namespaced && ctx.target.namespace.is_none() {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} must be created in a namespace)",
            res.plural
        )));
    }
    let body = decode_body(&ctx.content_type, &ctx.body)?;
    let requested = body["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let attrs = admission::Attributes { name: &requested, ..ctx.attributes(admission::Operation::Create) };
    let mut name = String::new();
    let mut obj = admission::admit_create(&ctx.server, &attrs, body, |body| {
        let (obj, n) = prepare_create(&ctx.server, &res, ctx.namespace(), body)?;
        name = n;
        Ok(obj)
    })?;
    if res.namespaced {
        check_namespace(&ctx.server, ctx.namespace(), &res, &name)?;
    }
    apply::record_update(&mut obj, None, &ctx.manager(), &res, "Update");
    if ctx.dry_run() {
        return Ok(json_response(StatusCode::CREATED, obj.to_string()));
    }
    let obj = crate::conversion::to_storage(&ctx.server, &res, obj)?;
    let written = ctx.server.store.write(&ctx.storage(), &key(ctx.namespace(), &name), |current, _| {
        if current.is_some() {
            return Err(ApiError::already_exists(&res, &name));
        }
        Ok(Write::Put(obj))
    })?;
    after_write(&ctx.server, &res, &written);
    Ok(json_response(
        StatusCode::CREATED,
        present(&res, &crate::conversion::view(&ctx.server, &res, written.object())?),
    ))
}

impl Written {
    pub fn object(&self) -> &Stored {
        match self {
            Written::Put { obj, .. } | Written::Deleted(obj) | Written::Unchanged(obj) => obj,
        }
    }
}

/// Side effects of a write: CRDs start (or stop) being served; Events are copied into the other
/// Event API.
pub(crate) fn after_write(server: &Server, res: &ResourceDef, written: &Written) {
    if crate::events::is_event(res) {
        crate::events::mirror(server, res, written);
        return;
    }
    if res.group != "apiextensions.k8s.io" || res.plural != "customresourcedefinitions" {
        return;
    }
    match written {
        Written::Put { obj, .. } => {
            let value = obj.value();
            if let Ok(defs) = crd::resources_of(&value) {
                let storage = defs.first().map(|d| d.storage.clone()).unwrap_or_default();
                let mut all = server.resources.write();
                all.retain(|r| !(r.custom && r.storage == storage));
                all.extend(defs);
            }
        }
        Written::Deleted(obj) => {
            let value = obj.value();
            let group = value["spec"]["group"].as_str().unwrap_or_default();
            let plural = value["spec"]["names"]["plural"].as_str().unwrap_or_default();
            let storage: Arc<str> = Arc::from(format!("{group}/{plural}"));
            server.resources.write().retain(|r| !(r.custom && *r.storage == *storage));
            // Deleting a CRD deletes its objects.
            for (k, _) in server.store.table(&storage).iter() {
                let _ = server.store.write::<ApiError>(&storage, k, |cur, _| {
                    Ok(match cur {
                        Some(c) => Write::Delete(c.value()),
                        None => Write::Unchanged(obj.clone()),
                    })
                });
            }
        }
        Written::Unchanged(_) => {}
    }
}

pub(crate) fn without(obj: &Value, keys: &[&str]) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        for k in keys {
            m.remove(*k);
        }
    }
    v
}

/// The object an update produces from the current one, or an error; `sub` is `status` for the
/// status subresource.
pub(crate) fn prepare_update(
    alloc: &parking_lot::Mutex<crate::defaults::Allocations>,
    res: &ResourceDef,
    current: &Stored,
    mut new: Value,
    sub: Option<&str>,
    manager: &str,
) -> ApiResult<Write> {
    let cur = current.value();
    let name = current.summary.name.clone();
    check_type(res, &mut new)?;
    let body_rv = new["metadata"]["resourceVersion"].as_str().unwrap_or("").to_string();
    if !body_rv.is_empty() && body_rv != current.rv.to_string() {
        return Err(ApiError::modified(res, &name));
    }
    if let Some(uid) = new["metadata"]["uid"].as_str()
        && !uid.is_empty()
        && uid != current.summary.uid
    {
        return Err(ApiError::conflict(
            res,
            &name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                current.summary.uid
            ),
        ));
    }
    if let Some(n) = new["metadata"]["name"].as_str()
        && !n.is_empty()
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    let mut result = match sub {
        Some("status") => {
            let mut r = cur.clone();
            match new.get("status") {
                Some(s) => r["status"] = s.clone(),
                None => {
                    r.as_object_mut().map(|m| m.remove("status"));
                }
            }
            r
        }
        _ => {
            let mut r = new;
            if res.has_subresource("status") {
                match cur.get("status") {
                    Some(s) => r["status"] = s.clone(),
                    None => {
                        r.as_object_mut().map(|m| m.remove("status"));
                    }
                }
            }
            r
        }
    };
    {
        let cur_meta = cur["metadata"].as_object().cloned().unwrap_or_default();
        let meta = meta_mut(&mut result);
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
            "managedFields",
        ] {
            match cur_meta.get(k) {
                Some(v) => {
                    meta.insert(k.to_string(), v.clone());
                }
                None => {
                    meta.remove(k);
                }
            }
        }
        meta.insert("name".into(), json!(name));
        meta.remove("resourceVersion");
    }
    if sub.is_none() {
        validate_custom(res, &name, &mut result, Some(&cur))?;
        if res.group == "apiextensions.k8s.io" && res.plural == "customresourcedefinitions" {
            crd::resources_of(&result).map_err(|errors| ApiError::invalid(res, &name, &errors))?;
            result["status"] = cur["status"].clone();
        }
    }
    crate::shape::check(res, &name, &result)?;
    if sub.is_none() {
        crate::defaults::apply(res, &mut result, Some(&cur), alloc);
    }
    // Generation.
    let changed = match res.generation {
        Generation::None => false,
        Generation::Spec => cur.get("spec") != result.get("spec"),
        Generation::AllButMetadataAndStatus => {
            without(&cur, &["metadata", "status"]) != without(&result, &["metadata", "status"])
        }
    };
    if changed {
        let generation = cur["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        meta_mut(&mut result).insert("generation".into(), json!(generation));
    }
    let mut cur_cmp = cur.clone();
    meta_mut(&mut cur_cmp).remove("resourceVersion");
    if result == cur_cmp {
        return Ok(Write::Unchanged(current.clone()));
    }
    apply::record_update(&mut result, Some(&cur), manager, res, "Update");
    // The last finalizer of an object being deleted is gone: delete it now.
    let deleting = result["metadata"].get("deletionTimestamp").is_some_and(|v| !v.is_null());
    let finalizers_left = result["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
    let namespace_finalizers = res.plural == "namespaces"
        && res.group.is_empty()
        && result["spec"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
    if deleting && !finalizers_left && !namespace_finalizers {
        return Ok(Write::Delete(result));
    }
    Ok(Write::Put(result))
}

pub(crate) fn update(ctx: Ctx) -> ApiResult<Response<Body>> {
    let res = ctx.target.res.clone();
    let body = decode_body(&ctx.content_type, &ctx.body)?;
    let name = ctx.name().to_string();
    let sub = ctx.target.sub.clone();
    let manager = ctx.manager();
    if sub.as_deref() == Some("scale") {
        return update_scale(ctx, body);
    }
    let attrs = ctx.attributes(admission::Operation::Update);
    let written =
        admission::write(&ctx.server, &attrs, &ctx.storage(), &key(ctx.namespace(), &name), |current| {
            let current = current.ok_or_else(|| ApiError::not_found(&res, &name))?;
            let decision = prepare_update(
                &ctx.server.allocations,
                &res,
                current,
                body.clone(),
                sub.as_deref(),
                &manager,
            )?;
            Ok(if ctx.dry_run() { Write::Unchanged(current.clone()) } else { decision })
        })?;
    after_write(&ctx.server, &res, &written);
    Ok(json_response(
        StatusCode::OK,
        present(&res, &crate::conversion::view(&ctx.server, &res, written.object())?),
    ))
}

/// The autoscaling/v1 Scale of an object.
pub(crate) fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

pub(crate) fn update_scale(ctx: Ctx, scale: Value) -> ApiResult<Response<Body>> {
    let res = ctx.target.res.clone();
    let name = ctx.name().to_string();
    let manager = ctx.manager();
    let replicas = scale["spec"]["replicas"]
        .as_i64()
        .ok_or_else(|| ApiError::bad_request("spec.replicas of the Scale must be an integer"))?;
    let written = ctx.server.store.write(&ctx.storage(), &key(ctx.namespace(), &name), |current, _| {
        let current = current.ok_or_else(|| ApiError::not_found(&res, &name))?;
        let rv = scale["metadata"]["resourceVersion"].as_str().unwrap_or("");
        if !rv.is_empty() && rv != current.rv.to_string() {
            return Err(ApiError::modified(&res, &name));
        }
        let mut obj = current.value();
        crate::object::set_path(&mut obj, &["spec", "replicas"], json!(replicas));
        meta_mut(&mut obj).remove("resourceVersion");
        prepare_update(&ctx.server.allocations, &res, current, obj, None, &manager)
    })?;
    Ok(json_response(StatusCode::OK, scale_of(&written.object().value()).to_string()))
}
