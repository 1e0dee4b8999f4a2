//! Request authentication at run time: static bearer tokens and basic auth, token files that
//! rotate (projected service-account tokens), and exec credential plugins with their cache.
//!
//! The `Authorization` header is computed per request by `Auth::credential`. A 401 makes the
//! client call `Auth::invalidate` with the generation of the credential it used; when the
//! credential can be renewed (an exec plugin), the request is retried once with a fresh one, as
//! client-go's exec authenticator does.
//!
//! Mirrors client-go's `transport` round-trippers and `plugin/pkg/client/auth/exec`.
//!
//! An exec credential plugin, as `gke-gcloud-auth-plugin` or `aws eks get-token` are configured
//! in a kubeconfig: the client runs it for a token and caches the credential until it expires.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = krust_apiserver::ApiServer::builder().token("s3cret").start().await?;
//! let dir = tempfile::tempdir()?;
//! let plugin = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"s3cret"}}"#;
//! let kubeconfig = format!(
//!     "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
//!      clusters: [{{name: c, cluster: {{server: '{}'}}}}]\n\
//!      contexts: [{{name: c, context: {{cluster: c, user: u}}}}]\n\
//!      users: [{{name: u, user: {{exec: {{apiVersion: client.authentication.k8s.io/v1, \
//!      command: /bin/sh, args: ['-c', 'echo ''{plugin}'''], interactiveMode: Never}}}}}}]\n",
//!     server.url()
//! );
//! std::fs::write(dir.path().join("config"), kubeconfig)?;
//!
//! let config = krust_client::Config::from_kubeconfig(dir.path().join("config"))?;
//! let clientset = krust_client::Clientset::new(&config)?;
//! let namespaces = clientset.core_v1().namespaces().list(&Default::default()).await?;
//! assert!(namespaces.items.iter().any(|ns| ns.metadata.name.as_deref() == Some("default")));
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

mod exec;

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use base64::Engine;
use http::HeaderValue;
use parking_lot::Mutex;
use secrecy::{ExposeSecret, SecretString};

pub(crate) use exec::ExecAuth;

use crate::{config::AuthConfig, transport::ClientCertResolver};

/// How often a token file is re-read even when its modification time did not change.
const TOKEN_FILE_MAX_AGE: Duration = Duration::from_secs(60);

/// Errors obtaining credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The exec plugin's command does not exist.
    #[error("exec plugin: command \"{command}\" not found{}", hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    ExecNotFound {
        /// The command.
        command: String,
        /// The kubeconfig's `installHint`.
        hint: Option<String>,
    },
    /// The exec plugin could not be started.
    #[error("exec plugin: cannot run \"{command}\": {source}")]
    ExecSpawn {
        /// The command.
        command: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The exec plugin exited with an error.
    #[error("exec plugin \"{command}\" failed ({status}): {stderr}")]
    ExecFailed {
        /// The command.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// An excerpt of what it wrote to stderr.
        stderr: String,
    },
    /// The exec plugin printed something that is not a usable `ExecCredential`.
    #[error("exec plugin \"{command}\": {message}")]
    ExecOutput {
        /// The command.
        command: String,
        /// What is wrong with the output.
        message: String,
    },
    /// A token file cannot be read and no earlier token is known.
    #[error("cannot read the token file {}: {source}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A credential cannot be put in an HTTP header.
    #[error("the {0} contains characters that are not allowed in an HTTP header")]
    InvalidHeader(&'static str),
}

/// A credential for one request: the header and the generation it belongs to.
pub(crate) struct Credential {
    pub(crate) header: Option<HeaderValue>,
    pub(crate) generation: u64,
}

/// The run-time authenticator built from an [`AuthConfig`].
pub(crate) enum Auth {
    None,
    Static(HeaderValue),
    TokenFile(TokenFile),
    Exec(Box<ExecAuth>),
}

impl Auth {
    pub(crate) fn new(config: &AuthConfig, certs: Arc<ClientCertResolver>) -> Result<Auth, AuthError> {
        Ok(match config {
            AuthConfig::None => Auth::None,
            AuthConfig::BearerToken(token) => Auth::Static(bearer(token.expose_secret())?),
            AuthConfig::Basic { username, password } => {
                let raw = format!("{username}:{}", password.expose_secret());
                let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
                let mut value = HeaderValue::try_from(format!("Basic {encoded}"))
                    .map_err(|_| AuthError::InvalidHeader("basic-auth user name"))?;
                value.set_sensitive(true);
                Auth::Static(value)
            }
            AuthConfig::TokenFile { path, fallback } => Auth::TokenFile(TokenFile {
                path: path.clone(),
                fallback: fallback.clone(),
                cached: Mutex::new(None),
            }),
            AuthConfig::Exec { exec, cluster } => {
                Auth::Exec(Box::new(ExecAuth::new(exec.clone(), cluster.clone(), certs)))
            }
        })
    }

    /// The credential to send with the next request.
    pub(crate) async fn credential(&self) -> Result<Credential, AuthError> {
        match self {
            Auth::None => Ok(Credential { header: None, generation: 0 }),
            Auth::Static(v) => Ok(Credential { header: Some(v.clone()), generation: 0 }),
            Auth::TokenFile(f) => Ok(Credential { header: Some(f.header()?), generation: 0 }),
            Auth::Exec(e) => e.credential().await,
        }
    }

    /// Called on a 401 with the generation of the credential that was refused. Returns whether
    /// a retry with a renewed credential makes sense.
    pub(crate) fn invalidate(&self, generation: u64) -> bool {
        match self {
            Auth::Exec(e) => e.invalidate(generation),
            // A rotated token file may hold a newer token: re-read it on the next request.
            Auth::TokenFile(f) => {
                *f.cached.lock() = None;
                false
            }
            _ => false,
        }
    }
}

fn bearer(token: &str) -> Result<HeaderValue, AuthError> {
    let mut value = HeaderValue::try_from(format!("Bearer {}", token.trim()))
        .map_err(|_| AuthError::InvalidHeader("bearer token"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// A bearer token kept in a file that is rotated under us (client-go's cachingTokenSource):
/// re-read when the file's modification time changes, and at least every minute.
pub(crate) struct TokenFile {
    path: PathBuf,
    fallback: Option<SecretString>,
    cached: Mutex<Option<CachedToken>>,
}

struct CachedToken {
    header: HeaderValue,
    read_at: Instant,
    modified: Option<SystemTime>,
}

impl TokenFile {
    fn header(&self) -> Result<HeaderValue, AuthError> {
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        let mut cached = self.cached.lock();
        if let Some(c) = cached.as_ref()
            && c.read_at.elapsed() < TOKEN_FILE_MAX_AGE
            && c.modified == modified
        {
            return Ok(c.header.clone());
        }
        match std::fs::read_to_string(&self.path) {
            Ok(token) if !token.trim().is_empty() => {
                let header = bearer(&token)?;
                *cached = Some(CachedToken { header: header.clone(), read_at: Instant::now(), modified });
                Ok(header)
            }
            other => {
                let reason = match other {
                    Err(e) => e,
                    Ok(_) => std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty"),
                };
                // Keep using the last good token (the file may be mid-rotation), else the
                // kubeconfig's `token`, else fail.
                if let Some(c) = cached.as_ref() {
                    tracing::warn!(path = %self.path.display(), error = %reason, "cannot re-read the token file; keeping the previous token");
                    return Ok(c.header.clone());
                }
                match &self.fallback {
                    Some(t) => bearer(t.expose_secret()),
                    None => Err(AuthError::TokenFile { path: self.path.clone(), source: reason }),
                }
            }
        }
    }
}
