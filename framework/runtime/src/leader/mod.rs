//! Leader election on `coordination.k8s.io/v1` Leases (client-go's `tools/leaderelection`):
//! of several replicas, one runs the controllers; another takes over when it stops or dies.
//!
//! The algorithm and defaults are client-go's:
//! - A candidate tries to acquire the lease every `retry_period` (jittered ×1.2). It may take
//!   it when there is none, when its holder is empty (released), or when the record has not
//!   changed for `lease_duration` — measured on the candidate's own clock from when *it* last
//!   saw the record change, so clocks of different machines are never compared.
//! - Every write carries the resourceVersion it read: of two candidates racing for an expired
//!   lease, one wins and the other gets 409 Conflict.
//! - The leader renews every `retry_period`; if it cannot renew within `renew_deadline` (shorter
//!   than `lease_duration`) of the start of its last renewal — a renewal in flight at the
//!   deadline is given up — it stops leading and cancels its work *before* the lease can expire
//!   for the others. Each request is bounded by `renew_deadline / 2`.
//! - `release_on_cancel`: on shutdown the leader empties the holder, so another candidate takes
//!   over at its next retry instead of waiting for the lease to expire.
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let config = server.kubeconfig().config;
//! use std::time::Duration;
//!
//! use krust_client::Clientset;
//! use krust_runtime::leader::{LeaderCallbacks, LeaderElectionConfig, LeaderElector, LeaseLock};
//! use tokio_util::sync::CancellationToken;
//!
//! let clientset = Clientset::new(&config)?;
//! let lock = LeaseLock::new(&clientset, "default", "my-operator", "replica-a");
//! let elector = LeaderElector::new(lock, LeaderElectionConfig::default())?;
//! let state = elector.state();
//! let stop = CancellationToken::new();
//! let led = CancellationToken::new();
//! let callbacks = LeaderCallbacks::new().on_started_leading({
//!     let (stop, led) = (stop.clone(), led.clone());
//!     move |_work| async move {
//!         // The controllers would run here until `_work` is cancelled; this one steps down at once.
//!         led.cancel();
//!         stop.cancel();
//!     }
//! });
//! tokio::time::timeout(Duration::from_secs(30), elector.run(callbacks, stop)).await?;
//! assert!(led.is_cancelled(), "this replica led");
//! assert!(!state.is_leader(), "and released the Lease on the way out");
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

mod elector;
mod lock;

pub use elector::{LeaderCallbacks, LeaderElectionConfig, LeaderElector, LeaderError, LeaderState};
pub use lock::{LeaderElectionRecord, LeaseLock};
