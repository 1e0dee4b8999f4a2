//! The thread-safe store and its indexes (client-go's `cache.ThreadSafeStore` and `Indexer`):
//! the informer's cache, shared by every lister.
//!
//! Invariants:
//! - objects are held as `Arc<T>`: a read hands out a reference count, never a deep copy;
//! - every index maps an index value to exactly the objects whose current version produces that
//!   value (the same `Arc`s the store holds): an update moves the key from the old object's
//!   values to the new one's, a delete removes it, `replace` rebuilds every index from scratch;
//! - no key is stored: objects and index entries live in hash tables keyed by the objects' own
//!   namespace and name (a cached object costs the store two pointers, not two key strings);
//! - indexers are added before the store holds objects (as in client-go, adding one later is an
//!   error), the namespace index ([`NAMESPACE_INDEX`]) is always present;
//! - one `parking_lot::RwLock` guards objects and indexes together, so a reader never sees an
//!   object without its index entries; a write holds it for one update only.

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

/// A set of objects keyed by their namespace and name, without a copy of the key: the table
/// hashes and compares the objects' own names.
type ObjectSet<T> = HashTable<Arc<T>>;

fn ident<T: CacheObject>(o: &T) -> (&str, &str) {
    (o.namespace().unwrap_or(""), o.name())
}

/// A store key split into namespace and name (no namespace: cluster-scoped).
fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

struct Inner<T> {
    items: ObjectSet<T>,
    by_namespace: HashMap<String, ObjectSet<T>>,
    indexers: Vec<(String, IndexFunc<T>)>,
    /// index name -> index value -> objects
    indices: HashMap<String, HashMap<String, ObjectSet<T>>>,
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
                items: HashTable::new(),
                by_namespace: HashMap::new(),
                indexers: Vec::new(),
                indices: HashMap::new(),
            }),
            hasher: DefaultHashBuilder::default(),
        }
    }

    fn hash(&self, namespace: &str, name: &str) -> u64 {
        self.hasher.hash_one((namespace, name))
    }

    /// Inserts or replaces `obj` in `set`; returns the replaced object.
    fn set_insert(&self, set: &mut ObjectSet<T>, obj: Arc<T>) -> Option<Arc<T>> {
        let (ns, name) = ident(&*obj);
        let hash = self.hash(ns, name);
        let entry = set.entry(
            hash,
            |o| ident(&**o) == (ns, name),
            |o| {
                let (ns, name) = ident(&**o);
                self.hash(ns, name)
            },
        );
        match entry {
            Entry::Occupied(mut e) => Some(std::mem::replace(e.get_mut(), obj)),
            Entry::Vacant(e) => {
                e.insert(obj);
                None
            }
        }
    }

    fn set_remove(&self, set: &mut ObjectSet<T>, namespace: &str, name: &str) -> Option<Arc<T>> {
        let hash = self.hash(namespace, name);
        set.find_entry(hash, |o| ident(&**o) == (namespace, name)).ok().map(|e| e.remove().0)
    }

    fn set_get<'a>(&self, set: &'a ObjectSet<T>, namespace: &str, name: &str) -> Option<&'a Arc<T>> {
        set.find(self.hash(namespace, name), |o| ident(&**o) == (namespace, name))
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
        let old = self.set_insert(&mut inner.items, obj.clone());
        let namespace = obj.namespace().unwrap_or("");
        match inner.by_namespace.get_mut(namespace) {
            Some(set) => {
                self.set_insert(set, obj.clone());
            }
            None => {
                let mut set = HashTable::new();
                self.set_insert(&mut set, obj.clone());
                inner.by_namespace.insert(namespace.to_string(), set);
            }
        }
        if !inner.indexers.is_empty() {
            self.update_indices(inner, old.as_deref(), Some(&obj));
        }
        old
    }

    /// Removes an object by key; returns it.
    pub fn delete(&self, key: &str) -> Option<Arc<T>> {
        let (namespace, name) = split_key(key);
        let mut guard = self.inner.write();
        let inner = &mut *guard;
        let old = self.set_remove(&mut inner.items, namespace, name)?;
        if let Some(set) = inner.by_namespace.get_mut(namespace) {
            self.set_remove(set, namespace, name);
            if set.is_empty() {
                inner.by_namespace.remove(namespace);
            }
        }
        if !inner.indexers.is_empty() {
            self.update_indices(inner, Some(&old), None);
        }
        Some(old)
    }

    /// Replaces the whole content; indexes are rebuilt.
    pub fn replace(&self, objects: Vec<Arc<T>>) {
        let mut guard = self.inner.write();
        let inner = &mut *guard;
        inner.items.clear();
        inner.by_namespace.clear();
        for index in inner.indices.values_mut() {
            index.clear();
        }
        for obj in objects {
            let old = self.set_insert(&mut inner.items, obj.clone());
            let namespace = obj.namespace().unwrap_or("").to_string();
            let set = inner.by_namespace.entry(namespace).or_default();
            self.set_insert(set, obj.clone());
            if !inner.indexers.is_empty() {
                self.update_indices(inner, old.as_deref(), Some(&obj));
            }
        }
    }

    /// The object with this key.
    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        let (namespace, name) = split_key(key);
        self.get_by_name(namespace, name)
    }

    /// The object `name` of `namespace` (`""` for cluster-scoped objects), without building
    /// its key.
    pub fn get_by_name(&self, namespace: &str, name: &str) -> Option<Arc<T>> {
        let inner = self.inner.read();
        self.set_get(&inner.items, namespace, name).cloned()
    }

    /// Every object.
    pub fn list(&self) -> Vec<Arc<T>> {
        self.inner.read().items.iter().cloned().collect()
    }

    /// Every key.
    pub fn list_keys(&self) -> Vec<String> {
        self.inner.read().items.iter().map(|o| o.key()).collect()
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
        f: impl FnOnce(Option<&ObjectSet<T>>) -> R,
    ) -> Result<R, StoreError> {
        let inner = self.inner.read();
        if index == NAMESPACE_INDEX {
            return Ok(f(inner.by_namespace.get(value)));
        }
        let idx = inner.indices.get(index).ok_or_else(|| StoreError::NoSuchIndex(index.to_string()))?;
        Ok(f(idx.get(value)))
    }

    /// The objects whose index `index` has value `value` (client-go's `ByIndex`).
    pub fn by_index(&self, index: &str, value: &str) -> Result<Vec<Arc<T>>, StoreError> {
        self.with_index(index, value, |set| set.map(|s| s.iter().cloned().collect()).unwrap_or_default())
    }

    /// The keys whose index `index` has value `value` (`IndexKeys`), sorted.
    pub fn index_keys(&self, index: &str, value: &str) -> Result<Vec<String>, StoreError> {
        let mut keys: Vec<String> = self
            .with_index(index, value, |set| set.map(|s| s.iter().map(|o| o.key()).collect()))?
            .unwrap_or_default();
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
            let set = if index == NAMESPACE_INDEX {
                inner.by_namespace.get(&value)
            } else {
                inner.indices.get(index).and_then(|idx| idx.get(&value))
            };
            for o in set.into_iter().flat_map(|s| s.iter()) {
                if seen.insert(o.key()) {
                    out.push(o.clone());
                }
            }
        }
        Ok(out)
    }

    /// Moves the custom index entries of a key from `old` to `new` (either may be absent).
    fn update_indices(&self, inner: &mut Inner<T>, old: Option<&T>, new: Option<&Arc<T>>) {
        let Inner { indexers, indices, .. } = inner;
        for (name, f) in indexers.iter() {
            let index = indices.entry(name.clone()).or_default();
            let new_values = new.map(|n| f(n)).unwrap_or_default();
            if let Some(o) = old {
                let (namespace, obj_name) = ident(o);
                for value in f(o) {
                    if new_values.contains(&value) {
                        continue;
                    }
                    if let Some(set) = index.get_mut(&value) {
                        self.set_remove(set, namespace, obj_name);
                        if set.is_empty() {
                            index.remove(&value);
                        }
                    }
                }
            }
            if let Some(n) = new {
                for value in new_values {
                    self.set_insert(index.entry(value).or_default(), n.clone());
                }
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
