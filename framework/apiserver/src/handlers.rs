//! The verbs on resources: get, list, create, update, patch, delete, deletecollection, and the
//! status and scale subresources, with kube-apiserver's semantics and error texts.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::{
    apply, crd,
    http_util::{Body, json_response},
    object::{Stored, key, meta_mut, new_uid, now, random_suffix},
    resources::{Generation, ResourceDef},
    selector::{FieldSelector, LabelSelector, supported_fields},
    server::{Query, Server, Target},
    status::{ApiError, ApiResult},
    store::{Write, Written},
};

/// One resource request, parsed.
pub(crate) struct Ctx {
    pub server: Arc<Server>,
    pub target: Target,
    pub query: Query,
    pub content_type: String,
    pub accept: String,
    pub user_agent: String,
    pub body: Bytes,
}

impl Ctx {
    fn storage(&self) -> Arc<str> {
        Arc::from(self.target.res.storage.as_str())
    }
    fn namespace(&self) -> &str {
        self.target.namespace.as_deref().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.target.name.as_deref().unwrap_or("")
    }
    pub(crate) fn dry_run(&self) -> bool {
        self.query.0.iter().any(|(k, v)| k == "dryRun" && v == "All")
    }
    /// The field manager: the parameter, else derived from the user agent as kube-apiserver does
    /// (the program name before the first `/`).
    pub fn manager(&self) -> String {
        match self.query.get("fieldManager") {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => self.user_agent.split('/').next().filter(|s| !s.is_empty()).unwrap_or("unknown").to_string(),
        }
    }
}

/// Decodes a request body (JSON, or YAML when the content type says so).
pub(crate) fn decode_body(content_type: &str, body: &[u8]) -> ApiResult<Value> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media == "application/vnd.kubernetes.protobuf" {
        return crate::protobuf::decode(body).map_err(|e| match e {
            Some(message) => ApiError::bad_request(format!("cannot decode the protobuf body: {message}")),
            None => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                "this server decodes protobuf bodies only for Namespace, ConfigMap, Secret and ServiceAccount; send JSON",
            ),
        });
    }
    if !matches!(media, "" | "application/json" | "application/yaml" | "application/apply-patch+yaml" | "*/*")
    {
        // CBOR and other encodings are not served.
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {media})"
            ),
        ));
    }
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let value: Value = if content_type.contains("yaml") {
        serde_saphyr::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}")))?
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "the request body must be a JSON object, not {}",
            kind_of(&value)
        )));
    }
    Ok(value)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Object(_) => "an object",
    }
}

/// The object as this version of the resource presents it (custom resources served in several
/// versions share one table: only apiVersion differs, the CRDs here declare no conversion).
fn present(res: &ResourceDef, stored: &Stored) -> Bytes {
    if res.custom && stored.summary.api_version != res.api_version() {
        let mut v = stored.value();
        v["apiVersion"] = json!(res.api_version());
        return Bytes::from(v.to_string());
    }
    stored.json.clone()
}

pub(crate) fn present_value(res: &ResourceDef, stored: &Stored) -> Bytes {
    present(res, stored)
}

pub(crate) fn get(ctx: Ctx) -> ApiResult<Response<Body>> {
    let res = &ctx.target.res;
    let stored = ctx
        .server
        .store
        .get(&res.storage, &key(ctx.namespace(), ctx.name()))
        .ok_or_else(|| ApiError::not_found(res, ctx.name()))?;
    if ctx.target.sub.as_deref() == Some("scale") {
        return Ok(json_response(StatusCode::OK, scale_of(&stored.value()).to_string()));
    }
    if metadata_only(&ctx.accept) {
        return Ok(json_response(StatusCode::OK, partial(&stored)));
    }
    if crate::table::wants_table(&ctx.accept)
        && let Some(columns) = crate::table::columns_for(res)
    {
        let object: Value = serde_json::from_slice(&present(res, &stored)).unwrap_or_default();
        let metadata = json!({"resourceVersion": stored.rv.to_string()});
        let table =
            crate::table::table(&columns, &[object], metadata, ctx.query.get("includeObject").unwrap_or(""));
        return Ok(json_response(StatusCode::OK, table.to_string()));
    }
    Ok(json_response(StatusCode::OK, present(res, &stored)))
}

/// Whether the client asked for `PartialObjectMetadata` (or its list): metadata only.
pub(crate) fn metadata_only(accept: &str) -> bool {
    accept.split(',').next().is_some_and(|first| first.contains("as=PartialObjectMetadata"))
}

/// The object as a `meta.k8s.io/v1` `PartialObjectMetadata`.
pub(crate) fn partial(stored: &Stored) -> Bytes {
    let v = stored.value();
    Bytes::from(
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": v["metadata"]})
            .to_string(),
    )
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: u64,
    start: String,
    /// Items returned before this page, and the total at the snapshot (our own additions to the
    /// opaque token: remainingItemCount without counting the rest on every page).
    #[serde(default)]
    seen: usize,
    #[serde(default)]
    total: Option<usize>,
}

fn parse_rv(value: &str) -> ApiResult<u64> {
    value.parse().map_err(|_| {
        ApiError::bad_request(format!("invalid resource version \"{value}\": must be a non-negative integer"))
    })
}

pub(crate) fn too_large(requested: u64, current: u64) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "Timeout",
        format!("Too large resource version: {requested}, current: {current}"),
    )
    .with_details(json!({
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        "retryAfterSeconds": 1
    }))
}

pub(crate) fn selectors(ctx: &Ctx) -> ApiResult<(LabelSelector, FieldSelector)> {
    let labels = LabelSelector::parse(ctx.query.get("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let res = &ctx.target.res;
    let fields = FieldSelector::parse(
        ctx.query.get("fieldSelector").unwrap_or(""),
        supported_fields(&res.group, &res.plural),
    )
    .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

pub(crate) fn list(ctx: Ctx) -> ApiResult<Response<Body>> {
    let res = ctx.target.res.clone();
    let storage = ctx.storage();
    let (labels, fields) = selectors(&ctx)?;
    let limit: usize = match ctx.query.get("limit") {
        None | Some("") => 0,
        Some(l) => l.parse().map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
    };
    let store = &ctx.server.store;
    let mut seen_before = 0usize;
    let mut known_total: Option<usize> = None;
    let (rv, map, start) = match ctx.query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(token)
                .ok()
                .and_then(|b| serde_json::from_slice::<ContinueToken>(&b).ok())
                .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
            let map = store.find_snapshot(&storage, decoded.rv).ok_or_else(|| {
                ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                )
            })?;
            seen_before = decoded.seen;
            known_total = decoded.total;
            (decoded.rv, map, Some(decoded.start))
        }
        None => {
            let (current, map) = store.snapshot(&storage);
            match ctx.query.get("resourceVersion").filter(|v| !v.is_empty() && *v != "0") {
                None => (current, map, None),
                Some(v) => {
                    let requested = parse_rv(v)?;
                    match ctx.query.get("resourceVersionMatch").unwrap_or("") {
                        "" | "NotOlderThan" => {
                            if requested > current {
                                return Err(too_large(requested, current));
                            }
                            (current, map, None)
                        }
                        "Exact" => {
                            if requested == current {
                                (current, map, None)
                            } else if let Some(old) = store.find_snapshot(&storage, requested) {
                                (requested, old, None)
                            } else if requested > current {
                                return Err(too_large(requested, current));
                            } else {
                                return Err(ApiError::expired(format!(
                                    "too old resource version: {requested} ({current})"
                                )));
                            }
                        }
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
                            )));
                        }
                    }
                }
            }
        }
    };
    let prefix = ctx.target.namespace.as_ref().map(|ns| format!("{ns}/"));
    let from = match (&start, &prefix) {
        (Some(s), _) => s.clone(),
        (None, Some(p)) => p.clone(),
        (None, None) => String::new(),
    };
    let mut items: Vec<Bytes> = Vec::new();
    let mut last_key = None;
    let mut remaining = 0usize;
    let selecting = !labels.is_empty() || !fields.is_empty();
    let metadata = metadata_only(&ctx.accept);
    for (k, stored) in map.range(from..) {
        if let Some(p) = &prefix
            && !k.starts_with(p.as_str())
        {
            break;
        }
        if start.as_deref() == Some(k.as_str()) {
            continue;
        }
        if selecting && !(labels.matches(&stored.summary.labels) && fields.matches(&stored.summary)) {
            continue;
        }
        if limit > 0 && items.len() >= limit {
            remaining += 1;
            if selecting || known_total.is_some() {
                // Under selectors the real server does not count; with a known total there is
                // no need to.
                break;
            }
            continue;
        }
        items.push(if metadata { partial(stored) } else { present(&res, stored) });
        last_key = Some(k.clone());
    }
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    let seen = seen_before + items.len();
    if remaining > 0
        && let Some(last) = last_key
    {
        let total = if selecting { None } else { Some(known_total.unwrap_or(seen + remaining)) };
        if let Some(t) = total {
            remaining = t.saturating_sub(seen);
        }
        let token = ContinueToken { v: "meta.k8s.io/v1".into(), rv, start: last, seen, total };
        let token =
            base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&token).unwrap_or_default());
        metadata["continue"] = json!(token);
        if !selecting {
            metadata["remainingItemCount"] = json!(remaining);
        }
        store.keep_snapshot(&storage, rv, map.clone());
    }
    if metadata_only(&ctx.accept) {
        let head = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": metadata});
        return Ok(json_response(StatusCode::OK, list_body_with(head, &items)));
    }
    if crate::table::wants_table(&ctx.accept)
        && let Some(columns) = crate::table::columns_for(&res)
    {
        let objects: Vec<Value> = items.iter().filter_map(|i| serde_json::from_slice(i).ok()).collect();
        let include = ctx.query.get("includeObject").unwrap_or("");
        let table = crate::table::table(&columns, &objects, metadata, include);
        return Ok(json_response(StatusCode::OK, table.to_string()));
    }
    Ok(json_response(StatusCode::OK, list_body(&res, metadata, &items)))
}

/// A list object whose items are the stored JSON, concatenated without re-serializing.
fn list_body(res: &ResourceDef, metadata: Value, items: &[Bytes]) -> Vec<u8> {
    list_body_with(
        json!({"kind": res.list_kind, "apiVersion": res.api_version(), "metadata": metadata}),
        items,
    )
}

fn list_body_with(head: Value, items: &[Bytes]) -> Vec<u8> {
    let head = head.to_string();
    let mut out = Vec::with_capacity(head.len() + items.iter().map(|i| i.len() + 1).sum::<usize>() + 16);
    // The head without its closing brace, then the items.
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.extend_from_slice(b"]}");
    out
}

/// kube's DNS-1123 subdomain (most names) or label (namespaces) check.
fn name_errors(res: &ResourceDef, name: &str) -> Option<String> {
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
fn check_type(res: &ResourceDef, obj: &mut Value) -> ApiResult<()> {
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
    validate_custom(res, &name, &mut obj)?;
    let _ = server;
    Ok((obj, name))
}

fn validate_custom(res: &ResourceDef, name: &str, obj: &mut Value) -> ApiResult<()> {
    if let Some(schema) = &res.schema {
        let errors = schema.validate_and_prune(obj);
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
    let (mut obj, name) = prepare_create(&ctx.server, &res, ctx.namespace(), body)?;
    if res.namespaced {
        check_namespace(&ctx.server, ctx.namespace(), &res, &name)?;
    }
    apply::record_update(&mut obj, None, &ctx.manager(), &res, "Update");
    if ctx.dry_run() {
        return Ok(json_response(StatusCode::CREATED, obj.to_string()));
    }
    let written = ctx.server.store.write(&ctx.storage(), &key(ctx.namespace(), &name), |current, _| {
        if current.is_some() {
            return Err(ApiError::already_exists(&res, &name));
        }
        Ok(Write::Put(obj))
    })?;
    after_write(&ctx.server, &res, &written);
    Ok(json_response(StatusCode::CREATED, present(&res, written.object())))
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

fn without(obj: &Value, keys: &[&str]) -> Value {
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
        validate_custom(res, &name, &mut result)?;
        if res.group == "apiextensions.k8s.io" && res.plural == "customresourcedefinitions" {
            crd::resources_of(&result).map_err(|errors| ApiError::invalid(res, &name, &errors))?;
            result["status"] = cur["status"].clone();
        }
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
    let written = ctx.server.store.write(&ctx.storage(), &key(ctx.namespace(), &name), |current, _| {
        let current = current.ok_or_else(|| ApiError::not_found(&res, &name))?;
        let decision = prepare_update(&res, current, body, sub.as_deref(), &manager)?;
        Ok(if ctx.dry_run() { Write::Unchanged(current.clone()) } else { decision })
    })?;
    after_write(&ctx.server, &res, &written);
    Ok(json_response(StatusCode::OK, present(&res, written.object())))
}

/// The autoscaling/v1 Scale of an object.
fn scale_of(obj: &Value) -> Value {
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

fn update_scale(ctx: Ctx, scale: Value) -> ApiResult<Response<Body>> {
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
        prepare_update(&res, current, obj, None, &manager)
    })?;
    Ok(json_response(StatusCode::OK, scale_of(&written.object().value()).to_string()))
}

pub(crate) fn patch(ctx: Ctx) -> ApiResult<Response<Body>> {
    let res = ctx.target.res.clone();
    let name = ctx.name().to_string();
    let sub = ctx.target.sub.clone();
    let manager = ctx.manager();
    let content_type = ctx.content_type.split(';').next().unwrap_or("").trim().to_string();
    if content_type == "application/apply-patch+yaml" {
        return apply::server_side_apply(ctx);
    }
    let patch_body = match content_type.as_str() {
        "application/merge-patch+json" | "application/json-patch+json" => decode_any(&ctx.body)?,
        "application/strategic-merge-patch+json" => {
            if res.custom {
                return Err(ApiError::unsupported_media_type(&content_type));
            }
            decode_any(&ctx.body)?
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    let written = ctx.server.store.write(&ctx.storage(), &key(ctx.namespace(), &name), |current, _| {
        let current = current.ok_or_else(|| ApiError::not_found(&res, &name))?;
        let cur = current.value();
        let mut target = if sub.as_deref() == Some("scale") { scale_of(&cur) } else { cur.clone() };
        let patch_error = |e: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", e);
        match content_type.as_str() {
            "application/merge-patch+json" => crate::patch::merge(&mut target, &patch_body),
            "application/json-patch+json" => {
                crate::patch::json(&mut target, &patch_body).map_err(patch_error)?
            }
            _ => crate::patch::strategic(&mut target, &patch_body).map_err(patch_error)?,
        }
        if !target.is_object() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                "the patch would turn the object into something that is not a JSON object",
            ));
        }
        let decision = if sub.as_deref() == Some("scale") {
            let mut obj = cur.clone();
            crate::object::set_path(&mut obj, &["spec", "replicas"], target["spec"]["replicas"].clone());
            prepare_update(&res, current, obj, None, &manager)?
        } else {
            // A patch that does not set resourceVersion applies to whatever is current.
            if target["metadata"]["resourceVersion"] == cur["metadata"]["resourceVersion"] {
                meta_mut(&mut target).remove("resourceVersion");
            }
            prepare_update(&res, current, target, sub.as_deref(), &manager)?
        };
        Ok(if ctx.dry_run() { Write::Unchanged(current.clone()) } else { decision })
    })?;
    after_write(&ctx.server, &res, &written);
    if sub.as_deref() == Some("scale") {
        return Ok(json_response(StatusCode::OK, scale_of(&written.object().value()).to_string()));
    }
    Ok(json_response(StatusCode::OK, present(&res, written.object())))
}

fn decode_any(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
}

/// DeleteOptions from the body and the query.
struct DeleteOptions {
    propagation: Option<String>,
    uid: Option<String>,
    rv: Option<String>,
    dry_run: bool,
}

fn delete_options(ctx: &Ctx) -> ApiResult<DeleteOptions> {
    let body: Value = if ctx.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
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
fn decide_delete(res: &ResourceDef, current: &Stored, opts: &DeleteOptions) -> ApiResult<Write> {
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

fn deleted_status(res: &ResourceDef, obj: &Stored) -> Value {
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
    let written = ctx.server.store.write(&ctx.storage(), &key(ctx.namespace(), &name), |current, _| {
        let current = current.ok_or_else(|| ApiError::not_found(&res, &name))?;
        let decision = decide_delete(&res, current, &opts)?;
        Ok(if opts.dry_run { Write::Unchanged(current.clone()) } else { decision })
    })?;
    after_write(&ctx.server, &res, &written);
    // Pods and custom resources answer with the object; others with a Status when the object is
    // gone, and with the object while finalizers keep it.
    match &written {
        Written::Deleted(obj) if !(res.custom || (res.group.is_empty() && res.plural == "pods")) => {
            Ok(json_response(StatusCode::OK, deleted_status(&res, obj).to_string()))
        }
        other => Ok(json_response(StatusCode::OK, present(&res, other.object()))),
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

/// Unused-field guard for `Ctx::accept` (kept for Table and metadata-only answers later).
#[allow(dead_code)]
fn accepts_table(ctx: &Ctx) -> bool {
    ctx.accept.contains("as=Table")
}

/// Helper for tests and controllers: an object map's metadata.
#[allow(dead_code)]
pub(crate) fn metadata(obj: &Value) -> Map<String, Value> {
    obj["metadata"].as_object().cloned().unwrap_or_default()
}
