//! DeltaFIFO (client-go's `cache.DeltaFIFO`): the queue between the reflector and the informer.
//! It keeps, per object key, the list of changes ("deltas") not yet processed, and hands the
//! whole list of one key to the processor at a time.
//!
//! Invariants (each has a test below):
//! 1. A key is in the queue at most once, in the order it was first added since it was last
//!    popped; its deltas accumulate in arrival order.
//! 2. Two consecutive `Deleted` deltas of a key collapse into one, keeping the more informative
//!    (an object over a `DeletedFinalStateUnknown` tombstone).
//! 3. `pop` removes a key and hands over all of its deltas at once; a key added again after the
//!    pop starts a new list.
//! 4. A relist (`replace`, or page by page with [`DeltaFifo::begin_replace`]) queues
//!    `Replaced` for every listed object and, when it finishes, `Deleted(DeletedFinalStateUnknown)`
//!    for every key that is known (in the store or queued) but was not listed: deletions
//!    missed while disconnected arrive as tombstones. A relist that does not finish (a failed
//!    page) queues no tombstones.
//! 5. Deleting a key that is neither known nor queued is a no-op.
//! 6. `has_synced` is true once the first relist finished (or an add happened) and every item
//!    it queued has been popped; items popped before that are part of the initial list.
//! 7. `resync` queues `Sync` for every known object that has no pending delta.
//! 8. `close` wakes every `pop`; items already queued are still popped, then `pop` returns None.
//! 9. [`DeltaFifo::wait_for_room`] returns once at most the given number of keys are queued: a
//!    reflector waits on it between pages, so a relist never holds more than a few pages of
//!    new objects beside the cache.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//!
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use krust_runtime::cache::{Cached, DeltaFifo, DeltaType};
//!
//! let cm = |rv: &str| -> Result<Arc<Cached<ConfigMap>>, serde_json::Error> {
//!     let json = format!(r#"{{"metadata":{{"name":"c","namespace":"default","resourceVersion":"{rv}"}}}}"#);
//!     Ok(Arc::new(Cached::from_json(json.as_bytes())?))
//! };
//! let fifo = DeltaFifo::new(None);
//! fifo.add(cm("1")?);
//! fifo.update(cm("2")?);
//! // One key, its changes in order: a consumer sees every delta of an object at once.
//! let (key, deltas) = fifo.pop().await.expect("queued");
//! assert_eq!(key, "default/c");
//! let kinds: Vec<DeltaType> = deltas.iter().map(|d| d.kind).collect();
//! assert_eq!(kinds, [DeltaType::Added, DeltaType::Updated]);
//! fifo.close();
//! assert!(fifo.pop().await.is_none());
//! # Ok(()) }
//! ```

use std::{
    collections::VecDeque,
    hash::BuildHasher,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use hashbrown::{DefaultHashBuilder, HashSet, HashTable};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{
    Synced,
    store::{CacheObject, Indexer},
};

/// The kind of a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaType {
    /// A new object.
    Added,
    /// A changed object.
    Updated,
    /// A deleted object.
    Deleted,
    /// An object listed by a relist (it may or may not have changed).
    Replaced,
    /// A periodic resync of an unchanged object.
    Sync,
}

/// The object of a delta: the object, or a tombstone for a deletion whose final state is unknown.
#[derive(Debug)]
pub enum DeltaObject<T> {
    /// The object.
    Object(Arc<T>),
    /// client-go's `DeletedFinalStateUnknown`: the object was deleted while we were not watching;
    /// `object` is the last state we knew, if any.
    DeletedFinalStateUnknown {
        /// The key of the deleted object.
        key: String,
        /// Its last known state.
        object: Option<Arc<T>>,
    },
}

impl<T> Clone for DeltaObject<T> {
    fn clone(&self) -> Self {
        match self {
            DeltaObject::Object(o) => DeltaObject::Object(o.clone()),
            DeltaObject::DeletedFinalStateUnknown { key, object } => {
                DeltaObject::DeletedFinalStateUnknown { key: key.clone(), object: object.clone() }
            }
        }
    }
}

impl<T> DeltaObject<T> {
    /// The object, or the tombstone's last known state.
    pub fn object(&self) -> Option<&Arc<T>> {
        match self {
            DeltaObject::Object(o) => Some(o),
            DeltaObject::DeletedFinalStateUnknown { object, .. } => object.as_ref(),
        }
    }
}

/// One change of one object.
#[derive(Debug)]
pub struct Delta<T> {
    /// What happened.
    pub kind: DeltaType,
    /// To what.
    pub object: DeltaObject<T>,
}

impl<T> Clone for Delta<T> {
    fn clone(&self) -> Self {
        Delta { kind: self.kind, object: self.object.clone() }
    }
}

/// The objects the informer already knows (its store), for deletion detection and resync.
pub trait KnownObjects<T>: Send + Sync {
    /// Every known key.
    fn list_keys(&self) -> Vec<String>;
    /// A known object.
    fn get_by_key(&self, key: &str) -> Option<Arc<T>>;
    /// A known object by namespace (`""`: cluster-scoped) and name.
    fn get_by_name(&self, namespace: &str, name: &str) -> Option<Arc<T>> {
        if namespace.is_empty() {
            self.get_by_key(name)
        } else {
            self.get_by_key(&format!("{namespace}/{name}"))
        }
    }
    /// Whether nothing is known.
    fn is_empty(&self) -> bool {
        self.list_keys().is_empty()
    }
}

impl<T: CacheObject> KnownObjects<T> for Indexer<T> {
    fn list_keys(&self) -> Vec<String> {
        Indexer::list_keys(self)
    }
    fn get_by_key(&self, key: &str) -> Option<Arc<T>> {
        self.get(key)
    }
    fn get_by_name(&self, namespace: &str, name: &str) -> Option<Arc<T>> {
        Indexer::get_by_name(self, namespace, name)
    }
    fn is_empty(&self) -> bool {
        Indexer::is_empty(self)
    }
}

/// A queued key: an object of that key (its namespace and name are the key), or the key itself
/// for a tombstone known by key only. No key string is allocated for objects.
enum QueuedKey<T> {
    Object(Arc<T>),
    Key(Box<str>),
}

impl<T: CacheObject> QueuedKey<T> {
    fn ident(&self) -> (&[u8], &[u8]) {
        match self {
            QueuedKey::Object(o) => o.namespace_and_name(),
            QueuedKey::Key(k) => split_key(k),
        }
    }

    fn to_key(&self) -> String {
        match self {
            QueuedKey::Object(o) => o.key(),
            QueuedKey::Key(k) => k.to_string(),
        }
    }

    fn share(&self) -> Self {
        match self {
            QueuedKey::Object(o) => QueuedKey::Object(o.clone()),
            QueuedKey::Key(k) => QueuedKey::Key(k.clone()),
        }
    }
}

fn split_key(key: &str) -> (&[u8], &[u8]) {
    let (namespace, name) = key.split_once('/').unwrap_or(("", key));
    (namespace.as_bytes(), name.as_bytes())
}

/// The deltas of one key: the first inline (most keys have one when popped).
pub(crate) enum Deltas<T> {
    One(Delta<T>),
    Many(Vec<Delta<T>>),
}

impl<T> Deltas<T> {
    fn last(&self) -> Option<&Delta<T>> {
        match self {
            Deltas::One(d) => Some(d),
            Deltas::Many(v) => v.last(),
        }
    }

    /// Appends a delta; two consecutive deletions collapse into the more informative
    /// (invariant 2).
    fn push(&mut self, delta: Delta<T>) {
        let both_deleted =
            delta.kind == DeltaType::Deleted && self.last().is_some_and(|l| l.kind == DeltaType::Deleted);
        if both_deleted {
            if is_tombstone(&delta) {
                return;
            }
            match self {
                Deltas::One(d) => *d = delta,
                Deltas::Many(v) => {
                    if let Some(last) = v.last_mut() {
                        *last = delta;
                    }
                }
            }
            return;
        }
        match self {
            Deltas::Many(v) => v.push(delta),
            Deltas::One(_) => {
                let Deltas::One(first) = std::mem::replace(self, Deltas::Many(Vec::new())) else { return };
                *self = Deltas::Many(vec![first, delta]);
            }
        }
    }

    fn into_vec(self) -> Vec<Delta<T>> {
        match self {
            Deltas::One(d) => vec![d],
            Deltas::Many(v) => v,
        }
    }
}

impl<T> IntoIterator for Deltas<T> {
    type Item = Delta<T>;
    type IntoIter = std::iter::Chain<std::option::IntoIter<Delta<T>>, std::vec::IntoIter<Delta<T>>>;
    fn into_iter(self) -> Self::IntoIter {
        match self {
            Deltas::One(d) => Some(d).into_iter().chain(Vec::new()),
            Deltas::Many(v) => None.into_iter().chain(v),
        }
    }
}

/// One popped key's deltas, and whether it was part of the initial list.
pub(crate) struct Popped<T> {
    pub deltas: Deltas<T>,
    pub initial: bool,
}

struct Entry<T> {
    key: QueuedKey<T>,
    deltas: Deltas<T>,
}

/// The queued keys with their deltas: a hash table keyed by each key's namespace and name,
/// and the order of the keys.
struct Pending<T> {
    items: HashTable<Entry<T>>,
    queue: VecDeque<QueuedKey<T>>,
    hasher: DefaultHashBuilder,
}

impl<T: CacheObject> Pending<T> {
    fn hash(&self, (namespace, name): (&[u8], &[u8])) -> u64 {
        self.hasher.hash_one((namespace, name))
    }

    fn get(&self, ident: (&[u8], &[u8])) -> Option<&Entry<T>> {
        self.items.find(self.hash(ident), |e| e.key.ident() == ident)
    }

    fn contains_key(&self, key: &str) -> bool {
        self.get(split_key(key)).is_some()
    }

    /// Queues a delta of `key` (the key goes to the back of the queue if it was not queued).
    fn push(&mut self, key: QueuedKey<T>, delta: Delta<T>) {
        let hash = self.hash(key.ident());
        let hasher = &self.hasher;
        let entry = self.items.entry(
            hash,
            |e| e.key.ident() == key.ident(),
            |e| {
                let (namespace, name) = e.key.ident();
                hasher.hash_one((namespace, name))
            },
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(mut e) => e.get_mut().deltas.push(delta),
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(Entry { key: key.share(), deltas: Deltas::One(delta) });
                self.queue.push_back(key);
            }
        }
    }

    fn pop_front(&mut self) -> Option<(QueuedKey<T>, Deltas<T>)> {
        let key = self.queue.pop_front()?;
        let hash = self.hash(key.ident());
        let deltas = match self.items.find_entry(hash, |e| e.key.ident() == key.ident()) {
            Ok(e) => e.remove().0.deltas,
            Err(_) => Deltas::Many(Vec::new()),
        };
        Some((key, deltas))
    }

    fn len(&self) -> usize {
        self.queue.len()
    }
}

struct State<T> {
    pending: Pending<T>,
    populated: bool,
    initial_population_count: usize,
    closed: bool,
}

impl<T: CacheObject> State<T> {
    /// Takes the next key; returns it with its deltas, whether it belongs to the initial list,
    /// and whether this pop completed the initial population.
    fn pop(&mut self) -> Option<(QueuedKey<T>, Popped<T>, bool)> {
        let (key, deltas) = self.pending.pop_front()?;
        // client-go's isInInitialList: popped before the initial population was.
        let initial = !self.populated || self.initial_population_count > 0;
        let mut synced = false;
        if self.initial_population_count > 0 {
            self.initial_population_count -= 1;
            synced = self.initial_population_count == 0;
        }
        Some((key, Popped { deltas, initial }, synced))
    }
}

/// The DeltaFIFO.
pub struct DeltaFifo<T> {
    state: Mutex<State<T>>,
    notify: Notify,
    /// Woken by pops while someone waits for room.
    room: Notify,
    room_wanted: AtomicBool,
    /// Set when the initial population has been popped (invariant 6).
    synced: Synced,
    known: Option<Arc<dyn KnownObjects<T>>>,
}

/// A relist delivered page by page ([`DeltaFifo::begin_replace`]): pages of listed objects,
/// then [`Replace::finish`].
pub struct Replace<'a, T: CacheObject> {
    fifo: &'a DeltaFifo<T>,
    /// The listed keys, when deletions are possible (something was known or queued at start).
    listed: Option<HashSet<String>>,
}

impl<T: CacheObject> Replace<'_, T> {
    /// Queues `Replaced` for each object of a page.
    pub fn add_page(&mut self, objects: Vec<Arc<T>>) {
        if objects.is_empty() {
            return;
        }
        let mut state = self.fifo.state.lock();
        for obj in objects {
            if let Some(listed) = &mut self.listed {
                listed.insert(obj.key());
            }
            let delta = Delta { kind: DeltaType::Replaced, object: DeltaObject::Object(obj.clone()) };
            state.pending.push(QueuedKey::Object(obj), delta);
        }
        drop(state);
        self.fifo.notify.notify_waiters();
    }

    /// The relist is complete: tombstones for what it did not list.
    pub fn finish(self) {
        let fifo = self.fifo;
        let mut state = fifo.state.lock();
        if let Some(listed) = &self.listed {
            // Queued keys that the relist no longer has (unless their last delta is a deletion).
            let queued_gone: Vec<(QueuedKey<T>, String, Option<Arc<T>>)> = state
                .pending
                .items
                .iter()
                .filter(|e| e.deltas.last().is_none_or(|d| d.kind != DeltaType::Deleted))
                .map(|e| {
                    (e.key.share(), e.key.to_key(), e.deltas.last().and_then(|d| d.object.object().cloned()))
                })
                .filter(|(_, key, _)| !listed.contains(key))
                .collect();
            for (queued, key, last) in queued_gone {
                let tombstone = DeltaObject::DeletedFinalStateUnknown { key, object: last };
                state.pending.push(queued, Delta { kind: DeltaType::Deleted, object: tombstone });
            }
            // Known keys that the relist no longer has.
            if let Some(known) = &fifo.known {
                for key in known.list_keys() {
                    if listed.contains(&key) || state.pending.contains_key(&key) {
                        continue;
                    }
                    let object = known.get_by_key(&key);
                    let queued = QueuedKey::Key(key.as_str().into());
                    let tombstone = DeltaObject::DeletedFinalStateUnknown { key, object };
                    state.pending.push(queued, Delta { kind: DeltaType::Deleted, object: tombstone });
                }
            }
        }
        if !state.populated {
            state.populated = true;
            state.initial_population_count = state.pending.len();
        }
        let synced = state.initial_population_count == 0;
        drop(state);
        fifo.notify.notify_waiters();
        if synced {
            fifo.synced.set();
        }
    }
}

impl<T> std::fmt::Debug for DeltaFifo<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("DeltaFifo")
            .field("queued", &state.pending.queue.len())
            .field("closed", &state.closed)
            .finish()
    }
}

fn is_tombstone<T>(d: &Delta<T>) -> bool {
    matches!(d.object, DeltaObject::DeletedFinalStateUnknown { .. })
}

impl<T: CacheObject> DeltaFifo<T> {
    /// A queue; `known` is the informer's store (client-go's `KnownObjects`).
    pub fn new(known: Option<Arc<dyn KnownObjects<T>>>) -> Self {
        DeltaFifo {
            state: Mutex::new(State {
                pending: Pending {
                    items: HashTable::new(),
                    queue: VecDeque::new(),
                    hasher: DefaultHashBuilder::default(),
                },
                populated: false,
                initial_population_count: 0,
                closed: false,
            }),
            notify: Notify::new(),
            room: Notify::new(),
            room_wanted: AtomicBool::new(false),
            synced: Synced::new(),
            known,
        }
    }

    fn push(&self, kind: DeltaType, obj: Arc<T>) {
        self.push_all(std::iter::once((kind, obj)));
    }

    /// Several changes at once, in order (one lock, one wake-up): `Added`, `Updated` or
    /// `Deleted` each, with the rules of [`add`](Self::add), [`update`](Self::update) and
    /// [`delete`](Self::delete).
    pub fn push_all(&self, changes: impl IntoIterator<Item = (DeltaType, Arc<T>)>) {
        let mut state = self.state.lock();
        // A change before any relist populates the queue with nothing initial: synced.
        let populates = !state.populated;
        let mut queued_any = false;
        for (kind, obj) in changes {
            state.populated = true;
            if kind == DeltaType::Deleted {
                // Invariant 5: a deletion of a key neither known nor queued is a no-op.
                let (namespace, name) = obj.namespace_and_name();
                let queued = state.pending.get((namespace, name)).is_some();
                let known = || {
                    let namespace = std::str::from_utf8(namespace).unwrap_or("");
                    let name = std::str::from_utf8(name).unwrap_or("");
                    self.known.as_ref().is_some_and(|k| k.get_by_name(namespace, name).is_some())
                };
                if !queued && !known() {
                    continue;
                }
            }
            let delta = Delta { kind, object: DeltaObject::Object(obj.clone()) };
            state.pending.push(QueuedKey::Object(obj), delta);
            queued_any = true;
        }
        let now_synced = populates && state.populated && state.initial_population_count == 0;
        drop(state);
        if now_synced {
            self.synced.set();
        }
        if queued_any {
            self.notify.notify_waiters();
        }
    }

    /// An object was added.
    pub fn add(&self, obj: Arc<T>) {
        self.push(DeltaType::Added, obj);
    }

    /// An object changed.
    pub fn update(&self, obj: Arc<T>) {
        self.push(DeltaType::Updated, obj);
    }

    /// An object was deleted (a no-op for a key neither known nor queued: invariant 5).
    pub fn delete(&self, obj: Arc<T>) {
        self.push(DeltaType::Deleted, obj);
    }

    /// A relist in one call: `Replaced` for each object, tombstones for known keys that are
    /// gone.
    pub fn replace(&self, objects: Vec<Arc<T>>) {
        let mut replace = self.begin_replace();
        replace.add_page(objects);
        replace.finish();
    }

    /// Starts a relist delivered page by page (invariant 4).
    pub fn begin_replace(&self) -> Replace<'_, T> {
        let track = self.state.lock().pending.len() > 0 || self.known.as_ref().is_some_and(|k| !k.is_empty());
        Replace { fifo: self, listed: track.then(HashSet::new) }
    }

    /// The known object (in the store) of this namespace and name.
    pub fn known_by_name(&self, namespace: &str, name: &str) -> Option<Arc<T>> {
        self.known.as_ref()?.get_by_name(namespace, name)
    }

    /// Queues `Sync` for every known object without pending deltas (invariant 7).
    pub fn resync(&self) {
        let Some(known) = &self.known else { return };
        let mut state = self.state.lock();
        for key in known.list_keys() {
            if state.pending.contains_key(&key) {
                continue;
            }
            if let Some(obj) = known.get_by_key(&key) {
                let delta = Delta { kind: DeltaType::Sync, object: DeltaObject::Object(obj.clone()) };
                state.pending.push(QueuedKey::Object(obj), delta);
            }
        }
        drop(state);
        self.notify.notify_waiters();
    }

    /// Puts a popped key back (when processing failed), unless it has been queued again since.
    pub fn add_if_not_present(&self, key: String, deltas: Vec<Delta<T>>) {
        let mut state = self.state.lock();
        if state.pending.contains_key(&key) || deltas.is_empty() {
            return;
        }
        let queued: QueuedKey<T> = QueuedKey::Key(key.into());
        for delta in deltas {
            state.pending.push(queued.share(), delta);
        }
        drop(state);
        self.notify.notify_waiters();
    }

    /// Waits for the next key and returns it with all its deltas; `None` once closed and empty.
    pub async fn pop(&self) -> Option<(String, Vec<Delta<T>>)> {
        self.pop_with_initial().await.map(|(k, d, _)| (k, d))
    }

    /// Waits for queued keys and takes up to `max` of them at once, in order, each with its
    /// deltas and whether it was part of the initial list; empty once closed and drained.
    pub(crate) async fn pop_batch(&self, max: usize) -> Vec<Popped<T>> {
        let Some((_, first)) = self.pop_popped().await else { return Vec::new() };
        let mut batch = vec![first];
        let mut state = self.state.lock();
        let mut synced = false;
        while batch.len() < max.max(1) {
            let Some((_, popped, completed)) = state.pop() else { break };
            synced |= completed;
            batch.push(popped);
        }
        drop(state);
        if synced {
            self.synced.set();
        }
        if batch.len() > 1 && self.room_wanted.load(Ordering::Acquire) {
            self.room.notify_waiters();
        }
        batch
    }

    /// [`DeltaFifo::pop`], also telling whether the item was part of the initial list
    /// (client-go's `isInInitialList`).
    pub async fn pop_with_initial(&self) -> Option<(String, Vec<Delta<T>>, bool)> {
        let (key, popped) = self.pop_popped().await?;
        Some((key.to_key(), popped.deltas.into_vec(), popped.initial))
    }

    async fn pop_popped(&self) -> Option<(QueuedKey<T>, Popped<T>)> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.state.lock();
                if let Some((key, popped, synced)) = state.pop() {
                    drop(state);
                    if synced {
                        self.synced.set();
                    }
                    if self.room_wanted.load(Ordering::Acquire) {
                        self.room.notify_waiters();
                    }
                    return Some((key, popped));
                }
                if state.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Waits until the initial population has been popped (invariant 6).
    pub async fn wait_synced(&self) {
        self.synced.wait().await
    }

    /// The signal [`wait_synced`](Self::wait_synced) awaits.
    pub fn synced(&self) -> &Synced {
        &self.synced
    }

    /// Waits until at most `limit` keys are queued (invariant 9), or the queue is closed.
    pub async fn wait_for_room(&self, limit: usize) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.room_wanted.store(true, Ordering::Release);
            {
                let state = self.state.lock();
                if state.pending.len() <= limit || state.closed {
                    drop(state);
                    self.room_wanted.store(false, Ordering::Release);
                    return;
                }
            }
            notified.await;
        }
    }

    /// Whether the initial list has been popped (client-go's `HasSynced`).
    pub fn has_synced(&self) -> bool {
        let state = self.state.lock();
        state.populated && state.initial_population_count == 0
    }

    /// Stops the queue: pending items are still popped, then `pop` returns `None`.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.notify.notify_waiters();
        self.room.notify_waiters();
    }

    /// The queued keys, in order.
    pub fn list_keys(&self) -> Vec<String> {
        self.state.lock().pending.queue.iter().map(QueuedKey::to_key).collect()
    }

    /// The number of queued keys.
    pub fn len(&self) -> usize {
        self.state.lock().pending.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
