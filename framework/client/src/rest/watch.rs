//! Incremental decoding of a watch response: newline-delimited JSON `WatchEvent`s arriving in
//! chunks that do not respect event boundaries.
//!
//! Invariants:
//! - every complete line is decoded exactly once, in order; blank lines are skipped;
//! - an event that lies whole inside one chunk is decoded straight from that chunk (no copy);
//!   an event split across chunks is copied once, into one reused buffer, and decoded from there;
//! - a line that is not a valid event yields one `Err` item and decoding goes on with the next
//!   line; a transport error yields one `Err` item and ends the stream;
//! - at the end of the body, a last event without a trailing newline is still decoded; a torn
//!   one is reported as an error;
//! - one event may not exceed [`MAX_EVENT_BYTES`]; past that the stream ends with an error
//!   rather than buffering without bound.
//!
//! Mirrors client-go's `rest/watch` decoder and `watch.Interface`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let clientset = krust_client::Clientset::new(&server.kubeconfig().config)?;
//! use futures_util::StreamExt;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use krust_client::{CreateOptions, ListOptions};
//! use kube_core::WatchEvent;
//!
//! let config_maps = clientset.core_v1().config_maps("default");
//! let start = config_maps.list(&ListOptions::default()).await?.metadata.resource_version;
//! let mut events = config_maps.watch(&ListOptions { resource_version: start, ..Default::default() }).await?;
//!
//! let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": "watched"}}))?;
//! config_maps.create(&cm, &CreateOptions::default()).await?;
//! match events.next().await {
//!     Some(Ok(WatchEvent::Added(cm))) => assert_eq!(cm.metadata.name.as_deref(), Some("watched")),
//!     other => panic!("expected the ConfigMap's Added event, got {other:?}"),
//! }
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

use std::{
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;
use kube_core::WatchEvent;
use serde::de::DeserializeOwned;

use crate::error::{Error, excerpt};

/// The largest watch event accepted (64 MiB; etcd's default object limit is 1.5 MiB).
pub const MAX_EVENT_BYTES: usize = 64 * 1024 * 1024;

/// Splits a byte stream into lines, copying only the lines that straddle chunks.
#[derive(Default)]
pub(crate) struct LineFramer {
    /// The start of a line whose end has not arrived yet.
    partial: BytesMut,
    /// The unread rest of the current chunk.
    current: Bytes,
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

impl LineFramer {
    /// Hands the framer the next chunk; the previous one must have been consumed.
    pub(crate) fn push(&mut self, chunk: Bytes) {
        debug_assert!(self.current.is_empty(), "push before the previous chunk was consumed");
        self.current = chunk;
    }

    /// Calls `f` with the next complete, non-blank line (newline included), if one is ready.
    /// `Err` when the buffered start of a line exceeds [`MAX_EVENT_BYTES`].
    pub(crate) fn next_line<R>(&mut self, mut f: impl FnMut(&[u8]) -> R) -> Result<Option<R>, usize> {
        loop {
            if self.current.is_empty() {
                return Ok(None);
            }
            let Some(end) = memchr::memchr(b'\n', &self.current) else {
                self.partial.extend_from_slice(&self.current);
                self.current.clear();
                if self.partial.len() > MAX_EVENT_BYTES {
                    return Err(self.partial.len());
                }
                return Ok(None);
            };
            if self.partial.is_empty() {
                let line = &self.current[..=end];
                let result = (!is_blank(line)).then(|| f(line));
                self.current.advance(end + 1);
                if let Some(r) = result {
                    return Ok(Some(r));
                }
            } else {
                self.partial.extend_from_slice(&self.current[..=end]);
                self.current.advance(end + 1);
                let result = (!is_blank(&self.partial)).then(|| f(&self.partial));
                self.partial.clear();
                if let Some(r) = result {
                    return Ok(Some(r));
                }
            }
        }
    }

    /// At the end of the stream: the unterminated last line, if it holds anything.
    pub(crate) fn take_rest(&mut self) -> Option<Bytes> {
        let rest = std::mem::take(&mut self.partial).freeze();
        (!is_blank(&rest)).then_some(rest)
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// A stream of decoded [`WatchEvent`]s, from [`Request::watch`](crate::Request::watch) or
/// [`WatchStream::new`] over any byte stream.
pub struct WatchStream<T> {
    body: ByteStream,
    framer: LineFramer,
    source: String,
    done: bool,
    _type: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for WatchStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream").field("source", &self.source).field("done", &self.done).finish()
    }
}

impl<T: DeserializeOwned> WatchStream<T> {
    /// Decodes the watch events of a byte stream; `source` names it in errors (e.g. the URL).
    pub fn new<S>(body: S, source: impl Into<String>) -> Self
    where
        S: Stream<Item = Result<Bytes, Error>> + Send + 'static,
    {
        WatchStream {
            body: Box::pin(body),
            framer: LineFramer::default(),
            source: source.into(),
            done: false,
            _type: PhantomData,
        }
    }

    fn decode(source: &str, line: &[u8]) -> Result<WatchEvent<T>, Error> {
        super::from_json(line).map_err(|e| Error::Decode {
            what: format!("a watch event from {source}"),
            excerpt: excerpt(line),
            source: e,
        })
    }
}

/// A watch response's lines, undecoded, for decoders of their own (krust-runtime's informers
/// scan events straight into their cache's form). Framing follows [`WatchStream`]'s rules: a
/// line inside one chunk is handed over in place, a line split across chunks is copied once
/// into a reused buffer.
pub struct WatchLines {
    body: ByteStream,
    framer: LineFramer,
    source: String,
    done: bool,
}

impl std::fmt::Debug for WatchLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchLines").field("source", &self.source).field("done", &self.done).finish()
    }
}

impl WatchLines {
    /// The lines of a byte stream; `source` names it in errors (e.g. the URL).
    pub fn new<S>(body: S, source: impl Into<String>) -> Self
    where
        S: Stream<Item = Result<Bytes, Error>> + Send + 'static,
    {
        WatchLines { body: Box::pin(body), framer: LineFramer::default(), source: source.into(), done: false }
    }

    /// Where the lines come from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// [`next_with`](Self::next_with) for a line already received: `None` when the next line
    /// needs more of the body (nothing is awaited), so that a consumer can take every line of
    /// a chunk at once.
    pub fn next_buffered_with<R>(&mut self, mut f: impl FnMut(&[u8]) -> R) -> Option<Result<R, Error>> {
        match self.framer.next_line(|line| f(trim_newline(line))) {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => None,
            Err(size) => {
                self.done = true;
                self.framer = LineFramer::default();
                Some(Err(Error::InvalidRequest(format!(
                    "a watch event from {} exceeds {MAX_EVENT_BYTES} bytes ({size} bytes without a newline); \
                     the stream was closed",
                    self.source
                ))))
            }
        }
    }

    /// Calls `f` with the next non-blank line (without its newline) and returns what it
    /// returned; `None` at the end of the body. A transport error, or a line longer than
    /// [`MAX_EVENT_BYTES`], is returned once as `Err` and ends the lines.
    pub async fn next_with<R>(&mut self, mut f: impl FnMut(&[u8]) -> R) -> Option<Result<R, Error>> {
        use futures_util::StreamExt;
        loop {
            if let Some(r) = self.next_buffered_with(&mut f) {
                return Some(r);
            }
            if self.done {
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.framer.push(chunk),
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None => {
                    self.done = true;
                    let rest = self.framer.take_rest()?;
                    return Some(Ok(f(trim_newline(&rest))));
                }
            }
        }
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

impl<T: DeserializeOwned> Stream for WatchStream<T> {
    type Item = Result<WatchEvent<T>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let source = &this.source;
            match this.framer.next_line(|line| Self::decode(source, line)) {
                Ok(Some(item)) => return Poll::Ready(Some(item)),
                Ok(None) => {}
                Err(size) => {
                    this.done = true;
                    this.framer = LineFramer::default();
                    return Poll::Ready(Some(Err(Error::InvalidRequest(format!(
                        "a watch event from {} exceeds {MAX_EVENT_BYTES} bytes ({size} bytes without a newline); \
                         the stream was closed",
                        this.source
                    )))));
                }
            }
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(this.body.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => this.framer.push(chunk),
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    this.done = true;
                    if let Some(rest) = this.framer.take_rest() {
                        return Poll::Ready(Some(Self::decode(&this.source, &rest)));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{StreamExt, stream};

    fn event(name: &str) -> String {
        format!(
            r#"{{"type":"ADDED","object":{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}}}}}}"#
        )
    }

    fn names(events: Vec<Result<WatchEvent<serde_json::Value>, Error>>) -> Vec<String> {
        events
            .into_iter()
            .map(|e| match e {
                Ok(WatchEvent::Added(o)) => o["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                Ok(other) => format!("{other:?}"),
                Err(e) => format!("error: {e}"),
            })
            .collect()
    }

    async fn decode_chunks(chunks: Vec<Vec<u8>>) -> Vec<String> {
        let body = stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))));
        names(WatchStream::<serde_json::Value>::new(body, "test").collect().await)
    }

    #[tokio::test]
    async fn several_events_per_chunk() {
        let all = format!("{}\n{}\n{}\n", event("a"), event("b"), event("c"));
        assert_eq!(decode_chunks(vec![all.into_bytes()]).await, ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn events_split_across_chunks_at_every_offset() {
        let all = format!("{}\n{}\n", event("a"), event("b")).into_bytes();
        for cut in 1..all.len() {
            let got = decode_chunks(vec![all[..cut].to_vec(), all[cut..].to_vec()]).await;
            assert_eq!(got, ["a", "b"], "cut at {cut}");
        }
        // One byte per chunk.
        let got = decode_chunks(all.iter().map(|b| vec![*b]).collect()).await;
        assert_eq!(got, ["a", "b"]);
    }

    #[tokio::test]
    async fn malformed_line_is_an_error_item_and_decoding_goes_on() {
        let all = format!("{}\n{{not json\n\n{}\n", event("a"), event("b"));
        let got = decode_chunks(vec![all.into_bytes()]).await;
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], "a");
        assert!(got[1].starts_with("error: cannot decode a watch event from test"), "{}", got[1]);
        assert_eq!(got[2], "b");
    }

    #[tokio::test]
    async fn last_event_without_newline_is_decoded() {
        let all = format!("{}\n{}", event("a"), event("b"));
        assert_eq!(decode_chunks(vec![all.into_bytes()]).await, ["a", "b"]);
    }

    #[tokio::test]
    async fn torn_last_event_is_an_error() {
        let all = format!("{}\n{}", event("a"), &event("b")[..20]);
        let got = decode_chunks(vec![all.into_bytes()]).await;
        assert_eq!(got[0], "a");
        assert!(got[1].starts_with("error:"), "{}", got[1]);
    }

    #[tokio::test]
    async fn transport_error_ends_the_stream() {
        let chunks: Vec<Result<Bytes, Error>> = vec![
            Ok(Bytes::from(format!("{}\n", event("a")))),
            Err(Error::InvalidRequest("connection reset".into())),
            Ok(Bytes::from(format!("{}\n", event("b")))),
        ];
        let got = names(WatchStream::<serde_json::Value>::new(stream::iter(chunks), "t").collect().await);
        assert_eq!(got, ["a", "error: invalid request: connection reset"]);
    }

    #[tokio::test]
    async fn bookmark_and_error_events() {
        let all = concat!(
            r#"{"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"12","annotations":{"k8s.io/initial-events-end":"true"}}}}"#,
            "\n",
            r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"#,
            "\n"
        );
        let body = stream::iter([Ok(Bytes::from_static(all.as_bytes()))]);
        let events: Vec<_> = WatchStream::<serde_json::Value>::new(body, "t").collect().await;
        match &events[0] {
            Ok(WatchEvent::Bookmark(b)) => assert_eq!(b.metadata.resource_version, "12"),
            other => panic!("expected a bookmark, got {other:?}"),
        }
        match &events[1] {
            Ok(WatchEvent::Error(status)) => assert_eq!(status.code, 410),
            other => panic!("expected an error event, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn lines_are_handed_over_whole_across_chunks() {
        let all = format!("{}\n\n{}\r\n{}", event("a"), event("b"), event("c")).into_bytes();
        for cut in [1, 10, all.len() / 2, all.len() - 1] {
            let chunks = vec![Ok(Bytes::from(all[..cut].to_vec())), Ok(Bytes::from(all[cut..].to_vec()))];
            let mut lines = WatchLines::new(stream::iter(chunks), "t");
            let mut got = Vec::new();
            while let Some(line) = lines.next_with(|l| String::from_utf8(l.to_vec()).unwrap()).await {
                got.push(line.unwrap());
            }
            assert_eq!(got, [event("a"), event("b"), event("c")], "cut at {cut}");
        }
        let failing: Vec<Result<Bytes, Error>> = vec![Err(Error::InvalidRequest("reset".into()))];
        let mut lines = WatchLines::new(stream::iter(failing), "t");
        assert!(lines.next_with(|_| ()).await.unwrap().is_err());
        assert!(lines.next_with(|_| ()).await.is_none());
    }

    #[tokio::test]
    async fn oversized_event_ends_the_stream() {
        let big = vec![b'x'; MAX_EVENT_BYTES + 10];
        let got = decode_chunks(vec![big, b"\n".to_vec()]).await;
        assert_eq!(got.len(), 1);
        assert!(got[0].contains("exceeds"), "{}", got[0]);
    }
}
