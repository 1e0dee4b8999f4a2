//! The informer cache, client-go's `tools/cache`: the [`Reflector`] (ListAndWatch) feeding the
//! [`DeltaFifo`], the [`SharedIndexInformer`] applying deltas to the thread-safe [`Indexer`] and
//! calling event handlers, and [`Cached`], the representation of a cached object: its JSON
//! bytes (decoded in one scan, managedFields and other [`FieldPath`]s dropped in that pass) and
//! where its metadata lies in them. Typed reads go through [`Lister`]s, which decode on demand
//! and share a bounded set of recently decoded objects.
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
//! let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": "settings", "labels": {"app": "web"}}}))?;
//! clientset.core_v1().config_maps("default").create(&cm, &CreateOptions::default()).await?;
//!
//! let factory = SharedInformerFactory::new(clientset.rest());
//! let lister = factory.informer::<ConfigMap>().lister();
//! factory.start();
//! factory.wait_synced().await;
//! // Reads from memory: no request to the API server.
//! let settings = lister.get("default/settings")?.expect("cached");
//! assert_eq!(settings.metadata.labels.as_ref().unwrap()["app"], "web");
//! let selector = krust_client::rules::parse_label_selector("app=web")?;
//! assert_eq!(lister.list(Some(&selector))?.len(), 1);
//! factory.shutdown();
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

mod decoded;
pub mod delta_fifo;
pub mod factory;
pub mod informer;
pub mod lister;
pub mod object;
pub mod reflector;
pub mod scan;
pub mod store;
mod synced;

pub use delta_fifo::{Delta, DeltaFifo, DeltaObject, DeltaType, KnownObjects, Replace};
pub use factory::SharedInformerFactory;
pub use informer::{EventHandler, HANDLER_BUFFER, HandlerRegistration, InformerOptions, SharedIndexInformer};
pub use lister::{DEFAULT_RECENTLY_DECODED, Lister, NamespaceLister};
pub use object::{Cached, Labels, ObjectView};
pub use reflector::{PAGE_SIZE, Reflector, Transform, WatchErrorHandler};
pub use scan::{FieldPath, FieldPathError, ScanError};
pub use store::{CacheObject, IndexFunc, Indexer, NAMESPACE_INDEX, StoreError};
pub use synced::Synced;
