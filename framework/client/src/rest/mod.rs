//! The REST client, twin of client-go's `rest.RESTClient` and `rest.Request`: a fluent builder
//! for one API call (`get().namespace("default").resource("pods").name("x").send()`), responses
//! decoded on demand, and watches decoded incrementally from the chunked body.
//!
//! Every request goes through the same steps: the optional client-side rate limit, the
//! credential (token, token file, exec plugin), impersonation headers, the pooled transport.
//! As client-go does, a 429 or 5xx carrying `Retry-After` is retried after that delay (up to
//! `Config::max_retries`; request bodies are held in memory, so they can always be replayed), a
//! GET whose connection was refused or reset is retried with backoff, and a 401 renews an exec
//! credential and retries once.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let config = server.kubeconfig().config;
//! use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
//! use krust_client::RestClient;
//! use kube_core::GroupVersion;
//!
//! let client = RestClient::new(&config.with_group_version(GroupVersion::gv("", "v1")))?;
//! let default: Namespace = client.get().resource("namespaces").name("default").send().await?.into()?;
//! assert_eq!(default.metadata.name.as_deref(), Some("default"));
//!
//! let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
//! let created: ConfigMap = client.post().namespace("default").resource("configmaps").body(&cm).send().await?.into()?;
//! assert!(created.metadata.uid.is_some());
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

mod metrics;
mod rate_limit;
mod response;
mod trace;
mod warnings;
pub mod watch;

use std::{sync::Arc, time::Duration};

use backon::BackoffBuilder;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use http_body_util::{BodyDataStream, BodyExt, Full};
use kube_core::GroupVersion;
use serde::{Serialize, de::DeserializeOwned};
use tracing::Instrument;

pub use metrics::{MetricsHook, RequestMetrics};
pub use response::Response;
pub(crate) use response::from_json;
pub use watch::{WatchLines, WatchStream};

use crate::{
    auth::Auth,
    config::Config,
    error::{ApiError, Error, Result},
    transport::{self, ClientCertResolver, Connector, DedicatedBody, HttpClient},
};
use rate_limit::TokenBucket;
use warnings::WarningLog;

/// The content type of a PATCH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 6902 JSON patch (`application/json-patch+json`).
    Json,
    /// RFC 7386 JSON merge patch (`application/merge-patch+json`).
    Merge,
    /// Kubernetes strategic merge patch (`application/strategic-merge-patch+json`).
    StrategicMerge,
    /// Server-side apply (`application/apply-patch+yaml`; JSON is valid YAML).
    Apply,
}

impl PatchType {
    /// The `Content-Type` of this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// A client for one API group version (or for absolute paths), sharing one connection pool
/// with every client derived from it. Cheap to clone.
#[derive(Clone)]
pub struct RestClient {
    shared: Arc<Shared>,
    /// `/api/v1`, `/apis/apps/v1`, or empty for an unversioned client.
    prefix: Arc<str>,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient")
            .field("server", &self.shared.server)
            .field("prefix", &self.prefix)
            .finish()
    }
}

struct Shared {
    http: HttpClient,
    /// Dedicated HTTP/1.1 connections for watches.
    dedicated: Connector,
    server: Uri,
    auth: Auth,
    impersonation: HeaderMap,
    user_agent: HeaderValue,
    timeout: Option<Duration>,
    max_retries: u32,
    limiter: Option<TokenBucket>,
    warnings: WarningLog,
    default_namespace: String,
    metrics: Option<Arc<dyn RequestMetrics>>,
    /// The server's `host:port`, the metrics' `host` label.
    host: String,
}

impl RestClient {
    /// A client for `config.group_version` under `config.api_path` (client-go's
    /// `rest.RESTClientFor`). Both must be set, e.g. with [`Config::with_group_version`].
    pub fn new(config: &Config) -> Result<RestClient> {
        let gv = config.group_version.as_ref().ok_or_else(|| {
            Error::InvalidRequest(
                "Config.group_version is not set; a RestClient talks to one group version: \
                 use config.with_group_version(GroupVersion::gv(\"\", \"v1\")) or RestClient::unversioned"
                    .into(),
            )
        })?;
        if config.api_path.is_empty() {
            return Err(Error::InvalidRequest(
                "Config.api_path is not set; use \"/api\" for the core group and \"/apis\" for others".into(),
            ));
        }
        Ok(Self::unversioned(config)?.with_group_version(&config.api_path, gv))
    }

    /// A client without a group version: requests name their path with [`Request::abs_path`]
    /// (client-go's `UnversionedRESTClientFor`).
    pub fn unversioned(config: &Config) -> Result<RestClient> {
        let certs = Arc::new(ClientCertResolver::default());
        let transport = transport::build(config, certs.clone())?;
        let auth = Auth::new(&config.auth, certs)?;
        let user_agent = HeaderValue::try_from(config.user_agent.as_str()).map_err(|_| {
            Error::InvalidRequest(format!("user agent {:?} is not a valid header", config.user_agent))
        })?;
        let limiter = match config.qps {
            Some(qps) if qps > 0.0 => Some(TokenBucket::new(qps, config.burst)),
            _ => None,
        };
        Ok(RestClient {
            shared: Arc::new(Shared {
                http: transport.pooled,
                dedicated: transport.dedicated,
                server: config.server.clone(),
                auth,
                impersonation: impersonation_headers(config)?,
                user_agent,
                timeout: config.timeout,
                max_retries: config.max_retries,
                limiter,
                warnings: WarningLog::default(),
                default_namespace: config.default_namespace.clone(),
                metrics: config.metrics.as_ref().map(|m| m.0.clone()),
                host: config.server.authority().map(|a| a.to_string()).unwrap_or_default(),
            }),
            prefix: Arc::from(""),
        })
    }

    /// A client for another group version that shares this one's connections and credentials.
    pub fn with_group_version(&self, api_path: &str, gv: &GroupVersion) -> RestClient {
        let mut prefix = format!("/{}", api_path.trim_matches('/'));
        if !gv.group.is_empty() {
            prefix.push('/');
            prefix.push_str(&gv.group);
        }
        prefix.push('/');
        prefix.push_str(&gv.version);
        RestClient { shared: self.shared.clone(), prefix: Arc::from(prefix) }
    }

    /// The namespace of the configuration's context.
    pub fn default_namespace(&self) -> &str {
        &self.shared.default_namespace
    }

    /// The API server's URL.
    pub fn server(&self) -> &Uri {
        &self.shared.server
    }

    /// A request with any method (client-go's `Verb`).
    pub fn request(&self, method: Method) -> Request {
        Request {
            client: self.clone(),
            method,
            abs_path: None,
            namespace: None,
            resource: None,
            name: None,
            sub_resource: Vec::new(),
            params: Vec::new(),
            body: None,
            content_type: None,
            headers: HeaderMap::new(),
            timeout: None,
            error: None,
        }
    }

    /// A GET request.
    pub fn get(&self) -> Request {
        self.request(Method::GET)
    }
    /// A POST request.
    pub fn post(&self) -> Request {
        self.request(Method::POST)
    }
    /// A PUT request.
    pub fn put(&self) -> Request {
        self.request(Method::PUT)
    }
    /// A PATCH request with the content type of `patch_type`.
    pub fn patch(&self, patch_type: PatchType) -> Request {
        let mut r = self.request(Method::PATCH);
        r.content_type = Some(HeaderValue::from_static(patch_type.content_type()));
        r
    }
    /// A DELETE request.
    pub fn delete(&self) -> Request {
        self.request(Method::DELETE)
    }
}

fn impersonation_headers(config: &Config) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    let Some(imp) = &config.impersonate else { return Ok(headers) };
    let value = |v: &str| {
        HeaderValue::try_from(v)
            .map_err(|_| Error::InvalidRequest(format!("impersonation value {v:?} is not a valid header")))
    };
    headers.insert("impersonate-user", value(&imp.user)?);
    if let Some(uid) = &imp.uid {
        headers.insert("impersonate-uid", value(uid)?);
    }
    for g in &imp.groups {
        headers.append("impersonate-group", value(g)?);
    }
    for (k, vs) in &imp.extra {
        // Header names are case-insensitive; the key is percent-encoded as client-go does.
        let encoded: String = form_urlencoded::byte_serialize(k.as_bytes()).collect();
        let name = HeaderName::try_from(format!("impersonate-extra-{encoded}"))
            .map_err(|_| Error::InvalidRequest(format!("impersonation extra key {k:?} is not valid")))?;
        for v in vs {
            headers.append(name.clone(), value(v)?);
        }
    }
    Ok(headers)
}

/// One API request being built (client-go's `rest.Request`). Errors in the building steps (an
/// invalid name, a body that does not serialize) are kept and returned by `send`/`watch`.
#[must_use = "a request does nothing until it is sent"]
pub struct Request {
    client: RestClient,
    method: Method,
    abs_path: Option<String>,
    namespace: Option<String>,
    resource: Option<String>,
    name: Option<String>,
    sub_resource: Vec<String>,
    params: Vec<(String, String)>,
    body: Option<Bytes>,
    content_type: Option<HeaderValue>,
    headers: HeaderMap,
    timeout: Option<Duration>,
    error: Option<Error>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("method", &self.method).field("path", &self.path()).finish()
    }
}

/// apimachinery's `IsValidPathSegmentName`.
fn check_segment(what: &str, value: &str) -> Option<Error> {
    if value.is_empty() {
        return Some(Error::InvalidRequest(format!("{what} may not be empty")));
    }
    if value == "." || value == ".." || value.contains('/') || value.contains('%') {
        return Some(Error::InvalidRequest(format!(
            "invalid {what} {value:?}: may not be '.' or '..' and may not contain '/' or '%'"
        )));
    }
    None
}

impl Request {
    fn fail(mut self, error: Option<Error>) -> Self {
        if self.error.is_none() {
            self.error = error;
        }
        self
    }

    /// The namespace (omitted from the path when empty, for cluster-scoped resources).
    pub fn namespace(mut self, namespace: &str) -> Self {
        if namespace.is_empty() {
            return self;
        }
        let err = check_segment("namespace", namespace);
        self.namespace = Some(namespace.to_string());
        self.fail(err)
    }

    /// The resource (plural lower-case name, e.g. `pods`).
    pub fn resource(mut self, resource: &str) -> Self {
        let err = check_segment("resource", resource);
        self.resource = Some(resource.to_string());
        self.fail(err)
    }

    /// The object's name.
    pub fn name(mut self, name: &str) -> Self {
        let err = check_segment("resource name", name);
        self.name = Some(name.to_string());
        self.fail(err)
    }

    /// A subresource (`status`, `scale`, `log`, ...); several segments may be given in turn.
    pub fn sub_resource(mut self, sub_resource: &str) -> Self {
        let err = check_segment("subresource", sub_resource);
        self.sub_resource.push(sub_resource.to_string());
        self.fail(err)
    }

    /// An absolute path replacing the group-version prefix (e.g. `/version`, `/apis`).
    pub fn abs_path(mut self, path: &str) -> Self {
        self.abs_path = Some(format!("/{}", path.trim_matches('/')));
        self
    }

    /// A query parameter (appended; repeat it for a list).
    pub fn param(mut self, key: &str, value: impl ToString) -> Self {
        self.params.push((key.to_string(), value.to_string()));
        self
    }

    /// A JSON body.
    pub fn body<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => self.body = Some(Bytes::from(bytes)),
            Err(e) => return self.fail(Some(Error::Serialize(e))),
        }
        self
    }

    /// A raw body (its content type is `application/json` unless set with [`Request::header`]).
    pub fn body_bytes(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// A request header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        if name == header::CONTENT_TYPE {
            self.content_type = Some(value);
        } else {
            self.headers.insert(name, value);
        }
        self
    }

    /// A timeout for this request (overrides `Config::timeout`); also sent to the server as the
    /// `timeout` parameter, as client-go does.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The path this request will use.
    pub fn path(&self) -> String {
        let mut path = match &self.abs_path {
            Some(p) => p.trim_end_matches('/').to_string(),
            None => self.client.prefix.to_string(),
        };
        if let Some(ns) = &self.namespace {
            path.push_str("/namespaces/");
            path.push_str(ns);
        }
        for segment in self.resource.iter().chain(self.name.iter()).chain(self.sub_resource.iter()) {
            path.push('/');
            path.push_str(segment);
        }
        if path.is_empty() {
            path.push('/');
        }
        path
    }

    fn uri(&self, params: &[(String, String)]) -> Result<Uri> {
        let server = &self.client.shared.server;
        let base = server.path().trim_end_matches('/');
        let mut path_and_query = format!("{base}{}", self.path());
        if !params.is_empty() {
            path_and_query.push('?');
            path_and_query
                .push_str(&form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish());
        }
        let mut parts = server.clone().into_parts();
        parts.path_and_query = Some(
            path_and_query
                .parse()
                .map_err(|e| Error::InvalidRequest(format!("invalid path {path_and_query:?}: {e}")))?,
        );
        Uri::from_parts(parts).map_err(|e| Error::InvalidRequest(format!("invalid URL: {e}")))
    }

    /// Sends the request and reads the whole response. An HTTP error status is not an `Err`
    /// here (as client-go's `Do` returns a `Result`): it is reported by [`Response::into`],
    /// [`Response::bytes`] and [`Response::error_for_status`].
    pub async fn send(mut self) -> Result<Response> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let timeout = self.timeout.or(self.client.shared.timeout);
        let mut params = std::mem::take(&mut self.params);
        if let Some(t) = timeout {
            params.push(("timeout".into(), go_duration(t)));
        }
        let uri = self.uri(&params)?;
        let method = self.method.clone();
        let work = async {
            let response = self.execute(&uri).await?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|source| Error::Body { url: uri.to_string(), source })?
                .to_bytes();
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
                method: method.clone(),
                url: uri.to_string(),
            })
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, work).await.map_err(|_| Error::Timeout {
                method,
                url: uri.to_string(),
                timeout: t,
            })?,
            None => work.await,
        }
    }

    /// Starts a watch (`watch=true` is added when absent) and returns its events as they arrive.
    /// A watch has no client-side timeout: set `timeoutSeconds` to have the server end it. An
    /// error status at the start (e.g. 410 Gone) is returned as `Err`.
    pub async fn watch<T: DeserializeOwned>(self) -> Result<WatchStream<T>> {
        let (body, url) = self.start_watch().await?;
        Ok(WatchStream::new(body, url))
    }

    /// Starts a watch like [`Request::watch`], handing its lines over undecoded
    /// ([`WatchLines`]).
    pub async fn watch_lines(self) -> Result<WatchLines> {
        let (body, url) = self.start_watch().await?;
        Ok(WatchLines::new(body, url))
    }

    async fn start_watch(
        mut self,
    ) -> Result<(impl futures_util::Stream<Item = Result<Bytes>> + Send + 'static + use<>, String)> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut params = std::mem::take(&mut self.params);
        if !params.iter().any(|(k, _)| k == "watch") {
            params.push(("watch".into(), "true".into()));
        }
        let uri = self.uri(&params)?;
        // A connection of its own, driven by the watch's reader (see the transport's doc).
        let dedicated: transport::Dedicated = self.execute_with(&uri, Via::Dedicated).await?;
        let url = uri.to_string();
        if !dedicated.response.status().is_success() {
            let status = dedicated.response.status();
            let mut body = DedicatedBody::new(dedicated);
            let mut bytes = Vec::new();
            while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut body).await {
                bytes.extend_from_slice(&chunk);
            }
            return Err(Error::Api(Box::new(ApiError::from_response(status, &bytes))));
        }
        let body_url = url.clone();
        let body = DedicatedBody::new(dedicated)
            .map_err(move |source| Error::Body { url: body_url.clone(), source });
        Ok((body, url))
    }

    /// Sends the request and streams the body of a 2xx response as it arrives (pod logs); an
    /// error status is returned as `Err`. No client-side timeout applies.
    pub async fn stream(mut self) -> Result<impl futures_util::Stream<Item = Result<Bytes>> + use<>> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let params = std::mem::take(&mut self.params);
        let uri = self.uri(&params)?;
        let response = self.execute(&uri).await?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            return Err(Error::Api(Box::new(ApiError::from_response(status, &body))));
        }
        let url = uri.to_string();
        Ok(BodyDataStream::new(response.into_body())
            .map_err(move |source| Error::Body { url: url.clone(), source }))
    }

    fn build(&self, uri: &Uri, authorization: Option<HeaderValue>) -> Result<http::Request<Full<Bytes>>> {
        let shared = &self.client.shared;
        let mut builder = http::Request::builder().method(self.method.clone()).uri(uri.clone());
        let headers = builder.headers_mut().ok_or_else(|| Error::InvalidRequest("invalid request".into()))?;
        headers.insert(header::USER_AGENT, shared.user_agent.clone());
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(auth) = authorization {
            headers.insert(header::AUTHORIZATION, auth);
        }
        for (k, v) in &shared.impersonation {
            headers.append(k, v.clone());
        }
        if self.body.is_some() {
            let ct = self.content_type.clone().unwrap_or(HeaderValue::from_static("application/json"));
            headers.insert(header::CONTENT_TYPE, ct);
        }
        for (k, v) in &self.headers {
            headers.insert(k, v.clone());
        }
        trace::inject(headers);
        builder
            .body(Full::new(self.body.clone().unwrap_or_default()))
            .map_err(|e| Error::InvalidRequest(format!("cannot build the request: {e}")))
    }

    /// Sends the request with client-go's retry rules and returns the response with its body
    /// still streaming.
    async fn execute(&self, uri: &Uri) -> Result<http::Response<hyper::body::Incoming>> {
        self.execute_with(uri, Via::Pooled).await
    }

    /// [`execute`](Self::execute) through the pooled client or a dedicated connection, in the
    /// request's span.
    async fn execute_with<R: Sent>(&self, uri: &Uri, how: Via) -> Result<R> {
        let span = trace::span(&self.method, uri);
        let result = self.attempts(uri, how).instrument(span.clone()).await;
        trace::record(&span, result.as_ref().ok().map(|r: &R| r.head().status().as_u16()));
        result
    }

    /// Sends with client-go's retry rules (connection errors of GETs, `Retry-After`, one
    /// credential renewal on 401).
    async fn attempts<R: Sent>(&self, uri: &Uri, how: Via) -> Result<R> {
        let shared = &self.client.shared;
        let mut retries = 0u32;
        let mut renewed_credential = false;
        let mut backoff = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times()
            .build();
        loop {
            if let Some(limiter) = &shared.limiter {
                let waiting = std::time::Instant::now();
                limiter.acquire().await;
                if let Some(metrics) = &shared.metrics {
                    metrics.rate_limited(&self.method, &shared.host, waiting.elapsed());
                }
            }
            let credential = shared.auth.credential().await?;
            let request = self.build(uri, credential.header)?;
            let sending = std::time::Instant::now();
            let sent: std::result::Result<SentResponse, transport::BoxError> = match how {
                Via::Pooled => {
                    shared.http.request(request).await.map(SentResponse::from).map_err(|e| e.into())
                }
                Via::Dedicated => {
                    transport::send_dedicated(&shared.dedicated, request).await.map(SentResponse::from)
                }
            };
            let response = match sent.and_then(R::from_sent) {
                Ok(r) => {
                    if let Some(metrics) = &shared.metrics {
                        let code = r.head().status().as_u16();
                        metrics.request(&self.method, &shared.host, Some(code), sending.elapsed());
                    }
                    r
                }
                Err(e) => {
                    if let Some(metrics) = &shared.metrics {
                        metrics.request(&self.method, &shared.host, None, sending.elapsed());
                    }
                    if self.method == Method::GET
                        && retries < shared.max_retries
                        && is_retryable_connection_error(e.as_ref() as &(dyn std::error::Error + 'static))
                    {
                        retries += 1;
                        let wait = backoff.next().unwrap_or(Duration::from_secs(1));
                        tracing::debug!(url = %uri, error = %e, retries, ?wait, "connection failed; retrying the GET");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(Error::Transport {
                        method: self.method.clone(),
                        url: uri.to_string(),
                        source: e,
                    });
                }
            };
            let head = response.head();
            shared.warnings.observe(head.headers());
            let status = head.status();
            if status == StatusCode::UNAUTHORIZED
                && !renewed_credential
                && shared.auth.invalidate(credential.generation)
            {
                renewed_credential = true;
                tracing::debug!(url = %uri, "401 Unauthorized; renewing the credential and retrying once");
                continue;
            }
            if (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error())
                && retries < shared.max_retries
                && let Some(wait) = retry_after(head.headers())
            {
                retries += 1;
                tracing::debug!(url = %uri, %status, retries, ?wait, "retrying after the server's Retry-After");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Ok(response);
        }
    }
}

/// Through which transport a request goes.
#[derive(Clone, Copy)]
enum Via {
    Pooled,
    Dedicated,
}

/// What a transport hands back: a response head (and more).
trait Sent: Sized {
    fn from_sent(sent: SentResponse) -> std::result::Result<Self, transport::BoxError>;
    fn head(&self) -> &http::Response<hyper::body::Incoming>;
}

/// A response from either transport.
enum SentResponse {
    Pooled(http::Response<hyper::body::Incoming>),
    Dedicated(transport::Dedicated),
}

impl From<http::Response<hyper::body::Incoming>> for SentResponse {
    fn from(r: http::Response<hyper::body::Incoming>) -> Self {
        SentResponse::Pooled(r)
    }
}

impl From<transport::Dedicated> for SentResponse {
    fn from(d: transport::Dedicated) -> Self {
        SentResponse::Dedicated(d)
    }
}

impl Sent for http::Response<hyper::body::Incoming> {
    fn from_sent(sent: SentResponse) -> std::result::Result<Self, transport::BoxError> {
        match sent {
            SentResponse::Pooled(r) => Ok(r),
            SentResponse::Dedicated(_) => {
                Err("a dedicated connection where a pooled one was asked for".into())
            }
        }
    }
    fn head(&self) -> &http::Response<hyper::body::Incoming> {
        self
    }
}

impl Sent for transport::Dedicated {
    fn from_sent(sent: SentResponse) -> std::result::Result<Self, transport::BoxError> {
        match sent {
            SentResponse::Dedicated(d) => Ok(d),
            SentResponse::Pooled(_) => Err("a pooled connection where a dedicated one was asked for".into()),
        }
    }
    fn head(&self) -> &http::Response<hyper::body::Incoming> {
        &self.response
    }
}

/// `Retry-After` in whole seconds (the only form client-go accepts).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// client-go's rule for retrying a GET: the connection was refused, reset, or hit EOF.
fn is_retryable_connection_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused | ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe
            ) {
                return true;
            }
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_closed())
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// A duration as Go prints it for whole seconds and milliseconds (`30s`, `1500ms`).
fn go_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

#[cfg(test)]
mod tests;
