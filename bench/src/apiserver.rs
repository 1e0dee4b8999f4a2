//! Suite `apiserver`: how fast krust-apiserver serves, so that it is never the bottleneck of a
//! client benchmark. The server runs in its own process (its RSS is its own); the clients here
//! count bytes and events without decoding them, to measure the server and not a JSON decoder.
//!
//! 1. Load N Pods (~3 KB of JSON each) and report the server's RSS growth per stored JSON byte.
//! 2. List them all in pages of 500.
//! 3. Watch them all from resourceVersion 0 (N synthetic ADDED events) on one connection.
//! 4. 1,000 concurrent watches while a writer updates at 1,000 writes/s: every watcher must get
//!    every event, and the writer must keep its pace.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::{Value, json};

use crate::{
    fixtures,
    stats::{ServerProcess, median, option, rss_kib},
};

pub type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(2048).build_http()
}

pub(crate) async fn request(
    client: &HttpClient,
    method: &str,
    url: &str,
    body: Option<Vec<u8>>,
    content_type: &str,
) -> anyhow::Result<(u16, Bytes)> {
    let req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
    let resp = client.request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Counts watch events (lines) of a watch until `expected` arrived; returns the elapsed time.
async fn count_events(
    client: &HttpClient,
    url: &str,
    expected: u64,
    counter: Option<&AtomicU64>,
) -> anyhow::Result<(u64, Duration)> {
    let start = Instant::now();
    let req = http::Request::builder().uri(url).body(Full::new(Bytes::new()))?;
    let resp = client.request(req).await?;
    anyhow::ensure!(resp.status().is_success(), "watch answered {}", resp.status());
    let mut body = resp.into_body();
    let mut seen = 0u64;
    while seen < expected {
        let Some(frame) = body.frame().await else { break };
        if let Ok(data) = frame?.into_data() {
            let n = memchr::memchr_iter(b'\n', &data).count() as u64;
            seen += n;
            if let Some(c) = counter {
                c.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
    Ok((seen, start.elapsed()))
}

/// Creates `pods` fixture Pods (no owners, namespace `default`) with 16 concurrent POSTs.
pub async fn load_pods(client: &HttpClient, url: &str, pods: usize) -> anyhow::Result<()> {
    let bodies: Vec<Vec<u8>> = (0..pods)
        .map(|i| {
            let mut pod = fixtures::pod(i, 0);
            let meta = pod["metadata"].as_object_mut().expect("metadata");
            // No owner (the garbage collector would delete pods of a missing ReplicaSet), no
            // resourceVersion (set by the server); all in one namespace.
            for k in ["ownerReferences", "resourceVersion", "uid", "managedFields"] {
                meta.remove(k);
            }
            meta.insert("namespace".into(), json!("default"));
            serde_json::to_vec(&pod).expect("a pod serializes")
        })
        .collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, bodies, next, url) = (client.clone(), bodies.clone(), next.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= bodies.len() {
                    return Ok::<_, anyhow::Error>(());
                }
                let (status, body) = request(
                    &client,
                    "POST",
                    &format!("{url}/api/v1/namespaces/default/pods"),
                    Some(bodies[i].clone()),
                    "application/json",
                )
                .await?;
                anyhow::ensure!(
                    status == 201,
                    "create answered {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// The child process: serve until killed.
pub fn serve(_args: &[String]) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let server = krust_apiserver::ApiServer::builder().watch_buffer(200_000).start().await?;
        println!("{}", server.url());
        std::future::pending::<()>().await;
        Ok::<_, anyhow::Error>(())
    })
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let pods: usize = option(args, "--pods", 100_000)?;
    let runs: usize = option(args, "--runs", 3)?;
    let watchers: usize = option(args, "--watchers", 1000)?;
    let writes: usize = option(args, "--writes", 3000)?;
    let server = ServerProcess::start()?;
    let url = server.url.clone();
    let pid = server.pid();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(measure(&url, pid, pods, runs, watchers, writes))
    }));
    drop(server);
    match result {
        Ok(r) => r,
        Err(_) => anyhow::bail!("the apiserver suite panicked"),
    }
}

async fn measure(
    url: &str,
    pid: u32,
    pods: usize,
    runs: usize,
    watchers: usize,
    writes: usize,
) -> anyhow::Result<()> {
    let client = http_client();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = rss_kib(pid);

    // 1. Load.
    let start = Instant::now();
    load_pods(&client, url, pods).await?;
    let load_secs = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = rss_kib(pid);

    // 2. Paginated list (the stored JSON size is measured here too).
    let mut list_times = Vec::new();
    let mut stored_json = 0usize;
    for _ in 0..runs {
        let start = Instant::now();
        let (mut items, mut bytes, mut token) = (0usize, 0usize, String::new());
        loop {
            let mut page_url = format!("{url}/api/v1/namespaces/default/pods?limit=500");
            if !token.is_empty() {
                page_url.push_str(&format!("&continue={token}"));
            }
            let (status, body) = request(&client, "GET", &page_url, None, "application/json").await?;
            anyhow::ensure!(status == 200, "list answered {status}");
            bytes += body.len();
            // Count and page without decoding the items: this measures the server.
            items += memchr::memmem::find_iter(&body, br#"{"apiVersion":"v1","kind":"Pod""#).count();
            let head = &body[..body.len().min(512)];
            match memchr::memmem::find(head, br#""continue":""#) {
                Some(at) => {
                    let rest = &head[at + 12..];
                    let end =
                        memchr::memchr(b'"', rest).ok_or_else(|| anyhow::anyhow!("a cut continue token"))?;
                    token = String::from_utf8_lossy(&rest[..end])
                        .replace('=', "%3D")
                        .replace('+', "%2B")
                        .replace('/', "%2F");
                }
                None => break,
            }
        }
        list_times.push(start.elapsed().as_secs_f64());
        anyhow::ensure!(items == pods, "listed {items} of {pods}");
        stored_json = bytes;
    }
    let list_secs = median(&list_times);

    // 3. One watch from 0: N synthetic ADDED events.
    let mut watch_times = Vec::new();
    for _ in 0..runs {
        let (seen, elapsed) = count_events(
            &client,
            &format!("{url}/api/v1/namespaces/default/pods?watch=true&resourceVersion=0"),
            pods as u64,
            None,
        )
        .await?;
        anyhow::ensure!(seen >= pods as u64, "the watch delivered {seen} of {pods}");
        watch_times.push(elapsed.as_secs_f64());
    }
    let watch_eps = pods as f64 / median(&watch_times);

    // 4. Many watches and a paced writer.
    let (_, cm) = request(
        &client,
        "POST",
        &format!("{url}/api/v1/namespaces/default/configmaps"),
        Some(json!({"metadata": {"name": "ticker"}, "data": {"n": "0"}}).to_string().into_bytes()),
        "application/json",
    )
    .await?;
    let rv: u64 = serde_json::from_slice::<Value>(&cm)?["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .parse()?;
    let delivered = Arc::new(AtomicU64::new(0));
    let mut watch_tasks = Vec::new();
    for _ in 0..watchers {
        let (client, delivered) = (client.clone(), delivered.clone());
        let watch_url = format!(
            "{url}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=120"
        );
        watch_tasks.push(tokio::spawn(async move {
            count_events(&client, &watch_url, writes as u64, Some(&delivered)).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // One write per millisecond, each in flight on its own (a slow answer does not slow the pace).
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    let mut writers = Vec::with_capacity(writes);
    for n in 1..=writes {
        ticker.tick().await;
        let (client, patch_url) =
            (client.clone(), format!("{url}/api/v1/namespaces/default/configmaps/ticker"));
        writers.push(tokio::spawn(async move {
            let t = Instant::now();
            let body = json!({"data": {"n": n.to_string()}}).to_string().into_bytes();
            let (status, _) =
                request(&client, "PATCH", &patch_url, Some(body), "application/merge-patch+json").await?;
            anyhow::ensure!(status == 200, "patch answered {status}");
            Ok::<_, anyhow::Error>(t.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut latencies = Vec::with_capacity(writes);
    for w in writers {
        latencies.push(w.await??);
    }
    let write_rate = writes as f64 / start.elapsed().as_secs_f64();
    let mut complete = 0usize;
    for t in watch_tasks {
        if let Ok(Ok(Ok((seen, _)))) = tokio::time::timeout(Duration::from_secs(60), t).await
            && seen >= writes as u64
        {
            complete += 1;
        }
    }
    let delivered_events = delivered.load(Ordering::Relaxed);
    latencies.sort_by(f64::total_cmp);
    let p99 = latencies.get(latencies.len() * 99 / 100).copied().unwrap_or(f64::NAN);

    let mb = stored_json as f64 / 1e6;
    let stored_ratio = (rss_after.saturating_sub(rss_before) as f64 * 1024.0) / stored_json as f64;
    println!(
        "apiserver: {pods} Pods of {:.0} bytes of JSON each, {runs} runs, medians\n",
        stored_json as f64 / pods as f64
    );
    println!("load (16 concurrent POSTs)          {:>10.0} creates/s", pods as f64 / load_secs);
    println!(
        "server RSS growth per JSON byte     {stored_ratio:>10.2}   ({:.0} MiB for {mb:.0} MB of JSON)",
        (rss_after - rss_before) as f64 / 1024.0
    );
    println!(
        "list, pages of 500                  {:>10.0} items/s {:>8.0} MB/s",
        pods as f64 / list_secs,
        mb / list_secs
    );
    println!(
        "watch from 0, one client            {watch_eps:>10.0} events/s {:>7.0} MB/s",
        mb / median(&watch_times)
    );
    println!(
        "{watchers} watches + writer             {write_rate:>10.0} writes/s, patch p99 {p99:.1} ms, {complete}/{watchers} watchers got all {writes} events ({delivered_events} delivered)"
    );
    println!();
    println!("result load_creates_per_sec {:.0}", pods as f64 / load_secs);
    println!("result list_items_per_sec {:.0}", pods as f64 / list_secs);
    println!("result concurrent_watch_writes_per_sec {write_rate:.0}");
    println!("result concurrent_watch_patch_p99_ms {p99:.2}");
    println!("result concurrent_watchers_complete {complete}");
    println!("result watch_events_per_sec {watch_eps:.0}");
    println!("result stored_bytes_per_json_byte {stored_ratio:.3}");
    Ok(())
}
