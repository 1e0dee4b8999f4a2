//! The controller builder (controller-runtime's `builder.ControllerManagedBy`): which objects
//! are watched and how their events become [`Request`]s.
//!
//! - [`Controller::for_`]: the primary type; each event enqueues the object itself.
//! - [`ControllerBuilder::owns`]: an owned type; each event enqueues the object's controller
//!   owner (its `ownerReferences` entry with `controller: true`) when that owner is of the
//!   primary type.
//! - [`ControllerBuilder::watches`]: any type, with a function mapping an object to requests.
//! - `_dynamic` variants of the three take an [`ApiResource`] instead of a Rust type.
//!
//! Informers come from the manager's shared factory: controllers watching one type share one
//! watch and one cache. Initial-list and resync events are queued with a lower priority
//! ([`ControllerBuilder::initial_priority`], -100 by default as in controller-runtime), so that
//! real changes overtake them after a restart.

use std::{sync::Arc, time::Duration};

use kube_core::{ApiResource, DynamicObject, GroupVersionResource, Resource, metadata::PartialObjectMeta};
use serde::de::DeserializeOwned;

use super::{
    predicate::Predicate,
    reconciler::{Reconciler, Request},
};
use crate::{
    cache::{
        Cached, DeltaObject, EventHandler, HandlerRegistration, SharedIndexInformer, SharedInformerFactory,
    },
    workqueue::{RateLimiter, RateLimitingQueue},
};

/// How a controller uses a resource it watches, and so what its RBAC must allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WatchRole {
    /// The primary type: read, updated (finalizers, metadata) and its status written.
    Primary,
    /// An owned type: read and written (created, updated, deleted).
    Owned,
    /// A type only watched (mapped to requests): read.
    Watched,
}

/// One resource a controller watches ([`Controller::watched_resources`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedResource {
    /// API group (`""` for the core group).
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// How the controller uses it.
    pub role: WatchRole,
}

impl WatchedResource {
    fn new(group: &str, version: &str, plural: &str, role: WatchRole) -> Self {
        WatchedResource { group: group.into(), version: version.into(), plural: plural.into(), role }
    }

    fn typed<K: Resource<DynamicType = ()>>(role: WatchRole) -> Self {
        Self::new(&K::group(&()), &K::version(&()), &K::plural(&()), role)
    }

    fn of(resource: &ApiResource, role: WatchRole) -> Self {
        Self::new(&resource.group, &resource.version, &resource.plural, role)
    }
}

/// The least-privilege RBAC rules for `resources` (controller-gen's role from kubebuilder
/// markers, derived here from what the controllers watch): primary types `get, list, watch,
/// update, patch`, their `status` `get, update, patch` and `finalizers` `update` (owner
/// references with `blockOwnerDeletion` need it); owned types also `create` and `delete`; other
/// watched types `get, list, watch`. Resources of one group with the same verbs share a rule;
/// the order is stable (by group, then verbs, then resource).
pub fn rbac_rules<'a>(
    resources: impl IntoIterator<Item = &'a WatchedResource>,
) -> Vec<k8s_openapi::api::rbac::v1::PolicyRule> {
    use std::collections::{BTreeMap, BTreeSet};
    // Verbs in the order kubectl and controller-gen write them.
    const ORDER: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete"];
    const READ: &[&str] = &["get", "list", "watch"];
    const PRIMARY: &[&str] = &["get", "list", "watch", "update", "patch"];
    const STATUS: &[&str] = &["get", "update", "patch"];
    const FINALIZERS: &[&str] = &["update"];
    const OWNED: &[&str] = ORDER;
    // (group, resource) -> the union of the verbs each use asks for.
    let mut wanted: BTreeMap<(String, String), BTreeSet<&str>> = BTreeMap::new();
    let mut want = |group: &str, resource: String, verbs: &[&'static str]| {
        wanted.entry((group.to_string(), resource)).or_default().extend(verbs.iter().copied());
    };
    for r in resources {
        match r.role {
            WatchRole::Primary => {
                want(&r.group, r.plural.clone(), PRIMARY);
                want(&r.group, format!("{}/status", r.plural), STATUS);
                want(&r.group, format!("{}/finalizers", r.plural), FINALIZERS);
            }
            WatchRole::Owned => want(&r.group, r.plural.clone(), OWNED),
            WatchRole::Watched => want(&r.group, r.plural.clone(), READ),
        }
    }
    let mut rules: BTreeMap<(String, Vec<&str>), BTreeSet<String>> = BTreeMap::new();
    for ((group, resource), verbs) in wanted {
        let verbs: Vec<&str> = ORDER.iter().copied().filter(|v| verbs.contains(v)).collect();
        rules.entry((group, verbs)).or_default().insert(resource);
    }
    rules
        .into_iter()
        .map(|((group, verbs), resources)| k8s_openapi::api::rbac::v1::PolicyRule {
            api_groups: Some(vec![group]),
            resources: Some(resources.into_iter().collect()),
            verbs: verbs.into_iter().map(String::from).collect(),
            ..Default::default()
        })
        .collect()
}

/// Maps an object of a watched type to the requests to reconcile.
pub type Mapper<K> = Arc<dyn Fn(&Cached<K>) -> Vec<Request> + Send + Sync>;

/// A watch's installed handler: whether it has been handed the initial list.
pub(crate) struct Installed {
    pub has_synced: Box<dyn Fn() -> bool + Send + Sync>,
}

pub(crate) struct InstallContext<'a> {
    pub factory: &'a SharedInformerFactory,
    pub queue: RateLimitingQueue<Request>,
    pub filters: Vec<Arc<dyn Predicate>>,
    pub low_priority: i32,
}

type Installer = Box<dyn FnOnce(&InstallContext<'_>) -> Installed + Send>;

/// The controller's primary type: what `owns` matches owner references against.
#[derive(Clone, Debug)]
pub(crate) struct Primary {
    pub group: String,
    pub kind: String,
    pub namespaced: bool,
    pub describe: String,
}

/// A controller's definition: build it with [`Controller::for_`], then
/// [`build`](ControllerBuilder::build) it with its reconciler and
/// [`register`](Controller::register) it with a manager.
pub struct ControllerBuilder {
    primary: Primary,
    name: Option<String>,
    installers: Vec<Installer>,
    watched: Vec<WatchedResource>,
    filters: Vec<Arc<dyn Predicate>>,
    concurrency: usize,
    rate_limiter: Option<Box<dyn RateLimiter<Request>>>,
    reconcile_timeout: Option<Duration>,
    low_priority: i32,
}

impl std::fmt::Debug for ControllerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerBuilder")
            .field("primary", &self.primary.describe)
            .field("name", &self.name)
            .field("watches", &self.installers.len())
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// A built controller, ready to [`register`](Controller::register) with a manager.
pub struct Controller {
    pub(crate) name: String,
    pub(crate) reconciler: Arc<dyn super::worker::ErasedReconciler>,
    pub(crate) installers: Vec<Installer>,
    pub(crate) watched: Vec<WatchedResource>,
    pub(crate) filters: Vec<Arc<dyn Predicate>>,
    pub(crate) concurrency: usize,
    pub(crate) rate_limiter: Option<Box<dyn RateLimiter<Request>>>,
    pub(crate) reconcile_timeout: Option<Duration>,
    pub(crate) low_priority: i32,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("name", &self.name)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

fn is_cluster_scoped<S: 'static>() -> bool {
    std::any::TypeId::of::<S>() == std::any::TypeId::of::<k8s_openapi::ClusterResourceScope>()
}

fn gvr_of(ar: &ApiResource) -> GroupVersionResource {
    GroupVersionResource::gvr(&ar.group, &ar.version, &ar.plural)
}

impl Controller {
    /// A controller of `K` objects (controller-runtime's `For`).
    pub fn for_<K>() -> ControllerBuilder
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
        K::Scope: 'static,
    {
        let primary = Primary {
            group: K::group(&()).to_string(),
            kind: K::kind(&()).to_string(),
            namespaced: !is_cluster_scoped::<K::Scope>(),
            describe: format!("{}.{}", K::kind(&()), K::group(&())),
        };
        let mut builder = ControllerBuilder::new(primary);
        builder.watched.push(WatchedResource::typed::<K>(WatchRole::Primary));
        builder.installers.push(Box::new(|cx: &InstallContext<'_>| {
            install(cx, cx.factory.informer::<K>(), primary_mapper(), true)
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
        let mut builder = ControllerBuilder::new(primary);
        builder.watched.push(WatchedResource::of(resource, WatchRole::Primary));
        builder.installers.push(Box::new(move |cx: &InstallContext<'_>| {
            install(cx, cx.factory.dynamic(&gvr), primary_mapper(), true)
        }));
        builder
    }

    /// The controller's name (its metrics label).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The resources this controller watches, and how ([`rbac_rules`] turns them into the
    /// RBAC rules the controller needs).
    pub fn watched_resources(&self) -> &[WatchedResource] {
        &self.watched
    }

    /// Hands the controller to the manager, which runs it once caches are synced.
    pub fn register(self, manager: &crate::manager::Manager) -> Result<(), crate::manager::ManagerError> {
        manager.add_controller(self)
    }
}

fn primary_mapper<K>() -> Mapper<K> {
    Arc::new(|o: &Cached<K>| vec![Request::new(o.namespace().to_string(), o.name().to_string())])
}

fn owner_mapper<K: Send + Sync>(primary: &Primary) -> Mapper<K> {
    let primary = primary.clone();
    Arc::new(move |o: &Cached<K>| {
        o.owner_references()
            .into_iter()
            .filter(|r| r.controller == Some(true) && r.kind == primary.kind)
            .filter(|r| {
                let group = r.api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
                group == primary.group
            })
            .map(|r| {
                let namespace = if primary.namespaced { o.namespace().to_string() } else { String::new() };
                Request::new(namespace, r.name)
            })
            .collect()
    })
}

impl ControllerBuilder {
    fn new(primary: Primary) -> Self {
        ControllerBuilder {
            primary,
            name: None,
            installers: Vec::new(),
            watched: Vec::new(),
            filters: Vec::new(),
            concurrency: 1,
            rate_limiter: None,
            reconcile_timeout: None,
            low_priority: -100,
        }
    }

    /// Also reconciles the controller owner when an owned `D` changes (controller-runtime's
    /// `Owns`).
    #[must_use]
    pub fn owns<D>(mut self) -> Self
    where
        D: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
    {
        let mapper = owner_mapper::<D>(&self.primary);
        self.watched.push(WatchedResource::typed::<D>(WatchRole::Owned));
        self.installers.push(Box::new(move |cx: &InstallContext<'_>| {
            install(cx, cx.factory.informer::<D>(), mapper, false)
        }));
        self
    }

    /// [`owns`](Self::owns) for a resource without a Rust type.
    #[must_use]
    pub fn owns_dynamic(mut self, resource: &ApiResource) -> Self {
        let mapper = owner_mapper::<DynamicObject>(&self.primary);
        let gvr = gvr_of(resource);
        self.watched.push(WatchedResource::of(resource, WatchRole::Owned));
        self.installers.push(Box::new(move |cx: &InstallContext<'_>| {
            install(cx, cx.factory.dynamic(&gvr), mapper, false)
        }));
        self
    }

    /// Also reconciles what `mapper` returns for each changed `W` (controller-runtime's
    /// `Watches` with `EnqueueRequestsFromMapFunc`).
    #[must_use]
    pub fn watches<W>(mut self, mapper: impl Fn(&Cached<W>) -> Vec<Request> + Send + Sync + 'static) -> Self
    where
        W: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
    {
        let mapper: Mapper<W> = Arc::new(mapper);
        self.watched.push(WatchedResource::typed::<W>(WatchRole::Watched));
        self.installers.push(Box::new(move |cx: &InstallContext<'_>| {
            install(cx, cx.factory.informer::<W>(), mapper, false)
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
        self.watched.push(WatchedResource::of(resource, WatchRole::Watched));
        self.installers.push(Box::new(move |cx: &InstallContext<'_>| {
            install(cx, cx.factory.dynamic(&gvr), mapper, false)
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
        self.watched.push(WatchedResource::of(resource, WatchRole::Watched));
        self.installers.push(Box::new(move |cx: &InstallContext<'_>| {
            install(cx, cx.factory.metadata(&gvr), mapper, false)
        }));
        self
    }

    /// An event filter for every watch of this controller (controller-runtime's
    /// `WithEventFilter`); several filters must all pass.
    #[must_use]
    pub fn with_event_filter(mut self, predicate: impl Predicate) -> Self {
        self.filters.push(Arc::new(predicate));
        self
    }

    /// How many reconciles run at once (default 1); never two for one object.
    #[must_use]
    pub fn concurrency(mut self, workers: usize) -> Self {
        self.concurrency = workers.max(1);
        self
    }

    /// The rate limiter of failed requests (default:
    /// [`default_controller_rate_limiter`](crate::workqueue::default_controller_rate_limiter)).
    #[must_use]
    pub fn rate_limiter(mut self, limiter: impl RateLimiter<Request> + 'static) -> Self {
        self.rate_limiter = Some(Box::new(limiter));
        self
    }

    /// A reconcile taking longer than this is abandoned and retried as an error.
    #[must_use]
    pub fn reconcile_timeout(mut self, timeout: Duration) -> Self {
        self.reconcile_timeout = Some(timeout);
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
        self.low_priority = priority;
        self
    }

    /// The controller, with its reconciler.
    pub fn build<R: Reconciler>(self, reconciler: R) -> Controller {
        let name = self.name.unwrap_or_else(|| self.primary.kind.to_lowercase());
        Controller {
            name,
            reconciler: Arc::new(super::worker::Erased(reconciler)),
            installers: self.installers,
            watched: self.watched,
            filters: self.filters,
            concurrency: self.concurrency,
            rate_limiter: self.rate_limiter,
            reconcile_timeout: self.reconcile_timeout,
            low_priority: self.low_priority,
        }
    }
}

/// Adds a handler mapping `informer`'s events to requests in the controller's queue.
fn install<K>(
    cx: &InstallContext<'_>,
    informer: Arc<SharedIndexInformer<K>>,
    mapper: Mapper<K>,
    primary: bool,
) -> Installed
where
    K: DeserializeOwned + Send + Sync + 'static,
{
    let handler = Enqueue {
        queue: cx.queue.clone(),
        mapper,
        filters: cx.filters.clone(),
        low_priority: cx.low_priority,
        primary,
    };
    // Inline: the handler only maps events to keys of the deduplicating queue, so it runs on
    // the informer's task with nothing buffered and nothing dropped; the queue is bounded by
    // the number of keys, whatever the burst.
    let registration: HandlerRegistration = informer.add_inline_handler(handler);
    // The handler stays for the informer's life (the manager's).
    Installed { has_synced: Box::new(move || registration.has_synced()) }
}

struct Enqueue<K> {
    queue: RateLimitingQueue<Request>,
    mapper: Mapper<K>,
    filters: Vec<Arc<dyn Predicate>>,
    low_priority: i32,
    /// The primary watch: a deletion known only by its key still maps to that key.
    primary: bool,
}

impl<K> Enqueue<K> {
    fn enqueue(&self, obj: &Cached<K>, priority: i32) {
        for request in (self.mapper)(obj) {
            self.queue.add_with_priority(request, priority);
        }
    }
}

impl<K: DeserializeOwned + Send + Sync + 'static> EventHandler<K> for Enqueue<K> {
    fn on_add(&self, obj: &Arc<Cached<K>>, initial: bool) {
        if self.filters.iter().all(|f| f.create(&**obj)) {
            self.enqueue(obj, if initial { self.low_priority } else { 0 });
        }
    }

    fn on_update(&self, old: &Arc<Cached<K>>, new: &Arc<Cached<K>>) {
        if !self.filters.iter().all(|f| f.update(&**old, &**new)) {
            return;
        }
        // A resync delivers the same version again.
        let resync = old.resource_version() == new.resource_version();
        let priority = if resync { self.low_priority } else { 0 };
        let requests = (self.mapper)(new);
        if !resync {
            // The mapping may have changed (an owner reference, a label): the old targets hear
            // of it too. Only those not already queued for the new object, so that a worker
            // that took the new request at once does not reconcile it a second time.
            for request in (self.mapper)(old) {
                if !requests.contains(&request) {
                    self.queue.add_with_priority(request, priority);
                }
            }
        }
        for request in requests {
            self.queue.add_with_priority(request, priority);
        }
    }

    fn on_delete(&self, obj: &DeltaObject<Cached<K>>) {
        match obj {
            DeltaObject::Object(o) | DeltaObject::DeletedFinalStateUnknown { object: Some(o), .. } => {
                if self.filters.iter().all(|f| f.delete(&**o)) {
                    self.enqueue(o, 0);
                }
            }
            DeltaObject::DeletedFinalStateUnknown { key, object: None } if self.primary => {
                let request = match key.split_once('/') {
                    Some((namespace, name)) => Request::new(namespace, name),
                    None => Request::cluster(key.as_str()),
                };
                self.queue.add(request);
            }
            DeltaObject::DeletedFinalStateUnknown { key, object: None } => {
                tracing::debug!(%key, "deleted object with unknown final state; not mapped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rbac_rules_union_the_uses_of_each_resource_and_group_equal_verbs() {
        let resources = [
            WatchedResource::new("example.com", "v1", "widgets", WatchRole::Primary),
            WatchedResource::new("", "v1", "configmaps", WatchRole::Owned),
            WatchedResource::new("", "v1", "secrets", WatchRole::Watched),
            WatchedResource::new("", "v1", "services", WatchRole::Owned),
            // Watched and owned by another controller: the owner's verbs win.
            WatchedResource::new("", "v1", "secrets", WatchRole::Owned),
            WatchedResource::new("apps", "v1", "deployments", WatchRole::Watched),
        ];
        let rules: Vec<(Vec<String>, Vec<String>, Vec<String>)> = rbac_rules(&resources)
            .into_iter()
            .map(|r| (r.api_groups.unwrap(), r.resources.unwrap(), r.verbs))
            .collect();
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let all = s(&["get", "list", "watch", "create", "update", "patch", "delete"]);
        assert_eq!(
            rules,
            vec![
                (s(&[""]), s(&["configmaps", "secrets", "services"]), all),
                (s(&["apps"]), s(&["deployments"]), s(&["get", "list", "watch"])),
                (s(&["example.com"]), s(&["widgets"]), s(&["get", "list", "watch", "update", "patch"])),
                (s(&["example.com"]), s(&["widgets/status"]), s(&["get", "update", "patch"])),
                (s(&["example.com"]), s(&["widgets/finalizers"]), s(&["update"])),
            ]
        );
    }
}
