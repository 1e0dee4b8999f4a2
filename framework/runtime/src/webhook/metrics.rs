//! The webhook server's metrics, with controller-runtime's names and labels
//! (`pkg/webhook/internal/metrics`): requests by webhook path and HTTP code, latency by path,
//! requests in flight by path.

use std::time::Duration;

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    // Prometheus' default buckets, as controller-runtime's webhook latency uses.
    Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
}

/// The webhook server's metrics (cheap to clone; clones share the values).
#[derive(Clone, Debug)]
pub struct WebhookMetrics {
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    in_flight: Family<Labels, Gauge>,
}

impl Default for WebhookMetrics {
    fn default() -> Self {
        WebhookMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            in_flight: Family::default(),
        }
    }
}

/// Counts a request in flight until dropped.
pub(crate) struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl WebhookMetrics {
    /// Registers `controller_runtime_webhook_requests_total`,
    /// `controller_runtime_webhook_latency_seconds` and
    /// `controller_runtime_webhook_requests_in_flight`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "controller_runtime_webhook_requests",
            "Total number of admission requests by HTTP status code",
            self.requests.clone(),
        );
        registry.register(
            "controller_runtime_webhook_latency_seconds",
            "Histogram of the latency of processing admission requests",
            self.latency.clone(),
        );
        registry.register(
            "controller_runtime_webhook_requests_in_flight",
            "Current number of admission requests being served",
            self.in_flight.clone(),
        );
    }

    pub(crate) fn in_flight(&self, path: &str) -> InFlight {
        let gauge = self.in_flight.get_or_create(&vec![("webhook", path.to_string())]).clone();
        gauge.inc();
        InFlight(gauge)
    }

    pub(crate) fn observe(&self, path: &str, code: u16, took: Duration) {
        self.requests.get_or_create(&vec![("webhook", path.to_string()), ("code", code.to_string())]).inc();
        self.latency.get_or_create(&vec![("webhook", path.to_string())]).observe(took.as_secs_f64());
    }
}
