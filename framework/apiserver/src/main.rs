//! The `krust-apiserver` binary: an in-memory Kubernetes API server for local development and
//! tests. Prints `krust-apiserver listening on <url>` when ready; SIGINT/SIGTERM stop it.
//!
//! Mirrors the `kube-apiserver` command (with envtest's local-cluster role).

use std::{io::Write, net::IpAddr, path::PathBuf};

use krust_apiserver::ApiServer;

const USAGE: &str = "usage: krust-apiserver [--bind ADDR] [--port N] [--kubeconfig-out FILE] [--tls] [--token T] [--watch-history N]
       [--watch-history-bytes N] [--max-connections N] [--faults-per-minute R] [--fault-seed N]
       [--service NAMESPACE/NAME=URL]...

  --bind ADDR           address to listen on (default 127.0.0.1)
  --port N              port (default 6443; 0 picks a free port)
  --kubeconfig-out FILE write a kubeconfig whose current context points at this server
  --tls                 serve HTTPS with a self-signed certificate (its CA goes into the kubeconfig)
  --token T             require this bearer token
  --watch-history N     events kept for watch resumes (default 10000)
  --watch-history-bytes N
                        bytes of objects kept for watch resumes (default 134217728); the oldest
                        go first and resumes from before them get 410
  --max-connections N   connections open at once (default 4096, at most half the fd limit);
                        idle and slow connections are closed after 32 s
  --faults-per-minute R inject a seeded random fault schedule: each kind (restart, watch cut,
                        compaction, 429/500/503 burst, latency spike, stalled watches, slow
                        reads) R times a minute on average (default 0: none)
  --fault-seed N        the schedule's seed (default 1): one seed, one schedule
  --service NAMESPACE/NAME=URL
                        where the Service NAMESPACE/NAME of a webhook's clientConfig is reached
                        (e.g. https://127.0.0.1:9443: there is no pod network); repeatable";

struct Args {
    bind: IpAddr,
    port: u16,
    kubeconfig_out: Option<PathBuf>,
    tls: bool,
    token: Option<String>,
    watch_history: usize,
    watch_history_bytes: usize,
    max_connections: usize,
    faults_per_minute: f64,
    fault_seed: u64,
    services: Vec<(String, String, String)>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        bind: IpAddr::from([127, 0, 0, 1]),
        port: 6443,
        kubeconfig_out: None,
        tls: false,
        token: None,
        watch_history: 10_000,
        watch_history_bytes: 128 << 20,
        max_connections: krust_apiserver::ConnectionLimits::default().max_connections,
        faults_per_minute: 0.0,
        fault_seed: 1,
        services: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value =
            |name: &str| inline.clone().or_else(|| it.next()).ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--bind" => args.bind = value("--bind")?.parse().map_err(|e| format!("--bind: {e}"))?,
            "--port" => args.port = value("--port")?.parse().map_err(|e| format!("--port: {e}"))?,
            "--kubeconfig-out" => args.kubeconfig_out = Some(PathBuf::from(value("--kubeconfig-out")?)),
            "--tls" => args.tls = true,
            "--token" => args.token = Some(value("--token")?),
            "--watch-history" => {
                args.watch_history =
                    value("--watch-history")?.parse().map_err(|e| format!("--watch-history: {e}"))?
            }
            "--watch-history-bytes" => {
                args.watch_history_bytes = value("--watch-history-bytes")?
                    .parse()
                    .map_err(|e| format!("--watch-history-bytes: {e}"))?
            }
            "--max-connections" => {
                args.max_connections =
                    value("--max-connections")?.parse().map_err(|e| format!("--max-connections: {e}"))?
            }
            "--faults-per-minute" => {
                args.faults_per_minute =
                    value("--faults-per-minute")?.parse().map_err(|e| format!("--faults-per-minute: {e}"))?
            }
            "--fault-seed" => {
                args.fault_seed = value("--fault-seed")?.parse().map_err(|e| format!("--fault-seed: {e}"))?
            }
            "--service" => {
                let spec = value("--service")?;
                let parsed = spec
                    .split_once('=')
                    .and_then(|(svc, url)| svc.split_once('/').map(|(ns, name)| (ns, name, url)))
                    .filter(|(ns, name, url)| !ns.is_empty() && !name.is_empty() && !url.is_empty());
                let Some((ns, name, url)) = parsed else {
                    return Err(format!("--service {spec:?}: expected NAMESPACE/NAME=URL"));
                };
                args.services.push((ns.to_string(), name.to_string(), url.to_string()));
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// Writes a file only its owner can read (it holds the token), replacing any earlier one.
fn write_private(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // An existing file keeps its mode when opened: make it private too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("krust-apiserver: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let mut builder = ApiServer::builder()
        .bind(args.bind)
        .port(args.port)
        .tls(args.tls)
        .watch_history(args.watch_history)
        .watch_history_bytes(args.watch_history_bytes)
        .connection_limits(krust_apiserver::ConnectionLimits {
            max_connections: args.max_connections,
            ..Default::default()
        });
    for (namespace, name, url) in &args.services {
        builder = builder.resolve_service(namespace, name, url);
    }
    if let Some(t) = &args.token {
        builder = builder.token(t.clone());
    }
    let server = match builder.start().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("krust-apiserver: {e}");
            std::process::exit(1);
        }
    };
    if let Some(path) = &args.kubeconfig_out
        && let Err(e) = write_private(path, server.kubeconfig().yaml.as_bytes())
    {
        eprintln!("krust-apiserver: cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
    let _faults = (args.faults_per_minute > 0.0).then(|| {
        server.run_faults(krust_apiserver::FaultSchedule::uniform(args.fault_seed, args.faults_per_minute))
    });
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "krust-apiserver listening on {}", server.url());
    let _ = stdout.flush();

    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("krust-apiserver: cannot handle SIGTERM: {e}");
            std::process::exit(1);
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    server.shutdown().await;
}
