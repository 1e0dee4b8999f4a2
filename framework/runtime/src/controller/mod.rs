//! Controllers (controller-runtime's `controller` and `builder` packages): informer events are
//! mapped to object keys in a rate-limited queue, which workers hand to a user's
//! [`Reconciler`].
//!
//! ```
//! use std::time::Duration;
//! use async_trait::async_trait;
//! use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
//! use krust_runtime::{controller::{Action, Context, Controller, Reconciler, Request}, manager::Manager};
//!
//! struct Echo;
//!
//! #[async_trait]
//! impl Reconciler for Echo {
//!     type Error = krust_client::Error;
//!     async fn reconcile(&self, req: Request, ctx: &Context) -> Result<Action, Self::Error> {
//!         let Some(cm) = ctx.lister::<ConfigMap>().namespace(&req.namespace).get(&req.name)? else {
//!             return Ok(Action::done()); // deleted
//!         };
//!         tracing::info!(keys = cm.data.as_ref().map_or(0, |d| d.len()), "reconciled");
//!         Ok(Action::requeue_after(Duration::from_secs(300)))
//!     }
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let config = server.kubeconfig().config;
//! // `config`: `krust_client::Config::infer().await?` in an operator.
//! let manager = Manager::builder(config).without_metrics_server().build()?;
//! Controller::for_::<ConfigMap>().owns::<Deployment>().concurrency(4).build(Echo).register(&manager)?;
//! // In a binary: `manager.run_until_signal().await?` (graceful shutdown on SIGTERM/SIGINT).
//! let running = tokio::spawn(manager.clone().run());
//! # for _ in 0..500 { if manager.is_ready() { break } tokio::time::sleep(Duration::from_millis(10)).await; }
//! assert!(manager.is_ready());
//! manager.shutdown_token().cancel();
//! running.await??;
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

mod builder;
mod enqueue;
mod finalizer;
pub mod helpers;
mod ownership;
pub mod predicate;
mod rbac;
mod reconciler;
mod running;
mod status;
mod wait;
mod worker;

pub use builder::{Controller, ControllerBuilder};
pub use enqueue::Mapper;
pub use rbac::{WatchRole, WatchedResource, rbac_rules};
pub use reconciler::{Action, Context, Reconciler, Request, TerminalError, is_terminal};
pub use worker::ControllerMetrics;

pub(crate) use running::StartParts;
pub(crate) use worker::Running;
