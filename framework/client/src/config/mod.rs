//! Client configuration: where the API server is, how to trust it and how to authenticate —
//! the twin of client-go's `rest.Config`, loaded from kubeconfig files (`clientcmd`) or from the
//! pod's service account (`rest.InClusterConfig`).
//!
//! [`Config::infer`] follows client-go's default loading rules: the `KUBECONFIG` list (merged,
//! the first file that sets a key wins), else `~/.kube/config`, else the in-cluster config.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use krust_client::Config;
//!
//! // A kubeconfig with two contexts; the second one's namespace becomes the default namespace.
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("config");
//! std::fs::write(&path, "\
//! apiVersion: v1
//! kind: Config
//! current-context: dev
//! clusters:
//! - {name: dev, cluster: {server: 'https://dev.example.com:6443'}}
//! - {name: prod, cluster: {server: 'https://prod.example.com'}}
//! users: [{name: me, user: {token: abc}}]
//! contexts:
//! - {name: dev, context: {cluster: dev, user: me}}
//! - {name: prod, context: {cluster: prod, user: me, namespace: shop}}
//! ")?;
//! let dev = Config::from_kubeconfig(&path)?;
//! assert_eq!(dev.server.to_string(), "https://dev.example.com:6443/");
//! let prod = Config::from_kubeconfig_context(&path, "prod")?;
//! assert_eq!(prod.default_namespace, "shop");
//! // The token is never printed.
//! assert!(!format!("{prod:?}").contains("abc"));
//! # Ok(()) }
//! ```

mod incluster;
pub mod kubeconfig;

use std::{
    collections::BTreeMap,
    ffi::OsString,
    path::{Path, PathBuf},
    time::Duration,
};

use base64::Engine;
use http::Uri;
use kube_core::GroupVersion;
use secrecy::{ExposeSecret, SecretBox, SecretString};

pub use incluster::{SERVICE_ACCOUNT_DIR, incluster_from};
pub use kubeconfig::{AuthInfo, Cluster, ExecConfig, Kubeconfig, NamedExtension};

/// Errors loading or validating a configuration. Each one names the file and the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file could not be read.
    #[error("kubeconfig {}: cannot read the file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A kubeconfig file is not valid YAML of the expected shape.
    #[error("kubeconfig {}: invalid kubeconfig YAML: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The YAML error (its message names the line and column).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The kubeconfig parsed, but a field is missing, wrong or refers to nothing.
    #[error("kubeconfig {file}: {message}")]
    Invalid {
        /// The file(s) the configuration came from.
        file: String,
        /// What is wrong, naming the field and what was available.
        message: String,
    },
    /// No kubeconfig file exists and we are not in a cluster.
    #[error(
        "no Kubernetes configuration found (tried: {tried}); set KUBECONFIG, create ~/.kube/config, \
         or run inside a pod with a service account"
    )]
    NoConfig {
        /// What was tried.
        tried: String,
    },
    /// The in-cluster configuration is incomplete.
    #[error("in-cluster config: {0}")]
    InCluster(String),
    /// TLS material (CA, client certificate or key) cannot be used.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// The client configuration (client-go's `rest.Config`). `Debug` never shows secrets.
#[derive(Clone, Debug)]
pub struct Config {
    /// The API server's base URL, e.g. `https://127.0.0.1:6443`.
    pub server: Uri,
    /// The API path prefix for [`RestClient`](crate::RestClient): `/api` (core) or `/apis`.
    pub api_path: String,
    /// The group version a [`RestClient`](crate::RestClient) talks to (e.g. `v1`, `apps/v1`).
    pub group_version: Option<GroupVersion>,
    /// The namespace of the kubeconfig context (or the service account's); `default` otherwise.
    pub default_namespace: String,
    /// How to trust the server and how to present a client certificate.
    pub tls: TlsConfig,
    /// How requests are authenticated.
    pub auth: AuthConfig,
    /// Impersonation (`Impersonate-*` headers).
    pub impersonate: Option<Impersonation>,
    /// An HTTP proxy (`http://host:port`) to tunnel every request through.
    pub proxy_url: Option<Uri>,
    /// Time allowed to open a connection (TCP, proxy tunnel and TLS). Default 30 s, as Go's dialer.
    pub connect_timeout: Duration,
    /// Time allowed for a whole non-watch request, body included. `None` (the default, as in
    /// client-go) means no limit. Like client-go, the timeout is also sent to the server as the
    /// `timeout` parameter. Watches never use it: they end with the server's `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// Client-side rate limit in queries per second; `None` (the default) disables it.
    ///
    /// Off by default, as in controller-runtime since v0.21: API Priority and Fairness on the
    /// server protects it better than a per-process guess, and a client-side limit mostly adds
    /// latency to controllers that burst after a resync.
    pub qps: Option<f32>,
    /// Burst of the client-side rate limit (used with `qps`).
    pub burst: u32,
    /// Retries for a 429/5xx with `Retry-After`, and for connection failures on GET. Default 10.
    pub max_retries: u32,
    /// The `User-Agent` header; default `krust/<version> (<os>/<arch>)`.
    pub user_agent: String,
    /// Where request metrics go (none by default; krust-runtime's manager sets its own).
    pub metrics: Option<crate::rest::MetricsHook>,
}

/// TLS settings of a [`Config`].
#[derive(Clone, Default)]
pub struct TlsConfig {
    /// PEM CA certificates to trust instead of the system roots.
    pub ca_data: Option<Vec<u8>>,
    /// Skip server certificate verification entirely (insecure).
    pub insecure_skip_verify: bool,
    /// Name to verify the server certificate against, instead of the URL's host.
    pub server_name: Option<String>,
    /// PEM client certificate chain.
    pub client_cert_data: Option<Vec<u8>>,
    /// PEM private key of the client certificate.
    pub client_key_data: Option<std::sync::Arc<SecretBox<Vec<u8>>>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_data", &self.ca_data.as_ref().map(|d| format!("{} bytes", d.len())))
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("server_name", &self.server_name)
            .field("client_cert_data", &self.client_cert_data.as_ref().map(|d| format!("{} bytes", d.len())))
            .field("client_key_data", &self.client_key_data.as_ref().map(|_| "REDACTED"))
            .finish()
    }
}

/// How requests are authenticated (besides a client certificate, which is in [`TlsConfig`]).
#[derive(Clone, Debug, Default)]
pub enum AuthConfig {
    /// No credentials (or a client certificate only).
    #[default]
    None,
    /// A static bearer token.
    BearerToken(SecretString),
    /// A bearer token read from a file, re-read when it changes and at least every minute.
    TokenFile {
        /// The file.
        path: PathBuf,
        /// A token to use if the file cannot be read (kubeconfig `token` next to `tokenFile`).
        fallback: Option<SecretString>,
    },
    /// HTTP basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: SecretString,
    },
    /// An exec credential plugin.
    Exec {
        /// The plugin.
        exec: ExecConfig,
        /// The cluster passed to the plugin when `provideClusterInfo` is set.
        cluster: Option<Box<ExecCluster>>,
    },
}

/// The cluster information given to an exec plugin (`ExecCredential.spec.cluster`).
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecCluster {
    /// The server URL.
    pub server: String,
    /// The TLS server name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// Whether verification is skipped.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_tls_verify: bool,
    /// Base64 of the CA bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_authority_data: Option<String>,
    /// The proxy URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// The `client.authentication.k8s.io/exec` cluster extension.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

/// Who to act as (client-go's `ImpersonationConfig`).
#[derive(Clone, Debug, Default)]
pub struct Impersonation {
    /// `Impersonate-User`.
    pub user: String,
    /// `Impersonate-Uid`.
    pub uid: Option<String>,
    /// `Impersonate-Group`, one header each.
    pub groups: Vec<String>,
    /// `Impersonate-Extra-<key>`.
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The environment [`Config::infer`] reads, captured once (so tests can supply their own).
#[derive(Clone, Debug, Default)]
pub struct Environment {
    /// `KUBECONFIG`.
    pub kubeconfig: Option<OsString>,
    /// The home folder (`HOME`, or `USERPROFILE` on Windows).
    pub home: Option<PathBuf>,
    /// `KUBERNETES_SERVICE_HOST`.
    pub service_host: Option<String>,
    /// `KUBERNETES_SERVICE_PORT`.
    pub service_port: Option<String>,
    /// Folder of the service-account token, `ca.crt` and `namespace`.
    pub service_account_dir: PathBuf,
}

impl Environment {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        Environment {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            home: std::env::var_os("HOME")
                .or_else(|| std::env::var_os("USERPROFILE"))
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            service_host: std::env::var("KUBERNETES_SERVICE_HOST").ok(),
            service_port: std::env::var("KUBERNETES_SERVICE_PORT").ok(),
            service_account_dir: PathBuf::from(SERVICE_ACCOUNT_DIR),
        }
    }
}

impl Config {
    /// A configuration for `server` with no credentials and client-go's defaults.
    pub fn new(server: Uri) -> Config {
        Config {
            server,
            api_path: String::new(),
            group_version: None,
            default_namespace: "default".to_string(),
            tls: TlsConfig::default(),
            auth: AuthConfig::None,
            impersonate: None,
            proxy_url: None,
            connect_timeout: Duration::from_secs(30),
            timeout: None,
            qps: None,
            burst: 10,
            max_retries: 10,
            user_agent: default_user_agent(),
            metrics: None,
        }
    }

    /// Loads the current context of one kubeconfig file (`clientcmd.BuildConfigFromFlags("", path)`).
    pub fn from_kubeconfig(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Self::from_loaded_kubeconfig(&Kubeconfig::read(path)?, None)
    }

    /// Loads a named context of one kubeconfig file.
    pub fn from_kubeconfig_context(path: impl AsRef<Path>, context: &str) -> Result<Config, ConfigError> {
        Self::from_loaded_kubeconfig(&Kubeconfig::read(path)?, Some(context))
    }

    /// Infers the configuration as client-go's default loading rules do: the files of
    /// `KUBECONFIG` merged, else `~/.kube/config`, else the in-cluster configuration.
    pub async fn infer() -> Result<Config, ConfigError> {
        let env = Environment::from_process();
        tokio::task::spawn_blocking(move || Self::infer_from(&env, None))
            .await
            .map_err(|e| ConfigError::InCluster(format!("loading the configuration panicked: {e}")))?
    }

    /// [`Config::infer`] from a given environment, optionally with a named context.
    pub fn infer_from(env: &Environment, context: Option<&str>) -> Result<Config, ConfigError> {
        if let Some(list) = env.kubeconfig.as_ref().filter(|l| !l.is_empty()) {
            let paths: Vec<PathBuf> = std::env::split_paths(list).collect();
            let kubeconfig = Kubeconfig::read_all(&paths)?;
            return Self::from_loaded_kubeconfig(&kubeconfig, context);
        }
        let mut tried = Vec::new();
        if let Some(home) = &env.home {
            let path = home.join(".kube").join("config");
            if path.exists() {
                return Self::from_loaded_kubeconfig(&Kubeconfig::read(&path)?, context);
            }
            tried.push(path.display().to_string());
        } else {
            tried.push("~/.kube/config (no HOME set)".to_string());
        }
        match (&env.service_host, &env.service_port) {
            (Some(host), Some(port)) if !host.is_empty() && !port.is_empty() => {
                incluster_from(&env.service_account_dir, host, port)
            }
            _ => {
                tried.push("in-cluster (KUBERNETES_SERVICE_HOST/PORT not set)".to_string());
                Err(ConfigError::NoConfig { tried: tried.join(", ") })
            }
        }
    }

    /// The in-cluster configuration (`rest.InClusterConfig`): `KUBERNETES_SERVICE_HOST/PORT` and
    /// the service account's token, CA and namespace.
    pub fn incluster() -> Result<Config, ConfigError> {
        let env = Environment::from_process();
        match (env.service_host, env.service_port) {
            (Some(host), Some(port)) if !host.is_empty() && !port.is_empty() => {
                incluster_from(&env.service_account_dir, &host, &port)
            }
            _ => Err(ConfigError::InCluster(
                "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (is this running in a pod?)"
                    .into(),
            )),
        }
    }

    /// Builds a configuration from a (merged) kubeconfig and a context name (the current context
    /// when `None`).
    pub fn from_loaded_kubeconfig(kc: &Kubeconfig, context: Option<&str>) -> Result<Config, ConfigError> {
        let label = kc.label();
        let invalid = |message: String| ConfigError::Invalid { file: label.clone(), message };
        let names = |v: Vec<&str>| if v.is_empty() { "none".to_string() } else { v.join(", ") };

        let context_name = match context.filter(|c| !c.is_empty()) {
            Some(c) => c.to_string(),
            None => match kc.current_context.as_deref().filter(|c| !c.is_empty()) {
                Some(c) => c.to_string(),
                None => {
                    return Err(invalid(format!(
                        "current-context is not set and no context was given (contexts: {})",
                        names(kc.contexts.iter().map(|c| c.name.as_str()).collect())
                    )));
                }
            },
        };
        let named_context = kc.contexts.iter().find(|c| c.name == context_name).ok_or_else(|| {
            invalid(format!(
                "context \"{context_name}\" not found (contexts: {})",
                names(kc.contexts.iter().map(|c| c.name.as_str()).collect())
            ))
        })?;
        let file_of = |source: &Option<PathBuf>| {
            source.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| label.clone())
        };
        let ctx_file = file_of(&named_context.source);
        let ctx = named_context.context.clone().unwrap_or_default();

        let named_cluster =
            kc.clusters.iter().find(|c| c.name == ctx.cluster).ok_or_else(|| ConfigError::Invalid {
                file: ctx_file.clone(),
                message: format!(
                    "context \"{context_name}\": cluster \"{}\" not found (clusters: {})",
                    ctx.cluster,
                    names(kc.clusters.iter().map(|c| c.name.as_str()).collect())
                ),
            })?;
        let cluster_file = file_of(&named_cluster.source);
        let cluster_err = |field: &str, message: String| ConfigError::Invalid {
            file: cluster_file.clone(),
            message: format!("cluster \"{}\": {field}: {message}", named_cluster.name),
        };
        let cluster = named_cluster.cluster.clone().unwrap_or_default();

        let server = cluster.server.clone().filter(|s| !s.is_empty()).ok_or_else(|| {
            cluster_err("server", "not set; add the API server's URL, e.g. https://host:6443".into())
        })?;
        let server_uri = parse_server(&server).map_err(|m| cluster_err("server", m))?;
        let mut config = Config::new(server_uri);
        config.default_namespace =
            ctx.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".to_string());

        // TLS: the -data fields win over the file fields, as in client-go.
        let insecure = cluster.insecure_skip_tls_verify.unwrap_or(false);
        config.tls.ca_data = match (&cluster.certificate_authority_data, &cluster.certificate_authority) {
            (Some(data), _) if !data.is_empty() => {
                Some(decode_base64(data).map_err(|m| cluster_err("certificate-authority-data", m))?)
            }
            (_, Some(file)) if !file.is_empty() => Some(
                std::fs::read(file)
                    .map_err(|e| cluster_err("certificate-authority", format!("cannot read {file}: {e}")))?,
            ),
            _ => None,
        };
        if insecure && config.tls.ca_data.is_some() {
            return Err(cluster_err(
                "insecure-skip-tls-verify",
                "cannot be combined with a certificate authority; remove one of them".into(),
            ));
        }
        config.tls.insecure_skip_verify = insecure;
        config.tls.server_name = cluster.tls_server_name.clone().filter(|s| !s.is_empty());
        if let Some(proxy) = cluster.proxy_url.as_deref().filter(|p| !p.is_empty()) {
            config.proxy_url = Some(parse_proxy(proxy).map_err(|m| cluster_err("proxy-url", m))?);
        }

        // The user. An empty user name means no credentials.
        if !ctx.user.is_empty() {
            let named_user =
                kc.users.iter().find(|u| u.name == ctx.user).ok_or_else(|| ConfigError::Invalid {
                    file: ctx_file.clone(),
                    message: format!(
                        "context \"{context_name}\": user \"{}\" not found (users: {})",
                        ctx.user,
                        names(kc.users.iter().map(|u| u.name.as_str()).collect())
                    ),
                })?;
            let user_file = file_of(&named_user.source);
            let user_err = |field: &str, message: String| ConfigError::Invalid {
                file: user_file.clone(),
                message: format!("user \"{}\": {field}: {message}", named_user.name),
            };
            let user = named_user.user.clone().unwrap_or_default();
            apply_user(&mut config, &user, &cluster, &user_err)?;
        }
        Ok(config)
    }

    /// Sets the group version and API path (`/api` for the core group, `/apis` otherwise), as
    /// `RestClient::new` expects them.
    #[must_use]
    pub fn with_group_version(mut self, gv: GroupVersion) -> Config {
        self.api_path = crate::rules::api_path(&gv.group).into();
        self.group_version = Some(gv);
        self
    }
}

fn apply_user(
    config: &mut Config,
    user: &AuthInfo,
    cluster: &Cluster,
    user_err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    // Client certificate: -data wins over the file.
    let cert = match (&user.client_certificate_data, &user.client_certificate) {
        (Some(d), _) if !d.is_empty() => {
            Some(decode_base64(d).map_err(|m| user_err("client-certificate-data", m))?)
        }
        (_, Some(f)) if !f.is_empty() => Some(
            std::fs::read(f).map_err(|e| user_err("client-certificate", format!("cannot read {f}: {e}")))?,
        ),
        _ => None,
    };
    let key = match (&user.client_key_data, &user.client_key) {
        (Some(d), _) if !d.expose_secret().is_empty() => {
            Some(decode_base64(d.expose_secret()).map_err(|m| user_err("client-key-data", m))?)
        }
        (_, Some(f)) if !f.is_empty() => {
            Some(std::fs::read(f).map_err(|e| user_err("client-key", format!("cannot read {f}: {e}")))?)
        }
        _ => None,
    };
    match (cert, key) {
        (Some(c), Some(k)) => {
            config.tls.client_cert_data = Some(c);
            config.tls.client_key_data = Some(std::sync::Arc::new(SecretBox::new(Box::new(k))));
        }
        (Some(_), None) => return Err(user_err("client-key", "a client certificate needs its key".into())),
        (None, Some(_)) => {
            return Err(user_err("client-certificate", "a client key needs its certificate".into()));
        }
        (None, None) => {}
    }

    let token = user.token.clone().filter(|t| !t.expose_secret().is_empty());
    let token_file = user.token_file.clone().filter(|f| !f.is_empty());
    let basic = user.username.as_deref().filter(|u| !u.is_empty());
    if (token.is_some() || token_file.is_some()) && basic.is_some() {
        return Err(user_err(
            "username",
            "more than one authentication method found (token and basic auth); keep one".into(),
        ));
    }
    config.auth = if let Some(path) = token_file {
        AuthConfig::TokenFile { path: PathBuf::from(path), fallback: token }
    } else if let Some(token) = token {
        AuthConfig::BearerToken(token)
    } else if let Some(username) = basic {
        AuthConfig::Basic {
            username: username.to_string(),
            password: user.password.clone().unwrap_or_else(|| SecretString::from(String::new())),
        }
    } else if let Some(exec) = &user.exec {
        if exec.command.is_empty() {
            return Err(user_err("exec.command", "is empty".into()));
        }
        match exec.api_version.as_str() {
            "client.authentication.k8s.io/v1" | "client.authentication.k8s.io/v1beta1" => {}
            other => {
                return Err(user_err(
                    "exec.apiVersion",
                    format!(
                        "\"{other}\" is not supported (supported: client.authentication.k8s.io/v1, client.authentication.k8s.io/v1beta1)"
                    ),
                ));
            }
        }
        if let Some(mode) = exec.interactive_mode.as_deref()
            && !matches!(mode, "" | "Never" | "IfAvailable" | "Always")
        {
            return Err(user_err(
                "exec.interactiveMode",
                format!("\"{mode}\" is not one of Never, IfAvailable, Always"),
            ));
        }
        let exec_cluster = exec.provide_cluster_info.then(|| {
            Box::new(ExecCluster {
                server: cluster.server.clone().unwrap_or_default(),
                tls_server_name: cluster.tls_server_name.clone(),
                insecure_skip_tls_verify: cluster.insecure_skip_tls_verify.unwrap_or(false),
                certificate_authority_data: config
                    .tls
                    .ca_data
                    .as_ref()
                    .map(|d| base64::engine::general_purpose::STANDARD.encode(d)),
                proxy_url: cluster.proxy_url.clone(),
                config: cluster
                    .extensions
                    .iter()
                    .flatten()
                    .find(|e| e.name == "client.authentication.k8s.io/exec")
                    .map(|e| e.extension.clone()),
            })
        });
        AuthConfig::Exec { exec: exec.clone(), cluster: exec_cluster }
    } else if let Some(provider) = &user.auth_provider {
        return Err(user_err(
            "auth-provider",
            format!(
                "the legacy \"{}\" auth provider is not supported; use its exec credential plugin \
                 instead (e.g. gke-gcloud-auth-plugin, kubelogin)",
                provider.name
            ),
        ));
    } else {
        AuthConfig::None
    };

    if let Some(user_name) = user.impersonate.as_deref().filter(|u| !u.is_empty()) {
        config.impersonate = Some(Impersonation {
            user: user_name.to_string(),
            uid: user.impersonate_uid.clone().filter(|u| !u.is_empty()),
            groups: user.impersonate_groups.clone().unwrap_or_default(),
            extra: user.impersonate_user_extra.clone().unwrap_or_default(),
        });
    } else if user.impersonate_groups.as_ref().is_some_and(|g| !g.is_empty()) {
        return Err(user_err("as-groups", "impersonating groups requires a user (`as`)".into()));
    }
    Ok(())
}

fn decode_base64(data: &str) -> Result<Vec<u8>, String> {
    let cleaned: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|e| format!("invalid base64 ({e}); the field holds base64 of PEM data"))
}

/// Parses a server URL; a bare `host:port` gets `https://`, as client-go does.
pub(crate) fn parse_server(server: &str) -> Result<Uri, String> {
    let with_scheme = if server.contains("://") { server.to_string() } else { format!("https://{server}") };
    let uri: Uri =
        with_scheme.trim_end_matches('/').parse().map_err(|e| format!("\"{server}\" is not a URL ({e})"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("\"{server}\": the scheme must be https or http")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("\"{server}\" has no host"));
    }
    Ok(uri)
}

fn parse_proxy(proxy: &str) -> Result<Uri, String> {
    let uri: Uri = proxy.parse().map_err(|e| format!("\"{proxy}\" is not a URL ({e})"))?;
    match uri.scheme_str() {
        Some("http") => Ok(uri),
        Some(other) => Err(format!("scheme \"{other}\" is not supported; use an http:// proxy")),
        None => Err(format!("\"{proxy}\" has no scheme; write http://host:port")),
    }
}

fn default_user_agent() -> String {
    format!("krust/{} ({}/{})", env!("CARGO_PKG_VERSION"), std::env::consts::OS, std::env::consts::ARCH)
}
