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

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use backon::BackoffBuilder;
use futures_util::StreamExt;
use krust_client::{Error, ListOptions, ResourceClient};
use kube_core::WatchEvent;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::{delta_fifo::DeltaFifo, object::Cached};

/// client-go's initial list page size.
pub const PAGE_SIZE: u32 = 500;

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
    transform: Option<Transform<K>>,
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
            transform: None,
        }
    }

    /// Sets a transform applied to every object before it reaches the cache.
    #[must_use]
    pub fn with_transform(mut self, transform: Option<Transform<K>>) -> Self {
        self.transform = transform;
        self
    }

    fn prepare(&self, o: Cached<K>) -> Arc<Cached<K>> {
        Arc::new(match &self.transform {
            Some(t) => t(o),
            None => o,
        })
    }

    /// The client this reflector lists and watches with.
    pub fn client(&self) -> &ResourceClient<Cached<K>> {
        &self.client
    }

    /// How many lists were started (initial, relists, restarts after an expired continue token).
    pub fn lists_started(&self) -> u64 {
        self.lists.load(std::sync::atomic::Ordering::Relaxed)
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

    fn report(&self, e: &Error) {
        tracing::info!(error = %e, "reflector: list/watch failed");
        if let Some(h) = &self.on_error {
            h(e);
        }
    }

    /// Lists and watches until `stop` is cancelled.
    pub async fn run(&self, stop: CancellationToken) {
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
                    r = self.watch_list_sync() => r,
                };
                match synced {
                    Ok(Some(s)) => {
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
                    Ok(()) => need_list = false,
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
                Some(s) => self.consume(s, &stop).await,
                None => self.watch_once(&stop).await,
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
        tokio::select! {
            _ = stop.cancelled() => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }

    /// A full, paginated list into the FIFO (`replace`). An expired continue token restarts it.
    async fn list(&self) -> Result<(), Error> {
        'restart: loop {
            self.lists.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut options = self.options.clone();
            options.limit = Some(PAGE_SIZE);
            options.resource_version = None;
            options.resource_version_match = None;
            options.continue_token = None;
            let mut items = Vec::new();
            loop {
                let page = match self.client.list(&options).await {
                    Ok(p) => p,
                    Err(e) if e.is_gone() && options.continue_token.is_some() => {
                        tracing::info!("reflector: the list's continue token expired; listing again");
                        continue 'restart;
                    }
                    Err(e) => return Err(e),
                };
                items.extend(page.items.into_iter().map(|o| self.prepare(o)));
                match page.metadata.continue_.filter(|c| !c.is_empty()) {
                    Some(token) => options.continue_token = Some(token),
                    None => {
                        *self.last_rv.lock() = page.metadata.resource_version.unwrap_or_default();
                        break;
                    }
                }
            }
            self.fifo.replace(items);
            return Ok(());
        }
    }

    async fn watch_once(&self, stop: &CancellationToken) -> WatchEnd {
        let mut options = self.options.clone();
        options.resource_version = Some(self.last_rv.lock().clone());
        options.allow_watch_bookmarks = true;
        options.timeout_seconds = Some(300 + (crate::random::random_u64() % 300) as u32);
        let started = tokio::select! {
            _ = stop.cancelled() => return WatchEnd::Stopped,
            w = self.client.watch(&options) => w,
        };
        let stream = match started {
            Ok(s) => s,
            Err(e) if e.is_gone() || e.is_resource_version_too_large() => return WatchEnd::Relist(e),
            Err(e) => return WatchEnd::Backoff(e),
        };
        self.consume(stream, stop).await
    }

    /// WatchList: the initial state as ADDED events up to the `initial-events-end` bookmark, then
    /// `replace`; returns the stream to go on watching. `Ok(None)`: the server refused it.
    async fn watch_list_sync(&self) -> Result<Option<krust_client::WatchStream<Cached<K>>>, Error> {
        let mut options = self.options.clone();
        options.resource_version = Some(String::new());
        options.resource_version_match = Some("NotOlderThan".into());
        options.send_initial_events = Some(true);
        options.allow_watch_bookmarks = true;
        options.timeout_seconds = Some(300 + (crate::random::random_u64() % 300) as u32);
        let mut stream = match self.client.watch(&options).await {
            Ok(s) => s,
            Err(e) if e.api_error().is_some_and(|a| matches!(a.code.as_u16(), 400 | 403 | 422)) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let mut items = Vec::new();
        while let Some(event) = stream.next().await {
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
                    return Ok(Some(stream));
                }
                WatchEvent::Bookmark(_) => {}
                WatchEvent::Modified(o) => items.push(self.prepare(o)),
                WatchEvent::Deleted(o) => items
                    .retain(|i| i.meta().name != o.meta().name || i.meta().namespace != o.meta().namespace),
                WatchEvent::Error(status) => {
                    return Err(Error::Api(Box::new(krust_client::ApiError {
                        code: http::StatusCode::from_u16(status.code).unwrap_or(http::StatusCode::GONE),
                        status: *status,
                    })));
                }
            }
        }
        Err(Error::InvalidRequest("the WatchList stream ended before its initial-events-end bookmark".into()))
    }

    async fn consume(
        &self,
        mut stream: krust_client::WatchStream<Cached<K>>,
        stop: &CancellationToken,
    ) -> WatchEnd {
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return WatchEnd::Stopped,
                n = stream.next() => n,
            };
            let event = match next {
                None => return WatchEnd::Ended,
                Some(Ok(e)) => e,
                Some(Err(e @ Error::Decode { .. })) => {
                    self.report(&e);
                    continue;
                }
                Some(Err(e)) => return WatchEnd::Backoff(e),
            };
            match event {
                WatchEvent::Added(o) => {
                    *self.last_rv.lock() = o.meta().resource_version.clone();
                    self.fifo.add(self.prepare(o));
                }
                WatchEvent::Modified(o) => {
                    *self.last_rv.lock() = o.meta().resource_version.clone();
                    self.fifo.update(self.prepare(o));
                }
                WatchEvent::Deleted(o) => {
                    *self.last_rv.lock() = o.meta().resource_version.clone();
                    self.fifo.delete(self.prepare(o));
                }
                WatchEvent::Bookmark(b) => {
                    // A bookmark advances the resourceVersion without an event.
                    *self.last_rv.lock() = b.metadata.resource_version;
                }
                WatchEvent::Error(status) => {
                    let error = Error::Api(Box::new(krust_client::ApiError {
                        code: http::StatusCode::from_u16(status.code).unwrap_or(http::StatusCode::GONE),
                        status: *status,
                    }));
                    return if error.is_gone() { WatchEnd::Relist(error) } else { WatchEnd::Backoff(error) };
                }
            }
        }
    }
}
