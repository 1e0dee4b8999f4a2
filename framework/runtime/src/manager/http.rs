//! The manager's HTTP server (controller-runtime's `manager/server.go` and `healthz`):
//! `/metrics` from the prometheus-client registry, `/healthz` and `/readyz` in Kubernetes'
//! probe format (`?verbose` lists every check).

use super::*;

pub(super) fn run_checks(
    checks: &[(String, Check)],
    extra: Vec<(String, Result<(), String>)>,
) -> (bool, String) {
    let mut ok = true;
    let mut text = String::new();
    for (name, result) in extra.into_iter().chain(checks.iter().map(|(n, c)| (n.clone(), c()))) {
        match result {
            Ok(()) => text.push_str(&format!("[+]{name} ok\n")),
            Err(e) => {
                ok = false;
                text.push_str(&format!("[-]{name} failed: {e}\n"));
            }
        }
    }
    (ok, text)
}

pub(super) fn respond(inner: &Inner, path: &str, verbose: bool) -> Response<Full<Bytes>> {
    let text = |code: StatusCode, body: String, content_type: &'static str| {
        Response::builder()
            .status(code)
            .header(::http::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    };
    match path {
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, &inner.registry.lock()) {
                Ok(()) => {
                    text(StatusCode::OK, body, "application/openmetrics-text; version=1.0.0; charset=utf-8")
                }
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("encoding metrics failed: {e}\n"),
                    "text/plain",
                ),
            }
        }
        "/healthz" | "/livez" => {
            let (ok, detail) = run_checks(&inner.health_checks.lock(), vec![("ping".into(), Ok(()))]);
            probe(ok, detail, verbose, "healthz", text)
        }
        "/readyz" => {
            let sync = match (&*inner.sync_problem.lock(), inner.ready.load(Ordering::SeqCst)) {
                (Some(problem), _) => Err(problem.clone()),
                (None, true) => Ok(()),
                (None, false) => {
                    let unsynced = inner.factory.unsynced();
                    Err(if unsynced.is_empty() {
                        "controllers not started yet".to_string()
                    } else {
                        format!("waiting for informer caches to sync: {}", unsynced.join(", "))
                    })
                }
            };
            // Once synced: an informer that cannot reach the API server for a while says so.
            let sync = sync.and_then(|()| {
                let failing = inner.factory.failing(FAILING_AFTER);
                if failing.is_empty() { Ok(()) } else { Err(failing.join("; ")) }
            });
            let (ok, detail) = run_checks(&inner.ready_checks.lock(), vec![("informers".into(), sync)]);
            probe(ok, detail, verbose, "readyz", text)
        }
        _ => {
            text(StatusCode::NOT_FOUND, "not found: try /metrics, /healthz or /readyz\n".into(), "text/plain")
        }
    }
}

/// How long an informer's lists and watches must have been failing before `/readyz` reports it
/// (a single throttled request or a restarted watch is not worth a flap).
const FAILING_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

pub(super) fn probe(
    ok: bool,
    detail: String,
    verbose: bool,
    name: &str,
    text: impl Fn(StatusCode, String, &'static str) -> Response<Full<Bytes>>,
) -> Response<Full<Bytes>> {
    if ok {
        let body = if verbose { format!("{detail}{name} check passed\n") } else { "ok".to_string() };
        text(StatusCode::OK, body, "text/plain; charset=utf-8")
    } else {
        // Failures always say which check failed and why (Kubernetes' probe format).
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{detail}{name} check failed\n"),
            "text/plain; charset=utf-8",
        )
    }
}

/// Connections the metrics and probes server keeps open at once (scrapers and kubelets need a
/// handful); more are closed at once.
const MAX_CONNECTIONS: usize = 128;
/// Time a client has to send a request's headers; also how long an idle kept-alive connection
/// stays open (kube-apiserver's `ReadHeaderTimeout`).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(32);
/// Repeated accept warnings are logged at most this often.
const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// What one of the manager's HTTP servers serves, and how.
#[derive(Clone)]
pub(super) struct Serving {
    /// `/metrics`.
    pub metrics: bool,
    /// `/healthz`, `/livez`, `/readyz`.
    pub probes: bool,
    /// HTTPS with this certificate (secure metrics).
    pub tls: Option<Arc<crate::webhook::certs::Reloading>>,
    /// `/metrics` only for authenticated and authorized callers.
    pub auth: Option<Arc<super::secure::Delegated>>,
}

fn plain(code: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .header(::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body.into())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn answer(inner: &Inner, serving: &Serving, request: HttpRequest<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let verbose = request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "verbose" || p.starts_with("verbose=")));
    let is_probe = matches!(path, "/healthz" | "/livez" | "/readyz");
    if (path == "/metrics" && !serving.metrics) || (is_probe && !serving.probes) {
        let what = if serving.metrics { "try /metrics" } else { "try /healthz or /readyz" };
        return plain(StatusCode::NOT_FOUND, format!("not found: {what}\n"));
    }
    if path == "/metrics"
        && let Some(auth) = &serving.auth
    {
        match auth.check(request.headers(), request.method(), path).await {
            super::secure::Verdict::Allowed => {}
            super::secure::Verdict::Unauthenticated => {
                return plain(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            }
            super::secure::Verdict::Denied(user) => {
                tracing::debug!(%user, "metrics scrape denied");
                return plain(StatusCode::FORBIDDEN, format!("Authorization denied for user {user}\n"));
            }
            super::secure::Verdict::Failed(what) => {
                return plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{what}\n"));
            }
        }
    }
    respond(inner, path, verbose)
}

/// Serves one connection until it closes or `stop` (then gracefully).
async fn connection<IO>(inner: Arc<Inner>, serving: Serving, io: IO, stop: CancellationToken)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: HttpRequest<Incoming>| {
        let (inner, serving) = (inner.clone(), serving.clone());
        async move { Ok::<_, Infallible>(answer(&inner, &serving, request).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.cancelled() => conn.as_mut().graceful_shutdown(),
    }
}

pub(super) async fn serve(
    inner: Arc<Inner>,
    listener: std::net::TcpListener,
    serving: Serving,
    stop: CancellationToken,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot serve /metrics and the probes");
            return;
        }
    };
    let acceptor = serving.tls.as_ref().map(|certs| tokio_rustls::TlsAcceptor::from(certs.server_config()));
    let reloader = serving.tls.clone().map(|certs| {
        tokio::spawn(crate::webhook::certs::watch(certs, Duration::from_secs(10), stop.clone()))
    });
    let mut connections = JoinSet::new();
    let mut last_warning: Option<std::time::Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        // Finished connections leave the set (a scraper connects again every few seconds).
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, mostly: say so now and then, and do not spin.
                if last_warning.is_none_or(|t| t.elapsed() >= WARNING_INTERVAL) {
                    last_warning = Some(std::time::Instant::now());
                    tracing::warn!(error = %e, "the metrics and probes server cannot accept a connection");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if connections.len() >= MAX_CONNECTIONS {
            if last_warning.is_none_or(|t| t.elapsed() >= WARNING_INTERVAL) {
                last_warning = Some(std::time::Instant::now());
                tracing::warn!(
                    max = MAX_CONNECTIONS,
                    "too many connections to the metrics and probes server; closing a new one"
                );
            }
            drop(stream);
            continue;
        }
        let (inner, serving, stop) = (inner.clone(), serving.clone(), stop.clone());
        match &acceptor {
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await
                    {
                        connection(inner, serving, tls, stop).await;
                    }
                });
            }
            None => {
                connections.spawn(connection(inner, serving, stream, stop));
            }
        }
    }
    connections.abort_all();
    if let Some(reloader) = reloader {
        reloader.abort();
    }
}
