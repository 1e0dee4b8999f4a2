//! From informer events to requests (controller-runtime's `handler` package: `EnqueueRequestForObject`,
//! `EnqueueRequestForOwner`, `EnqueueRequestsFromMapFunc`): each watch of a controller installs
//! an inline [`EventHandler`] on a shared informer that maps an object to [`Request`]s in the
//! controller's deduplicating queue, after the controller's event filters and the watch's own
//! predicates (controller-runtime's `WithEventFilter` and `builder.WithPredicates`).

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::{predicate::Predicate, reconciler::Request};
use crate::{
    cache::{
        Cached, DeltaObject, EventHandler, HandlerRegistration, SharedIndexInformer, SharedInformerFactory,
        Synced,
    },
    workqueue::RateLimitingQueue,
};

/// Maps an object of a watched type to the requests to reconcile.
pub type Mapper<K> = Arc<dyn Fn(&Cached<K>) -> Vec<Request> + Send + Sync>;

/// A watch's installed handler: whether it has been handed the initial list.
pub(crate) struct Installed {
    pub synced: Synced,
}

pub(crate) struct InstallContext<'a> {
    pub factory: &'a Arc<SharedInformerFactory>,
    pub queue: RateLimitingQueue<Request>,
    pub filters: Vec<Arc<dyn Predicate>>,
    pub initial_priority: i32,
}

pub(crate) type Installer = Box<dyn FnOnce(&InstallContext<'_>) -> Installed + Send>;

/// The controller's primary type: what `owns` matches owner references against.
#[derive(Clone, Debug)]
pub(crate) struct Primary {
    pub group: String,
    pub kind: String,
    pub namespaced: bool,
    pub describe: String,
}

pub(crate) fn primary_mapper<K>() -> Mapper<K> {
    Arc::new(|o: &Cached<K>| vec![Request::new(o.namespace().to_string(), o.name().to_string())])
}

pub(crate) fn owner_mapper<K: Send + Sync>(primary: &Primary) -> Mapper<K> {
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

/// Adds a handler mapping `informer`'s events to requests in the controller's queue.
/// Events pass the controller's filters and then this watch's own `predicates`.
pub(crate) fn install<K>(
    cx: &InstallContext<'_>,
    informer: Arc<SharedIndexInformer<K>>,
    mapper: Mapper<K>,
    primary: bool,
    predicates: &[Arc<dyn Predicate>],
) -> Installed
where
    K: DeserializeOwned + Send + Sync + 'static,
{
    let handler = Enqueue {
        queue: cx.queue.clone(),
        mapper,
        filters: cx.filters.iter().chain(predicates).cloned().collect(),
        initial_priority: cx.initial_priority,
        primary,
    };
    // Inline: the handler only maps events to keys of the deduplicating queue, so it runs on
    // the informer's task with nothing buffered and nothing dropped; the queue is bounded by
    // the number of keys, whatever the burst.
    let registration: HandlerRegistration = informer.add_inline_handler(handler);
    // The handler stays for the informer's life (the manager's).
    Installed { synced: registration.synced().clone() }
}

struct Enqueue<K> {
    queue: RateLimitingQueue<Request>,
    mapper: Mapper<K>,
    filters: Vec<Arc<dyn Predicate>>,
    initial_priority: i32,
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
            self.enqueue(obj, if initial { self.initial_priority } else { 0 });
        }
    }

    fn on_update(&self, old: &Arc<Cached<K>>, new: &Arc<Cached<K>>) {
        if !self.filters.iter().all(|f| f.update(&**old, &**new)) {
            return;
        }
        // A resync delivers the same version again.
        let resync = old.resource_version() == new.resource_version();
        let priority = if resync { self.initial_priority } else { 0 };
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
