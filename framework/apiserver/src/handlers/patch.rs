//! patch (kube-apiserver's `endpoints/handlers/patch.go`): JSON, merge and strategic merge
//! patches; server-side apply is `crate::apply`.

use http::{Response, StatusCode};
use serde_json::Value;

use super::{write::*, *};
use crate::{
    apply,
    http_util::{Body, json_response},
    object::{key, meta_mut},
    server::MAX_BODY,
    status::{ApiError, ApiResult},
    store::Write,
};

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
    let attrs = ctx.attributes(crate::admission::Operation::Update);
    let written = crate::admission::write(
        &ctx.server,
        &attrs,
        &ctx.storage(),
        &key(ctx.namespace(), &name),
        |current| {
            let current = current.ok_or_else(|| ApiError::not_found(&res, &name))?;
            let cur = current.value();
            let mut target = if sub.as_deref() == Some("scale") { scale_of(&cur) } else { cur.clone() };
            let patch_error = |e: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", e);
            match content_type.as_str() {
                "application/merge-patch+json" => crate::patch::merge(&mut target, &patch_body),
                "application/json-patch+json" => {
                    crate::patch::json(&mut target, &patch_body, MAX_BODY).map_err(patch_error)?
                }
                _ => crate::patch::strategic(&mut target, &patch_body).map_err(patch_error)?,
            }
            let size = crate::patch::encoded_len(&target);
            if size > MAX_BODY {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLarge",
                    format!(
                        "Request entity too large: the patched object would be {size} bytes; the limit is {MAX_BODY}"
                    ),
                ));
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
                prepare_update(&ctx.server.allocations, &res, current, obj, None, &manager)?
            } else {
                // A patch that does not set resourceVersion applies to whatever is current.
                if target["metadata"]["resourceVersion"] == cur["metadata"]["resourceVersion"] {
                    meta_mut(&mut target).remove("resourceVersion");
                }
                prepare_update(&ctx.server.allocations, &res, current, target, sub.as_deref(), &manager)?
            };
            Ok(if ctx.dry_run() { Write::Unchanged(current.clone()) } else { decision })
        },
    )?;
    after_write(&ctx.server, &res, &written);
    if sub.as_deref() == Some("scale") {
        return Ok(json_response(StatusCode::OK, scale_of(&written.object().value()).to_string()));
    }
    Ok(json_response(
        StatusCode::OK,
        present(&res, &crate::conversion::view(&ctx.server, &res, written.object())?),
    ))
}

pub(crate) fn decode_any(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
}
