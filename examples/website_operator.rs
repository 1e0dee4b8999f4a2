//! The Website operator on its own: `cargo run -p krust-examples --example website_operator`
//! (`-- --kubeconfig PATH` for a real cluster; otherwise an embedded krust-apiserver). It
//! installs the Website CRD, runs the controller with a manager (metrics and probes on
//! 127.0.0.1:8080 unless `--metrics-addr` says otherwise) until Ctrl-C. `--print-crd` prints the
//! Website CRD generated from the Rust type (what the chart's `crds/` holds).

#[path = "operator/website.rs"]
mod website;

use krust::prelude::*;
use krust_apiserver::ApiServer;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--print-crd") {
        // The CRD from the Rust type (the chart's crds/ holds this output).
        print!("{}", serde_yaml_ng::to_string(&website::crd())?);
        return Ok(());
    }
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let mut _server = None;
    let config = match flag("--kubeconfig") {
        Some(path) => Config::from_kubeconfig(path)?,
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
    let clientset = Clientset::new(&config)?;
    website::install_crd(&clientset).await?;
    if _server.is_some() {
        // Something to reconcile on the empty embedded server.
        let sites = clientset.typed::<website::Website>(Some("default"));
        sites.apply(&website::sample("hello"), &PatchOptions::apply("example").force()).await?;
        println!("created Website default/hello");
    }
    let manager = Manager::builder(config)
        .metrics_addr(flag("--metrics-addr").unwrap_or_else(|| "127.0.0.1:8080".into()))
        .build()?;
    website::controller().register(&manager)?;
    manager.run_until_signal().await?;
    Ok(())
}
