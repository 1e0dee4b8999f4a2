//! OpenTelemetry traces (issue 18, item 6): each reconcile is a span with its `reconcile_id`,
//! each API request a child span, and the request carries the W3C trace context (`traceparent`)
//! to the API server; spans are exported in memory and over OTLP/HTTP to a collector.
//!
//! nextest runs each test in its own process: the global subscriber is the test's.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::ConfigMap;
use krust::telemetry::{
    self,
    opentelemetry::{Value, trace::SpanKind},
    opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData},
};
use krust_apiserver::ApiServer;
use krust_client::CreateOptions;
use krust_runtime::{
    controller::{Action, Context, Controller, Reconciler, Request},
    manager::Manager,
};
use parking_lot::Mutex;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

/// Reads its ConfigMap back through the API (a request made inside the reconcile's span).
struct ReadBack {
    done: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Reconciler for ReadBack {
    type Error = krust_client::Error;
    async fn reconcile(&self, req: Request, ctx: &Context) -> Result<Action, Self::Error> {
        ctx.clientset().core_v1().config_maps(&req.namespace).get(&req.name, &Default::default()).await?;
        self.done.lock().push(req.name.clone());
        Ok(Action::done())
    }
}

/// Creates ConfigMaps `a` and `b`, runs a controller until both are reconciled, stops it.
async fn reconcile_two(server: &ApiServer) {
    let cms =
        krust_client::Clientset::new(&server.kubeconfig().config).unwrap().core_v1().config_maps("default");
    for name in ["a", "b"] {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        cms.create(&cm, &CreateOptions::default()).await.unwrap();
    }
    let done = Arc::new(Mutex::new(Vec::new()));
    let manager = Manager::builder(server.kubeconfig().config).metrics_addr("127.0.0.1:0").build().unwrap();
    Controller::for_::<ConfigMap>()
        .named("traced")
        .build(ReadBack { done: done.clone() })
        .register(&manager)
        .unwrap();
    let run = tokio::spawn(manager.clone().run());
    for _ in 0..1000 {
        if done.lock().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(done.lock().len() >= 2, "reconciled: {:?}", done.lock());
    manager.shutdown_token().cancel();
    run.await.unwrap().unwrap();
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

/// The `traceparent` the server received on the GET of ConfigMap `name`.
fn traceparent_of(server: &ApiServer, name: &str) -> String {
    let path = format!("/api/v1/namespaces/default/configmaps/{name}");
    let traced = server.traced_requests();
    let mut found = traced.iter().filter(|r| r.method == "GET" && r.path == path);
    let first = found.next().unwrap_or_else(|| panic!("no traced GET of {path}: {traced:?}"));
    first.traceparent.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciles_are_traced_into_the_api_requests_they_make() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    tracing_subscriber::registry()
        .with(EnvFilter::new("warn,krust_runtime=info,krust_client=debug"))
        .with(telemetry::layer(&provider))
        .init();
    let server = ApiServer::builder().start().await.unwrap();
    reconcile_two(&server).await;
    let spans = exporter.get_finished_spans().unwrap();

    let mut trace_ids = Vec::new();
    for name in ["a", "b"] {
        let reconcile = spans
            .iter()
            .find(|s| s.name == "reconcile" && attribute(s, "name") == Some(&Value::from(name)))
            .unwrap_or_else(|| panic!("no reconcile span of {name}: {spans:#?}"));
        assert_eq!(attribute(reconcile, "controller"), Some(&Value::from("traced")));
        assert_eq!(attribute(reconcile, "namespace"), Some(&Value::from("default")));
        let id = attribute(reconcile, "reconcile_id").map(|v| v.as_str().into_owned()).unwrap_or_default();
        assert_eq!(id.len(), 36, "reconcile_id {id:?}");
        let trace_id = reconcile.span_context.trace_id();

        // The GET is a client span under the reconcile, with its outcome.
        let get = spans
            .iter()
            .find(|s| {
                s.parent_span_id == reconcile.span_context.span_id()
                    && attribute(s, "url.full")
                        .is_some_and(|u| u.as_str().ends_with(&format!("/configmaps/{name}")))
            })
            .unwrap_or_else(|| panic!("no request span under the reconcile of {name}: {spans:#?}"));
        assert_eq!(get.name, "GET");
        assert_eq!(get.span_kind, SpanKind::Client);
        assert_eq!(get.span_context.trace_id(), trace_id);
        assert_eq!(attribute(get, "http.response.status_code"), Some(&Value::I64(200)));

        // The server got the trace context of the request's span.
        let expected = format!("00-{}-{}-01", trace_id, get.span_context.span_id());
        assert_eq!(traceparent_of(&server, name), expected);
        trace_ids.push(trace_id);
    }
    assert_ne!(trace_ids[0], trace_ids[1], "each reconcile starts a trace of its own");
    // Requests made outside a reconcile (the creates, the informer's list) are traces of their
    // own, rooted at their request span.
    let traced = server.traced_requests();
    let others: Vec<_> = traced.iter().filter(|r| !r.path.contains("/configmaps/")).collect();
    assert!(others.iter().any(|r| r.method == "GET" && r.path == "/api/v1/configmaps"), "{traced:?}");
    for r in others {
        assert!(
            !trace_ids.iter().any(|t| r.traceparent.contains(&t.to_string())),
            "{r:?} in a reconcile's trace"
        );
    }
    provider.shutdown().unwrap();
}

/// What an OTLP/HTTP collector received: (path, content type, body) per request.
type Received = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A minimal OTLP/HTTP collector: answers 200 to every request and keeps it.
async fn collector() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let keep = received.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // One request: the head, then Content-Length bytes of body.
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 8192];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                    let header = |name: &str| {
                        head.lines()
                            .find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string()))
                            .unwrap_or_default()
                    };
                    let length: usize = header("content-length").parse().unwrap_or(0);
                    let path = head.split_whitespace().nth(1).unwrap_or_default().to_string();
                    let content_type = header("content-type");
                    while buf.len() < head_end + length {
                        let mut chunk = [0u8; 8192];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = buf[head_end..head_end + length].to_vec();
                    buf.drain(..head_end + length);
                    keep.lock().push((path, content_type, body));
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if conn.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, received)
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_http_to_a_collector() {
    let (url, received) = collector().await;
    let provider = telemetry::otlp(&format!("{url}/"), "telemetry-test").unwrap();
    tracing_subscriber::registry()
        .with(EnvFilter::new("warn,krust_runtime=info"))
        .with(telemetry::layer(&provider))
        .init();
    let server = ApiServer::builder().start().await.unwrap();
    reconcile_two(&server).await;
    // The batch is sent at shutdown (or every 5 s): from a blocking thread, as the exporter's
    // requests run on this runtime.
    let flush = provider.clone();
    tokio::task::spawn_blocking(move || flush.shutdown()).await.unwrap().unwrap();

    // With the request spans filtered out (`debug`), only requests made in a reconcile carry a
    // trace context, the reconcile's.
    let traced: Vec<_> = server.traced_requests().into_iter().map(|r| (r.method, r.path)).collect();
    let expected: Vec<_> = ["a", "b"]
        .iter()
        .map(|n| ("GET".to_string(), format!("/api/v1/namespaces/default/configmaps/{n}")))
        .collect();
    assert_eq!(traced.len(), 2, "{traced:?}");
    assert!(expected.iter().all(|e| traced.contains(e)), "{traced:?}");

    let received = received.lock().clone();
    assert!(!received.is_empty(), "the collector got nothing");
    let bodies: Vec<u8> = received.iter().flat_map(|(_, _, b)| b.clone()).collect();
    for (path, content_type, _) in &received {
        assert_eq!(path, "/v1/traces");
        assert_eq!(content_type, "application/x-protobuf");
    }
    let contains = |needle: &[u8]| bodies.windows(needle.len()).any(|w| w == needle);
    for needle in [&b"reconcile"[..], b"reconcile_id", b"telemetry-test", b"traced"] {
        assert!(contains(needle), "no {:?} in the exported spans", String::from_utf8_lossy(needle));
    }
    // The trace the server saw on a reconcile's request is the exported one (the trace id is
    // sent as its 16 raw bytes).
    let traceparent = traceparent_of(&server, "a");
    let trace_id = traceparent.split('-').nth(1).unwrap();
    assert!(contains(&unhex(trace_id)), "trace {trace_id} was not exported");
}

#[test]
fn otlp_export_says_what_it_cannot_do() {
    let e = telemetry::otlp("https://collector:4318", "x").unwrap_err();
    assert!(e.to_string().contains("without TLS"), "{e}");
    assert!(e.to_string().contains("krust::telemetry::layer"), "{e}");
    let e = telemetry::otlp("http://collector:4318", "x").unwrap_err();
    assert!(e.to_string().contains("Tokio runtime"), "{e}");
}
