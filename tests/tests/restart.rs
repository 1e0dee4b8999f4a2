//! The API server killed (SIGKILL) and replaced by one that lost every object, as after an
//! etcd restore: while it is away the manager keeps retrying with backoff (no hot loop: its CPU
//! is measured) and `/readyz` says which informers cannot list or watch; once a server is back
//! it recovers without a restart — the caches drop what no longer exists, and new primaries are
//! reconciled.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use krust_client::{Clientset, Config, CreateOptions, GetOptions, PatchOptions};
use krust_runtime::{
    controller::{Action, Context, Controller, Reconciler, Request, helpers},
    manager::Manager,
};
use krust_tests::{ApiServerProcess, http_status};
use serde_json::json;

/// For each Secret, a ConfigMap of the same name that it owns.
struct Mirror;

#[async_trait]
impl Reconciler for Mirror {
    type Error = krust_client::Error;
    async fn reconcile(&self, req: Request, ctx: &Context) -> Result<Action, Self::Error> {
        let Some(secret) = ctx.lister::<Secret>().namespace(&req.namespace).get(&req.name)? else {
            return Ok(Action::done());
        };
        let mut cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": req.name, "namespace": req.namespace},
            "data": {"mirrored": "yes"}
        }))
        .map_err(krust_client::Error::Serialize)?;
        helpers::set_controller_reference(secret.as_ref(), &mut cm.metadata)
            .map_err(|e| krust_client::Error::InvalidRequest(e.to_string()))?;
        ctx.clientset()
            .core_v1()
            .config_maps(&req.namespace)
            .apply(&cm, &PatchOptions::apply("mirror").force())
            .await?;
        Ok(Action::done())
    }
}

/// This process's CPU time (user + system), from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// `GET /readyz?verbose` on the probes server: the status code and the whole response.
fn readyz(port: u16) -> (Option<u16>, String) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (None, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(stream, "GET /readyz?verbose HTTP/1.1\r\nHost: probes\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let code = response.split(' ').nth(1).and_then(|c| c.parse().ok());
    (code, response)
}

async fn wait_for_config_map(clientset: &Clientset, name: &str) {
    let cms = clientset.core_v1().config_maps("default");
    for _ in 0..300 {
        if cms.get(name, &GetOptions::default()).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("ConfigMap {name} was never created");
}

fn secret(name: &str) -> Secret {
    serde_json::from_value(json!({"metadata": {"name": name}, "stringData": {"k": "v"}})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_rides_out_a_killed_api_server_and_recovers_on_a_new_one() {
    let first = ApiServerProcess::start(&[]);
    let port = first.url.rsplit(':').next().unwrap().to_string();
    let config = Config::from_kubeconfig(first.kubeconfig()).unwrap();
    let manager = Manager::builder(config.clone()).metrics_addr("127.0.0.1:0").build().unwrap();
    Controller::for_::<Secret>().owns::<ConfigMap>().build(Mirror).register(&manager).unwrap();
    let probes = manager.local_addr().unwrap().port();
    let stop = manager.shutdown_token();
    let running = tokio::spawn(manager.clone().run());

    let clientset = Clientset::new(&config).unwrap();
    clientset
        .core_v1()
        .secrets("default")
        .create(&secret("before"), &CreateOptions::default())
        .await
        .unwrap();
    wait_for_config_map(&clientset, "before").await;
    assert_eq!(readyz(probes).0, Some(200));

    // kill -9: everything the server held is gone with it.
    drop(first);
    let down = Instant::now();
    let mut reported = None;
    while down.elapsed() < Duration::from_secs(20) {
        let (code, body) = readyz(probes);
        if code == Some(503) && body.contains("list/watch failing") {
            reported = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reported = reported.expect("/readyz never said the informers cannot reach the API server");
    assert!(reported.contains("retrying with backoff"), "{reported}");
    assert_eq!(http_status(probes, "/healthz"), Some(200), "liveness stays: a restart would not help");
    // Still away, 30 s in all: the retries back off instead of spinning.
    let cpu_before = cpu_time();
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down.elapsed())).await;
    let cpu = cpu_time().saturating_sub(cpu_before);
    eprintln!(
        "CPU while the API server is down: {cpu:?} over the last part of a {:?} outage (process total so far {cpu_before:?})",
        down.elapsed()
    );
    assert!(cpu_before > Duration::ZERO, "the CPU clock is read");
    assert!(cpu < Duration::from_secs(3), "a hot loop while the server is down: {cpu:?} of CPU");
    assert_eq!(readyz(probes).0, Some(503), "still not ready while the server is away");
    assert_eq!(http_status(probes, "/healthz"), Some(200));

    // A new server on the same address, with nothing in it (an etcd restore to empty).
    let second = ApiServerProcess::start(&["--port", &port]);
    let recovered = Instant::now();
    let mut back = false;
    while recovered.elapsed() < Duration::from_secs(90) {
        if readyz(probes).0 == Some(200) {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(back, "/readyz never recovered: {:?}", readyz(probes));
    let clientset = Clientset::new(&Config::from_kubeconfig(second.kubeconfig()).unwrap()).unwrap();
    clientset.core_v1().secrets("default").create(&secret("after"), &CreateOptions::default()).await.unwrap();
    wait_for_config_map(&clientset, "after").await;
    let cached: Vec<String> = manager
        .factory()
        .informer::<Secret>()
        .indexer()
        .list()
        .iter()
        .filter(|s| s.namespace() == "default")
        .map(|s| s.name().to_string())
        .collect();
    assert_eq!(cached, ["after"], "the cache dropped what the new server does not have");
    eprintln!("recovered {:?} after the new server started", recovered.elapsed());

    stop.cancel();
    running.await.unwrap().unwrap();
}
