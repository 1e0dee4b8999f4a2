//! The command line, the logging and the manager. The Helm chart passes `--metrics-addr`,
//! `--log-format`, `--leader-elect`, `--leader-election-lease` and `--leader-election-namespace`{% if webhooks %},
//! and `--webhook-addr` and `--webhook-cert-dir` when its webhooks are on{% endif %}.

use clap::{Parser, Subcommand};
use krust::{operator::OperatorArgs, prelude::*};

/// {{project-name}}: reconciles {{kind}} resources ({{group}}/{{api_version}}).
#[derive(Debug, Parser)]
#[command(version, about, args_override_self = true)]
pub struct Args {
    /// What to do (default: run the operator).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The operator's flags (krust::operator): kubeconfig, namespace, metrics address, log
    /// format, leader election, shutdown timeout.
    #[command(flatten)]
    pub operator: OperatorArgs,
}

/// Leader election unless `--leader-elect=false` (the template's choice).
pub const LEADER_ELECT_DEFAULT: bool = {{leader_election}};
/// The leader election Lease's name unless `--leader-election-lease` says otherwise.
pub const LEASE: &str = "{{project-name}}-leader";

/// The commands besides running the operator.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CRD of {{kind}} as YAML (`crdgen > charts/{{project-name}}/crds/crd.yaml`).
    Crdgen,
    /// Print the RBAC rules of what the controller watches (the chart's `rbac.rules`).
    Rbacgen,
{%- if webhooks %}
    /// Print the webhooks (the chart's `webhook.webhooks`).
    Webhookgen,
{%- endif %}
}

/// The RBAC rules the controller needs, derived from what it watches, as YAML.
pub fn rbac_yaml() -> anyhow::Result<String> {
    let controller = crate::reconciler::controller();
    let rules = krust::runtime::controller::rbac_rules(controller.watched_resources());
    Ok(serde_saphyr::to_string(&rules)?)
}

/// The manager running the controller{% if webhooks %} (and the webhooks, with `--webhook-addr`){% endif %}, as the flags configure it.
pub fn manager(args: &Args, config: Config) -> anyhow::Result<Manager> {
{%- if webhooks %}
    let mut builder = args.operator.manager(config, LEASE, LEADER_ELECT_DEFAULT);
    if let Some(server) = args.operator.webhook_server() {
        builder = builder.webhook_server(crate::webhook::webhooks(server).build()?);
    }
    let manager = builder.build()?;
{%- else %}
    let manager = args.operator.manager(config, LEASE, LEADER_ELECT_DEFAULT).build()?;
{%- endif %}
    crate::reconciler::controller().register(&manager)?;
    Ok(manager)
}

/// Runs the operator until SIGINT or SIGTERM (or lost leadership: an error, so that the pod
/// restarts and campaigns again).
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.operator.client_config().await?;
    let manager = manager(&args, config)?;
    tracing::info!(
        identity = manager.identity(),
        leader_election = args.operator.leader_elect_or(LEADER_ELECT_DEFAULT),
        metrics = %args.operator.metrics_addr,
        "starting {{project-name}}"
    );
    let stopped = manager.run_until_signal().await;
    tracing::info!("stopped");
    // With the `otlp` feature, exports the last spans.
    krust::operator::shutdown_tracing().await;
    Ok(stopped?)
}
