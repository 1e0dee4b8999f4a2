//! The shared informer factory (client-go's `informers.SharedInformerFactory`): one informer per
//! type however many times it is asked for, so that controllers watching the same type share
//! one watch and one cache; typed, dynamic (by GVR) and metadata-only informers; `start`,
//! `wait_for_cache_sync` and `shutdown` for all of them.
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let config = server.kubeconfig().config;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use krust_client::{Clientset, CreateOptions};
//! use krust_runtime::cache::SharedInformerFactory;
//!
//! let clientset = Clientset::new(&config)?;
//! let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": "a", "namespace": "team-a"}}))?;
//! # clientset.core_v1().namespaces().create(&serde_json::from_value(serde_json::json!({"metadata": {"name": "team-a"}}))?, &CreateOptions::default()).await?;
//! clientset.core_v1().config_maps("team-a").create(&cm, &CreateOptions::default()).await?;
//!
//! // One informer per type, however often it is asked for; here watching one namespace.
//! let factory = SharedInformerFactory::new(clientset.rest()).with_namespace("team-a");
//! let informer = factory.informer::<ConfigMap>();
//! assert!(std::sync::Arc::ptr_eq(&informer, &factory.informer::<ConfigMap>()));
//! factory.start();
//! assert!(factory.wait_for_cache_sync(std::time::Duration::from_secs(10)).await);
//! assert!(informer.lister().namespace("team-a").get("a")?.is_some());
//! factory.shutdown();
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

use std::{
    any::{Any, TypeId},
    collections::HashMap,
    sync::Arc,
    time::Duration,
};

use krust_client::{ListOptions, ResourceClient, RestClient, metadata::ACCEPT_LIST};
use kube_core::{DynamicObject, GroupVersion, GroupVersionResource, Resource, metadata::PartialObjectMeta};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use super::{
    Synced,
    informer::SharedIndexInformer,
    reflector::{Transform, WatchErrorHandler},
    scan::FieldPath,
};

trait Lifecycle: Send + Sync {
    fn start(&self);
    fn synced(&self) -> Synced;
    fn failing(&self) -> Option<(Duration, String)>;
    fn shutdown(&self);
    fn as_any(&self) -> Arc<dyn Any + Send + Sync>;
}

struct Entry<K> {
    informer: Arc<SharedIndexInformer<K>>,
    started: Mutex<bool>,
}

impl<K: DeserializeOwned + Send + Sync + 'static> Lifecycle for Entry<K> {
    fn start(&self) {
        let mut started = self.started.lock();
        if !*started {
            *started = true;
            tokio::spawn(self.informer.clone().run());
        }
    }
    fn synced(&self) -> Synced {
        self.informer.synced().clone()
    }
    fn failing(&self) -> Option<(Duration, String)> {
        self.informer.reflector().failing()
    }
    fn shutdown(&self) {
        self.informer.shutdown();
    }
    fn as_any(&self) -> Arc<dyn Any + Send + Sync> {
        self.informer.clone()
    }
}

/// What identifies a shared informer: how it reads (`typed`, `dynamic`, `metadata`), the
/// resource, and the Rust type it decodes into.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct InformerKey {
    flavor: &'static str,
    gvr: String,
    type_id: TypeId,
}

impl std::fmt::Display for InformerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.flavor, self.gvr)
    }
}

/// The factory.
pub struct SharedInformerFactory {
    rest: RestClient,
    namespace: Option<String>,
    /// Namespaces every namespaced informer watches (several: one list-and-watch each).
    namespaces: Vec<String>,
    /// Namespaces by resource (`group/version/resource`), replacing `namespaces` for it.
    namespaces_by_resource: HashMap<String, Vec<String>>,
    options: ListOptions,
    /// Selectors by resource (`group/version/resource`), replacing `options`' for it.
    options_by_resource: HashMap<String, ListOptions>,
    strip_managed_fields: bool,
    drop_fields: Vec<FieldPath>,
    drop_fields_by_type: HashMap<TypeId, Vec<FieldPath>>,
    recently_decoded: usize,
    watch_list: bool,
    resync: Option<Duration>,
    custom_resync: HashMap<TypeId, Duration>,
    /// `Transform<K>` by the `TypeId` of `K`.
    transforms: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    watch_error_handler: Option<WatchErrorHandler>,
    informers: Mutex<HashMap<InformerKey, Arc<dyn Lifecycle>>>,
}

impl std::fmt::Debug for SharedInformerFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedInformerFactory")
            .field("namespace", &self.namespace)
            .field("resync", &self.resync)
            .field("informers", &self.informers.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SharedInformerFactory {
    /// A factory over `rest`'s connections (any `RestClient` of the cluster).
    pub fn new(rest: &RestClient) -> Self {
        SharedInformerFactory {
            rest: rest.clone(),
            namespace: None,
            namespaces: Vec::new(),
            namespaces_by_resource: HashMap::new(),
            options: ListOptions::default(),
            options_by_resource: HashMap::new(),
            strip_managed_fields: false,
            drop_fields: Vec::new(),
            drop_fields_by_type: HashMap::new(),
            recently_decoded: super::lister::DEFAULT_RECENTLY_DECODED,
            watch_list: false,
            resync: None,
            custom_resync: HashMap::new(),
            transforms: HashMap::new(),
            watch_error_handler: None,
            informers: Mutex::new(HashMap::new()),
        }
    }

    /// Informers of this factory watch one namespace only.
    #[must_use]
    pub fn with_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_string());
        self
    }

    /// Informers of namespaced resources watch these namespaces only (controller-runtime's
    /// `cache.Options.DefaultNamespaces`): one list-and-watch per namespace into one cache per
    /// resource, so that listers and handlers see them together. Replaces
    /// [`with_namespace`](Self::with_namespace); empty: every namespace. Cluster-scoped typed
    /// resources are watched cluster-wide; for dynamic and metadata informers of a
    /// cluster-scoped resource, set [`with_namespaces_for`](Self::with_namespaces_for) it
    /// to an empty list.
    #[must_use]
    pub fn with_namespaces(mut self, namespaces: Vec<String>) -> Self {
        self.namespaces = namespaces;
        self
    }

    /// The namespaces one resource's informers watch, instead of
    /// [`with_namespaces`](Self::with_namespaces)' (controller-runtime's `ByObject.Namespaces`);
    /// empty: every namespace.
    #[must_use]
    pub fn with_namespaces_for(mut self, gvr: &GroupVersionResource, namespaces: Vec<String>) -> Self {
        self.namespaces_by_resource.insert(gvr_key(gvr), namespaces);
        self
    }

    /// [`with_namespaces_for`](Self::with_namespaces_for) the resource of `K`.
    #[must_use]
    pub fn with_namespaces_for_type<K: Resource<DynamicType = ()>>(self, namespaces: Vec<String>) -> Self {
        let gvr = GroupVersionResource::gvr(&K::group(&()), &K::version(&()), &K::plural(&()));
        self.with_namespaces_for(&gvr, namespaces)
    }

    /// Label and field selectors for every informer (client-go's `WithTweakListOptions`).
    #[must_use]
    pub fn with_list_options(mut self, options: ListOptions) -> Self {
        self.options = options;
        self
    }

    /// Label and field selectors for the informers of one resource — typed, dynamic and
    /// metadata-only alike — instead of [`with_list_options`](Self::with_list_options)'
    /// (controller-runtime's `cache.Options.ByObject`): the cache holds only the objects that
    /// match, and listers see only those.
    #[must_use]
    pub fn with_list_options_for(mut self, gvr: &GroupVersionResource, options: ListOptions) -> Self {
        self.options_by_resource.insert(gvr_key(gvr), options);
        self
    }

    /// [`with_list_options_for`](Self::with_list_options_for) the resource of `K`.
    #[must_use]
    pub fn with_list_options_for_type<K: Resource<DynamicType = ()>>(self, options: ListOptions) -> Self {
        let gvr = GroupVersionResource::gvr(&K::group(&()), &K::version(&()), &K::plural(&()));
        self.with_list_options_for(&gvr, options)
    }

    /// Every informer of this factory drops `metadata.managedFields` while decoding (see
    /// [`InformerOptions::strip_managed_fields`](super::InformerOptions)).
    #[must_use]
    pub fn with_strip_managed_fields(mut self, strip: bool) -> Self {
        self.strip_managed_fields = strip;
        self
    }

    /// Every informer of this factory drops these fields while decoding (controller-runtime's
    /// `DefaultTransform`, for the common case of removing fields).
    #[must_use]
    pub fn with_drop_fields(mut self, paths: Vec<FieldPath>) -> Self {
        self.drop_fields = paths;
        self
    }

    /// `K`'s informer also drops these fields (controller-runtime's `ByObject` transform). For
    /// dynamic and metadata informers, `K` is `DynamicObject` or `PartialObjectMeta`.
    #[must_use]
    pub fn with_drop_fields_for<K: 'static>(mut self, paths: Vec<FieldPath>) -> Self {
        self.drop_fields_by_type.insert(TypeId::of::<K>(), paths);
        self
    }

    /// How many typed objects each informer's listers keep decoded for repeated reads (default
    /// [`DEFAULT_RECENTLY_DECODED`](super::DEFAULT_RECENTLY_DECODED)).
    #[must_use]
    pub fn with_recently_decoded(mut self, objects: usize) -> Self {
        self.recently_decoded = objects;
        self
    }

    /// Every informer of this factory gets its initial state through WatchList.
    #[must_use]
    pub fn with_watch_list(mut self, watch_list: bool) -> Self {
        self.watch_list = watch_list;
        self
    }

    /// The default resync period of every informer's handlers (client-go's `defaultResync`).
    #[must_use]
    pub fn with_resync(mut self, period: Duration) -> Self {
        self.resync = Some(period);
        self
    }

    /// The resync period of `K`'s informer, overriding [`with_resync`](Self::with_resync)
    /// (client-go's `WithCustomResyncConfig`). For dynamic and metadata informers, `K` is
    /// `DynamicObject` or `PartialObjectMeta`.
    #[must_use]
    pub fn with_custom_resync<K: 'static>(mut self, period: Duration) -> Self {
        self.custom_resync.insert(TypeId::of::<K>(), period);
        self
    }

    /// A transform for `K`'s informer, applied to every object before it is cached (after the
    /// managedFields stripping, if on); client-go's `WithTransform`, typed.
    #[must_use]
    pub fn with_transform<K: Send + Sync + 'static>(mut self, transform: Transform<K>) -> Self {
        self.transforms.insert(TypeId::of::<K>(), Box::new(transform));
        self
    }

    /// Every informer reports its list and watch failures to `handler`.
    #[must_use]
    pub fn with_watch_error_handler(mut self, handler: WatchErrorHandler) -> Self {
        self.watch_error_handler = Some(handler);
        self
    }

    /// The namespaces an informer of `gvr` watches (empty: its client's scope).
    fn namespaces_of(&self, gvr: &GroupVersionResource, cluster_scoped: bool) -> Vec<String> {
        if cluster_scoped {
            return Vec::new();
        }
        self.namespaces_by_resource.get(&gvr_key(gvr)).unwrap_or(&self.namespaces).clone()
    }

    fn new_informer<K: DeserializeOwned + Send + Sync + 'static>(
        &self,
        gvr: &GroupVersionResource,
        client: ResourceClient<super::object::Cached<K>>,
        cluster_scoped: bool,
    ) -> Arc<SharedIndexInformer<K>> {
        let mut drop_fields = self.drop_fields.clone();
        drop_fields.extend(self.drop_fields_by_type.get(&TypeId::of::<K>()).into_iter().flatten().cloned());
        let options = super::informer::InformerOptions {
            strip_managed_fields: self.strip_managed_fields,
            drop_fields,
            recently_decoded: self.recently_decoded,
            watch_list: self.watch_list,
            transform: self
                .transforms
                .get(&TypeId::of::<K>())
                .and_then(|t| t.downcast_ref::<Transform<K>>())
                .cloned(),
            resync: self.custom_resync.get(&TypeId::of::<K>()).copied().or(self.resync),
            watch_error_handler: self.watch_error_handler.clone(),
            namespaces: self.namespaces_of(gvr, cluster_scoped),
        };
        let list = self.options_by_resource.get(&gvr_key(gvr)).unwrap_or(&self.options).clone();
        SharedIndexInformer::with_options(client, list, options)
    }

    fn get_or_create<K: DeserializeOwned + Send + Sync + 'static>(
        &self,
        kind: &'static str,
        gvr: &GroupVersionResource,
        cluster_scoped: bool,
        client: impl Fn() -> ResourceClient<super::object::Cached<K>>,
    ) -> Arc<SharedIndexInformer<K>> {
        // The Rust type is part of the key: two types for one GVR get two informers.
        let key = InformerKey { flavor: kind, gvr: gvr_key(gvr), type_id: TypeId::of::<K>() };
        let mut informers = self.informers.lock();
        let entry = informers.entry(key).or_insert_with(|| {
            Arc::new(Entry {
                informer: self.new_informer(gvr, client(), cluster_scoped),
                started: Mutex::new(false),
            })
        });
        match entry.as_any().downcast::<SharedIndexInformer<K>>() {
            Ok(informer) => informer,
            Err(_) => {
                // Cannot happen (the key holds the type); never panic for it.
                tracing::error!(gvr = %gvr_key(gvr), "informer type mismatch in the factory; using an unshared informer");
                self.new_informer(gvr, client(), cluster_scoped)
            }
        }
    }

    /// The informer of a typed resource (a k8s-openapi type or a derived custom resource).
    ///
    /// A cluster-scoped type is watched cluster-wide even when the factory is restricted to a
    /// namespace (as controller-runtime's cache with default namespaces does).
    pub fn informer<K>(&self) -> Arc<SharedIndexInformer<K>>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
        K::Scope: 'static,
    {
        let gvr = GroupVersionResource::gvr(&K::group(&()), &K::version(&()), &K::plural(&()));
        let cluster_scoped = krust_client::rules::is_cluster_scoped::<K>();
        self.get_or_create("typed", &gvr, cluster_scoped, || {
            if cluster_scoped {
                self.client_for_namespace(&gvr, None, None)
            } else {
                self.client_for(&gvr, None)
            }
        })
    }

    /// The informer of any resource by GVR, on `DynamicObject`.
    pub fn dynamic(&self, gvr: &GroupVersionResource) -> Arc<SharedIndexInformer<DynamicObject>> {
        self.get_or_create("dynamic", gvr, false, || self.client_for(gvr, None))
    }

    /// A metadata-only informer (`PartialObjectMetadata`): the cheapest way to follow a type.
    pub fn metadata(&self, gvr: &GroupVersionResource) -> Arc<SharedIndexInformer<PartialObjectMeta>> {
        self.get_or_create("metadata", gvr, false, || {
            self.client_for(gvr, Some(http::HeaderValue::from_static(ACCEPT_LIST)))
        })
    }

    fn client_for<T: DeserializeOwned + Clone>(
        &self,
        gvr: &GroupVersionResource,
        accept: Option<http::HeaderValue>,
    ) -> ResourceClient<T> {
        self.client_for_namespace(gvr, accept, self.namespace.as_deref())
    }

    fn client_for_namespace<T: DeserializeOwned + Clone>(
        &self,
        gvr: &GroupVersionResource,
        accept: Option<http::HeaderValue>,
        namespace: Option<&str>,
    ) -> ResourceClient<T> {
        let rest = self.rest.with_group_version(
            krust_client::rules::api_path(&gvr.group),
            &GroupVersion::gv(&gvr.group, &gvr.version),
        );
        let client = ResourceClient::new(rest, &gvr.resource, namespace);
        match accept {
            Some(a) => client.with_accept(a),
            None => client,
        }
    }

    /// Starts every informer asked for so far (informers asked for later need another start).
    pub fn start(&self) {
        for entry in self.informers.lock().values() {
            entry.start();
        }
    }

    /// Waits until every informer asked for so far has synced (each one's sync signal, no
    /// polling).
    pub async fn wait_synced(&self) {
        let signals: Vec<Synced> = self.informers.lock().values().map(|e| e.synced()).collect();
        futures_util::future::join_all(signals.iter().map(Synced::wait)).await;
    }

    /// Waits until every started informer has synced, or `timeout`; returns whether they did.
    pub async fn wait_for_cache_sync(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.wait_synced()).await.is_ok()
    }

    /// The informers started but not synced yet (as `kind:group/version/resource`).
    pub fn unsynced(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .informers
            .lock()
            .iter()
            .filter(|(_, e)| !e.synced().is_set())
            .map(|(k, _)| k.to_string())
            .collect();
        names.sort();
        names
    }

    /// The informers whose lists and watches have been failing for at least `after`, each with
    /// how long and the last error (what `/readyz` reports while the API server is away).
    pub fn failing(&self, after: Duration) -> Vec<String> {
        let mut failing: Vec<String> = self
            .informers
            .lock()
            .iter()
            .filter_map(|(key, e)| e.failing().map(|(since, error)| (key, since, error)))
            .filter(|(_, since, _)| *since >= after)
            .map(|(key, since, error)| {
                format!("{key}: list/watch failing for {}s ({error}); retrying with backoff", since.as_secs())
            })
            .collect();
        failing.sort();
        failing
    }

    /// Stops every informer.
    pub fn shutdown(&self) {
        for entry in self.informers.lock().values() {
            entry.shutdown();
        }
    }
}

fn gvr_key(gvr: &GroupVersionResource) -> String {
    format!("{}/{}/{}", gvr.group, gvr.version, gvr.resource)
}
