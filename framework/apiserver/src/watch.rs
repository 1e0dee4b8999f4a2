//! Serving a watch: newline-delimited JSON events in a chunked response, flushed per batch.
//!
//! - `resourceVersion` unset or `0`: synthetic ADDED events for the current state, then changes;
//!   `N`: every change after N; N older than the kept history: one ERROR event with a 410
//!   Expired Status (as kube-apiserver sends it), then the end of the stream.
//! - `sendInitialEvents=true` (with `resourceVersionMatch=NotOlderThan`): the initial ADDED events
//!   then a BOOKMARK annotated `k8s.io/initial-events-end: "true"`.
//! - `allowWatchBookmarks`: a BOOKMARK with the current revision every bookmark interval.
//! - Label and field selectors apply; an object that stops matching arrives as DELETED, one
//!   that starts matching as ADDED, as the watch cache does.
//! - `timeoutSeconds` ends the watch; without it the server picks 30-60 minutes.

use std::{sync::Arc, time::Duration};

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::json;
use tokio::sync::mpsc;

use crate::{
    handlers::{Ctx, present_value, selectors, too_large},
    http_util::Body,
    object::Stored,
    resources::ResourceDef,
    selector::{FieldSelector, LabelSelector},
    server::Server,
    status::{ApiError, ApiResult},
    store::{Event, EventType, WatchFrom, WatchRefused},
};

/// A batch flushed to the client is at most this large.
const MAX_BATCH: usize = 256 * 1024;

struct Filter {
    labels: LabelSelector,
    fields: FieldSelector,
    /// Send `PartialObjectMetadata` objects (the metadata client).
    metadata_only: bool,
    /// Send each object as a one-row Table (kubectl get -w) with these columns and this
    /// `includeObject`.
    table: Option<(Vec<crate::table::PrinterColumn>, String)>,
}

impl Filter {
    fn matches(&self, s: &Stored) -> bool {
        self.labels.matches(&s.summary.labels) && self.fields.matches(&s.summary)
    }
    fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }
}

fn frame(out: &mut BytesMut, kind: &str, object: &[u8]) {
    out.put_slice(b"{\"type\":\"");
    out.put_slice(kind.as_bytes());
    out.put_slice(b"\",\"object\":");
    out.put_slice(object);
    out.put_slice(b"}\n");
}

fn bookmark(res: &ResourceDef, rv: u64, initial_events_end: bool) -> Vec<u8> {
    let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
    if initial_events_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": meta}).to_string().into_bytes()
}

/// The previous object presented at the event's revision (for DELETED on a selector change).
fn at_revision(res: &ResourceDef, prev: &Stored, rv: u64) -> Bytes {
    let mut v = prev.value();
    crate::object::set_path(&mut v, &["metadata", "resourceVersion"], json!(rv.to_string()));
    if res.custom {
        v["apiVersion"] = json!(res.api_version());
    }
    Bytes::from(v.to_string())
}

/// Appends the frame(s) of one event as this watcher sees it.
fn render(out: &mut BytesMut, res: &ResourceDef, filter: &Filter, event: &Event) {
    let as_table = |object: Bytes, rv: u64| -> Bytes {
        let Some((columns, include)) = &filter.table else { return object };
        let value: serde_json::Value = serde_json::from_slice(&object).unwrap_or_default();
        let metadata = json!({"resourceVersion": rv.to_string()});
        Bytes::from(crate::table::table(columns, &[value], metadata, include).to_string())
    };
    let present_value = |res: &ResourceDef, s: &Stored| {
        if filter.metadata_only { crate::handlers::partial(s) } else { as_table(present_value(res, s), s.rv) }
    };
    if filter.is_empty() {
        frame(out, event.kind.as_str(), &present_value(res, &event.obj));
        return;
    }
    let now = filter.matches(&event.obj);
    let before = event.prev.as_ref().is_some_and(|p| filter.matches(p));
    match event.kind {
        EventType::Added if now => frame(out, "ADDED", &present_value(res, &event.obj)),
        EventType::Modified => match (before, now) {
            (true, true) => frame(out, "MODIFIED", &present_value(res, &event.obj)),
            (false, true) => frame(out, "ADDED", &present_value(res, &event.obj)),
            (true, false) => {
                if let Some(prev) = &event.prev {
                    frame(out, "DELETED", &as_table(at_revision(res, prev, event.rv), event.rv));
                }
            }
            (false, false) => {}
        },
        EventType::Deleted if now || before => frame(out, "DELETED", &present_value(res, &event.obj)),
        _ => {}
    }
}

fn expired_event(requested: u64, oldest: u64) -> Bytes {
    let status = ApiError::expired(format!("too old resource version: {requested} ({oldest})")).status();
    let mut out = BytesMut::new();
    frame(&mut out, "ERROR", status.to_string().as_bytes());
    out.freeze()
}

/// An event as the watched version presents it: custom resources stored in another version go
/// through the CRD's conversion webhook; `None` when that fails (the watch ends and the client
/// watches again, as after any broken watch).
async fn in_version(server: &Server, res: &ResourceDef, event: &Arc<Event>) -> Option<Arc<Event>> {
    if !res.custom
        || event.obj.summary.api_version == res.api_version()
        || res.conversion.as_ref().is_none_or(|c| c.webhook.is_none())
    {
        return Some(event.clone());
    }
    match crate::conversion::view_async(server, res, &event.obj).await {
        Ok(obj) => Some(Arc::new(Event {
            rv: event.rv,
            kind: event.kind,
            storage: event.storage.clone(),
            obj,
            prev: event.prev.clone(),
        })),
        Err(e) => {
            tracing::warn!(error = %e.message, "cannot convert a watched object; ending the watch");
            None
        }
    }
}

/// The body of a watch: its chunks; an `Err` ends it abruptly (the connection is dropped
/// without the final chunk, as a network failure would).
fn streaming_response(rx: mpsc::Receiver<Result<Bytes, ()>>) -> Response<Body> {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| {
            let frame = chunk.map(Frame::data).map_err(|()| std::io::Error::other("watch cut by a fault"));
            (frame, rx)
        })
    });
    let mut response = Response::new(StreamBody::new(stream).boxed());
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    *response.status_mut() = StatusCode::OK;
    response
}

pub(crate) fn serve(ctx: Ctx) -> ApiResult<Response<Body>> {
    let res = ctx.target.res.clone();
    let (labels, fields) = selectors(&ctx)?;
    let table = crate::table::columns_for(&res)
        .filter(|_| crate::table::wants_table(&ctx.accept))
        .map(|columns| (columns, ctx.query.get("includeObject").unwrap_or("").to_string()));
    let filter = Filter { labels, fields, metadata_only: crate::handlers::metadata_only(&ctx.accept), table };
    let bookmarks = ctx.query.flag("allowWatchBookmarks")?;
    let send_initial = ctx.query.flag("sendInitialEvents")?;
    let rv = ctx.query.get("resourceVersion").unwrap_or("").to_string();
    let rvm = ctx.query.get("resourceVersionMatch").unwrap_or("").to_string();
    if send_initial && rvm != "NotOlderThan" {
        return Err(ApiError::invalid(
            &res,
            "",
            &[(
                "resourceVersionMatch".into(),
                "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
            )],
        ));
    }
    let timeout = match ctx.query.get("timeoutSeconds") {
        Some(t) => Duration::from_secs(
            t.parse().map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {t:?}")))?,
        ),
        None => Duration::from_secs(1800 + (std::process::id() as u64 * 7919) % 1800),
    };
    let from = if send_initial || rv.is_empty() || rv == "0" {
        WatchFrom::Now
    } else {
        WatchFrom::After(
            rv.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version \"{rv}\"")))?,
        )
    };
    if let (WatchFrom::After(requested), Some(lag)) = (&from, ctx.server.faults.watch_lag()) {
        let current = ctx.server.store.revision().saturating_sub(lag);
        if *requested > current {
            return Err(too_large(*requested, current));
        }
    }
    let storage: Arc<str> = Arc::from(res.storage.as_str());
    let (tx, rx) = mpsc::channel::<Result<Bytes, ()>>(4);
    let (initial, start_rv, mut events) =
        match ctx.server.store.watch(&storage, ctx.target.namespace.as_deref(), from) {
            Ok(w) => w,
            Err(WatchRefused::Expired { requested, oldest }) => {
                // The real server answers 200 and sends one ERROR event.
                let _ = tx.try_send(Ok(expired_event(requested, oldest)));
                return Ok(streaming_response(rx));
            }
            Err(WatchRefused::TooLarge { requested, current }) => return Err(too_large(requested, current)),
        };
    let interval = ctx.server.bookmark_interval;
    let server = ctx.server.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut last_rv = start_rv;
        // Initial events, in batches.
        let mut out = BytesMut::new();
        for event in &initial {
            let Some(event) = in_version(&server, &res, event).await else { return };
            render(&mut out, &res, &filter, &event);
            last_rv = last_rv.max(event.rv);
            if out.len() >= MAX_BATCH && tx.send(Ok(out.split().freeze())).await.is_err() {
                return;
            }
        }
        if send_initial {
            frame(&mut out, "BOOKMARK", &bookmark(&res, start_rv, true));
        }
        if !out.is_empty() && tx.send(Ok(out.split().freeze())).await.is_err() {
            return;
        }
        drop(initial);
        let cuts_at_start = server.faults.mid_chunk_cuts();
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    // Like the watch cache, a bookmark carries the current revision, but only
                    // when no event of this watch is waiting (read the revision first: an event
                    // published after that has a higher revision).
                    let revision = server.store.revision();
                    if events.is_empty() {
                        last_rv = last_rv.max(revision);
                    }
                    frame(&mut out, "BOOKMARK", &bookmark(&res, last_rv, false));
                    if tx.send(Ok(out.split().freeze())).await.is_err() {
                        return;
                    }
                }
                event = events.recv() => {
                    let Some(event) = event else {
                        // Closed by the server (slow watcher, fault, shutdown): end the stream.
                        break;
                    };
                    // Fault: a held watch sends nothing until released.
                    server.faults.watches_released().await;
                    let Some(event) = in_version(&server, &res, &event).await else { break };
                    render(&mut out, &res, &filter, &event);
                    last_rv = event.rv;
                    // Take whatever else is ready, up to one batch.
                    while out.len() < MAX_BATCH {
                        match events.try_recv() {
                            Ok(e) => {
                                let Some(e) = in_version(&server, &res, &e).await else { break };
                                render(&mut out, &res, &filter, &e);
                                last_rv = e.rv;
                            }
                            Err(_) => break,
                        }
                    }
                    // Fault: the connection breaks in the middle of an event.
                    if server.faults.mid_chunk_cuts() != cuts_at_start && out.len() > 1 {
                        let half = out.split_to(out.len() / 2).freeze();
                        let _ = tx.send(Ok(half)).await;
                        let _ = tx.send(Err(())).await;
                        return;
                    }
                    if !out.is_empty() && tx.send(Ok(out.split().freeze())).await.is_err() {
                        return;
                    }
                }
            }
        }
        if bookmarks {
            frame(&mut out, "BOOKMARK", &bookmark(&res, last_rv, false));
            let _ = tx.send(Ok(out.split().freeze())).await;
        }
    });
    Ok(streaming_response(rx))
}
