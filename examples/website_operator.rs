//! The Website operator on its own: `cargo run -p krust-examples --example website_operator`.
//! This is what the chart `charts/krust-operator` deploys, with the flags it passes:
//! `--metrics-addr ADDR` (default 0.0.0.0:8080; /metrics, /healthz, /readyz),
//! `--log-format auto|json|pretty`, `--leader-elect`, `--leader-election-lease NAME`,
//! `--leader-election-namespace NS`, `--webhook-addr ADDR` and `--webhook-cert-dir DIR` (the
//! Website's validating, defaulting and conversion webhooks; none without `--webhook-addr`) —
//! `krust::operator`'s flags, the same as the template's.
//! It connects with `--kubeconfig PATH`, else `KUBECONFIG` or the in-cluster service account;
//! with none of them it starts an embedded krust-apiserver, installs the Website CRD there,
//! runs the webhooks on 127.0.0.1 with a generated certificate and registers them, and creates
//! a sample (in a cluster the chart installs the CRD and the webhook configurations).
//! `--print-crd` prints the Website CRD generated from the Rust types (the chart's
//! `files/crds/`), `--print-rbac` the RBAC rules of what the controller watches (the chart's
//! `rbac.rules`), `--print-webhooks` its webhooks (the chart's `webhook.webhooks`). Runs until
//! SIGINT/SIGTERM.

#[path = "operator/website.rs"]
mod website;

use clap::Parser;
use krust::{
    operator::{OperatorArgs, init_logging},
    prelude::*,
    runtime::webhook::WebhookServer,
};
use krust_apiserver::ApiServer;

/// The Website operator (`krust::operator` gives the flags the chart passes).
#[derive(Parser)]
#[command(about, args_override_self = true)]
struct Args {
    #[command(flatten)]
    operator: OperatorArgs,
    /// Print the Website CRD generated from the Rust type (the chart's `crds/`) and exit.
    #[arg(long)]
    print_crd: bool,
    /// Print the RBAC rules of what the controller watches (the chart's `rbac.rules`) and exit.
    #[arg(long)]
    print_rbac: bool,
    /// Print the operator's webhooks (the chart's `webhook.webhooks`) and exit.
    #[arg(long)]
    print_webhooks: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.print_crd {
        print!("{}", serde_saphyr::to_string(&website::crd()?)?);
        return Ok(());
    }
    if args.print_rbac {
        let rules = krust::runtime::controller::rbac_rules(website::controller().watched_resources());
        print!("{}", serde_saphyr::to_string(&rules)?);
        return Ok(());
    }
    if args.print_webhooks {
        print!("{}", serde_saphyr::to_string(&website::webhooks(WebhookServer::builder()).webhooks())?);
        return Ok(());
    }
    init_logging(args.operator.log_format);

    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let has_kubeconfig = std::env::var_os("KUBECONFIG").is_some_and(|k| !k.is_empty());
    let mut _server = None;
    let config = if args.operator.kubeconfig.is_some() || in_cluster || has_kubeconfig {
        args.operator.client_config().await?
    } else {
        let server = ApiServer::builder().start().await?;
        let kubeconfig = std::env::temp_dir().join("krust-website-operator.kubeconfig");
        std::fs::write(&kubeconfig, &server.kubeconfig().yaml)?;
        println!(
            "embedded krust-apiserver at {}; kubectl --kubeconfig {} get websites",
            server.url(),
            kubeconfig.display()
        );
        let config = server.kubeconfig().config;
        _server = Some(server);
        config
    };
    let mut webhooks =
        args.operator.webhook_server().map(website::webhooks).map(|b| b.build()).transpose()?;
    if _server.is_some() {
        // The embedded server starts empty: the CRD, the webhooks (on this machine, with a
        // generated certificate, unless --webhook-addr says otherwise) and something to reconcile.
        let clientset = Clientset::new(&config)?;
        let local = match webhooks {
            Some(_) => None,
            None => Some(website::LocalWebhooks::start(
                &std::env::temp_dir().join("krust-website-operator-certs"),
            )?),
        };
        website::install_crd(&clientset, local.as_ref().map(|l| (&l.endpoint, l.ca.as_bytes()))).await?;
        let sites = clientset.typed::<website::Website>(Some("default"));
        sites.apply(&website::sample("hello"), &PatchOptions::apply("example").force()).await?;
        println!("created Website default/hello");
        // Registered after the sample: until the manager runs the webhook server, a write
        // through the webhooks would wait for it.
        if let Some(local) = local {
            website::register_webhooks(&clientset, &local.specs, &local.endpoint, &local.ca).await?;
            println!("webhooks at {}", local.server.local_addr().map(|a| a.to_string()).unwrap_or_default());
            webhooks = Some(local.server);
        }
    }
    let mut manager = args.operator.manager(config, website::MANAGER, false);
    if let Some(server) = webhooks {
        manager = manager.webhook_server(server);
    }
    let manager = manager.build()?;
    website::controller().register(&manager)?;
    let stopped = manager.run_until_signal().await;
    // With the `otlp` feature, exports the last spans.
    krust::operator::shutdown_tracing().await;
    Ok(stopped?)
}
