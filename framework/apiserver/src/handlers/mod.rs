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
    /// What admission needs to know of this request, for `operation`.
    pub(crate) fn attributes(
        &self,
        operation: crate::admission::Operation,
    ) -> crate::admission::Attributes<'_> {
        crate::admission::Attributes {
            res: &self.target.res,
            sub: self.target.sub.as_deref(),
            operation,
            namespace: self.namespace(),
            name: self.name(),
            dry_run: self.dry_run(),
        }
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
                "this server decodes protobuf bodies only for the built-in kinds it serves (custom resources have no protobuf form); send JSON",
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
    let yaml = content_type.contains("yaml");
    if let Some(why) = too_deep(body, yaml) {
        return Err(ApiError::bad_request(format!("the request body is nested too deeply: {why}")));
    }
    let value: Value = if yaml {
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

/// Nesting deeper than this is refused before parsing (no Kubernetes object comes close; the
/// parsers' own limits would also stop it, but only after reading up to it).
const MAX_DEPTH: usize = 100;
/// A block-YAML line indented further than this is refused before parsing.
const MAX_INDENT: usize = 512;

/// A cheap byte scan for bodies nested deeper than any object: brackets and braces outside
/// quoted strings and, for YAML, indentation and comments.
pub(crate) fn too_deep(body: &[u8], yaml: bool) -> Option<String> {
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    let mut line_start = true;
    let mut indent = 0usize;
    let mut comment = false;
    for &b in body {
        if b == b'\n' {
            line_start = true;
            indent = 0;
            comment = false;
            continue;
        }
        if comment {
            continue;
        }
        if yaml && line_start {
            if b == b' ' {
                indent += 1;
                if indent > MAX_INDENT {
                    return Some(format!("a line is indented more than {MAX_INDENT} columns"));
                }
                continue;
            }
            line_start = false;
        }
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if b == b'\\' && q == b'"' {
                    escaped = true;
                } else if b == q {
                    quote = None;
                }
            }
            None => match b {
                b'"' => quote = Some(b'"'),
                b'\'' if yaml => quote = Some(b'\''),
                b'#' if yaml => comment = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Some(format!("more than {MAX_DEPTH} levels of lists and maps"));
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    None
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
