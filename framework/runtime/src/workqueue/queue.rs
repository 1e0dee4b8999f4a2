//! The queue: client-go's `workqueue.Typed` (dirty and processing sets) and `DelayingInterface`
//! (`add_after`), with controller-runtime's priorities.
//!
//! # Invariants
//!
//! 1. **Distinct items.** An item is queued at most once: adding an item that is already queued
//!    does nothing (except raising its priority, see 4). The queue holds keys, not events, so a
//!    burst of changes to one object collapses into one reconcile.
//! 2. **Never processed twice at once.** Between `get` handing out an item and `done` for it, the
//!    item is *processing*. Adding it meanwhile marks it *dirty* without queueing it; `done`
//!    queues it again, so the change is never lost and no two workers hold the same item.
//! 3. **FIFO within a priority.** Items come out in the order they were (first) added.
//! 4. **Priorities.** Higher priorities come out first. Adding an item that is queued with a
//!    higher priority moves it to that priority (at the back of it); a lower one changes nothing.
//!    The default priority is 0; controllers give initial-list and resync events a lower one so
//!    that real changes overtake them.
//! 5. **Delays.** `add_after` keeps the item aside until its time, then adds it (with 1-4). An
//!    item already waiting keeps the earlier of the two times. Waiting items are not counted in
//!    `len`. Timers use tokio's clock (paused time works); no task polls: waiting `get` calls
//!    sleep until the earliest time or a wake-up.
//! 6. **Shutdown.** After `shut_down`, adds are ignored and waiting items dropped; `get` still
//!    hands out what is queued and returns `None` once the queue is empty.
//!    `shut_down_with_drain` also waits until every processing item is `done`.

use std::{
    cmp::{Ordering, Reverse},
    collections::{BinaryHeap, HashMap, VecDeque, hash_map::Entry},
    hash::Hash,
    sync::Arc,
    time::Duration,
};

use parking_lot::Mutex;
use tokio::{sync::Notify, time::Instant};

use super::metrics::{InFlight, InFlightWork, MetricsProvider, QueueMetrics};

/// How a queue is named and measured.
#[derive(Clone, Default)]
pub struct QueueConfig {
    /// The queue's name (the `name` label of its metrics; usually the controller's name).
    pub name: String,
    /// Where the queue reports its metrics (none by default).
    pub metrics: Option<Arc<dyn MetricsProvider>>,
}

impl std::fmt::Debug for QueueConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueConfig")
            .field("name", &self.name)
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl QueueConfig {
    /// A configuration with this name and no metrics.
    pub fn named(name: impl Into<String>) -> Self {
        QueueConfig { name: name.into(), metrics: None }
    }

    /// Reports metrics to `provider`.
    #[must_use]
    pub fn with_metrics(mut self, provider: Arc<dyn MetricsProvider>) -> Self {
        self.metrics = Some(provider);
        self
    }
}

/// How an item is added (controller-runtime's `AddOpts`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddOptions {
    /// The item's priority (higher first; default 0).
    pub priority: i32,
    /// Wait this long before queueing it.
    pub after: Option<Duration>,
}

impl AddOptions {
    /// Options with this priority.
    pub fn priority(priority: i32) -> Self {
        AddOptions { priority, after: None }
    }
}

/// A queued item's bookkeeping.
struct Dirty {
    priority: i32,
    /// The sequence number of its live entry in a lane.
    seq: u64,
    /// When it was added (for the queue-duration metric).
    added: Option<Instant>,
}

/// A processing item's bookkeeping.
struct Processing {
    /// When `get` handed it out (when measured).
    started: Option<Instant>,
    /// Added again while processing: the priority (and add time) to queue it with at `done`.
    again: Option<(i32, Option<Instant>)>,
}

/// A waiting item's bookkeeping.
struct Waiting {
    ready_at: Instant,
    seq: u64,
    priority: i32,
}

/// One timer of the waiting heap; stale when its item's `Waiting::seq` differs.
struct Timer<T> {
    ready_at: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Timer<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.ready_at, self.seq) == (other.ready_at, other.seq)
    }
}
impl<T> Eq for Timer<T> {}
impl<T> PartialOrd for Timer<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Timer<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ready_at, self.seq).cmp(&(other.ready_at, other.seq))
    }
}

struct State<T> {
    /// Entries `(item, seq)` by priority, highest first; an entry is live when its item's dirty
    /// record has the same `seq` (a priority raise leaves a stale entry behind).
    lanes: Vec<(i32, VecDeque<(T, u64)>)>,
    /// Queued items (client-go's dirty set, less the items added while processing, which are
    /// marked in their processing record instead: one hash lookup less per cycle).
    dirty: HashMap<T, Dirty>,
    /// Items being processed.
    processing: HashMap<T, Processing>,
    waiting: HashMap<T, Waiting>,
    timers: BinaryHeap<Reverse<Timer<T>>>,
    /// Live lane entries.
    queued: usize,
    next_seq: u64,
    shutting_down: bool,
}

impl<T: Hash + Eq + Clone> State<T> {
    /// Appends an entry for `item` with sequence number `seq`.
    fn push(lanes: &mut Vec<(i32, VecDeque<(T, u64)>)>, item: T, priority: i32, seq: u64) {
        let lane = match lanes.iter().position(|(p, _)| *p <= priority) {
            Some(i) if lanes[i].0 == priority => i,
            Some(i) => {
                lanes.insert(i, (priority, VecDeque::new()));
                i
            }
            None => {
                lanes.push((priority, VecDeque::new()));
                lanes.len() - 1
            }
        };
        lanes[lane].1.push_back((item, seq));
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Adds an item (invariants 1, 2, 4); whether a worker should be woken.
    fn add(&mut self, item: T, priority: i32, now: Option<Instant>, metrics: &dyn QueueMetrics) -> bool {
        if let Some(p) = self.processing.get_mut(&item) {
            match &mut p.again {
                Some((again, _)) => *again = (*again).max(priority),
                None => {
                    metrics.added();
                    p.again = Some((priority, now));
                }
            }
            return false;
        }
        match self.dirty.entry(item) {
            Entry::Occupied(mut queued) => {
                if priority > queued.get().priority {
                    self.next_seq += 1;
                    let seq = self.next_seq;
                    queued.get_mut().priority = priority;
                    queued.get_mut().seq = seq;
                    Self::push(&mut self.lanes, queued.key().clone(), priority, seq);
                }
                false
            }
            Entry::Vacant(vacant) => {
                metrics.added();
                self.next_seq += 1;
                let seq = self.next_seq;
                Self::push(&mut self.lanes, vacant.key().clone(), priority, seq);
                vacant.insert(Dirty { priority, seq, added: now });
                self.queued += 1;
                true
            }
        }
    }

    /// The next live item, moved to processing.
    fn pop(&mut self, now: Option<Instant>, metrics: &dyn QueueMetrics) -> Option<T> {
        while let Some((_, lane)) = self.lanes.first_mut() {
            let Some((item, seq)) = lane.pop_front() else {
                self.lanes.remove(0);
                continue;
            };
            let Some((item, d)) = self.dirty.remove_entry(&item) else {
                continue;
            };
            if d.seq != seq {
                // A stale entry left by a priority raise: the item's live entry is elsewhere.
                self.dirty.insert(item, d);
                continue;
            }
            match (now, d.added) {
                (Some(now), Some(added)) => metrics.got(now.saturating_duration_since(added)),
                _ => metrics.got(Duration::ZERO),
            }
            self.queued -= 1;
            self.processing.insert(item.clone(), Processing { started: now, again: None });
            return Some(item);
        }
        None
    }

    /// Moves the waiting items that are due into the queue; how many were queued.
    fn promote_due(&mut self, now: Instant, metrics: &dyn QueueMetrics, measured: bool) -> usize {
        let mut queued = 0;
        while self.timers.peek().is_some_and(|Reverse(t)| t.ready_at <= now) {
            let Some(Reverse(timer)) = self.timers.pop() else { break };
            let live = self.waiting.get(&timer.item).is_some_and(|w| w.seq == timer.seq);
            if !live {
                continue;
            }
            if let Some(w) = self.waiting.remove(&timer.item)
                && self.add(timer.item, w.priority, measured.then_some(now), metrics)
            {
                queued += 1;
            }
        }
        queued
    }

    fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(t)| t.ready_at)
    }
}

struct Inner<T> {
    state: Mutex<State<T>>,
    /// Wakes `get` callers (an item was queued, the earliest timer changed, or shutdown).
    ready: Notify,
    /// Wakes `shut_down_with_drain` when processing empties.
    drained: Notify,
    metrics: Arc<dyn QueueMetrics>,
    measured: bool,
}

impl<T: Hash + Eq + Clone + Send + Sync + 'static> InFlight for Inner<T> {
    fn in_flight(&self) -> InFlightWork {
        let now = Instant::now();
        let state = self.state.lock();
        let mut work = InFlightWork::default();
        for started in state.processing.values().filter_map(|p| p.started.as_ref()) {
            let secs = now.saturating_duration_since(*started).as_secs_f64();
            work.unfinished_seconds += secs;
            work.longest_seconds = work.longest_seconds.max(secs);
        }
        work
    }
}

/// A work queue of distinct items (see the module docs for its invariants). Cloning it gives
/// another handle to the same queue.
pub struct Queue<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue { inner: self.inner.clone() }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.state.lock();
        f.debug_struct("Queue")
            .field("queued", &state.queued)
            .field("processing", &state.processing.len())
            .field("waiting", &state.waiting.len())
            .field("shutting_down", &state.shutting_down)
            .finish()
    }
}

impl<T: Hash + Eq + Clone + Send + Sync + 'static> Default for Queue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Hash + Eq + Clone + Send + Sync + 'static> Queue<T> {
    /// An unnamed queue without metrics.
    pub fn new() -> Self {
        Self::with_config(QueueConfig::default())
    }

    /// A queue with a name and, optionally, metrics.
    pub fn with_config(config: QueueConfig) -> Self {
        let measured = config.metrics.is_some();
        let inner = Arc::new_cyclic(|weak: &std::sync::Weak<Inner<T>>| {
            let metrics: Arc<dyn QueueMetrics> = match &config.metrics {
                Some(provider) => provider.queue_metrics(&config.name, weak.clone() as _),
                None => Arc::new(()),
            };
            Inner {
                state: Mutex::new(State {
                    lanes: Vec::new(),
                    dirty: HashMap::new(),
                    processing: HashMap::new(),
                    waiting: HashMap::new(),
                    timers: BinaryHeap::new(),
                    queued: 0,
                    next_seq: 0,
                    shutting_down: false,
                }),
                ready: Notify::new(),
                drained: Notify::new(),
                metrics,
                measured,
            }
        });
        Queue { inner }
    }

    fn now(&self) -> Option<Instant> {
        self.inner.measured.then(Instant::now)
    }

    /// Queues an item with priority 0 (nothing happens if it is already queued; an item being
    /// processed is queued again when it is `done`).
    pub fn add(&self, item: T) {
        self.add_with(item, AddOptions::default());
    }

    /// Queues an item with a priority (higher first).
    pub fn add_with_priority(&self, item: T, priority: i32) {
        self.add_with(item, AddOptions::priority(priority));
    }

    /// Queues an item after `delay` (at once when it is zero); an item already waiting keeps the
    /// earlier time.
    pub fn add_after(&self, item: T, delay: Duration) {
        self.add_with(item, AddOptions { priority: 0, after: Some(delay) });
    }

    /// Queues an item with explicit options.
    pub fn add_with(&self, item: T, options: AddOptions) {
        let inner = &*self.inner;
        let mut state = inner.state.lock();
        if state.shutting_down {
            return;
        }
        if let Some(delay) = options.after {
            // client-go counts every AddAfter as a retry.
            inner.metrics.retried();
            if !delay.is_zero() {
                let ready_at = Instant::now() + delay;
                let seq = state.next_seq();
                let earlier = match state.waiting.get_mut(&item) {
                    Some(w) => {
                        w.priority = w.priority.max(options.priority);
                        if ready_at < w.ready_at {
                            w.ready_at = ready_at;
                            w.seq = seq;
                            true
                        } else {
                            false
                        }
                    }
                    None => {
                        state
                            .waiting
                            .insert(item.clone(), Waiting { ready_at, seq, priority: options.priority });
                        true
                    }
                };
                if earlier {
                    let first = state.next_timer().is_none_or(|t| ready_at < t);
                    state.timers.push(Reverse(Timer { ready_at, seq, item }));
                    drop(state);
                    if first {
                        // A sleeping `get` must shorten its sleep.
                        inner.ready.notify_one();
                    }
                }
                return;
            }
        }
        let now = self.now();
        if state.add(item, options.priority, now, &*inner.metrics) {
            drop(state);
            inner.ready.notify_one();
        }
    }

    /// Waits for the next item; `None` once the queue is shut down and empty. The caller must
    /// call [`done`](Self::done) with the item when it has finished with it.
    pub async fn get(&self) -> Option<T> {
        let inner = &*self.inner;
        loop {
            let notified = inner.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_timer = {
                let mut state = inner.state.lock();
                let now = (!state.timers.is_empty() || inner.measured).then(Instant::now);
                if let Some(now) = now
                    && state.promote_due(now, &*inner.metrics, inner.measured) > 1
                {
                    // Others can take the rest.
                    inner.ready.notify_waiters();
                }
                if let Some(item) = state.pop(now.filter(|_| inner.measured), &*inner.metrics) {
                    if state.queued > 0 {
                        // Pass the wake-up on: there is more for another worker.
                        inner.ready.notify_one();
                    }
                    return Some(item);
                }
                if state.shutting_down {
                    return None;
                }
                state.next_timer()
            };
            match next_timer {
                Some(at) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// The next item if one is ready now, without waiting.
    pub fn try_get(&self) -> Option<T> {
        let inner = &*self.inner;
        let mut state = inner.state.lock();
        let now = (!state.timers.is_empty() || inner.measured).then(Instant::now);
        if let Some(now) = now {
            state.promote_due(now, &*inner.metrics, inner.measured);
        }
        state.pop(now.filter(|_| inner.measured), &*inner.metrics)
    }

    /// Marks an item as processed: if it was added while processing, it is queued again.
    pub fn done(&self, item: &T) {
        let inner = &*self.inner;
        let mut state = inner.state.lock();
        let Some((item, processing)) = state.processing.remove_entry(item) else {
            return;
        };
        if let Some(started) = processing.started {
            inner.metrics.done(Instant::now().saturating_duration_since(started));
        }
        if let Some((priority, added)) = processing.again {
            let seq = state.next_seq();
            state.dirty.insert(item.clone(), Dirty { priority, seq, added });
            State::push(&mut state.lanes, item, priority, seq);
            state.queued += 1;
            drop(state);
            inner.ready.notify_one();
        } else if state.processing.is_empty() {
            drop(state);
            inner.drained.notify_waiters();
        }
    }

    /// How many items are queued (not counting those processing or waiting for their time).
    pub fn len(&self) -> usize {
        self.inner.state.lock().queued
    }

    /// Whether no item is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many items are waiting for their time (`add_after`).
    pub fn waiting(&self) -> usize {
        self.inner.state.lock().waiting.len()
    }

    /// How many items are being processed.
    pub fn processing(&self) -> usize {
        self.inner.state.lock().processing.len()
    }

    /// Stops taking items: adds are ignored, waiting items dropped; `get` returns `None` once
    /// the queue is empty.
    pub fn shut_down(&self) {
        let inner = &*self.inner;
        {
            let mut state = inner.state.lock();
            state.shutting_down = true;
            state.waiting.clear();
            state.timers.clear();
        }
        inner.ready.notify_waiters();
    }

    /// [`shut_down`](Self::shut_down), then waits until every item being processed is `done`.
    pub async fn shut_down_with_drain(&self) {
        self.shut_down();
        loop {
            let drained = self.inner.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.inner.state.lock().processing.is_empty() {
                return;
            }
            drained.await;
        }
    }

    /// Whether the queue is shutting down.
    pub fn shutting_down(&self) -> bool {
        self.inner.state.lock().shutting_down
    }
}
