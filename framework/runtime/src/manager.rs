//! The manager (controller-runtime's `manager.Manager`): owns the configuration, the clients,
//! the shared informer factory and the metrics registry; runs the registered controllers and
//! other runnables; serves `/metrics`, `/healthz` and `/readyz` on one HTTP server; and shuts
//! everything down gracefully on SIGINT/SIGTERM.
//!
//! Start-up: caches are started and waited for; until every informer has synced, `/readyz`
//! fails (and after [`ManagerBuilder::cache_sync_timeout`] it says which informers are still
//! not synced, rather than only logging it); then the controllers' workers start.
//!
//! Shutdown: the controllers stop taking work, in-flight reconciles may finish for up to
//! [`ManagerBuilder::graceful_shutdown_timeout`] (then their context is cancelled), runnables
//! are cancelled, informers stopped, and the HTTP server closed.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request as HttpRequest, Response, StatusCode, body::Incoming, service::service_fn};
use krust_client::{Clientset, Config, DynamicClient, RestClient};
use kube_core::GroupVersion;
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{
    cache::SharedInformerFactory,
    controller::{Controller, ControllerMetrics, InstallContext, Running},
    events::EventBroadcaster,
    workqueue::{PrometheusMetrics, QueueConfig, RateLimitingQueue, default_controller_rate_limiter},
};

/// A manager failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// Creating a client failed.
    #[error("creating the clients failed: {0}")]
    Client(#[from] krust_client::Error),
    /// The metrics and probes server could not listen.
    #[error(
        "cannot listen on {addr} for /metrics and the probes: {source} (choose another address with metrics_addr)"
    )]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Two controllers with one name (metrics and logs would mix them).
    #[error("a controller named {0:?} is already registered; give one of them another name with .named(..)")]
    DuplicateController(String),
    /// A controller was added to a manager that is already running (its watches would never be
    /// installed).
    #[error(
        "controller {0:?} was added after the manager started; register every controller before calling run"
    )]
    ControllerAfterStart(String),
    /// `run` was called twice.
    #[error("the manager is already running or has run")]
    AlreadyRunning,
    /// A runnable failed.
    #[error("runnable {name:?} failed: {message}")]
    Runnable {
        /// The runnable.
        name: String,
        /// Its error.
        message: String,
    },
    /// The leader election settings are invalid.
    #[error(transparent)]
    LeaderElection(#[from] crate::leader::LeaderError),
    /// Leadership was lost (the process should exit so that another replica takes over).
    #[error("leader election lost: {0}")]
    LeadershipLost(String),
}

/// A boxed error of a runnable.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A runnable's future.
pub type RunnableFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

type RunnableFn = Box<dyn Fn(CancellationToken) -> RunnableFuture + Send + Sync>;

type Check = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Builds a [`Manager`].
pub struct ManagerBuilder {
    config: Config,
    metrics_addr: Option<String>,
    namespace: Option<String>,
    cache_sync_timeout: Duration,
    graceful_shutdown_timeout: Duration,
    identity: Option<String>,
    strip_managed_fields: bool,
    leader: Option<(String, String)>,
    leader_config: crate::leader::LeaderElectionConfig,
    exit_on_lost_leadership: bool,
}

impl std::fmt::Debug for ManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("metrics_addr", &self.metrics_addr)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl ManagerBuilder {
    /// Where `/metrics`, `/healthz` and `/readyz` are served (default `0.0.0.0:8080`; port 0
    /// picks a free port, see [`Manager::local_addr`]).
    #[must_use]
    pub fn metrics_addr(mut self, addr: impl Into<String>) -> Self {
        self.metrics_addr = Some(addr.into());
        self
    }

    /// Serves no HTTP endpoint.
    #[must_use]
    pub fn without_metrics_server(mut self) -> Self {
        self.metrics_addr = None;
        self
    }

    /// Caches (and so controllers) see one namespace only (default: all).
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// After this long without every cache synced, `/readyz` reports which are not (default
    /// 2 minutes, controller-runtime's `CacheSyncTimeout`). The manager keeps waiting.
    #[must_use]
    pub fn cache_sync_timeout(mut self, timeout: Duration) -> Self {
        self.cache_sync_timeout = timeout;
        self
    }

    /// How long in-flight reconciles may finish at shutdown (default 30 s).
    #[must_use]
    pub fn graceful_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.graceful_shutdown_timeout = timeout;
        self
    }

    /// This process's identity (events' `reportingInstance`; leader election). Default: the
    /// host name and a random suffix.
    #[must_use]
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// Runs the controllers only while this replica holds the Lease `namespace/name`
    /// (controller-runtime's `LeaderElection`); caches warm up before. Graceful shutdown
    /// releases the lease. Adds a `leaderElection` health check and the
    /// `leader_election_master_status{name}` metric.
    #[must_use]
    pub fn leader_election(mut self, name: impl Into<String>, namespace: impl Into<String>) -> Self {
        self.leader = Some((name.into(), namespace.into()));
        self
    }

    /// The election's timing (default: client-go's 15 s / 10 s / 2 s, released on shutdown).
    #[must_use]
    pub fn leader_election_config(mut self, config: crate::leader::LeaderElectionConfig) -> Self {
        self.leader_config = config;
        self
    }

    /// What happens when leadership is lost: `true` (default, as controller-runtime) stops the
    /// manager with [`ManagerError::LeadershipLost`] so the process exits non-zero; `false`
    /// stops the controllers and campaigns again.
    #[must_use]
    pub fn exit_on_lost_leadership(mut self, exit: bool) -> Self {
        self.exit_on_lost_leadership = exit;
        self
    }

    /// Whether the cache drops `metadata.managedFields` of every object (default: yes, as
    /// controller-runtime users configure with `cache.TransformStripManagedFields`). It is
    /// dropped while each event is decoded, at no extra cost, and saves about a fifth of a
    /// typical object's bytes. Opt out with `strip_managed_fields(false)` when a reconciler
    /// reads managedFields from the cache (reads through the clients always have them).
    #[must_use]
    pub fn strip_managed_fields(mut self, strip: bool) -> Self {
        self.strip_managed_fields = strip;
        self
    }

    /// The manager: clients are created and the metrics address is bound now.
    pub fn build(self) -> Result<Manager, ManagerError> {
        let config = self.config;
        let clientset = Clientset::new(&config)?;
        let dynamic = DynamicClient::new(&config)?;
        let rest = RestClient::new(&config.clone().with_group_version(GroupVersion::gv("", "v1")))?;
        let mut factory =
            SharedInformerFactory::new(&rest).with_strip_managed_fields(self.strip_managed_fields);
        if let Some(ns) = &self.namespace {
            factory = factory.with_namespace(ns);
        }
        let listener = match &self.metrics_addr {
            Some(addr) => {
                let listener = std::net::TcpListener::bind(addr.as_str())
                    .map_err(|source| ManagerError::Bind { addr: addr.clone(), source })?;
                listener
                    .set_nonblocking(true)
                    .map_err(|source| ManagerError::Bind { addr: addr.clone(), source })?;
                Some(listener)
            }
            None => None,
        };
        let local_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let mut registry = Registry::default();
        let controller_metrics = ControllerMetrics::new(&mut registry);
        let queue_metrics = Arc::new(PrometheusMetrics::new(&mut registry));
        let identity = self.identity.unwrap_or_else(default_identity);
        let leader = match self.leader {
            Some((name, namespace)) => {
                self.leader_config.validate()?;
                let status = prometheus_client::metrics::family::Family::<
                    Vec<(String, String)>,
                    prometheus_client::metrics::gauge::Gauge,
                >::default();
                registry.register(
                    "leader_election_master_status",
                    "1 while this replica is the leader of the named election, else 0",
                    status.clone(),
                );
                let gauge = status.get_or_create(&vec![("name".to_string(), name.clone())]).clone();
                Some(Election {
                    name,
                    namespace,
                    config: self.leader_config,
                    exit_on_lost: self.exit_on_lost_leadership,
                    status: gauge,
                })
            }
            None => None,
        };
        Ok(Manager {
            inner: Arc::new(Inner {
                config,
                clientset,
                dynamic,
                factory: Arc::new(factory),
                registry: Arc::new(Mutex::new(registry)),
                controller_metrics,
                queue_metrics,
                controllers: Mutex::new(Vec::new()),
                runnables: Mutex::new(Vec::new()),
                listener: Mutex::new(listener),
                local_addr,
                ready: AtomicBool::new(false),
                sync_problem: Mutex::new(None),
                health_checks: Mutex::new(Vec::new()),
                ready_checks: Mutex::new(Vec::new()),
                shutdown: CancellationToken::new(),
                started: AtomicBool::new(false),
                cache_sync_timeout: self.cache_sync_timeout,
                grace: self.graceful_shutdown_timeout,
                identity,
                leader: Mutex::new(leader),
            }),
        })
    }
}

/// The host name (or `krust`) and a random suffix.
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "krust".to_string());
    format!("{host}_{:08x}", crate::random::random_u64() as u32)
}

struct Inner {
    config: Config,
    clientset: Clientset,
    dynamic: DynamicClient,
    factory: Arc<SharedInformerFactory>,
    registry: Arc<Mutex<Registry>>,
    controller_metrics: ControllerMetrics,
    queue_metrics: Arc<PrometheusMetrics>,
    controllers: Mutex<Vec<Controller>>,
    runnables: Mutex<Vec<(String, RunnableFn)>>,
    listener: Mutex<Option<std::net::TcpListener>>,
    local_addr: Option<SocketAddr>,
    ready: AtomicBool,
    sync_problem: Mutex<Option<String>>,
    health_checks: Mutex<Vec<(String, Check)>>,
    ready_checks: Mutex<Vec<(String, Check)>>,
    shutdown: CancellationToken,
    started: AtomicBool,
    cache_sync_timeout: Duration,
    grace: Duration,
    identity: String,
    leader: Mutex<Option<Election>>,
}

/// A configured election.
struct Election {
    name: String,
    namespace: String,
    config: crate::leader::LeaderElectionConfig,
    exit_on_lost: bool,
    status: prometheus_client::metrics::gauge::Gauge,
}

impl Election {
    fn elector(&self, inner: &Inner) -> Result<crate::leader::LeaderElector, crate::leader::LeaderError> {
        let lock =
            crate::leader::LeaseLock::new(&inner.clientset, &self.namespace, &self.name, &inner.identity);
        crate::leader::LeaderElector::new(lock, self.config.clone())
    }
}

/// The manager; cloning gives another handle to it.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("identity", &self.inner.identity)
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// A builder for a manager of the cluster `config` points at.
    pub fn builder(config: Config) -> ManagerBuilder {
        ManagerBuilder {
            config,
            metrics_addr: Some("0.0.0.0:8080".into()),
            namespace: None,
            cache_sync_timeout: Duration::from_secs(120),
            graceful_shutdown_timeout: Duration::from_secs(30),
            identity: None,
            strip_managed_fields: true,
            leader: None,
            leader_config: crate::leader::LeaderElectionConfig::default(),
            exit_on_lost_leadership: true,
        }
    }

    /// The client configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The typed clientset.
    pub fn clientset(&self) -> &Clientset {
        &self.inner.clientset
    }

    /// The dynamic client.
    pub fn dynamic(&self) -> &DynamicClient {
        &self.inner.dynamic
    }

    /// The shared informer factory of every controller.
    pub fn factory(&self) -> &Arc<SharedInformerFactory> {
        &self.inner.factory
    }

    /// This process's identity.
    pub fn identity(&self) -> &str {
        &self.inner.identity
    }

    /// The address `/metrics` and the probes are served on (`None` without the server).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.local_addr
    }

    /// Registers more metrics in the manager's registry (served on `/metrics`).
    pub fn with_registry<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        f(&mut self.inner.registry.lock())
    }

    /// Adds a `/healthz` check (liveness): an `Err` fails the probe with its message.
    pub fn add_health_check(
        &self,
        name: &str,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.inner.health_checks.lock().push((name.to_string(), Arc::new(check)));
    }

    /// Adds a `/readyz` check (readiness).
    pub fn add_ready_check(
        &self,
        name: &str,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.inner.ready_checks.lock().push((name.to_string(), Arc::new(check)));
    }

    /// Adds a controller (see [`Controller::register`]).
    pub fn add_controller(&self, controller: Controller) -> Result<(), ManagerError> {
        let mut controllers = self.inner.controllers.lock();
        // Checked under the lock `run` takes the controllers with: none slips in between.
        if self.inner.started.load(Ordering::SeqCst) {
            return Err(ManagerError::ControllerAfterStart(controller.name));
        }
        if controllers.iter().any(|c| c.name == controller.name) {
            return Err(ManagerError::DuplicateController(controller.name));
        }
        controllers.push(controller);
        Ok(())
    }

    /// Adds a task run alongside the controllers (after caches synced, and only while leading
    /// with leader election) until the token is cancelled. An error stops the manager. It is
    /// started again if leadership is regained.
    pub fn add_runnable<F, Fut>(&self, name: &str, runnable: F)
    where
        F: Fn(CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let f: RunnableFn = Box::new(move |token| Box::pin(runnable(token)));
        self.inner.runnables.lock().push((name.to_string(), f));
    }

    /// Cancelling this token stops a running manager (like a SIGTERM).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Whether the manager is ready (caches synced and controllers started).
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) -> Result<(), ManagerError> {
        let token = self.inner.shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received; shutting down");
            token.cancel();
        });
        self.run().await
    }

    /// Runs until [`shutdown_token`](Self::shutdown_token) is cancelled.
    pub async fn run(self) -> Result<(), ManagerError> {
        let inner = self.inner.clone();
        if inner.started.swap(true, Ordering::SeqCst) {
            return Err(ManagerError::AlreadyRunning);
        }
        let server_stop = CancellationToken::new();
        let server = inner.listener.lock().take().map(|l| {
            let inner = inner.clone();
            let stop = server_stop.clone();
            tokio::spawn(async move { serve(inner, l, stop).await })
        });
        let broadcaster = EventBroadcaster::new(inner.clientset.clone());
        // Controllers: queues, contexts, and their watches' handlers on the shared informers.
        let controllers: Vec<Controller> = std::mem::take(&mut *inner.controllers.lock());
        let mut running = Vec::new();
        for controller in controllers {
            let limiter: Box<dyn crate::workqueue::RateLimiter<crate::controller::Request>> =
                controller.rate_limiter.unwrap_or_else(|| Box::new(default_controller_rate_limiter()));
            let queue = RateLimitingQueue::with_config(
                limiter,
                QueueConfig::named(controller.name.clone()).with_metrics(inner.queue_metrics.clone()),
            );
            let install = InstallContext {
                factory: &inner.factory,
                queue: queue.clone(),
                filters: controller.filters.clone(),
                low_priority: controller.low_priority,
            };
            let installed: Vec<_> = controller.installers.into_iter().map(|i| i(&install)).collect();
            let ctx = crate::controller::Context {
                inner: Arc::new(crate::controller::ContextInner {
                    config: inner.config.clone(),
                    clientset: inner.clientset.clone(),
                    dynamic: inner.dynamic.clone(),
                    factory: inner.factory.clone(),
                    recorder: broadcaster.recorder(&controller.name, &inner.identity),
                    cancel: CancellationToken::new(),
                    controller: controller.name.clone(),
                    sync_timeout: inner.cache_sync_timeout,
                }),
            };
            let handles = inner.controller_metrics.for_controller(&controller.name, controller.concurrency);
            running.push((
                Running {
                    name: controller.name,
                    queue,
                    reconciler: controller.reconciler,
                    ctx,
                    metrics: handles,
                    concurrency: controller.concurrency,
                    timeout: controller.reconcile_timeout,
                },
                installed,
            ));
        }
        inner.factory.start();
        // Wait for the caches (and every handler's initial list), reporting a slow sync through
        // /readyz.
        let synced = async {
            let deadline = tokio::time::Instant::now() + inner.cache_sync_timeout;
            let mut reported = false;
            loop {
                let handlers_synced =
                    running.iter().all(|(_, installed)| installed.iter().all(|i| (i.has_synced)()));
                let unsynced = inner.factory.unsynced();
                if unsynced.is_empty() && handlers_synced {
                    *inner.sync_problem.lock() = None;
                    return;
                }
                if !reported && tokio::time::Instant::now() >= deadline {
                    reported = true;
                    let message = format!(
                        "informer caches not synced after {:?}: {}",
                        inner.cache_sync_timeout,
                        if unsynced.is_empty() {
                            "event handlers still receiving the initial list".to_string()
                        } else {
                            unsynced.join(", ")
                        }
                    );
                    tracing::error!("{message}");
                    *inner.sync_problem.lock() = Some(message);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let stopped_early = tokio::select! {
            _ = inner.shutdown.cancelled() => true,
            _ = synced => false,
        };
        let running: Arc<Vec<Arc<Running>>> =
            Arc::new(running.into_iter().map(|(run, _installed)| Arc::new(run)).collect());
        let failure: Arc<Mutex<Option<ManagerError>>> = Arc::new(Mutex::new(None));
        if !stopped_early {
            // Caches are warm: standby replicas are ready too.
            inner.ready.store(true, Ordering::SeqCst);
            tracing::info!("manager ready");
            let lead = {
                let (inner, running, failure) = (inner.clone(), running.clone(), failure.clone());
                move |work: CancellationToken| lead(inner.clone(), running.clone(), failure.clone(), work)
            };
            let election = inner.leader.lock().take();
            match election {
                None => lead(inner.shutdown.clone()).await,
                Some(election) => {
                    let elector = match election.elector(&inner) {
                        Ok(e) => e,
                        Err(e) => {
                            *failure.lock() = Some(ManagerError::LeaderElection(e));
                            inner.shutdown.cancel();
                            return self.stop(server, server_stop, failure).await;
                        }
                    };
                    let state = elector.state();
                    let (lease, tolerance) =
                        (elector.config().lease_duration, elector.config().renew_deadline);
                    self.add_health_check("leaderElection", move || state.check(lease, tolerance));
                    loop {
                        let status = election.status.clone();
                        let lead = lead.clone();
                        let callbacks = crate::leader::LeaderCallbacks::new()
                            .on_started_leading(move |work| async move {
                                status.set(1);
                                lead(work).await;
                                status.set(0);
                            })
                            .on_new_leader(|who| tracing::info!(leader = %who, "new leader observed"));
                        elector.run(callbacks, inner.shutdown.clone()).await;
                        if inner.shutdown.is_cancelled() {
                            break;
                        }
                        if election.exit_on_lost {
                            tracing::error!("leadership lost; stopping (another replica takes over)");
                            failure.lock().get_or_insert(ManagerError::LeadershipLost(
                                "could not renew the lease within the renew deadline".into(),
                            ));
                            inner.shutdown.cancel();
                            break;
                        }
                        tracing::warn!("leadership lost; campaigning again");
                    }
                }
            }
        }
        self.stop(server, server_stop, failure).await
    }

    async fn stop(
        &self,
        server: Option<tokio::task::JoinHandle<()>>,
        server_stop: CancellationToken,
        failure: Arc<Mutex<Option<ManagerError>>>,
    ) -> Result<(), ManagerError> {
        let inner = &self.inner;
        inner.ready.store(false, Ordering::SeqCst);
        inner.factory.shutdown();
        server_stop.cancel();
        if let Some(server) = server {
            let _ = server.await;
        }
        tracing::info!("manager stopped");
        match failure.lock().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Runs the controllers and runnables until `work` is cancelled (shutdown, or lost leadership),
/// then stops them gracefully.
async fn lead(
    inner: Arc<Inner>,
    running: Arc<Vec<Arc<Running>>>,
    failure: Arc<Mutex<Option<ManagerError>>>,
    work: CancellationToken,
) {
    let mut controller_tasks = JoinSet::new();
    for run in running.iter() {
        let (run, stop, grace) = (run.clone(), work.clone(), inner.grace);
        controller_tasks.spawn(async move {
            tracing::info!(controller = %run.name, workers = run.concurrency, "starting workers");
            run.clone().run(stop, grace).await;
            tracing::info!(controller = %run.name, "workers stopped");
        });
    }
    let mut runnable_tasks = JoinSet::new();
    let futures: Vec<(String, RunnableFuture)> = inner
        .runnables
        .lock()
        .iter()
        .map(|(name, runnable)| (name.clone(), runnable(work.clone())))
        .collect();
    for (name, future) in futures {
        runnable_tasks.spawn(async move { (name, future.await) });
    }
    // Until stopped, or a runnable fails (which stops the manager).
    loop {
        tokio::select! {
            _ = work.cancelled() => break,
            Some(done) = runnable_tasks.join_next(), if !runnable_tasks.is_empty() => {
                if let Ok((name, Err(e))) = done {
                    tracing::error!(runnable = %name, error = %e, "runnable failed; stopping the manager");
                    failure.lock().get_or_insert(ManagerError::Runnable { name, message: e.to_string() });
                    inner.shutdown.cancel();
                    work.cancel();
                    break;
                }
            }
        }
    }
    let grace = inner.grace;
    let _ = tokio::time::timeout(grace + Duration::from_secs(1), async {
        while controller_tasks.join_next().await.is_some() {}
    })
    .await;
    let runnables_done = tokio::time::timeout(grace, async {
        while let Some(done) = runnable_tasks.join_next().await {
            if let Ok((name, Err(e))) = done {
                tracing::warn!(runnable = %name, error = %e, "runnable failed while stopping");
            }
        }
    })
    .await;
    if runnables_done.is_err() {
        runnable_tasks.abort_all();
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the manager");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn run_checks(checks: &[(String, Check)], extra: Vec<(String, Result<(), String>)>) -> (bool, String) {
    let mut ok = true;
    let mut text = String::new();
    for (name, result) in extra.into_iter().chain(checks.iter().map(|(n, c)| (n.clone(), c()))) {
        match result {
            Ok(()) => text.push_str(&format!("[+]{name} ok\n")),
            Err(e) => {
                ok = false;
                text.push_str(&format!("[-]{name} failed: {e}\n"));
            }
        }
    }
    (ok, text)
}

fn respond(inner: &Inner, path: &str, verbose: bool) -> Response<Full<Bytes>> {
    let text = |code: StatusCode, body: String, content_type: &'static str| {
        Response::builder()
            .status(code)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    };
    match path {
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, &inner.registry.lock()) {
                Ok(()) => {
                    text(StatusCode::OK, body, "application/openmetrics-text; version=1.0.0; charset=utf-8")
                }
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("encoding metrics failed: {e}\n"),
                    "text/plain",
                ),
            }
        }
        "/healthz" | "/livez" => {
            let (ok, detail) = run_checks(&inner.health_checks.lock(), vec![("ping".into(), Ok(()))]);
            probe(ok, detail, verbose, "healthz", text)
        }
        "/readyz" => {
            let sync = match (&*inner.sync_problem.lock(), inner.ready.load(Ordering::SeqCst)) {
                (Some(problem), _) => Err(problem.clone()),
                (None, true) => Ok(()),
                (None, false) => {
                    let unsynced = inner.factory.unsynced();
                    Err(if unsynced.is_empty() {
                        "controllers not started yet".to_string()
                    } else {
                        format!("waiting for informer caches to sync: {}", unsynced.join(", "))
                    })
                }
            };
            let (ok, detail) = run_checks(&inner.ready_checks.lock(), vec![("informers".into(), sync)]);
            probe(ok, detail, verbose, "readyz", text)
        }
        _ => {
            text(StatusCode::NOT_FOUND, "not found: try /metrics, /healthz or /readyz\n".into(), "text/plain")
        }
    }
}

fn probe(
    ok: bool,
    detail: String,
    verbose: bool,
    name: &str,
    text: impl Fn(StatusCode, String, &'static str) -> Response<Full<Bytes>>,
) -> Response<Full<Bytes>> {
    if ok {
        let body = if verbose { format!("{detail}{name} check passed\n") } else { "ok".to_string() };
        text(StatusCode::OK, body, "text/plain; charset=utf-8")
    } else {
        // Failures always say which check failed and why (Kubernetes' probe format).
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{detail}{name} check failed\n"),
            "text/plain; charset=utf-8",
        )
    }
}

async fn serve(inner: Arc<Inner>, listener: std::net::TcpListener, stop: CancellationToken) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot serve /metrics and the probes");
            return;
        }
    };
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else { continue };
        let inner = inner.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let service = service_fn(move |request: HttpRequest<Incoming>| {
                let inner = inner.clone();
                async move {
                    let verbose = request
                        .uri()
                        .query()
                        .is_some_and(|q| q.split('&').any(|p| p == "verbose" || p.starts_with("verbose=")));
                    Ok::<_, Infallible>(respond(&inner, request.uri().path(), verbose))
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
    connections.abort_all();
}
