//! The Website operator on its own: `cargo run -p krust-examples --example website_operator`.
//! This is what the chart `charts/krust-operator` deploys, with the flags it passes:
//! `--metrics-addr ADDR` (default 127.0.0.1:8080; /metrics, /healthz, /readyz),
//! `--log-format json|pretty`, `--leader-elect`, `--leader-election-lease NAME`,
//! `--leader-election-namespace NS` (flags take `--flag value` or `--flag=value`).
//! It connects with `--kubeconfig PATH`, else `KUBECONFIG` or the in-cluster service account;
//! with none of them it starts an embedded krust-apiserver, installs the Website CRD there and
//! creates a sample (in a cluster the chart installs the CRD). `--print-crd` prints the Website
//! CRD generated from the Rust type (what the chart's `crds/` holds), `--print-rbac` the RBAC
//! rules of what the controller watches (the chart's `rbac.rules`). Runs until SIGINT/SIGTERM.

#[path = "operator/website.rs"]
mod website;

use krust::prelude::*;
use krust_apiserver::ApiServer;

/// The value of `--name value` or `--name=value`.
fn flag(args: &[String], name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    args.iter().enumerate().find_map(|(i, a)| match a.strip_prefix(&prefix) {
        Some(value) => Some(value.to_string()),
        None if a == name => args.get(i + 1).cloned(),
        None => None,
    })
}

/// `--name` or `--name=true|false`.
fn switch(args: &[String], name: &str) -> bool {
    args.iter().any(|a| a == name) || flag(args, name).is_some_and(|v| v == "true")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--print-crd") {
        // The CRD from the Rust type (the chart's crds/ holds this output).
        print!("{}", serde_saphyr::to_string(&website::crd())?);
        return Ok(());
    }
    if args.iter().any(|a| a == "--print-rbac") {
        // The RBAC rules of what the controller watches (the chart's `rbac.rules`).
        let rules = krust::runtime::controller::rbac_rules(website::controller().watched_resources());
        print!("{}", serde_saphyr::to_string(&rules)?);
        return Ok(());
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match flag(&args, "--log-format").as_deref() {
        Some("json") => logs.json().init(),
        Some("pretty") | None => logs.init(),
        Some(other) => anyhow::bail!("--log-format must be json or pretty, not {other:?}"),
    }

    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let has_kubeconfig = std::env::var_os("KUBECONFIG").is_some_and(|k| !k.is_empty());
    let mut _server = None;
    let config = match flag(&args, "--kubeconfig") {
        Some(path) => Config::from_kubeconfig(path)?,
        None if in_cluster || has_kubeconfig => Config::infer().await?,
        None => {
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
        }
    };
    if _server.is_some() {
        // The embedded server starts empty: the CRD and something to reconcile.
        let clientset = Clientset::new(&config)?;
        website::install_crd(&clientset).await?;
        let sites = clientset.typed::<website::Website>(Some("default"));
        sites.apply(&website::sample("hello"), &PatchOptions::apply("example").force()).await?;
        println!("created Website default/hello");
    }
    let mut builder = Manager::builder(config)
        .metrics_addr(flag(&args, "--metrics-addr").unwrap_or_else(|| "127.0.0.1:8080".into()));
    if switch(&args, "--leader-elect") {
        let lease = flag(&args, "--leader-election-lease").unwrap_or_else(|| website::MANAGER.into());
        let namespace = flag(&args, "--leader-election-namespace")
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into());
        builder = builder.leader_election(lease, namespace);
    }
    let manager = builder.build()?;
    website::controller().register(&manager)?;
    manager.run_until_signal().await?;
    Ok(())
}
