//! krust: Kubernetes controllers and operators in Rust, with the capabilities of client-go and
//! controller-runtime.
//!
//! This crate is the one users depend on. It re-exports the parts of the framework
//! ([`client`]: configuration, transport and the clients; [`runtime`]: informers and work
//! queues) and the Kubernetes types they use ([`k8s_openapi`], [`kube_core`]); [`prelude`]
//! brings the everyday names into scope.
//!
//! ```no_run
//! use krust::prelude::*;
//! use krust::k8s_openapi::api::core::v1::Pod;
//!
//! # async fn run() -> Result<(), krust::Error> {
//! let config = Config::infer().await?.with_group_version(GroupVersion::gv("", "v1"));
//! let pod: Pod = RestClient::new(&config)?
//!     .get().namespace("default").resource("pods").name("test")
//!     .send().await?
//!     .into()?;
//! # Ok(()) }
//! ```

pub use k8s_openapi;
pub use krust_client as client;
pub use krust_runtime as runtime;
pub use kube_core;

pub use krust_client::{
    ApiError, Clientset, Config, ConfigError, DiscoveryClient, DynamicClient, Error, MetadataClient,
    PatchType, RestClient, RestMapper, Result, TypedClient, WatchStream,
};

/// The names most programs need: `use krust::prelude::*;`.
pub mod prelude {
    pub use krust_client::{
        Clientset, Config, CreateOptions, DeleteOptions, DiscoveryClient, DynamicClient, Error, GetOptions,
        ListOptions, PatchOptions, PatchType, RestClient, TypedClient, UpdateOptions, WatchStream,
        retry_on_conflict,
    };
    pub use krust_runtime::{
        cache::{Cached, EventHandler, Lister, SharedIndexInformer, SharedInformerFactory},
        workqueue::{Queue, RateLimiter, RateLimitingQueue, default_controller_rate_limiter},
    };
    pub use kube_core::{
        DynamicObject, GroupVersion, GroupVersionKind, GroupVersionResource, Resource, WatchEvent,
    };
}
