//! "Has synced" as one signal (client-go's `HasSynced` and `WaitForCacheSync`, without the
//! polling): set once when the initial list has been handed over, read without a lock, and
//! awaited by whoever needs it — the informer, each handler registration, the factory, the
//! manager, the listers of a reconcile context. Built on a `tokio::sync::watch` channel, so a
//! waiter wakes exactly when it is set (deterministic under paused time).

use std::sync::Arc;

use tokio::sync::watch;

/// A set-once "synced" signal; clones share it.
#[derive(Clone, Debug)]
pub struct Synced {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Synced {
    fn default() -> Self {
        Self::new()
    }
}

impl Synced {
    /// A signal not set yet.
    pub fn new() -> Self {
        Synced { tx: Arc::new(watch::Sender::new(false)) }
    }

    /// Sets it (waking every waiter); setting it again changes nothing. Returns whether this
    /// call set it.
    pub fn set(&self) -> bool {
        self.tx.send_if_modified(|v| !std::mem::replace(v, true))
    }

    /// Whether it is set.
    pub fn is_set(&self) -> bool {
        *self.tx.borrow()
    }

    /// Waits until it is set.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`: the channel cannot close while we wait.
        let _ = rx.wait_for(|v| *v).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waiters_wake_when_it_is_set_and_later_waits_return_at_once() {
        let synced = Synced::new();
        assert!(!synced.is_set());
        let waiter = tokio::spawn({
            let s = synced.clone();
            async move { s.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert!(synced.set(), "the first set sets it");
        assert!(!synced.set(), "a second set changes nothing");
        waiter.await.unwrap();
        assert!(synced.is_set());
        synced.wait().await;
    }
}
