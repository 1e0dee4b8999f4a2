//! Suite `informers`: krust's informer against kube-rs 5's reflector on the same krust-apiserver,
//! each client in its own process (so RSS is its own), interleaved runs, medians.
//!
//! 1. Initial sync: time from start until the cache holds all N Pods (~3 KB each).
//! 2. RSS per cached Pod: the client's RSS growth over the sync, divided by N. For krust also
//!    after every object was read typed through the cache (listers decode lazily).
//! 3. Watch events applied to a cache: a watch from resourceVersion 0 (N ADDED events) decoded
//!    and applied to a fresh store: krust's `WatchStream<Cached<Pod>>` into its `Indexer`,
//!    kube-rs' `Api::watch` into its reflector `Writer`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube_core::WatchEvent;

use crate::{
    apiserver::{http_client, load_pods},
    stats::{ServerProcess, field, median, option, peak_rss_kib, rss_kib as rss_of, run_child},
};

fn rss_kib() -> u64 {
    rss_of(std::process::id())
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let pods: usize = option(args, "--pods", 100_000)?;
    let runs: usize = option(args, "--runs", 3)?;
    let server = ServerProcess::start()?;
    let url = server.url.clone();
    let outcome = (|| -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        runtime.block_on(load_pods(&http_client(), &url, pods))?;
        let names = ["krust", "kube"];
        let mut results: [Vec<(f64, f64, f64, f64)>; 2] = Default::default();
        for run in 0..runs {
            for k in 0..2 {
                let which = (run + k) % 2;
                let text = run_child(&["informers-client", names[which], &url, &pods.to_string()])?;
                let field = |key: &str| field(&text, key);
                results[which].push((
                    field("sync_seconds")?,
                    field("rss_per_object")?,
                    field("rss_per_object_typed")?,
                    field("watch_events_per_sec")?,
                ));
            }
        }
        let m = |i: usize, f: fn(&(f64, f64, f64, f64)) -> f64| {
            median(&results[i].iter().map(f).collect::<Vec<_>>())
        };
        let (ks, kr, kt, kw) = (m(0, |r| r.0), m(0, |r| r.1), m(0, |r| r.2), m(0, |r| r.3));
        let (bs, br, _, bw) = (m(1, |r| r.0), m(1, |r| r.1), m(1, |r| r.2), m(1, |r| r.3));
        println!(
            "informers: {pods} Pods on krust-apiserver, {runs} interleaved runs, medians, own process each\n"
        );
        println!("                                     krust      kube-rs 5   ratio");
        println!("initial sync (s)                {ks:>10.2} {bs:>12.2}   {:.2}x faster", bs / ks);
        println!("RSS per cached Pod (bytes)      {kr:>10.0} {br:>12.0}   {:.2}", kr / br);
        println!("  krust after every Pod was read typed: {kt:.0} bytes");
        println!("watch events applied (ev/s)     {kw:>10.0} {bw:>12.0}   {:.2}x", kw / bw);
        println!();
        println!("result sync_100k_krust_seconds {ks:.3}");
        println!("result sync_100k_kube_seconds {bs:.3}");
        println!("result rss_per_object_krust {kr:.0}");
        println!("result rss_per_object_krust_typed {kt:.0}");
        println!("result rss_per_object_kube {br:.0}");
        println!("result watch_events_krust_per_sec {kw:.0}");
        println!("result watch_events_kube_per_sec {bw:.0}");
        println!("result sync_100k_speedup {:.3}", bs / ks);
        println!("result watch_events_speedup {:.3}", kw / bw);
        println!("result rss_per_object_ratio {:.3}", kr / br);
        Ok(())
    })();
    drop(server);
    outcome
}

/// The child: one framework's informer and watch-into-store measurements.
pub fn client(args: &[String]) -> anyhow::Result<()> {
    let [framework, url, pods] = args else { anyhow::bail!("informers-client <krust|kube> <url> <pods>") };
    let n: usize = pods.parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (sync, rss, rss_typed, eps) = runtime.block_on(async {
        match framework.as_str() {
            "krust" => krust(url, n).await,
            "kube" => kube(url, n).await,
            other => anyhow::bail!("unknown framework {other}"),
        }
    })?;
    println!(
        "sync_seconds {sync:.4} rss_per_object {rss:.0} rss_per_object_typed {rss_typed:.0} watch_events_per_sec {eps:.0} peak_kib {}",
        peak_rss_kib()
    );
    Ok(())
}

async fn krust(url: &str, n: usize) -> anyhow::Result<(f64, f64, f64, f64)> {
    use krust_client::{ListOptions, ResourceClient, RestClient};
    use krust_runtime::cache::{Cached, Indexer, SharedIndexInformer};
    let config =
        krust_client::Config::new(url.parse()?).with_group_version(kube_core::GroupVersion::gv("", "v1"));
    let rest = RestClient::new(&config)?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = rss_kib();
    let start = Instant::now();
    let informer = SharedIndexInformer::<Pod>::new(
        ResourceClient::new(rest.clone(), "pods", None),
        ListOptions::default(),
    );
    tokio::spawn(informer.clone().run());
    anyhow::ensure!(informer.wait_for_cache_sync(Duration::from_secs(300)).await, "no sync");
    while informer.indexer().len() < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let sync = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss = (rss_kib().saturating_sub(before)) as f64 * 1024.0 / n as f64;
    for o in informer.indexer().list() {
        o.decode()?;
    }
    let rss_typed = (rss_kib().saturating_sub(before)) as f64 * 1024.0 / n as f64;
    informer.shutdown();
    // Watch events applied to a fresh store.
    let store: Arc<Indexer<Cached<Pod>>> = Arc::new(Indexer::new());
    let client: ResourceClient<Cached<Pod>> = ResourceClient::new(rest, "pods", None);
    let start = Instant::now();
    let mut watch =
        client.watch(&ListOptions { resource_version: Some("0".into()), ..Default::default() }).await?;
    let mut seen = 0;
    while seen < n {
        match watch.try_next().await? {
            Some(WatchEvent::Added(o)) | Some(WatchEvent::Modified(o)) => {
                store.upsert(Arc::new(o));
                seen += 1;
            }
            Some(_) => {}
            None => break,
        }
    }
    let eps = seen as f64 / start.elapsed().as_secs_f64();
    Ok((sync, rss, rss_typed, eps))
}

async fn kube(url: &str, n: usize) -> anyhow::Result<(f64, f64, f64, f64)> {
    use kube::runtime::{WatchStreamExt, reflector, watcher};
    let client = kube::Client::try_from(kube::Config::new(url.parse()?))?;
    let api: kube::Api<Pod> = kube::Api::all(client);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = rss_kib();
    let start = Instant::now();
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api.clone(), watcher::Config::default())).applied_objects();
    let task = tokio::spawn(stream.for_each(|_| futures_util::future::ready(())));
    reader.wait_until_ready().await?;
    while reader.state().len() < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let sync = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss = (rss_kib().saturating_sub(before)) as f64 * 1024.0 / n as f64;
    task.abort();
    // Watch events applied to a fresh store.
    let (_reader, mut writer) = reflector::store::<Pod>();
    let start = Instant::now();
    let mut watch = api.watch(&kube::api::WatchParams::default(), "0").await?.boxed();
    let mut seen = 0;
    while seen < n {
        match watch.try_next().await? {
            Some(WatchEvent::Added(o)) | Some(WatchEvent::Modified(o)) => {
                writer.apply_watcher_event(&watcher::Event::Apply(o));
                seen += 1;
            }
            Some(_) => {}
            None => break,
        }
    }
    let eps = seen as f64 / start.elapsed().as_secs_f64();
    Ok((sync, rss, rss, eps))
}
