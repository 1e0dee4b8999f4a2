//! The kubeconfig file format (`clientcmd/api/v1`), its loading and client-go's merge rules.
//!
//! - [`Kubeconfig::read`] parses one file and resolves its relative paths (certificate files,
//!   token files, exec commands containing a `/`) against the file's own folder, as client-go's
//!   `ResolveLocalPaths` does, before any merge.
//! - [`Kubeconfig::merge`] applies client-go's rule for a `KUBECONFIG` list: the first file that
//!   sets a map key (a cluster, user or context name) wins, and the first non-empty
//!   `current-context` wins.
//! - Every named entry remembers the file it came from, so errors name the file and the field.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use krust_client::config::kubeconfig::Kubeconfig;
//!
//! let dir = tempfile::tempdir()?;
//! let (a, b) = (dir.path().join("a"), dir.path().join("b"));
//! std::fs::write(&a, "clusters: [{name: c, cluster: {server: 'https://a'}}]\ncurrent-context: one\n")?;
//! std::fs::write(&b, "clusters: [{name: c, cluster: {server: 'https://b'}}, {name: d, cluster: {server: 'https://d'}}]\n")?;
//! // KUBECONFIG=a:b — the first file that sets a name wins.
//! let merged = Kubeconfig::read(&a)?.merge(Kubeconfig::read(&b)?);
//! let servers: Vec<_> =
//!     merged.clusters.iter().filter_map(|c| c.cluster.as_ref()?.server.clone()).collect();
//! assert_eq!(servers, ["https://a", "https://d"]);
//! assert_eq!(merged.current_context.as_deref(), Some("one"));
//! # Ok(()) }
//! ```

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// A kubeconfig file (`apiVersion: v1`, `kind: Config`), or several merged.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Kubeconfig {
    /// The context used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    /// Named clusters.
    #[serde(default, deserialize_with = "null_as_default")]
    pub clusters: Vec<NamedCluster>,
    /// Named users (`AuthInfo`s).
    #[serde(default, deserialize_with = "null_as_default")]
    pub users: Vec<NamedAuthInfo>,
    /// Named contexts.
    #[serde(default, deserialize_with = "null_as_default")]
    pub contexts: Vec<NamedContext>,
    /// The files this configuration was read from, in precedence order.
    #[serde(skip)]
    pub files: Vec<PathBuf>,
}

/// A cluster with its name.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct NamedCluster {
    /// The cluster's name, referenced by contexts.
    pub name: String,
    /// The cluster.
    #[serde(default)]
    pub cluster: Option<Cluster>,
    /// The file this entry was read from.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// How to reach a cluster.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cluster {
    /// The API server's URL, e.g. `https://10.0.0.1:6443`.
    #[serde(default)]
    pub server: Option<String>,
    /// Path of a PEM file of CA certificates (relative to the kubeconfig's folder).
    #[serde(default)]
    pub certificate_authority: Option<String>,
    /// Base64 of PEM CA certificates; wins over `certificate-authority`.
    #[serde(default)]
    pub certificate_authority_data: Option<String>,
    /// Skip server certificate verification (insecure; only for tests).
    #[serde(default)]
    pub insecure_skip_tls_verify: Option<bool>,
    /// The name to verify the server certificate against, instead of the URL's host.
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// An HTTP proxy for every request to this cluster.
    #[serde(default)]
    pub proxy_url: Option<String>,
    /// Ask the server not to compress responses.
    #[serde(default)]
    pub disable_compression: Option<bool>,
    /// Extensions; `client.authentication.k8s.io/exec` is passed to exec plugins.
    #[serde(default)]
    pub extensions: Option<Vec<NamedExtension>>,
}

/// A named extension (arbitrary JSON).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct NamedExtension {
    /// The extension's name.
    pub name: String,
    /// Its content.
    #[serde(default)]
    pub extension: serde_json::Value,
}

/// A user with its name.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct NamedAuthInfo {
    /// The user's name, referenced by contexts.
    pub name: String,
    /// The credentials.
    #[serde(default)]
    pub user: Option<AuthInfo>,
    /// The file this entry was read from.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// Credentials of a user. `Debug` never shows secrets.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuthInfo {
    /// Path of a PEM client certificate.
    #[serde(default)]
    pub client_certificate: Option<String>,
    /// Base64 of a PEM client certificate; wins over `client-certificate`.
    #[serde(default)]
    pub client_certificate_data: Option<String>,
    /// Path of a PEM private key.
    #[serde(default)]
    pub client_key: Option<String>,
    /// Base64 of a PEM private key; wins over `client-key`.
    #[serde(default, serialize_with = "redacted")]
    pub client_key_data: Option<SecretString>,
    /// A bearer token.
    #[serde(default, serialize_with = "redacted")]
    pub token: Option<SecretString>,
    /// A file holding a bearer token, re-read as it rotates.
    #[serde(default, rename = "tokenFile")]
    pub token_file: Option<String>,
    /// User to impersonate.
    #[serde(default, rename = "as")]
    pub impersonate: Option<String>,
    /// UID to impersonate.
    #[serde(default, rename = "as-uid")]
    pub impersonate_uid: Option<String>,
    /// Groups to impersonate.
    #[serde(default, rename = "as-groups")]
    pub impersonate_groups: Option<Vec<String>>,
    /// Extra fields to impersonate.
    #[serde(default, rename = "as-user-extra")]
    pub impersonate_user_extra: Option<BTreeMap<String, Vec<String>>>,
    /// Basic-auth user name.
    #[serde(default)]
    pub username: Option<String>,
    /// Basic-auth password.
    #[serde(default, serialize_with = "redacted")]
    pub password: Option<SecretString>,
    /// An exec credential plugin.
    #[serde(default)]
    pub exec: Option<ExecConfig>,
    /// A legacy auth provider (unsupported; present so that the error can say so).
    #[serde(default, rename = "auth-provider")]
    pub auth_provider: Option<AuthProviderConfig>,
}

/// A legacy in-tree auth provider (`gcp`, `azure`, `oidc`); krust does not run them.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct AuthProviderConfig {
    /// The provider's name.
    pub name: String,
}

/// An exec credential plugin (`client.authentication.k8s.io`).
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecConfig {
    /// The command to run; a relative path containing `/` is relative to the kubeconfig's folder.
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: Option<Vec<ExecEnvVar>>,
    /// `client.authentication.k8s.io/v1` or `/v1beta1`.
    #[serde(default)]
    pub api_version: String,
    /// Shown to the user when the command is not found.
    #[serde(default)]
    pub install_hint: Option<String>,
    /// Pass the cluster's details in `KUBERNETES_EXEC_INFO`.
    #[serde(default)]
    pub provide_cluster_info: bool,
    /// `Never`, `IfAvailable` or `Always`.
    #[serde(default)]
    pub interactive_mode: Option<String>,
}

impl std::fmt::Debug for ExecConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Environment values may hold secrets: show the names only.
        let env: Vec<&str> = self.env.iter().flatten().map(|e| e.name.as_str()).collect();
        f.debug_struct("ExecConfig")
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &env)
            .field("api_version", &self.api_version)
            .field("provide_cluster_info", &self.provide_cluster_info)
            .field("interactive_mode", &self.interactive_mode)
            .finish()
    }
}

/// One environment variable of an exec plugin.
#[derive(Clone, Default, Deserialize, Serialize)]
pub struct ExecEnvVar {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// A context with its name.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct NamedContext {
    /// The context's name.
    pub name: String,
    /// The context.
    #[serde(default)]
    pub context: Option<Context>,
    /// The file this entry was read from.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// A cluster, a user and a default namespace.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Context {
    /// Name of the cluster.
    #[serde(default)]
    pub cluster: String,
    /// Name of the user.
    #[serde(default)]
    pub user: String,
    /// The default namespace.
    #[serde(default)]
    pub namespace: Option<String>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn redacted<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("REDACTED"),
        None => s.serialize_none(),
    }
}

impl Kubeconfig {
    /// Reads one kubeconfig file and resolves its relative paths against the file's folder.
    pub fn read(path: impl AsRef<Path>) -> Result<Kubeconfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    /// Parses kubeconfig YAML that was read from `path` (used for relative paths and errors).
    pub fn parse(text: &str, path: &Path) -> Result<Kubeconfig, ConfigError> {
        let mut config: Kubeconfig = if text.trim().is_empty() {
            Kubeconfig::default()
        } else {
            serde_saphyr::from_str(text)
                .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), source: Box::new(e) })?
        };
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for c in &mut config.clusters {
            c.source = Some(path.to_path_buf());
            if let Some(cluster) = &mut c.cluster {
                resolve(&dir, &mut cluster.certificate_authority);
            }
        }
        for u in &mut config.users {
            u.source = Some(path.to_path_buf());
            if let Some(user) = &mut u.user {
                resolve(&dir, &mut user.client_certificate);
                resolve(&dir, &mut user.client_key);
                resolve(&dir, &mut user.token_file);
                if let Some(exec) = &mut user.exec {
                    // client-go: a command with a path separator is a path relative to the
                    // kubeconfig; a bare name is looked up in $PATH.
                    if exec.command.contains('/') && Path::new(&exec.command).is_relative() {
                        exec.command = dir.join(&exec.command).to_string_lossy().into_owned();
                    }
                }
            }
        }
        for c in &mut config.contexts {
            c.source = Some(path.to_path_buf());
        }
        config.files = vec![path.to_path_buf()];
        Ok(config)
    }

    /// Merges `other` into `self` with client-go's precedence: entries (and the current context)
    /// already in `self` win over those of `other`.
    pub fn merge(mut self, other: Kubeconfig) -> Kubeconfig {
        if self.current_context.as_deref().unwrap_or("").is_empty() {
            self.current_context = other.current_context;
        }
        for c in other.clusters {
            if !self.clusters.iter().any(|x| x.name == c.name) {
                self.clusters.push(c);
            }
        }
        for u in other.users {
            if !self.users.iter().any(|x| x.name == u.name) {
                self.users.push(u);
            }
        }
        for c in other.contexts {
            if !self.contexts.iter().any(|x| x.name == c.name) {
                self.contexts.push(c);
            }
        }
        self.files.extend(other.files);
        self
    }

    /// Reads and merges a `KUBECONFIG`-style list of files, skipping those that do not exist
    /// (as client-go does); fails when none exists.
    pub fn read_all<P: AsRef<Path>>(paths: &[P]) -> Result<Kubeconfig, ConfigError> {
        let mut merged: Option<Kubeconfig> = None;
        let mut seen: Vec<&Path> = Vec::new();
        for p in paths {
            let p = p.as_ref();
            if p.as_os_str().is_empty() || seen.contains(&p) {
                continue;
            }
            seen.push(p);
            if !p.exists() {
                tracing::debug!(path = %p.display(), "kubeconfig file in the list does not exist; skipped");
                continue;
            }
            let next = Kubeconfig::read(p)?;
            merged = Some(match merged {
                None => next,
                Some(m) => m.merge(next),
            });
        }
        merged.ok_or_else(|| ConfigError::NoConfig {
            tried: seen.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        })
    }

    /// A label naming the file(s) this configuration came from, for error messages.
    pub(crate) fn label(&self) -> String {
        match self.files.as_slice() {
            [] => "<memory>".to_string(),
            files => files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(":"),
        }
    }
}

fn resolve(dir: &Path, field: &mut Option<String>) {
    if let Some(p) = field
        && !p.is_empty()
        && Path::new(p).is_relative()
    {
        *p = dir.join(&*p).to_string_lossy().into_owned();
    }
}
