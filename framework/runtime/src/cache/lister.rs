//! Listers (client-go's `listers`): typed reads from an informer's cache, all namespaces or one,
//! by label selector or by index.
//!
//! The cache holds bytes; a typed read decodes them. The listers of one informer share a small
//! bounded set of recently decoded objects ([`DEFAULT_RECENTLY_DECODED`] by default), so a
//! second read of an unchanged object is a lookup, and the cache's memory stays what the bytes
//! cost however many objects are read. A lister never answers "not found" for an object it
//! cannot decode: it returns the decode error.
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let clientset = krust_client::Clientset::new(&server.kubeconfig().config)?;
//! use k8s_openapi::api::core::v1::Pod;
//! use krust_runtime::cache::SharedInformerFactory;
//!
//! let pod: Pod = serde_json::from_value(serde_json::json!({
//!     "metadata": {"name": "web-1", "labels": {"app": "web"}},
//!     "spec": {"containers": [{"name": "c", "image": "nginx"}]}}))?;
//! clientset.core_v1().pods("default").create(&pod, &Default::default()).await?;
//! let factory = SharedInformerFactory::new(clientset.rest());
//! let informer = factory.informer::<Pod>();
//! factory.start();
//! factory.wait_synced().await;
//!
//! let lister = informer.lister();
//! let first = lister.namespace("default").get("web-1")?.expect("cached");
//! // A second read of the unchanged object shares the decoded value.
//! let second = lister.get("default/web-1")?.expect("cached");
//! assert!(std::sync::Arc::ptr_eq(&first, &second));
//! assert!(lister.namespace("other").get("web-1")?.is_none());
//! # factory.shutdown();
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use kube_core::{Expression, Selector};
use serde::de::DeserializeOwned;

pub use super::decoded::DEFAULT_RECENTLY_DECODED;
use super::{
    Synced,
    decoded::RecentlyDecoded,
    object::Cached,
    store::{Indexer, NAMESPACE_INDEX},
};

/// Reads of one informer's cache.
///
/// A lister from [`Context::lister`](crate::controller::Context::lister) answers
/// [`Error::NotSynced`](krust_client::Error::NotSynced) until its informer has synced (so
/// that a reconcile never takes "not listed yet" for "not found"); other listers read the
/// cache as it is, as client-go's do.
pub struct Lister<K> {
    indexer: Arc<Indexer<Cached<K>>>,
    recent: Arc<RecentlyDecoded<K>>,
    synced: Option<Synced>,
}

impl<K> Clone for Lister<K> {
    fn clone(&self) -> Self {
        Lister { indexer: self.indexer.clone(), recent: self.recent.clone(), synced: self.synced.clone() }
    }
}

impl<K: Send + Sync + 'static> std::fmt::Debug for Lister<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lister")
            .field("objects", &self.indexer.len())
            .field("decoded", &self.recent.len())
            .finish()
    }
}

/// Reads of one namespace of an informer's cache.
pub struct NamespaceLister<K> {
    lister: Lister<K>,
    namespace: String,
}

fn short_type_name<K>() -> &'static str {
    let name = std::any::type_name::<K>();
    name.rsplit("::").next().unwrap_or(name)
}

fn decode_error<K>(object: &Cached<K>, source: serde_json::Error) -> krust_client::Error
where
    K: Send + Sync,
{
    krust_client::Error::Decode {
        what: format!(
            "the cached object {} into {} (the server's object does not fit the Rust type: check the type's version)",
            object.key(),
            short_type_name::<K>()
        ),
        excerpt: krust_client::error::excerpt(object.raw()),
        source,
    }
}

fn expressions(selector: Option<&Selector>) -> Option<Vec<Expression>> {
    selector.filter(|s| !s.selects_all()).map(|s| s.clone().into_iter().collect())
}

impl<K: DeserializeOwned + Send + Sync + 'static> Lister<K> {
    /// A lister over `indexer` (an informer's cache) with its own set of recently decoded
    /// objects; [`SharedIndexInformer::lister`](super::SharedIndexInformer::lister) gives
    /// listers that share the informer's.
    pub fn new(indexer: Arc<Indexer<Cached<K>>>) -> Self {
        Self::with_recently_decoded(indexer, DEFAULT_RECENTLY_DECODED)
    }

    /// A lister keeping up to `capacity` recently decoded objects (0: decode on every read).
    pub fn with_recently_decoded(indexer: Arc<Indexer<Cached<K>>>, capacity: usize) -> Self {
        Lister { indexer, recent: Arc::new(RecentlyDecoded::new(capacity)), synced: None }
    }

    pub(crate) fn shared(indexer: Arc<Indexer<Cached<K>>>, recent: Arc<RecentlyDecoded<K>>) -> Self {
        Lister { indexer, recent, synced: None }
    }

    /// This lister, answering [`Error::NotSynced`](krust_client::Error::NotSynced) while
    /// `synced` is false.
    pub fn requiring_sync(mut self, synced: Synced) -> Self {
        self.synced = Some(synced);
        self
    }

    /// Whether reads are answered: the informer has synced, or this lister does not ask.
    pub fn is_synced(&self) -> bool {
        self.synced.as_ref().is_none_or(Synced::is_set)
    }

    fn check_synced(&self) -> Result<(), krust_client::Error> {
        if self.is_synced() {
            Ok(())
        } else {
            Err(krust_client::Error::NotSynced { what: short_type_name::<K>().to_string() })
        }
    }

    /// The typed object of a cached one: from the recently decoded set, or decoded now and
    /// remembered there (`remember`: false for bulk reads, which would flush the set).
    fn typed(&self, object: Arc<Cached<K>>, remember: bool) -> Result<Arc<K>, krust_client::Error> {
        if let Some(typed) = self.recent.get(&object) {
            return Ok(typed);
        }
        let typed = Arc::new(object.decode().map_err(|e| decode_error(&object, e))?);
        if remember {
            self.recent.insert(object, typed.clone());
        }
        Ok(typed)
    }

    fn typed_all(
        &self,
        objects: Vec<Arc<Cached<K>>>,
        selector: Option<&Selector>,
    ) -> Result<Vec<Arc<K>>, krust_client::Error> {
        let expressions = expressions(selector);
        objects
            .into_iter()
            .filter(|o| expressions.as_ref().is_none_or(|e| o.labels().matches_all(e)))
            .map(|o| self.typed(o, false))
            .collect()
    }

    /// Every object matching `selector` (`None`: all), in all namespaces. Each object not in
    /// the recently decoded set is decoded: filter with a selector or an index where you can.
    pub fn list(&self, selector: Option<&Selector>) -> Result<Vec<Arc<K>>, krust_client::Error> {
        self.check_synced()?;
        self.typed_all(self.indexer.list(), selector)
    }

    /// Every cached object matching `selector`, undecoded (metadata and bytes only).
    pub fn list_cached(
        &self,
        selector: Option<&Selector>,
    ) -> Result<Vec<Arc<Cached<K>>>, krust_client::Error> {
        self.check_synced()?;
        let expressions = expressions(selector);
        let mut objects = self.indexer.list();
        if let Some(e) = expressions {
            objects.retain(|o| o.labels().matches_all(&e));
        }
        Ok(objects)
    }

    /// One namespace.
    pub fn namespace(&self, namespace: &str) -> NamespaceLister<K> {
        NamespaceLister { lister: self.clone(), namespace: namespace.to_string() }
    }

    /// A cluster-scoped object by name (or any object by its `namespace/name` key); `Ok(None)`
    /// when it is not cached, an error when it does not decode into `K`.
    pub fn get(&self, key: &str) -> Result<Option<Arc<K>>, krust_client::Error> {
        self.check_synced()?;
        self.indexer.get(key).map(|o| self.typed(o, true)).transpose()
    }

    /// The cached object by key, undecoded.
    pub fn get_cached(&self, key: &str) -> Result<Option<Arc<Cached<K>>>, krust_client::Error> {
        self.check_synced()?;
        Ok(self.indexer.get(key))
    }

    /// The objects whose index `index` has value `value`.
    pub fn by_index(&self, index: &str, value: &str) -> Result<Vec<Arc<K>>, krust_client::Error> {
        self.check_synced()?;
        let objects = self
            .indexer
            .by_index(index, value)
            .map_err(|e| krust_client::Error::InvalidRequest(e.to_string()))?;
        self.typed_all(objects, None)
    }
}

impl<K: DeserializeOwned + Send + Sync + 'static> NamespaceLister<K> {
    /// The object `name` of this namespace; `Ok(None)` when it is not cached, an error when it
    /// does not decode into `K`.
    pub fn get(&self, name: &str) -> Result<Option<Arc<K>>, krust_client::Error> {
        self.lister.check_synced()?;
        self.lister.indexer.get_by_name(&self.namespace, name).map(|o| self.lister.typed(o, true)).transpose()
    }

    /// The cached object `name` of this namespace, undecoded.
    pub fn get_cached(&self, name: &str) -> Result<Option<Arc<Cached<K>>>, krust_client::Error> {
        self.lister.check_synced()?;
        Ok(self.lister.indexer.get_by_name(&self.namespace, name))
    }

    /// The objects of this namespace matching `selector` (`None`: all).
    pub fn list(&self, selector: Option<&Selector>) -> Result<Vec<Arc<K>>, krust_client::Error> {
        self.lister.check_synced()?;
        let objects = self.lister.indexer.by_index(NAMESPACE_INDEX, &self.namespace).unwrap_or_default();
        self.lister.typed_all(objects, selector)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde::Deserialize;

    use super::*;

    static LIVE: AtomicUsize = AtomicUsize::new(0);

    /// A typed object that counts how many of its kind are alive.
    struct Counted;

    impl<'de> Deserialize<'de> for Counted {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            serde::de::IgnoredAny::deserialize(d)?;
            LIVE.fetch_add(1, Ordering::SeqCst);
            Ok(Counted)
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            LIVE.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn store(n: usize) -> Arc<Indexer<Cached<Counted>>> {
        let store = Arc::new(Indexer::new());
        for i in 0..n {
            let json = format!(r#"{{"metadata":{{"name":"o{i}","namespace":"ns","resourceVersion":"1"}}}}"#);
            store.upsert(Arc::new(Cached::from_json(json.as_bytes()).unwrap()));
        }
        store
    }

    #[test]
    fn memory_does_not_grow_with_reads() {
        let lister = Lister::with_recently_decoded(store(5_000), 64);
        for i in 0..5_000 {
            let typed = lister.namespace("ns").get(&format!("o{i}")).unwrap();
            assert!(typed.is_some());
        }
        assert_eq!(LIVE.load(Ordering::SeqCst), 64, "only the recently decoded set holds typed objects");
        let all = lister.list(None).unwrap();
        assert_eq!(all.len(), 5_000);
        drop(all);
        assert_eq!(LIVE.load(Ordering::SeqCst), 64, "a bulk read leaves nothing behind");
        // A warm read answers from the set: the same Arc.
        let a = lister.get("ns/o4999").unwrap().unwrap();
        let b = lister.namespace("ns").get("o4999").unwrap().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b, lister));
        assert_eq!(LIVE.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_decode_failure_is_an_error_not_a_missing_object() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let store = Arc::new(Indexer::new());
        let bad = br#"{"metadata":{"name":"bad","namespace":"ns"},"data":{"k":5}}"#;
        store.upsert(Arc::new(Cached::<ConfigMap>::from_json(bad).unwrap()));
        let lister = Lister::new(store);
        let error = lister.namespace("ns").get("bad").unwrap_err();
        assert!(error.to_string().contains("ns/bad into ConfigMap"), "{error}");
        assert!(lister.get("ns/bad").is_err());
        assert!(lister.list(None).is_err());
        assert!(lister.namespace("ns").get("missing").unwrap().is_none());
        assert_eq!(lister.namespace("ns").get_cached("bad").unwrap().unwrap().name(), "bad");
    }
}
