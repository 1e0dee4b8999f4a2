//! The in-cluster configuration (client-go's `rest.InClusterConfig`): the API server from
//! `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`, and the pod's service account — a token
//! that the kubelet rotates (so it is re-read like a kubeconfig `tokenFile`), the cluster CA and
//! the namespace.

use std::path::Path;

use secrecy::SecretString;

use super::{AuthConfig, Config, ConfigError, parse_server};

/// Where the kubelet mounts the service account in a pod.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The in-cluster configuration for a service-account folder (`token`, `ca.crt`, `namespace`)
/// and the service host and port; [`Config::incluster`] reads them from the environment.
pub fn incluster_from(dir: &Path, host: &str, port: &str) -> Result<Config, ConfigError> {
    // An IPv6 address needs brackets in a URL.
    let host =
        if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
    let server = parse_server(&format!("https://{host}:{port}"))
        .map_err(|m| ConfigError::InCluster(format!("KUBERNETES_SERVICE_HOST/PORT: {m}")))?;
    let mut config = Config::new(server);

    let token_path = dir.join("token");
    let token = std::fs::read_to_string(&token_path).map_err(|e| {
        ConfigError::InCluster(format!(
            "cannot read the service-account token {}: {e} (is automountServiceAccountToken off?)",
            token_path.display()
        ))
    })?;
    config.auth = AuthConfig::TokenFile {
        path: token_path,
        fallback: Some(SecretString::from(token.trim().to_string())),
    };

    let ca_path = dir.join("ca.crt");
    match std::fs::read(&ca_path) {
        Ok(ca) => config.tls.ca_data = Some(ca),
        // client-go logs and goes on with the system roots.
        Err(e) => {
            tracing::error!(path = %ca_path.display(), error = %e, "cannot read the in-cluster CA; using the system roots")
        }
    }
    if let Ok(ns) = std::fs::read_to_string(dir.join("namespace")) {
        let ns = ns.trim();
        if !ns.is_empty() {
            config.default_namespace = ns.to_string();
        }
    }
    Ok(config)
}
