//! The shared index informer (client-go's `SharedIndexInformer`): a reflector feeding a
//! DeltaFIFO, whose deltas are applied to the [`Indexer`] (the cache listers read) and then
//! handed to every registered event handler.
//!
//! Each handler has its own bounded buffer and task, so a slow or panicking handler delays
//! nobody else. client-go's per-handler buffer is unbounded (a stuck handler grows memory
//! without limit); here, when a handler's buffer is full, its pending notifications are dropped
//! and, as soon as it has room again, it receives the whole cache as `on_add(_, false)`: a
//! level-triggered controller converges exactly as after a resync, and memory stays bounded.
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
}

struct Slot<K> {
    tx: mpsc::Sender<Notification<K>>,
    overflowed: AtomicBool,
}

/// The informer.
pub struct SharedIndexInformer<K> {
    indexer: Arc<Indexer<Cached<K>>>,
    fifo: Arc<DeltaFifo<Cached<K>>>,
    reflector: Arc<Reflector<K>>,
    slots: Mutex<Vec<Arc<Slot<K>>>>,
    started: AtomicBool,
    stop: CancellationToken,
}

impl<K> SharedIndexInformer<K>
where
    K: DeserializeOwned + Send + Sync + 'static,
{
    /// An informer for `client`'s resource (selectors in `options`).
    pub fn new(client: ResourceClient<Cached<K>>, options: ListOptions) -> Arc<Self> {
        Self::with_watch_list(client, options, false)
    }

    /// An informer whose initial state comes through WatchList (falling back to LIST).
    pub fn with_watch_list(
        client: ResourceClient<Cached<K>>,
        options: ListOptions,
        watch_list: bool,
    ) -> Arc<Self> {
        let indexer = Arc::new(Indexer::new());
        let fifo = Arc::new(DeltaFifo::new(Some(indexer.clone() as Arc<dyn KnownObjects<Cached<K>>>)));
        let reflector = Arc::new(Reflector::new(client, options, fifo.clone()).with_watch_list(watch_list));
        Arc::new(SharedIndexInformer {
            indexer,
            fifo,
            reflector,
            slots: Mutex::new(Vec::new()),
            started: AtomicBool::new(false),
            stop: CancellationToken::new(),
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

    /// Registers a handler; after start it first receives the current cache as adds.
    pub fn add_event_handler(&self, handler: impl EventHandler<K>) {
        let (tx, mut rx) = mpsc::channel::<Notification<K>>(HANDLER_BUFFER);
        let slot = Arc::new(Slot { tx, overflowed: AtomicBool::new(false) });
        let indexer = self.indexer.clone();
        let handler = Arc::new(handler);
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                let h = handler.clone();
                let indexer = indexer.clone();
                // A panicking handler is logged and goes on with the next notification.
                let outcome = AssertUnwindSafe(async move {
                    match n {
                        Notification::Add(o, initial) => h.on_add(&o, initial),
                        Notification::Update(old, new) => h.on_update(&old, &new),
                        Notification::Delete(o) => h.on_delete(&o),
                        Notification::Replay => {
                            for o in indexer.list() {
                                h.on_add(&o, false);
                            }
                        }
                    }
                })
                .catch_unwind()
                .await;
                if outcome.is_err() {
                    tracing::error!("an informer event handler panicked; it keeps receiving events");
                }
            }
        });
        if self.started.load(Ordering::SeqCst) {
            let _ = slot.tx.try_send(Notification::Replay);
        }
        self.slots.lock().push(slot);
    }

    fn dispatch(&self, make: impl Fn() -> Notification<K>) {
        for slot in self.slots.lock().iter() {
            if slot.overflowed.load(Ordering::Relaxed) {
                // Drained? Then catch up with the whole cache instead of the dropped events.
                if slot.tx.capacity() == slot.tx.max_capacity()
                    && slot.tx.try_send(Notification::Replay).is_ok()
                {
                    slot.overflowed.store(false, Ordering::Relaxed);
                }
                continue;
            }
            if let Err(mpsc::error::TrySendError::Full(_)) = slot.tx.try_send(make()) {
                tracing::warn!(
                    "an informer event handler is too slow; it will get the whole cache again when it catches up"
                );
                slot.overflowed.store(true, Ordering::Relaxed);
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
        while let Some((_, deltas, initial)) = self.fifo.pop_with_initial().await {
            for delta in deltas {
                match delta.kind {
                    DeltaType::Added | DeltaType::Updated | DeltaType::Replaced | DeltaType::Sync => {
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
        }
        let _ = list_watch.await;
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
