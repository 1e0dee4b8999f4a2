//! Leader election with the manager: run it twice (or more) against one cluster and watch one
//! replica lead while the others wait, and another take over when the leader stops.
//!
//! ```sh
//! cargo run -p krust-apiserver -- --port 6443 --kubeconfig-out /tmp/krust.kubeconfig &
//! cargo run --example leader_election -- --kubeconfig /tmp/krust.kubeconfig --identity a &
//! cargo run --example leader_election -- --kubeconfig /tmp/krust.kubeconfig --identity b
//! ```
//!
//! Flags: `--identity ID` (default: host name and a random suffix), `--lease NAME` (default
//! `leader-election-example`), `--namespace NS` (default `default`), and the timing in seconds:
//! `--lease-duration 15 --renew-deadline 10 --retry-period 2` (client-go's defaults). Without
//! `--kubeconfig` it starts an embedded API server (one replica only: a demo of the output).
//!
//! Each replica prints `<identity> LEADING since=<unix ms>` when it starts leading and
//! `<identity> STOPPED at=<unix ms>` when its work stops; SIGINT/SIGTERM stops it and releases
//! the lease so another replica takes over at once.

use std::{
    io::Write,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use krust::{prelude::*, runtime::leader::LeaderElectionConfig};
use krust_apiserver::ApiServer;

fn unix_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

fn say(line: String) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let seconds = |name: &str, default: f64| -> anyhow::Result<Duration> {
        let value = flag(name).map(|v| v.parse::<f64>()).transpose()?.unwrap_or(default);
        Ok(Duration::from_secs_f64(value))
    };
    let mut _server = None;
    let config = match flag("--kubeconfig") {
        Some(path) => Config::from_kubeconfig(path)?,
        None => {
            let server = ApiServer::builder().start().await?;
            say(format!("no --kubeconfig: embedded krust-apiserver at {}", server.url()));
            let config = server.kubeconfig().config;
            _server = Some(server);
            config
        }
    };
    let election = LeaderElectionConfig {
        lease_duration: seconds("--lease-duration", 15.0)?,
        renew_deadline: seconds("--renew-deadline", 10.0)?,
        retry_period: seconds("--retry-period", 2.0)?,
        release_on_cancel: true,
    };
    let lease = flag("--lease").unwrap_or_else(|| "leader-election-example".into());
    let namespace = flag("--namespace").unwrap_or_else(|| "default".into());
    let mut builder = Manager::builder(config)
        .without_metrics_server()
        .leader_election(lease.clone(), namespace.clone())
        .leader_election_config(election)
        .graceful_shutdown_timeout(Duration::from_secs(5));
    if let Some(id) = flag("--identity") {
        builder = builder.identity(id);
    }
    let manager = builder.build()?;
    let identity = manager.identity().to_string();
    say(format!("{identity} candidate for lease {namespace}/{lease}"));
    let id = identity.clone();
    manager.add_runnable("work", move |stop| {
        let id = id.clone();
        async move {
            say(format!("{id} LEADING since={}", unix_ms()));
            stop.cancelled().await;
            say(format!("{id} STOPPED at={}", unix_ms()));
            Ok(())
        }
    });
    let result = manager.run_until_signal().await;
    say(format!(
        "{identity} exiting: {}",
        match &result {
            Ok(()) => "shut down".to_string(),
            Err(e) => e.to_string(),
        }
    ));
    result?;
    Ok(())
}
