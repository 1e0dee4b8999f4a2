//! The elector (client-go's `LeaderElector`): acquire, renew, step down, release.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lock::{LeaderElectionRecord, LeaseLock};

/// client-go's jitter factor for the retry period.
pub const JITTER_FACTOR: f64 = 1.2;

/// Invalid leader election settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaderError {
    /// The durations do not satisfy lease > renew deadline > 1.2 × retry period > 0.
    #[error("invalid leader election config: {0}")]
    InvalidConfig(String),
}

/// The timing of an election (client-go's defaults: 15 s, 10 s, 2 s).
#[derive(Clone, Debug)]
pub struct LeaderElectionConfig {
    /// How long non-leaders wait after the last observed change before taking over.
    pub lease_duration: Duration,
    /// How long the leader keeps retrying to renew before it steps down.
    pub renew_deadline: Duration,
    /// How often candidates try to acquire and the leader renews.
    pub retry_period: Duration,
    /// On cancellation the leader empties the lease's holder so that another takes over at once.
    pub release_on_cancel: bool,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        LeaderElectionConfig {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            release_on_cancel: true,
        }
    }
}

impl LeaderElectionConfig {
    /// client-go's checks: lease duration > renew deadline > 1.2 × retry period, all positive.
    pub fn validate(&self) -> Result<(), LeaderError> {
        let bad = |m: String| Err(LeaderError::InvalidConfig(m));
        if self.retry_period.is_zero() {
            return bad("retry_period must be greater than zero".into());
        }
        if self.lease_duration <= self.renew_deadline {
            return bad(format!(
                "lease_duration ({:?}) must be greater than renew_deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline.as_secs_f64() <= JITTER_FACTOR * self.retry_period.as_secs_f64() {
            return bad(format!(
                "renew_deadline ({:?}) must be greater than {JITTER_FACTOR} × retry_period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        Ok(())
    }
}

type NewLeaderFn = Box<dyn Fn(&str) + Send + Sync>;
type StartedFn = Box<dyn FnOnce(CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// What the elector calls (client-go's `LeaderCallbacks`).
pub struct LeaderCallbacks {
    on_started_leading: Option<StartedFn>,
    on_stopped_leading: Option<Box<dyn FnOnce() + Send>>,
    on_new_leader: Option<NewLeaderFn>,
}

impl std::fmt::Debug for LeaderCallbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderCallbacks").finish_non_exhaustive()
    }
}

impl Default for LeaderCallbacks {
    fn default() -> Self {
        Self::new()
    }
}

impl LeaderCallbacks {
    /// No callbacks.
    pub fn new() -> Self {
        LeaderCallbacks { on_started_leading: None, on_stopped_leading: None, on_new_leader: None }
    }

    /// Runs when this candidate becomes the leader; the token is cancelled when it stops
    /// leading (the work must stop then).
    #[must_use]
    pub fn on_started_leading<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_started_leading = Some(Box::new(move |t| Box::pin(f(t))));
        self
    }

    /// Runs when this candidate stops leading (after its work was cancelled).
    #[must_use]
    pub fn on_stopped_leading(mut self, f: impl FnOnce() + Send + 'static) -> Self {
        self.on_stopped_leading = Some(Box::new(f));
        self
    }

    /// Runs when a new leader is observed (including this candidate).
    #[must_use]
    pub fn on_new_leader(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_new_leader = Some(Box::new(f));
        self
    }
}

/// What the elector has observed, shared with health checks and metrics.
#[derive(Debug, Default)]
pub struct LeaderState {
    leading: AtomicBool,
    observed: Mutex<Option<(LeaderElectionRecord, Instant)>>,
    last_renew: Mutex<Option<Instant>>,
}

impl LeaderState {
    /// Whether this candidate leads now.
    pub fn is_leader(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    /// The holder last observed.
    pub fn leader(&self) -> Option<String> {
        self.observed.lock().as_ref().map(|(r, _)| r.holder_identity.clone()).filter(|h| !h.is_empty())
    }

    /// The health check (client-go's `HealthzAdaptor`): fails when this candidate leads but
    /// has not renewed for longer than `lease_duration + tolerance` (it should have stepped
    /// down: something is stuck).
    pub fn check(&self, lease_duration: Duration, tolerance: Duration) -> Result<(), String> {
        if !self.is_leader() {
            return Ok(());
        }
        match *self.last_renew.lock() {
            Some(at) if at.elapsed() > lease_duration + tolerance => Err(format!(
                "the leader has not renewed its lease for {:?} (lease duration {lease_duration:?})",
                at.elapsed()
            )),
            _ => Ok(()),
        }
    }
}

/// A candidate in an election.
pub struct LeaderElector {
    lock: LeaseLock,
    config: LeaderElectionConfig,
    state: Arc<LeaderState>,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("lock", &self.lock.describe())
            .field("identity", &self.lock.identity())
            .field("config", &self.config)
            .finish()
    }
}

fn jittered(base: Duration) -> Duration {
    base.mul_f64(1.0 + (JITTER_FACTOR - 1.0) * crate::random::random_fraction())
}

impl LeaderElector {
    /// A candidate for `lock` (its config is validated).
    pub fn new(lock: LeaseLock, config: LeaderElectionConfig) -> Result<Self, LeaderError> {
        config.validate()?;
        Ok(LeaderElector { lock, config, state: Arc::new(LeaderState::default()) })
    }

    /// What this candidate has observed (for health checks and metrics).
    pub fn state(&self) -> Arc<LeaderState> {
        self.state.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &LeaderElectionConfig {
        &self.config
    }

    /// Campaigns until leading, leads until it cannot renew or `cancel` is cancelled; returns
    /// whether it ever led. Run it again to campaign again.
    pub async fn run(&self, callbacks: LeaderCallbacks, cancel: CancellationToken) -> bool {
        let LeaderCallbacks { on_started_leading, on_stopped_leading, on_new_leader } = callbacks;
        let report = |state: &LeaderState, before: Option<String>| {
            if let (Some(f), Some(now)) = (&on_new_leader, state.leader())
                && before.as_deref() != Some(now.as_str())
            {
                f(&now);
            }
        };
        // Acquire.
        let acquired_at = loop {
            let before = self.state.leader();
            let attempt = Instant::now();
            let acquired = self.try_acquire_or_renew().await;
            report(&self.state, before);
            if acquired {
                break attempt;
            }
            tokio::select! {
                _ = cancel.cancelled() => return false,
                _ = tokio::time::sleep(jittered(self.config.retry_period)) => {}
            }
        };
        self.state.leading.store(true, Ordering::SeqCst);
        tracing::info!(lease = %self.lock.describe(), identity = %self.lock.identity(), "became the leader");
        let work = CancellationToken::new();
        let leading = on_started_leading.map(|f| tokio::spawn(f(work.clone())));
        // Renew until the renew deadline passes without a successful renewal (counted from the
        // start of the last one, whose time the lease records, and enforced on the attempt in
        // flight), or cancellation.
        let mut last_renew = acquired_at;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(self.config.retry_period) => {}
            }
            let before = self.state.leader();
            let deadline = last_renew + self.config.renew_deadline;
            let attempt = Instant::now();
            let renewed = tokio::select! {
                _ = cancel.cancelled() => break,
                r = tokio::time::timeout_at(deadline, self.try_acquire_or_renew()) => r.unwrap_or(false),
            };
            report(&self.state, before);
            if renewed {
                last_renew = attempt;
            } else if Instant::now() + self.config.retry_period >= deadline
                || self.state.leader().is_some_and(|l| l != self.lock.identity())
            {
                tracing::warn!(
                    lease = %self.lock.describe(),
                    "failed to renew the lease within the renew deadline; stepping down"
                );
                break;
            }
        }
        // Stop leading: cancel the work first.
        self.state.leading.store(false, Ordering::SeqCst);
        work.cancel();
        if let Some(task) = leading {
            let _ = task.await;
        }
        if cancel.is_cancelled() && self.config.release_on_cancel {
            self.release().await;
        }
        tracing::info!(lease = %self.lock.describe(), "stopped leading");
        if let Some(f) = on_stopped_leading {
            f();
        }
        true
    }

    async fn bounded<T>(&self, f: impl Future<Output = Result<T, krust_client::Error>>) -> Option<T> {
        match tokio::time::timeout(self.config.renew_deadline / 2, f).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, lease = %self.lock.describe(), "lease request failed");
                None
            }
            Err(_) => {
                tracing::debug!(lease = %self.lock.describe(), "lease request timed out");
                None
            }
        }
    }

    /// client-go's `tryAcquireOrRenew`.
    async fn try_acquire_or_renew(&self) -> bool {
        let now = Timestamp::now();
        let identity = self.lock.identity().to_string();
        let mut record = LeaderElectionRecord {
            holder_identity: identity.clone(),
            lease_duration_seconds: self.config.lease_duration.as_secs().max(1) as i32,
            acquire_time: Some(now),
            renew_time: Some(now),
            leader_transitions: 0,
        };
        let Some(current) = self.bounded(self.lock.get()).await else { return false };
        let (old, lease): (LeaderElectionRecord, Lease) = match current {
            None => {
                let created = self.bounded(self.lock.create(&record)).await;
                if created.is_some() {
                    self.observe(record.clone());
                    *self.state.last_renew.lock() = Some(Instant::now());
                }
                return created.is_some();
            }
            Some(found) => found,
        };
        // Expiry is judged by this candidate's clock, from when it saw the record change.
        let observed_at = {
            let mut observed = self.state.observed.lock();
            match &*observed {
                Some((r, at)) if *r == old => *at,
                _ => {
                    let at = Instant::now();
                    *observed = Some((old.clone(), at));
                    at
                }
            }
        };
        let is_holder = old.holder_identity == identity;
        let lease_duration = Duration::from_secs(old.lease_duration_seconds.max(0) as u64);
        if !old.holder_identity.is_empty() && !is_holder && observed_at.elapsed() < lease_duration {
            return false;
        }
        if is_holder {
            record.acquire_time = old.acquire_time;
            record.leader_transitions = old.leader_transitions;
        } else {
            record.leader_transitions = old.leader_transitions + 1;
        }
        let updated = self.bounded(self.lock.update(&lease, &record)).await;
        if updated.is_some() {
            self.observe(record);
            *self.state.last_renew.lock() = Some(Instant::now());
        }
        updated.is_some()
    }

    fn observe(&self, record: LeaderElectionRecord) {
        *self.state.observed.lock() = Some((record, Instant::now()));
    }

    /// Empties the holder (if this candidate still holds the lease).
    async fn release(&self) {
        let Some(Some((old, lease))) = self.bounded(self.lock.get()).await else { return };
        if old.holder_identity != self.lock.identity() {
            return;
        }
        let now = Timestamp::now();
        let record = LeaderElectionRecord {
            holder_identity: String::new(),
            lease_duration_seconds: 1,
            acquire_time: Some(now),
            renew_time: Some(now),
            leader_transitions: old.leader_transitions,
        };
        if self.bounded(self.lock.update(&lease, &record)).await.is_some() {
            self.observe(record);
            tracing::info!(lease = %self.lock.describe(), "released the lease");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_follows_client_go() {
        assert!(LeaderElectionConfig::default().validate().is_ok());
        let with = |l: u64, r: u64, p: u64| LeaderElectionConfig {
            lease_duration: Duration::from_millis(l),
            renew_deadline: Duration::from_millis(r),
            retry_period: Duration::from_millis(p),
            release_on_cancel: true,
        };
        assert!(with(2000, 1500, 500).validate().is_ok());
        let e = with(1500, 1500, 500).validate().unwrap_err().to_string();
        assert!(e.contains("lease_duration") && e.contains("greater than renew_deadline"), "{e}");
        let e = with(2000, 1200, 1000).validate().unwrap_err().to_string();
        assert!(e.contains("1.2 × retry_period"), "{e}");
        assert!(with(2000, 1500, 0).validate().is_err());
    }

    #[test]
    fn jitter_stays_within_the_factor() {
        for _ in 0..100 {
            let j = jittered(Duration::from_secs(2));
            assert!(j >= Duration::from_secs(2) && j <= Duration::from_millis(2400), "{j:?}");
        }
    }
}
