//! The thread-safe store and its indexes (client-go's `cache.ThreadSafeStore` and `Indexer`):
//! the informer's cache, shared by every lister.
//!
//! Invariants:
//! - objects are held as `Arc<T>`: a read hands out a reference count, never a deep copy;
//! - every index maps an index value to exactly the keys whose current object produces that
//!   value: an update moves the key from the old object's values to the new one's, a delete
//!   removes it, `replace` rebuilds every index from scratch;
//! - no key is stored: objects live in a slab, found through a hash table of slot ids keyed by
//!   the objects' own namespace and name; indexes hold slot ids, so an update of an object
//!   writes its slot only (unless a custom index value changed);
//! - indexers are added before the store holds objects (as in client-go, adding one later is an
//!   error), the namespace index ([`NAMESPACE_INDEX`]) is always present;
//! - one `parking_lot::RwLock` guards objects and indexes together, so a reader never sees an
//!   object without its index entries; a write holds it for one update only.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//!
//! use k8s_openapi::api::core::v1::Pod;
//! use krust_runtime::cache::{Cached, IndexFunc, Indexer};
//!
//! let store: Indexer<Cached<Pod>> = Indexer::new();
//! // An index of Pods by the node they run on (added before any object, as in client-go).
//! let by_node: IndexFunc<Cached<Pod>> = Arc::new(|pod: &Cached<Pod>| {
//!     pod.decode().ok().and_then(|p| p.spec?.node_name).into_iter().collect()
//! });
//! store.add_indexers(vec![("by-node".to_string(), by_node)])?;
//! for (name, node) in [("a", "n1"), ("b", "n2"), ("c", "n1")] {
//!     let json = format!(r#"{{"metadata":{{"name":"{name}","namespace":"default"}},"spec":{{"nodeName":"{node}","containers":[]}}}}"#);
//!     store.upsert(Arc::new(Cached::from_json(json.as_bytes())?));
//! }
//! let mut on_n1: Vec<String> = store.by_index("by-node", "n1")?.iter().map(|p| p.name().to_string()).collect();
//! on_n1.sort();
//! assert_eq!(on_n1, ["a", "c"]);
//! assert!(store.get("default/b").is_some());
//! assert!(store.by_index("by-zone", "x").is_err(), "an index that was never added");
//! # Ok(()) }
//! ```

use std::{
    collections::{BTreeSet, HashMap},
    hash::BuildHasher,
    sync::Arc,
};

use hashbrown::{DefaultHashBuilder, HashTable, hash_table::Entry};
use parking_lot::RwLock;

/// The built-in index of objects by namespace.
pub const NAMESPACE_INDEX: &str = "namespace";

/// What the store needs of an object: its key (`namespace/name`, or `name` when cluster
/// scoped) and namespace.
pub trait CacheObject: Send + Sync + 'static {
    /// The object's namespace, `None` for cluster-scoped objects.
    fn namespace(&self) -> Option<&str>;
    /// The object's name.
    fn name(&self) -> &str;
    /// The namespace (empty when cluster-scoped) and the name, as bytes: what the store hashes
    /// and compares.
    fn namespace_and_name(&self) -> (&[u8], &[u8]) {
        (self.namespace().unwrap_or("").as_bytes(), self.name().as_bytes())
    }
    /// The store key, client-go's `MetaNamespaceKeyFunc`.
    fn key(&self) -> String {
        match self.namespace() {
            Some(ns) if !ns.is_empty() => format!("{ns}/{}", self.name()),
            _ => self.name().to_string(),
        }
    }
}

/// An index function: the index values of an object.
pub type IndexFunc<T> = Arc<dyn Fn(&T) -> Vec<String> + Send + Sync>;

/// Errors of the store.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The index does not exist.
    #[error("index \"{0}\" does not exist; add it with add_indexers before the informer starts")]
    NoSuchIndex(String),
    /// Indexers can only be added to an empty store.
    #[error("cannot add indexer \"{0}\": the store already holds objects (add indexers before starting)")]
    NotEmpty(String),
    /// The index name is taken.
    #[error("indexer \"{0}\" already exists")]
    Duplicate(String),
}

fn ident<T: CacheObject>(o: &T) -> (&[u8], &[u8]) {
    o.namespace_and_name()
}

/// A store key split into namespace and name (no namespace: cluster-scoped).
fn split_key(key: &str) -> (&[u8], &[u8]) {
    let (namespace, name) = key.split_once('/').unwrap_or(("", key));
    (namespace.as_bytes(), name.as_bytes())
}

/// Slot ids of the slab.
type Slot = u32;
/// A set of slots (an index value's objects).
type Slots = hashbrown::HashSet<Slot>;

struct Inner<T> {
    /// The objects; a slot's id is stable while its key is stored, so indexes hold ids and an
    /// update of an object touches only its slot.
    slab: Vec<Option<Arc<T>>>,
    free: Vec<Slot>,
    /// Slot ids with their object's hash of namespace and name (no key is stored; the hash
    /// spares reading the objects when the table grows or a probe meets another key).
    items: HashTable<(u64, Slot)>,
    by_namespace: HashMap<String, Slots>,
    indexers: Vec<(String, IndexFunc<T>)>,
    /// index name -> index value -> slots
    indices: HashMap<String, HashMap<String, Slots>>,
}

impl<T> Inner<T> {
    fn object(&self, slot: Slot) -> Option<&Arc<T>> {
        self.slab.get(slot as usize).and_then(Option::as_ref)
    }

    fn objects<'a>(&'a self, slots: Option<&'a Slots>) -> impl Iterator<Item = &'a Arc<T>> + 'a {
        slots.into_iter().flat_map(|s| s.iter()).filter_map(|slot| self.object(*slot))
    }
}

/// The indexed, thread-safe store.
pub struct Indexer<T> {
    inner: RwLock<Inner<T>>,
    hasher: DefaultHashBuilder,
}

impl<T: CacheObject> Default for Indexer<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for Indexer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.read();
        let mut indexers: Vec<&str> = vec![NAMESPACE_INDEX];
        indexers.extend(inner.indexers.iter().map(|(n, _)| n.as_str()));
        f.debug_struct("Indexer").field("objects", &inner.items.len()).field("indexers", &indexers).finish()
    }
}

impl<T: CacheObject> Indexer<T> {
    /// An empty store with the namespace index.
    pub fn new() -> Self {
        Indexer {
            inner: RwLock::new(Inner {
                slab: Vec::new(),
                free: Vec::new(),
                items: HashTable::new(),
                by_namespace: HashMap::new(),
                indexers: Vec::new(),
                indices: HashMap::new(),
            }),
            hasher: DefaultHashBuilder::default(),
        }
    }

    fn hash(&self, namespace: &[u8], name: &[u8]) -> u64 {
        self.hasher.hash_one((namespace, name))
    }

    /// The slot of this namespace and name.
    fn find(&self, inner: &Inner<T>, namespace: &[u8], name: &[u8]) -> Option<Slot> {
        let slab = &inner.slab;
        let hash = self.hash(namespace, name);
        inner
            .items
            .find(hash, |(h, slot)| {
                *h == hash
                    && slab
                        .get(*slot as usize)
                        .and_then(Option::as_ref)
                        .is_some_and(|o| ident(&**o) == (namespace, name))
            })
            .map(|(_, slot)| *slot)
    }

    /// Adds indexers; only while the store is empty.
    pub fn add_indexers(&self, indexers: Vec<(String, IndexFunc<T>)>) -> Result<(), StoreError> {
        let mut inner = self.inner.write();
        for (name, _) in &indexers {
            if !inner.items.is_empty() {
                return Err(StoreError::NotEmpty(name.clone()));
            }
            if name == NAMESPACE_INDEX || inner.indexers.iter().any(|(n, _)| n == name) {
                return Err(StoreError::Duplicate(name.clone()));
            }
        }
        for (name, f) in indexers {
            inner.indices.insert(name.clone(), HashMap::new());
            inner.indexers.push((name, f));
        }
        Ok(())
    }

    /// Adds or replaces an object; returns the previous one.
    pub fn upsert(&self, obj: Arc<T>) -> Option<Arc<T>> {
        let mut guard = self.inner.write();
        let inner = &mut *guard;
        let (namespace, name) = ident(&*obj);
        let hash = self.hash(namespace, name);
        let Inner { slab, free, items, .. } = &mut *inner;
        let entry = items.entry(
            hash,
            |(h, slot)| {
                *h == hash
                    && slab
                        .get(*slot as usize)
                        .and_then(Option::as_ref)
                        .is_some_and(|o| ident(&**o) == (namespace, name))
            },
            |(h, _)| *h,
        );
        match entry {
            Entry::Occupied(e) => {
                // An update: only the slot changes (and the custom indexes whose values did).
                let slot = e.get().1;
                let old = slab.get_mut(slot as usize).and_then(|s| s.replace(obj.clone()));
                if !inner.indexers.is_empty() {
                    self.update_indices(inner, slot, old.as_deref(), Some(&obj));
                }
                old
            }
            Entry::Vacant(e) => {
                let slot = match free.pop() {
                    Some(slot) => {
                        slab[slot as usize] = Some(obj.clone());
                        slot
                    }
                    None => {
                        slab.push(Some(obj.clone()));
                        (slab.len() - 1) as Slot
                    }
                };
                e.insert((hash, slot));
                let namespace = obj.namespace().unwrap_or("");
                match inner.by_namespace.get_mut(namespace) {
                    Some(set) => {
                        set.insert(slot);
                    }
                    None => {
                        inner.by_namespace.insert(namespace.to_string(), Slots::from_iter([slot]));
                    }
                }
                if !inner.indexers.is_empty() {
                    self.update_indices(inner, slot, None, Some(&obj));
                }
                None
            }
        }
    }

    /// Removes an object by key; returns it.
    pub fn delete(&self, key: &str) -> Option<Arc<T>> {
        let (namespace, name) = split_key(key);
        let mut guard = self.inner.write();
        let inner = &mut *guard;
        let slot = self.find(inner, namespace, name)?;
        let hash = self.hash(namespace, name);
        if let Ok(e) = inner.items.find_entry(hash, |(_, s)| *s == slot) {
            e.remove();
        }
        let old = inner.slab.get_mut(slot as usize).and_then(Option::take)?;
        inner.free.push(slot);
        let ns = old.namespace().unwrap_or("");
        if let Some(set) = inner.by_namespace.get_mut(ns) {
            set.remove(&slot);
            if set.is_empty() {
                inner.by_namespace.remove(ns);
            }
        }
        if !inner.indexers.is_empty() {
            self.update_indices(inner, slot, Some(&old), None);
        }
        Some(old)
    }

    /// Replaces the whole content; indexes are rebuilt.
    pub fn replace(&self, objects: Vec<Arc<T>>) {
        {
            let mut inner = self.inner.write();
            inner.slab.clear();
            inner.free.clear();
            inner.items.clear();
            inner.by_namespace.clear();
            for index in inner.indices.values_mut() {
                index.clear();
            }
        }
        for obj in objects {
            self.upsert(obj);
        }
    }

    /// The object with this key.
    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        let (namespace, name) = split_key(key);
        let inner = self.inner.read();
        self.find(&inner, namespace, name).and_then(|slot| inner.object(slot).cloned())
    }

    /// The object `name` of `namespace` (`""` for cluster-scoped objects), without building
    /// its key.
    pub fn get_by_name(&self, namespace: &str, name: &str) -> Option<Arc<T>> {
        let inner = self.inner.read();
        self.find(&inner, namespace.as_bytes(), name.as_bytes()).and_then(|slot| inner.object(slot).cloned())
    }

    /// Every object.
    pub fn list(&self) -> Vec<Arc<T>> {
        self.inner.read().slab.iter().flatten().cloned().collect()
    }

    /// Every key.
    pub fn list_keys(&self) -> Vec<String> {
        self.inner.read().slab.iter().flatten().map(|o| o.key()).collect()
    }

    /// The number of objects.
    pub fn len(&self) -> usize {
        self.inner.read().items.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn with_index<R>(
        &self,
        index: &str,
        value: &str,
        f: impl FnOnce(&Inner<T>, Option<&Slots>) -> R,
    ) -> Result<R, StoreError> {
        let inner = self.inner.read();
        if index == NAMESPACE_INDEX {
            return Ok(f(&inner, inner.by_namespace.get(value)));
        }
        let idx = inner.indices.get(index).ok_or_else(|| StoreError::NoSuchIndex(index.to_string()))?;
        Ok(f(&inner, idx.get(value)))
    }

    /// The objects whose index `index` has value `value` (client-go's `ByIndex`).
    pub fn by_index(&self, index: &str, value: &str) -> Result<Vec<Arc<T>>, StoreError> {
        self.with_index(index, value, |inner, slots| inner.objects(slots).cloned().collect())
    }

    /// The keys whose index `index` has value `value` (`IndexKeys`), sorted.
    pub fn index_keys(&self, index: &str, value: &str) -> Result<Vec<String>, StoreError> {
        let mut keys: Vec<String> =
            self.with_index(index, value, |inner, slots| inner.objects(slots).map(|o| o.key()).collect())?;
        keys.sort();
        Ok(keys)
    }

    /// Every value of index `index` (`ListIndexFuncValues`).
    pub fn list_index_func_values(&self, index: &str) -> Result<Vec<String>, StoreError> {
        let inner = self.inner.read();
        if index == NAMESPACE_INDEX {
            return Ok(inner.by_namespace.keys().cloned().collect());
        }
        let idx = inner.indices.get(index).ok_or_else(|| StoreError::NoSuchIndex(index.to_string()))?;
        Ok(idx.keys().cloned().collect())
    }

    /// The objects sharing any index value with `obj` (`Index`).
    pub fn index(&self, index: &str, obj: &T) -> Result<Vec<Arc<T>>, StoreError> {
        let inner = self.inner.read();
        let values: Vec<String> = if index == NAMESPACE_INDEX {
            vec![obj.namespace().unwrap_or("").to_string()]
        } else {
            let (_, f) = inner
                .indexers
                .iter()
                .find(|(n, _)| n == index)
                .ok_or_else(|| StoreError::NoSuchIndex(index.to_string()))?;
            f(obj)
        };
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for value in values {
            let slots = if index == NAMESPACE_INDEX {
                inner.by_namespace.get(&value)
            } else {
                inner.indices.get(index).and_then(|idx| idx.get(&value))
            };
            for slot in slots.into_iter().flat_map(|s| s.iter()) {
                if seen.insert(*slot)
                    && let Some(o) = inner.object(*slot)
                {
                    out.push(o.clone());
                }
            }
        }
        Ok(out)
    }

    /// Moves `slot` from the custom index values of `old` to those of `new` (either may be
    /// absent).
    fn update_indices(&self, inner: &mut Inner<T>, slot: Slot, old: Option<&T>, new: Option<&Arc<T>>) {
        let Inner { indexers, indices, .. } = inner;
        for (name, f) in indexers.iter() {
            let index = indices.entry(name.clone()).or_default();
            let new_values = new.map(|n| f(n)).unwrap_or_default();
            if let Some(o) = old {
                for value in f(o) {
                    if new_values.contains(&value) {
                        continue;
                    }
                    if let Some(set) = index.get_mut(&value) {
                        set.remove(&slot);
                        if set.is_empty() {
                            index.remove(&value);
                        }
                    }
                }
            }
            for value in new_values {
                index.entry(value).or_default().insert(slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Obj {
        ns: String,
        name: String,
        node: String,
    }

    impl CacheObject for Obj {
        fn namespace(&self) -> Option<&str> {
            Some(&self.ns)
        }
        fn name(&self) -> &str {
            &self.name
        }
    }

    fn by_node() -> (String, IndexFunc<Obj>) {
        ("node".to_string(), Arc::new(|o: &Obj| vec![o.node.clone()]))
    }

    fn obj(ns: &str, name: &str, node: &str) -> Arc<Obj> {
        Arc::new(Obj { ns: ns.into(), name: name.into(), node: node.into() })
    }

    #[test]
    fn updates_move_index_entries_and_deletes_remove_them() {
        let store = Indexer::new();
        store.add_indexers(vec![by_node()]).unwrap();
        store.upsert(obj("a", "p1", "n1"));
        store.upsert(obj("a", "p2", "n1"));
        store.upsert(obj("b", "p3", "n2"));
        assert_eq!(store.index_keys("node", "n1").unwrap(), ["a/p1", "a/p2"]);
        store.upsert(obj("a", "p1", "n2"));
        assert_eq!(store.index_keys("node", "n1").unwrap(), ["a/p2"]);
        assert_eq!(store.index_keys("node", "n2").unwrap(), ["a/p1", "b/p3"]);
        store.delete("a/p2");
        assert!(store.index_keys("node", "n1").unwrap().is_empty());
        let mut values = store.list_index_func_values("node").unwrap();
        values.sort();
        assert_eq!(values, ["n2"]);
        assert_eq!(store.by_index(NAMESPACE_INDEX, "b").unwrap()[0].name, "p3");
        assert_eq!(store.index("node", &obj("x", "y", "n2")).unwrap().len(), 2);
    }

    #[test]
    fn reads_share_the_stored_object() {
        let store = Indexer::new();
        let o = obj("a", "p", "n");
        store.upsert(o.clone());
        assert!(Arc::ptr_eq(&store.get("a/p").unwrap(), &o));
    }

    #[test]
    fn indexers_must_come_first_and_unknown_indexes_are_errors() {
        let store = Indexer::new();
        store.upsert(obj("a", "p", "n"));
        assert_eq!(store.add_indexers(vec![by_node()]), Err(StoreError::NotEmpty("node".into())));
        assert_eq!(store.by_index("nope", "x").unwrap_err(), StoreError::NoSuchIndex("nope".into()));
        let empty: Indexer<Obj> = Indexer::new();
        assert_eq!(
            empty.add_indexers(vec![(NAMESPACE_INDEX.to_string(), Arc::new(|_: &Obj| vec![]))]),
            Err(StoreError::Duplicate(NAMESPACE_INDEX.into()))
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Upsert(u8, u8, u8),
        Delete(u8, u8),
        Replace(Vec<(u8, u8, u8)>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3u8, 0..6u8, 0..3u8).prop_map(|(a, b, c)| Op::Upsert(a, b, c)),
            (0..3u8, 0..6u8).prop_map(|(a, b)| Op::Delete(a, b)),
            proptest::collection::vec((0..3u8, 0..6u8, 0..3u8), 0..6).prop_map(Op::Replace),
        ]
    }

    proptest! {
        /// The indexer answers like a plain map scanned on every query.
        #[test]
        fn indexer_matches_a_model(ops in proptest::collection::vec(op(), 0..60)) {
            let store = Indexer::new();
            store.add_indexers(vec![by_node()]).unwrap();
            let mut model: std::collections::BTreeMap<String, Obj> = Default::default();
            for op in ops {
                match op {
                    Op::Upsert(ns, name, node) => {
                        let o = obj(&format!("ns{ns}"), &format!("p{name}"), &format!("n{node}"));
                        model.insert(o.key(), (*o).clone());
                        store.upsert(o);
                    }
                    Op::Delete(ns, name) => {
                        let key = format!("ns{ns}/p{name}");
                        model.remove(&key);
                        store.delete(&key);
                    }
                    Op::Replace(list) => {
                        let objs: Vec<Arc<Obj>> = list.iter().map(|(a, b, c)| obj(&format!("ns{a}"), &format!("p{b}"), &format!("n{c}"))).collect();
                        model = objs.iter().map(|o| (o.key(), (**o).clone())).collect();
                        store.replace(objs);
                    }
                }
                prop_assert_eq!(store.len(), model.len());
                for node in 0..3 {
                    let value = format!("n{node}");
                    let expected: Vec<String> = model.iter().filter(|(_, o)| o.node == value).map(|(k, _)| k.clone()).collect();
                    prop_assert_eq!(store.index_keys("node", &value).unwrap(), expected);
                }
                for ns in 0..3 {
                    let value = format!("ns{ns}");
                    let expected: Vec<String> = model.iter().filter(|(_, o)| o.ns == value).map(|(k, _)| k.clone()).collect();
                    prop_assert_eq!(store.index_keys(NAMESPACE_INDEX, &value).unwrap(), expected);
                }
            }
        }
    }
}
