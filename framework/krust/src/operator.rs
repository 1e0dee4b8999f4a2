//! The wiring every operator binary needs (feature `operator`; kubebuilder's generated
//! `cmd/main.go`): the flags and environment the Helm chart passes ([`OperatorArgs`], a clap
//! `Args` to flatten into your own command line), the client configuration they select, the
//! leader-election Lease's namespace (the flag, `POD_NAMESPACE`, the service account's
//! namespace file, then `default`), the manager they configure, and logging (JSON in a pod,
//! human-readable on a terminal).
//!
//! ```
//! use clap::Parser;
//! use krust::operator::{OperatorArgs, init_logging};
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     operator: OperatorArgs,
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let kubeconfig = tempfile::NamedTempFile::new()?;
//! # std::fs::write(kubeconfig.path(), &server.kubeconfig().yaml)?;
//! # let kubeconfig = kubeconfig.path().to_str().unwrap();
//! // In `main`: `Args::parse()`; here, the arguments the Helm chart's Deployment passes.
//! let args = Args::parse_from(["my-operator", "--kubeconfig", kubeconfig,
//!     "--metrics-addr", "127.0.0.1:0", "--leader-elect", "--leader-election-namespace", "default"]);
//! init_logging(args.operator.log_format);
//! let config = args.operator.client_config().await?;
//! let manager = args.operator.manager(config, "my-operator-leader", true).build()?;
//! // Register controllers, then `manager.run_until_signal().await?`; here, run and stop it.
//! let running = tokio::spawn(manager.clone().run());
//! # for _ in 0..500 { if manager.is_ready() { break } tokio::time::sleep(std::time::Duration::from_millis(10)).await; }
//! assert!(manager.is_ready());
//! manager.shutdown_token().cancel();
//! running.await??;
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use krust_client::Config;
use krust_runtime::manager::{Manager, ManagerBuilder};

/// Where a pod's service account namespace is mounted.
const POD_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The flags (and environment variables) of an operator, as the Helm chart passes them.
#[derive(Clone, Debug, clap::Args)]
pub struct OperatorArgs {
    /// The kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace, or these (comma-separated, as operator-sdk's
    /// `WATCH_NAMESPACE`; default: every namespace).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Where /metrics, /healthz and /readyz are served.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Log format: `auto` is JSON when running in a pod, human-readable elsewhere.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
    /// Run only while holding the leader Lease (several replicas, one active); `--leader-elect`
    /// alone means true. Default: the operator's own choice.
    #[arg(long, env = "LEADER_ELECT", action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true")]
    pub leader_elect: Option<bool>,
    /// The leader election Lease's name (default: the operator's own).
    #[arg(long)]
    pub leader_election_lease: Option<String>,
    /// The leader election Lease's namespace (default: $POD_NAMESPACE, then the pod's own
    /// namespace, then `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// How long in-flight reconciles may take to finish on SIGTERM, in seconds.
    #[arg(long, default_value_t = 30)]
    pub shutdown_timeout: u64,
    /// Serve the operator's webhooks (admission, conversion) over HTTPS on this address
    /// (the chart passes `0.0.0.0:9443` when its webhooks are on). Default: no webhook server.
    #[arg(long, env = "WEBHOOK_ADDR")]
    pub webhook_addr: Option<SocketAddr>,
    /// The directory holding the webhook server's `tls.crt` and `tls.key` (a mounted
    /// `kubernetes.io/tls` Secret; controller-runtime's default).
    #[arg(long, env = "WEBHOOK_CERT_DIR", default_value = "/tmp/k8s-webhook-server/serving-certs")]
    pub webhook_cert_dir: PathBuf,
    /// Serve `/healthz` and `/readyz` on this address instead of the metrics address
    /// (Kubebuilder's `--health-probe-bind-address`; the chart passes `0.0.0.0:8081`).
    #[arg(long, env = "HEALTH_PROBE_ADDR")]
    pub health_probe_addr: Option<SocketAddr>,
    /// Serve `/metrics` over HTTPS, only to callers the API server authenticates and
    /// authorizes (TokenReview, SubjectAccessReview; Kubebuilder's `--metrics-secure`).
    #[arg(long, env = "METRICS_SECURE", action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", default_value_t = false)]
    pub metrics_secure: bool,
    /// The directory holding the secure metrics server's `tls.crt` and `tls.key`.
    #[arg(long, env = "METRICS_CERT_DIR", default_value = "/tmp/k8s-metrics-server/metrics-certs")]
    pub metrics_cert_dir: PathBuf,
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// JSON when running in a pod (`KUBERNETES_SERVICE_HOST` is set), human-readable otherwise.
    Auto,
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable.
    Pretty,
}

/// Sets up logging to stderr in `format` (`RUST_LOG` filters it; default `info`). Call it once,
/// inside the Tokio runtime.
///
/// With the `otlp` feature, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, the spans that pass the filter (each reconcile,
/// with its `reconcile_id`) are also exported over OTLP/HTTP
/// (`krust::telemetry::otlp_from_env`, feature `otlp`; service name: `OTEL_SERVICE_NAME`, else the binary's
/// name) and API requests carry their trace context; call [`shutdown_tracing`] before exiting.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::{Layer as _, layer::SubscriberExt as _, util::SubscriberInitExt as _};
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Auto if in_cluster => fmt.json().boxed(),
        LogFormat::Auto | LogFormat::Pretty => fmt.boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    #[cfg(feature = "otlp")]
    {
        let name = std::env::args()
            .next()
            .and_then(|a| std::path::Path::new(&a).file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "krust-operator".into());
        match crate::telemetry::otlp_from_env(&name) {
            Ok(Some(provider)) => {
                let layer = crate::telemetry::layer(&provider);
                let _ = TRACER_PROVIDER.set(provider);
                registry.with(layer).init();
                tracing::info!("exporting traces over OTLP/HTTP");
            }
            Ok(None) => registry.init(),
            Err(e) => {
                registry.init();
                tracing::error!(error = %e, "traces are not exported");
            }
        }
    }
    #[cfg(not(feature = "otlp"))]
    registry.init();
}

/// The provider [`init_logging`] set up, flushed by [`shutdown_tracing`].
#[cfg(feature = "otlp")]
static TRACER_PROVIDER: std::sync::OnceLock<crate::telemetry::opentelemetry_sdk::trace::SdkTracerProvider> =
    std::sync::OnceLock::new();

/// Exports the spans still buffered and stops exporting (with the `otlp` feature, when
/// [`init_logging`] set export up; otherwise it does nothing). Call it once, before exiting.
pub async fn shutdown_tracing() {
    #[cfg(feature = "otlp")]
    if let Some(provider) = TRACER_PROVIDER.get() {
        // The export runs on this runtime while a blocking thread waits for it.
        let provider = provider.clone();
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the last spans were not exported"),
            Err(e) => tracing::warn!(error = %e, "the last spans were not exported"),
        }
    }
}

impl OperatorArgs {
    /// The client configuration: `--kubeconfig`, else `Config::infer` (KUBECONFIG,
    /// ~/.kube/config, in-cluster).
    pub async fn client_config(&self) -> Result<Config, krust_client::Error> {
        Ok(match &self.kubeconfig {
            Some(path) => Config::from_kubeconfig(path)?,
            None => Config::infer().await?,
        })
    }

    /// The namespaces `--namespace` names (empty: every namespace).
    pub fn watch_namespaces(&self) -> Vec<String> {
        let mut namespaces: Vec<String> = self
            .namespace
            .iter()
            .flat_map(|n| n.split(','))
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect();
        namespaces.sort();
        namespaces.dedup();
        namespaces
    }

    /// The namespace of the leader Lease: `--leader-election-namespace` (or `POD_NAMESPACE`),
    /// else the pod's service account namespace, else `default`.
    pub fn lease_namespace(&self) -> String {
        self.leader_election_namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .or_else(|| std::fs::read_to_string(POD_NAMESPACE_FILE).ok().map(|ns| ns.trim().to_string()))
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".to_string())
    }

    /// Whether leader election is on: the flag, else `default`.
    pub fn leader_elect_or(&self, default: bool) -> bool {
        self.leader_elect.unwrap_or(default)
    }

    /// A webhook server builder listening on `--webhook-addr` with the certificate of
    /// `--webhook-cert-dir`, or `None` without `--webhook-addr`. Register the handlers, build
    /// it and give it to [`ManagerBuilder::webhook_server`].
    pub fn webhook_server(&self) -> Option<krust_runtime::webhook::WebhookServerBuilder> {
        let addr = self.webhook_addr?;
        Some(krust_runtime::webhook::WebhookServer::builder().bind(addr).cert_dir(&self.webhook_cert_dir))
    }

    /// The manager these flags configure: metrics address (secure or not), probe address,
    /// graceful shutdown, namespaces,
    /// managedFields stripped from the cache, and leader election on the Lease
    /// `--leader-election-lease` (default `lease`) when [`leader_elect_or`](Self::leader_elect_or)
    /// says so. Register the controllers on what [`ManagerBuilder::build`] returns.
    pub fn manager(&self, config: Config, lease: &str, leader_elect_default: bool) -> ManagerBuilder {
        let mut builder = Manager::builder(config)
            .metrics_addr(self.metrics_addr.to_string())
            .graceful_shutdown_timeout(Duration::from_secs(self.shutdown_timeout))
            .strip_managed_fields(true);
        if let Some(addr) = self.health_probe_addr {
            builder = builder.health_probe_addr(addr.to_string());
        }
        if self.metrics_secure {
            builder = builder
                .secure_metrics(krust_runtime::manager::SecureMetrics::cert_dir(&self.metrics_cert_dir));
        }
        match self.watch_namespaces().as_slice() {
            [] => {}
            [one] => builder = builder.namespace(one.clone()),
            several => builder = builder.cache_namespaces(several.to_vec()),
        }
        if self.leader_elect_or(leader_elect_default) {
            let lease = self.leader_election_lease.clone().unwrap_or_else(|| lease.to_string());
            builder = builder.leader_election(lease, self.lease_namespace());
        }
        builder
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        operator: OperatorArgs,
    }

    #[test]
    fn the_charts_flags_parse_in_both_forms() {
        let cli = Cli::parse_from([
            "op",
            "--metrics-addr=127.0.0.1:9090",
            "--log-format",
            "json",
            "--leader-elect",
            "--leader-election-lease=demo",
            "--leader-election-namespace",
            "operators",
        ]);
        let args = cli.operator;
        assert_eq!(args.metrics_addr, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(args.log_format, LogFormat::Json);
        assert!(args.leader_elect_or(false));
        assert_eq!(args.leader_election_lease.as_deref(), Some("demo"));
        assert_eq!(args.lease_namespace(), "operators");
        let off = Cli::parse_from(["op", "--leader-elect=false"]).operator;
        assert!(!off.leader_elect_or(true));
        let default = Cli::parse_from(["op"]).operator;
        assert!(default.leader_elect_or(true) && !default.leader_elect_or(false));
        assert!(default.webhook_server().is_none(), "no --webhook-addr, no webhook server");
        let webhooks =
            Cli::parse_from(["op", "--webhook-addr=127.0.0.1:0", "--webhook-cert-dir", "/certs"]).operator;
        assert_eq!(webhooks.webhook_cert_dir, PathBuf::from("/certs"));
        let error = webhooks.webhook_server().expect("--webhook-addr given").build().unwrap_err();
        assert!(error.to_string().contains("/certs/tls.crt"), "{error}");
        assert!(!default.metrics_secure && default.health_probe_addr.is_none());
        let secure = Cli::parse_from([
            "op",
            "--metrics-secure",
            "--health-probe-addr=0.0.0.0:8081",
            "--metrics-cert-dir=/m",
        ])
        .operator;
        assert!(secure.metrics_secure);
        assert_eq!(secure.health_probe_addr, Some("0.0.0.0:8081".parse().unwrap()));
        let error = secure
            .manager(Config::new("http://127.0.0.1:1".parse().unwrap()), "x", false)
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("/m/tls.crt"), "{error}");
        let namespaces = Cli::parse_from(["op", "--namespace", "team-b, team-a,,team-b"]).operator;
        assert_eq!(namespaces.watch_namespaces(), ["team-a", "team-b"]);
        assert!(default.watch_namespaces().is_empty());
    }
}
