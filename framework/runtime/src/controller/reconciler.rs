//! What users implement: the [`Reconciler`] (controller-runtime's `reconcile.Reconciler`), the
//! [`Request`] it is given, the [`Action`] it returns, and the [`Context`] it works with.

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use krust_client::{Clientset, Config, DynamicClient, TypedClient};
use kube_core::{DynamicObject, GroupVersionResource, Resource};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::{
    cache::{Lister, SharedInformerFactory},
    events::EventRecorder,
};

/// The object to reconcile: its namespace (empty for cluster-scoped objects) and name, as
/// controller-runtime's `reconcile.Request`. Reconcilers are level-based: they are told which
/// object, never what changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Request {
    /// The namespace ("" when cluster-scoped).
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl Request {
    /// A namespaced object's request.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Request { namespace: namespace.into(), name: name.into() }
    }

    /// A cluster-scoped object's request.
    pub fn cluster(name: impl Into<String>) -> Self {
        Request { namespace: String::new(), name: name.into() }
    }

    /// The namespace, `None` when cluster-scoped.
    pub fn namespace(&self) -> Option<&str> {
        (!self.namespace.is_empty()).then_some(self.namespace.as_str())
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// What to do after a successful reconcile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Action {
    requeue_after: Option<Duration>,
    requeue: bool,
}

impl Action {
    /// Done: nothing more until the object (or something mapped to it) changes.
    pub fn done() -> Self {
        Action::default()
    }

    /// Reconcile again after `delay` (and forget the object's failures).
    pub fn requeue_after(delay: Duration) -> Self {
        Action { requeue_after: Some(delay), requeue: false }
    }

    /// Reconcile again after the rate limiter's delay (controller-runtime's `Requeue: true`).
    pub fn requeue() -> Self {
        Action { requeue_after: None, requeue: true }
    }

    /// The delay of [`requeue_after`](Self::requeue_after), if any.
    pub fn delay(&self) -> Option<Duration> {
        self.requeue_after
    }

    /// Whether this is [`requeue`](Self::requeue).
    pub fn is_rate_limited_requeue(&self) -> bool {
        self.requeue
    }
}

/// An error that retrying will not fix (controller-runtime's `reconcile.TerminalError`): the
/// request is not requeued, and `controller_runtime_terminal_reconcile_errors_total` counts it.
/// Return it as your error type, or anywhere in your error's `source()` chain.
#[derive(Debug, thiserror::Error)]
#[error("terminal error: {0}")]
pub struct TerminalError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl TerminalError {
    /// Wraps an error as terminal.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        TerminalError(error.into())
    }
}

/// Whether `error` is, or is caused by, a [`TerminalError`].
pub fn is_terminal(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<TerminalError>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// A controller's reconcile logic. Called with one object key at a time (never the same key on
/// two workers at once); reads come from the caches ([`Context::lister`]), writes go through
/// the injected clients.
///
/// - `Ok(Action::done())`: success; the key's failures are forgotten.
/// - `Ok(Action::requeue_after(d))`: success; reconcile again after `d`.
/// - `Err(e)`: retried with the per-key backoff of the controller's rate limiter, unless `e` is
///   terminal ([`TerminalError`], see [`Reconciler::is_terminal`]).
/// - A panic is caught, logged, counted and retried like an error.
#[async_trait]
pub trait Reconciler: Send + Sync + 'static {
    /// The reconcile error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Brings the object named by `req` to its desired state.
    async fn reconcile(&self, req: Request, ctx: &Context) -> Result<Action, Self::Error>;

    /// Whether an error must not be retried; by default, whether it is or wraps a
    /// [`TerminalError`].
    fn is_terminal(&self, error: &Self::Error) -> bool {
        is_terminal(error)
    }
}

/// How long [`Context::synced_lister`] waits by default (controller-runtime's cache sync
/// timeout).
pub const DEFAULT_LISTER_SYNC_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub(crate) struct ContextInner {
    pub config: Config,
    pub clientset: Clientset,
    pub dynamic: DynamicClient,
    pub factory: Arc<SharedInformerFactory>,
    pub recorder: EventRecorder,
    pub cancel: CancellationToken,
    pub controller: String,
    pub sync_timeout: Duration,
    /// What [`apply_owned_metadata`](super::helpers::apply_owned_metadata) applied: key → (hash of the
    /// desired object, resourceVersion the apply returned). Shared by every run's context.
    pub applied: Arc<parking_lot::Mutex<std::collections::HashMap<String, (String, String)>>>,
}

/// What a reconcile works with: the clients, the caches, an event recorder and the
/// cancellation token of the controller's run (cancelled at shutdown after the grace period, and
/// at once when leadership is lost).
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Arc<ContextInner>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context").field("controller", &self.inner.controller).finish_non_exhaustive()
    }
}

impl Context {
    /// A context outside a manager (for tests of a reconciler, or a reconcile called by hand):
    /// the clients of `config`, a shared informer factory over them (informers start on the
    /// first [`lister`](Self::lister) of each type), and an event recorder named `controller`.
    /// managedFields are stripped from cached objects, as in a manager. Call it inside a Tokio
    /// runtime (the event recorder's sender is spawned). `krust::testing` builds one over an
    /// in-process krust-apiserver.
    pub fn new(config: Config, controller: &str) -> Result<Self, krust_client::Error> {
        let clientset = Clientset::new(&config)?;
        let dynamic = DynamicClient::new(&config)?;
        let rest = krust_client::RestClient::new(
            &config.clone().with_group_version(kube_core::GroupVersion::gv("", "v1")),
        )?;
        let factory = Arc::new(SharedInformerFactory::new(&rest).with_strip_managed_fields(true));
        let recorder = crate::events::EventBroadcaster::new(clientset.clone())
            .recorder(controller, &crate::manager::default_identity());
        Ok(Context {
            inner: Arc::new(ContextInner {
                config,
                clientset,
                dynamic,
                factory,
                recorder,
                cancel: CancellationToken::new(),
                controller: controller.to_string(),
                sync_timeout: DEFAULT_LISTER_SYNC_TIMEOUT,
                applied: Arc::default(),
            }),
        })
    }

    /// The same context with another cancellation token (one per run of a controller's
    /// workers, so that a run cancelled when leadership was lost leaves the next run's
    /// reconciles uncancelled).
    pub(crate) fn with_cancel(&self, cancel: CancellationToken) -> Context {
        Context { inner: Arc::new(ContextInner { cancel, ..(*self.inner).clone() }) }
    }

    /// The typed clientset.
    pub fn clientset(&self) -> &Clientset {
        &self.inner.clientset
    }

    /// The dynamic client.
    pub fn dynamic(&self) -> &DynamicClient {
        &self.inner.dynamic
    }

    /// A typed client for any resource type (e.g. a custom resource): `None` for all namespaces
    /// or a cluster-scoped type.
    pub fn client<K>(&self, namespace: Option<&str>) -> TypedClient<K>
    where
        K: Resource<DynamicType = ()> + Clone + serde::Serialize + DeserializeOwned,
    {
        self.inner.clientset.typed::<K>(namespace)
    }

    /// The cached objects of a type, from the shared informer factory. The types a controller
    /// watches have synced before its first reconcile; any other type gets an informer started
    /// on first use, and until it has synced its lister's reads answer
    /// [`Error::NotSynced`](krust_client::Error::NotSynced) (a reconcile that returns it is
    /// retried with backoff) instead of "not found". [`synced_lister`](Self::synced_lister)
    /// waits for the sync instead.
    pub fn lister<K>(&self) -> Lister<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
    {
        let informer = self.inner.factory.informer::<K>();
        self.inner.factory.start();
        informer.lister().requiring_sync(informer.synced().clone())
    }

    /// [`lister`](Self::lister), once its informer has synced (controller-runtime's cache reads
    /// wait the same way): at most the manager's cache sync timeout (2 minutes by default),
    /// then [`Error::NotSynced`](krust_client::Error::NotSynced); also that error when the
    /// controller is cancelled meanwhile.
    pub async fn synced_lister<K>(&self) -> Result<Lister<K>, krust_client::Error>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
    {
        let lister = self.lister::<K>();
        if !lister.is_synced() {
            let informer = self.inner.factory.informer::<K>();
            tokio::select! {
                _ = informer.wait_synced() => {}
                _ = tokio::time::sleep(self.inner.sync_timeout) => {}
                _ = self.inner.cancel.cancelled() => {}
            }
        }
        if lister.is_synced() {
            Ok(lister)
        } else {
            Err(krust_client::Error::NotSynced { what: K::kind(&()).to_string() })
        }
    }

    /// The cached objects of a resource by GVR, as `DynamicObject`s (answering
    /// [`Error::NotSynced`](krust_client::Error::NotSynced) until synced, as
    /// [`lister`](Self::lister)).
    pub fn dynamic_lister(&self, gvr: &GroupVersionResource) -> Lister<DynamicObject> {
        let informer = self.inner.factory.dynamic(gvr);
        self.inner.factory.start();
        informer.lister().requiring_sync(informer.synced().clone())
    }

    /// The shared informer factory.
    pub fn factory(&self) -> &Arc<SharedInformerFactory> {
        &self.inner.factory
    }

    /// The event recorder (events are sent in the background).
    pub fn recorder(&self) -> &EventRecorder {
        &self.inner.recorder
    }

    /// Cancelled when the controller stops and its grace period is over, or at once when the
    /// manager loses leadership (the reconcile is then dropped at its next await and its
    /// request reconciled again when this replica leads again): long reconciles may watch it.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.inner.cancel
    }

    /// The client configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The controller's name.
    pub fn controller_name(&self) -> &str {
        &self.inner.controller
    }
}
