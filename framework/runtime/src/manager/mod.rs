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
//!
//! Lost leadership is not a shutdown: another replica may lead as soon as the lease expires, so
//! in-flight reconciles are dropped at once (their requests go back to the queue) and runnables
//! have half of `lease_duration − renew_deadline` to return before they are aborted; then the
//! manager campaigns again or, by default, stops with [`ManagerError::LeadershipLost`].
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let config = server.kubeconfig().config;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use krust_runtime::controller::{Action, Context, Controller, Reconciler, Request};
//! use krust_runtime::manager::Manager;
//!
//! struct Noop;
//! #[async_trait::async_trait]
//! impl Reconciler for Noop {
//!     type Error = krust_client::Error;
//!     async fn reconcile(&self, _req: Request, _ctx: &Context) -> Result<Action, Self::Error> {
//!         Ok(Action::done())
//!     }
//! }
//!
//! let manager = Manager::builder(config).metrics_addr("127.0.0.1:0").build()?;
//! Controller::for_::<ConfigMap>().build(Noop).register(&manager)?;
//! let running = tokio::spawn(manager.clone().run());
//! for _ in 0..500 {
//!     if manager.is_ready() { break }
//!     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//! }
//! assert!(manager.is_ready(), "caches synced, controllers running");
//! // Graceful shutdown (what SIGTERM does with `run_until_signal`).
//! manager.shutdown_token().cancel();
//! running.await??;
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

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
use krust_client::{Clientset, Config, DynamicClient, ListOptions, RestClient};
use kube_core::GroupVersion;
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{
    cache::{SharedInformerFactory, Synced},
    controller::{Controller, ControllerMetrics, Running, StartParts},
    events::EventBroadcaster,
    workqueue::PrometheusMetrics,
};

mod builder;
mod client_metrics;
mod election;
mod http;
mod process_metrics;
mod secure;

pub use builder::{ByObject, ManagerBuilder, default_identity};
use election::Election;
use http::serve;
pub use secure::SecureMetrics;

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
    /// The secure metrics server's certificate cannot be used.
    #[error("the metrics server's certificate: {0}")]
    Certificate(String),
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

struct Inner {
    pub(super) config: Config,
    pub(super) clientset: Clientset,
    pub(super) dynamic: DynamicClient,
    pub(super) factory: Arc<SharedInformerFactory>,
    pub(super) registry: Arc<Mutex<Registry>>,
    pub(super) controller_metrics: ControllerMetrics,
    pub(super) queue_metrics: Arc<PrometheusMetrics>,
    pub(super) controllers: Mutex<Vec<Controller>>,
    pub(super) runnables: Mutex<Vec<(String, RunnableFn)>>,
    pub(super) everywhere: Mutex<Vec<(String, RunnableFn)>>,
    pub(super) listener: Mutex<Option<std::net::TcpListener>>,
    pub(super) local_addr: Option<SocketAddr>,
    /// How the metrics server serves (HTTPS and delegated auth when secure).
    pub(super) metrics_serving: http::Serving,
    /// The separate probe server's listener, when there is one.
    pub(super) probe_listener: Mutex<Option<std::net::TcpListener>>,
    pub(super) probe_addr: Option<SocketAddr>,
    pub(super) ready: AtomicBool,
    pub(super) sync_problem: Mutex<Option<String>>,
    pub(super) health_checks: Mutex<Vec<(String, Check)>>,
    pub(super) ready_checks: Mutex<Vec<(String, Check)>>,
    pub(super) shutdown: CancellationToken,
    pub(super) started: AtomicBool,
    pub(super) cache_sync_timeout: Duration,
    pub(super) grace: Duration,
    pub(super) identity: String,
    pub(super) leader: Mutex<Option<Election>>,
    pub(super) webhook: Mutex<Option<crate::webhook::WebhookServer>>,
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
        ManagerBuilder::new(config)
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

    /// Where the separate probe server listens, if [`ManagerBuilder::health_probe_addr`] set
    /// one.
    pub fn probe_addr(&self) -> Option<SocketAddr> {
        self.inner.probe_addr
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

    /// Adds a task run on every replica, leader or not (controller-runtime's runnables whose
    /// `NeedLeaderElection()` is false: a cache warmer, a server answering every replica's
    /// traffic), from the moment caches are synced until shutdown, when its token is
    /// cancelled. An error stops the manager. Without leader election it is like
    /// [`add_runnable`](Self::add_runnable).
    pub fn add_runnable_on_every_replica<F, Fut>(&self, name: &str, runnable: F)
    where
        F: Fn(CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let f: RunnableFn = Box::new(move |token| Box::pin(runnable(token)));
        self.inner.everywhere.lock().push((name.to_string(), f));
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
        let mut servers = Vec::new();
        if let Some(l) = inner.listener.lock().take() {
            let (inner, stop, serving) = (inner.clone(), server_stop.clone(), inner.metrics_serving.clone());
            servers.push(tokio::spawn(async move { serve(inner, l, serving, stop).await }));
        }
        if let Some(l) = inner.probe_listener.lock().take() {
            let serving = http::Serving { metrics: false, probes: true, tls: None, auth: None };
            let (inner, stop) = (inner.clone(), server_stop.clone());
            servers.push(tokio::spawn(async move { serve(inner, l, serving, stop).await }));
        }
        // The webhook server answers the API server from the start, on every replica.
        let webhook = inner.webhook.lock().take().map(|w| {
            let stop = server_stop.clone();
            tokio::spawn(async move {
                if let Err(e) = w.run(stop).await {
                    tracing::error!(error = %e, "the webhook server stopped");
                }
            })
        });
        let broadcaster = EventBroadcaster::new(inner.clientset.clone());
        // Each controller builds its running parts: queue, context, workers, and its watches'
        // handlers on the shared informers.
        let parts = StartParts {
            config: &inner.config,
            clientset: &inner.clientset,
            dynamic: &inner.dynamic,
            factory: &inner.factory,
            broadcaster: &broadcaster,
            identity: &inner.identity,
            queue_metrics: &inner.queue_metrics,
            controller_metrics: &inner.controller_metrics,
            sync_timeout: inner.cache_sync_timeout,
        };
        let controllers: Vec<Controller> = std::mem::take(&mut *inner.controllers.lock());
        let running: Vec<_> = controllers.into_iter().map(|c| c.start(&parts)).collect();
        inner.factory.start();
        // Wait for the caches (and every handler's initial list), reporting a slow sync through
        // /readyz.
        // Wait for the caches and every handler's initial list (their sync signals), reporting
        // a slow sync through /readyz once the timeout has passed.
        let signals: Vec<Synced> =
            running.iter().flat_map(|(_, installed)| installed.iter().map(|i| i.synced.clone())).collect();
        let synced = async {
            let all = async {
                inner.factory.wait_synced().await;
                futures_util::future::join_all(signals.iter().map(Synced::wait)).await;
            };
            tokio::pin!(all);
            tokio::select! {
                _ = &mut all => {}
                _ = tokio::time::sleep(inner.cache_sync_timeout) => {
                    let unsynced = inner.factory.unsynced();
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
                    all.await;
                }
            }
            *inner.sync_problem.lock() = None;
        };
        let stopped_early = tokio::select! {
            _ = inner.shutdown.cancelled() => true,
            _ = synced => false,
        };
        let running: Arc<Vec<Arc<Running>>> =
            Arc::new(running.into_iter().map(|(run, _installed)| Arc::new(run)).collect());
        let failure: Arc<Mutex<Option<ManagerError>>> = Arc::new(Mutex::new(None));
        let everywhere_stop = CancellationToken::new();
        let mut everywhere = JoinSet::new();
        if !stopped_early {
            // Caches are warm: standby replicas are ready too.
            inner.ready.store(true, Ordering::SeqCst);
            tracing::info!("manager ready");
            // Runnables of every replica start now, whoever leads.
            let futures: Vec<(String, RunnableFuture)> = inner
                .everywhere
                .lock()
                .iter()
                .map(|(name, runnable)| (name.clone(), runnable(everywhere_stop.clone())))
                .collect();
            for (name, future) in futures {
                let (failure, shutdown) = (failure.clone(), inner.shutdown.clone());
                everywhere.spawn(async move {
                    if let Err(e) = future.await {
                        tracing::error!(runnable = %name, error = %e, "runnable failed; stopping the manager");
                        failure.lock().get_or_insert(ManagerError::Runnable { name, message: e.to_string() });
                        shutdown.cancel();
                    }
                });
            }
            let election = inner.leader.lock().take();
            // When leadership is lost, runnables get half the time before the lease can expire
            // for the other replicas to return, then are aborted.
            let on_loss = election
                .as_ref()
                .map(|e| e.config.lease_duration.saturating_sub(e.config.renew_deadline) / 2)
                .unwrap_or_default();
            let lead = {
                let (inner, running, failure) = (inner.clone(), running.clone(), failure.clone());
                move |work: CancellationToken| {
                    lead(inner.clone(), running.clone(), failure.clone(), work, on_loss)
                }
            };
            match election {
                None => lead(inner.shutdown.clone()).await,
                Some(election) => {
                    if let Err(e) = election.run(&self, lead, &failure).await {
                        *failure.lock() = Some(ManagerError::LeaderElection(e));
                        inner.shutdown.cancel();
                    }
                }
            }
        }
        everywhere_stop.cancel();
        let everywhere_done =
            tokio::time::timeout(inner.grace, async { while everywhere.join_next().await.is_some() {} })
                .await;
        if everywhere_done.is_err() {
            everywhere.abort_all();
        }
        let stopped = self.stop(servers, server_stop, failure).await;
        if let Some(webhook) = webhook {
            let _ = webhook.await;
        }
        stopped
    }

    async fn stop(
        &self,
        servers: Vec<tokio::task::JoinHandle<()>>,
        server_stop: CancellationToken,
        failure: Arc<Mutex<Option<ManagerError>>>,
    ) -> Result<(), ManagerError> {
        let inner = &self.inner;
        inner.ready.store(false, Ordering::SeqCst);
        inner.factory.shutdown();
        server_stop.cancel();
        for server in servers {
            let _ = server.await;
        }
        tracing::info!("manager stopped");
        match failure.lock().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Runs the controllers and runnables until `work` is cancelled, then stops them: gracefully at
/// shutdown; when leadership was lost, reconciles are abandoned at once and runnables get
/// `on_loss` to return (another replica may lead as soon as the lease expires).
async fn lead(
    inner: Arc<Inner>,
    running: Arc<Vec<Arc<Running>>>,
    failure: Arc<Mutex<Option<ManagerError>>>,
    work: CancellationToken,
    on_loss: Duration,
) {
    let mut controller_tasks = JoinSet::new();
    for run in running.iter() {
        let (run, stop, grace) = (run.clone(), work.clone(), inner.grace);
        let shutdown = inner.shutdown.clone();
        controller_tasks.spawn(async move {
            tracing::info!(controller = %run.name, workers = run.concurrency, "starting workers");
            // Graceful on shutdown; at once when leadership was lost.
            run.clone().run(stop, grace, move || shutdown.is_cancelled()).await;
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
    let grace = if inner.shutdown.is_cancelled() { inner.grace } else { on_loss };
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
