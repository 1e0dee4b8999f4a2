//! The thread-safe store and its indexes (client-go's `cache.ThreadSafeStore` and `Indexer`):
//! the informer's cache, shared by every lister.
//!
//! Invariants:
//! - objects are held as `Arc<T>`: a read hands out a reference count, never a deep copy;
//! - every index maps an index value to exactly the keys whose current object produces that
//!   value: an update removes the old object's values before adding the new one's, a delete
//!   removes them, `replace` rebuilds every index from scratch;
//! - indexers are added before the store holds objects (as in client-go, adding one later is an
//!   error), the namespace index ([`NAMESPACE_INDEX`]) is always present;
//! - one `parking_lot::RwLock` guards objects and indexes together, so a reader never sees an
//!   object without its index entries; a write holds it for one update only.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

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

struct Inner<T> {
    items: HashMap<String, Arc<T>>,
    indexers: HashMap<String, IndexFunc<T>>,
    /// index name -> index value -> keys
    indices: HashMap<String, HashMap<String, BTreeSet<String>>>,
}

/// The indexed, thread-safe store.
pub struct Indexer<T> {
    inner: RwLock<Inner<T>>,
}

impl<T: CacheObject> Default for Indexer<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for Indexer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.read();
        f.debug_struct("Indexer")
            .field("objects", &inner.items.len())
            .field("indexers", &inner.indexers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<T: CacheObject> Indexer<T> {
    /// An empty store with the namespace index.
    pub fn new() -> Self {
        let namespace: IndexFunc<T> = Arc::new(|o: &T| vec![o.namespace().unwrap_or("").to_string()]);
        let mut indexers = HashMap::new();
        indexers.insert(NAMESPACE_INDEX.to_string(), namespace);
        Indexer {
            inner: RwLock::new(Inner {
                items: HashMap::new(),
                indexers,
                indices: HashMap::from([(NAMESPACE_INDEX.to_string(), HashMap::new())]),
            }),
        }
    }

    /// Adds indexers; only while the store is empty.
    pub fn add_indexers(&self, indexers: Vec<(String, IndexFunc<T>)>) -> Result<(), StoreError> {
        let mut inner = self.inner.write();
        for (name, _) in &indexers {
            if !inner.items.is_empty() {
                return Err(StoreError::NotEmpty(name.clone()));
            }
            if inner.indexers.contains_key(name) {
                return Err(StoreError::Duplicate(name.clone()));
            }
        }
        for (name, f) in indexers {
            inner.indices.insert(name.clone(), HashMap::new());
            inner.indexers.insert(name, f);
        }
        Ok(())
    }

    /// Adds or replaces an object; returns the previous one.
    pub fn upsert(&self, obj: Arc<T>) -> Option<Arc<T>> {
        let key = obj.key();
        let mut inner = self.inner.write();
        let old = inner.items.insert(key.clone(), obj.clone());
        update_indices(&mut inner, old.as_deref(), Some(&obj), &key);
        old
    }

    /// Removes an object by key; returns it.
    pub fn delete(&self, key: &str) -> Option<Arc<T>> {
        let mut inner = self.inner.write();
        let old = inner.items.remove(key);
        if let Some(o) = &old {
            update_indices(&mut inner, Some(o), None, key);
        }
        old
    }

    /// Replaces the whole content (a relist); indexes are rebuilt.
    pub fn replace(&self, objects: Vec<Arc<T>>) {
        let mut inner = self.inner.write();
        inner.items = objects.into_iter().map(|o| (o.key(), o)).collect();
        for index in inner.indices.values_mut() {
            index.clear();
        }
        let keys: Vec<(String, Arc<T>)> = inner.items.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (key, obj) in keys {
            update_indices(&mut inner, None, Some(&obj), &key);
        }
    }

    /// The object with this key.
    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        self.inner.read().items.get(key).cloned()
    }

    /// Every object.
    pub fn list(&self) -> Vec<Arc<T>> {
        self.inner.read().items.values().cloned().collect()
    }

    /// Every key.
    pub fn list_keys(&self) -> Vec<String> {
        self.inner.read().items.keys().cloned().collect()
    }

    /// The number of objects.
    pub fn len(&self) -> usize {
        self.inner.read().items.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The objects whose index `index` has value `value` (client-go's `ByIndex`).
    pub fn by_index(&self, index: &str, value: &str) -> Result<Vec<Arc<T>>, StoreError> {
        let inner = self.inner.read();
        let idx = inner.indices.get(index).ok_or_else(|| StoreError::NoSuchIndex(index.to_string()))?;
        Ok(idx
            .get(value)
            .map(|keys| keys.iter().filter_map(|k| inner.items.get(k).cloned()).collect())
            .unwrap_or_default())
    }

    /// The keys whose index `index` has value `value` (`IndexKeys`).
    pub fn index_keys(&self, index: &str, value: &str) -> Result<Vec<String>, StoreError> {
        let inner = self.inner.read();
        let idx = inner.indices.get(index).ok_or_else(|| StoreError::NoSuchIndex(index.to_string()))?;
        Ok(idx.get(value).map(|keys| keys.iter().cloned().collect()).unwrap_or_default())
    }

    /// Every value of index `index` (`ListIndexFuncValues`).
    pub fn list_index_func_values(&self, index: &str) -> Result<Vec<String>, StoreError> {
        let inner = self.inner.read();
        let idx = inner.indices.get(index).ok_or_else(|| StoreError::NoSuchIndex(index.to_string()))?;
        Ok(idx.keys().cloned().collect())
    }

    /// The objects sharing any index value with `obj` (`Index`).
    pub fn index(&self, index: &str, obj: &T) -> Result<Vec<Arc<T>>, StoreError> {
        let inner = self.inner.read();
        let f = inner.indexers.get(index).ok_or_else(|| StoreError::NoSuchIndex(index.to_string()))?;
        let idx = &inner.indices[index];
        let mut keys = BTreeSet::new();
        for value in f(obj) {
            if let Some(k) = idx.get(&value) {
                keys.extend(k.iter().cloned());
            }
        }
        Ok(keys.iter().filter_map(|k| inner.items.get(k).cloned()).collect())
    }
}

fn update_indices<T>(inner: &mut Inner<T>, old: Option<&T>, new: Option<&T>, key: &str) {
    let Inner { indexers, indices, .. } = inner;
    for (name, f) in indexers.iter() {
        let index = indices.entry(name.clone()).or_default();
        if let Some(o) = old {
            for value in f(o) {
                if let Some(keys) = index.get_mut(&value) {
                    keys.remove(key);
                    if keys.is_empty() {
                        index.remove(&value);
                    }
                }
            }
        }
        if let Some(n) = new {
            for value in f(n) {
                index.entry(value).or_default().insert(key.to_string());
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
