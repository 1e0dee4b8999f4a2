//! The controller builder (controller-runtime's `builder.ControllerManagedBy`): which objects
//! are watched and how their events become [`Request`]s.
//!
//! - [`Controller::for_`]: the primary type; each event enqueues the object itself.
//! - [`ControllerBuilder::owns`]: an owned type; each event enqueues the object's controller
//!   owner (its `ownerReferences` entry with `controller: true`) when that owner is of the
//!   primary type.
//! - [`ControllerBuilder::watches`]: any type, with a function mapping an object to requests.
//! - `_dynamic` variants of the three take an [`ApiResource`] instead of a Rust type.
//! - `_with` variants ([`Controller::for_with`], [`ControllerBuilder::owns_with`],
//!   [`ControllerBuilder::watches_with`]) take a predicate for that watch alone, besides the
//!   controller-wide [`ControllerBuilder::with_event_filter`].
//! - External triggers: [`ControllerBuilder::watches_stream`] (requests from any `Stream`) and
//!   [`ControllerBuilder::reconcile_all_on`] (every cached primary object when a stream yields).
//!
//! Informers come from the manager's shared factory: controllers watching one type share one
//! watch and one cache. Initial-list and resync events are queued with a lower priority
//! ([`ControllerBuilder::initial_priority`], -100 by default as in controller-runtime), so that
//! real changes overtake them after a restart.

use std::{sync::Arc, time::Duration};

use kube_core::{ApiResource, DynamicObject, GroupVersionResource, Resource, metadata::PartialObjectMeta};
use serde::de::DeserializeOwned;

use super::{
    enqueue::{InstallContext, Installed, Installer, Mapper, Primary, install, owner_mapper, primary_mapper},
    predicate::Predicate,
    rbac::{WatchRole, WatchedResource},
    reconciler::{Reconciler, Request},
};
use crate::{cache::Cached, workqueue::RateLimiter};

/// A controller's definition: build it with [`Controller::for_`], then
/// [`build`](ControllerBuilder::build) it with its reconciler and
/// [`register`](Controller::register) it with a manager.
pub struct ControllerBuilder {
    primary: Primary,
    /// Every cached primary object's request (for [`ControllerBuilder::reconcile_all_on`]).
    primary_keys: PrimaryKeys,
    name: Option<String>,
    spec: Spec,
}

/// Lists the requests of every primary object in the shared cache.
type PrimaryKeys = Arc<dyn Fn(&crate::cache::SharedInformerFactory) -> Vec<Request> + Send + Sync>;

fn requests_of<K>(objects: Vec<Arc<Cached<K>>>) -> Vec<Request> {
    objects.iter().map(|o| Request::new(o.namespace().to_string(), o.name().to_string())).collect()
}

/// What a controller is made of: what the builder collects and the built controller runs.
pub(crate) struct Spec {
    /// One per watch: installs its handler on a shared informer.
    pub installers: Vec<Installer>,
    /// What is watched, and how (for RBAC).
    pub watched: Vec<WatchedResource>,
    /// Event filters every watch applies.
    pub filters: Vec<Arc<dyn Predicate>>,
    /// Workers.
    pub concurrency: usize,
    /// The rate limiter of failed requests (`None`: the default).
    pub rate_limiter: Option<Box<dyn RateLimiter<Request>>>,
    /// A reconcile taking longer is abandoned and retried as an error.
    pub reconcile_timeout: Option<Duration>,
    /// The queue priority of initial-list and resync events.
    pub initial_priority: i32,
}

impl std::fmt::Debug for ControllerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerBuilder")
            .field("primary", &self.primary.describe)
            .field("name", &self.name)
            .field("watches", &self.spec.installers.len())
            .field("concurrency", &self.spec.concurrency)
            .finish_non_exhaustive()
    }
}

/// A built controller, ready to [`register`](Controller::register) with a manager.
pub struct Controller {
    pub(crate) name: String,
    pub(crate) reconciler: Arc<dyn super::worker::ErasedReconciler>,
    pub(crate) spec: Spec,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("name", &self.name)
            .field("concurrency", &self.spec.concurrency)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// A controller of `K` objects (controller-runtime's `For`).
    pub fn for_<K>() -> ControllerBuilder
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
        K::Scope: 'static,
    {
        Self::for_predicates::<K>(Vec::new())
    }

    /// [`for_`](Self::for_) with a predicate for this watch only (controller-runtime's
    /// `For(obj, builder.WithPredicates(p))`): e.g. a generation filter on the primary that
    /// does not hide status changes of owned objects, as a controller-wide
    /// [`with_event_filter`](ControllerBuilder::with_event_filter) would.
    pub fn for_with<K>(predicate: impl Predicate) -> ControllerBuilder
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
        K::Scope: 'static,
    {
        Self::for_predicates::<K>(vec![Arc::new(predicate)])
    }

    fn for_predicates<K>(predicates: Vec<Arc<dyn Predicate>>) -> ControllerBuilder
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
        K::Scope: 'static,
    {
        let primary = Primary {
            group: K::group(&()).to_string(),
            kind: K::kind(&()).to_string(),
            namespaced: !krust_client::rules::is_cluster_scoped::<K>(),
            describe: format!("{}.{}", K::kind(&()), K::group(&())),
        };
        let keys: PrimaryKeys = Arc::new(|f| requests_of(f.informer::<K>().indexer().list()));
        let mut builder = ControllerBuilder::new(primary, keys);
        builder.spec.watched.push(WatchedResource::typed::<K>(WatchRole::Primary));
        builder.spec.installers.push(Box::new(move |cx: &InstallContext<'_>| {
            install(cx, cx.factory.informer::<K>(), primary_mapper(), true, &predicates)
        }));
        builder
    }

    /// A controller of objects of a resource without a Rust type (by [`ApiResource`]).
    pub fn for_dynamic(resource: &ApiResource, namespaced: bool) -> ControllerBuilder {
        let primary = Primary {
            group: resource.group.clone(),
            kind: resource.kind.clone(),
            namespaced,
            describe: format!("{}.{}", resource.kind, resource.group),
        };
        let gvr = gvr_of(resource);
        let keys: PrimaryKeys = {
            let gvr = gvr.clone();
            Arc::new(move |f| requests_of(f.dynamic(&gvr).indexer().list()))
        };
        let mut builder = ControllerBuilder::new(primary, keys);
        builder.spec.watched.push(WatchedResource::of(resource, WatchRole::Primary));
        builder.spec.installers.push(Box::new(move |cx: &InstallContext<'_>| {
            install(cx, cx.factory.dynamic(&gvr), primary_mapper(), true, &[])
        }));
        builder
    }

    /// The controller's name (its metrics label).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The resources this controller watches, and how ([`rbac_rules`](super::rbac_rules) turns them into the
    /// RBAC rules the controller needs).
    pub fn watched_resources(&self) -> &[WatchedResource] {
        &self.spec.watched
    }

    /// Hands the controller to the manager, which runs it once caches are synced.
    pub fn register(self, manager: &crate::manager::Manager) -> Result<(), crate::manager::ManagerError> {
        manager.add_controller(self)
    }
}

impl ControllerBuilder {
    fn new(primary: Primary, primary_keys: PrimaryKeys) -> Self {
        ControllerBuilder {
            primary,
            primary_keys,
            name: None,
            spec: Spec {
                installers: Vec::new(),
                watched: Vec::new(),
                filters: Vec::new(),
                concurrency: 1,
                rate_limiter: None,
                reconcile_timeout: None,
                initial_priority: -100,
            },
        }
    }

    /// Also reconciles the controller owner when an owned `D` changes (controller-runtime's
    /// `Owns`).
    #[must_use]
    pub fn owns<D>(self) -> Self
    where
        D: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
    {
        self.owns_predicates::<D>(Vec::new())
    }

    /// [`owns`](Self::owns) with a predicate for this watch only (controller-runtime's
    /// `Owns(obj, builder.WithPredicates(p))`).
    #[must_use]
    pub fn owns_with<D>(self, predicate: impl Predicate) -> Self
    where
        D: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
    {
        self.owns_predicates::<D>(vec![Arc::new(predicate)])
    }

    fn owns_predicates<D>(mut self, predicates: Vec<Arc<dyn Predicate>>) -> Self
    where
        D: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
    {
        let mapper = owner_mapper::<D>(&self.primary);
        self.spec.watched.push(WatchedResource::typed::<D>(WatchRole::Owned));
        self.spec.installers.push(Box::new(move |cx: &InstallContext<'_>| {
            install(cx, cx.factory.informer::<D>(), mapper, false, &predicates)
        }));
        self
    }

    /// [`owns`](Self::owns) through a metadata-only informer (`PartialObjectMetadata`): the
    /// owner is found from the owned objects' `ownerReferences` as with `owns`, but the cache
    /// holds their metadata only — the cheapest way to hear of changes to objects whose
    /// content the reconciler reads from the API server, or not at all (controller-runtime's
    /// `Owns(obj, builder.OnlyMetadata)`). A typed lister of `D` in the reconciler starts a
    /// full informer besides it.
    #[must_use]
    pub fn owns_metadata<D>(self) -> Self
    where
        D: Resource<DynamicType = ()> + 'static,
    {
        self.owns_metadata_predicates::<D>(Vec::new())
    }

    /// [`owns_metadata`](Self::owns_metadata) with a predicate for this watch only.
    #[must_use]
    pub fn owns_metadata_with<D>(self, predicate: impl Predicate) -> Self
    where
        D: Resource<DynamicType = ()> + 'static,
    {
        self.owns_metadata_predicates::<D>(vec![Arc::new(predicate)])
    }

    fn owns_metadata_predicates<D>(mut self, predicates: Vec<Arc<dyn Predicate>>) -> Self
    where
        D: Resource<DynamicType = ()> + 'static,
    {
        let resource = ApiResource::erase::<D>(&());
        let mapper = owner_mapper::<PartialObjectMeta>(&self.primary);
        let gvr = gvr_of(&resource);
        self.spec.watched.push(WatchedResource::of(&resource, WatchRole::Owned));
        self.spec.installers.push(Box::new(move |cx: &InstallContext<'_>| {
            install(cx, cx.factory.metadata(&gvr), mapper, false, &predicates)
        }));
        self
    }

    /// [`owns`](Self::owns) for a resource without a Rust type.
    #[must_use]
    pub fn owns_dynamic(mut self, resource: &ApiResource) -> Self {
        let mapper = owner_mapper::<DynamicObject>(&self.primary);
        let gvr = gvr_of(resource);
        self.spec.watched.push(WatchedResource::of(resource, WatchRole::Owned));
        self.spec.installers.push(Box::new(move |cx: &InstallContext<'_>| {
            install(cx, cx.factory.dynamic(&gvr), mapper, false, &[])
        }));
        self
    }

    /// Also reconciles what `mapper` returns for each changed `W` (controller-runtime's
    /// `Watches` with `EnqueueRequestsFromMapFunc`).
    #[must_use]
    pub fn watches<W>(self, mapper: impl Fn(&Cached<W>) -> Vec<Request> + Send + Sync + 'static) -> Self
    where
        W: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
    {
        self.watches_predicates::<W>(Arc::new(mapper), Vec::new())
    }

    /// [`watches`](Self::watches) with a predicate for this watch only (controller-runtime's
    /// `Watches(obj, handler, builder.WithPredicates(p))`).
    #[must_use]
    pub fn watches_with<W>(
        self,
        predicate: impl Predicate,
        mapper: impl Fn(&Cached<W>) -> Vec<Request> + Send + Sync + 'static,
    ) -> Self
    where
        W: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
    {
        self.watches_predicates::<W>(Arc::new(mapper), vec![Arc::new(predicate)])
    }

    fn watches_predicates<W>(mut self, mapper: Mapper<W>, predicates: Vec<Arc<dyn Predicate>>) -> Self
    where
        W: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
    {
        self.spec.watched.push(WatchedResource::typed::<W>(WatchRole::Watched));
        self.spec.installers.push(Box::new(move |cx: &InstallContext<'_>| {
            install(cx, cx.factory.informer::<W>(), mapper, false, &predicates)
        }));
        self
    }

    /// [`watches`](Self::watches) for a resource without a Rust type.
    #[must_use]
    pub fn watches_dynamic(
        mut self,
        resource: &ApiResource,
        mapper: impl Fn(&Cached<DynamicObject>) -> Vec<Request> + Send + Sync + 'static,
    ) -> Self {
        let mapper: Mapper<DynamicObject> = Arc::new(mapper);
        let gvr = gvr_of(resource);
        self.spec.watched.push(WatchedResource::of(resource, WatchRole::Watched));
        self.spec.installers.push(Box::new(move |cx: &InstallContext<'_>| {
            install(cx, cx.factory.dynamic(&gvr), mapper, false, &[])
        }));
        self
    }

    /// [`watches`](Self::watches) on metadata only (`PartialObjectMetadata`): the cheapest way to
    /// follow a type whose content the mapping does not need.
    #[must_use]
    pub fn watches_metadata(
        mut self,
        resource: &ApiResource,
        mapper: impl Fn(&Cached<PartialObjectMeta>) -> Vec<Request> + Send + Sync + 'static,
    ) -> Self {
        let mapper: Mapper<PartialObjectMeta> = Arc::new(mapper);
        let gvr = gvr_of(resource);
        self.spec.watched.push(WatchedResource::of(resource, WatchRole::Watched));
        self.spec.installers.push(Box::new(move |cx: &InstallContext<'_>| {
            install(cx, cx.factory.metadata(&gvr), mapper, false, &[])
        }));
        self
    }

    /// Reconciles the requests a stream yields (kube-rs' `reconcile_on`, controller-runtime's
    /// `source.Channel`): any external trigger — a message, a timer, a change outside the
    /// cluster. Requests of objects that do not exist reach the reconciler too (it finds
    /// nothing in the cache, as after a deletion). The stream is read until it ends or the
    /// controller stops.
    #[must_use]
    pub fn watches_stream<S>(mut self, requests: S) -> Self
    where
        S: futures_util::Stream<Item = Request> + Send + 'static,
    {
        self.spec.installers.push(Box::new(move |cx: &InstallContext<'_>| {
            let queue = cx.queue.clone();
            tokio::spawn(async move {
                use futures_util::StreamExt;
                let mut requests = std::pin::pin!(requests);
                while let Some(request) = requests.next().await {
                    if queue.shutting_down() {
                        break;
                    }
                    queue.add(request);
                }
            });
            Installed { synced: already_synced() }
        }));
        self
    }

    /// Reconciles every primary object in the cache each time `trigger` yields (kube-rs'
    /// `reconcile_all_on`), e.g. when a ConfigMap of settings changes. They are queued with
    /// the initial-list priority ([`initial_priority`](Self::initial_priority)), so that real
    /// changes overtake them; keys already queued are not queued twice.
    #[must_use]
    pub fn reconcile_all_on<S>(mut self, trigger: S) -> Self
    where
        S: futures_util::Stream<Item = ()> + Send + 'static,
    {
        let keys = self.primary_keys.clone();
        self.spec.installers.push(Box::new(move |cx: &InstallContext<'_>| {
            let (queue, factory, priority) = (cx.queue.clone(), cx.factory.clone(), cx.initial_priority);
            tokio::spawn(async move {
                use futures_util::StreamExt;
                let mut trigger = std::pin::pin!(trigger);
                while trigger.next().await.is_some() {
                    if queue.shutting_down() {
                        break;
                    }
                    let requests = keys(&factory);
                    tracing::debug!(count = requests.len(), "external trigger: reconciling every object");
                    for request in requests {
                        queue.add_with_priority(request, priority);
                    }
                }
            });
            Installed { synced: already_synced() }
        }));
        self
    }

    /// An event filter for every watch of this controller (controller-runtime's
    /// `WithEventFilter`); several filters must all pass.
    #[must_use]
    pub fn with_event_filter(mut self, predicate: impl Predicate) -> Self {
        self.spec.filters.push(Arc::new(predicate));
        self
    }

    /// How many reconciles run at once (default 1); never two for one object.
    #[must_use]
    pub fn concurrency(mut self, workers: usize) -> Self {
        self.spec.concurrency = workers.max(1);
        self
    }

    /// The rate limiter of failed requests (default:
    /// [`default_controller_rate_limiter`](crate::workqueue::default_controller_rate_limiter)).
    #[must_use]
    pub fn rate_limiter(mut self, limiter: impl RateLimiter<Request> + 'static) -> Self {
        self.spec.rate_limiter = Some(Box::new(limiter));
        self
    }

    /// A reconcile taking longer than this is abandoned and retried as an error.
    #[must_use]
    pub fn reconcile_timeout(mut self, timeout: Duration) -> Self {
        self.spec.reconcile_timeout = Some(timeout);
        self
    }

    /// The controller's name (metrics label, event source, log field); by default the
    /// primary's kind in lower case.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The queue priority of initial-list and resync events (default -100; changes get 0). Set
    /// it to 0 to treat them like any change.
    #[must_use]
    pub fn initial_priority(mut self, priority: i32) -> Self {
        self.spec.initial_priority = priority;
        self
    }

    /// The controller, with its reconciler.
    pub fn build<R: Reconciler>(self, reconciler: R) -> Controller {
        let name = self.name.unwrap_or_else(|| self.primary.kind.to_lowercase());
        Controller { name, reconciler: Arc::new(super::worker::Erased(reconciler)), spec: self.spec }
    }
}

/// A source with no initial list (a stream): nothing to wait for.
fn already_synced() -> crate::cache::Synced {
    let synced = crate::cache::Synced::new();
    synced.set();
    synced
}

fn gvr_of(ar: &ApiResource) -> GroupVersionResource {
    GroupVersionResource::gvr(&ar.group, &ar.version, &ar.plural)
}
