//! krust: Kubernetes controllers and operators in Rust, with the capabilities of client-go and
//! controller-runtime.
//!
//! This crate is the one users depend on. It re-exports the parts of the framework
//! ([`client`]: configuration, transport and the clients; [`runtime`]: informers, work queues,
//! controllers and the manager) and the Kubernetes types they use ([`k8s_openapi`],
//! [`kube_core`]); [`prelude`] brings the everyday names (mostly traits) into scope.
//!
//! The Kubernetes version is yours to choose, as k8s-openapi asks of every library: krust enables
//! no version feature, so a project depends on `k8s-openapi` with the one it targets
//! (`features = ["latest"]`, or `v1_33` ... `v1_37`).
//!
//! Cargo features: `runtime` (default: informers, controllers, the manager), `derive` (default:
//! [`custom_resource`] and kube-rs' [`CustomResource`] derive), `ring` (default) or `aws-lc-rs`
//! (rustls' cryptography), `testing` ([`testing`]: a reconcile context over an in-process
//! krust-apiserver, for `[dev-dependencies]`), `operator` (`krust::operator`: the flags,
//! logging and manager wiring of an operator binary, with clap). `default-features = false, features = ["ring"]`
//! is the clients alone.
//!
//! ```
//! use krust::prelude::*;
//! use krust::k8s_openapi::api::core::v1::Pod;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let config = server.kubeconfig().config;
//! // `config`: `Config::infer().await?` (kubeconfig or in-cluster); here an embedded server's.
//! let clientset = Clientset::new(&config)?;
//! let pods = clientset.core_v1().pods("default");
//! let pod: Pod = serde_json::from_value(serde_json::json!({
//!     "metadata": {"name": "test"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}))?;
//! pods.create(&pod, &CreateOptions::default()).await?;
//! let pod = pods.get("test", &GetOptions::default()).await?;
//! assert_eq!(pod.name_any(), "test");
//! assert_eq!(pod.spec.unwrap().restart_policy.as_deref(), Some("Always"), "defaulted by the server");
//! # server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! A custom resource:
//!
//! ```
//! use krust::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[krust::custom_resource(group = "example.com", version = "v1", kind = "Widget", namespaced)]
//! #[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
//! pub struct WidgetSpec {
//!     pub size: i32,
//! }
//!
//! let widget = Widget::new("w", WidgetSpec { size: 3 });
//! assert_eq!(widget.name_any(), "w");
//! assert_eq!(Widget::crd().metadata.name.as_deref(), Some("widgets.example.com"));
//! ```

pub use async_trait::async_trait;
pub use k8s_openapi;
pub use krust_client as client;
#[cfg(feature = "runtime")]
pub use krust_runtime as runtime;
pub use kube_core;
#[cfg(feature = "runtime")]
pub use prometheus_client;
pub use schemars;
pub use serde;
pub use serde_json;
#[cfg(feature = "runtime")]
pub use tokio_util::sync::CancellationToken;

#[cfg(feature = "derive")]
pub use krust_derive::custom_resource;
/// kube-rs' `CustomResource` derive. krust projects do not depend on `kube`, so its generated
/// code needs `#[kube(crates(...))]` pointing at krust's re-exports: write
/// [`#[krust::custom_resource(...)]`](custom_resource) instead, which adds them.
#[cfg(feature = "derive")]
pub use kube_derive::{CustomResource, KubeSchema};

#[cfg(feature = "operator")]
pub mod operator;
pub mod status;
#[cfg(feature = "opentelemetry")]
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use krust_client::{
    ApiError, Clientset, Config, ConfigError, DiscoveryClient, DynamicClient, Error, MetadataClient,
    PatchType, RestClient, RestMapper, Result, TypedClient, WatchStream,
};
#[cfg(feature = "runtime")]
pub use krust_runtime::{
    controller::{Action, Context, Controller, Reconciler, Request, TerminalError},
    events::{Event, EventRecorder, EventType},
    manager::Manager,
};

/// The names most programs need: `use krust::prelude::*;`. Mostly traits (so that methods
/// resolve), plus the handful of types every controller names.
///
/// ```
/// use krust::prelude::*;
/// use krust::k8s_openapi::api::core::v1::ConfigMap;
///
/// let mut cm = ConfigMap::default();
/// cm.metadata.name = Some("settings".into());
/// assert_eq!(cm.name_any(), "settings"); // ResourceExt
/// assert_eq!(ConfigMap::kind(&()), "ConfigMap"); // Resource
/// let _: fn(Request, &Context) -> Action = |_, _| Action::done();
/// ```
pub mod prelude {
    pub use crate::async_trait;
    pub use crate::status::{Condition, find_condition, is_condition_true, set_condition};
    #[cfg(feature = "derive")]
    pub use crate::{CustomResource, custom_resource};
    pub use krust_client::{
        Clientset, Config, CreateOptions, DeleteOptions, DynamicClient, Error, GetOptions, ListOptions,
        PatchOptions, PatchType, UpdateOptions,
    };
    #[cfg(feature = "runtime")]
    pub use krust_runtime::{
        cache::{EventHandler, ObjectView},
        controller::{Action, Context, Controller, Reconciler, Request},
        events::{Event, EventType},
        manager::Manager,
    };
    pub use kube_core::{CustomResourceExt, Resource, ResourceExt};
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
}
