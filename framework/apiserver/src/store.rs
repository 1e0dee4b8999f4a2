//! The storage of the server, an in-memory etcd: one global revision (the resourceVersion of
//! every write), a table per resource (`group/plural`, shared by its versions) of immutable maps
//! so that a list can hold a consistent snapshot for free, a bounded history of events for watch
//! resumes, and the watchers.
//!
//! Invariants:
//! - every write happens under one lock and takes the next revision; revisions never repeat;
//! - the event of a write is appended to the history and offered to every matching watcher under
//!   that same lock, so a watcher registered at revision N sees exactly the events after N, in
//!   order, without gaps or duplicates;
//! - a watcher whose buffer is full is dropped (its stream ends and the client re-watches from
//!   its last revision): a slow watcher never blocks a writer.
//!
//! Mirrors etcd with kube-apiserver's `storage/etcd3` and watch cache (`cacher`).

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use imbl::OrdMap;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use crate::object::Stored;

/// The kind of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change of one object.
#[derive(Debug)]
pub(crate) struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub storage: Arc<str>,
    /// The object after the change (for a deletion: its last state, at the deletion's revision).
    pub obj: Stored,
    /// The object before the change (for selector transitions).
    pub prev: Option<Stored>,
}

/// What a write closure decides.
pub(crate) enum Write {
    /// Store this object (its resourceVersion is set by the store).
    Put(Value),
    /// Remove the object; the value is its final state for the DELETED event.
    Delete(Value),
    /// Nothing changed; answer with the current object.
    Unchanged(Stored),
}

/// The result of a write.
pub(crate) enum Written {
    Put { obj: Stored, created: bool },
    Deleted(Stored),
    Unchanged(Stored),
}

struct Watcher {
    id: u64,
    storage: Arc<str>,
    namespace: Option<String>,
    tx: mpsc::Sender<Arc<Event>>,
}

struct Snapshot {
    rv: u64,
    storage: Arc<str>,
    map: OrdMap<String, Stored>,
    taken: Instant,
}

/// A registered watch: the events to send first, the revision it starts at, and the channel of
/// later events.
pub(crate) type Registered = (Vec<Arc<Event>>, u64, mpsc::Receiver<Arc<Event>>);

/// Where a watch starts.
pub(crate) enum WatchFrom {
    /// The current state as synthetic ADDED events, then every change.
    Now,
    /// Every change after this revision.
    After(u64),
}

/// Why a watch cannot start.
pub(crate) enum WatchRefused {
    /// The revision is older than the kept history.
    Expired { requested: u64, oldest: u64 },
    /// The revision is newer than the server's.
    TooLarge { requested: u64, current: u64 },
}

struct State {
    rv: u64,
    tables: HashMap<Arc<str>, OrdMap<String, Stored>>,
    /// uid -> (table, key), for owner lookups.
    uids: HashMap<String, (Arc<str>, String)>,
    history: VecDeque<Arc<Event>>,
    history_cap: usize,
    /// The bytes of the objects the history holds, and the most it may hold.
    history_bytes: usize,
    history_byte_cap: usize,
    /// Watches may resume from any revision >= this one.
    oldest_resumable: u64,
    watchers: Vec<Watcher>,
    next_watcher: u64,
    snapshots: VecDeque<Snapshot>,
}

/// How long a list snapshot (a continue token) stays valid, like etcd's compaction window.
const SNAPSHOT_TTL: Duration = Duration::from_secs(300);
const MAX_SNAPSHOTS: usize = 64;

/// The store. Cheap to share behind an `Arc`.
pub(crate) struct Store {
    state: Mutex<State>,
    watch_buffer: usize,
    /// Woken after every write, for the built-in controllers.
    pub changed: Notify,
    /// Counts deletions and objects marked for deletion (the controllers' trigger).
    deletions: std::sync::atomic::AtomicU64,
}

impl Store {
    pub fn new(
        history_cap: usize,
        history_byte_cap: usize,
        watch_buffer: usize,
        first: Option<u64>,
    ) -> Store {
        // Revisions start at the start time in microseconds (unless told otherwise): a server
        // started again (its objects lost, as after an etcd restore) never takes a client's
        // resourceVersion from an earlier run for one of its own — a resume from it is too old
        // (410) and the client relists, instead of watching on from a revision that means
        // something else here.
        let base = first
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_micros() as u64)
            })
            .max(1);
        Store {
            state: Mutex::new(State {
                rv: base,
                tables: HashMap::new(),
                uids: HashMap::new(),
                history: VecDeque::new(),
                history_cap: history_cap.max(1),
                history_bytes: 0,
                history_byte_cap,
                oldest_resumable: base,
                watchers: Vec::new(),
                next_watcher: 0,
                snapshots: VecDeque::new(),
            }),
            watch_buffer: watch_buffer.max(1),
            changed: Notify::new(),
            deletions: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many deletions (or marks for deletion) happened so far.
    pub fn deletions(&self) -> u64 {
        self.deletions.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The current revision.
    pub fn revision(&self) -> u64 {
        self.state.lock().rv
    }

    pub fn get(&self, storage: &str, key: &str) -> Option<Stored> {
        self.state.lock().tables.get(storage).and_then(|t| t.get(key).cloned())
    }

    /// Whether an object with this uid exists, and where.
    pub fn locate_uid(&self, uid: &str) -> Option<(Arc<str>, String)> {
        self.state.lock().uids.get(uid).cloned()
    }

    /// A consistent snapshot of a table and the revision it was taken at.
    pub fn snapshot(&self, storage: &str) -> (u64, OrdMap<String, Stored>) {
        let state = self.state.lock();
        (state.rv, state.tables.get(storage).cloned().unwrap_or_default())
    }

    /// Keeps a snapshot for continue tokens.
    pub fn keep_snapshot(&self, storage: &Arc<str>, rv: u64, map: OrdMap<String, Stored>) {
        let mut state = self.state.lock();
        if state.snapshots.iter().any(|s| s.rv == rv && *s.storage == **storage) {
            return;
        }
        state.snapshots.retain(|s| s.taken.elapsed() < SNAPSHOT_TTL);
        if state.snapshots.len() >= MAX_SNAPSHOTS {
            state.snapshots.pop_front();
        }
        state.snapshots.push_back(Snapshot { rv, storage: storage.clone(), map, taken: Instant::now() });
    }

    /// The snapshot a continue token refers to, if it is still kept.
    pub fn find_snapshot(&self, storage: &str, rv: u64) -> Option<OrdMap<String, Stored>> {
        let state = self.state.lock();
        state
            .snapshots
            .iter()
            .find(|s| s.rv == rv && &*s.storage == storage && s.taken.elapsed() < SNAPSHOT_TTL)
            .map(|s| s.map.clone())
    }

    /// Reads the current object and writes the closure's decision atomically.
    pub fn write<E>(
        &self,
        storage: &Arc<str>,
        key: &str,
        decide: impl FnOnce(Option<&Stored>, u64) -> Result<Write, E>,
    ) -> Result<Written, E> {
        let mut state = self.state.lock();
        let current = state.tables.get(&**storage).and_then(|t| t.get(key).cloned());
        let next_rv = state.rv + 1;
        let decision = decide(current.as_ref(), next_rv)?;
        let written = match decision {
            Write::Unchanged(s) => return Ok(Written::Unchanged(s)),
            Write::Put(mut value) => {
                crate::object::meta_mut(&mut value)
                    .insert("resourceVersion".into(), Value::String(next_rv.to_string()));
                let stored = Stored::new(next_rv, &value);
                state.rv = next_rv;
                if !stored.summary.uid.is_empty() {
                    state.uids.insert(stored.summary.uid.clone(), (storage.clone(), key.to_string()));
                }
                state.tables.entry(storage.clone()).or_default().insert(key.to_string(), stored.clone());
                let kind = if current.is_some() { EventType::Modified } else { EventType::Added };
                let created = current.is_none();
                publish(
                    &mut state,
                    Event { rv: next_rv, kind, storage: storage.clone(), obj: stored.clone(), prev: current },
                );
                Written::Put { obj: stored, created }
            }
            Write::Delete(mut value) => {
                crate::object::meta_mut(&mut value)
                    .insert("resourceVersion".into(), Value::String(next_rv.to_string()));
                let stored = Stored::new(next_rv, &value);
                state.rv = next_rv;
                if let Some(t) = state.tables.get_mut(&**storage) {
                    t.remove(key);
                }
                state.uids.remove(&stored.summary.uid);
                publish(
                    &mut state,
                    Event {
                        rv: next_rv,
                        kind: EventType::Deleted,
                        storage: storage.clone(),
                        obj: stored.clone(),
                        prev: current,
                    },
                );
                Written::Deleted(stored)
            }
        };
        drop(state);
        let deletion = match &written {
            Written::Deleted(_) => true,
            Written::Put { obj, .. } => obj.summary.deleting || !obj.summary.owners.is_empty(),
            Written::Unchanged(_) => false,
        };
        if deletion {
            self.deletions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.changed.notify_waiters();
        Ok(written)
    }

    /// Registers a watcher. Returns the events to send first and the channel of later ones.
    pub fn watch(
        &self,
        storage: &Arc<str>,
        namespace: Option<&str>,
        from: WatchFrom,
    ) -> Result<Registered, WatchRefused> {
        let mut state = self.state.lock();
        let initial: Vec<Arc<Event>> = match from {
            WatchFrom::Now => {
                let table = state.tables.get(&**storage).cloned().unwrap_or_default();
                let range: Box<dyn Iterator<Item = (&String, &Stored)>> = match namespace {
                    Some(ns) => {
                        let prefix = format!("{ns}/");
                        Box::new(
                            table.range(prefix.clone()..).take_while(move |(k, _)| k.starts_with(&prefix)),
                        )
                    }
                    None => Box::new(table.iter()),
                };
                range
                    .map(|(_, s)| {
                        Arc::new(Event {
                            rv: s.rv,
                            kind: EventType::Added,
                            storage: storage.clone(),
                            obj: s.clone(),
                            prev: None,
                        })
                    })
                    .collect()
            }
            WatchFrom::After(rv) => {
                if rv > state.rv {
                    return Err(WatchRefused::TooLarge { requested: rv, current: state.rv });
                }
                if rv < state.oldest_resumable {
                    return Err(WatchRefused::Expired { requested: rv, oldest: state.oldest_resumable });
                }
                state
                    .history
                    .iter()
                    .filter(|e| e.rv > rv && *e.storage == **storage)
                    .filter(|e| namespace.is_none_or(|ns| e.obj.summary.namespace == ns))
                    .cloned()
                    .collect()
            }
        };
        let (tx, rx) = mpsc::channel(self.watch_buffer);
        state.next_watcher += 1;
        let id = state.next_watcher;
        state.watchers.push(Watcher {
            id,
            storage: storage.clone(),
            namespace: namespace.map(str::to_string),
            tx,
        });
        Ok((initial, state.rv, rx))
    }

    /// Number of open watchers (for tests and metrics).
    pub fn watcher_count(&self) -> usize {
        let mut state = self.state.lock();
        state.watchers.retain(|w| !w.tx.is_closed());
        state.watchers.len()
    }

    /// Ends every open watch (their clients re-watch from their last revision).
    pub fn close_watches(&self) {
        self.state.lock().watchers.clear();
    }

    /// Forgets the event history: resumes from before now get 410 Expired.
    pub fn compact(&self) {
        let mut state = self.state.lock();
        state.history.clear();
        state.history_bytes = 0;
        state.oldest_resumable = state.rv;
        state.snapshots.clear();
    }

    /// All objects of a table (a snapshot), for the built-in controllers.
    pub fn table(&self, storage: &str) -> OrdMap<String, Stored> {
        self.state.lock().tables.get(storage).cloned().unwrap_or_default()
    }

    /// Every table name with objects.
    pub fn tables(&self) -> Vec<Arc<str>> {
        self.state.lock().tables.iter().filter(|(_, t)| !t.is_empty()).map(|(k, _)| k.clone()).collect()
    }

    /// The watcher ids (for tests).
    #[cfg(test)]
    fn watcher_ids(&self) -> Vec<u64> {
        self.state.lock().watchers.iter().map(|w| w.id).collect()
    }
}

/// Appends to the history and offers the event to the matching watchers; a full watcher is
/// dropped.
fn publish(state: &mut State, event: Event) {
    let event = Arc::new(event);
    state.history_bytes += event.obj.json.len();
    state.history.push_back(event.clone());
    // Bounded by count and by bytes; the oldest go first, and resuming from before the oldest
    // kept event is 410 Expired.
    while state.history.len() > state.history_cap
        || (state.history_bytes > state.history_byte_cap && state.history.len() > 1)
    {
        let Some(old) = state.history.pop_front() else { break };
        state.history_bytes -= old.obj.json.len();
        state.oldest_resumable = old.rv;
    }
    state.watchers.retain(|w| {
        if *w.storage != *event.storage {
            return !w.tx.is_closed();
        }
        if let Some(ns) = &w.namespace
            && *ns != event.obj.summary.namespace
        {
            return !w.tx.is_closed();
        }
        match w.tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(watcher = w.id, storage = %w.storage, "watcher too slow; closing its watch");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::key;
    use serde_json::json;

    fn put(store: &Store, t: &Arc<str>, name: &str) -> u64 {
        match store
            .write::<()>(t, &key("ns", name), |_, _| {
                Ok(Write::Put(json!({"metadata": {"name": name, "namespace": "ns", "uid": name}})))
            })
            .unwrap()
        {
            Written::Put { obj, .. } => obj.rv,
            _ => unreachable!(),
        }
    }

    #[test]
    fn revisions_strictly_increase_across_tables() {
        let store = Store::new(100, usize::MAX, 10, None);
        let a: Arc<str> = Arc::from("/configmaps");
        let b: Arc<str> = Arc::from("/secrets");
        let r1 = put(&store, &a, "x");
        let r2 = put(&store, &b, "x");
        let r3 = put(&store, &a, "x");
        assert!(r1 < r2 && r2 < r3);
        assert_eq!(store.revision(), r3);
    }

    #[test]
    fn watch_after_revision_replays_history_then_live_events_in_order() {
        let store = Store::new(100, usize::MAX, 10, None);
        let t: Arc<str> = Arc::from("/configmaps");
        let r1 = put(&store, &t, "a");
        put(&store, &t, "b");
        let (initial, _, mut rx) = store.watch(&t, None, WatchFrom::After(r1)).ok().unwrap();
        assert_eq!(initial.iter().map(|e| e.obj.summary.name.as_str()).collect::<Vec<_>>(), ["b"]);
        put(&store, &t, "c");
        assert_eq!(rx.try_recv().unwrap().obj.summary.name, "c");
    }

    #[test]
    fn old_revisions_expire_and_future_ones_are_too_large() {
        let store = Store::new(2, usize::MAX, 10, None);
        let t: Arc<str> = Arc::from("/configmaps");
        let r1 = put(&store, &t, "a");
        put(&store, &t, "b");
        put(&store, &t, "c");
        put(&store, &t, "d");
        assert!(matches!(store.watch(&t, None, WatchFrom::After(r1)), Err(WatchRefused::Expired { .. })));
        let now = store.revision();
        assert!(matches!(
            store.watch(&t, None, WatchFrom::After(now + 5)),
            Err(WatchRefused::TooLarge { .. })
        ));
        assert!(store.watch(&t, None, WatchFrom::After(now)).is_ok());
    }

    #[test]
    fn a_full_watcher_is_dropped_without_blocking_the_writer() {
        let store = Store::new(100, usize::MAX, 2, None);
        let t: Arc<str> = Arc::from("/configmaps");
        let (_, _, rx) = store.watch(&t, None, WatchFrom::Now).ok().unwrap();
        for i in 0..5 {
            put(&store, &t, &format!("o{i}"));
        }
        assert!(store.watcher_ids().is_empty(), "the slow watcher was closed");
        drop(rx);
    }
}
