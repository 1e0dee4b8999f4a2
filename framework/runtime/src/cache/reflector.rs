//! The reflector (client-go's `cache.Reflector`, ListAndWatch): lists a resource page by page
//! into the DeltaFIFO (`replace`), then watches from the list's resourceVersion with bookmarks,
//! resuming from the last resourceVersion seen when a watch ends.
//!
//! - 410 Gone/Expired (at watch start, as an ERROR event, or on a later list page) and "too
//!   large resource version": relist from scratch; deletions missed meanwhile arrive as
//!   tombstones through `DeltaFifo::replace`.
//! - Other failures (429, connection refused, 5xx): back off and watch again without relisting.
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

/// The reflector of one resource.
pub struct Reflector<K> {
    client: ResourceClient<Cached<K>>,
    options: ListOptions,
    fifo: Arc<DeltaFifo<Cached<K>>>,
    last_rv: Mutex<String>,
    on_error: Option<WatchErrorHandler>,
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
        Reflector { client, options, fifo, last_rv: Mutex::new(String::new()), on_error: None }
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
            if need_list {
                let listed = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = self.list() => r,
                };
                match listed {
                    Ok(()) => need_list = false,
                    Err(e) => {
                        self.report(&e);
                        if !self.sleep(&mut delays, &stop).await {
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
            match self.watch_once(&stop).await {
                WatchEnd::Stopped => return,
                WatchEnd::Ended => {}
                WatchEnd::Relist(e) => {
                    self.report(&e);
                    need_list = true;
                }
                WatchEnd::Backoff(e) => {
                    self.report(&e);
                    if !self.sleep(&mut delays, &stop).await {
                        return;
                    }
                    healthy_since = Instant::now();
                }
            }
        }
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
                items.extend(page.items.into_iter().map(Arc::new));
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
        options.timeout_seconds = Some(300 + (rand_u32() % 300));
        let started = tokio::select! {
            _ = stop.cancelled() => return WatchEnd::Stopped,
            w = self.client.watch(&options) => w,
        };
        let mut stream = match started {
            Ok(s) => s,
            Err(e) if e.is_gone() || e.is_resource_version_too_large() => return WatchEnd::Relist(e),
            Err(e) => return WatchEnd::Backoff(e),
        };
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
                    self.fifo.add(Arc::new(o));
                }
                WatchEvent::Modified(o) => {
                    *self.last_rv.lock() = o.meta().resource_version.clone();
                    self.fifo.update(Arc::new(o));
                }
                WatchEvent::Deleted(o) => {
                    *self.last_rv.lock() = o.meta().resource_version.clone();
                    self.fifo.delete(Arc::new(o));
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

/// A little randomness for the watch timeout, without a dependency.
fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish() as u32
}
