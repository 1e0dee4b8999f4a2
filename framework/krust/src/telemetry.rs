//! OpenTelemetry traces (feature `opentelemetry`; OTLP export with feature `otlp`).
//!
//! krust's spans — each reconcile (`reconcile`, with `controller`, `namespace`, `name` and
//! `reconcile_id`) and each API request (`HTTP`, at `debug` level) — become OpenTelemetry spans
//! through [`layer`], and every API request carries the W3C trace context (`traceparent`) of the
//! span it is made in, so a trace goes from a reconcile to the API server (kube-apiserver with
//! the `APIServerTracing` feature continues it).
//!
//! ```
//! use krust::telemetry::{self, opentelemetry_sdk::trace::SdkTracerProvider};
//! use tracing_subscriber::prelude::*;
//!
//! // Any exporter: OTLP (see `otlp` and `otlp_from_env`, feature `otlp`), stdout, in memory...
//! let provider = SdkTracerProvider::builder().build();
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer())
//!     .with(telemetry::layer(&provider))
//!     .init();
//! // ... run the manager; before exiting, export what is buffered:
//! provider.shutdown().expect("the spans are exported");
//! ```
//!
//! With the `operator` and `otlp` features, [`crate::operator::init_logging`] does this itself
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set.

pub use opentelemetry;
pub use opentelemetry_sdk;
pub use tracing_opentelemetry;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};

/// The `tracing` layer that turns spans into OpenTelemetry spans of `provider` (tracer name
/// `krust`). It also sets W3C trace context as OpenTelemetry's global propagator, which krust's
/// client uses to write `traceparent` on API requests (set another one afterwards to change the
/// format).
pub fn layer<S>(
    provider: &SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    tracing_opentelemetry::layer().with_tracer(provider.tracer("krust"))
}

#[cfg(feature = "otlp")]
pub use otlp::{OtlpError, otlp, otlp_from_env};

#[cfg(feature = "otlp")]
mod otlp {
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::{Client, connect::HttpConnector};
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};

    /// Why OTLP export could not be set up.
    #[derive(Debug, thiserror::Error)]
    pub enum OtlpError {
        /// The endpoint is not a plain `http://` URL.
        #[error(
            "OTLP endpoint {0:?}: krust's exporter speaks OTLP/HTTP without TLS (an OpenTelemetry Collector \
             in the cluster or beside the pod); for TLS or gRPC, build your own exporter and pass its \
             provider to krust::telemetry::layer"
        )]
        Endpoint(String),
        /// No Tokio runtime to send the exports on.
        #[error("OTLP export needs a Tokio runtime: set it up from inside one (e.g. in #[tokio::main])")]
        NoRuntime,
        /// The exporter could not be built.
        #[error("cannot build the OTLP exporter: {0}")]
        Build(String),
    }

    /// A tracer provider that exports spans in batches over OTLP/HTTP (protobuf) when
    /// OpenTelemetry's standard environment variables ask for it: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
    /// (the full URL) or `OTEL_EXPORTER_OTLP_ENDPOINT` (the base URL, `/v1/traces` appended);
    /// `Ok(None)` when neither is set. See [`otlp`] for the rest.
    pub fn otlp_from_env(service_name: &str) -> Result<Option<SdkTracerProvider>, OtlpError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let url = match (var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), var("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            (Some(full), _) => full,
            (None, Some(base)) => traces_url(&base),
            (None, None) => return Ok(None),
        };
        otlp_to(url, service_name).map(Some)
    }

    /// A tracer provider that exports spans in batches over OTLP/HTTP (protobuf) to the collector
    /// at `endpoint` (its base URL, e.g. `http://otel-collector.monitoring:4318`; spans go to
    /// `/v1/traces`). `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT` and
    /// `OTEL_RESOURCE_ATTRIBUTES` apply; the service name is `OTEL_SERVICE_NAME`, else
    /// `service_name`. Call it inside a Tokio runtime: the exports are sent on it. Pass the
    /// provider to [`layer`](super::layer) and call its `shutdown` (from a blocking thread) before
    /// exiting, or the last batch is lost.
    pub fn otlp(endpoint: &str, service_name: &str) -> Result<SdkTracerProvider, OtlpError> {
        otlp_to(traces_url(endpoint), service_name)
    }

    /// `base` + `/v1/traces`, as the OTLP specification builds a signal's URL.
    fn traces_url(base: &str) -> String {
        format!("{}/v1/traces", base.trim().trim_end_matches('/'))
    }

    fn otlp_to(url: String, service_name: &str) -> Result<SdkTracerProvider, OtlpError> {
        if !url.starts_with("http://") {
            return Err(OtlpError::Endpoint(url));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| OtlpError::NoRuntime)?;
        let http =
            OnRuntime { client: Client::builder(hyper_util::rt::TokioExecutor::new()).build_http(), runtime };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(http)
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(url)
            .build()
            .map_err(|e| OtlpError::Build(e.to_string()))?;
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(service_name.to_string());
        }
        Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build())
    }

    /// The HTTP client of the exporter: hyper, run on the Tokio runtime the exporter was built
    /// in (the batch processor exports from a thread of its own, outside any runtime).
    #[derive(Debug)]
    struct OnRuntime {
        client: Client<HttpConnector, Full<Bytes>>,
        runtime: tokio::runtime::Handle,
    }

    /// How long one export may take when `OTEL_EXPORTER_OTLP_TIMEOUT` does not cut it shorter.
    const SEND_TIMEOUT: Duration = Duration::from_secs(30);

    #[async_trait::async_trait]
    impl opentelemetry_http::HttpClient for OnRuntime {
        async fn send_bytes(
            &self,
            request: http::Request<Bytes>,
        ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
            let client = self.client.clone();
            let task = self.runtime.spawn(async move {
                let response = tokio::time::timeout(SEND_TIMEOUT, client.request(request.map(Full::new)))
                    .await
                    .map_err(|_| format!("no answer in {SEND_TIMEOUT:?}"))??;
                let (parts, body) = response.into_parts();
                let body = body.collect().await?.to_bytes();
                Ok::<_, opentelemetry_http::HttpError>(http::Response::from_parts(parts, body))
            });
            task.await?
        }
    }
}
