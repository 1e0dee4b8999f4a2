//! Controllers (controller-runtime's `controller` and `builder` packages): informer events are
//! mapped to object keys in a rate-limited queue, which workers hand to a user's
//! [`Reconciler`].
//!
//! ```no_run
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
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = Manager::builder(krust_client::Config::infer().await?).build()?;
//! Controller::for_::<ConfigMap>().owns::<Deployment>().concurrency(4).build(Echo).register(&manager)?;
//! manager.run_until_signal().await?;
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
