//! delete and deletecollection (kube-apiserver's `endpoints/handlers/delete.go` and the generic
//! store's graceful deletion): preconditions, propagation policies, finalizers, dry runs.

use std::sync::Arc;

use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::{read::*, write::*, *};
use crate::{
    http_util::{Body, json_response},
    object::{Stored, key, meta_mut, now},
    resources::ResourceDef,
    server::Server,
    status::{ApiError, ApiResult},
    store::{Write, Written},
};

/// DeleteOptions from the body and the query.
pub(crate) struct DeleteOptions {
    propagation: Option<String>,
    uid: Option<String>,
    rv: Option<String>,
    dry_run: bool,
}

pub(crate) fn delete_options(ctx: &Ctx) -> ApiResult<DeleteOptions> {
    let body: Value = if ctx.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else if ctx.content_type.starts_with("application/vnd.kubernetes.protobuf") {
        // client-go's protobuf clients (Helm's among them) send DeleteOptions this way.
        decode_body(&ctx.content_type, &ctx.body)?
    } else {
        serde_json::from_slice(&ctx.body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let mut propagation = body["propagationPolicy"].as_str().map(str::to_string);
    if let Some(p) = ctx.query.get("propagationPolicy") {
        propagation = Some(p.to_string());
    }
    if propagation.is_none() {
        let orphan =
            body["orphanDependents"].as_bool().or(ctx.query.get("orphanDependents").map(|v| v == "true"));
        if orphan == Some(true) {
            propagation = Some("Orphan".into());
        }
    }
    if let Some(p) = &propagation
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
        )));
    }
    let dry_run = ctx.dry_run() || body["dryRun"].as_array().is_some_and(|d| d.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        propagation,
        uid: body["preconditions"]["uid"].as_str().map(str::to_string),
        rv: body["preconditions"]["resourceVersion"].as_str().map(str::to_string),
        dry_run,
    })
}

/// What deleting `current` does: mark it (finalizers, namespaces) or remove it.
pub(crate) fn decide_delete(res: &ResourceDef, current: &Stored, opts: &DeleteOptions) -> ApiResult<Write> {
    let name = &current.summary.name;
    if let Some(uid) = &opts.uid
        && *uid != current.summary.uid
    {
        return Err(ApiError::conflict(
            res,
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                current.summary.uid
            ),
        ));
    }
    if let Some(rv) = &opts.rv
        && *rv != current.rv.to_string()
    {
        return Err(ApiError::conflict(
            res,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                current.rv
            ),
        ));
    }
    let mut obj = current.value();
    meta_mut(&mut obj).remove("resourceVersion");
    let is_namespace = res.group.is_empty() && res.plural == "namespaces";
    if is_namespace {
        if current.summary.deleting {
            return Ok(Write::Unchanged(current.clone()));
        }
        meta_mut(&mut obj).insert("deletionTimestamp".into(), json!(now()));
        crate::object::set_path(&mut obj, &["status", "phase"], json!("Terminating"));
        return Ok(Write::Put(obj));
    }
    let mut finalizers: Vec<Value> = obj["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
    let extra = match opts.propagation.as_deref() {
        Some("Orphan") => Some("orphan"),
        Some("Foreground") => Some("foregroundDeletion"),
        _ => None,
    };
    if let Some(f) = extra
        && !finalizers.iter().any(|x| x == f)
    {
        finalizers.push(json!(f));
    }
    if finalizers.is_empty() {
        return Ok(Write::Delete(obj));
    }
    if current.summary.deleting && finalizers.len() == current.summary.finalizers.len() {
        return Ok(Write::Unchanged(current.clone()));
    }
    let meta = meta_mut(&mut obj);
    meta.insert("finalizers".into(), json!(finalizers));
    if !current.summary.deleting {
        meta.insert("deletionTimestamp".into(), json!(now()));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
    }
    Ok(Write::Put(obj))
}

/// Deletes one object as the API and the built-in controllers do.
pub(crate) fn delete_object(
    server: &Server,
    res: &ResourceDef,
    namespace: &str,
    name: &str,
    propagation: Option<&str>,
) -> ApiResult<Written> {
    let opts =
        DeleteOptions { propagation: propagation.map(str::to_string), uid: None, rv: None, dry_run: false };
    let storage: Arc<str> = Arc::from(res.storage.as_str());
    let written = server.store.write(&storage, &key(namespace, name), |current, _| {
        let current = current.ok_or_else(|| ApiError::not_found(res, name))?;
        decide_delete(res, current, &opts)
    })?;
    after_write(server, res, &written);
    Ok(written)
}

pub(crate) fn deleted_status(res: &ResourceDef, obj: &Stored) -> Value {
    let mut details = json!({"name": obj.summary.name, "kind": res.plural, "uid": obj.summary.uid});
    if !res.group.is_empty() {
        details["group"] = json!(res.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

pub(crate) fn delete(ctx: Ctx) -> ApiResult<Response<Body>> {
    let res = ctx.target.res.clone();
    let name = ctx.name().to_string();
    let opts = delete_options(&ctx)?;
    let attrs = crate::admission::Attributes {
        dry_run: opts.dry_run,
        ..ctx.attributes(crate::admission::Operation::Delete)
    };
    let written = crate::admission::write(
        &ctx.server,
        &attrs,
        &ctx.storage(),
        &key(ctx.namespace(), &name),
        |current| {
            let current = current.ok_or_else(|| ApiError::not_found(&res, &name))?;
            let decision = decide_delete(&res, current, &opts)?;
            Ok(if opts.dry_run { Write::Unchanged(current.clone()) } else { decision })
        },
    )?;
    after_write(&ctx.server, &res, &written);
    // Pods and custom resources answer with the object; others with a Status when the object is
    // gone, and with the object while finalizers keep it.
    match &written {
        Written::Deleted(obj) if !(res.custom || (res.group.is_empty() && res.plural == "pods")) => {
            Ok(json_response(StatusCode::OK, deleted_status(&res, obj).to_string()))
        }
        other => Ok(json_response(
            StatusCode::OK,
            present(&res, &crate::conversion::view(&ctx.server, &res, other.object())?),
        )),
    }
}

pub(crate) fn delete_collection(ctx: Ctx) -> ApiResult<Response<Body>> {
    let res = ctx.target.res.clone();
    if !res.verbs.iter().any(|v| v == "deletecollection") {
        return Err(ApiError::method_not_allowed("deletecollection is not supported on this resource"));
    }
    let (labels, fields) = selectors(&ctx)?;
    let opts = delete_options(&ctx)?;
    let (_, map) = ctx.server.store.snapshot(&res.storage);
    let prefix = ctx.target.namespace.as_ref().map(|ns| format!("{ns}/"));
    let mut deleted = Vec::new();
    for (k, stored) in map.iter() {
        if prefix.as_ref().is_some_and(|p| !k.starts_with(p.as_str())) {
            continue;
        }
        if !(labels.matches(&stored.summary.labels) && fields.matches(&stored.summary)) {
            continue;
        }
        if opts.dry_run {
            deleted.push(stored.json.clone());
            continue;
        }
        let written = ctx.server.store.write(&ctx.storage(), k, |current, _| match current {
            Some(c) => decide_delete(&res, c, &opts),
            None => Ok(Write::Unchanged(stored.clone())),
        });
        if let Ok(w) = written {
            after_write(&ctx.server, &res, &w);
            deleted.push(w.object().json.clone());
        }
    }
    let metadata = json!({"resourceVersion": ctx.server.store.revision().to_string()});
    Ok(json_response(StatusCode::OK, list_body(&res, metadata, &deleted)))
}
