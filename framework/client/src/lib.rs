//! krust-client: the Kubernetes clients of krust, on hyper and rustls.
//!
//! - [`Config`]: where the API server is and how to authenticate (kubeconfig files merged as
//!   client-go merges them, in-cluster service accounts, exec credential plugins).
//! - [`RestClient`]: the fluent request builder of client-go's `rest` package, with watches
//!   decoded incrementally ([`WatchStream`]).
//! - [`Error`]: API failures (with apimachinery's `is_not_found`, `is_conflict`, ...) kept apart
//!   from transport and decoding failures.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let config = server.kubeconfig().config;
//! use k8s_openapi::api::core::v1::Pod;
//! use krust_client::{Clientset, Config};
//!
//! // In an operator: `let config = Config::infer().await?;` (kubeconfig or in-cluster).
//! let clientset = Clientset::new(&config)?;
//! let pods = clientset.core_v1().pods("default");
//! let missing = pods.get("test", &Default::default()).await.unwrap_err();
//! assert!(missing.is_not_found());
//! # let _: Option<Config> = None;
//! # let _: Option<Pod> = None;
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod api;
pub mod auth;
pub mod config;
pub mod discovery;
pub mod error;
pub mod metadata;
pub mod pager;
pub mod rest;
pub mod retry;
pub mod rules;
mod transport;

pub use api::{Clientset, Deleted, DynamicClient, ResourceClient, TypedClient, options::*};
pub use config::{Config, ConfigError};
pub use discovery::{CachedDiscovery, Discovery, DiscoveryClient, Mapping, RestMapper};
pub use error::{ApiError, Error, Result};
pub use metadata::MetadataClient;
pub use rest::{
    MetricsHook, PatchType, Request, RequestMetrics, Response, RestClient, WatchLines, WatchStream,
};
pub use retry::{DEFAULT_RETRY, retry_on_conflict};
pub use transport::crypto_provider;
