//! Work queues for controllers (client-go's `util/workqueue`, with controller-runtime's
//! priorities): what informer events are turned into, and what workers take their keys from.
//!
//! - [`Queue`]: a FIFO of distinct items with client-go's dirty/processing sets, item
//!   priorities, and `add_after` delays (client-go's `Interface` and `DelayingInterface`).
//! - [`RateLimitingQueue`]: a [`Queue`] plus a [`RateLimiter`] deciding how long a failed item
//!   waits (`add_rate_limited`, `forget`, `num_requeues`).
//! - Rate limiters: [`ItemExponentialFailureRateLimiter`], [`ItemFastSlowRateLimiter`],
//!   [`BucketRateLimiter`], [`MaxOfRateLimiter`], [`WithMaxWaitRateLimiter`], and
//!   [`default_controller_rate_limiter`].
//! - Metrics: the [`MetricsProvider`] hook, with [`PrometheusMetrics`] exporting client-go's
//!   `workqueue_*` series.
//!
//! A worker loop, as controllers run it:
//!
//! ```
//! use krust_runtime::workqueue::{RateLimitingQueue, default_controller_rate_limiter};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let queue = RateLimitingQueue::new(default_controller_rate_limiter::<String>());
//! queue.add("default/web".to_string());
//! queue.add("default/web".to_string()); // already queued: collapses into one
//! queue.shut_down(); // (here, so that the loop ends)
//! while let Some(key) = queue.get().await {
//!     let ok = !key.is_empty(); // reconcile `key` here
//!     if ok {
//!         queue.forget(&key); // success: reset its backoff
//!     } else {
//!         queue.add_rate_limited(key.clone()); // failure: retry after a backoff
//!     }
//!     queue.done(&key);
//! }
//! # }
//! ```

mod limiters;
mod metrics;
mod queue;
mod rate_limiting;
#[cfg(test)]
mod tests;

pub use limiters::{
    BucketRateLimiter, ItemExponentialFailureRateLimiter, ItemFastSlowRateLimiter, MaxOfRateLimiter,
    RateLimiter, WithMaxWaitRateLimiter, default_controller_rate_limiter, default_item_based_rate_limiter,
};
pub use metrics::{InFlight, InFlightWork, MetricsProvider, PrometheusMetrics, QueueMetrics};
pub use queue::{AddOptions, Queue, QueueConfig};
pub use rate_limiting::RateLimitingQueue;
