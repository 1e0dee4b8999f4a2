//! Suite `reconcile`: how soon a change on the server reaches a reconcile. A writer patches
//! random ConfigMaps of 10,000 at 1,000 changes/s, stamping each with the wall-clock time of
//! the write (`bench/ts`, nanoseconds); a controller with 4 workers reads the object from its
//! cache when the reconcile starts and records now minus the stamp. krust's `Controller` and
//! kube-rs 5's `Controller` run the same workload on the same krust-apiserver, each in its own
//! process, interleaved; p50/p99 are medians over the runs.
//!
//! The latency includes the PATCH itself (the stamp is taken before it is sent), the watch,
//! the informer or reflector, the queue and the worker pick-up; the writer, the server and the
//! controller share the machine's 2 cores.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use parking_lot::Mutex;
use serde_json::json;

use crate::{
    apiserver::{http_client, request},
    stats::{ServerProcess, field, median, option, percentile},
};

const STAMP: &str = "bench/ts";

fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

fn latency_ms(cm: &ConfigMap) -> Option<f64> {
    let stamp: u128 = cm.metadata.annotations.as_ref()?.get(STAMP)?.parse().ok()?;
    Some(now_nanos().saturating_sub(stamp) as f64 / 1e6)
}

async fn load(url: &str, objects: usize) -> anyhow::Result<()> {
    let client = http_client();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, next, url) = (client.clone(), next.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= objects {
                    return Ok::<_, anyhow::Error>(());
                }
                let body = json!({"metadata": {"name": format!("cm-{i}")}, "data": {"v": "0"}});
                let (status, text) = request(
                    &client,
                    "POST",
                    &format!("{url}/api/v1/namespaces/default/configmaps"),
                    Some(serde_json::to_vec(&body)?),
                    "application/json",
                )
                .await?;
                anyhow::ensure!(status == 201, "create cm-{i}: {status} {}", String::from_utf8_lossy(&text));
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Writes `rate` stamped changes a second for `seconds`; returns how many were written.
async fn write(url: &str, objects: usize, rate: u64, seconds: u64) -> anyhow::Result<u64> {
    let client = http_client();
    let start = tokio::time::Instant::now();
    let total = rate * seconds;
    let mut tasks = Vec::with_capacity(total as usize);
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..total {
        tokio::time::sleep_until(start + Duration::from_micros(i * 1_000_000 / rate)).await;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let target = (seed % objects as u64) as usize;
        let (client, url) = (client.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            let patch = json!({"metadata": {"annotations": {STAMP: now_nanos().to_string()}}});
            request(
                &client,
                "PATCH",
                &format!("{url}/api/v1/namespaces/default/configmaps/cm-{target}"),
                Some(serde_json::to_vec(&patch)?),
                "application/merge-patch+json",
            )
            .await
            .map(|(status, _)| status == 200)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await?? {
            ok += 1;
        }
    }
    Ok(ok)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let objects: usize = option(args, "--objects", 10_000)?;
    let rate: u64 = option(args, "--rate", 1000)?;
    let seconds: u64 = option(args, "--seconds", 5)?;
    let runs: usize = option(args, "--runs", 3)?;
    let exe = std::env::current_exe()?;
    let server = ServerProcess::start()?;
    let url = server.url.clone();
    let outcome = (|| -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        runtime.block_on(load(&url, objects))?;
        eprintln!("loaded {objects} ConfigMaps");
        let names = ["krust", "kube"];
        let mut results: [Vec<(f64, f64, f64, f64)>; 2] = Default::default();
        for run in 0..runs {
            for k in 0..2 {
                let which = (run + k) % 2;
                let mut child = Command::new(&exe)
                    .args(["reconcile-client", names[which], &url, &objects.to_string()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()?;
                let mut out =
                    BufReader::new(child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?);
                let mut line = String::new();
                out.read_line(&mut line)?;
                anyhow::ensure!(line.trim() == "ready", "{} client said {line:?}", names[which]);
                eprintln!("{} ready; writing", names[which]);
                let written = runtime.block_on(write(&url, objects, rate, seconds))?;
                eprintln!("{written} written");
                std::thread::sleep(Duration::from_secs(1));
                // End of input: the client prints its figures and exits.
                drop(child.stdin.take());
                let mut text = String::new();
                std::io::Read::read_to_string(&mut out, &mut text)?;
                anyhow::ensure!(child.wait()?.success(), "{} client failed", names[which]);
                results[which].push((
                    field(&text, "p50_ms")?,
                    field(&text, "p99_ms")?,
                    field(&text, "reconciles")?,
                    written as f64,
                ));
            }
        }
        let m = |i: usize, f: fn(&(f64, f64, f64, f64)) -> f64| {
            median(&results[i].iter().map(f).collect::<Vec<_>>())
        };
        println!(
            "reconcile: {objects} ConfigMaps, {rate} changes/s for {seconds} s, 4 workers, {runs} runs (medians)"
        );
        println!("                              krust      kube-rs");
        println!("write -> reconcile p50 (ms) {:>9.2} {:>12.2}", m(0, |r| r.0), m(1, |r| r.0));
        println!("write -> reconcile p99 (ms) {:>9.2} {:>12.2}", m(0, |r| r.1), m(1, |r| r.1));
        println!(
            "reconciles of stamped changes {:>7.0} {:>12.0}   (of {:.0} writes; repeats collapse)",
            m(0, |r| r.2),
            m(1, |r| r.2),
            m(0, |r| r.3)
        );
        println!();
        println!("result reconcile_p50_ms {:.3}", m(0, |r| r.0));
        println!("result reconcile_p50_ms_kube_rs {:.3}", m(1, |r| r.0));
        println!("result reconcile_p99_ms {:.3}", m(0, |r| r.1));
        println!("result reconcile_p99_ms_kube_rs {:.3}", m(1, |r| r.1));
        Ok(())
    })();
    drop(server);
    outcome
}

/// The child: one framework's controller; prints `ready`, records latencies until stdin ends.
pub fn client(args: &[String]) -> anyhow::Result<()> {
    let [framework, url, objects] = args else {
        anyhow::bail!("reconcile-client <krust|kube> <url> <objects>")
    };
    let objects: usize = objects.parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    runtime.block_on(async {
        let stop = tokio_util::sync::CancellationToken::new();
        let task = match framework.as_str() {
            "krust" => tokio::spawn(krust(url.clone(), latencies.clone(), stop.clone())),
            "kube" => tokio::spawn(kube(url.clone(), objects, latencies.clone(), stop.clone())),
            other => anyhow::bail!("unknown framework {other}"),
        };
        // Wait for end of input, then stop.
        let mut stdin = tokio::io::stdin();
        let mut sink = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut stdin, &mut sink).await?;
        stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        Ok::<_, anyhow::Error>(())
    })?;
    let mut sorted = latencies.lock().clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "p50_ms {:.3} p99_ms {:.3} max_ms {:.3} reconciles {}",
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.99),
        sorted.last().copied().unwrap_or(f64::NAN),
        sorted.len()
    );
    Ok(())
}

fn say_ready() {
    println!("ready");
    let _ = std::io::stdout().flush();
}

struct Recorder(Arc<Mutex<Vec<f64>>>);

#[async_trait::async_trait]
impl krust_runtime::controller::Reconciler for Recorder {
    type Error = std::convert::Infallible;
    async fn reconcile(
        &self,
        req: krust_runtime::controller::Request,
        ctx: &krust_runtime::controller::Context,
    ) -> Result<krust_runtime::controller::Action, Self::Error> {
        if let Ok(Some(cm)) = ctx.lister::<ConfigMap>().namespace(&req.namespace).get(&req.name)
            && let Some(ms) = latency_ms(&cm)
        {
            self.0.lock().push(ms);
        }
        Ok(krust_runtime::controller::Action::done())
    }
}

async fn krust(
    url: String,
    latencies: Arc<Mutex<Vec<f64>>>,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    use krust_runtime::{controller::Controller, manager::Manager};
    let config = krust_client::Config::new(url.parse()?);
    let manager = Manager::builder(config).without_metrics_server().build()?;
    Controller::for_::<ConfigMap>().concurrency(4).build(Recorder(latencies.clone())).register(&manager)?;
    let token = manager.shutdown_token();
    let running = tokio::spawn(manager.clone().run());
    while !manager.is_ready() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the initial list's reconciles finish.
    tokio::time::sleep(Duration::from_secs(1)).await;
    latencies.lock().clear();
    say_ready();
    stop.cancelled().await;
    token.cancel();
    let _ = running.await;
    Ok(())
}

async fn kube(
    url: String,
    objects: usize,
    latencies: Arc<Mutex<Vec<f64>>>,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    use kube::runtime::{Controller, controller::Action, watcher};
    let client = kube::Client::try_from(kube::Config::new(url.parse()?))?;
    let api: kube::Api<ConfigMap> = kube::Api::all(client);
    let controller = Controller::new(api, watcher::Config::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(4));
    let store = controller.store();
    let recorded = latencies.clone();
    let run = controller
        .graceful_shutdown_on(async move { stop.cancelled().await })
        .run(
            move |cm: Arc<ConfigMap>, _ctx: Arc<()>| {
                let recorded = recorded.clone();
                async move {
                    if let Some(ms) = latency_ms(&cm) {
                        recorded.lock().push(ms);
                    }
                    Ok::<_, std::convert::Infallible>(Action::await_change())
                }
            },
            |_, _, _| Action::await_change(),
            Arc::new(()),
        )
        .for_each(|r| {
            if let Err(e) = r {
                eprintln!("kube-rs controller: {e}");
            }
            futures_util::future::ready(())
        });
    let running = tokio::spawn(run);
    // (The controller's store never reports ready through `wait_until_ready` here; wait until
    // it holds every object instead.)
    while store.state().len() < objects {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    latencies.lock().clear();
    say_ready();
    let _ = running.await;
    Ok(())
}
