//! The rate-limiting queue (client-go's `TypedRateLimitingInterface`): a [`Queue`] whose failed
//! items come back after the delay a [`RateLimiter`] decides.

use std::{hash::Hash, ops::Deref, sync::Arc};

use super::{
    limiters::RateLimiter,
    queue::{AddOptions, Queue, QueueConfig},
};

/// A [`Queue`] with a rate limiter; it dereferences to the queue for `add`, `get`, `done`, ...
pub struct RateLimitingQueue<T> {
    queue: Queue<T>,
    limiter: Arc<dyn RateLimiter<T>>,
}

impl<T> Clone for RateLimitingQueue<T> {
    fn clone(&self) -> Self {
        RateLimitingQueue { queue: self.queue.clone(), limiter: self.limiter.clone() }
    }
}

impl<T> std::fmt::Debug for RateLimitingQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitingQueue").field("queue", &self.queue).finish_non_exhaustive()
    }
}

impl<T> Deref for RateLimitingQueue<T> {
    type Target = Queue<T>;
    fn deref(&self) -> &Queue<T> {
        &self.queue
    }
}

impl<T: Hash + Eq + Clone + Send + Sync + 'static> RateLimitingQueue<T> {
    /// An unnamed queue without metrics, limited by `limiter` (e.g.
    /// [`default_controller_rate_limiter`](super::default_controller_rate_limiter)).
    pub fn new(limiter: impl RateLimiter<T> + 'static) -> Self {
        Self::with_config(limiter, QueueConfig::default())
    }

    /// A named queue, with metrics if configured.
    pub fn with_config(limiter: impl RateLimiter<T> + 'static, config: QueueConfig) -> Self {
        RateLimitingQueue { queue: Queue::with_config(config), limiter: Arc::new(limiter) }
    }

    /// Adds the item after the delay the limiter gives it now (counting one more failure).
    pub fn add_rate_limited(&self, item: T) {
        self.add_rate_limited_with_priority(item, 0);
    }

    /// [`add_rate_limited`](Self::add_rate_limited) with a priority.
    pub fn add_rate_limited_with_priority(&self, item: T, priority: i32) {
        let delay = self.limiter.when(&item);
        self.queue.add_with(item, AddOptions { priority, after: Some(delay) });
    }

    /// Forgets the item's failures (call it when the item succeeded); it is not removed from
    /// the queue.
    pub fn forget(&self, item: &T) {
        self.limiter.forget(item);
    }

    /// How many times the item was rate-limited since it was last forgotten.
    pub fn num_requeues(&self, item: &T) -> u32 {
        self.limiter.num_requeues(item)
    }

    /// The queue.
    pub fn queue(&self) -> &Queue<T> {
        &self.queue
    }
}
