//! The shared state of a running server and the routing of a request to discovery, health
//! endpoints or a resource verb.
//!
//! Mirrors kube-apiserver's handler chain and `APIGroupVersion` routing.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use parking_lot::RwLock;
use serde_json::json;

use crate::{
    discovery,
    faults::Faults,
    handlers,
    http_util::{Body, json_response, parse_bool, typed_response},
    resources::{self, ResourceDef},
    status::{ApiError, ApiResult},
    store::Store,
};

/// Request bodies above this size get 413, as kube-apiserver's 3 MiB limit.
pub(crate) const MAX_BODY: usize = 3 * 1024 * 1024;

/// Everything the handlers share.
pub(crate) struct Server {
    pub store: Store,
    pub resources: RwLock<Vec<Arc<ResourceDef>>>,
    pub token: Option<String>,
    /// Issued service account tokens and static users' tokens.
    pub tokens: crate::auth::Tokens,
    pub faults: Faults,
    pub bookmark_interval: Duration,
    /// `host:port`, for `serverAddressByClientCIDRs`.
    pub address: RwLock<String>,
    /// Where webhook Services are reached: (namespace, name) -> base URL (there are no pods).
    pub services: RwLock<std::collections::HashMap<(String, String), String>>,
    /// Requests received, by method (in [`METHODS`]' order; the last counts the others).
    pub requests: [std::sync::atomic::AtomicU64; 6],
    /// The last requests that carried a W3C trace context, oldest first.
    pub traced: parking_lot::Mutex<std::collections::VecDeque<crate::TracedRequest>>,
    /// Service ClusterIPs and node ports handed out.
    pub allocations: parking_lot::Mutex<crate::defaults::Allocations>,
}

/// How many traced requests [`Server::traced`] keeps.
pub(crate) const TRACED_KEPT: usize = 4096;

/// The methods [`Server::requests`] counts.
pub(crate) const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// What a resource request addresses.
pub(crate) struct Target {
    pub res: Arc<ResourceDef>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

impl Server {
    pub fn new(
        token: Option<String>,
        history: usize,
        history_bytes: usize,
        watch_buffer: usize,
        bookmark_interval: Duration,
        first_revision: Option<u64>,
    ) -> Server {
        Server {
            store: Store::new(history, history_bytes, watch_buffer, first_revision),
            resources: RwLock::new(resources::builtins()),
            token,
            faults: Faults::default(),
            bookmark_interval,
            address: RwLock::new(String::new()),
            requests: Default::default(),
            traced: Default::default(),
            allocations: Default::default(),
            tokens: crate::auth::Tokens::default(),
            services: RwLock::default(),
        }
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.resources
            .read()
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    /// Any served version of a storage table (for the built-in controllers).
    pub fn by_storage(&self, storage: &str) -> Option<Arc<ResourceDef>> {
        self.resources.read().iter().find(|r| r.storage == storage).cloned()
    }

    pub fn namespaces(&self) -> Arc<ResourceDef> {
        // Built in, always present.
        self.find("", "v1", "namespaces")
            .unwrap_or_else(|| Arc::new(resources::builtins()[3].as_ref().clone()))
    }
}

/// Query parameters, decoded.
pub(crate) struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        Query(form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect())
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    pub fn flag(&self, key: &str) -> ApiResult<bool> {
        match self.get(key) {
            None => Ok(false),
            Some(v) => {
                parse_bool(v).ok_or_else(|| ApiError::bad_request(format!("invalid value for {key}: {v:?}")))
            }
        }
    }
}

/// Handles one request; never panics on its input.
pub(crate) async fn handle(server: Arc<Server>, request: Request<hyper::body::Incoming>) -> Response<Body> {
    let slot = METHODS.iter().position(|m| *m == request.method().as_str()).unwrap_or(METHODS.len());
    server.requests[slot].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Some(traceparent) = request.headers().get("traceparent").and_then(|v| v.to_str().ok()) {
        let mut traced = server.traced.lock();
        if traced.len() == TRACED_KEPT {
            traced.pop_front();
        }
        traced.push_back(crate::TracedRequest {
            method: request.method().to_string(),
            path: request.uri().path().to_string(),
            traceparent: traceparent.to_string(),
        });
    }
    if let Some(delay) = server.faults.latency() {
        tokio::time::sleep(delay).await;
    }
    if let Some(error) = server.faults.take_failure(request.method()) {
        return error.into_response();
    }
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let response = match route(&server, request).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    tracing::debug!(%method, %path, status = response.status().as_u16(), "request");
    match server.faults.slow_reads() {
        Some((bytes, pause)) => response.map(|body| trickle(body, bytes, pause)),
        None => response,
    }
}

/// Fault: a body sent `bytes` at a time with `pause` between pieces (a slow link).
fn trickle(body: Body, bytes: usize, pause: Duration) -> Body {
    use futures_util::StreamExt;
    use http_body_util::{BodyStream, StreamBody};
    let bytes = bytes.max(1);
    let pieces = BodyStream::new(body).flat_map(move |frame| {
        let pieces: Vec<Result<hyper::body::Frame<Bytes>, std::io::Error>> = match frame {
            Ok(frame) => match frame.into_data() {
                Ok(mut data) => {
                    let mut out = Vec::new();
                    while !data.is_empty() {
                        let piece = data.split_to(bytes.min(data.len()));
                        out.push(Ok(hyper::body::Frame::data(piece)));
                    }
                    out
                }
                Err(frame) => vec![Ok(frame)],
            },
            Err(e) => vec![Err(e)],
        };
        futures_util::stream::iter(pieces)
    });
    let slowed = pieces.then(move |piece| async move {
        tokio::time::sleep(pause).await;
        piece
    });
    BodyExt::boxed(StreamBody::new(slowed))
}

/// Who sent the request: the user of its bearer token; without a known token, the admin when
/// the server requires no token, else nobody (401).
fn caller(server: &Server, request: &Request<hyper::body::Incoming>) -> Option<crate::auth::Identity> {
    let presented = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented.and_then(|t| crate::auth::authenticate(server, t)) {
        Some(identity) => Some(identity),
        None if server.token.is_none() => Some(crate::auth::admin()),
        None => None,
    }
}

/// Compares a presented token with the server's in time that does not depend on where they
/// differ (only on the presented length), so the token cannot be guessed byte by byte.
pub(crate) fn constant_time_eq(presented: &[u8], expected: &[u8]) -> bool {
    let mut diff = presented.len() ^ expected.len();
    for (i, b) in presented.iter().enumerate() {
        diff |= usize::from(b ^ expected.get(i % expected.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

/// How long a client may take to send a request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);

async fn route(server: &Arc<Server>, request: Request<hyper::body::Incoming>) -> ApiResult<Response<Body>> {
    let path = request.uri().path().trim_end_matches('/').to_string();
    let path = if path.is_empty() { "/".to_string() } else { path };
    match path.as_str() {
        "/healthz" | "/livez" | "/readyz" => {
            return Ok(typed_response(StatusCode::OK, "text/plain; charset=utf-8", "ok"));
        }
        p if p.starts_with("/healthz/") || p.starts_with("/livez/") || p.starts_with("/readyz/") => {
            return Ok(typed_response(StatusCode::OK, "text/plain; charset=utf-8", "ok"));
        }
        "/version" => return Ok(json_response(StatusCode::OK, version().to_string())),
        _ => {}
    }
    let Some(caller) = caller(server, &request) else {
        return Err(ApiError::unauthorized());
    };
    let accept = request
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let resources = server.resources.read().clone();
    let discovery_get = request.method() == Method::GET;
    match seg.as_slice() {
        ["openapi", "v2"] => {
            return Ok(typed_response(StatusCode::OK, "application/octet-stream", Bytes::new()));
        }
        ["openapi", "v3"] if discovery_get => {
            return Ok(json_response(StatusCode::OK, crate::openapi::root(&resources).to_string()));
        }
        ["openapi", "v3", "api", version] if discovery_get => {
            return crate::openapi::document(&resources, "", version)
                .map(|d| json_response(StatusCode::OK, d.to_string()))
                .ok_or_else(|| ApiError::no_route(&path));
        }
        ["openapi", "v3", "apis", group, version] if discovery_get => {
            return crate::openapi::document(&resources, group, version)
                .map(|d| json_response(StatusCode::OK, d.to_string()))
                .ok_or_else(|| ApiError::no_route(&path));
        }
        ["api"] if discovery_get => {
            if let Some(ct) = discovery::wants_aggregated(&accept) {
                return Ok(aggregated_response(discovery::aggregated(&resources, true, ct), ct));
            }
            return Ok(json_response(
                StatusCode::OK,
                discovery::api_versions(&server.address.read()).to_string(),
            ));
        }
        ["apis"] if discovery_get => {
            if let Some(ct) = discovery::wants_aggregated(&accept) {
                return Ok(aggregated_response(discovery::aggregated(&resources, false, ct), ct));
            }
            return Ok(json_response(StatusCode::OK, discovery::api_group_list(&resources).to_string()));
        }
        ["api", version] if discovery_get => {
            return discovery::resource_list(&resources, "", version)
                .map(|d| json_response(StatusCode::OK, d.to_string()))
                .ok_or_else(|| ApiError::no_route(&path));
        }
        ["apis", group] if discovery_get => {
            return discovery::api_group(&resources, group)
                .map(|d| json_response(StatusCode::OK, d.to_string()))
                .ok_or_else(|| ApiError::no_route(&path));
        }
        ["apis", group, version] if discovery_get => {
            return discovery::resource_list(&resources, group, version)
                .map(|d| json_response(StatusCode::OK, d.to_string()))
                .ok_or_else(|| ApiError::no_route(&path));
        }
        _ => {}
    }
    let (group, version, rest) = match seg.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => return Err(ApiError::no_route(&path)),
    };
    let target = resolve(server, group, version, rest, &path)?;
    let query = Query::parse(request.uri().query());
    let method = request.method().clone();
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let user_agent = request
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    crate::options::check(&query, &method)?;
    let body = read_body(request).await?;
    if crate::auth::handles(&target) {
        return crate::auth::handle(server, &target, &method, &content_type, &body, &caller);
    }
    let ctx = handlers::Ctx { server: server.clone(), target, query, content_type, accept, user_agent, body };
    if method == Method::GET && ctx.target.name.is_none() && ctx.query.flag("watch")? {
        return crate::watch::serve(ctx);
    }
    // Decoding, patching and listing take CPU in proportion to what the client sent or asked
    // for: off the async workers, so that health checks and watches keep being served.
    let path_for_error = path.clone();
    tokio::task::spawn_blocking(move || dispatch(ctx, &method, &path))
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("the request to {path_for_error} failed: {e}"))))
}

/// Server-side field validation (`fieldValidation=Strict|Warn|Ignore`, as kubectl sends it to
/// kinds whose OpenAPI patch operation lists it): the body's fields that the kind's schema does
/// not declare refuse the request (Strict) or come back as `Warning` headers (Warn). Without the
/// parameter nothing is checked (kube-apiserver warns by default; clients that care ask).
fn unknown_fields(ctx: &handlers::Ctx, method: &Method) -> ApiResult<(bool, Vec<String>)> {
    let Some(mode) = ctx.query.get("fieldValidation") else { return Ok((false, Vec::new())) };
    let strict = match mode {
        "Strict" => true,
        "Warn" => false,
        "Ignore" | "" => return Ok((false, Vec::new())),
        other => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation: invalid value {other:?}: must be one of Ignore, Warn, Strict"
            )));
        }
    };
    let writes = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    if !writes || !matches!(ctx.target.sub.as_deref(), None | Some("status")) || ctx.body.is_empty() {
        return Ok((strict, Vec::new()));
    }
    let media = ctx.content_type.split(';').next().unwrap_or("").trim();
    let body = match media {
        "application/json-patch+json" => return Ok((strict, Vec::new())),
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            match serde_json::from_slice(&ctx.body) {
                Ok(v) => v,
                // The handler reports what does not parse.
                Err(_) => return Ok((strict, Vec::new())),
            }
        }
        "application/apply-patch+yaml" => match handlers::decode_body("application/yaml", &ctx.body) {
            Ok(v) => v,
            Err(_) => return Ok((strict, Vec::new())),
        },
        _ => match handlers::decode_body(&ctx.content_type, &ctx.body) {
            Ok(v) => v,
            Err(_) => return Ok((strict, Vec::new())),
        },
    };
    Ok((strict, crate::openapi::unknown_fields(&ctx.target.res, &body)))
}

/// Runs a verb that is not a watch.
fn dispatch(ctx: handlers::Ctx, method: &Method, path: &str) -> ApiResult<Response<Body>> {
    let (strict, unknown) = unknown_fields(&ctx, method)?;
    if strict && !unknown.is_empty() {
        let res = &ctx.target.res;
        let fields: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
            res.kind,
            res.version,
            res.kind,
            fields.join(", ")
        )));
    }
    let mut response = run(ctx, method, path)?;
    for field in unknown {
        let warning = format!("299 - \"unknown field \\\"{field}\\\"\"");
        if let Ok(value) = http::HeaderValue::from_str(&warning) {
            response.headers_mut().append("warning", value);
        }
    }
    Ok(response)
}

fn run(ctx: handlers::Ctx, method: &Method, path: &str) -> ApiResult<Response<Body>> {
    match (method, ctx.target.name.is_some()) {
        (&Method::GET, true) => handlers::get(ctx),
        (&Method::GET, false) => handlers::list(ctx),
        (&Method::POST, false) => handlers::create(ctx),
        (&Method::PUT, true) => handlers::update(ctx),
        (&Method::PATCH, true) => handlers::patch(ctx),
        (&Method::DELETE, true) => handlers::delete(ctx),
        (&Method::DELETE, false) => handlers::delete_collection(ctx),
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({path})"
        ))),
    }
}

fn aggregated_response(doc: serde_json::Value, content_type: &'static str) -> Response<Body> {
    typed_response(StatusCode::OK, content_type, doc.to_string())
}

/// Parses `namespaces/<ns>/<resource>[/<name>[/<sub>]]` or `<resource>[/<name>[/<sub>]]`.
fn resolve(server: &Server, group: &str, version: &str, rest: &[&str], path: &str) -> ApiResult<Target> {
    let (namespace, parts): (Option<String>, Vec<&str>) = match rest {
        // A namespace's own subresources (status, finalize).
        ["namespaces", name, sub] if group.is_empty() && matches!(*sub, "status" | "finalize") => {
            let res = server.namespaces();
            return Ok(Target {
                res,
                namespace: None,
                name: Some(name.to_string()),
                sub: Some(sub.to_string()),
            });
        }
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some(ns.to_string()), tail.to_vec()),
        other => (None, other.to_vec()),
    };
    let Some((plural, tail)) = parts.split_first() else { return Err(ApiError::no_route(path)) };
    let res = server.find(group, version, plural).ok_or_else(|| ApiError::no_route(path))?;
    if namespace.is_some() && !res.namespaced {
        return Err(ApiError::no_route(path));
    }
    let (name, sub) = match tail {
        [] => (None, None),
        [name] => (Some(name.to_string()), None),
        [name, sub] => {
            if !res.has_subresource(sub) {
                return Err(ApiError::no_route(path));
            }
            (Some(name.to_string()), Some(sub.to_string()))
        }
        _ => return Err(ApiError::no_route(path)),
    };
    if res.namespaced && namespace.is_none() && name.is_some() {
        return Err(ApiError::no_route(path));
    }
    Ok(Target { res, namespace, name, sub })
}

async fn read_body(request: Request<hyper::body::Incoming>) -> ApiResult<Bytes> {
    let limited = Limited::new(request.into_body(), MAX_BODY);
    let Ok(collected) = tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await else {
        return Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "Timeout",
            format!("the request body was not sent within {}s", BODY_TIMEOUT.as_secs()),
        ));
    };
    match collected {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {MAX_BODY}"),
        )),
        Err(e) => Err(ApiError::bad_request(format!("cannot read the request body: {e}"))),
    }
}

/// `/version`.
pub(crate) fn version() -> serde_json::Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "gitVersion": concat!("v1.33.0-krust.", env!("CARGO_PKG_VERSION")),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(constant_time_eq(b"t0ken", b"t0ken"));
        for wrong in [&b"t0kem"[..], b"t0ke", b"t0ken1", b"", b"T0KEN"] {
            assert!(!constant_time_eq(wrong, b"t0ken"), "{wrong:?}");
        }
    }
}
