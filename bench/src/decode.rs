//! Suite `decode`: how fast watch events are decoded.
//!
//! 1. In memory: a byte stream of Pod watch events (~3 KB each), cut into 16 KiB chunks as a
//!    socket would deliver them, through krust's `WatchStream`, against the ceiling:
//!    `serde_json::from_slice::<WatchEvent<Pod>>` of each event on its own, already split.
//!    krust validates UTF-8 once per event and parses a `&str`, which is cheaper than
//!    `from_slice` (it validates string by string), so it can beat that ceiling; the suite also
//!    reports `from_utf8` + `from_str` per pre-split event, the framing-free cost of krust's own
//!    per-event work.
//! 2. Over loopback HTTP: the same stream served by a small chunked HTTP server, consumed by a
//!    krust `RestClient` watch and by a kube-rs 5 `Api::watch`, each in its own process (so peak
//!    RSS is the client's own), interleaved, several runs.

use std::{hint::black_box, time::Instant};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use http_body_util::StreamBody;
use hyper::body::Frame;
use k8s_openapi::api::core::v1::Pod;
use kube_core::WatchEvent;

use crate::{
    fixtures,
    stats::{field, median, option, peak_rss_kib, run_child},
};

const CHUNK: usize = 16 * 1024;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let events: usize = option(args, "--events", 100_000)?;
    let runs: usize = option(args, "--runs", 5)?;
    let data = Bytes::from(fixtures::watch_stream(events));
    let mb = data.len() as f64 / 1e6;
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    anyhow::ensure!(lines.len() == events, "fixture has {} lines, expected {events}", lines.len());
    let chunks: Vec<Bytes> =
        (0..data.len()).step_by(CHUNK).map(|i| data.slice(i..(i + CHUNK).min(data.len()))).collect();
    println!(
        "decode: {events} Pod watch events, {:.0} bytes each on average ({mb:.0} MB), {runs} runs, medians\n",
        data.len() as f64 / events as f64
    );

    // 1. In memory, interleaved.
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let (mut ceiling, mut str_ceiling, mut krust) = (Vec::new(), Vec::new(), Vec::new());
    let mut cached = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        for line in &lines {
            let event: WatchEvent<Pod> = serde_json::from_slice(line)?;
            black_box(event);
        }
        ceiling.push(start.elapsed().as_secs_f64());

        // The same per-event work krust does: validate UTF-8 once, then parse a &str.
        let start = Instant::now();
        for line in &lines {
            let event: WatchEvent<Pod> = serde_json::from_str(std::str::from_utf8(line)?)?;
            black_box(event);
        }
        str_ceiling.push(start.elapsed().as_secs_f64());

        let start = Instant::now();
        let decoded = runtime.block_on(async {
            let body = stream::iter(chunks.clone().into_iter().map(Ok));
            let mut watch = krust_client::WatchStream::<Pod>::new(body, "bench");
            let mut n = 0usize;
            while let Some(event) = watch.next().await {
                black_box(event?);
                n += 1;
            }
            Ok::<_, krust_client::Error>(n)
        })?;
        krust.push(start.elapsed().as_secs_f64());
        anyhow::ensure!(decoded == events, "krust decoded {decoded} of {events} events");

        // What the informer does: decode into the cache's form and store it.
        let start = Instant::now();
        let stored = runtime.block_on(decode_into_store(chunks.clone()))?;
        cached.push(start.elapsed().as_secs_f64());
        anyhow::ensure!(stored > 0, "nothing stored");
    }
    let ceiling_eps = events as f64 / median(&ceiling);
    let str_ceiling_eps = events as f64 / median(&str_ceiling);
    let krust_eps = events as f64 / median(&krust);
    let fraction = krust_eps / ceiling_eps;
    println!("in memory (16 KiB chunks)             events/s        MB/s");
    println!("serde_json::from_slice (ceiling)  {ceiling_eps:>12.0} {:>11.1}", mb / median(&ceiling));
    println!(
        "from_utf8 + from_str (per event)  {str_ceiling_eps:>12.0} {:>11.1}   krust's per-event work, no framing",
        mb / median(&str_ceiling)
    );
    println!(
        "krust WatchStream                 {krust_eps:>12.0} {:>11.1}   {fraction:.3} of the ceiling",
        mb / median(&krust)
    );

    // 2. Over loopback HTTP, each client in its own process.
    let server = serve(chunks)?;
    let url = format!("http://{server}");
    let mut results: [(Vec<f64>, Vec<f64>); 2] = Default::default();
    let names = ["krust", "kube"];
    for run in 0..runs {
        // Alternate who goes first.
        for k in 0..2 {
            let which = (run + k) % 2;
            let text = run_child(&["decode-client", names[which], &url, &events.to_string()])?;
            anyhow::ensure!(field(&text, "events")? as usize == events, "{} saw {text}", names[which]);
            results[which].0.push(field(&text, "seconds")?);
            results[which].1.push(field(&text, "rss_kib")?);
        }
    }
    let eps = |i: usize| events as f64 / median(&results[i].0);
    let rss = |i: usize| median(&results[i].1) / 1024.0;
    println!("\nwatch over loopback HTTP (own process each)  events/s        MB/s   peak RSS MiB");
    for (i, label) in ["krust RestClient::watch", "kube-rs 5 Api::watch"].iter().enumerate() {
        println!("{label:<28} {:>16.0} {:>11.1} {:>14.1}", eps(i), mb / median(&results[i].0), rss(i));
    }
    let speedup = eps(0) / eps(1);
    println!("krust / kube-rs events/s: {speedup:.2}x; peak RSS krust / kube-rs: {:.2}", rss(0) / rss(1));

    println!();
    let cached_eps = events as f64 / median(&cached);
    println!(
        "krust informer decoder + Indexer   {cached_eps:>9.0}   the informer's path (one scan, bytes cached)"
    );
    println!("result decode_cached_into_store_events_per_sec {cached_eps:.0}");
    println!("result decode_ceiling_events_per_sec {ceiling_eps:.0}");
    println!("result decode_str_ceiling_events_per_sec {str_ceiling_eps:.0}");
    println!("result decode_events_per_sec {krust_eps:.0}");
    println!("result decode_fraction_of_str_ceiling {:.3}", krust_eps / str_ceiling_eps);
    println!("result decode_mb_per_sec {:.1}", mb / median(&krust));
    println!("result watch_http_krust_events_per_sec {:.0}", eps(0));
    println!("result watch_http_kube_events_per_sec {:.0}", eps(1));
    println!("result watch_http_krust_over_kube {speedup:.3}");
    println!("result watch_http_krust_peak_rss_mib {:.1}", rss(0));
    println!("result watch_http_kube_peak_rss_mib {:.1}", rss(1));
    println!("result decode_fraction_of_ceiling {fraction:.3}");
    Ok(())
}

/// What the informer's reflector does with a watch stream: frame the lines, scan each event
/// into the cache's form (one pass), and store it. Returns how many objects were stored.
async fn decode_into_store(chunks: Vec<Bytes>) -> anyhow::Result<usize> {
    use krust_runtime::cache::{Cached, Indexer, scan::Decoder};
    let store: Indexer<Cached<Pod>> = Indexer::new();
    let body = stream::iter(chunks.into_iter().map(Ok));
    let mut lines = krust_client::WatchLines::new(body, "bench");
    let mut decoder = Decoder::default();
    while let Some(event) = lines.next_with(|line| decoder.watch_event::<Pod>(line)).await {
        if let WatchEvent::Added(o) | WatchEvent::Modified(o) = event?? {
            store.upsert(std::sync::Arc::new(o));
        }
    }
    Ok(store.len())
}

/// For profiling: only the informer's path (decode into `Cached<Pod>` and store), `--runs` times.
pub fn cached_only(args: &[String]) -> anyhow::Result<()> {
    let events: usize = option(args, "--events", 100_000)?;
    let runs: usize = option(args, "--runs", 5)?;
    let data = Bytes::from(fixtures::watch_stream(events));
    let chunks: Vec<Bytes> =
        (0..data.len()).step_by(CHUNK).map(|i| data.slice(i..(i + CHUNK).min(data.len()))).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    for _ in 0..runs {
        let start = Instant::now();
        let stored = runtime.block_on(decode_into_store(chunks.clone()))?;
        println!("{stored} stored, {:.0} events/s", events as f64 / start.elapsed().as_secs_f64());
    }
    Ok(())
}

/// For profiling: krust's list decoder (one scan per page) over `--pods N` Pods, `--runs` times.
pub fn scan_lists(args: &[String]) -> anyhow::Result<()> {
    use krust_runtime::cache::{Cached, scan::Decoder};
    let pods: usize = option(args, "--pods", 50_000)?;
    let runs: usize = option(args, "--runs", 5)?;
    let strip = args.iter().any(|a| a == "--strip");
    let mut pages = Vec::new();
    for chunk in (0..pods).collect::<Vec<_>>().chunks(500) {
        let mut page =
            br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":["#.to_vec();
        for (k, i) in chunk.iter().enumerate() {
            if k > 0 {
                page.push(b',');
            }
            fixtures::pod_json(*i, 1, None, &mut page);
        }
        page.extend_from_slice(b"]}");
        pages.push(page);
    }
    let mb = pages.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;
    let paths = if strip { vec![krust_runtime::cache::FieldPath::managed_fields()] } else { Vec::new() };
    for _ in 0..runs {
        let mut decoder = Decoder::dropping(&paths);
        let start = Instant::now();
        let mut n = 0;
        for page in &pages {
            let (_, items) = decoder.list_page::<Pod>(page)?;
            n += items.len();
            black_box(
                items.into_iter().map(std::sync::Arc::new).collect::<Vec<std::sync::Arc<Cached<Pod>>>>(),
            );
        }
        let secs = start.elapsed().as_secs_f64();
        println!("{n} objects, {:.0} objects/s, {:.0} MB/s", n as f64 / secs, mb / secs);
    }
    Ok(())
}

/// Serves the suite's stream of `--events N` events and prints its URL, until killed (to profile
/// one client alone, e.g. under valgrind).
pub fn serve_forever(args: &[String]) -> anyhow::Result<()> {
    let events: usize = option(args, "--events", 100_000)?;
    let data = Bytes::from(fixtures::watch_stream(events));
    let chunks = (0..data.len()).step_by(CHUNK).map(|i| data.slice(i..(i + CHUNK).min(data.len()))).collect();
    println!("http://{}", serve(chunks)?);
    loop {
        std::thread::park();
    }
}

/// Serves `chunks` as the chunked body of every GET, on a thread of its own.
fn serve(chunks: Vec<Bytes>) -> anyhow::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("server runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("server listener");
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let chunks = chunks.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| {
                        let body = StreamBody::new(stream::iter(
                            chunks.clone().into_iter().map(|c| Ok::<_, std::io::Error>(Frame::data(c))),
                        ));
                        async move {
                            http::Response::builder().header("content-type", "application/json").body(body)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
    });
    Ok(addr)
}

/// The child process: watch `url` with one framework until `events` events arrived.
pub fn client(args: &[String]) -> anyhow::Result<()> {
    let [framework, url, events] = args else { anyhow::bail!("decode-client <krust|kube> <url> <events>") };
    let expected: usize = events.parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (seen, elapsed) = runtime.block_on(async {
        let start = Instant::now();
        let mut seen = 0usize;
        match framework.as_str() {
            "krust" => {
                let config = krust_client::Config::new(url.parse()?)
                    .with_group_version(kube_core::GroupVersion::gv("", "v1"));
                let client = krust_client::RestClient::new(&config)?;
                let mut watch =
                    client.get().resource("pods").param("resourceVersion", "0").watch::<Pod>().await?;
                while let Some(event) = watch.try_next().await? {
                    black_box(event);
                    seen += 1;
                    if seen == expected {
                        break;
                    }
                }
            }
            "kube" => {
                let client = kube::Client::try_from(kube::Config::new(url.parse()?))?;
                let api: kube::Api<Pod> = kube::Api::all(client);
                let mut watch = api.watch(&kube::api::WatchParams::default(), "0").await?.boxed();
                while let Some(event) = watch.try_next().await? {
                    black_box(event);
                    seen += 1;
                    if seen == expected {
                        break;
                    }
                }
            }
            other => anyhow::bail!("unknown framework {other}"),
        }
        Ok::<_, anyhow::Error>((seen, start.elapsed()))
    })?;
    println!("events {seen} seconds {:.6} rss_kib {}", elapsed.as_secs_f64(), peak_rss_kib());
    Ok(())
}
