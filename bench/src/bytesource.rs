//! A source of Pods that only pushes pre-built bytes, so that the client is what is measured:
//! list pages and watch streams are built once at start and written as fast as the client
//! reads them (krust-apiserver, by comparison, serializes and filters per request).
//!
//! It answers `GET /api/v1/pods` like kube-apiserver for these clients: pages of 500 items
//! with continue tokens (whatever `limit` and `resourceVersion` say), and watches that stay
//! open. Control endpoints drive the scenarios:
//! - `POST /control/events`: every open watch receives one MODIFIED event per Pod (each Pod's
//!   next version), then stays open;
//! - `POST /control/expire`: every open watch receives a 410 Expired ERROR event and ends, and
//!   lists serve the relist set from then on: the Pods as the events left them, except 1 in
//!   100 changed again, 1 in 200 deleted, and N/200 new ones ([`relist_expectation`]).
//!
//! Both answer with the number of watches they reached, once at least one is open (they wait
//! up to 30 s for one). `POST /control/reset` serves the initial set again and forgets the
//! watches (between two clients).

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::{fixtures::pod_json, stats::option};

/// Items per list page.
pub const PAGE: usize = 500;

/// The resourceVersion of the initial version of Pod `i`.
pub fn initial_rv(i: usize) -> u64 {
    1_000 + i as u64
}

/// The resourceVersion of Pod `i` after its MODIFIED event.
pub fn event_rv(i: usize) -> u64 {
    3_000_000 + i as u64
}

/// What the relist set holds, for a client to tell when its cache has caught up.
#[derive(Clone, Debug)]
pub struct RelistExpectation {
    /// Pod indices changed again (their resourceVersion and labels differ from the events').
    pub changed_rv: fn(usize) -> u64,
    /// Whether Pod `i` (< N) is deleted in the relist set.
    pub deleted: fn(usize) -> bool,
    /// Whether Pod `i` (< N) is changed in the relist set.
    pub changed: fn(usize) -> bool,
    /// How many new Pods (indices N..N+new) the relist adds.
    pub new: usize,
    /// How many Pods the relist set holds.
    pub total: usize,
}

fn changed(i: usize) -> bool {
    i.is_multiple_of(100)
}

fn deleted(i: usize) -> bool {
    i % 200 == 1
}

fn changed_rv(i: usize) -> u64 {
    4_000_000 + i as u64
}

/// The relist set of `pods` Pods.
pub fn relist_expectation(pods: usize) -> RelistExpectation {
    let new = pods / 200;
    let deleted_count = (0..pods).filter(|i| deleted(*i)).count();
    RelistExpectation { changed_rv, deleted, changed, new, total: pods - deleted_count + new }
}

/// The name and namespace of Pod `i` (as the fixtures write them).
pub fn pod_key(i: usize) -> (String, String) {
    (format!("team-{}", i % 20), format!("web-7c9f8d6b5-{i:06}"))
}

struct Data {
    initial: Vec<Bytes>,
    relist: Vec<Bytes>,
    events: Vec<Bytes>,
}

/// List pages of these (index, resourceVersion, extra label) Pods.
fn pages(pods: &[(usize, u64, Option<&'static str>)], list_rv: u64) -> Vec<Bytes> {
    let chunks: Vec<&[(usize, u64, Option<&'static str>)]> = pods.chunks(PAGE).collect();
    let total = chunks.len().max(1);
    let build = |p: usize, chunk: &[(usize, u64, Option<&'static str>)]| {
        let mut out = Vec::with_capacity(chunk.len() * 3400 + 256);
        out.extend_from_slice(br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":""#);
        out.extend_from_slice(list_rv.to_string().as_bytes());
        out.push(b'"');
        if p + 1 < total {
            let remaining = pods.len() - (p + 1) * PAGE;
            out.extend_from_slice(
                format!(r#","continue":"{}","remainingItemCount":{remaining}"#, p + 1).as_bytes(),
            );
        }
        out.extend_from_slice(br#"},"items":["#);
        for (k, (i, rv, label)) in chunk.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            pod_json(*i, *rv, *label, &mut out);
        }
        out.extend_from_slice(b"]}");
        Bytes::from(out)
    };
    if chunks.is_empty() {
        return vec![build(0, &[])];
    }
    parallel(chunks.len(), |p| build(p, chunks[p]))
}

/// `f(0..n)` on two threads, in order.
fn parallel<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let half = n / 2;
    std::thread::scope(|s| {
        let second = s.spawn(|| (half..n).map(&f).collect::<Vec<_>>());
        let mut first: Vec<T> = (0..half).map(&f).collect();
        first.extend(second.join().expect("a fixture thread panicked"));
        first
    })
}

fn build(pods: usize, list_only: bool) -> Data {
    let initial: Vec<_> = (0..pods).map(|i| (i, initial_rv(i), None)).collect();
    let initial = pages(&initial, 2_000_000);
    if list_only {
        return Data { initial, relist: Vec::new(), events: Vec::new() };
    }
    // The events: one MODIFIED per Pod, in 64 KiB chunks.
    let lines = parallel(pods, |i| {
        let mut line = Vec::with_capacity(3500);
        line.extend_from_slice(br#"{"type":"MODIFIED","object":"#);
        pod_json(i, event_rv(i), Some("e"), &mut line);
        line.extend_from_slice(b"}\n");
        line
    });
    let all: Vec<u8> = lines.concat();
    let all = Bytes::from(all);
    let events =
        (0..all.len()).step_by(64 * 1024).map(|s| all.slice(s..(s + 64 * 1024).min(all.len()))).collect();
    let expect = relist_expectation(pods);
    let mut relist: Vec<(usize, u64, Option<&'static str>)> = (0..pods)
        .filter(|i| !(expect.deleted)(*i))
        .map(
            |i| if (expect.changed)(i) { (i, changed_rv(i), Some("r")) } else { (i, event_rv(i), Some("e")) },
        )
        .collect();
    relist.extend((pods..pods + expect.new).map(|i| (i, 4_500_000 + i as u64, None)));
    let relist = pages(&relist, 5_000_000);
    Data { initial, relist, events }
}

enum Command {
    Events,
    Expire,
}

struct State {
    data: Data,
    relisted: AtomicBool,
    watchers: Mutex<Vec<mpsc::UnboundedSender<Command>>>,
}

type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

const EXPIRED: &[u8] = b"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old resource version: 2000000 (5000000)\",\"reason\":\"Expired\",\"code\":410}}\n";

fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v)
}

async fn handle(state: Arc<State>, request: http::Request<hyper::body::Incoming>) -> http::Response<Body> {
    let query = request.uri().query().unwrap_or("").to_string();
    match (request.method().as_str(), request.uri().path()) {
        ("GET", "/api/v1/pods") if matches!(query_value(&query, "watch"), Some("true" | "1")) => {
            let (commands, mut received) = mpsc::unbounded_channel();
            state.watchers.lock().push(commands);
            let (tx, rx) = mpsc::channel::<Bytes>(4);
            let state = state.clone();
            tokio::spawn(async move {
                while let Some(command) = received.recv().await {
                    match command {
                        Command::Events => {
                            for chunk in &state.data.events {
                                if tx.send(chunk.clone()).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Command::Expire => {
                            let _ = tx.send(Bytes::from_static(EXPIRED)).await;
                            return;
                        }
                    }
                }
            });
            let body = StreamBody::new(tokio_stream_from(rx).map(|b| Ok::<_, Infallible>(Frame::data(b))));
            json_response(BodyExt::boxed(body))
        }
        ("GET", "/api/v1/pods") => {
            let page: usize = query_value(&query, "continue").and_then(|c| c.parse().ok()).unwrap_or(0);
            let pages =
                if state.relisted.load(Ordering::SeqCst) { &state.data.relist } else { &state.data.initial };
            match pages.get(page) {
                Some(body) => json_response(full(body.clone())),
                None => http::Response::builder()
                    .status(410)
                    .body(full("expired continue token"))
                    .unwrap_or_default(),
            }
        }
        ("POST", "/control/reset") => {
            state.relisted.store(false, Ordering::SeqCst);
            state.watchers.lock().clear();
            http::Response::new(full("0"))
        }
        ("POST", "/control/events" | "/control/expire") => {
            let expire = request.uri().path() == "/control/expire";
            for _ in 0..3000 {
                if !state.watchers.lock().is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if expire {
                state.relisted.store(true, Ordering::SeqCst);
            }
            let mut watchers = state.watchers.lock();
            let mut reached = 0;
            for w in watchers.iter() {
                if w.send(if expire { Command::Expire } else { Command::Events }).is_ok() {
                    reached += 1;
                }
            }
            if expire {
                watchers.clear();
            } else {
                watchers.retain(|w| !w.is_closed());
            }
            http::Response::new(full(reached.to_string()))
        }
        _ => http::Response::builder().status(404).body(full("not found")).unwrap_or_default(),
    }
}

fn json_response(body: Body) -> http::Response<Body> {
    let mut response = http::Response::new(body);
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

fn tokio_stream_from(mut rx: mpsc::Receiver<Bytes>) -> impl futures_util::Stream<Item = Bytes> {
    stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// `krust-bench bytes-serve [--pods N] [--list-only]`: builds the data, prints its URL, serves
/// until killed.
pub fn serve(args: &[String]) -> anyhow::Result<()> {
    let pods: usize = option(args, "--pods", 100_000)?;
    let list_only = args.iter().any(|a| a == "--list-only");
    let data = build(pods, list_only);
    let state = Arc::new(State { data, relisted: AtomicBool::new(false), watchers: Mutex::new(Vec::new()) });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("http://{}", listener.local_addr()?);
        use std::io::Write;
        std::io::stdout().flush()?;
        loop {
            let (tcp, _) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(state, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    })
}

/// Sends a control request (`events` or `expire`); returns how many watches it reached.
pub async fn control(url: &str, what: &str) -> anyhow::Result<usize> {
    let client = crate::apiserver::http_client();
    let (status, body) =
        crate::apiserver::request(&client, "POST", &format!("{url}/control/{what}"), None, "text/plain")
            .await?;
    anyhow::ensure!(status == 200, "control {what} answered {status}");
    Ok(String::from_utf8_lossy(&body).trim().parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_hold_every_pod_once_with_continue_tokens() {
        let data = build(1_201, false);
        assert_eq!(data.initial.len(), 3);
        let mut seen = 0;
        for (p, page) in data.initial.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_slice(page).unwrap();
            seen += v["items"].as_array().unwrap().len();
            let next = v["metadata"]["continue"].as_str();
            assert_eq!(next.is_some(), p < 2);
        }
        assert_eq!(seen, 1_201);
        let relist: usize = data
            .relist
            .iter()
            .map(|p| {
                serde_json::from_slice::<serde_json::Value>(p).unwrap()["items"].as_array().unwrap().len()
            })
            .sum();
        assert_eq!(relist, relist_expectation(1_201).total);
        let events: Vec<u8> = data.events.concat();
        assert_eq!(events.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count(), 1_201);
    }
}
