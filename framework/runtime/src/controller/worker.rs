//! Running a controller: its queue, its workers, what each reconcile outcome does to the queue
//! (controller-runtime's `reconcileHandler`), and the controller metrics.
//!
//! | outcome | queue | `controller_runtime_reconcile_total{result}` |
//! |---|---|---|
//! | `Ok(Action::done())` | `forget` | `success` |
//! | `Ok(Action::requeue_after(d))` | `forget`, `add_after(d)` | `requeue_after` |
//! | `Ok(Action::requeue())` | `add_rate_limited` | `requeue` |
//! | `Err(e)` | `add_rate_limited` | `error` (+ `reconcile_errors_total`) |
//! | `Err(terminal)` | `forget` | `error` (+ errors and `terminal_reconcile_errors_total`) |
//! | panic | `add_rate_limited` | `error` (+ errors and `reconcile_panics_total`) |
//! | timeout | `add_rate_limited` | `error` (+ errors) |

use std::{
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use futures_util::FutureExt;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::reconciler::{Action, Context, Reconciler, Request};
use crate::workqueue::RateLimitingQueue;

/// What the worker needs of a reconciler, without its error type.
#[async_trait]
pub(crate) trait ErasedReconciler: Send + Sync {
    /// `Err((message, terminal))`.
    async fn reconcile(&self, req: Request, ctx: &Context) -> Result<Action, (String, bool)>;
}

pub(crate) struct Erased<R>(pub R);

#[async_trait]
impl<R: Reconciler> ErasedReconciler for Erased<R> {
    async fn reconcile(&self, req: Request, ctx: &Context) -> Result<Action, (String, bool)> {
        self.0.reconcile(req, ctx).await.map_err(|e| {
            let terminal = self.0.is_terminal(&e);
            (error_chain(&e), terminal)
        })
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        next = cause.source();
    }
    text
}

/// A fresh id for one reconcile's span (controller-runtime's `reconcileID`): a random
/// version-4 UUID, so that the log lines of one reconcile can be told from the next one's.
fn reconcile_id() -> String {
    let (a, b) = (crate::random::random_u64(), crate::random::random_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabel {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    controller: String,
    result: String,
}

/// controller-runtime's controller metrics, registered once per manager.
#[derive(Clone)]
pub struct ControllerMetrics {
    total: Family<ResultLabels, Counter>,
    errors: Family<ControllerLabel, Counter>,
    terminal: Family<ControllerLabel, Counter>,
    panics: Family<ControllerLabel, Counter>,
    time: Family<ControllerLabel, Histogram, fn() -> Histogram>,
    max_concurrent: Family<ControllerLabel, Gauge>,
    active: Family<ControllerLabel, Gauge>,
}

impl std::fmt::Debug for ControllerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerMetrics").finish_non_exhaustive()
    }
}

fn reconcile_time_histogram() -> Histogram {
    // controller-runtime's buckets for controller_runtime_reconcile_time_seconds.
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
        1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0, 25.0, 30.0,
        40.0, 50.0, 60.0,
    ])
}

impl ControllerMetrics {
    /// Registers the controller metrics in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = ControllerMetrics {
            total: Family::default(),
            errors: Family::default(),
            terminal: Family::default(),
            panics: Family::default(),
            time: Family::new_with_constructor(reconcile_time_histogram),
            max_concurrent: Family::default(),
            active: Family::default(),
        };
        registry.register(
            "controller_runtime_reconcile",
            "Reconciles per controller and result",
            m.total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Reconciles that ended in an error, per controller",
            m.errors.clone(),
        );
        registry.register(
            "controller_runtime_terminal_reconcile_errors",
            "Reconciles that ended in a terminal (not retried) error, per controller",
            m.terminal.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_panics",
            "Reconciles that panicked, per controller",
            m.panics.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Seconds each reconcile took, per controller",
            m.time.clone(),
        );
        registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "How many reconciles a controller may run at once",
            m.max_concurrent.clone(),
        );
        registry.register(
            "controller_runtime_active_workers",
            "How many workers are reconciling now, per controller",
            m.active.clone(),
        );
        m
    }

    /// One controller's series, created at 0 (as controller-runtime does at start) and resolved
    /// once, so that a reconcile does no label allocation or family lookup.
    pub(crate) fn for_controller(&self, name: &str, concurrency: usize) -> Handles {
        let total = |result: &str| {
            self.total.get_or_create(&ResultLabels { controller: name.into(), result: result.into() }).clone()
        };
        let l = ControllerLabel { controller: name.to_string() };
        self.max_concurrent.get_or_create(&l).set(concurrency as i64);
        Handles {
            success: total("success"),
            error: total("error"),
            requeue: total("requeue"),
            requeue_after: total("requeue_after"),
            errors: self.errors.get_or_create(&l).clone(),
            terminal: self.terminal.get_or_create(&l).clone(),
            panics: self.panics.get_or_create(&l).clone(),
            time: self.time.get_or_create(&l).clone(),
            active: self.active.get_or_create(&l).clone(),
        }
    }
}

/// The metric series of one controller.
pub(crate) struct Handles {
    success: Counter,
    error: Counter,
    requeue: Counter,
    requeue_after: Counter,
    errors: Counter,
    terminal: Counter,
    panics: Counter,
    time: Histogram,
    active: Gauge,
}

/// A running controller's parts.
pub(crate) struct Running {
    pub name: String,
    pub queue: RateLimitingQueue<Request>,
    pub reconciler: Arc<dyn ErasedReconciler>,
    pub ctx: Context,
    pub metrics: Handles,
    pub concurrency: usize,
    pub timeout: Option<Duration>,
}

impl Running {
    /// Runs `concurrency` workers until `stop`. Then, on a shutdown (`graceful` is true), lets
    /// in-flight reconciles finish for up to `grace`, after which this term's context is
    /// cancelled and the rest abandoned; when leadership was lost (`graceful` is false) they are
    /// abandoned at once, since another replica may lead as soon as the lease expires (a
    /// controller-runtime manager exits then). Abandoned requests go back to the queue, so the
    /// workers reconcile them again when they run again (after leadership is regained). Each
    /// run has a context of its own, whose cancellation token is fresh. Returns whether every
    /// in-flight reconcile finished.
    pub async fn run(
        self: Arc<Self>,
        stop: CancellationToken,
        grace: Duration,
        graceful: impl Fn() -> bool,
    ) -> bool {
        let abandon = CancellationToken::new();
        let ctx = self.ctx.with_cancel(abandon.clone());
        let mut workers = JoinSet::new();
        for _ in 0..self.concurrency {
            let (this, stop, abandon, ctx) = (self.clone(), stop.clone(), abandon.clone(), ctx.clone());
            workers.spawn(async move { this.worker(stop, abandon, ctx).await });
        }
        stop.cancelled().await;
        let grace = if graceful() { grace } else { Duration::ZERO };
        let drained =
            tokio::time::timeout(grace, async { while workers.join_next().await.is_some() {} }).await.is_ok();
        if !drained {
            let active = self.metrics.active.get();
            if grace.is_zero() {
                tracing::warn!(controller = %self.name, active, "leadership lost; abandoning the reconciles in flight");
            } else {
                tracing::warn!(controller = %self.name, ?grace, active, "reconciles still running after the grace period; cancelling them");
            }
            abandon.cancel();
            while workers.join_next().await.is_some() {}
        }
        drained
    }

    async fn worker(&self, stop: CancellationToken, abandon: CancellationToken, ctx: Context) {
        loop {
            let request = tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                r = self.queue.get() => match r {
                    Some(r) => r,
                    None => return,
                },
            };
            // Abandoned first: a reconcile that sees its context cancelled and returns is
            // still reconciled again by the next run.
            let finished = tokio::select! {
                biased;
                _ = abandon.cancelled() => false,
                _ = self.process(&request, &ctx) => true,
            };
            if !finished {
                // Dropped mid-way: the request is reconciled again by the next run.
                self.queue.add(request.clone());
            }
            self.queue.done(&request);
            if !finished {
                return;
            }
        }
    }

    async fn process(&self, request: &Request, ctx: &Context) {
        let m = &self.metrics;
        m.active.inc();
        // Decremented when the reconcile ends or is dropped (abandoned).
        let _active = ActiveGuard(&m.active);
        let span = tracing::info_span!(
            "reconcile",
            controller = %self.name,
            namespace = %request.namespace,
            name = %request.name,
            reconcile_id = %reconcile_id()
        );
        let start = Instant::now();
        let call = AssertUnwindSafe(self.reconciler.reconcile(request.clone(), ctx)).catch_unwind();
        let outcome = match self.timeout {
            Some(limit) => match tokio::time::timeout(limit, call).instrument(span.clone()).await {
                Ok(o) => o,
                Err(_) => Ok(Err((format!("reconcile timed out after {limit:?}"), false))),
            },
            None => call.instrument(span.clone()).await,
        };
        m.time.observe(start.elapsed().as_secs_f64());
        let _entered = span.enter();
        match outcome {
            Ok(Ok(action)) => {
                if action.is_rate_limited_requeue() {
                    self.queue.add_rate_limited(request.clone());
                    m.requeue.inc();
                } else if let Some(delay) = action.delay() {
                    self.queue.forget(request);
                    self.queue.add_after(request.clone(), delay);
                    m.requeue_after.inc();
                } else {
                    self.queue.forget(request);
                    m.success.inc();
                }
            }
            Ok(Err((message, terminal))) => {
                m.errors.inc();
                m.error.inc();
                if terminal {
                    m.terminal.inc();
                    self.queue.forget(request);
                    tracing::error!(error = %message, "reconcile failed with a terminal error; not retrying");
                } else {
                    self.queue.add_rate_limited(request.clone());
                    tracing::error!(error = %message, retries = self.queue.num_requeues(request), "reconcile failed; retrying with backoff");
                }
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_string());
                m.panics.inc();
                m.errors.inc();
                m.error.inc();
                self.queue.add_rate_limited(request.clone());
                tracing::error!(panic = %message, "reconcile panicked (recovered); retrying with backoff");
            }
        }
    }
}

/// Counts a reconcile as active until it ends or is dropped.
struct ActiveGuard<'a>(&'a Gauge);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reconcile_ids_are_version_4_uuids_and_differ() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| super::reconcile_id()).collect();
        assert_eq!(ids.len(), 1000, "ids repeat");
        for id in ids.iter().take(20) {
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{id}");
            assert!(parts[2].starts_with('4') && matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{id}");
            assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()), "{id}");
        }
    }
}
