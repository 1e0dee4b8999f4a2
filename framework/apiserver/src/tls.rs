//! The self-signed serving certificate of `--tls`: a CA made at start-up signs a certificate for
//! localhost, 127.0.0.1, ::1 and the bind address; the CA goes into the kubeconfig.
//!
//! Mirrors kube-apiserver's self-signed `--cert-dir` serving certificate.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub(crate) struct Serving {
    pub ca_pem: String,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

pub(crate) fn self_signed(bind: std::net::IpAddr) -> Result<Serving, rcgen::Error> {
    let (ca_pem, cert, key) = signed("krust-apiserver", bind)?;
    Ok(Serving {
        ca_pem,
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    })
}

/// A fresh CA and a certificate it signed for localhost, 127.0.0.1, ::1 and `bind`.
fn signed(name: &str, bind: std::net::IpAddr) -> Result<(String, rcgen::Certificate, KeyPair), rcgen::Error> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name.push(DnType::CommonName, format!("{name}-ca"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "kubernetes.default.svc".to_string()])?;
    params.distinguished_name.push(DnType::CommonName, name);
    for ip in ["127.0.0.1".parse().ok(), "::1".parse().ok(), Some(bind)].into_iter().flatten() {
        if !params.subject_alt_names.contains(&SanType::IpAddress(ip)) {
            params.subject_alt_names.push(SanType::IpAddress(ip));
        }
    }
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((ca_cert.pem(), cert, key))
}

/// Writes a serving certificate for a webhook server that runs on this machine next to
/// krust-apiserver (what envtest's `WebhookInstallOptions` generates): a fresh CA signs a
/// certificate for `localhost`, `127.0.0.1` and `::1`; `tls.crt` and `tls.key` (mode 0600) go
/// into `dir` (created if missing) — the layout a webhook server's `cert_dir` reads. Returns
/// the CA's PEM, the `caBundle` of the webhook configurations.
pub fn write_webhook_certificate(dir: &std::path::Path) -> Result<String, crate::Error> {
    let failed = |e: &dyn std::fmt::Display| crate::Error::Certificate(format!("{}: {e}", dir.display()));
    let localhost = std::net::IpAddr::from([127, 0, 0, 1]);
    let (ca_pem, cert, key) = signed("krust-webhook", localhost).map_err(|e| failed(&e))?;
    std::fs::create_dir_all(dir).map_err(|e| failed(&e))?;
    std::fs::write(dir.join("tls.crt"), cert.pem()).map_err(|e| failed(&e))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(dir.join("tls.key")).map_err(|e| failed(&e))?;
    std::io::Write::write_all(&mut file, key.serialize_pem().as_bytes()).map_err(|e| failed(&e))?;
    Ok(ca_pem)
}
