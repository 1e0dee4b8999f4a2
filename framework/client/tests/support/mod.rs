//! A small HTTP(S) server for the client's tests: it records every request and answers with a
//! handler, over plain TCP or TLS (a CA made with rcgen, optional client certificates, ALPN h2).
#![allow(dead_code)]

use std::{convert::Infallible, future::Future, net::SocketAddr, pin::Pin, sync::Arc};

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use parking_lot::Mutex;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_rustls::rustls::{
    self, RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    server::WebPkiClientVerifier,
};

/// What the server saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The common name of the client certificate, when one was presented.
    pub client_cn: Option<String>,
}

pub type Body = BoxBody<Bytes, std::io::Error>;
pub type Handler = Arc<dyn Fn(Seen) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync>;

pub fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body.into()).map_err(|never| match never {}).boxed())
        .unwrap()
}

/// A streaming body fed through a channel: send `Ok(bytes)` chunks, an `Err` to abort the
/// connection mid-body, or drop the sender to end it cleanly.
pub fn streaming() -> (mpsc::Sender<Result<Bytes, std::io::Error>>, Response<Body>) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item.map(Frame::data), rx))
    });
    let body = StreamBody::new(stream).boxed();
    let response =
        Response::builder().status(200).header("content-type", "application/json").body(body).unwrap();
    (tx, response)
}

pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Seen) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    Arc::new(move |seen| Box::pin(f(seen)))
}

/// A certificate authority and the certificates it signs.
pub struct Pki {
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

pub struct Signed {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub key_der: PrivateKeyDer<'static>,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Pki { ca_pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// A certificate for `sans` (DNS names or IP addresses) with common name `cn`.
    pub fn sign(&self, cn: &str, sans: &[&str]) -> Signed {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Signed {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}

pub struct TlsOptions {
    pub server_cert: Signed,
    /// Require client certificates signed by this CA.
    pub client_ca_pem: Option<String>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn plain(handler: Handler) -> TestServer {
        Self::start(handler, None, None).await
    }

    pub async fn tls(handler: Handler, tls: TlsOptions) -> TestServer {
        Self::start(handler, Some(tls), None).await
    }

    /// Starts on a given listener (to pick the port in advance).
    pub async fn start(
        handler: Handler,
        tls: Option<TlsOptions>,
        listener: Option<TcpListener>,
    ) -> TestServer {
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let acceptor = tls.map(|tls| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let builder = ServerConfig::builder();
            let builder = match &tls.client_ca_pem {
                Some(ca) => {
                    let mut roots = RootCertStore::empty();
                    roots.add(pem_cert(ca)).unwrap();
                    let verifier = WebPkiClientVerifier::builder(Arc::new(roots)).build().unwrap();
                    builder.with_client_cert_verifier(verifier)
                }
                None => builder.with_no_client_auth(),
            };
            let mut config = builder
                .with_single_cert(vec![tls.server_cert.cert_der.clone()], tls.server_cert.key_der.clone_key())
                .unwrap();
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let handler = handler.clone();
                let seen = seen2.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        None => serve(TokioIo::new(tcp), handler, seen, None).await,
                        Some(acceptor) => {
                            let Ok(tls) = acceptor.accept(tcp).await else { return };
                            let cn =
                                tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(common_name);
                            serve(TokioIo::new(tls), handler, seen, cn).await
                        }
                    }
                });
            }
        });
        TestServer { addr, url: format!("{scheme}://127.0.0.1:{}", addr.port()), seen, task }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }
}

async fn serve<IO>(io: TokioIo<IO>, handler: Handler, seen: Arc<Mutex<Vec<Seen>>>, cn: Option<String>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let handler = handler.clone();
        let seen = seen.clone();
        let cn = cn.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let request = Seen {
                method: parts.method,
                uri: parts.uri,
                version: parts.version,
                headers: parts.headers,
                body,
                client_cn: cn,
            };
            seen.lock().push(request.clone());
            Ok::<_, Infallible>(handler(request).await)
        }
    });
    let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(io, service).await;
}

fn pem_cert(pem: &str) -> CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// The common name of a DER certificate (enough of X.509 for these tests: find the CN OID).
fn common_name(der: &CertificateDer<'_>) -> String {
    // OID 2.5.4.3 = 06 03 55 04 03, followed by a string tag and length. The last CN in the
    // certificate is the subject's (the issuer comes first).
    let bytes = der.as_ref();
    let oid = [0x06, 0x03, 0x55, 0x04, 0x03];
    let mut found = String::new();
    for i in 0..bytes.len().saturating_sub(oid.len() + 2) {
        if bytes[i..i + oid.len()] == oid {
            let len = bytes[i + oid.len() + 1] as usize;
            let start = i + oid.len() + 2;
            found = String::from_utf8_lossy(&bytes[start..start + len]).into_owned();
        }
    }
    found
}

/// A Status body as the API server sends it.
pub fn status_body(code: u16, reason: &str, message: &str) -> String {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code
    })
    .to_string()
}

pub fn pod_json(name: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": "1"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    })
    .to_string()
}
