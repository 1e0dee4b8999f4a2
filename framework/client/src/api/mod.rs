//! The typed clientset, the dynamic client and the options of their verbs.
//!
//! Mirrors client-go's `kubernetes` clientset, `dynamic` client and metav1 options.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let config = server.kubeconfig().config;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use krust_client::{Clientset, CreateOptions, DynamicClient, GetOptions, ListOptions};
//! use kube_core::GroupVersionResource;
//!
//! // `config`: `Config::infer().await?` in an operator; here, an embedded krust-apiserver's.
//! let clientset = Clientset::new(&config)?;
//! let config_maps = clientset.core_v1().config_maps("default");
//! let mut cm = ConfigMap::default();
//! cm.metadata.name = Some("settings".into());
//! cm.data = Some([("mode".to_string(), "fast".to_string())].into());
//! config_maps.create(&cm, &CreateOptions::default()).await?;
//! assert_eq!(config_maps.list(&ListOptions::default()).await?.items.len(), 1);
//!
//! // The same object, untyped, through the dynamic client (any resource, by GVR).
//! let dynamic = DynamicClient::new(&config)?;
//! let gvr = GroupVersionResource::gvr("", "v1", "configmaps");
//! let obj = dynamic.resource(&gvr).namespace("default").get("settings", &GetOptions::default()).await?;
//! assert_eq!(obj.data["data"]["mode"], "fast");
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

mod clientset;
mod dynamic;
pub mod options;
mod resource;

pub use crate::pager::DEFAULT_PAGE_SIZE;
pub use clientset::{Clientset, TypedClient};
pub use dynamic::{DynamicClient, DynamicResource};
pub use resource::{Deleted, ResourceClient};
