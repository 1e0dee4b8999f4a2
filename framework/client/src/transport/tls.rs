//! TLS for the transport: rustls (ring, or aws-lc-rs with that feature) with the kubeconfig's CA (or the system roots), optional
//! verification skip, and a client-certificate resolver that can be swapped at run time (an exec
//! plugin may return a new certificate when its credential is renewed).
//!
//! Mirrors client-go's `transport.TLSConfigFor` and its certificate rotation.

use std::sync::Arc;

use parking_lot::RwLock;
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        ResolvesClientCert,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
    sign::CertifiedKey,
};

use crate::config::{ConfigError, TlsConfig};

/// The client certificate presented during TLS handshakes; replaceable while connections are
/// being made (new connections use the newest certificate).
#[derive(Default)]
pub(crate) struct ClientCertResolver {
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for ClientCertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertResolver").field("has_cert", &self.current.read().is_some()).finish()
    }
}

impl ClientCertResolver {
    /// Replaces the certificate with a PEM chain and its PEM private key.
    pub(crate) fn set_pem(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the client certificate is not valid PEM: {e}"))?;
        if certs.is_empty() {
            return Err("the client certificate holds no PEM CERTIFICATE block".into());
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| format!("the client key is not a valid PEM private key: {e}"))?;
        let signing_key = crypto_provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| format!("the client key cannot be used: {e}"))?;
        *self.current.write() = Some(Arc::new(CertifiedKey::new(certs, signing_key)));
        Ok(())
    }
}

impl ResolvesClientCert for ClientCertResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.current.read().clone()
    }

    fn has_certs(&self) -> bool {
        self.current.read().is_some()
    }
}

/// The rustls cryptography the `ring` (default) or `aws-lc-rs` feature chose; `ring` when both
/// are on (as rustls' own preference when a feature set unifies both).
#[cfg(feature = "ring")]
pub fn crypto_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The rustls cryptography the `aws-lc-rs` feature chose (`ring` is off).
#[cfg(all(feature = "aws-lc-rs", not(feature = "ring")))]
pub fn crypto_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

#[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
compile_error!(
    "krust-client needs a TLS crypto provider: enable its `ring` (default) or `aws-lc-rs` feature"
);

/// Builds the rustls configuration of a [`TlsConfig`]. The system roots are loaded only when
/// `system_roots` is set (a plain-http server never needs them, and loading them costs time and
/// memory at start-up).
pub(crate) fn client_config(
    tls: &TlsConfig,
    certs: Arc<ClientCertResolver>,
    system_roots: bool,
) -> Result<ClientConfig, ConfigError> {
    let provider = Arc::new(crypto_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(format!("cannot set up TLS: {e}")))?;
    let builder = if tls.insecure_skip_verify {
        tracing::warn!("TLS verification of the API server is disabled (insecure-skip-tls-verify)");
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        match &tls.ca_data {
            Some(pem) => {
                let ca: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().map_err(|e| {
                        ConfigError::Tls(format!("the certificate authority is not valid PEM: {e}"))
                    })?;
                if ca.is_empty() {
                    return Err(ConfigError::Tls(
                        "the certificate authority holds no PEM CERTIFICATE block".into(),
                    ));
                }
                let (_, ignored) = roots.add_parsable_certificates(ca);
                if roots.is_empty() {
                    return Err(ConfigError::Tls(format!(
                        "none of the {ignored} certificate authority certificates could be parsed"
                    )));
                }
            }
            None if !system_roots => {}
            None => {
                let native = rustls_native_certs::load_native_certs();
                for e in &native.errors {
                    tracing::debug!(error = %e, "cannot load a system root certificate");
                }
                roots.add_parsable_certificates(native.certs);
            }
        }
        builder.with_root_certificates(roots)
    };
    Ok(builder.with_client_cert_resolver(certs))
}

/// `insecure-skip-tls-verify`: accept any server certificate, but still check the handshake
/// signatures so that the session keys belong to whoever sent the certificate.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
