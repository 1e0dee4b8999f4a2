//! The HTTP transport: a pooled hyper-util client over rustls (HTTP/1.1 keep-alive, HTTP/2 when
//! the server offers it through ALPN), an optional HTTP proxy (CONNECT tunnels for https, absolute
//! request targets for http, as Go's `http.Transport` does), and a connect timeout that covers
//! TCP, the proxy tunnel and the TLS handshake.

mod tls;

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{
        Client,
        connect::{Connected, Connection, HttpConnector, proxy::Tunnel},
    },
    rt::{TokioExecutor, TokioIo, TokioTimer},
};
use tokio::net::TcpStream;
use tower_service::Service;

pub(crate) use tls::ClientCertResolver;

use crate::config::{Config, ConfigError};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

/// The pooled HTTP client every request goes through.
pub(crate) type HttpClient = Client<TimeoutConnector<HttpsConnector<ProxyConnector>>, Full<Bytes>>;

/// How long an idle pooled connection is kept (Go's `http.DefaultTransport` value).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Builds the HTTP client of a configuration; `certs` is the client-certificate resolver, which
/// an exec plugin may update later.
pub(crate) fn build(config: &Config, certs: Arc<ClientCertResolver>) -> Result<HttpClient, ConfigError> {
    if let (Some(cert), Some(key)) = (&config.tls.client_cert_data, &config.tls.client_key_data) {
        use secrecy::ExposeSecret;
        certs.set_pem(cert, key.expose_secret()).map_err(ConfigError::Tls)?;
    }
    let https = config.server.scheme_str() == Some("https");
    let tls = tls::client_config(&config.tls, certs, https)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(30)));
    let proxy = ProxyConnector { http, proxy: config.proxy_url.clone() };
    let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http();
    let https = match &config.tls.server_name {
        Some(name) => {
            let name = rustls::pki_types::ServerName::try_from(name.clone()).map_err(|e| {
                ConfigError::Tls(format!("tls-server-name {name:?} is not a valid server name: {e}"))
            })?;
            builder
                .with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
                .enable_all_versions()
                .wrap_connector(proxy)
        }
        None => builder.enable_all_versions().wrap_connector(proxy),
    };
    let connector = TimeoutConnector { inner: https, timeout: config.connect_timeout };
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector))
}

/// Bounds the whole connection set-up (TCP, proxy tunnel, TLS) by the connect timeout.
#[derive(Clone)]
pub(crate) struct TimeoutConnector<C> {
    inner: C,
    timeout: Duration,
}

impl<C> Service<Uri> for TimeoutConnector<C>
where
    C: Service<Uri> + Send + 'static,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
    C::Response: Send + 'static,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = BoxFuture<C::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let timeout = self.timeout;
        let connecting = self.inner.call(uri.clone());
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(format!("connecting to {uri} timed out after {timeout:?}").into()),
            }
        })
    }
}

/// Connects directly, or through an HTTP proxy when one is configured.
#[derive(Clone)]
pub(crate) struct ProxyConnector {
    http: HttpConnector,
    proxy: Option<Uri>,
}

impl Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = BoxFuture<ProxyStream>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let mut http = self.http.clone();
        let proxy = self.proxy.clone();
        Box::pin(async move {
            match proxy {
                None => Ok(ProxyStream { io: http.call(uri).await?, absolute_form: false }),
                // https through a proxy: a CONNECT tunnel, then TLS end to end.
                Some(proxy) if uri.scheme_str() == Some("https") => {
                    let io = Tunnel::new(proxy.clone(), http)
                        .call(uri)
                        .await
                        .map_err(|e| format!("proxy {proxy}: {e}"))?;
                    Ok(ProxyStream { io, absolute_form: false })
                }
                // http through a proxy: talk to the proxy, with absolute request targets.
                Some(proxy) => {
                    let io = http.call(proxy.clone()).await.map_err(|e| format!("proxy {proxy}: {e}"))?;
                    Ok(ProxyStream { io, absolute_form: true })
                }
            }
        })
    }
}

/// A TCP connection that knows whether it goes to an HTTP proxy (absolute-form requests).
pub(crate) struct ProxyStream {
    io: TokioIo<TcpStream>,
    absolute_form: bool,
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.absolute_form)
    }
}

impl hyper::rt::Read for ProxyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProxyStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}
