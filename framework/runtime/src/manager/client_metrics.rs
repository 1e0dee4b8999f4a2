//! client-go's REST client metrics (`k8s.io/client-go/tools/metrics` as component-base
//! registers them): `rest_client_requests_total{code,method,host}` (per attempt; `code` is
//! `<error>` when no response came), `rest_client_request_duration_seconds{verb,host}` and
//! `rest_client_rate_limiter_duration_seconds{verb,host}`, fed by krust-client's
//! [`RequestMetrics`] hook on the manager's clients.

use std::time::Duration;

use http::Method;
use krust_client::RequestMetrics;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
    method: String,
    host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerbLabels {
    verb: String,
    host: String,
}

fn latency_histogram() -> Histogram {
    // component-base's buckets for the request and rate limiter latencies.
    Histogram::new([0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0])
}

/// The REST client metrics of a manager's clients.
#[derive(Clone)]
pub(crate) struct ClientMetrics {
    requests: Family<CodeLabels, Counter>,
    latency: Family<VerbLabels, Histogram, fn() -> Histogram>,
    rate_limiter: Family<VerbLabels, Histogram, fn() -> Histogram>,
}

impl ClientMetrics {
    /// Registers them in `registry`.
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let m = ClientMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            rate_limiter: Family::new_with_constructor(latency_histogram),
        };
        registry.register(
            "rest_client_requests",
            "Number of HTTP requests, partitioned by status code, method, and host",
            m.requests.clone(),
        );
        registry.register(
            "rest_client_request_duration_seconds",
            "Request latency in seconds, broken down by verb and host",
            m.latency.clone(),
        );
        registry.register(
            "rest_client_rate_limiter_duration_seconds",
            "Client side rate limiter latency in seconds, broken down by verb and host",
            m.rate_limiter.clone(),
        );
        m
    }
}

impl RequestMetrics for ClientMetrics {
    fn request(&self, method: &Method, host: &str, code: Option<u16>, latency: Duration) {
        let code = code.map_or_else(|| "<error>".to_string(), |c| c.to_string());
        self.requests
            .get_or_create(&CodeLabels { code, method: method.to_string(), host: host.to_string() })
            .inc();
        self.latency
            .get_or_create(&VerbLabels { verb: method.to_string(), host: host.to_string() })
            .observe(latency.as_secs_f64());
    }

    fn rate_limited(&self, method: &Method, host: &str, wait: Duration) {
        self.rate_limiter
            .get_or_create(&VerbLabels { verb: method.to_string(), host: host.to_string() })
            .observe(wait.as_secs_f64());
    }
}
