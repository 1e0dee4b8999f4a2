//! The manager's leader election (controller-runtime's `leaderElectionRunnable` and the
//! `LeaderElection*` options): controllers and runnables run only while this replica leads.

use super::*;

/// A configured election.
pub(super) struct Election {
    pub(super) name: String,
    pub(super) namespace: String,
    pub(super) config: crate::leader::LeaderElectionConfig,
    pub(super) exit_on_lost: bool,
    pub(super) status: prometheus_client::metrics::gauge::Gauge,
}

impl Election {
    pub(super) fn elector(
        &self,
        inner: &Inner,
    ) -> Result<crate::leader::LeaderElector, crate::leader::LeaderError> {
        let lock =
            crate::leader::LeaseLock::new(&inner.clientset, &self.namespace, &self.name, &inner.identity);
        crate::leader::LeaderElector::new(lock, self.config.clone())
    }
}

impl Election {
    /// Campaigns, runs `lead` while this replica holds the lease, and campaigns again after
    /// losing it (or stops the manager with [`ManagerError::LeadershipLost`] when configured
    /// to); returns at shutdown. Registers the `leaderElection` health check.
    pub(super) async fn run<F, Fut>(
        &self,
        manager: &Manager,
        lead: F,
        failure: &Mutex<Option<ManagerError>>,
    ) -> Result<(), crate::leader::LeaderError>
    where
        F: Fn(CancellationToken) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let inner = &manager.inner;
        let elector = self.elector(inner)?;
        let state = elector.state();
        let (lease, tolerance) = (elector.config().lease_duration, elector.config().renew_deadline);
        manager.add_health_check("leaderElection", move || state.check(lease, tolerance));
        loop {
            let status = self.status.clone();
            let lead = lead.clone();
            let callbacks = crate::leader::LeaderCallbacks::new()
                .on_started_leading(move |work| async move {
                    status.set(1);
                    lead(work).await;
                    status.set(0);
                })
                .on_new_leader(|who| tracing::info!(leader = %who, "new leader observed"));
            elector.run(callbacks, inner.shutdown.clone()).await;
            if inner.shutdown.is_cancelled() {
                return Ok(());
            }
            if self.exit_on_lost {
                tracing::error!("leadership lost; stopping (another replica takes over)");
                failure.lock().get_or_insert(ManagerError::LeadershipLost(
                    "could not renew the lease within the renew deadline".into(),
                ));
                inner.shutdown.cancel();
                return Ok(());
            }
            tracing::warn!("leadership lost; campaigning again");
        }
    }
}
