//! The optional client-side token bucket (client-go's `flowcontrol.NewTokenBucketRateLimiter`):
//! `qps` tokens per second, at most `burst` saved up. A request that finds the bucket empty
//! reserves the next token and sleeps until it is due, so waiting requests keep their order.

use parking_lot::Mutex;
use tokio::time::{Duration, Instant};

pub(crate) struct TokenBucket {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A full bucket. `qps` must be positive; `burst` is at least 1.
    pub(crate) fn new(qps: f32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket { qps: f64::from(qps), burst, state: Mutex::new((burst, Instant::now())) }
    }

    /// How long the caller must wait for its token (reserved now).
    pub(crate) fn reserve(&self) -> Duration {
        let mut state = self.state.lock();
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(state.1).as_secs_f64();
        state.0 = (state.0 + elapsed * self.qps).min(self.burst) - 1.0;
        state.1 = now;
        if state.0 >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-state.0 / self.qps) }
    }

    /// Waits for a token.
    pub(crate) async fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tracing::debug!(?wait, "client-side rate limit: waiting");
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_qps() {
        let bucket = TokenBucket::new(10.0, 3);
        for _ in 0..3 {
            assert_eq!(bucket.reserve(), Duration::ZERO);
        }
        // The 4th and 5th wait one and two token periods (100 ms each).
        assert_eq!(bucket.reserve().as_millis(), 100);
        assert_eq!(bucket.reserve().as_millis(), 200);
        tokio::time::advance(Duration::from_secs(10)).await;
        // Refilled, but never beyond the burst.
        for _ in 0..3 {
            assert_eq!(bucket.reserve(), Duration::ZERO);
        }
        assert!(bucket.reserve() > Duration::ZERO);
    }
}
