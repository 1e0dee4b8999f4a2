//! krust-runtime: the controller runtime of krust, with client-go's semantics and invariants:
//! the informer cache (`cache`), the work queues (`workqueue`), controllers and their
//! reconcilers (`controller`), events (`events`), leader election (`leader`), the manager
//! (`manager`) and the admission and conversion webhook server (`webhook`).
//!
//! The pieces without the manager: an informer's events become keys in a rate-limited queue,
//! which a worker takes and reads from the cache (what a controller does for you).
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let clientset = krust_client::Clientset::new(&server.kubeconfig().config)?;
//! use std::sync::Arc;
//!
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use krust_runtime::cache::{Cached, EventHandler, SharedInformerFactory};
//! use krust_runtime::workqueue::{RateLimitingQueue, default_controller_rate_limiter};
//!
//! struct Enqueue(Arc<RateLimitingQueue<String>>);
//! impl EventHandler<ConfigMap> for Enqueue {
//!     fn on_add(&self, obj: &Arc<Cached<ConfigMap>>, _initial: bool) {
//!         self.0.add(format!("{}/{}", obj.namespace(), obj.name()));
//!     }
//! }
//!
//! let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": "settings"}}))?;
//! clientset.core_v1().config_maps("default").create(&cm, &Default::default()).await?;
//!
//! let queue = Arc::new(RateLimitingQueue::new(default_controller_rate_limiter::<String>()));
//! let factory = SharedInformerFactory::new(clientset.rest());
//! let informer = factory.informer::<ConfigMap>();
//! informer.add_event_handler(Enqueue(queue.clone()));
//! factory.start();
//!
//! let key = queue.get().await.expect("a key");
//! assert_eq!(key, "default/settings");
//! let cm = informer.lister().get(&key)?.expect("in the cache");
//! assert_eq!(cm.metadata.name.as_deref(), Some("settings"));
//! queue.forget(&key);
//! queue.done(&key);
//! factory.shutdown();
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod cache;
pub mod controller;
pub mod events;
pub mod leader;
pub mod manager;
mod random;
pub mod webhook;
pub mod workqueue;
