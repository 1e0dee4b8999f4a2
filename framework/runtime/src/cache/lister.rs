//! Listers (client-go's `listers`): typed reads from an informer's cache, all namespaces or one,
//! by label selector or by index. Objects are decoded on first read and then shared (`Arc`).

use std::sync::Arc;

use kube_core::{Selector, SelectorExt};
use serde::de::DeserializeOwned;

use super::{
    object::Cached,
    store::{Indexer, NAMESPACE_INDEX, StoreError},
};

/// Reads of one informer's cache.
pub struct Lister<K> {
    indexer: Arc<Indexer<Cached<K>>>,
}

impl<K> Clone for Lister<K> {
    fn clone(&self) -> Self {
        Lister { indexer: self.indexer.clone() }
    }
}

/// Reads of one namespace of an informer's cache.
pub struct NamespaceLister<K> {
    indexer: Arc<Indexer<Cached<K>>>,
    namespace: String,
}

fn typed<K: DeserializeOwned>(objects: Vec<Arc<Cached<K>>>, selector: Option<&Selector>) -> Vec<Arc<K>> {
    objects
        .into_iter()
        .filter(|o| selector.is_none_or(|s| s.matches(&o.meta().labels)))
        .filter_map(|o| match o.get() {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(name = %o.meta().name, namespace = %o.meta().namespace, error = %e, "a cached object does not decode into its type; skipped");
                None
            }
        })
        .collect()
}

impl<K: DeserializeOwned + Send + Sync + 'static> Lister<K> {
    /// A lister over `indexer` (an informer's cache).
    pub fn new(indexer: Arc<Indexer<Cached<K>>>) -> Self {
        Lister { indexer }
    }

    /// Every object matching `selector` (`None`: all), in all namespaces.
    pub fn list(&self, selector: Option<&Selector>) -> Vec<Arc<K>> {
        typed(self.indexer.list(), selector)
    }

    /// One namespace.
    pub fn namespace(&self, namespace: &str) -> NamespaceLister<K> {
        NamespaceLister { indexer: self.indexer.clone(), namespace: namespace.to_string() }
    }

    /// A cluster-scoped object by name (or any object by its `namespace/name` key).
    pub fn get(&self, key: &str) -> Option<Arc<K>> {
        self.indexer.get(key).and_then(|o| o.get().ok())
    }

    /// The objects whose index `index` has value `value`.
    pub fn by_index(&self, index: &str, value: &str) -> Result<Vec<Arc<K>>, StoreError> {
        Ok(typed(self.indexer.by_index(index, value)?, None))
    }
}

impl<K: DeserializeOwned + Send + Sync + 'static> NamespaceLister<K> {
    /// The object `name` of this namespace.
    pub fn get(&self, name: &str) -> Option<Arc<K>> {
        self.indexer.get(&format!("{}/{name}", self.namespace)).and_then(|o| o.get().ok())
    }

    /// The objects of this namespace matching `selector` (`None`: all).
    pub fn list(&self, selector: Option<&Selector>) -> Vec<Arc<K>> {
        typed(self.indexer.by_index(NAMESPACE_INDEX, &self.namespace).unwrap_or_default(), selector)
    }
}
