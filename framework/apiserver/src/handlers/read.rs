//! get and list (kube-apiserver's `endpoints/handlers/get.go`): consistent paged lists with
//! continue tokens, resourceVersion semantics, label and field selectors, metadata-only output.

use base64::Engine;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::{write::*, *};
use crate::{
    http_util::{Body, json_response},
    object::{Stored, key},
    resources::ResourceDef,
    selector::{FieldSelector, LabelSelector, supported_fields},
    status::{ApiError, ApiResult},
};

pub(crate) fn get(ctx: Ctx) -> ApiResult<Response<Body>> {
    let res = &ctx.target.res;
    let stored = ctx
        .server
        .store
        .get(&res.storage, &key(ctx.namespace(), ctx.name()))
        .ok_or_else(|| ApiError::not_found(res, ctx.name()))?;
    let stored = crate::conversion::view(&ctx.server, res, &stored)?;
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
pub(crate) struct ContinueToken {
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

pub(crate) fn parse_rv(value: &str) -> ApiResult<u64> {
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
        items.push(if metadata {
            partial(stored)
        } else {
            present(&res, &crate::conversion::view(&ctx.server, &res, stored)?)
        });
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
pub(crate) fn list_body(res: &ResourceDef, metadata: Value, items: &[Bytes]) -> Vec<u8> {
    list_body_with(
        json!({"kind": res.list_kind, "apiVersion": res.api_version(), "metadata": metadata}),
        items,
    )
}

pub(crate) fn list_body_with(head: Value, items: &[Bytes]) -> Vec<u8> {
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
