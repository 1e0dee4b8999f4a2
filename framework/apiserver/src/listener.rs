//! The accept loop: TLS, HTTP/1.1 and HTTP/2 on one port, with the limits a server facing
//! untrusted clients needs — a time limit on request headers (which also closes idle and
//! slowloris connections), on TLS handshakes and (in `server`) on request bodies, HTTP/2
//! keep-alive pings, a cap on open connections below the file-descriptor limit, and a
//! rate-limited log of accept errors.
//!
//! Mirrors kube-apiserver's `SecureServingInfo.Serve` (Go's `http.Server` with
//! `ReadHeaderTimeout`, `IdleTimeout` and `MaxHeaderBytes`).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;

use crate::{ConnectionLimits, server::Server};

/// Request headers larger than this get 431 (kube-apiserver's `MaxHeaderBytes` is 1 MiB).
const MAX_HEADER_BYTES: usize = 1 << 20;

/// The connection cap actually used: the configured one, but at most half of the process's
/// file-descriptor limit (the rest is for the server's own files and outgoing connections).
pub(crate) fn connection_cap(configured: usize) -> usize {
    match fd_limit() {
        Some(limit) => configured.min(limit / 2).max(1),
        None => configured.max(1),
    }
}

/// The soft limit on open files, from `/proc/self/limits` where there is one.
fn fd_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Logs a repeated warning at most once per interval, with how many were left out.
pub(crate) struct RateLimitedLog {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    pub(crate) fn new(interval: Duration) -> Self {
        RateLimitedLog { interval, last: None, suppressed: 0 }
    }

    /// Whether to log now; if so, also how many were suppressed since the last one.
    pub(crate) fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < self.interval) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

pub(crate) async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    server: Arc<Server>,
    limits: ConnectionLimits,
    stop: CancellationToken,
) {
    let cap = connection_cap(limits.max_connections);
    let open = Arc::new(Semaphore::new(cap));
    let mut accept_errors = RateLimitedLog::new(Duration::from_secs(10));
    let mut refused = RateLimitedLog::new(Duration::from_secs(10));
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, mostly: back off so as not to spin.
                    if let Some(suppressed) = accept_errors.allow() {
                        tracing::warn!(error = %e, suppressed, "accept failed; backing off");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            if let Some(suppressed) = refused.allow() {
                tracing::warn!(%peer, cap, suppressed, "too many open connections; closing a new one");
            }
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let server = server.clone();
        let acceptor = acceptor.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, std::convert::Infallible>(crate::server::handle(server, req).await) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(MAX_HEADER_BYTES.max(8192));
            builder
                .http2()
                .timer(TokioTimer::new())
                .keep_alive_interval(limits.keep_alive)
                .keep_alive_timeout(limits.keep_alive)
                .max_header_list_size(MAX_HEADER_BYTES as u32);
            let result = match acceptor {
                None => {
                    // The protocol is told by the first bytes, read before hyper's own header
                    // timeout starts: a client that sends nothing is closed here.
                    let mut first = [0u8; 1];
                    match tokio::time::timeout(limits.header_read_timeout, tcp.peek(&mut first)).await {
                        Ok(Ok(n)) if n > 0 => {}
                        _ => return,
                    }
                    tokio::select! {
                        r = builder.serve_connection(TokioIo::new(tcp), service) => r,
                        _ = stop.cancelled() => Ok(()),
                    }
                }
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            // Over TLS the protocol was agreed in the handshake (ALPN).
                            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                            let builder = if h2 { builder.http2_only() } else { builder.http1_only() };
                            tokio::select! {
                                r = builder.serve_connection(TokioIo::new(tls), service) => r,
                                _ = stop.cancelled() => Ok(()),
                            }
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_descriptor_limit() {
        let cap = connection_cap(usize::MAX);
        if let Some(limit) = fd_limit() {
            assert_eq!(cap, limit / 2);
        }
        assert_eq!(connection_cap(10), 10.min(cap));
    }

    #[test]
    fn a_repeated_warning_is_logged_once_per_interval() {
        let mut log = RateLimitedLog::new(Duration::from_secs(3600));
        assert_eq!(log.allow(), Some(0));
        assert_eq!(log.allow(), None);
        assert_eq!(log.allow(), None);
        log.last = Some(Instant::now() - Duration::from_secs(7200));
        assert_eq!(log.allow(), Some(2));
    }
}
