//! Fault injection for tests: added latency, failing the next requests, a lagging watch cache.
//!
//! Mirrors nothing in kube-apiserver: the faults client-go must survive (throttling, lagging watch caches, slow responses).

use std::time::Duration;

use http::StatusCode;
use parking_lot::Mutex;

use crate::status::ApiError;

pub(crate) struct Faults {
    latency: Mutex<Option<Duration>>,
    /// Response bodies trickle out: this many bytes, then this pause.
    slow_reads: Mutex<Option<(usize, Duration)>>,
    /// Bumped to break open watches in the middle of an event.
    mid_chunk_cuts: std::sync::atomic::AtomicU64,
    /// While true, open watches send nothing (their events wait in their buffers).
    watches_held: tokio::sync::watch::Sender<bool>,
    failures: Mutex<Option<(u32, StatusCode, Option<u64>)>>,
    /// Whether the failures apply to GET requests (lists, watches, gets) only.
    reads_only: Mutex<bool>,
    /// Watches behave as if served by a replica this many revisions behind.
    watch_lag: Mutex<Option<u64>>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency: Mutex::default(),
            slow_reads: Mutex::default(),
            mid_chunk_cuts: Default::default(),
            watches_held: tokio::sync::watch::Sender::new(false),
            failures: Mutex::default(),
            reads_only: Mutex::default(),
            watch_lag: Mutex::default(),
        }
    }
}

impl Faults {
    /// Makes every open watch break in the middle of its next event.
    pub fn cut_watches_mid_chunk(&self) {
        self.mid_chunk_cuts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many mid-chunk cuts were ordered (a watch compares it with the count at its start).
    pub fn mid_chunk_cuts(&self) -> u64 {
        self.mid_chunk_cuts.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn hold_watches(&self, hold: bool) {
        self.watches_held.send_replace(hold);
    }

    /// Returns once watches are not held.
    pub async fn watches_released(&self) {
        if !*self.watches_held.borrow() {
            return;
        }
        let mut held = self.watches_held.subscribe();
        let _ = held.wait_for(|h| !*h).await;
    }

    /// Response bodies (watches included) go out `bytes` at a time with `pause` between, as over
    /// a slow link; `None` lifts it.
    pub fn set_slow_reads(&self, slow: Option<(usize, Duration)>) {
        *self.slow_reads.lock() = slow;
    }

    pub fn slow_reads(&self) -> Option<(usize, Duration)> {
        *self.slow_reads.lock()
    }

    pub fn set_latency(&self, latency: Option<Duration>) {
        *self.latency.lock() = latency;
    }

    pub fn set_watch_lag(&self, revisions: Option<u64>) {
        *self.watch_lag.lock() = revisions;
    }

    pub fn watch_lag(&self) -> Option<u64> {
        *self.watch_lag.lock()
    }

    pub fn latency(&self) -> Option<Duration> {
        *self.latency.lock()
    }

    pub fn fail_next(&self, count: u32, code: StatusCode, retry_after: Option<u64>, reads_only: bool) {
        *self.failures.lock() = (count > 0).then_some((count, code, retry_after));
        *self.reads_only.lock() = reads_only;
    }

    /// The error for this request, when failures are pending.
    pub fn take_failure(&self, method: &http::Method) -> Option<ApiError> {
        if *self.reads_only.lock() && method != http::Method::GET {
            return None;
        }
        let mut failures = self.failures.lock();
        let (count, code, retry_after) = failures.as_mut()?;
        *count -= 1;
        let (code, retry_after) = (*code, *retry_after);
        if *count == 0 {
            *failures = None;
        }
        let reason = match code.as_u16() {
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            500 => "InternalError",
            _ => "",
        };
        let mut e = ApiError::new(code, reason, format!("injected failure ({})", code.as_u16()));
        e.retry_after = retry_after;
        Some(e)
    }
}
