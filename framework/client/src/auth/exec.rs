//! Exec credential plugins (`client.authentication.k8s.io/v1` and `v1beta1`), as client-go's
//! `plugin/pkg/client/auth/exec` runs them:
//!
//! - the command runs with the kubeconfig's `args` and `env` added to the process environment,
//!   and `KUBERNETES_EXEC_INFO` holding an `ExecCredential` whose `spec` says whether the session
//!   is interactive (never, here: krust has no terminal to lend) and, with `provideClusterInfo`,
//!   describes the cluster;
//! - its stdout must be an `ExecCredential` of the configured `apiVersion` with a `status`
//!   holding a token and/or a client certificate and key;
//! - the credential is cached until its `expirationTimestamp` (forever when it has none), and
//!   dropped on a 401 so that the request is retried once with a freshly run plugin;
//! - concurrent requests wait for one run of the plugin instead of running it many times.

use std::{process::Stdio, sync::Arc};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{AuthError, Credential, bearer};
use crate::{
    config::{ExecCluster, ExecConfig},
    transport::ClientCertResolver,
};

pub(crate) struct ExecAuth {
    exec: ExecConfig,
    cluster: Option<Box<ExecCluster>>,
    certs: Arc<ClientCertResolver>,
    state: tokio::sync::Mutex<ExecState>,
}

#[derive(Default)]
struct ExecState {
    cached: Option<Cached>,
    generation: u64,
}

struct Cached {
    header: Option<http::HeaderValue>,
    expiry: Option<jiff::Timestamp>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecCredential {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    status: Option<ExecCredentialStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecCredentialStatus {
    #[serde(default)]
    expiration_timestamp: Option<String>,
    #[serde(default)]
    token: Option<SecretString>,
    #[serde(default)]
    client_certificate_data: Option<String>,
    #[serde(default)]
    client_key_data: Option<SecretString>,
}

impl ExecAuth {
    pub(crate) fn new(
        exec: ExecConfig,
        cluster: Option<Box<ExecCluster>>,
        certs: Arc<ClientCertResolver>,
    ) -> Self {
        ExecAuth { exec, cluster, certs, state: tokio::sync::Mutex::new(ExecState::default()) }
    }

    pub(crate) async fn credential(&self) -> Result<Credential, AuthError> {
        let mut state = self.state.lock().await;
        if let Some(c) = &state.cached {
            let expired = c.expiry.is_some_and(|e| jiff::Timestamp::now() >= e);
            if !expired {
                return Ok(Credential { header: c.header.clone(), generation: state.generation });
            }
            tracing::debug!(command = %self.exec.command, "exec credential expired; running the plugin again");
        }
        let cached = self.run().await?;
        state.generation += 1;
        let header = cached.header.clone();
        state.cached = Some(cached);
        Ok(Credential { header, generation: state.generation })
    }

    pub(crate) fn invalidate(&self, generation: u64) -> bool {
        // If another request is refreshing right now, its result is new anyway: retry.
        let Ok(mut state) = self.state.try_lock() else { return true };
        if state.generation == generation {
            state.cached = None;
        }
        true
    }

    fn exec_info(&self) -> String {
        let mut spec = serde_json::json!({ "interactive": false });
        if let Some(cluster) = &self.cluster {
            spec["cluster"] = serde_json::to_value(cluster).unwrap_or_default();
        }
        serde_json::json!({
            "apiVersion": self.exec.api_version,
            "kind": "ExecCredential",
            "spec": spec,
        })
        .to_string()
    }

    async fn run(&self) -> Result<Cached, AuthError> {
        let command = &self.exec.command;
        if self.exec.interactive_mode.as_deref() == Some("Always") {
            return Err(AuthError::ExecOutput {
                command: command.clone(),
                message: "interactiveMode is Always, but krust cannot lend the plugin a terminal; \
                          log in beforehand or use a non-interactive plugin"
                    .into(),
            });
        }
        let mut cmd = tokio::process::Command::new(command);
        cmd.args(self.exec.args.iter().flatten())
            .envs(self.exec.env.iter().flatten().map(|e| (&e.name, &e.value)))
            .env("KUBERNETES_EXEC_INFO", self.exec_info())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let output = cmd.output().await.map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                AuthError::ExecNotFound { command: command.clone(), hint: self.exec.install_hint.clone() }
            } else {
                AuthError::ExecSpawn { command: command.clone(), source }
            }
        })?;
        if !output.stderr.is_empty() {
            tracing::debug!(command = %command, stderr = %String::from_utf8_lossy(&output.stderr), "exec plugin stderr");
        }
        if !output.status.success() {
            return Err(AuthError::ExecFailed {
                command: command.clone(),
                status: output.status,
                stderr: crate::error::excerpt(&output.stderr),
            });
        }
        self.parse(&output.stdout)
    }

    fn parse(&self, stdout: &[u8]) -> Result<Cached, AuthError> {
        let fail = |message: String| AuthError::ExecOutput { command: self.exec.command.clone(), message };
        let cred: ExecCredential = serde_json::from_slice(stdout)
            .map_err(|e| fail(format!("stdout is not an ExecCredential JSON object: {e}")))?;
        if cred.kind != "ExecCredential" {
            return Err(fail(format!("returned kind \"{}\", expected ExecCredential", cred.kind)));
        }
        if cred.api_version != self.exec.api_version {
            return Err(fail(format!(
                "is configured for {} but returned {}",
                self.exec.api_version, cred.api_version
            )));
        }
        let status = cred.status.ok_or_else(|| fail("returned no status".into()))?;
        let expiry = match status.expiration_timestamp.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => Some(
                t.parse::<jiff::Timestamp>()
                    .map_err(|e| fail(format!("invalid expirationTimestamp \"{t}\": {e}")))?,
            ),
            None => None,
        };
        let token = status.token.filter(|t| !t.expose_secret().is_empty());
        let cert = status.client_certificate_data.filter(|c| !c.is_empty());
        let key = status.client_key_data.filter(|k| !k.expose_secret().is_empty());
        match (&cert, &key) {
            (Some(cert), Some(key)) => self
                .certs
                .set_pem(cert.as_bytes(), key.expose_secret().as_bytes())
                .map_err(|e| fail(format!("invalid client certificate: {e}")))?,
            (None, None) => {}
            _ => {
                return Err(fail(
                    "returned a client certificate without its key, or a key without its certificate".into(),
                ));
            }
        }
        if token.is_none() && cert.is_none() {
            return Err(fail("returned neither a token nor a client certificate".into()));
        }
        let header = token.map(|t| bearer(t.expose_secret())).transpose()?;
        Ok(Cached { header, expiry })
    }
}
