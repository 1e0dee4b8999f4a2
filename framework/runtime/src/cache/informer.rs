//! The shared index informer (client-go's `SharedIndexInformer`): a reflector feeding a
//! DeltaFIFO, whose deltas are applied to the [`Indexer`] (the cache listers read) and then
//! handed to every registered event handler.
//!
//! Each handler has its own bounded buffer and task, so a slow or panicking handler delays
//! nobody else. client-go's per-handler buffer is unbounded (a stuck handler grows memory
//! without limit); here, when a handler's buffer is full, notifications for it are dropped
//! until it has drained its buffer, and then it receives the whole cache as
//! `on_add(_, false)` (and its registration counts as synced if the informer is): a
//! level-triggered controller converges exactly as after a resync, memory stays bounded, and
//! nothing depends on later events arriving.
//! A handler added after the informer started first receives the current cache as adds.

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
    delta_fifo::{DeltaFifo, DeltaObject, DeltaType, KnownObjects},
    object::Cached,
    reflector::Reflector,
    store::Indexer,
};

/// How an informer lists, and what it keeps.
pub struct InformerOptions<K> {
    /// Remove `metadata.managedFields` before caching (default: no). Measured with the
    /// `informers` benchmark (100k Pods): stripping makes the initial sync ~40% slower (the
    /// bytes are rewritten) and does not lower RSS during a bulk load (the allocator keeps the
    /// freed originals), but it halves the memory of objects once read typed (19 KB instead of
    /// 38 KB per Pod). Turn it on when listers read most objects typed.
    pub strip_managed_fields: bool,
    /// Use WatchList for the initial state (default: no).
    pub watch_list: bool,
    /// Another transform applied before caching (after the stripping).
    pub transform: Option<super::reflector::Transform<K>>,
    /// The resync period of handlers added with [`SharedIndexInformer::add_event_handler`]
    /// (client-go's `defaultEventHandlerResyncPeriod`; default: none).
    pub resync: Option<Duration>,
    /// Called with every list or watch failure (client-go's `SetWatchErrorHandler`).
    pub watch_error_handler: Option<super::reflector::WatchErrorHandler>,
}

impl<K> Default for InformerOptions<K> {
    fn default() -> Self {
        InformerOptions {
            strip_managed_fields: false,
            watch_list: false,
            transform: None,
            resync: None,
            watch_error_handler: None,
        }
    }
}

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
    synced: Arc<AtomicBool>,
}

impl HandlerRegistration {
    /// Whether this handler has been handed every object of the initial list (client-go's
    /// `ResourceEventHandlerRegistration.HasSynced`).
    pub fn has_synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }
}

/// The informer.
pub struct SharedIndexInformer<K> {
    indexer: Arc<Indexer<Cached<K>>>,
    fifo: Arc<DeltaFifo<Cached<K>>>,
    reflector: Arc<Reflector<K>>,
    slots: Mutex<Vec<Arc<Slot<K>>>>,
    started: AtomicBool,
    synced_announced: Arc<AtomicBool>,
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
        let fifo = Arc::new(DeltaFifo::new(Some(indexer.clone() as Arc<dyn KnownObjects<Cached<K>>>)));
        let transform: Option<super::reflector::Transform<K>> =
            match (informer.strip_managed_fields, informer.transform) {
                (true, Some(t)) => Some(Arc::new(move |o: Cached<K>| t(o.without_managed_fields()))),
                (true, None) => Some(Arc::new(|o: Cached<K>| o.without_managed_fields())),
                (false, t) => t,
            };
        let mut reflector = Reflector::new(client, options, fifo.clone())
            .with_watch_list(informer.watch_list)
            .with_transform(transform);
        if let Some(handler) = informer.watch_error_handler {
            reflector = reflector.with_error_handler(handler);
        }
        let reflector = Arc::new(reflector);
        Arc::new(SharedIndexInformer {
            indexer,
            fifo,
            reflector,
            slots: Mutex::new(Vec::new()),
            started: AtomicBool::new(false),
            synced_announced: Arc::new(AtomicBool::new(false)),
            next_id: std::sync::atomic::AtomicU64::new(0),
            stop: CancellationToken::new(),
            default_resync: informer.resync,
        })
    }

    /// The cache.
    pub fn indexer(&self) -> &Arc<Indexer<Cached<K>>> {
        &self.indexer
    }

    /// A typed lister over the cache.
    pub fn lister(&self) -> super::lister::Lister<K> {
        super::lister::Lister::new(self.indexer.clone())
    }

    /// The reflector (e.g. for its last synced resourceVersion).
    pub fn reflector(&self) -> &Arc<Reflector<K>> {
        &self.reflector
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
        let synced = Arc::new(AtomicBool::new(false));
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
        let informer_synced = self.synced_announced.clone();
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                let replay = match n {
                    Notification::Synced => {
                        task_synced.store(true, Ordering::SeqCst);
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
                    if informer_synced.load(Ordering::SeqCst) {
                        task_synced.store(true, Ordering::SeqCst);
                    }
                }
            }
        });
        if self.started.load(Ordering::SeqCst) {
            let _ = slot.tx.try_send(Notification::Replay);
            if self.synced_announced.load(Ordering::SeqCst) {
                let _ = slot.tx.try_send(Notification::Synced);
            }
        }
        self.slots.lock().push(slot);
        HandlerRegistration { id, synced }
    }

    /// Removes a handler: it gets nothing more (what is already in its buffer is still handed
    /// over).
    pub fn remove_event_handler(&self, registration: &HandlerRegistration) {
        self.slots.lock().retain(|s| s.id != registration.id);
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

    /// Runs the reflector and the processing loop until [`SharedIndexInformer::shutdown`].
    pub async fn run(self: Arc<Self>) {
        self.started.store(true, Ordering::SeqCst);
        let reflector = self.reflector.clone();
        let stop = self.stop.clone();
        let list_watch = tokio::spawn(async move { reflector.run(stop).await });
        let fifo = self.fifo.clone();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            fifo.close();
        });
        let resyncer = {
            let this = self.clone();
            tokio::spawn(async move { this.resync_loop().await })
        };
        // An empty initial list is never popped: announce the sync when it is seen.
        let empty_sync = {
            let this = self.clone();
            tokio::spawn(async move {
                while !this.synced_announced.load(Ordering::SeqCst) && !this.stop.is_cancelled() {
                    if this.fifo.initial_list_was_empty() {
                        this.announce_synced();
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        while let Some((_, deltas, initial)) = self.fifo.pop_with_initial().await {
            for delta in deltas {
                match delta.kind {
                    DeltaType::Sync => {
                        let Some(new) = delta.object.object().cloned() else { continue };
                        let old = self.indexer.upsert(new.clone()).unwrap_or_else(|| new.clone());
                        self.dispatch_to(|| Notification::Update(old.clone(), new.clone()), true);
                    }
                    DeltaType::Added | DeltaType::Updated | DeltaType::Replaced => {
                        let Some(new) = delta.object.object().cloned() else { continue };
                        match self.indexer.upsert(new.clone()) {
                            Some(old) => self.dispatch(|| Notification::Update(old.clone(), new.clone())),
                            None => self.dispatch(|| Notification::Add(new.clone(), initial)),
                        }
                    }
                    DeltaType::Deleted => {
                        let key = match &delta.object {
                            DeltaObject::Object(o) => super::store::CacheObject::key(o.as_ref()),
                            DeltaObject::DeletedFinalStateUnknown { key, .. } => key.clone(),
                        };
                        self.indexer.delete(&key);
                        let object = delta.object.clone();
                        self.dispatch(|| Notification::Delete(object.clone()));
                    }
                }
            }
            if self.fifo.has_synced() {
                self.announce_synced();
            }
        }
        resyncer.abort();
        empty_sync.abort();
        let _ = list_watch.await;
    }

    /// Tells every handler the initial list is complete (once).
    fn announce_synced(&self) {
        if self.synced_announced.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
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
            if !self.fifo.has_synced() {
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
                self.fifo.resync();
            }
        }
    }

    /// Whether the initial list has been processed into the cache.
    pub fn has_synced(&self) -> bool {
        self.fifo.has_synced()
    }

    /// Waits until synced or `timeout`; returns whether it synced.
    pub async fn wait_for_cache_sync(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.has_synced() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Stops the reflector and the processing loop.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }
}
