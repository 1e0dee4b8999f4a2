//! Unit tests of reconcilers (feature `testing`): a [`Context`] over an in-process
//! krust-apiserver, without a manager, so that a test calls `reconcile(req, &ctx)` itself and
//! asserts on what it wrote (controller-runtime's envtest, without binaries).
//!
//! ```
//! use krust::prelude::*;
//! use krust::k8s_openapi::api::core::v1::ConfigMap;
//! use krust::testing::TestEnv;
//!
//! struct Labeler;
//!
//! #[async_trait]
//! impl Reconciler for Labeler {
//!     type Error = krust::Error;
//!     async fn reconcile(&self, req: Request, ctx: &Context) -> Result<Action, Self::Error> {
//!         let patch = serde_json::json!({"metadata": {"labels": {"seen": "yes"}}});
//!         ctx.clientset().core_v1().config_maps(&req.namespace)
//!             .patch(&req.name, PatchType::Merge, &patch, &PatchOptions::default()).await?;
//!         Ok(Action::done())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let env = TestEnv::start().await?;
//! let cms = env.clientset().core_v1().config_maps("default");
//! let mut cm = ConfigMap::default();
//! cm.metadata.name = Some("settings".into());
//! cms.create(&cm, &Default::default()).await?;
//!
//! env.reconcile(&Labeler, Request::new("default", "settings")).await?;
//! let cm = cms.get("settings", &GetOptions::default()).await?;
//! assert_eq!(cm.labels().get("seen").map(String::as_str), Some("yes"));
//! # Ok(()) }
//! ```

use std::time::Duration;

use krust_apiserver::ApiServer;
use krust_client::{Clientset, Config, CreateOptions, GetOptions, PatchOptions};
use krust_runtime::controller::{Action, Context, Reconciler, Request, helpers};
use kube_core::{CustomResourceExt, Resource};
use serde::{Serialize, de::DeserializeOwned};

/// How long [`TestEnv::install_crd`] waits for a CRD to be established.
const CRD_ESTABLISHED_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the caches may take to sync or to see an object.
const CACHE_TIMEOUT: Duration = Duration::from_secs(10);

/// An in-process krust-apiserver and a reconcile [`Context`] over it. The server runs until
/// [`shutdown`](Self::shutdown) or the end of the test's Tokio runtime.
#[derive(Debug)]
pub struct TestEnv {
    server: ApiServer,
    context: Context,
}

/// What can go wrong setting up a test environment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestError {
    /// The in-process server did not start.
    #[error("the in-process krust-apiserver did not start: {0}")]
    Server(#[source] krust_apiserver::Error),
    /// The clients could not be built, or a request failed.
    #[error(transparent)]
    Client(#[from] krust_client::Error),
    /// A CRD was not established in time.
    #[error("CRD {0} was not established within {CRD_ESTABLISHED_TIMEOUT:?}; check its schema")]
    NotEstablished(String),
    /// An object did not reach the context's cache in time.
    #[error("{0} did not reach the cache within {CACHE_TIMEOUT:?}; is the type served (its CRD installed)?")]
    NotCached(String),
}

impl TestEnv {
    /// Starts an in-process krust-apiserver (a free local port, plain HTTP) and builds a
    /// [`Context`] over it named `test`.
    pub async fn start() -> Result<TestEnv, TestError> {
        let server = ApiServer::builder().start().await.map_err(TestError::Server)?;
        Self::over(server)
    }

    /// A test environment over a server you started (to choose its options or faults).
    pub fn over(server: ApiServer) -> Result<TestEnv, TestError> {
        let context = Context::new(server.kubeconfig().config, "test")?;
        Ok(TestEnv { server, context })
    }

    /// The reconcile context: the clients, the caches (listers answer once their informer has
    /// synced), the event recorder.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The typed clientset, for seeding objects and reading back what a reconcile wrote.
    pub fn clientset(&self) -> &Clientset {
        self.context.clientset()
    }

    /// The client configuration of the server.
    pub fn config(&self) -> &Config {
        self.context.config()
    }

    /// The server (its URL, its kubeconfig for kubectl, its fault injection).
    pub fn server(&self) -> &ApiServer {
        &self.server
    }

    /// Installs the CRD of `K` (server-side apply) and waits until it is established.
    pub async fn install_crd<K>(&self) -> Result<(), TestError>
    where
        K: CustomResourceExt + Resource<DynamicType = ()>,
    {
        let crd = K::crd();
        let name = crd.metadata.name.clone().unwrap_or_default();
        let crds = self.clientset().apiextensions_v1().custom_resource_definitions();
        crds.apply(&crd, &PatchOptions::apply("krust-testing").force()).await?;
        let established = |c: Option<
            &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        >| {
            c.and_then(|c| c.status.as_ref())
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
        };
        match helpers::wait_for(&crds, &name, established, CRD_ESTABLISHED_TIMEOUT).await {
            Ok(_) => Ok(()),
            Err(helpers::WaitError::Client(e)) => Err(TestError::Client(e)),
            Err(_) => Err(TestError::NotEstablished(name)),
        }
    }

    /// Stops the server.
    pub async fn shutdown(self) {
        self.context.cancellation().cancel();
        self.server.shutdown().await;
    }

    /// Creates `obj` (in its namespace, if it names one) and waits until the context's cache of
    /// `K` holds it, so that the next reconcile reads it: what a test seeds, the reconciler sees.
    pub async fn create<K>(&self, obj: &K) -> Result<K, TestError>
    where
        K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let client = self.clientset().typed::<K>(obj.meta().namespace.as_deref());
        let created = client.create(obj, &CreateOptions::default()).await?;
        self.wait_cached(&created).await?;
        Ok(created)
    }

    /// Waits until the context's cache of `K` holds `obj` at its resourceVersion (or a later
    /// one), starting that informer if needed.
    pub async fn wait_cached<K>(&self, obj: &K) -> Result<(), TestError>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Send + Sync + 'static,
    {
        let meta = obj.meta();
        let (namespace, name) =
            (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default());
        let want: u64 = meta.resource_version.as_deref().and_then(|rv| rv.parse().ok()).unwrap_or(0);
        let lister = self.context.lister::<K>();
        let deadline = tokio::time::Instant::now() + CACHE_TIMEOUT;
        loop {
            let cached = match lister.namespace(&namespace).get_cached(&name) {
                Ok(cached) => cached,
                Err(krust_client::Error::NotSynced { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            if cached.is_some_and(|c| c.resource_version().parse::<u64>().is_ok_and(|rv| rv >= want)) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(TestError::NotCached(format!("{} {namespace}/{name}", K::kind(&()))));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Waits until the context's cache of `K` holds the server's current version of the object
    /// (`namespace` is `None` for a cluster-scoped one): after a reconcile changed it (a finalizer
    /// added, a status written), the next reconcile reads what the server has, as it would once
    /// the watch event arrived.
    pub async fn catch_up<K>(&self, namespace: Option<&str>, name: &str) -> Result<K, TestError>
    where
        K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let current = self.clientset().typed::<K>(namespace).get(name, &GetOptions::default()).await?;
        self.wait_cached(&current).await?;
        Ok(current)
    }

    /// Calls `reconciler` once for `req` with this environment's context, as a worker would.
    /// When the reconcile fails while a cache it started has not synced yet (its first read of
    /// a type answers [`Error::NotSynced`](krust_client::Error::NotSynced)), the caches are
    /// waited for and the reconcile is called again, as a worker's retry would; any other
    /// result is yours to assert on.
    pub async fn reconcile<R: Reconciler>(&self, reconciler: &R, req: Request) -> Result<Action, R::Error> {
        let factory = self.context.factory();
        factory.wait_for_cache_sync(CACHE_TIMEOUT).await;
        let mut attempts = 0;
        loop {
            let result = reconciler.reconcile(req.clone(), &self.context).await;
            if result.is_err() && attempts < 5 && !factory.unsynced().is_empty() {
                attempts += 1;
                factory.wait_for_cache_sync(CACHE_TIMEOUT).await;
                continue;
            }
            return result;
        }
    }
}
