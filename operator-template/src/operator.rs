//! The command line, the logging and the manager. The Helm chart passes `--metrics-addr`,
//! `--log-format`, `--leader-elect`, `--leader-election-lease` and `--leader-election-namespace`.

use std::{net::SocketAddr, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};
use krust::{prelude::*, runtime::manager::ManagerError};

/// {{project-name}}: reconciles {{kind}} resources ({{group}}/{{api_version}}).
#[derive(Debug, Parser)]
#[command(version, about, args_override_self = true)]
pub struct Args {
    /// What to do (default: run the operator).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true)]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Watch {{kind}}s and what they own in this namespace only (default: every namespace).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Where /metrics, /healthz and /readyz are served.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Log format: JSON in a cluster, human-readable on a terminal (default: JSON when running in
    /// a pod).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
    /// Run only while holding the leader Lease (several replicas, one active).
    #[arg(long, env = "LEADER_ELECT", default_value_t = {{leader_election}}, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,
    /// The leader election Lease's name.
    #[arg(long, default_value = "{{project-name}}-leader")]
    pub leader_election_lease: String,
    /// The leader election Lease's namespace (default: $POD_NAMESPACE, then the pod's own
    /// namespace, then `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// How long in-flight reconciles may take to finish on SIGTERM, in seconds.
    #[arg(long, default_value_t = 30)]
    pub shutdown_timeout: u64,
}

/// The commands besides running the operator.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CRD of {{kind}} as YAML (`crdgen > charts/{{project-name}}/crds/crd.yaml`).
    Crdgen,
    /// Print the RBAC rules of what the controller watches (the chart's `rbac.rules`).
    Rbacgen,
}

/// The RBAC rules the controller needs, derived from what it watches, as YAML.
pub fn rbac_yaml() -> anyhow::Result<String> {
    let controller = crate::reconciler::controller();
    let rules = krust::runtime::controller::rbac_rules(controller.watched_resources());
    Ok(serde_saphyr::to_string(&rules)?)
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// JSON when running in a pod, pretty otherwise.
    Auto,
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable.
    Pretty,
}

/// Sets up logging (`RUST_LOG` filters it; default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Auto if in_cluster => builder.json().init(),
        LogFormat::Auto | LogFormat::Pretty => builder.init(),
    }
}

/// The client configuration the flags and the environment select.
pub async fn client_config(args: &Args) -> anyhow::Result<Config> {
    Ok(match &args.kubeconfig {
        Some(path) => Config::from_kubeconfig(path)?,
        None => Config::infer().await?,
    })
}

/// The namespace of the leader Lease.
fn lease_namespace(args: &Args) -> String {
    args.leader_election_namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .ok()
                .map(|ns| ns.trim().to_string())
        })
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

/// The manager running the controller, as the flags configure it.
pub fn manager(args: &Args, config: Config) -> Result<Manager, ManagerError> {
    let mut builder = Manager::builder(config)
        .metrics_addr(args.metrics_addr.to_string())
        .graceful_shutdown_timeout(Duration::from_secs(args.shutdown_timeout))
        .strip_managed_fields(true);
    if let Some(namespace) = args.namespace.as_ref().filter(|ns| !ns.is_empty()) {
        builder = builder.namespace(namespace.clone());
    }
    if args.leader_elect {
        builder = builder.leader_election(args.leader_election_lease.clone(), lease_namespace(args));
    }
    let manager = builder.build()?;
    crate::reconciler::controller().register(&manager)?;
    Ok(manager)
}

/// Runs the operator until SIGINT or SIGTERM (or lost leadership: an error, so that the pod
/// restarts and campaigns again).
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = client_config(&args).await?;
    let manager = manager(&args, config)?;
    tracing::info!(
        identity = manager.identity(),
        leader_election = args.leader_elect,
        metrics = %args.metrics_addr,
        "starting {{project-name}}"
    );
    manager.run_until_signal().await?;
    tracing::info!("stopped");
    Ok(())
}
