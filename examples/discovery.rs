//! The discovery client: print every API resource list the server serves, group version by
//! group version, as `kubectl api-resources` finds them.
//!
//! `cargo run -p krust-examples --example discovery [-- --kubeconfig PATH]`

#[path = "support.rs"]
mod support;

use krust::client::DiscoveryClient;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (config, server) = support::connect(|_| async { Ok(()) }).await?;
    let discovery = DiscoveryClient::new(&config)?;
    let version = discovery.server_version().await?;
    println!("Server version {}", version.git_version);
    let all = discovery.server_groups_and_resources().await?;
    for list in &all.resources {
        println!("{}:", list.group_version);
        for r in &list.resources {
            let scope = if r.namespaced { "namespaced" } else { "cluster" };
            println!("  {} ({}, {scope}) verbs: {}", r.name, r.kind, r.verbs.join(","));
        }
    }
    for (gv, error) in &all.failed {
        println!("{gv}: discovery failed: {error}");
    }
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}
