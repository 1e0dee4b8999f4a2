//! Request metrics hooks (client-go's `tools/metrics`): a [`RequestMetrics`] set on
//! [`Config::metrics`](crate::Config::metrics) hears of every attempt — its method, the
//! server's host, the status code (or none when no response came) and its latency — and of
//! the time each request waited for the client-side rate limiter. krust-runtime's manager
//! exports them as client-go's `rest_client_requests_total{code,method,host}`,
//! `rest_client_request_duration_seconds{verb,host}` and
//! `rest_client_rate_limiter_duration_seconds{verb,host}`.

use std::{sync::Arc, time::Duration};

use http::Method;

/// Receives request metrics. Keep it cheap: it runs on every request.
pub trait RequestMetrics: Send + Sync + 'static {
    /// One attempt ended: `code` is the response status, `None` when none came (client-go's
    /// `<error>`); `latency` runs from sending to the response head (a watch's, not its
    /// stream's).
    fn request(&self, method: &Method, host: &str, code: Option<u16>, latency: Duration);

    /// A request waited `wait` for the client-side rate limiter (only when `Config::qps` is
    /// set).
    fn rate_limited(&self, method: &Method, host: &str, wait: Duration) {
        let _ = (method, host, wait);
    }
}

/// A [`RequestMetrics`] in a [`Config`](crate::Config) (cloned with it).
#[derive(Clone)]
pub struct MetricsHook(pub Arc<dyn RequestMetrics>);

impl std::fmt::Debug for MetricsHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsHook")
    }
}
