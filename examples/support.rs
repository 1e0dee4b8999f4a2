//! Shared by the examples: where to connect. `--kubeconfig PATH` or `KUBECONFIG` picks a real
//! cluster; with neither, an in-process krust-apiserver is started and seeded.

use std::future::Future;

use krust::Config;
use krust_apiserver::ApiServer;

/// The configuration to use, and the embedded server when one was started (keep it alive).
pub async fn connect<F, Fut>(seed: F) -> anyhow::Result<(Config, Option<ApiServer>)>
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--kubeconfig") {
        let path = args.get(i + 1).ok_or_else(|| anyhow::anyhow!("--kubeconfig needs a path"))?;
        return Ok((Config::from_kubeconfig(path)?, None));
    }
    if std::env::var_os("KUBECONFIG").is_some_and(|k| !k.is_empty()) {
        return Ok((Config::infer().await?, None));
    }
    println!("No --kubeconfig and no KUBECONFIG: starting an embedded krust-apiserver.");
    let server = ApiServer::builder().start().await?;
    let config = server.kubeconfig().config;
    seed(config.clone()).await?;
    Ok((config, Some(server)))
}
