//! The span of each API request and, with the `opentelemetry` feature, the W3C trace context
//! (`traceparent`) it carries to the API server.
//!
//! Every request runs in a `debug`-level span named `HTTP` with OpenTelemetry's semantic field
//! names (`otel.kind = client`, `http.request.method`, `url.full`, `http.response.status_code`),
//! as kube-rs' and client-go's instrumented transports do. With the feature on, the context of
//! the current span (this one when `debug` is enabled, else the caller's, e.g. a reconcile's) is
//! written into the request's headers through OpenTelemetry's global propagator; kube-apiserver
//! with `APIServerTracing` continues the trace from it.

use http::{HeaderMap, Method, Uri};

/// The span of one request (all its retries).
pub(super) fn span(method: &Method, uri: &Uri) -> tracing::Span {
    tracing::debug_span!(
        "HTTP",
        otel.name = method.as_str(),
        otel.kind = "client",
        http.request.method = method.as_str(),
        url.full = %uri,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

/// Records the outcome on the request's span: the status code, and `ERROR` for 4xx, 5xx and
/// transport failures (no status).
pub(super) fn record(span: &tracing::Span, status: Option<u16>) {
    if let Some(code) = status {
        span.record("http.response.status_code", i64::from(code));
    }
    if status.is_none_or(|c| c >= 400) {
        span.record("otel.status_code", "ERROR");
    }
}

/// Writes the current span's trace context into `headers` (the global propagator decides the
/// format; nothing is written when there is no sampled span or no propagator is set).
#[cfg(feature = "opentelemetry")]
pub(super) fn inject(headers: &mut HeaderMap) {
    use opentelemetry::propagation::Injector;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    struct Headers<'a>(&'a mut HeaderMap);
    impl Injector for Headers<'_> {
        fn set(&mut self, key: &str, value: String) {
            if let (Ok(name), Ok(value)) =
                (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
            {
                self.0.insert(name, value);
            }
        }
    }
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut Headers(headers)));
}

/// Without the `opentelemetry` feature no trace context is sent.
#[cfg(not(feature = "opentelemetry"))]
pub(super) fn inject(_headers: &mut HeaderMap) {}
