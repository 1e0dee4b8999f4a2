//! Suite `informers`: krust's informer against kube-rs 5's watcher + reflector, each client in
//! its own process (so RSS is its own), interleaved runs, medians.
//!
//! The main source is [`bytesource`]: pre-built bytes pushed as fast as the
//! client reads, so the client is what is measured. Each client process, unstripped and with
//! managedFields stripped (krust: `strip_managed_fields`; kube-rs: `.modify()` clearing them,
//! as its docs show), does what a controller's cache lives through:
//! 1. initial sync of N ~3.3 KB Pods (paged LIST, 500 a page), with one event handler;
//! 2. RSS per Pod with nothing read, then after every Pod was read typed once through the
//!    cache (krust: a lister's `get`, latency p50/p99 cold and warm; kube-rs: `Store::get`);
//! 3. N MODIFIED watch events into the cache (time until the handler saw them all, and the
//!    process's CPU time per event);
//! 4. a 410 Expired on the watch and the relist (1 in 100 changed, 1 in 200 deleted, N/200
//!    new): time until the cache equals the new list, peak RSS during it and RSS after, over
//!    the RSS before.
//!
//! Then the same sync against krust-apiserver, by paged LIST and by WatchList (the initial state
//! as N ADDED watch events), its own costs included. `informers 1m` runs krust alone on
//! 1,000,000 Pods (kube-rs would need ~18 GB): sync time and RSS, nothing read and after every
//! Pod was read typed.
//!
//! Result keys (medians; `pods` first): `sync_{krust,kube}_seconds`, `sync_speedup`,
//! `rss_per_object_{krust,kube}`, `rss_per_object_typed_{krust,kube}`, `rss_typed_ratio`,
//! `rss_per_object_stripped_{krust,kube}`, `rss_per_object_typed_stripped_{krust,kube}`,
//! `watch_events_{krust,kube}_per_sec`, `watch_events_speedup`,
//! `watch_events_cpu_us_{krust,kube}`, `watch_events_stripped_{krust,kube}_per_sec`,
//! `watch_events_stripped_fraction` (krust stripped over unstripped),
//! `sync_stripped_{krust,kube}_seconds`, `sync_stripped_over_unstripped`,
//! `relist_peak_rss_ratio_{krust,kube}`, `relist_after_rss_ratio_{krust,kube}`,
//! `relist_{krust,kube}_seconds`, `relist_backoff_krust_seconds`,
//! `relist_over_sync_plus_backoff`, `lister_get_{cold,warm}_{p50,p99}_us`,
//! `store_get_kube_{p50,p99}_us`, `apiserver_sync_{krust,kube}_seconds`,
//! `apiserver_watch_events_{krust,kube}_per_sec`; for `1m`: `sync_1m_krust_seconds`,
//! `rss_1m_krust_gib`, `rss_1m_typed_krust_gib`, `sync_1m_stripped_krust_seconds`,
//! `rss_1m_typed_stripped_krust_gib`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;

use crate::{
    apiserver::{http_client, load_pods},
    bytesource::{self, pod_key, relist_expectation},
    stats::{ServerProcess, cpu_seconds, field, median, option, percentile, rss_kib as rss_of, run_child},
};

fn rss_kib() -> u64 {
    rss_of(std::process::id())
}

/// What one client process measured.
#[derive(Default, Clone)]
struct Measured {
    sync: f64,
    rss: f64,
    rss_typed: f64,
    events_per_sec: f64,
    relist: f64,
    relist_backoff: f64,
    relist_peak_ratio: f64,
    relist_after_ratio: f64,
    get_cold_p50: f64,
    get_cold_p99: f64,
    get_warm_p50: f64,
    get_warm_p99: f64,
    sync_cpu_us: f64,
    events_cpu_us: f64,
}

const FIELDS: [&str; 14] = [
    "sync_seconds",
    "rss_per_object",
    "rss_per_object_typed",
    "watch_events_per_sec",
    "relist_seconds",
    "relist_backoff_seconds",
    "relist_peak_ratio",
    "relist_after_ratio",
    "get_cold_p50_us",
    "get_cold_p99_us",
    "get_warm_p50_us",
    "get_warm_p99_us",
    "sync_cpu_us_per_object",
    "events_cpu_us_per_event",
];

impl Measured {
    fn values(&self) -> [f64; 14] {
        [
            self.sync,
            self.rss,
            self.rss_typed,
            self.events_per_sec,
            self.relist,
            self.relist_backoff,
            self.relist_peak_ratio,
            self.relist_after_ratio,
            self.get_cold_p50,
            self.get_cold_p99,
            self.get_warm_p50,
            self.get_warm_p99,
            self.sync_cpu_us,
            self.events_cpu_us,
        ]
    }

    fn from_values(v: [f64; 14]) -> Measured {
        Measured {
            sync: v[0],
            rss: v[1],
            rss_typed: v[2],
            events_per_sec: v[3],
            relist: v[4],
            relist_backoff: v[5],
            relist_peak_ratio: v[6],
            relist_after_ratio: v[7],
            get_cold_p50: v[8],
            get_cold_p99: v[9],
            get_warm_p50: v[10],
            get_warm_p99: v[11],
            sync_cpu_us: v[12],
            events_cpu_us: v[13],
        }
    }

    fn parse(text: &str) -> anyhow::Result<Measured> {
        let mut v = [0.0; 14];
        for (slot, key) in v.iter_mut().zip(FIELDS) {
            *slot = field(text, key)?;
        }
        Ok(Self::from_values(v))
    }

    fn print(&self) {
        let words: Vec<String> =
            FIELDS.iter().zip(self.values()).map(|(k, v)| format!("{k} {v:.4}")).collect();
        println!("{}", words.join(" "));
    }

    fn median_of(all: &[Measured]) -> Measured {
        let mut v = [0.0; 14];
        for (i, slot) in v.iter_mut().enumerate() {
            *slot = median(&all.iter().map(|r| r.values()[i]).collect::<Vec<_>>());
        }
        Self::from_values(v)
    }
}

fn goal(met: bool) -> &'static str {
    if met { "met" } else { "NOT MET" }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    if args.first().map(String::as_str) == Some("1m") {
        return million(&args[1..]);
    }
    let pods: usize = option(args, "--pods", 100_000)?;
    let runs: usize = option(args, "--runs", 3)?;
    let source = ServerProcess::start_with(&["bytes-serve", "--pods", &pods.to_string()])?;
    let url = source.url.clone();
    let names = ["krust", "kube"];
    // [strip][framework] -> runs
    let mut results: [[Vec<Measured>; 2]; 2] = Default::default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    for run in 0..runs {
        for strip in [false, true] {
            for k in 0..2 {
                let which = (run + k) % 2;
                runtime.block_on(bytesource::control(&url, "reset"))?;
                let text = run_child(&[
                    "informers-client",
                    names[which],
                    &url,
                    &pods.to_string(),
                    if strip { "strip" } else { "keep" },
                ])?;
                results[strip as usize][which].push(Measured::parse(&text)?);
            }
        }
    }
    drop(source);
    let [[k, b], [ks, bs]] = results.map(|r| r.map(|runs| Measured::median_of(&runs)));

    // The same syncs against krust-apiserver.
    let (api_k, api_b) = against_apiserver(pods, runs)?;

    println!(
        "informers: {pods} Pods (~3.3 KB each), pre-built bytes pushed as fast as the client reads; \
         {runs} interleaved runs, medians; each client in its own process\n"
    );
    println!(
        "                                                   krust    kube-rs 5   krust vs kube-rs      goal"
    );
    let row = |label: &str, a: f64, b: f64, ratio: String, g: String| {
        println!("{label:<46} {a:>9.2} {b:>12.2}   {ratio:<21} {g}");
    };
    row(
        "initial sync (s)",
        k.sync,
        b.sync,
        format!("{:.2}x faster", b.sync / k.sync),
        format!("≥3x faster: {}", goal(b.sync / k.sync >= 3.0)),
    );
    row(
        "RSS per Pod, nothing read (KB)",
        k.rss / 1e3,
        b.rss / 1e3,
        format!("{:.2}", k.rss / b.rss),
        String::new(),
    );
    row(
        "RSS per Pod, every Pod read typed (KB)",
        k.rss_typed / 1e3,
        b.rss_typed / 1e3,
        format!("{:.2}", k.rss_typed / b.rss_typed),
        format!("≤6 KB and ≤1/3: {}", goal(k.rss_typed <= 6000.0 && k.rss_typed <= b.rss_typed / 3.0)),
    );
    row(
        "  same, managedFields stripped (KB)",
        ks.rss_typed / 1e3,
        bs.rss_typed / 1e3,
        format!("{:.2}", ks.rss_typed / bs.rss_typed),
        format!("≤4 KB: {}", goal(ks.rss_typed <= 4000.0)),
    );
    row(
        "watch events into the cache (k/s)",
        k.events_per_sec / 1e3,
        b.events_per_sec / 1e3,
        format!("{:.2}x", k.events_per_sec / b.events_per_sec),
        format!("≥150k/s: {}", goal(k.events_per_sec >= 150_000.0)),
    );
    row(
        "  CPU per event (µs, whole process)",
        k.events_cpu_us,
        b.events_cpu_us,
        format!("{:.2}x less", b.events_cpu_us / k.events_cpu_us),
        String::new(),
    );
    row(
        "watch events, stripping on (k/s)",
        ks.events_per_sec / 1e3,
        bs.events_per_sec / 1e3,
        format!("{:.2} of unstripped", ks.events_per_sec / k.events_per_sec),
        format!("≥95% of unstripped: {}", goal(ks.events_per_sec >= 0.95 * k.events_per_sec)),
    );
    row(
        "initial sync, stripping on (s)",
        ks.sync,
        bs.sync,
        format!("{:.2} of unstripped", ks.sync / k.sync),
        format!("no slower than unstripped: {}", goal(ks.sync <= k.sync)),
    );
    row(
        "peak RSS during a 410 relist / before",
        k.relist_peak_ratio,
        b.relist_peak_ratio,
        String::new(),
        format!("≤1.2x: {}", goal(k.relist_peak_ratio <= 1.2)),
    );
    row(
        "RSS 1 s after the relist / before",
        k.relist_after_ratio,
        b.relist_after_ratio,
        String::new(),
        String::new(),
    );
    let limit = k.sync + k.relist_backoff;
    row(
        "relist after a 410, incl. the backoff step (s)",
        k.relist,
        b.relist,
        format!("backoff {:.2} s", k.relist_backoff),
        format!("≤ sync + backoff = {limit:.2} s: {}", goal(k.relist <= limit)),
    );
    println!(
        "\nlister get of a 3.3 KB Pod (µs): cold p50 {:.1} p99 {:.1}, warm p50 {:.2} p99 {:.2}; \
         kube-rs Store::get p50 {:.2} p99 {:.2}",
        k.get_cold_p50, k.get_cold_p99, k.get_warm_p50, k.get_warm_p99, b.get_cold_p50, b.get_cold_p99
    );
    println!(
        "against krust-apiserver (its own costs included): paged-LIST sync krust {:.2} s, kube-rs {:.2} s; \
         WatchList sync (N ADDED events) krust {:.0}/s, kube-rs {:.0}/s",
        api_k.0, api_b.0, api_k.1, api_b.1
    );
    println!();
    let out = |key: &str, v: f64| println!("result {key} {v:.4}");
    out("pods", pods as f64);
    out("sync_krust_seconds", k.sync);
    out("sync_kube_seconds", b.sync);
    out("sync_speedup", b.sync / k.sync);
    out("rss_per_object_krust", k.rss);
    out("rss_per_object_kube", b.rss);
    out("rss_per_object_typed_krust", k.rss_typed);
    out("rss_per_object_typed_kube", b.rss_typed);
    out("rss_typed_ratio", k.rss_typed / b.rss_typed);
    out("rss_per_object_stripped_krust", ks.rss);
    out("rss_per_object_stripped_kube", bs.rss);
    out("rss_per_object_typed_stripped_krust", ks.rss_typed);
    out("rss_per_object_typed_stripped_kube", bs.rss_typed);
    out("watch_events_krust_per_sec", k.events_per_sec);
    out("watch_events_kube_per_sec", b.events_per_sec);
    out("watch_events_speedup", k.events_per_sec / b.events_per_sec);
    out("watch_events_cpu_us_krust", k.events_cpu_us);
    out("watch_events_cpu_us_kube", b.events_cpu_us);
    out("watch_events_stripped_krust_per_sec", ks.events_per_sec);
    out("watch_events_stripped_kube_per_sec", bs.events_per_sec);
    out("watch_events_stripped_fraction", ks.events_per_sec / k.events_per_sec);
    out("sync_stripped_krust_seconds", ks.sync);
    out("sync_stripped_kube_seconds", bs.sync);
    out("sync_stripped_over_unstripped", ks.sync / k.sync);
    out("relist_peak_rss_ratio_krust", k.relist_peak_ratio);
    out("relist_peak_rss_ratio_kube", b.relist_peak_ratio);
    out("relist_after_rss_ratio_krust", k.relist_after_ratio);
    out("relist_after_rss_ratio_kube", b.relist_after_ratio);
    out("relist_krust_seconds", k.relist);
    out("relist_kube_seconds", b.relist);
    out("relist_backoff_krust_seconds", k.relist_backoff);
    out("relist_over_sync_plus_backoff", k.relist / limit);
    out("lister_get_cold_p50_us", k.get_cold_p50);
    out("lister_get_cold_p99_us", k.get_cold_p99);
    out("lister_get_warm_p50_us", k.get_warm_p50);
    out("lister_get_warm_p99_us", k.get_warm_p99);
    out("store_get_kube_p50_us", b.get_cold_p50);
    out("store_get_kube_p99_us", b.get_cold_p99);
    out("apiserver_sync_krust_seconds", api_k.0);
    out("apiserver_sync_kube_seconds", api_b.0);
    out("apiserver_watch_events_krust_per_sec", api_k.1);
    out("apiserver_watch_events_kube_per_sec", api_b.1);
    Ok(())
}

/// Sync time with a paged LIST and with WatchList against krust-apiserver, medians per framework.
fn against_apiserver(pods: usize, runs: usize) -> anyhow::Result<((f64, f64), (f64, f64))> {
    let server = ServerProcess::start()?;
    let url = server.url.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(load_pods(&http_client(), &url, pods))?;
    let names = ["krust", "kube"];
    let mut results: [Vec<(f64, f64)>; 2] = Default::default();
    for run in 0..runs {
        for k in 0..2 {
            let which = (run + k) % 2;
            let text = run_child(&["informers-apiserver-client", names[which], &url, &pods.to_string()])?;
            results[which].push((field(&text, "sync_seconds")?, field(&text, "watch_events_per_sec")?));
        }
    }
    let m = |i: usize, f: fn(&(f64, f64)) -> f64| median(&results[i].iter().map(f).collect::<Vec<_>>());
    Ok(((m(0, |r| r.0), m(0, |r| r.1)), (m(1, |r| r.0), m(1, |r| r.1))))
}

/// `informers 1m [--pods N]`: krust alone on a million Pods, managedFields kept and stripped.
fn million(args: &[String]) -> anyhow::Result<()> {
    let pods: usize = option(args, "--pods", 1_000_000)?;
    let source = ServerProcess::start_with(&["bytes-serve", "--pods", &pods.to_string(), "--list-only"])?;
    let count = pods.to_string();
    let kept =
        Measured::parse(&run_child(&["informers-client", "krust", &source.url, &count, "sync-only"])?)?;
    let stripped =
        Measured::parse(&run_child(&["informers-client", "krust", &source.url, &count, "sync-only-strip"])?)?;
    drop(source);
    let gib = |per_object: f64| per_object * pods as f64 / (1u64 << 30) as f64;
    println!("informers 1m: {pods} Pods in one krust informer (kube-rs would need ~18 GB: not run)\n");
    println!("                                   managedFields kept   stripped");
    println!(
        "initial sync (s)                  {:>12.2} {:>14.2}   goal ≤15 s: {}",
        kept.sync,
        stripped.sync,
        goal(kept.sync <= 15.0)
    );
    println!("RSS growth, nothing read (GiB)    {:>12.2} {:>14.2}", gib(kept.rss), gib(stripped.rss));
    println!(
        "RSS growth, every Pod read (GiB)  {:>12.2} {:>14.2}   goal ≤6 GB: {}",
        gib(kept.rss_typed),
        gib(stripped.rss_typed),
        goal(kept.rss_typed * pods as f64 <= 6e9)
    );
    println!("CPU per object during the sync (µs) {:>10.1} {:>14.1}", kept.sync_cpu_us, stripped.sync_cpu_us);
    println!();
    println!("result sync_1m_krust_seconds {:.3}", kept.sync);
    println!("result rss_1m_krust_gib {:.3}", gib(kept.rss));
    println!("result rss_1m_typed_krust_gib {:.3}", gib(kept.rss_typed));
    println!("result sync_1m_stripped_krust_seconds {:.3}", stripped.sync);
    println!("result rss_1m_typed_stripped_krust_gib {:.3}", gib(stripped.rss_typed));
    Ok(())
}

/// The child: `informers-client <krust|kube> <url> <pods> <keep|strip|sync-only[-strip]|events-only>`
/// (`events-only`, krust: no reads and no relist, pauses around the events to profile them).
pub fn client(args: &[String]) -> anyhow::Result<()> {
    let [framework, url, pods, mode] = args else {
        anyhow::bail!("informers-client <krust|kube> <url> <pods> <keep|strip|sync-only|events-only>")
    };
    let n: usize = pods.parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let measured = runtime.block_on(async {
        match framework.as_str() {
            "krust" => krust(url, n, mode).await,
            "kube" => kube(url, n, mode).await,
            other => anyhow::bail!("unknown framework {other}"),
        }
    })?;
    measured.print();
    Ok(())
}

/// Samples this process's RSS every 5 ms until dropped; `peak()` is the highest seen.
struct PeakSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
}

impl PeakSampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_kib()));
        let (s, p) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        PeakSampler { stop, peak }
    }

    fn peak(&self) -> u64 {
        self.peak.fetch_max(rss_kib(), Ordering::Relaxed).max(rss_kib())
    }
}

impl Drop for PeakSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Polls `done` every 2 ms until it holds (or 300 s pass).
async fn until(mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !done() {
        anyhow::ensure!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

/// Counts what a handler is told.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

impl krust_runtime::cache::EventHandler<Pod> for Counter {
    fn on_add(&self, _obj: &Arc<krust_runtime::cache::Cached<Pod>>, _initial: bool) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn on_update(
        &self,
        _old: &Arc<krust_runtime::cache::Cached<Pod>>,
        _new: &Arc<krust_runtime::cache::Cached<Pod>>,
    ) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

async fn krust(url: &str, n: usize, mode: &str) -> anyhow::Result<Measured> {
    use krust_client::{ListOptions, ResourceClient, RestClient};
    use krust_runtime::cache::{InformerOptions, SharedIndexInformer};
    let config =
        krust_client::Config::new(url.parse()?).with_group_version(kube_core::GroupVersion::gv("", "v1"));
    let rest = RestClient::new(&config)?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = rss_kib();
    let cpu = cpu_seconds();
    let start = Instant::now();
    let informer = SharedIndexInformer::<Pod>::with_options(
        ResourceClient::new(rest, "pods", None),
        ListOptions::default(),
        InformerOptions { strip_managed_fields: mode.contains("strip"), ..Default::default() },
    );
    // A controller's handler: called inline, counts what it is told.
    let counter = Counter::default();
    informer.add_inline_handler(counter.clone());
    tokio::spawn(informer.clone().run());
    anyhow::ensure!(informer.wait_for_cache_sync(Duration::from_secs(300)).await, "no sync");
    let indexer = informer.indexer().clone();
    until(|| indexer.len() >= n).await?;
    let mut m = Measured { sync: start.elapsed().as_secs_f64(), ..Default::default() };
    m.sync_cpu_us = (cpu_seconds() - cpu) * 1e6 / n as f64;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let per_object = |kib: u64| (kib.saturating_sub(before)) as f64 * 1024.0 / n as f64;
    m.rss = per_object(rss_kib());

    // Every Pod read typed once through the lister (what reconcilers do), timed.
    let events_only = mode == "events-only";
    let lister = informer.lister();
    let mut cold = Vec::with_capacity(n);
    for i in (0..n).filter(|_| !events_only) {
        let (namespace, name) = pod_key(i);
        let t = Instant::now();
        let pod = lister.namespace(&namespace).get(&name)?;
        cold.push(t.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(pod.is_some(), "{namespace}/{name} is not cached");
    }
    let mut warm = Vec::new();
    for i in (0..n).step_by((n / 10_000).max(1)).filter(|_| !events_only) {
        let (namespace, name) = pod_key(i);
        let namespaced = lister.namespace(&namespace);
        let _first = namespaced.get(&name)?;
        let t = Instant::now();
        let again = namespaced.get(&name)?;
        warm.push(t.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(again.is_some());
    }
    (m.get_cold_p50, m.get_cold_p99) = percentiles(cold);
    (m.get_warm_p50, m.get_warm_p99) = percentiles(warm);
    tokio::time::sleep(Duration::from_millis(300)).await;
    m.rss_typed = per_object(rss_kib());
    if mode.starts_with("sync-only") {
        return Ok(m);
    }

    // N MODIFIED events into the cache.
    if events_only {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let seen = counter.0.load(Ordering::SeqCst);
    let cpu = cpu_seconds();
    let start = Instant::now();
    anyhow::ensure!(bytesource::control(url, "events").await? > 0, "no watch open");
    until(|| counter.0.load(Ordering::Relaxed) >= seen + n).await?;
    m.events_per_sec = n as f64 / start.elapsed().as_secs_f64();
    m.events_cpu_us = (cpu_seconds() - cpu) * 1e6 / n as f64;
    let (last_ns, last_name) = pod_key(n - 1);
    let last = indexer.get_by_name(&last_ns, &last_name).map(|o| o.resource_version().to_string());
    anyhow::ensure!(last == Some(bytesource::event_rv(n - 1).to_string()), "the last event is not cached");
    if events_only {
        // (Profilers attach for the events only; the process's teardown comes later.)
        tokio::time::sleep(Duration::from_secs(2)).await;
        return Ok(m);
    }

    // A 410 and the relist.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_kib();
    let sampler = PeakSampler::start();
    let expect = relist_expectation(n);
    let start = Instant::now();
    anyhow::ensure!(bytesource::control(url, "expire").await? > 0, "no watch open");
    until(|| {
        let (ns, name) = pod_key(0);
        let changed = indexer
            .get_by_name(&ns, &name)
            .is_some_and(|o| o.resource_version() == (expect.changed_rv)(0).to_string());
        let (ns, name) = pod_key(1);
        let deleted = indexer.get_by_name(&ns, &name).is_none();
        let (ns, name) = pod_key(n + expect.new - 1);
        let added = expect.new == 0 || indexer.get_by_name(&ns, &name).is_some();
        changed && deleted && added && indexer.len() == expect.total
    })
    .await?;
    m.relist = start.elapsed().as_secs_f64();
    m.relist_backoff = informer.reflector().last_backoff().unwrap_or_default().as_secs_f64();
    m.relist_peak_ratio = sampler.peak() as f64 / rss_before as f64;
    drop(sampler);
    tokio::time::sleep(Duration::from_secs(1)).await;
    m.relist_after_ratio = rss_kib() as f64 / rss_before as f64;
    informer.shutdown();
    Ok(m)
}

async fn kube(url: &str, n: usize, mode: &str) -> anyhow::Result<Measured> {
    use kube::{
        ResourceExt,
        runtime::{
            WatchStreamExt,
            reflector::{self, ObjectRef},
            watcher,
        },
    };
    let client = kube::Client::try_from(kube::Config::new(url.parse()?))?;
    let api: kube::Api<Pod> = kube::Api::all(client);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = rss_kib();
    let cpu = cpu_seconds();
    let start = Instant::now();
    let (reader, writer) = reflector::store();
    let counter = Arc::new(AtomicUsize::new(0));
    let count = counter.clone();
    let strip = mode == "strip";
    let events = watcher(api, watcher::Config::default())
        .modify(move |pod| {
            if strip {
                pod.managed_fields_mut().clear();
            }
        })
        .default_backoff();
    let stream = reflector::reflector(writer, events).applied_objects();
    let task = tokio::spawn(stream.for_each(move |_| {
        count.fetch_add(1, Ordering::Relaxed);
        futures_util::future::ready(())
    }));
    reader.wait_until_ready().await?;
    until(|| reader.state().len() >= n).await?;
    let mut m = Measured { sync: start.elapsed().as_secs_f64(), ..Default::default() };
    m.sync_cpu_us = (cpu_seconds() - cpu) * 1e6 / n as f64;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let per_object = |kib: u64| (kib.saturating_sub(before)) as f64 * 1024.0 / n as f64;
    m.rss = per_object(rss_kib());

    // Every Pod read typed once through the store (kube-rs keeps them typed).
    let mut gets = Vec::with_capacity(n);
    for i in 0..n {
        let (namespace, name) = pod_key(i);
        let reference = ObjectRef::new(&name).within(&namespace);
        let t = Instant::now();
        let pod = reader.get(&reference);
        gets.push(t.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(pod.is_some(), "{namespace}/{name} is not cached");
    }
    (m.get_cold_p50, m.get_cold_p99) = percentiles(gets);
    (m.get_warm_p50, m.get_warm_p99) = (m.get_cold_p50, m.get_cold_p99);
    tokio::time::sleep(Duration::from_millis(300)).await;
    m.rss_typed = per_object(rss_kib());
    if mode == "sync-only" {
        return Ok(m);
    }

    let seen = counter.load(Ordering::SeqCst);
    let cpu = cpu_seconds();
    let start = Instant::now();
    anyhow::ensure!(bytesource::control(url, "events").await? > 0, "no watch open");
    until(|| counter.load(Ordering::Relaxed) >= seen + n).await?;
    m.events_per_sec = n as f64 / start.elapsed().as_secs_f64();
    m.events_cpu_us = (cpu_seconds() - cpu) * 1e6 / n as f64;

    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_kib();
    let sampler = PeakSampler::start();
    let expect = relist_expectation(n);
    let start = Instant::now();
    anyhow::ensure!(bytesource::control(url, "expire").await? > 0, "no watch open");
    let get = |i: usize| {
        let (namespace, name) = pod_key(i);
        reader.get(&ObjectRef::new(&name).within(&namespace))
    };
    until(|| {
        let changed =
            get(0).is_some_and(|p| p.resource_version() == Some((expect.changed_rv)(0).to_string()));
        let deleted = get(1).is_none();
        let added = expect.new == 0 || get(n + expect.new - 1).is_some();
        changed && deleted && added && reader.state().len() == expect.total
    })
    .await?;
    m.relist = start.elapsed().as_secs_f64();
    m.relist_peak_ratio = sampler.peak() as f64 / rss_before as f64;
    drop(sampler);
    tokio::time::sleep(Duration::from_secs(1)).await;
    m.relist_after_ratio = rss_kib() as f64 / rss_before as f64;
    task.abort();
    Ok(m)
}

/// The krust-apiserver child: sync time with a paged LIST, then with WatchList (the initial
/// state streamed as N ADDED watch events: the watch path into the cache, server included).
pub fn apiserver_client(args: &[String]) -> anyhow::Result<()> {
    let [framework, url, pods] = args else {
        anyhow::bail!("informers-apiserver-client <krust|kube> <url> <pods>")
    };
    let n: usize = pods.parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (sync, streamed) = runtime.block_on(async {
        let list = match framework.as_str() {
            "krust" => apiserver_krust(url, n, false).await?,
            "kube" => apiserver_kube(url, n, false).await?,
            other => anyhow::bail!("unknown framework {other}"),
        };
        let stream = match framework.as_str() {
            "krust" => apiserver_krust(url, n, true).await?,
            _ => apiserver_kube(url, n, true).await?,
        };
        Ok((list, stream))
    })?;
    println!("sync_seconds {sync:.4} watch_events_per_sec {:.0}", n as f64 / streamed);
    Ok(())
}

/// Seconds until a fresh informer holds all `n` Pods.
async fn apiserver_krust(url: &str, n: usize, watch_list: bool) -> anyhow::Result<f64> {
    use krust_client::{ListOptions, ResourceClient, RestClient};
    use krust_runtime::cache::SharedIndexInformer;
    let config =
        krust_client::Config::new(url.parse()?).with_group_version(kube_core::GroupVersion::gv("", "v1"));
    let rest = RestClient::new(&config)?;
    let start = Instant::now();
    let informer = SharedIndexInformer::<Pod>::with_watch_list(
        ResourceClient::new(rest, "pods", None),
        ListOptions::default(),
        watch_list,
    );
    informer.add_inline_handler(Counter::default());
    tokio::spawn(informer.clone().run());
    anyhow::ensure!(informer.wait_for_cache_sync(Duration::from_secs(300)).await, "no sync");
    let indexer = informer.indexer().clone();
    until(|| indexer.len() >= n).await?;
    let elapsed = start.elapsed().as_secs_f64();
    informer.shutdown();
    Ok(elapsed)
}

async fn apiserver_kube(url: &str, n: usize, watch_list: bool) -> anyhow::Result<f64> {
    use kube::runtime::{WatchStreamExt, reflector, watcher};
    let client = kube::Client::try_from(kube::Config::new(url.parse()?))?;
    let api: kube::Api<Pod> = kube::Api::all(client);
    let start = Instant::now();
    let (reader, writer) = reflector::store();
    let config =
        if watch_list { watcher::Config::default().streaming_lists() } else { watcher::Config::default() };
    let stream = reflector::reflector(writer, watcher(api, config)).applied_objects();
    let task = tokio::spawn(stream.for_each(|_| futures_util::future::ready(())));
    reader.wait_until_ready().await?;
    until(|| reader.state().len() >= n).await?;
    let elapsed = start.elapsed().as_secs_f64();
    task.abort();
    Ok(elapsed)
}
