//! The shared index informer (client-go's `SharedIndexInformer`): a reflector feeding a
//! DeltaFIFO, whose deltas are applied to the [`Indexer`] (the cache listers read) and then
//! handed to every registered event handler.
//!
//! Two kinds of handlers:
//! - [`SharedIndexInformer::add_event_handler`]: each handler has its own bounded buffer and
//!   task, so a slow or panicking handler delays nobody else. client-go's per-handler buffer is
//!   unbounded (a stuck handler grows memory without limit); here, when a handler's buffer is
//!   full, notifications for it are dropped until it has drained its buffer, and then it
//!   receives the whole cache as `on_add(_, false)` (and its registration counts as synced if
//!   the informer is): a level-triggered handler converges exactly as after a resync, memory
//!   stays bounded, and nothing depends on later events arriving.
//! - [`SharedIndexInformer::add_inline_handler`]: called on the informer's own task, in order,
//!   with nothing buffered and nothing dropped. For handlers that only turn events into keys of
//!   a deduplicating queue (a controller's): their memory is bounded by the number of keys, so
//!   no burst or relist can make them lose events or replay the cache.
//!
//! A handler added after the informer started first receives the current cache as adds.
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let config = server.kubeconfig().config;
//! use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
//!
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use krust_client::{Clientset, CreateOptions};
//! use krust_runtime::cache::{Cached, EventHandler, SharedInformerFactory};
//!
//! struct CountAdds(Arc<AtomicUsize>);
//! impl EventHandler<ConfigMap> for CountAdds {
//!     fn on_add(&self, _obj: &Arc<Cached<ConfigMap>>, _initial: bool) {
//!         self.0.fetch_add(1, Ordering::SeqCst);
//!     }
//! }
//!
//! let clientset = Clientset::new(&config)?;
//! let factory = SharedInformerFactory::new(clientset.rest());
//! let informer = factory.informer::<ConfigMap>();
//! let adds = Arc::new(AtomicUsize::new(0));
//! let registration = informer.add_event_handler(CountAdds(adds.clone()));
//! factory.start();
//! registration.wait_synced().await;
//!
//! let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": "new"}}))?;
//! clientset.core_v1().config_maps("default").create(&cm, &CreateOptions::default()).await?;
//! for _ in 0..500 {
//!     if adds.load(Ordering::SeqCst) > 0 { break }
//!     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//! }
//! assert!(adds.load(Ordering::SeqCst) >= 1, "the handler heard of the new ConfigMap");
//! factory.shutdown();
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures_util::FutureExt;
use krust_client::{ListOptions, ResourceClient};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    Synced,
    delta_fifo::{DeltaFifo, DeltaObject, DeltaType, KnownObjects},
    object::Cached,
    reflector::Reflector,
    store::Indexer,
};

/// How an informer lists, and what it keeps.
pub struct InformerOptions<K> {
    /// Drop `metadata.managedFields` while decoding (default: no here; the [`Manager`]'s cache
    /// turns it on). It is dropped in the pass that decodes each event, so it costs no extra
    /// time, and it saves about a fifth of a typical object's bytes.
    ///
    /// [`Manager`]: crate::manager::Manager
    pub strip_managed_fields: bool,
    /// Further fields to drop while decoding (e.g. a large annotation, or `status` of objects
    /// read only for their spec); client-go's `TransformFunc` for the common case, without a
    /// second pass over the bytes.
    pub drop_fields: Vec<super::scan::FieldPath>,
    /// How many typed objects the informer's listers keep decoded for repeated reads (default
    /// [`DEFAULT_RECENTLY_DECODED`](super::lister::DEFAULT_RECENTLY_DECODED); 0: decode every read).
    pub recently_decoded: usize,
    /// Use WatchList for the initial state (default: no).
    pub watch_list: bool,
    /// A transform applied to every decoded object before caching (after the dropped fields);
    /// it rewrites the object, so prefer [`drop_fields`](Self::drop_fields) where it suffices.
    pub transform: Option<super::reflector::Transform<K>>,
    /// The resync period of handlers added with [`SharedIndexInformer::add_event_handler`]
    /// (client-go's `defaultEventHandlerResyncPeriod`; default: none).
    pub resync: Option<Duration>,
    /// Called with every list or watch failure (client-go's `SetWatchErrorHandler`).
    pub watch_error_handler: Option<super::reflector::WatchErrorHandler>,
    /// Watch these namespaces only (controller-runtime's `DefaultNamespaces`/`ByObject`
    /// namespaces): one list-and-watch per namespace, all into one cache, each relist replacing
    /// only its namespace's objects; synced when every namespace has been listed. Empty (the
    /// default): the client's own scope.
    pub namespaces: Vec<String>,
}

impl<K> Default for InformerOptions<K> {
    fn default() -> Self {
        InformerOptions {
            strip_managed_fields: false,
            drop_fields: Vec::new(),
            recently_decoded: super::lister::DEFAULT_RECENTLY_DECODED,
            watch_list: false,
            transform: None,
            resync: None,
            watch_error_handler: None,
            namespaces: Vec::new(),
        }
    }
}

/// The objects of one namespace in the cache: what a namespace's DeltaFIFO knows (its relists
/// delete only within it).
struct NamespaceView<K> {
    indexer: Arc<Indexer<Cached<K>>>,
    /// `namespace/`.
    prefix: String,
}

impl<K: Send + Sync + 'static> KnownObjects<Cached<K>> for NamespaceView<K> {
    fn list_keys(&self) -> Vec<String> {
        self.indexer.list_keys().into_iter().filter(|k| k.starts_with(&self.prefix)).collect()
    }
    fn get_by_key(&self, key: &str) -> Option<Arc<Cached<K>>> {
        if key.starts_with(&self.prefix) { self.indexer.get(key) } else { None }
    }
    fn is_empty(&self) -> bool {
        !self.indexer.list_keys().iter().any(|k| k.starts_with(&self.prefix))
    }
}

/// One list-and-watch into the cache: a reflector and its DeltaFIFO.
struct Shard<K> {
    fifo: Arc<DeltaFifo<Cached<K>>>,
    reflector: Arc<Reflector<K>>,
}

/// How many keys the informer takes from the DeltaFIFO at once.
const POP_BATCH: usize = 256;

/// Default capacity of each handler's buffer.
pub const HANDLER_BUFFER: usize = 1024;

/// What a handler is told.
pub trait EventHandler<K>: Send + Sync + 'static {
    /// An object appeared (`initial`: part of the initial list).
    fn on_add(&self, _obj: &Arc<Cached<K>>, _initial: bool) {}
    /// An object changed (or a relist/resync delivered it again).
    fn on_update(&self, _old: &Arc<Cached<K>>, _new: &Arc<Cached<K>>) {}
    /// An object was deleted; a tombstone when its final state is unknown.
    fn on_delete(&self, _obj: &DeltaObject<Cached<K>>) {}
}

enum Notification<K> {
    Add(Arc<Cached<K>>, bool),
    Update(Arc<Cached<K>>, Arc<Cached<K>>),
    Delete(DeltaObject<Cached<K>>),
    /// Replay the cache as adds (after an overflow, or for a late handler).
    Replay,
    /// Everything of the initial list was delivered before this marker.
    Synced,
}

struct Slot<K> {
    id: u64,
    tx: mpsc::Sender<Notification<K>>,
    /// Notifications were dropped: the handler must be handed the whole cache.
    overflowed: Arc<AtomicBool>,
    resync: Option<Duration>,
    next_resync: Mutex<tokio::time::Instant>,
    /// This handler is due for the Sync deltas of the current resync round.
    resync_due: AtomicBool,
}

/// Hands one notification to a handler; a panic is logged and contained.
async fn deliver<K: Send + Sync + 'static>(handler: &Arc<impl EventHandler<K>>, n: Notification<K>) {
    let h = handler.clone();
    let outcome = AssertUnwindSafe(async move {
        match n {
            Notification::Add(o, initial) => h.on_add(&o, initial),
            Notification::Update(old, new) => h.on_update(&old, &new),
            Notification::Delete(o) => h.on_delete(&o),
            Notification::Replay | Notification::Synced => {}
        }
    })
    .catch_unwind()
    .await;
    if outcome.is_err() {
        tracing::error!("an informer event handler panicked; it keeps receiving events");
    }
}

/// A registered handler: its own `has_synced`, and the handle to remove it.
#[derive(Clone, Debug)]
pub struct HandlerRegistration {
    id: u64,
    synced: Synced,
}

impl HandlerRegistration {
    /// Whether this handler has been handed every object of the initial list (client-go's
    /// `ResourceEventHandlerRegistration.HasSynced`).
    pub fn has_synced(&self) -> bool {
        self.synced.is_set()
    }

    /// Waits until [`has_synced`](Self::has_synced).
    pub async fn wait_synced(&self) {
        self.synced.wait().await
    }

    /// The handler's sync signal.
    pub fn synced(&self) -> &Synced {
        &self.synced
    }
}

/// A handler called on the informer's task.
struct Inline<K> {
    id: u64,
    handler: Box<dyn EventHandler<K>>,
    synced: Synced,
}

/// Calls an inline handler; a panic is logged and contained.
fn call_inline(what: impl FnOnce()) {
    if std::panic::catch_unwind(AssertUnwindSafe(what)).is_err() {
        tracing::error!("an informer event handler panicked; it keeps receiving events");
    }
}

/// The informer.
pub struct SharedIndexInformer<K> {
    indexer: Arc<Indexer<Cached<K>>>,
    recent: Arc<super::decoded::RecentlyDecoded<K>>,
    /// One per watched namespace (one in all when the client's scope is used).
    shards: Vec<Shard<K>>,
    slots: Mutex<Vec<Arc<Slot<K>>>>,
    inline: Mutex<Vec<Inline<K>>>,
    /// Held while popped deltas are applied, so that the sync is never announced in the middle.
    processing: Mutex<()>,
    started: AtomicBool,
    /// Set when the initial list has been processed into the cache (and announced).
    synced: Synced,
    next_id: std::sync::atomic::AtomicU64,
    stop: CancellationToken,
    default_resync: Option<Duration>,
}

impl<K> SharedIndexInformer<K>
where
    K: DeserializeOwned + Send + Sync + 'static,
{
    /// An informer for `client`'s resource (selectors in `options`), with the default
    /// [`InformerOptions`]: objects cached as sent, LIST for the initial state.
    pub fn new(client: ResourceClient<Cached<K>>, options: ListOptions) -> Arc<Self> {
        Self::with_options(client, options, InformerOptions::default())
    }

    /// An informer whose initial state comes through WatchList (falling back to LIST).
    pub fn with_watch_list(
        client: ResourceClient<Cached<K>>,
        options: ListOptions,
        watch_list: bool,
    ) -> Arc<Self> {
        Self::with_options(client, options, InformerOptions { watch_list, ..Default::default() })
    }

    /// An informer with explicit options.
    pub fn with_options(
        client: ResourceClient<Cached<K>>,
        options: ListOptions,
        informer: InformerOptions<K>,
    ) -> Arc<Self> {
        let indexer = Arc::new(Indexer::new());
        let mut drops = informer.drop_fields;
        if informer.strip_managed_fields {
            drops.push(super::scan::FieldPath::managed_fields());
        }
        let mut namespaces: Vec<Option<String>> = informer.namespaces.into_iter().map(Some).collect();
        namespaces.sort();
        namespaces.dedup();
        let sharded = !namespaces.is_empty();
        if !sharded {
            namespaces.push(None);
        }
        let shards = namespaces
            .into_iter()
            .map(|namespace| {
                let (known, client): (Arc<dyn KnownObjects<Cached<K>>>, _) = match namespace {
                    Some(ns) if sharded => (
                        Arc::new(NamespaceView { indexer: indexer.clone(), prefix: format!("{ns}/") }),
                        client.in_namespace(Some(&ns)),
                    ),
                    _ => (indexer.clone(), client.clone()),
                };
                let fifo = Arc::new(DeltaFifo::new(Some(known)));
                let mut reflector = Reflector::new(client, options.clone(), fifo.clone())
                    .with_watch_list(informer.watch_list)
                    .with_drop_fields(&drops)
                    .with_transform(informer.transform.clone());
                if let Some(handler) = &informer.watch_error_handler {
                    reflector = reflector.with_error_handler(handler.clone());
                }
                Shard { fifo, reflector: Arc::new(reflector) }
            })
            .collect();
        Arc::new(SharedIndexInformer {
            indexer,
            recent: Arc::new(super::decoded::RecentlyDecoded::new(informer.recently_decoded)),
            shards,
            slots: Mutex::new(Vec::new()),
            inline: Mutex::new(Vec::new()),
            processing: Mutex::new(()),
            started: AtomicBool::new(false),
            synced: Synced::new(),
            next_id: std::sync::atomic::AtomicU64::new(0),
            stop: CancellationToken::new(),
            default_resync: informer.resync,
        })
    }

    /// The cache.
    pub fn indexer(&self) -> &Arc<Indexer<Cached<K>>> {
        &self.indexer
    }

    /// A typed lister over the cache (listers of one informer share its recently decoded
    /// objects).
    pub fn lister(&self) -> super::lister::Lister<K> {
        super::lister::Lister::shared(self.indexer.clone(), self.recent.clone())
    }

    /// The flag [`has_synced`](Self::has_synced) reads (for listers that refuse to answer
    /// before the sync).
    pub fn synced(&self) -> &Synced {
        &self.synced
    }

    /// The reflector (e.g. for its last synced resourceVersion); the first namespace's when
    /// the informer watches several ([`reflectors`](Self::reflectors)).
    pub fn reflector(&self) -> &Arc<Reflector<K>> {
        &self.shards[0].reflector
    }

    /// Every reflector: one per watched namespace, or the one.
    pub fn reflectors(&self) -> impl Iterator<Item = &Arc<Reflector<K>>> {
        self.shards.iter().map(|s| &s.reflector)
    }

    /// Whether every namespace's initial list has been popped from its DeltaFIFO.
    fn fifos_synced(&self) -> bool {
        self.shards.iter().all(|s| s.fifo.has_synced())
    }

    /// Registers a handler (resynced every [`InformerOptions::resync`], if set); after start
    /// it first receives the current cache as adds.
    pub fn add_event_handler(&self, handler: impl EventHandler<K>) -> HandlerRegistration {
        self.add_event_handler_with_resync(handler, self.default_resync)
    }

    /// Registers a handler that is also handed every cached object as `on_update(obj, obj)`
    /// every `resync` period (client-go's per-handler resync).
    pub fn add_event_handler_with_resync(
        &self,
        handler: impl EventHandler<K>,
        resync: Option<Duration>,
    ) -> HandlerRegistration {
        let (tx, mut rx) = mpsc::channel::<Notification<K>>(HANDLER_BUFFER);
        let synced = Synced::new();
        let overflowed = Arc::new(AtomicBool::new(false));
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let slot = Arc::new(Slot {
            id,
            tx,
            overflowed: overflowed.clone(),
            resync: resync.filter(|d| !d.is_zero()),
            next_resync: Mutex::new(tokio::time::Instant::now() + resync.unwrap_or_default()),
            resync_due: AtomicBool::new(false),
        });
        let indexer = self.indexer.clone();
        let handler = Arc::new(handler);
        let task_synced = synced.clone();
        let informer_synced = self.synced.clone();
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                let replay = match n {
                    Notification::Synced => {
                        task_synced.set();
                        continue;
                    }
                    Notification::Replay => true,
                    other => {
                        deliver(&handler, other).await;
                        false
                    }
                };
                // After an overflow, once the buffer is drained (or on request): the whole
                // cache. The flag is cleared before the cache is read, so that nothing changed
                // after the read is lost (it is dispatched normally again).
                let overflow = overflowed.load(Ordering::SeqCst) && rx.is_empty();
                if replay || overflow {
                    overflowed.store(false, Ordering::SeqCst);
                    let objects = indexer.list();
                    let h = handler.clone();
                    let outcome = AssertUnwindSafe(async move {
                        for o in objects {
                            h.on_add(&o, false);
                        }
                    })
                    .catch_unwind()
                    .await;
                    if outcome.is_err() {
                        tracing::error!("an informer event handler panicked; it keeps receiving events");
                    }
                    // The Synced marker may have been among the dropped notifications.
                    if informer_synced.is_set() {
                        task_synced.set();
                    }
                }
            }
        });
        if self.started.load(Ordering::SeqCst) {
            let _ = slot.tx.try_send(Notification::Replay);
            if self.synced.is_set() {
                let _ = slot.tx.try_send(Notification::Synced);
            }
        }
        self.slots.lock().push(slot);
        HandlerRegistration { id, synced }
    }

    /// Registers a handler called on the informer's own task, for every event in order, with
    /// nothing buffered and nothing dropped (see the module doc). It must be quick and must not
    /// block or wait (no I/O, no `.await` on other tasks, no locks held elsewhere for long) and
    /// must not add or remove handlers of this informer. After start it first receives the
    /// current cache as adds.
    pub fn add_inline_handler(&self, handler: impl EventHandler<K>) -> HandlerRegistration {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let synced = Synced::new();
        let mut inline = self.inline.lock();
        if self.started.load(Ordering::SeqCst) {
            // Under the lock the informer's task cannot dispatch: nothing is missed between
            // this replay and the next event.
            for o in self.indexer.list() {
                call_inline(|| handler.on_add(&o, false));
            }
            if self.synced.is_set() {
                synced.set();
            }
        }
        inline.push(Inline { id, handler: Box::new(handler), synced: synced.clone() });
        HandlerRegistration { id, synced }
    }

    /// Removes a handler: it gets nothing more (what is already in its buffer is still handed
    /// over).
    pub fn remove_event_handler(&self, registration: &HandlerRegistration) {
        self.slots.lock().retain(|s| s.id != registration.id);
        self.inline.lock().retain(|s| s.id != registration.id);
    }

    /// Hands a delta's notification to the inline handlers (`resync_only`: none, they are not
    /// resynced).
    fn dispatch_inline(&self, notify: impl Fn(&dyn EventHandler<K>)) {
        for slot in self.inline.lock().iter() {
            call_inline(|| notify(&*slot.handler));
        }
    }

    fn dispatch(&self, make: impl Fn() -> Notification<K>) {
        self.dispatch_to(make, false);
    }

    /// `resync_only`: only to the handlers due for the current resync round.
    fn dispatch_to(&self, make: impl Fn() -> Notification<K>, resync_only: bool) {
        for slot in self.slots.lock().iter() {
            if resync_only && !slot.resync_due.load(Ordering::Relaxed) {
                continue;
            }
            if slot.overflowed.load(Ordering::SeqCst) {
                // The handler catches up with the whole cache once it has drained its buffer.
                continue;
            }
            if let Err(mpsc::error::TrySendError::Full(_)) = slot.tx.try_send(make()) {
                tracing::warn!(
                    "an informer event handler is too slow; it will get the whole cache again when it catches up"
                );
                slot.overflowed.store(true, Ordering::SeqCst);
                // If the handler drained its buffer meanwhile (and saw no overflow), this wakes
                // it up; if the buffer is still full, it sees the flag when it drains.
                let _ = slot.tx.try_send(Notification::Replay);
            }
        }
    }

    /// Runs the reflectors and the processing loops until [`SharedIndexInformer::shutdown`].
    pub async fn run(self: Arc<Self>) {
        self.started.store(true, Ordering::SeqCst);
        let resyncer = {
            let this = self.clone();
            tokio::spawn(async move { this.resync_loop().await })
        };
        // The initial lists may leave nothing to pop (empty, or popped while they were listed).
        let synced_watch = {
            let this = self.clone();
            tokio::spawn(async move {
                futures_util::future::join_all(this.shards.iter().map(|s| s.fifo.wait_synced())).await;
                let _processing = this.processing.lock();
                this.announce_synced();
            })
        };
        futures_util::future::join_all(self.shards.iter().map(|shard| self.run_shard(shard))).await;
        resyncer.abort();
        synced_watch.abort();
    }

    /// One reflector and the loop applying what its DeltaFIFO holds.
    async fn run_shard(&self, shard: &Shard<K>) {
        let reflector = shard.reflector.clone();
        let stop = self.stop.clone();
        let list_watch = async move { reflector.run(stop).await };
        let fifo = shard.fifo.clone();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            fifo.close();
        });
        let process = async {
            loop {
                let batch = shard.fifo.pop_batch(POP_BATCH).await;
                if batch.is_empty() {
                    break;
                }
                {
                    let _processing = self.processing.lock();
                    for popped in batch {
                        for delta in popped.deltas {
                            self.apply(delta, popped.initial);
                        }
                    }
                    if self.fifos_synced() {
                        self.announce_synced();
                    }
                }
                // Let the reflector (polled by this same task) go on between batches.
                tokio::task::yield_now().await;
            }
        };
        // The reflector and the processing loop are polled by one task: decoding, applying and
        // freeing happen on one thread at a time (no wake-ups across threads, no allocator
        // traffic between them), which costs less CPU per event than two threads handing
        // objects over; the DeltaFIFO between them keeps its semantics.
        tokio::join!(list_watch, process);
    }

    /// Applies one delta to the cache and tells the handlers.
    fn apply(&self, delta: super::delta_fifo::Delta<Cached<K>>, initial: bool) {
        match delta.kind {
            DeltaType::Sync => {
                let Some(new) = delta.object.object().cloned() else { return };
                let old = self.indexer.upsert(new.clone()).unwrap_or_else(|| new.clone());
                self.dispatch_to(|| Notification::Update(old.clone(), new.clone()), true);
            }
            DeltaType::Added | DeltaType::Updated | DeltaType::Replaced => {
                let Some(new) = delta.object.object().cloned() else { return };
                match self.indexer.upsert(new.clone()) {
                    Some(old) => {
                        self.dispatch_inline(|h| h.on_update(&old, &new));
                        self.dispatch(|| Notification::Update(old.clone(), new.clone()));
                    }
                    None => {
                        self.dispatch_inline(|h| h.on_add(&new, initial));
                        self.dispatch(|| Notification::Add(new.clone(), initial));
                    }
                }
            }
            DeltaType::Deleted => {
                let key = match &delta.object {
                    DeltaObject::Object(o) => super::store::CacheObject::key(o.as_ref()),
                    DeltaObject::DeletedFinalStateUnknown { key, .. } => key.clone(),
                };
                self.indexer.delete(&key);
                let object = delta.object;
                self.dispatch_inline(|h| h.on_delete(&object));
                self.dispatch(|| Notification::Delete(object.clone()));
            }
        }
    }

    /// Tells every handler the initial list is complete (once).
    fn announce_synced(&self) {
        let inline = self.inline.lock();
        // Under the inline handlers' lock: announced once, inline registrations first.
        if !self.synced.is_set() {
            for slot in inline.iter() {
                slot.synced.set();
            }
            self.synced.set();
            drop(inline);
            self.dispatch(|| Notification::Synced);
        }
    }

    /// Starts a resync round whenever a handler with a resync period is due.
    async fn resync_loop(&self) {
        loop {
            let periods: Vec<Duration> = self.slots.lock().iter().filter_map(|s| s.resync).collect();
            let tick =
                periods.iter().min().copied().unwrap_or(Duration::from_secs(1)).min(Duration::from_secs(1));
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(tick) => {}
            }
            if !self.fifos_synced() {
                continue;
            }
            let now = tokio::time::Instant::now();
            let mut any = false;
            for slot in self.slots.lock().iter() {
                let due = match slot.resync {
                    Some(period) => {
                        let mut next = slot.next_resync.lock();
                        if now >= *next {
                            *next = now + period;
                            true
                        } else {
                            false
                        }
                    }
                    None => false,
                };
                slot.resync_due.store(due, Ordering::Relaxed);
                any |= due;
            }
            if any {
                for shard in &self.shards {
                    shard.fifo.resync();
                }
            }
        }
    }

    /// Whether the initial list has been processed into the cache.
    pub fn has_synced(&self) -> bool {
        self.synced.is_set()
    }

    /// Waits until the initial list has been processed into the cache.
    pub async fn wait_synced(&self) {
        self.synced.wait().await
    }

    /// Waits until synced or `timeout`; returns whether it synced.
    pub async fn wait_for_cache_sync(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.wait_synced()).await.is_ok()
    }

    /// Stops the reflector and the processing loop.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }
}
