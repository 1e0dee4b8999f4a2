//! The webhook server (controller-runtime's `webhook.Server`): admission webhooks — typed
//! [`Validator`]s and [`Defaulter`]s, raw [`AdmissionHandler`]s — and CRD conversion
//! ([`Converter`]) over HTTPS on a port of their own. Certificates come from files (as mounted
//! from a Secret: `tls.crt` and `tls.key` in a directory) and are read again when they change.
//! A handler that fails or panics answers with a denial, never a dropped connection. Metrics
//! carry controller-runtime's names: `controller_runtime_webhook_requests_total{webhook,code}`,
//! `controller_runtime_webhook_latency_seconds{webhook}`,
//! `controller_runtime_webhook_requests_in_flight{webhook}`.
//!
//! Paths are kubebuilder's: `/validate-<group with dots as dashes>-<version>-<kind>`,
//! `/mutate-…` and `/convert`; `/healthz` answers 200 once serving.
//!
//! ```
//! # use krust_runtime::webhook::{WebhookServer, Validator, Warnings, Denial};
//! # use k8s_openapi::api::core::v1::ConfigMap;
//! struct NoEmpty;
//! #[async_trait::async_trait]
//! impl Validator<ConfigMap> for NoEmpty {
//!     async fn validate_create(&self, cm: &ConfigMap) -> Result<Warnings, Denial> {
//!         match &cm.data {
//!             Some(d) if !d.is_empty() => Ok(vec![]),
//!             _ => Err(Denial::invalid("data", "must not be empty")),
//!         }
//!     }
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # krust_apiserver::write_webhook_certificate(dir.path())?;
//! # let cert_dir = dir.path();
//! // `cert_dir`: where the Secret is mounted, e.g. /tmp/k8s-webhook-server/serving-certs.
//! let server = WebhookServer::builder()
//!     .bind("127.0.0.1:0".parse()?)
//!     .cert_dir(cert_dir)
//!     .validator::<ConfigMap, _>(NoEmpty)
//!     .build()?;
//! assert_eq!(server.paths(), ["/validate--v1-configmap"]);
//! let stop = tokio_util::sync::CancellationToken::new();
//! let serving = tokio::spawn(server.run(stop.clone()));
//! stop.cancel(); // the manager cancels it on shutdown
//! serving.await??;
//! # Ok(()) }
//! ```

mod admission;
pub(crate) mod certs;
mod conversion;
mod manifests;
mod metrics;

use std::{
    collections::HashMap,
    convert::Infallible,
    marker::PhantomData,
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

pub use admission::{AdmissionHandler, Defaulter, Denial, Validator, Warnings};
use admission::{Defaulting, Validating};
use bytes::Bytes;
use conversion::ConversionHandler;
pub use conversion::Converter;
use futures_util::FutureExt;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request as HttpRequest, Response, StatusCode, body::Incoming, service::service_fn};
use kube_core::{
    DynamicObject, Resource,
    admission::{AdmissionRequest, AdmissionResponse, AdmissionReview},
    conversion::{ConversionRequest, ConversionResponse, ConversionReview},
};
pub use manifests::{
    WebhookEndpoint, WebhookSpec, WebhookType, set_conversion_webhook, webhook_configurations,
};
pub use metrics::WebhookMetrics;
use prometheus_client::registry::Registry;
use serde::{Serialize, de::DeserializeOwned};
use tokio_util::sync::CancellationToken;

/// Request bodies above this size are refused (controller-runtime's limit).
const MAX_BODY: usize = 7 * 1024 * 1024;
/// Time a client has to send its request headers (and to finish the TLS handshake).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(32);

/// Why the webhook server cannot start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The certificate or key cannot be read or used.
    #[error(
        "the webhook server's certificate {path}: {message} (mount tls.crt and tls.key, e.g. from a cert-manager Secret)"
    )]
    Certificate {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The address cannot be bound.
    #[error("the webhook server cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No certificate was configured.
    #[error("the webhook server needs a certificate: call cert_dir(..) or cert_files(..)")]
    NoCertificate,
    /// Two handlers for one path.
    #[error("two webhooks are registered for {0}")]
    DuplicatePath(String),
}

enum Handler {
    Admission(Arc<dyn AdmissionHandler>),
    Conversion(Arc<dyn ConversionHandler>),
}

/// The path kubebuilder gives a webhook of kind `K`: `/<prefix>-<group-dashed>-<version>-<kind>`.
pub fn webhook_path<K: Resource<DynamicType = ()>>(prefix: &str) -> String {
    format!(
        "/{prefix}-{}-{}-{}",
        K::group(&()).replace('.', "-"),
        K::version(&()),
        K::kind(&()).to_lowercase()
    )
}

/// Builds a [`WebhookServer`].
#[must_use]
pub struct WebhookServerBuilder {
    addr: SocketAddr,
    cert: Option<(PathBuf, PathBuf)>,
    reload: Duration,
    handlers: Vec<(String, Handler)>,
    specs: Vec<WebhookSpec>,
}

impl WebhookServerBuilder {
    /// The address to listen on (default `0.0.0.0:9443`, controller-runtime's port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// A directory holding `tls.crt` and `tls.key` (a mounted `kubernetes.io/tls` Secret).
    pub fn cert_dir(self, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        self.cert_files(dir.join("tls.crt"), dir.join("tls.key"))
    }

    /// The certificate chain and key files (PEM).
    pub fn cert_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.cert = Some((cert.into(), key.into()));
        self
    }

    /// How often the certificate files are checked for a change (default 10 s).
    pub fn cert_reload_interval(mut self, interval: Duration) -> Self {
        self.reload = interval;
        self
    }

    /// A validating webhook for `K` at `/validate-…`.
    pub fn validator<K, V>(mut self, validator: V) -> Self
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
        V: Validator<K>,
    {
        let path = webhook_path::<K>("validate");
        let operations: &[&str] =
            if V::DELETE { &["CREATE", "UPDATE", "DELETE"] } else { &["CREATE", "UPDATE"] };
        self.specs.push(WebhookSpec::of::<K>(WebhookType::Validating, path.clone(), operations));
        let handler = Validating { validator, kind: PhantomData::<fn() -> K> };
        self.handlers.push((path, Handler::Admission(Arc::new(handler))));
        self
    }

    /// A mutating (defaulting) webhook for `K` at `/mutate-…`.
    pub fn defaulter<K, D>(mut self, defaulter: D) -> Self
    where
        K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Send + Sync + 'static,
        D: Defaulter<K>,
    {
        let path = webhook_path::<K>("mutate");
        self.specs.push(WebhookSpec::of::<K>(WebhookType::Mutating, path.clone(), &["CREATE", "UPDATE"]));
        let handler = Defaulting { defaulter, kind: PhantomData::<fn() -> K> };
        self.handlers.push((path, Handler::Admission(Arc::new(handler))));
        self
    }

    /// Any admission handler at `path`.
    pub fn admission(mut self, path: impl Into<String>, handler: impl AdmissionHandler) -> Self {
        self.handlers.push((path.into(), Handler::Admission(Arc::new(handler))));
        self
    }

    /// CRD conversion at `/convert` (one per server, as kubebuilder's; several CRDs: use
    /// [`WebhookServerBuilder::conversion_at`]).
    pub fn conversion<H>(self, converter: Converter<H>) -> Self
    where
        H: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.conversion_at("/convert", converter)
    }

    /// CRD conversion at `path`.
    pub fn conversion_at<H>(mut self, path: impl Into<String>, converter: Converter<H>) -> Self
    where
        H: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.handlers.push((path.into(), Handler::Conversion(Arc::new(converter))));
        self
    }

    /// The webhooks of the typed handlers registered so far (validators, then defaulters, in
    /// order), for the webhook configurations: [`webhook_configurations`] builds them, and an
    /// operator prints them for its Helm chart. Raw [`AdmissionHandler`]s and conversion are
    /// not listed (their rules are the caller's; conversion is configured on the CRD).
    pub fn webhooks(&self) -> Vec<WebhookSpec> {
        let mut specs = self.specs.clone();
        specs.sort_by_key(|s| s.type_ != WebhookType::Validating);
        specs
    }

    /// Loads the certificate and binds the address.
    pub fn build(self) -> Result<WebhookServer, WebhookError> {
        let (cert, key) = self.cert.ok_or(WebhookError::NoCertificate)?;
        let certs = certs::Reloading::load(cert, key)?;
        let mut handlers = HashMap::new();
        for (path, handler) in self.handlers {
            if handlers.insert(path.clone(), handler).is_some() {
                return Err(WebhookError::DuplicatePath(path));
            }
        }
        let listener = std::net::TcpListener::bind(self.addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| WebhookError::Bind { addr: self.addr.to_string(), source })?;
        let local = listener.local_addr().ok();
        Ok(WebhookServer {
            inner: Arc::new(Inner { handlers, metrics: WebhookMetrics::default(), certs }),
            listener,
            local,
            reload: self.reload,
        })
    }
}

struct Inner {
    handlers: HashMap<String, Handler>,
    metrics: WebhookMetrics,
    certs: Arc<certs::Reloading>,
}

/// A webhook server, bound and ready to [`run`](WebhookServer::run).
pub struct WebhookServer {
    inner: Arc<Inner>,
    listener: std::net::TcpListener,
    local: Option<SocketAddr>,
    reload: Duration,
}

impl std::fmt::Debug for WebhookServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookServer")
            .field("addr", &self.local)
            .field("paths", &self.inner.handlers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl WebhookServer {
    /// A builder (address `0.0.0.0:9443`, no certificate yet, no handlers).
    pub fn builder() -> WebhookServerBuilder {
        WebhookServerBuilder {
            addr: SocketAddr::from(([0, 0, 0, 0], 9443)),
            cert: None,
            reload: Duration::from_secs(10),
            handlers: Vec::new(),
            specs: Vec::new(),
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// The paths it serves.
    pub fn paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self.inner.handlers.keys().cloned().collect();
        paths.sort();
        paths
    }

    /// Registers its metrics (the Manager does this for the server it runs).
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.inner.metrics.register(registry);
    }

    /// Serves until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) -> Result<(), WebhookError> {
        let paths = self.paths();
        let listener = tokio::net::TcpListener::from_std(self.listener)
            .map_err(|source| WebhookError::Bind { addr: format!("{:?}", self.local), source })?;
        let reloader = tokio::spawn(certs::watch(self.inner.certs.clone(), self.reload, stop.clone()));
        let acceptor = tokio_rustls::TlsAcceptor::from(self.inner.certs.server_config());
        tracing::info!(addr = ?self.local, ?paths, "webhook server listening");
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => break,
                a = listener.accept() => a,
            };
            while connections.try_join_next().is_some() {}
            let Ok((tcp, _)) = accepted else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let (inner, acceptor, stop) = (self.inner.clone(), acceptor.clone(), stop.clone());
            connections.spawn(async move {
                let Ok(Ok(tls)) = tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(tcp)).await
                else {
                    return;
                };
                let service = service_fn(move |request: HttpRequest<Incoming>| {
                    let inner = inner.clone();
                    async move { Ok::<_, Infallible>(handle(&inner, request).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = stop.cancelled() => conn.as_mut().graceful_shutdown(),
                }
            });
        }
        connections.abort_all();
        reloader.abort();
        Ok(())
    }
}

fn respond(code: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

async fn handle(inner: &Inner, request: HttpRequest<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    if path == "/healthz" || path == "/readyz" {
        return respond(StatusCode::OK, "ok");
    }
    let Some(handler) = inner.handlers.get(&path) else {
        return respond(StatusCode::NOT_FOUND, format!("{{\"message\":\"no webhook at {path}\"}}"));
    };
    if request.method() != http::Method::POST {
        return respond(StatusCode::METHOD_NOT_ALLOWED, "{\"message\":\"webhooks take POST\"}");
    }
    let started = Instant::now();
    let _in_flight = inner.metrics.in_flight(&path);
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            inner.metrics.observe(&path, 400, started.elapsed());
            return respond(
                StatusCode::BAD_REQUEST,
                format!("{{\"message\":{:?}}}", format!("cannot read the request: {e}")),
            );
        }
    };
    let (code, answer) = match handler {
        Handler::Admission(h) => admission(h.as_ref(), &body).await,
        Handler::Conversion(h) => conversion(h.as_ref(), &body),
    };
    inner.metrics.observe(&path, code.as_u16(), started.elapsed());
    respond(code, answer)
}

/// One AdmissionReview: decoded, handled (a panic is a denial), encoded.
async fn admission(handler: &dyn AdmissionHandler, body: &[u8]) -> (StatusCode, Vec<u8>) {
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return encode_review(AdmissionResponse::invalid(format!(
                "cannot decode the AdmissionReview: {e}"
            )));
        }
    };
    let types = review.types.clone();
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(_) => return encode_review(AdmissionResponse::invalid("the AdmissionReview has no request")),
    };
    let mut response = match std::panic::AssertUnwindSafe(handler.handle(&request)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(uid = %request.uid, "an admission handler panicked; denying the request");
            AdmissionResponse::from(&request).deny("the webhook failed (it panicked) and denies the request")
        }
    };
    response.types = types;
    encode_review(response)
}

fn encode_review(response: AdmissionResponse) -> (StatusCode, Vec<u8>) {
    let mut review = response.into_review();
    if review.types.api_version.is_empty() {
        review.types.api_version = "admission.k8s.io/v1".into();
        review.types.kind = "AdmissionReview".into();
    }
    match serde_json::to_vec(&review) {
        Ok(bytes) => (StatusCode::OK, bytes),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{{\"message\":\"cannot encode the answer: {e}\"}}").into_bytes(),
        ),
    }
}

/// One ConversionReview.
fn conversion(handler: &dyn ConversionHandler, body: &[u8]) -> (StatusCode, Vec<u8>) {
    let response = match serde_json::from_slice::<ConversionReview>(body)
        .map_err(|e| e.to_string())
        .and_then(|r| ConversionRequest::from_review(r).map_err(|e| e.to_string()))
    {
        Ok(request) => {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.review(request))) {
                Ok(response) => response,
                Err(_) => ConversionResponse::invalid(kube_core::Status::failure(
                    "the conversion panicked",
                    "InternalError",
                )),
            }
        }
        Err(e) => ConversionResponse::invalid(kube_core::Status::failure(
            &format!("cannot decode the ConversionReview: {e}"),
            "BadRequest",
        )),
    };
    match serde_json::to_vec(&response.into_review()) {
        Ok(bytes) => (StatusCode::OK, bytes),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{{\"message\":\"cannot encode the answer: {e}\"}}").into_bytes(),
        ),
    }
}
