//! The verbs on resources (kube-apiserver's `endpoints/handlers` and generic registry store): a
//! request parsed into [`Ctx`], then one file per kind of verb — `read` (get, list), `write`
//! (create, update, the scale subresource), `patch` and `delete` (delete, deletecollection) —
//! with kube-apiserver's semantics and error texts.

mod delete;
mod patch;
mod read;
mod write;

pub(crate) use delete::{delete, delete_collection, delete_object};
pub(crate) use patch::patch;
pub(crate) use read::{get, list, metadata_only, partial, selectors, too_large};
pub(crate) use write::{after_write, check_namespace, create, prepare_create, prepare_update, update};

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::{
    object::Stored,
    resources::ResourceDef,
    server::{Query, Server, Target},
    status::{ApiError, ApiResult},
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
    pub(crate) fn storage(&self) -> Arc<str> {
        Arc::from(self.target.res.storage.as_str())
    }
    pub(crate) fn namespace(&self) -> &str {
        self.target.namespace.as_deref().unwrap_or("")
    }
    pub(crate) fn name(&self) -> &str {
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

pub(crate) fn kind_of(v: &Value) -> &'static str {
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
pub(crate) fn present(res: &ResourceDef, stored: &Stored) -> Bytes {
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

/// Unused-field guard for `Ctx::accept` (kept for Table and metadata-only answers later).
#[allow(dead_code)]
pub(crate) fn accepts_table(ctx: &Ctx) -> bool {
    ctx.accept.contains("as=Table")
}

/// Helper for tests and controllers: an object map's metadata.
#[allow(dead_code)]
pub(crate) fn metadata(obj: &Value) -> Map<String, Value> {
    obj["metadata"].as_object().cloned().unwrap_or_default()
}
