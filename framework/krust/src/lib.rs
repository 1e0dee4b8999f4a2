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

pub use async_trait::async_trait;
pub use k8s_openapi;
pub use krust_client as client;
pub use krust_runtime as runtime;
pub use kube_core;
/// Derives a custom resource type (kube-rs' derive). Generated code reaches `kube::core` by
/// default; with krust, point it at our re-exports:
/// `#[kube(crates(kube_core = "::krust::kube_core", k8s_openapi = "::krust::k8s_openapi",
/// schemars = "::krust::schemars", serde_json = "::krust::serde_json"))]`.
pub use kube_derive::CustomResource;
pub use schemars;
pub use serde;
pub use serde_json;

pub mod status;

pub use krust_client::{
    ApiError, Clientset, Config, ConfigError, DiscoveryClient, DynamicClient, Error, MetadataClient,
    PatchType, RestClient, RestMapper, Result, TypedClient, WatchStream,
};

/// The names most programs need: `use krust::prelude::*;`.
pub mod prelude {
    pub use crate::status::{Condition, find_condition, is_condition_true, set_condition};
    pub use crate::{CustomResource, async_trait};
    pub use krust_client::{
        Clientset, Config, CreateOptions, DeleteOptions, DiscoveryClient, DynamicClient, Error, GetOptions,
        ListOptions, PatchOptions, PatchType, RestClient, TypedClient, UpdateOptions, WatchStream,
        retry_on_conflict,
    };
    pub use krust_runtime::{
        cache::{Cached, EventHandler, Lister, ObjectView, SharedIndexInformer, SharedInformerFactory},
        controller::{
            Action, Context, Controller, Reconciler, Request, TerminalError,
            helpers::{
                FinalizerEvent, OperationResult, create_or_update, finalizer, set_controller_reference,
            },
            predicate,
        },
        events::{EventRecorder, EventType},
        manager::Manager,
        workqueue::{Queue, RateLimiter, RateLimitingQueue, default_controller_rate_limiter},
    };
    pub use kube_core::CustomResourceExt;
    pub use kube_core::{
        DynamicObject, GroupVersion, GroupVersionKind, GroupVersionResource, Resource, WatchEvent,
    };
    pub use schemars::JsonSchema;
}
