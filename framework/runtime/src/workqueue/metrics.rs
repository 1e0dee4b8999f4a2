//! Work queue metrics (client-go's `workqueue.MetricsProvider`), and their prometheus-client
//! implementation with client-go's metric names.
//!
//! The gauges of in-flight work (`workqueue_unfinished_work_seconds`,
//! `workqueue_longest_running_processor_seconds`) are computed when scraped, from the queue's
//! processing set, instead of by a background loop as client-go does.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use parking_lot::Mutex;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{
        MetricType,
        counter::Counter,
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// The work in flight in a queue at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct InFlightWork {
    /// Seconds of work done so far by all items being processed.
    pub unfinished_seconds: f64,
    /// Seconds the longest-running item has been processed.
    pub longest_seconds: f64,
}

/// What a queue tells about its in-flight work, read when metrics are scraped.
pub trait InFlight: Send + Sync {
    /// The work in flight now.
    fn in_flight(&self) -> InFlightWork;
}

/// The events of one queue (client-go's `queueMetrics`).
pub trait QueueMetrics: Send + Sync {
    /// An item was added (not counting adds of an item already queued).
    fn added(&self) {}
    /// An item was handed to a worker after waiting `queued_for` in the queue.
    fn got(&self, _queued_for: Duration) {}
    /// An item was done after `worked_for` of processing.
    fn done(&self, _worked_for: Duration) {}
    /// An item was added with a delay (client-go counts these as retries).
    fn retried(&self) {}
}

/// No metrics.
impl QueueMetrics for () {}

/// Creates the metrics of each queue (client-go's `workqueue.MetricsProvider`).
pub trait MetricsProvider: Send + Sync {
    /// The metrics of the queue called `name`; `in_flight` reports its work in flight (a weak
    /// reference: the queue may go away first).
    fn queue_metrics(&self, name: &str, in_flight: Weak<dyn InFlight>) -> Arc<dyn QueueMetrics>;
}

type Labels = Vec<(&'static str, String)>;

fn labels(name: &str) -> Labels {
    // controller-runtime labels its queue metrics with both `name` and `controller`.
    vec![("name", name.to_string()), ("controller", name.to_string())]
}

fn duration_histogram() -> Histogram {
    // client-go: prometheus.ExponentialBuckets(10e-9, 10, 12), 10 ns to 1000 s.
    Histogram::new(exponential_buckets(10e-9, 10.0, 12))
}

/// client-go's work queue metrics in a prometheus-client [`Registry`]:
/// `workqueue_depth`, `workqueue_adds_total`, `workqueue_queue_duration_seconds`,
/// `workqueue_work_duration_seconds`, `workqueue_unfinished_work_seconds`,
/// `workqueue_longest_running_processor_seconds`, `workqueue_retries_total`, labelled by queue
/// `name` (and `controller`).
#[derive(Clone)]
pub struct PrometheusMetrics {
    depth: Family<Labels, Gauge>,
    adds: Family<Labels, Counter>,
    queue_duration: Family<Labels, Histogram, fn() -> Histogram>,
    work_duration: Family<Labels, Histogram, fn() -> Histogram>,
    retries: Family<Labels, Counter>,
    in_flight: Arc<InFlightCollector>,
}

impl std::fmt::Debug for PrometheusMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusMetrics").finish_non_exhaustive()
    }
}

impl PrometheusMetrics {
    /// Registers the work queue metrics in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = PrometheusMetrics {
            depth: Family::default(),
            adds: Family::default(),
            queue_duration: Family::new_with_constructor(duration_histogram),
            work_duration: Family::new_with_constructor(duration_histogram),
            retries: Family::default(),
            in_flight: Arc::new(InFlightCollector::default()),
        };
        registry.register("workqueue_depth", "Items queued in the work queue now", metrics.depth.clone());
        registry.register(
            "workqueue_adds",
            "Items added to the work queue (adds of an already queued item not counted)",
            metrics.adds.clone(),
        );
        registry.register(
            "workqueue_queue_duration_seconds",
            "Seconds an item waited in the work queue before a worker took it",
            metrics.queue_duration.clone(),
        );
        registry.register(
            "workqueue_work_duration_seconds",
            "Seconds a worker spent on an item, from get to done",
            metrics.work_duration.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Items added again with a delay (rate-limited retries)",
            metrics.retries.clone(),
        );
        registry.register_collector(Box::new(metrics.in_flight.clone()));
        metrics
    }
}

impl MetricsProvider for PrometheusMetrics {
    fn queue_metrics(&self, name: &str, in_flight: Weak<dyn InFlight>) -> Arc<dyn QueueMetrics> {
        let labels = labels(name);
        self.in_flight.queues.lock().push((labels.clone(), in_flight));
        Arc::new(PrometheusQueue {
            depth: self.depth.get_or_create(&labels).clone(),
            adds: self.adds.get_or_create(&labels).clone(),
            queue_duration: self.queue_duration.get_or_create(&labels).clone(),
            work_duration: self.work_duration.get_or_create(&labels).clone(),
            retries: self.retries.get_or_create(&labels).clone(),
        })
    }
}

/// One queue's metric handles (resolved once, so that the hot path does no label lookups).
struct PrometheusQueue {
    depth: Gauge,
    adds: Counter,
    queue_duration: Histogram,
    work_duration: Histogram,
    retries: Counter,
}

impl QueueMetrics for PrometheusQueue {
    fn added(&self) {
        self.adds.inc();
        self.depth.inc();
    }
    fn got(&self, queued_for: Duration) {
        self.depth.dec();
        self.queue_duration.observe(queued_for.as_secs_f64());
    }
    fn done(&self, worked_for: Duration) {
        self.work_duration.observe(worked_for.as_secs_f64());
    }
    fn retried(&self) {
        self.retries.inc();
    }
}

/// The in-flight gauges, read from every live queue at scrape time.
#[derive(Default)]
struct InFlightCollector {
    queues: Mutex<Vec<(Labels, Weak<dyn InFlight>)>>,
}

impl std::fmt::Debug for InFlightCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlightCollector").field("queues", &self.queues.lock().len()).finish()
    }
}

impl Collector for InFlightCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let readings: Vec<(Labels, InFlightWork)> = {
            let mut queues = self.queues.lock();
            queues.retain(|(_, q)| q.strong_count() > 0);
            queues.iter().filter_map(|(l, q)| q.upgrade().map(|q| (l.clone(), q.in_flight()))).collect()
        };
        type Reading = fn(&InFlightWork) -> f64;
        let gauges: [(&str, &str, Reading); 2] = [
            (
                "workqueue_unfinished_work_seconds",
                "Seconds of work in progress, not yet observed by work_duration; a steady rise means stuck workers",
                |w| w.unfinished_seconds,
            ),
            (
                "workqueue_longest_running_processor_seconds",
                "Seconds the longest-running item in progress has been processed",
                |w| w.longest_seconds,
            ),
        ];
        for (name, help, value) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (labels, work) in &readings {
                let metric = family.encode_family(labels)?;
                ConstGauge::new(value(work)).encode(metric)?;
            }
        }
        Ok(())
    }
}
