//! The serving certificate of the webhook server, read from files and read again when they
//! change (a Secret mounted into the pod is updated in place when cert-manager renews it), as
//! controller-runtime's `certwatcher`. New connections get the newest certificate.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use parking_lot::RwLock;
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio_util::sync::CancellationToken;

use super::WebhookError;

/// The certificate in use and where it comes from.
pub(crate) struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<(Arc<CertifiedKey>, Option<SystemTime>)>,
}

impl std::fmt::Debug for Reloading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading").field("cert", &self.cert).field("key", &self.key).finish()
    }
}

fn modified(cert: &PathBuf, key: &PathBuf) -> Option<SystemTime> {
    let c = std::fs::metadata(cert).and_then(|m| m.modified()).ok()?;
    let k = std::fs::metadata(key).and_then(|m| m.modified()).ok()?;
    Some(c.max(k))
}

fn read(cert: &PathBuf, key: &PathBuf) -> Result<CertifiedKey, WebhookError> {
    let bad = |path: &PathBuf, message: String| WebhookError::Certificate {
        path: path.display().to_string(),
        message,
    };
    let cert_pem = std::fs::read(cert).map_err(|e| bad(cert, e.to_string()))?;
    let key_pem = std::fs::read(key).map_err(|e| bad(key, e.to_string()))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert, format!("not valid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(bad(cert, "no CERTIFICATE block".into()));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| bad(key, format!("not a PEM private key: {e}")))?;
    let signing = krust_client::crypto_provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| bad(key, format!("cannot be used: {e}")))?;
    Ok(CertifiedKey::new(chain, signing))
}

impl Reloading {
    pub(crate) fn load(cert: PathBuf, key: PathBuf) -> Result<Arc<Reloading>, WebhookError> {
        let loaded = read(&cert, &key)?;
        let at = modified(&cert, &key);
        Ok(Arc::new(Reloading { cert, key, current: RwLock::new((Arc::new(loaded), at)) }))
    }

    /// Reads the files again if they changed; a bad new pair keeps the old certificate.
    pub(crate) fn reload_if_changed(&self) -> bool {
        let at = modified(&self.cert, &self.key);
        if at.is_none() || at == self.current.read().1 {
            return false;
        }
        match read(&self.cert, &self.key) {
            Ok(loaded) => {
                *self.current.write() = (Arc::new(loaded), at);
                tracing::info!(cert = %self.cert.display(), "serving certificate reloaded");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "the changed serving certificate cannot be used; keeping the current one");
                false
            }
        }
    }

    /// A rustls configuration that always presents the current certificate.
    pub(crate) fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let builder = ServerConfig::builder_with_provider(Arc::new(krust_client::crypto_provider()))
            .with_safe_default_protocol_versions();
        // The default protocol versions always exist for the built-in providers.
        let config = match builder {
            Ok(b) => b.with_no_client_auth().with_cert_resolver(Arc::new(Resolver(self.clone()))),
            Err(_) => ServerConfig::builder()
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(Resolver(self.clone()))),
        };
        Arc::new(config)
    }
}

#[derive(Debug)]
struct Resolver(Arc<Reloading>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current.read().0.clone())
    }
}

/// Checks the files every `interval` until `stop`.
pub(crate) async fn watch(certs: Arc<Reloading>, interval: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        certs.reload_if_changed();
    }
}
