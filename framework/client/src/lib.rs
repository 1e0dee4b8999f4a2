//! krust-client: the Kubernetes clients of krust, on hyper and rustls.
//!
//! - [`Config`]: where the API server is and how to authenticate (kubeconfig files merged as
//!   client-go merges them, in-cluster service accounts, exec credential plugins).
//! - [`RestClient`]: the fluent request builder of client-go's `rest` package, with watches
//!   decoded incrementally ([`WatchStream`]).
//! - [`Error`]: API failures (with apimachinery's `is_not_found`, `is_conflict`, ...) kept apart
//!   from transport and decoding failures.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use k8s_openapi::api::core::v1::Pod;
//! use krust_client::{Config, RestClient};
//! use kube_core::GroupVersion;
//!
//! let config = Config::infer().await?.with_group_version(GroupVersion::gv("", "v1"));
//! let client = RestClient::new(&config)?;
//! let pod: Pod = client.get().namespace("default").resource("pods").name("test").send().await?.into()?;
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
