//! krust-apiserver: an embeddable Kubernetes API server that real clients accept — the cluster
//! of krust's quickstart, examples, tests and benchmarks (envtest without binaries).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = krust_apiserver::ApiServer::builder().start().await?;
//! let config = server.kubeconfig().config; // a krust_client::Config pointing at it
//! std::fs::write(std::env::temp_dir().join("kubeconfig-for-kubectl"), &server.kubeconfig().yaml)?;
//! let clientset = krust_client::Clientset::new(&config)?;
//! let namespaces = clientset.core_v1().namespaces().list(&Default::default()).await?;
//! assert!(namespaces.items.iter().any(|ns| ns.metadata.name.as_deref() == Some("kube-system")));
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! It keeps objects in memory with one global resourceVersion, serves the built-in resources
//! and CustomResourceDefinitions on the REST paths of kube-apiserver with its semantics (list
//! pagination, watches with bookmarks and 410 Expired, merge/JSON/strategic patches,
//! server-side apply with managedFields, finalizers, garbage collection, namespace lifecycle,
//! Tables for `kubectl get` (a CRD's printer columns, the common built-in kinds' columns),
//! Events served through core/v1 and events.k8s.io/v1 alike), and its discovery documents.
//! Fault controls on [`ApiServer`] let tests close watches, fail requests, add latency, compact
//! the history or restart.

mod admission;
mod apply;
mod auth;
mod cel;
mod chaos;
pub use chaos::{FaultKind, FaultRun, FaultSchedule};
pub use tls::write_webhook_certificate;
mod controllers;
mod conversion;
mod crd;
mod defaults;
mod discovery;
mod events;
mod faults;
mod handlers;
mod http_util;
mod listener;
mod object;
mod openapi;
mod options;
mod patch;
mod protobuf;
mod resources;
mod selector;
mod server;
mod shape;
mod status;
mod store;
mod table;
mod tls;
mod watch;

use std::{net::IpAddr, sync::Arc, time::Duration};

use base64::Engine;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{server::Server, store::Write};

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The serving certificate cannot be made.
    #[error("cannot create the self-signed serving certificate: {0}")]
    Certificate(String),
    /// The generated kubeconfig cannot be loaded (a bug).
    #[error("the generated kubeconfig is invalid: {0}")]
    Kubeconfig(#[from] krust_client::ConfigError),
}

/// A request that carried a W3C trace context ([`ApiServer::traced_requests`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The URL's path.
    pub path: String,
    /// The `traceparent` header: `00-<trace id>-<parent span id>-<flags>`.
    pub traceparent: String,
}

/// Builds an [`ApiServer`].
#[derive(Clone)]
#[must_use]
pub struct ApiServerBuilder {
    bind: IpAddr,
    port: u16,
    tls: bool,
    token: Option<String>,
    watch_history: usize,
    watch_history_bytes: usize,
    watch_buffer: usize,
    bookmark_interval: Duration,
    limits: ConnectionLimits,
    first_revision: Option<u64>,
    services: Vec<((String, String), String)>,
    /// Static users: token, user name, groups (never printed).
    users: Vec<(String, String, Vec<String>)>,
}

/// What one connection may take: time to send its request headers (also the idle time allowed
/// between requests on a kept-alive HTTP/1 connection) and its body, and how many connections
/// the server keeps open at once.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time allowed to send a request's headers, counted from when the server waits for them: an
    /// idle or slow (slowloris) HTTP/1 connection is closed after it (default 32 s, as
    /// kube-apiserver's `ReadHeaderTimeout`).
    pub header_read_timeout: Duration,
    /// HTTP/2 connections are pinged this often when idle and closed when a ping goes
    /// unanswered for as long (default 30 s).
    pub keep_alive: Duration,
    /// Connections open at once; more are accepted and closed at once, so that they cannot use
    /// up the process's file descriptors (default 4096, and never above half the process's
    /// file-descriptor limit).
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(32),
            keep_alive: Duration::from_secs(30),
            max_connections: 4096,
        }
    }
}

impl ApiServerBuilder {
    /// The address to listen on (default 127.0.0.1).
    pub fn bind(mut self, addr: IpAddr) -> Self {
        self.bind = addr;
        self
    }
    /// The port (default 0: a free port; the binary defaults to 6443).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    /// Serve HTTPS with a self-signed certificate whose CA goes into the kubeconfig.
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }
    /// A user known by a bearer token (kube-apiserver's `--token-auth-file`): requests with it
    /// are accepted, `TokenReview` names the user and its groups (plus
    /// `system:authenticated`), and `SubjectAccessReview` evaluates RBAC for it. The server's
    /// own token is `system:admin` in `system:masters`; service accounts get tokens through
    /// `TokenRequest` (`kubectl create token`).
    pub fn user(mut self, token: impl Into<String>, username: impl Into<String>, groups: &[&str]) -> Self {
        self.users.push((token.into(), username.into(), groups.iter().map(|g| g.to_string()).collect()));
        self
    }
    /// Require this bearer token on every request but health checks and `/version`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
    /// How many events are kept for watch resumes (default 10,000); older resumes get 410.
    pub fn watch_history(mut self, events: usize) -> Self {
        self.watch_history = events;
        self
    }
    /// How many bytes of objects the event history may hold (default 128 MiB): the oldest events
    /// go first, and resumes from before them get 410, as after compaction.
    pub fn watch_history_bytes(mut self, bytes: usize) -> Self {
        self.watch_history_bytes = bytes;
        self
    }
    /// The first resourceVersion (default: the start time in microseconds, so that a server
    /// started again never reuses an earlier run's). A lower one stands for a store restored
    /// from an old backup: clients holding newer resourceVersions are then told "too large"
    /// and relist.
    pub fn first_revision(mut self, revision: u64) -> Self {
        self.first_revision = Some(revision);
        self
    }
    /// Where the Service `namespace/name` of a webhook's `clientConfig.service` is reached
    /// (e.g. `https://127.0.0.1:9443`): there is no network of pods here. Without one, a
    /// service resolves to `https://<name>.<namespace>.svc:<port>`.
    pub fn resolve_service(mut self, namespace: &str, name: &str, base_url: impl Into<String>) -> Self {
        self.services.push(((namespace.to_string(), name.to_string()), base_url.into()));
        self
    }
    /// Timeouts and the connection cap (see [`ConnectionLimits`]).
    pub fn connection_limits(mut self, limits: ConnectionLimits) -> Self {
        self.limits = limits;
        self
    }
    /// How many events a watcher may lag behind before its watch is closed (default 10,000).
    pub fn watch_buffer(mut self, events: usize) -> Self {
        self.watch_buffer = events;
        self
    }
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK (default 60 s).
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// Starts the server and returns once it accepts connections.
    pub async fn start(self) -> Result<ApiServer, Error> {
        let addr = std::net::SocketAddr::new(self.bind, self.port);
        let listener =
            TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr: addr.to_string(), source })?;
        let local = listener.local_addr().map_err(|source| Error::Bind { addr: addr.to_string(), source })?;
        let serving = if self.tls {
            Some(tls::self_signed(self.bind).map_err(|e| Error::Certificate(e.to_string()))?)
        } else {
            None
        };
        let host = match local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
            IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let scheme = if serving.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{host}:{}", local.port());
        let server = Arc::new(Server::new(
            self.token.clone(),
            self.watch_history,
            self.watch_history_bytes,
            self.watch_buffer,
            self.bookmark_interval,
            self.first_revision,
        ));
        *server.address.write() = format!("{host}:{}", local.port());
        server.services.write().extend(self.services.iter().cloned());
        for (token, username, groups) in &self.users {
            let mut groups = groups.clone();
            groups.push("system:authenticated".into());
            let identity = auth::Identity {
                username: username.clone(),
                uid: String::new(),
                groups,
                expires: None,
                audiences: Vec::new(),
            };
            server.tokens.insert(token.clone(), identity);
        }
        seed(&server);

        let yaml = kubeconfig_yaml(&url, serving.as_ref().map(|s| s.ca_pem.as_str()), self.token.as_deref());
        let config = krust_client::config::Kubeconfig::parse(
            &yaml,
            std::path::Path::new("krust-apiserver.kubeconfig"),
        )
        .and_then(|kc| krust_client::Config::from_loaded_kubeconfig(&kc, None))?;

        let acceptor = match serving {
            Some(s) => {
                let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .and_then(|b| b.with_no_client_auth().with_single_cert(s.chain, s.key))
                .map_err(|e| Error::Certificate(e.to_string()))?;
                tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls)))
            }
            None => None,
        };
        let stop = CancellationToken::new();
        tokio::spawn(controllers::run(server.clone(), stop.clone()));
        let task = tokio::spawn(listener::accept_loop(
            listener,
            acceptor,
            server.clone(),
            self.limits,
            stop.clone(),
        ));
        tracing::info!(%url, "krust-apiserver listening");
        Ok(ApiServer { url, yaml, config, server, stop, task })
    }
}

/// The namespaces a fresh cluster has.
fn seed(server: &Server) {
    let res = server.namespaces();
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        if let Ok((obj, name)) = handlers::prepare_create(server, &res, "", body) {
            let storage: Arc<str> = Arc::from(res.storage.as_str());
            let _ = server.store.write::<()>(&storage, &name, |_, _| Ok(Write::Put(obj)));
        }
    }
}

fn kubeconfig_yaml(url: &str, ca_pem: Option<&str>, token: Option<&str>) -> String {
    let ca = ca_pem
        .map(|pem| {
            format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(pem)
            )
        })
        .unwrap_or_default();
    let user = token.map(|t| format!("    token: {t}\n")).unwrap_or_else(|| "    {}\n".to_string());
    let user = if user.trim() == "{}" { "  user: {}\n".to_string() } else { format!("  user:\n{user}") };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: krust\n  cluster:\n    server: {url}\n{ca}\
         contexts:\n- name: krust\n  context:\n    cluster: krust\n    user: krust\n    namespace: default\n\
         current-context: krust\nusers:\n- name: krust\n{user}preferences: {{}}\n"
    )
}

/// The generated kubeconfig of a running server.
#[derive(Clone)]
pub struct GeneratedKubeconfig {
    /// The configuration, ready for krust's clients.
    pub config: krust_client::Config,
    /// The kubeconfig YAML (for kubectl and other clients).
    pub yaml: String,
}

// The token never appears in Debug output.
impl std::fmt::Debug for ApiServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServerBuilder")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("watch_history", &self.watch_history)
            .field("watch_history_bytes", &self.watch_history_bytes)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for GeneratedKubeconfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The YAML holds the token: left out.
        f.debug_struct("GeneratedKubeconfig").field("config", &self.config).finish_non_exhaustive()
    }
}

/// A running server. Dropping it does not stop it; call [`ApiServer::shutdown`].
pub struct ApiServer {
    url: String,
    yaml: String,
    config: krust_client::Config,
    server: Arc<Server>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer").field("url", &self.url).finish()
    }
}

impl ApiServer {
    /// A builder with the defaults (127.0.0.1, a free port, plain HTTP, no token).
    pub fn builder() -> ApiServerBuilder {
        ApiServerBuilder {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            tls: false,
            token: None,
            watch_history: 10_000,
            watch_history_bytes: 128 << 20,
            watch_buffer: 10_000,
            bookmark_interval: Duration::from_secs(60),
            limits: ConnectionLimits::default(),
            first_revision: None,
            services: Vec::new(),
            users: Vec::new(),
        }
    }

    /// The server's URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig for the server (context `krust`, namespace `default`).
    pub fn kubeconfig(&self) -> GeneratedKubeconfig {
        GeneratedKubeconfig { config: self.config.clone(), yaml: self.yaml.clone() }
    }

    /// Stops accepting, ends every watch and connection, and stops the controllers.
    pub async fn shutdown(self) {
        self.server.store.close_watches();
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// Fault: ends every open watch (clients re-watch from their last resourceVersion).
    pub fn close_watches(&self) {
        self.server.store.close_watches();
    }

    /// Fault: open watches stop sending while `hold` is true (a stalled connection); their events
    /// wait in each watch's buffer ([`ApiServerBuilder::watch_buffer`]) and go out as one burst
    /// when released.
    pub fn hold_watches(&self, hold: bool) {
        self.server.faults.hold_watches(hold);
    }

    /// Fault: the next `count` requests fail with `code` (and `Retry-After` when given).
    pub fn fail_next(&self, count: u32, code: u16, retry_after: Option<u64>) {
        let code = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        self.server.faults.fail_next(count, code, retry_after, false);
    }

    /// Fault: the next `count` GET requests (gets, lists, watches) fail with `code`; writes
    /// go through, so a test can change the cluster while clients are disconnected.
    pub fn fail_next_reads(&self, count: u32, code: u16, retry_after: Option<u64>) {
        let code = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        self.server.faults.fail_next(count, code, retry_after, true);
    }

    /// Fault: watches are served as by a replica whose watch cache is `revisions` behind (an HA
    /// control plane after a failover): a watch from a resourceVersion newer than the current one
    /// minus `revisions` gets 504 `ResourceVersionTooLarge`. `None` removes the lag.
    pub fn set_watch_lag(&self, revisions: Option<u64>) {
        self.server.faults.set_watch_lag(revisions);
    }

    /// Fault: every request waits this long first (`None` removes it).
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.server.faults.set_latency(latency);
    }

    /// How many requests with this method (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`; any other
    /// name: every other method) the server received, health checks included; for tests that
    /// check how much a client writes.
    pub fn request_count(&self, method: &str) -> u64 {
        let slot = server::METHODS
            .iter()
            .position(|m| m.eq_ignore_ascii_case(method))
            .unwrap_or(server::METHODS.len());
        self.server.requests[slot].load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The last requests (up to 4096) that carried a W3C trace context (`traceparent`), oldest
    /// first: where kube-apiserver with `APIServerTracing` would continue a client's trace, for
    /// tests of trace propagation.
    pub fn traced_requests(&self) -> Vec<TracedRequest> {
        self.server.traced.lock().iter().cloned().collect()
    }

    /// Fault: every response body (watches included) goes out `bytes` at a time with `pause`
    /// between the pieces, as over a slow link; `None` lifts it.
    pub fn set_slow_reads(&self, slow: Option<(usize, Duration)>) {
        self.server.faults.set_slow_reads(slow);
    }

    /// Fault: every open watch breaks in the middle of its next event (half of it is sent, then
    /// the connection drops), as a network failure would cut it.
    pub fn cut_watches_mid_event(&self) {
        self.server.faults.cut_watches_mid_chunk();
    }

    /// Fault: forgets the event history, so resuming a watch from an older resourceVersion
    /// (or continuing a list) gets 410 Expired.
    pub fn compact(&self) {
        self.server.store.compact();
    }

    /// Fault: a restart — objects are kept, watches are closed, the history is lost.
    pub fn restart(&self) {
        self.server.store.close_watches();
        self.server.store.compact();
    }

    /// The number of open watches.
    pub fn watch_count(&self) -> usize {
        self.server.store.watcher_count()
    }

    /// The current resourceVersion (the store's revision).
    pub fn resource_version(&self) -> u64 {
        self.server.store.revision()
    }
}
