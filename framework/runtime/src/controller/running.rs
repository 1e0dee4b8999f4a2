//! A registered controller started (controller-runtime's `controller.Start`): its rate-limited
//! queue, its reconcile [`Context`], its workers' metrics, and its watches' handlers installed
//! on the manager's shared informers.

use std::sync::Arc;

use krust_client::{Clientset, Config, DynamicClient};
use tokio_util::sync::CancellationToken;

use super::{
    Context, Controller, ControllerMetrics, Request,
    enqueue::{InstallContext, Installed},
    reconciler::ContextInner,
    worker::Running,
};
use crate::{
    cache::SharedInformerFactory,
    events::EventBroadcaster,
    workqueue::{
        PrometheusMetrics, QueueConfig, RateLimiter, RateLimitingQueue, default_controller_rate_limiter,
    },
};

/// What the manager lends every controller it starts.
pub(crate) struct StartParts<'a> {
    pub config: &'a Config,
    pub clientset: &'a Clientset,
    pub dynamic: &'a DynamicClient,
    pub factory: &'a Arc<SharedInformerFactory>,
    pub broadcaster: &'a EventBroadcaster,
    pub identity: &'a str,
    pub queue_metrics: &'a Arc<PrometheusMetrics>,
    pub controller_metrics: &'a ControllerMetrics,
    pub sync_timeout: std::time::Duration,
}

impl Controller {
    /// Builds the running parts of this controller and installs its watches' handlers; the
    /// workers start later ([`Running::run`]), once the caches have synced.
    pub(crate) fn start(self, parts: &StartParts<'_>) -> (Running, Vec<Installed>) {
        let limiter: Box<dyn RateLimiter<Request>> =
            self.spec.rate_limiter.unwrap_or_else(|| Box::new(default_controller_rate_limiter()));
        let queue = RateLimitingQueue::with_config(
            limiter,
            QueueConfig::named(self.name.clone()).with_metrics(parts.queue_metrics.clone()),
        );
        let install = InstallContext {
            factory: parts.factory,
            queue: queue.clone(),
            filters: self.spec.filters.clone(),
            initial_priority: self.spec.initial_priority,
        };
        let installed: Vec<Installed> = self.spec.installers.into_iter().map(|i| i(&install)).collect();
        let ctx = Context {
            inner: Arc::new(ContextInner {
                config: parts.config.clone(),
                clientset: parts.clientset.clone(),
                dynamic: parts.dynamic.clone(),
                factory: parts.factory.clone(),
                recorder: parts.broadcaster.recorder(&self.name, parts.identity),
                cancel: CancellationToken::new(),
                controller: self.name.clone(),
                sync_timeout: parts.sync_timeout,
                applied: Arc::default(),
            }),
        };
        let metrics = parts.controller_metrics.for_controller(&self.name, self.spec.concurrency);
        let running = Running {
            name: self.name,
            queue,
            reconciler: self.reconciler,
            ctx,
            metrics,
            concurrency: self.spec.concurrency,
            timeout: self.spec.reconcile_timeout,
        };
        (running, installed)
    }
}
