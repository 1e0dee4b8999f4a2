//! The reflector (client-go's `cache.Reflector`, ListAndWatch): lists a resource page by page
//! into the DeltaFIFO (`replace`), then watches from the list's resourceVersion with bookmarks,
//! resuming from the last resourceVersion seen when a watch ends.
//!
//! - 410 Gone/Expired (at watch start, as an ERROR event, or on a later list page) and "too
//!   large resource version": relist from scratch; deletions missed meanwhile arrive as
//!   tombstones through `DeltaFifo::replace`.
//! - Other failures (429, connection refused, 5xx): back off and watch again without relisting.
//!   A relist waits out a backoff step as well, as client-go's `BackoffUntil` around
//!   `ListAndWatch` does.
//! - Backoff 800 ms -> 30 s, x2, jittered (client-go's values, with `backon`); the watch timeout
//!   is random in 5-10 minutes, so that many informers do not re-watch together.
//!
//! Decoding: list pages and watch events are scanned once each ([`super::scan`]) straight into
//! the cache's form, dropping the configured fields (managedFields) in the same pass. A list is
//! handed to the DeltaFIFO page by page while the next page is already being fetched, and it
//! waits for the informer to keep up, so a relist holds a few pages beside the cache, not a
//! second cache. An object whose key and resourceVersion are already cached is not kept twice:
//! the relist queues the cached object itself.
//!
//! A reflector is what an informer runs; its state shows in the informer's `synced` signal and,
//! when the API server is away, in the factory's list of failing informers (what `/readyz`
//! reports):
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let config = server.kubeconfig().config;
//! use std::time::Duration;
//!
//! use k8s_openapi::api::core::v1::Secret;
//! use krust_client::Clientset;
//! use krust_runtime::cache::SharedInformerFactory;
//!
//! let factory = SharedInformerFactory::new(Clientset::new(&config)?.rest());
//! let informer = factory.informer::<Secret>();
//! // The server answers 503 to the first lists: the reflector backs off and lists again.
//! server.fail_next_reads(2, 503, None);
//! factory.start();
//! assert!(informer.wait_for_cache_sync(Duration::from_secs(30)).await, "synced after the retries");
//! assert!(factory.failing(Duration::from_secs(5)).is_empty());
//! factory.shutdown();
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use backon::BackoffBuilder;
use futures_util::{FutureExt, StreamExt};
use krust_client::{
    Error, ListOptions, ResourceClient, WatchLines,
    pager::{self, PageMeta, PageStart},
};
use kube_core::WatchEvent;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio_util::{sync::CancellationToken, task::AbortOnDropHandle};

use super::{
    delta_fifo::{DeltaFifo, DeltaType},
    object::Cached,
    scan::{Decoder, DropTree, FieldPath, ScanError},
};

/// client-go's initial list page size.
pub const PAGE_SIZE: u32 = krust_client::pager::DEFAULT_PAGE_SIZE;

/// A hook called with every list or watch error (client-go's `WatchErrorHandler`).
pub type WatchErrorHandler = Arc<dyn Fn(&Error) + Send + Sync>;

/// A transform applied to every object before it is cached (client-go's `TransformFunc`).
pub type Transform<K> = Arc<dyn Fn(Cached<K>) -> Cached<K> + Send + Sync>;

/// The reflector of one resource.
pub struct Reflector<K> {
    client: ResourceClient<Cached<K>>,
    options: ListOptions,
    fifo: Arc<DeltaFifo<Cached<K>>>,
    last_rv: Mutex<String>,
    on_error: Option<WatchErrorHandler>,
    /// Use WatchList (`sendInitialEvents`) instead of LIST for the initial state.
    watch_list: bool,
    /// The server refused WatchList: LIST from now on.
    watch_list_refused: std::sync::atomic::AtomicBool,
    /// LIST requests for a first page (a relist, or a list restarted after an expired token).
    lists: std::sync::atomic::AtomicU64,
    /// Lists that completed.
    lists_completed: std::sync::atomic::AtomicU64,
    transform: Option<Transform<K>>,
    drops: Arc<DropTree>,
    /// The last backoff step waited out.
    last_backoff: Mutex<Option<Duration>>,
    /// Since when lists and watches have been failing, and the last error (`None`: healthy).
    failing: Mutex<Option<(Instant, String)>>,
}

/// How many keys may wait in the DeltaFIFO before the list waits for the informer (one page).
const LIST_QUEUED_KEYS: usize = PAGE_SIZE as usize;

/// How many keys may wait in the DeltaFIFO before a watch waits for the informer: a burst is
/// handed over in small steps, which keeps what is in flight in the CPU's caches (measured with
/// `krust-bench informers`: 128 is faster than 64, 500 or no limit).
const WATCH_QUEUED_KEYS: usize = 128;

fn decode_error(source: &str, bytes: &[u8], error: ScanError) -> Error {
    Error::Decode {
        what: format!("a watch event or list from {source}"),
        excerpt: krust_client::error::excerpt(bytes),
        source: error.into_json(),
    }
}

/// A list page being fetched: its metadata first, then its decoded items.
fn prepare<K>(transform: &Option<Transform<K>>, o: Cached<K>) -> Arc<Cached<K>> {
    Arc::new(match transform {
        Some(t) => t(o),
        None => o,
    })
}

/// The cached form of a listed object: the cached object itself when its key and
/// resourceVersion are already in the store (no second copy), else the new one.
fn listed<K: Send + Sync + 'static>(
    fifo: &DeltaFifo<Cached<K>>,
    transform: &Option<Transform<K>>,
    object: Cached<K>,
) -> Arc<Cached<K>> {
    let rv = object.resource_version();
    if !rv.is_empty()
        && let Some(known) = fifo.known_by_name(object.namespace(), object.name())
        && known.resource_version() == rv
    {
        return known;
    }
    prepare(transform, object)
}

enum WatchEnd {
    Stopped,
    Ended,
    Relist(Error),
    Backoff(Error),
}

fn backoff() -> impl Iterator<Item = Duration> {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(800))
        .with_max_delay(Duration::from_secs(30))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// client-go resets its backoff after this long without failures.
const HEALTHY_RESET: Duration = Duration::from_secs(120);

impl<K> Reflector<K>
where
    K: DeserializeOwned + Send + Sync + 'static,
{
    /// A reflector listing and watching with `client` (selectors in `options`) into `fifo`.
    pub fn new(
        client: ResourceClient<Cached<K>>,
        options: ListOptions,
        fifo: Arc<DeltaFifo<Cached<K>>>,
    ) -> Self {
        Reflector {
            client,
            options,
            fifo,
            last_rv: Mutex::new(String::new()),
            on_error: None,
            watch_list: false,
            watch_list_refused: std::sync::atomic::AtomicBool::new(false),
            lists: std::sync::atomic::AtomicU64::new(0),
            lists_completed: std::sync::atomic::AtomicU64::new(0),
            transform: None,
            drops: Arc::new(DropTree::default()),
            last_backoff: Mutex::new(None),
            failing: Mutex::new(None),
        }
    }

    /// Drops these fields of every object while decoding it (e.g.
    /// [`FieldPath::managed_fields`]).
    #[must_use]
    pub fn with_drop_fields(mut self, paths: &[FieldPath]) -> Self {
        self.drops = Arc::new(DropTree::new(paths));
        self
    }

    /// Sets a transform applied to every object before it reaches the cache.
    #[must_use]
    pub fn with_transform(mut self, transform: Option<Transform<K>>) -> Self {
        self.transform = transform;
        self
    }

    fn prepare(&self, o: Cached<K>) -> Arc<Cached<K>> {
        prepare(&self.transform, o)
    }

    /// The client this reflector lists and watches with.
    pub fn client(&self) -> &ResourceClient<Cached<K>> {
        &self.client
    }

    /// How many lists were started (initial, relists, restarts after an expired continue token).
    pub fn lists_started(&self) -> u64 {
        self.lists.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The last backoff step waited out after a failure (`None` before the first).
    pub fn last_backoff(&self) -> Option<Duration> {
        *self.last_backoff.lock()
    }

    /// How many lists completed (every page handed to the DeltaFIFO, deletions included).
    pub fn lists_completed(&self) -> u64 {
        self.lists_completed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Opts in to WatchList: the initial state comes as a watch (`sendInitialEvents=true`,
    /// ended by a bookmark annotated `k8s.io/initial-events-end`) instead of a paginated LIST,
    /// falling back to LIST when the server refuses it.
    #[must_use]
    pub fn with_watch_list(mut self, enabled: bool) -> Self {
        self.watch_list = enabled;
        self
    }

    /// Sets the error hook.
    #[must_use]
    pub fn with_error_handler(mut self, handler: WatchErrorHandler) -> Self {
        self.on_error = Some(handler);
        self
    }

    /// The last resourceVersion synced from the server.
    pub fn last_sync_resource_version(&self) -> String {
        self.last_rv.lock().clone()
    }

    /// How long lists and watches have been failing, and the last error; `None` while the
    /// last list or watch succeeded.
    pub fn failing(&self) -> Option<(Duration, String)> {
        self.failing.lock().as_ref().map(|(since, error)| (since.elapsed(), error.clone()))
    }

    fn healthy(&self) {
        *self.failing.lock() = None;
    }

    fn report(&self, e: &Error) {
        tracing::info!(error = %e, "reflector: list/watch failed");
        let mut failing = self.failing.lock();
        match &mut *failing {
            Some((_, last)) => *last = e.to_string(),
            None => *failing = Some((Instant::now(), e.to_string())),
        }
        drop(failing);
        if let Some(h) = &self.on_error {
            h(e);
        }
    }

    /// Lists and watches until `stop` is cancelled.
    pub async fn run(&self, stop: CancellationToken) {
        let mut decoder = Decoder::new(self.drops.clone());
        let mut need_list = true;
        let mut delays = backoff();
        let mut healthy_since = Instant::now();
        loop {
            if stop.is_cancelled() {
                return;
            }
            // WatchList: the initial state and the watch come in one stream.
            let mut stream = None;
            if need_list
                && self.watch_list
                && !self.watch_list_refused.load(std::sync::atomic::Ordering::Relaxed)
            {
                let synced = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = self.watch_list_sync(&mut decoder) => r,
                };
                match synced {
                    Ok(Some(s)) => {
                        self.healthy();
                        need_list = false;
                        stream = Some(s);
                    }
                    Ok(None) => {
                        tracing::info!("the server does not support WatchList; listing instead");
                        self.watch_list_refused.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => {
                        if !self.report_and_wait(&e, &mut delays, &stop).await {
                            return;
                        }
                        healthy_since = Instant::now();
                        continue;
                    }
                }
            }
            if need_list {
                let listed = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = self.list() => r,
                };
                match listed {
                    Ok(()) => {
                        self.healthy();
                        need_list = false;
                    }
                    Err(e) => {
                        if !self.report_and_wait(&e, &mut delays, &stop).await {
                            return;
                        }
                        healthy_since = Instant::now();
                        continue;
                    }
                }
            }
            if healthy_since.elapsed() > HEALTHY_RESET {
                delays = backoff();
            }
            let end = match stream {
                Some(s) => self.consume(s, &mut decoder, &stop).await,
                None => self.watch_once(&mut decoder, &stop).await,
            };
            match end {
                WatchEnd::Stopped => return,
                WatchEnd::Ended => {}
                WatchEnd::Relist(e) => {
                    // Like client-go (ListAndWatch returns, BackoffUntil waits), a relist waits
                    // out a backoff step too: a server refusing every watch is not hammered.
                    need_list = true;
                    if !self.report_and_wait(&e, &mut delays, &stop).await {
                        return;
                    }
                    healthy_since = Instant::now();
                }
                WatchEnd::Backoff(e) => {
                    if !self.report_and_wait(&e, &mut delays, &stop).await {
                        return;
                    }
                    healthy_since = Instant::now();
                }
            }
        }
    }

    /// Reports a failure and waits out the next backoff step; false when stopped meanwhile.
    async fn report_and_wait(
        &self,
        error: &Error,
        delays: &mut impl Iterator<Item = Duration>,
        stop: &CancellationToken,
    ) -> bool {
        self.report(error);
        self.sleep(delays, stop).await
    }

    async fn sleep(&self, delays: &mut impl Iterator<Item = Duration>, stop: &CancellationToken) -> bool {
        let wait = delays.next().unwrap_or(Duration::from_secs(30));
        *self.last_backoff.lock() = Some(wait);
        tokio::select! {
            _ = stop.cancelled() => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }

    /// Fetches and decodes one list page in a task of its own (the bytes are decoded on the
    /// thread that received them): its metadata (the continue token) is sent as soon as it is
    /// read, so that the pager asks for the next page while this one is decoded.
    fn fetch_page(&self, options: ListOptions) -> PageStart<Vec<Arc<Cached<K>>>> {
        let (meta_tx, meta) = tokio::sync::oneshot::channel();
        let client = self.client.clone();
        let drops = self.drops.clone();
        let fifo = self.fifo.clone();
        let transform = self.transform.clone();
        let items = tokio::spawn(async move {
            let source = format!("LIST {}", options.continue_token.as_deref().unwrap_or("(first page)"));
            let body = match client.list_raw(&options).await {
                Ok(body) => body,
                Err(e) => {
                    let _ = meta_tx.send(Err(e));
                    return Ok(Vec::new());
                }
            };
            let mut decoder = Decoder::new(drops);
            match decoder.list_meta(&body) {
                Ok(m) => {
                    let _ = meta_tx.send(Ok(m));
                }
                Err(e) => {
                    let _ = meta_tx.send(Err(decode_error(&source, &body, e)));
                    return Ok(Vec::new());
                }
            }
            let mut page = Vec::with_capacity(PAGE_SIZE as usize);
            decoder
                .list(&body, |scanned| page.push(listed(&fifo, &transform, Cached::from_scanned(scanned))))
                .map_err(|e| decode_error(&source, &body, e))?;
            Ok(page)
        });
        let items = AbortOnDropHandle::new(items);
        PageStart {
            meta: async move {
                match meta.await {
                    Ok(Ok(m)) => Ok(PageMeta {
                        continue_token: m.continue_token,
                        resource_version: m.resource_version,
                    }),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(Error::InvalidRequest("the list page request was dropped".into())),
                }
            }
            .boxed(),
            items: async move {
                match items.await {
                    Ok(page) => page,
                    Err(e) => Err(Error::InvalidRequest(format!("the list page request failed: {e}"))),
                }
            }
            .boxed(),
        }
    }

    /// A full, paginated list into the FIFO, page by page (krust-client's pager: the next page
    /// is fetched while this one is decoded). An expired continue token restarts it.
    async fn list(&self) -> Result<(), Error> {
        'restart: loop {
            self.lists.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut options = self.options.clone();
            options.limit = Some(PAGE_SIZE);
            options.resource_version = None;
            options.resource_version_match = None;
            let mut replace = self.fifo.begin_replace();
            let pages = pager::pages(options, |o| self.fetch_page(o));
            tokio::pin!(pages);
            let mut received = 0usize;
            while let Some(page) = pages.next().await {
                let page = match page {
                    Ok(page) => page,
                    // Only a later page has a continue token that can expire.
                    Err(e) if e.is_gone() && received > 0 => {
                        tracing::info!("reflector: the list's continue token expired; listing again");
                        continue 'restart;
                    }
                    Err(e) => return Err(e),
                };
                received += 1;
                replace.add_page(page.items);
                self.fifo.wait_for_room(LIST_QUEUED_KEYS).await;
                if page.last {
                    *self.last_rv.lock() = page.resource_version.unwrap_or_default();
                }
            }
            replace.finish();
            self.lists_completed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
    }

    fn set_last_rv(&self, rv: &str) {
        let mut last = self.last_rv.lock();
        last.clear();
        last.push_str(rv);
    }

    async fn watch_once(&self, decoder: &mut Decoder, stop: &CancellationToken) -> WatchEnd {
        let mut options = self.options.clone();
        options.resource_version = Some(self.last_rv.lock().clone());
        options.allow_watch_bookmarks = true;
        options.timeout_seconds = Some(300 + (crate::random::random_u64() % 300) as u32);
        let started = tokio::select! {
            _ = stop.cancelled() => return WatchEnd::Stopped,
            w = self.client.watch_lines(&options) => w,
        };
        let stream = match started {
            Ok(s) => {
                self.healthy();
                s
            }
            Err(e) if e.is_gone() || e.is_resource_version_too_large() => return WatchEnd::Relist(e),
            Err(e) => return WatchEnd::Backoff(e),
        };
        self.consume(stream, decoder, stop).await
    }

    /// The next watch event of `lines` already received (nothing is awaited).
    fn next_buffered_event(
        &self,
        lines: &mut WatchLines,
        decoder: &mut Decoder,
    ) -> Option<Result<WatchEvent<Cached<K>>, Error>> {
        let source = lines.source().to_string();
        let next = lines.next_buffered_with(|line| {
            decoder
                .event(line)
                .map(|e| e.map(Cached::from_scanned))
                .map_err(|e| decode_error(&source, line, e))
        })?;
        Some(next.and_then(|r| r))
    }

    /// The next watch event of `lines`, decoded into the cache's form.
    async fn next_event(
        &self,
        lines: &mut WatchLines,
        decoder: &mut Decoder,
    ) -> Option<Result<WatchEvent<Cached<K>>, Error>> {
        let source = lines.source().to_string();
        let next = lines
            .next_with(|line| {
                decoder
                    .event(line)
                    .map(|e| e.map(Cached::from_scanned))
                    .map_err(|e| decode_error(&source, line, e))
            })
            .await?;
        Some(next.and_then(|r| r))
    }

    /// WatchList: the initial state as ADDED events up to the `initial-events-end` bookmark, then
    /// `replace`; returns the stream to go on watching. `Ok(None)`: the server refused it.
    async fn watch_list_sync(&self, decoder: &mut Decoder) -> Result<Option<WatchLines>, Error> {
        let mut options = self.options.clone();
        options.resource_version = Some(String::new());
        options.resource_version_match = Some("NotOlderThan".into());
        options.send_initial_events = Some(true);
        options.allow_watch_bookmarks = true;
        options.timeout_seconds = Some(300 + (crate::random::random_u64() % 300) as u32);
        let mut stream = match self.client.watch_lines(&options).await {
            Ok(s) => s,
            Err(e) if e.api_error().is_some_and(|a| matches!(a.code.as_u16(), 400 | 403 | 422)) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let mut items = Vec::new();
        while let Some(event) = self.next_event(&mut stream, decoder).await {
            match event? {
                WatchEvent::Added(o) => items.push(self.prepare(o)),
                WatchEvent::Bookmark(b)
                    if b.metadata
                        .annotations
                        .get("k8s.io/initial-events-end")
                        .is_some_and(|v| v == "true") =>
                {
                    *self.last_rv.lock() = b.metadata.resource_version;
                    self.fifo.replace(items);
                    self.lists_completed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Ok(Some(stream));
                }
                WatchEvent::Bookmark(_) => {}
                WatchEvent::Modified(o) => items.push(self.prepare(o)),
                WatchEvent::Deleted(o) => {
                    items.retain(|i: &Arc<Cached<K>>| i.name() != o.name() || i.namespace() != o.namespace())
                }
                WatchEvent::Error(status) => {
                    return Err(Error::Api(Box::new(krust_client::ApiError::from_status(*status))));
                }
            }
        }
        Err(Error::InvalidRequest("the WatchList stream ended before its initial-events-end bookmark".into()))
    }

    /// Applies the events of a watch until it ends. The events already received are taken
    /// together and handed to the DeltaFIFO at once (one lock, one wake-up of the informer).
    async fn consume(
        &self,
        mut stream: WatchLines,
        decoder: &mut Decoder,
        stop: &CancellationToken,
    ) -> WatchEnd {
        const BATCH: usize = 256;
        let mut changes: Vec<(DeltaType, Arc<Cached<K>>)> = Vec::with_capacity(BATCH);
        loop {
            let mut next = tokio::select! {
                _ = stop.cancelled() => return WatchEnd::Stopped,
                n = self.next_event(&mut stream, decoder) => n,
            };
            let end = loop {
                let event = match next {
                    None => break Some(WatchEnd::Ended),
                    Some(Ok(e)) => Some(e),
                    Some(Err(e @ Error::Decode { .. })) => {
                        self.report(&e);
                        None
                    }
                    Some(Err(e)) => break Some(WatchEnd::Backoff(e)),
                };
                match event {
                    Some(WatchEvent::Added(o)) => {
                        self.set_last_rv(o.resource_version());
                        changes.push((DeltaType::Added, self.prepare(o)));
                    }
                    Some(WatchEvent::Modified(o)) => {
                        self.set_last_rv(o.resource_version());
                        changes.push((DeltaType::Updated, self.prepare(o)));
                    }
                    Some(WatchEvent::Deleted(o)) => {
                        self.set_last_rv(o.resource_version());
                        changes.push((DeltaType::Deleted, self.prepare(o)));
                    }
                    Some(WatchEvent::Bookmark(b)) => {
                        // A bookmark advances the resourceVersion without an event.
                        *self.last_rv.lock() = b.metadata.resource_version;
                    }
                    Some(WatchEvent::Error(status)) => {
                        let error = Error::Api(Box::new(krust_client::ApiError::from_status(*status)));
                        break Some(if error.is_gone() {
                            WatchEnd::Relist(error)
                        } else {
                            WatchEnd::Backoff(error)
                        });
                    }
                    None => {}
                }
                if changes.len() >= BATCH {
                    break None;
                }
                match self.next_buffered_event(&mut stream, decoder) {
                    Some(n) => next = Some(n),
                    None => break None,
                }
            };
            if !changes.is_empty() {
                self.fifo.push_all(changes.drain(..));
            }
            if let Some(end) = end {
                return end;
            }
            // A burst (a watch resumed after a stall, a relist's worth of events) waits for the
            // informer to keep up rather than queueing without bound.
            tokio::select! {
                _ = stop.cancelled() => return WatchEnd::Stopped,
                _ = self.fifo.wait_for_room(WATCH_QUEUED_KEYS) => {}
            }
        }
    }
}
