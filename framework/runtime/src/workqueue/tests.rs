//! The work queue's invariants (see `queue.rs`), client-go's queue, delaying queue and rate
//! limiter tests in spirit, and a model-based property test.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use parking_lot::Mutex;
use prometheus_client::{encoding::text::encode, registry::Registry};
use proptest::prelude::*;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test]
async fn dedups_items_that_are_queued() {
    let q = Queue::new();
    q.add("a");
    q.add("b");
    q.add("a");
    assert_eq!(q.len(), 2);
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(q.get().await, Some("b"));
    assert!(q.is_empty());
}

#[tokio::test]
async fn an_item_added_while_processing_is_queued_again_at_done_only() {
    let q = Queue::new();
    q.add("a");
    let a = q.get().await.unwrap();
    q.add("a");
    q.add("a");
    assert_eq!(q.len(), 0, "not queued while processing");
    assert_eq!(q.try_get(), None, "never handed out twice at once");
    q.done(&a);
    assert_eq!(q.len(), 1, "queued once by done");
    assert_eq!(q.get().await, Some("a"));
    q.done(&"a");
    assert_eq!(q.try_get(), None);
}

#[tokio::test]
async fn adds_collapse_while_processing_and_order_is_kept() {
    // client-go's TestReinsert/TestCollapse: many adds of processing items become one each,
    // queued behind what was added first.
    let q = Queue::new();
    q.add(1);
    q.add(2);
    let one = q.get().await.unwrap();
    for _ in 0..10 {
        q.add(1);
        q.add(3);
    }
    q.done(&one);
    assert_eq!(q.len(), 3);
    assert_eq!(q.get().await, Some(2));
    assert_eq!(q.get().await, Some(3));
    assert_eq!(q.get().await, Some(1));
}

#[tokio::test]
async fn done_of_an_unknown_item_changes_nothing() {
    let q = Queue::new();
    q.add(1);
    q.done(&1);
    q.done(&7);
    assert_eq!(q.len(), 1);
}

#[tokio::test]
async fn shutdown_hands_out_what_is_queued_then_none_and_ignores_adds() {
    let q = Queue::new();
    q.add(1);
    q.add(2);
    q.shut_down();
    assert!(q.shutting_down());
    q.add(3);
    assert_eq!(q.get().await, Some(1));
    assert_eq!(q.get().await, Some(2));
    assert_eq!(q.get().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_wakes_every_waiting_worker() {
    let q: Queue<u32> = Queue::new();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let q = q.clone();
            tokio::spawn(async move { q.get().await })
        })
        .collect();
    tokio::time::sleep(ms(50)).await;
    q.shut_down();
    for w in workers {
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), w).await.unwrap().unwrap(), None);
    }
}

#[tokio::test(start_paused = true)]
async fn shut_down_with_drain_waits_for_processing_items() {
    let q = Queue::new();
    q.add("a");
    q.add("b");
    let a = q.get().await.unwrap();
    let b = q.get().await.unwrap();
    let drain = {
        let q = q.clone();
        tokio::spawn(async move { q.shut_down_with_drain().await })
    };
    tokio::time::sleep(ms(100)).await;
    assert!(!drain.is_finished(), "two items still processing");
    q.done(&a);
    tokio::time::sleep(ms(100)).await;
    assert!(!drain.is_finished(), "one item still processing");
    q.done(&b);
    tokio::time::timeout(ms(100), drain).await.unwrap().unwrap();
    assert_eq!(q.get().await, None);
    // Nothing processing: returns at once.
    let empty: Queue<u8> = Queue::new();
    tokio::time::timeout(ms(10), empty.shut_down_with_drain()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn add_after_waits_for_its_time_and_keeps_the_earlier_one() {
    let q = Queue::new();
    q.add_after("a", ms(50));
    assert_eq!(q.len(), 0);
    assert_eq!(q.waiting(), 1);
    assert_eq!(q.try_get(), None);
    // A later time for a waiting item is ignored, an earlier one wins.
    q.add_after("a", ms(500));
    q.add_after("b", ms(100));
    q.add_after("b", ms(20));
    let start = tokio::time::Instant::now();
    assert_eq!(q.get().await, Some("b"));
    assert_eq!(start.elapsed(), ms(20));
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(start.elapsed(), ms(50));
    assert_eq!(q.waiting(), 0);
    // Zero delay: queued at once.
    q.add_after("c", Duration::ZERO);
    assert_eq!(q.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_worker_wakes_for_an_earlier_timer() {
    let q = Queue::new();
    q.add_after("late", Duration::from_secs(60));
    let worker = {
        let q = q.clone();
        tokio::spawn(async move { (q.get().await, tokio::time::Instant::now()) })
    };
    tokio::time::sleep(ms(10)).await;
    let start = tokio::time::Instant::now();
    q.add_after("early", ms(30));
    let (item, at) = worker.await.unwrap();
    assert_eq!(item, Some("early"));
    assert_eq!(at - start, ms(30));
}

#[tokio::test(start_paused = true)]
async fn timers_fire_in_time_order_and_shutdown_drops_them() {
    let q = Queue::new();
    for (i, d) in [(1, 300), (2, 100), (3, 200), (4, 100)] {
        q.add_after(i, ms(d));
    }
    let mut order = Vec::new();
    for _ in 0..4 {
        order.push(q.get().await.unwrap());
    }
    assert_eq!(order, [2, 4, 3, 1]);
    q.add_after(9, ms(10));
    q.shut_down();
    assert_eq!(q.waiting(), 0);
    assert_eq!(q.get().await, None);
}

#[tokio::test]
async fn higher_priorities_first_fifo_within_and_raising_moves_an_item() {
    let q = Queue::new();
    q.add_with_priority("low1", -100);
    q.add("mid1");
    q.add_with_priority("high", 10);
    q.add("mid2");
    q.add_with_priority("low2", -100);
    // Raising low1 puts it at the back of priority 0; lowering mid1 does nothing.
    q.add_with_priority("low1", 0);
    q.add_with_priority("mid1", -100);
    assert_eq!(q.len(), 5);
    let mut order = Vec::new();
    while let Some(i) = q.try_get() {
        order.push(i);
    }
    assert_eq!(order, ["high", "mid1", "mid2", "low1", "low2"]);
}

#[tokio::test]
async fn the_priority_of_an_add_while_processing_is_kept_for_the_requeue() {
    let q = Queue::new();
    q.add("x");
    let x = q.get().await.unwrap();
    q.add_with_priority("x", 5);
    q.add("y");
    q.done(&x);
    assert_eq!(q.try_get(), Some("x"), "x requeued with priority 5, ahead of y");
}

#[test]
fn exponential_failure_doubles_per_item_and_forget_resets() {
    let l = ItemExponentialFailureRateLimiter::new(ms(1), Duration::from_secs(1));
    let got: Vec<_> = (0..5).map(|_| l.when(&"one")).collect();
    assert_eq!(got, [ms(1), ms(2), ms(4), ms(8), ms(16)]);
    assert_eq!(l.num_requeues(&"one"), 5);
    assert_eq!(l.when(&"two"), ms(1), "per item");
    l.forget(&"one");
    assert_eq!(l.num_requeues(&"one"), 0);
    assert_eq!(l.when(&"one"), ms(1));
}

#[test]
fn exponential_failure_never_overflows() {
    let l = ItemExponentialFailureRateLimiter::new(ms(1), Duration::from_secs(1000));
    for _ in 0..5 {
        l.when(&"x");
    }
    assert_eq!(l.when(&"x"), ms(32));
    for _ in 0..2000 {
        assert!(l.when(&"x") <= Duration::from_secs(1000));
    }
    assert_eq!(l.when(&"x"), Duration::from_secs(1000));
    // A huge base: capped, not wrapped.
    let huge = ItemExponentialFailureRateLimiter::new(Duration::MAX / 2, Duration::from_secs(5));
    assert_eq!(huge.when(&1), Duration::from_secs(5));
    assert_eq!(huge.when(&1), Duration::from_secs(5));
}

#[test]
fn fast_then_slow() {
    let l = ItemFastSlowRateLimiter::new(ms(5), Duration::from_secs(10), 3);
    let got: Vec<_> = (0..5).map(|_| l.when(&"one")).collect();
    assert_eq!(got, [ms(5), ms(5), ms(5), Duration::from_secs(10), Duration::from_secs(10)]);
    assert_eq!(l.num_requeues(&"one"), 5);
    assert_eq!(l.when(&"two"), ms(5));
    l.forget(&"one");
    assert_eq!(l.when(&"one"), ms(5));
}

#[tokio::test(start_paused = true)]
async fn the_bucket_allows_a_burst_then_spaces_by_qps() {
    let l = BucketRateLimiter::new(10.0, 3);
    let burst: Vec<Duration> = (0..3).map(|i| RateLimiter::<u32>::when(&l, &i)).collect();
    assert_eq!(burst, [Duration::ZERO; 3]);
    // Reservations beyond the burst wait 100 ms, 200 ms, ...
    assert_eq!(RateLimiter::<u32>::when(&l, &9).as_millis(), 100);
    assert_eq!(RateLimiter::<u32>::when(&l, &9).as_millis(), 200);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(RateLimiter::<u32>::when(&l, &9), Duration::ZERO, "refilled (up to the burst)");
    assert_eq!(RateLimiter::<u32>::num_requeues(&l, &9), 0);
}

#[test]
fn max_of_takes_the_longest_and_forgets_in_all() {
    let l: MaxOfRateLimiter<&str> = MaxOfRateLimiter::new(vec![
        Box::new(ItemFastSlowRateLimiter::new(ms(5), Duration::from_secs(3), 3)),
        Box::new(ItemExponentialFailureRateLimiter::new(ms(1), Duration::from_secs(1))),
    ]);
    let got: Vec<_> = (0..5).map(|_| l.when(&"one")).collect();
    assert_eq!(got, [ms(5), ms(5), ms(5), Duration::from_secs(3), Duration::from_secs(3)]);
    assert_eq!(l.num_requeues(&"one"), 5);
    l.forget(&"one");
    assert_eq!(l.num_requeues(&"one"), 0);
    assert_eq!(l.when(&"one"), ms(5));
}

#[test]
fn with_max_wait_caps_the_delay() {
    let l = WithMaxWaitRateLimiter::new(
        Box::new(ItemExponentialFailureRateLimiter::new(ms(100), Duration::from_secs(100))),
        ms(250),
    );
    let got: Vec<_> = (0..4).map(|_| l.when(&1)).collect();
    assert_eq!(got, [ms(100), ms(200), ms(250), ms(250)]);
    assert_eq!(l.num_requeues(&1), 4);
}

#[tokio::test(start_paused = true)]
async fn the_default_controller_limiter_is_5ms_exponential_under_a_10qps_bucket() {
    let l = default_controller_rate_limiter::<u32>();
    assert_eq!(l.when(&1), ms(5));
    assert_eq!(l.when(&1), ms(10));
    // 98 more distinct items empty the 100-token burst; the next waits for a token (100 ms).
    for i in 2..100 {
        assert_eq!(l.when(&i), ms(5));
    }
    assert_eq!(l.when(&1000).as_millis(), 100);
}

#[tokio::test(start_paused = true)]
async fn rate_limited_adds_come_back_after_the_backoff_and_forget_resets() {
    let q = RateLimitingQueue::new(ItemExponentialFailureRateLimiter::new(ms(10), Duration::from_secs(1)));
    let start = tokio::time::Instant::now();
    q.add_rate_limited("x");
    assert_eq!(q.get().await, Some("x"));
    assert_eq!(start.elapsed(), ms(10));
    q.done(&"x");
    q.add_rate_limited("x");
    assert_eq!(q.get().await, Some("x"));
    assert_eq!(start.elapsed(), ms(30));
    assert_eq!(q.num_requeues(&"x"), 2);
    q.forget(&"x");
    assert_eq!(q.num_requeues(&"x"), 0);
    q.done(&"x");
}

fn scrape(registry: &Registry) -> HashMap<String, f64> {
    let mut text = String::new();
    encode(&mut text, registry).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn metrics_use_client_go_names_and_count() {
    let mut registry = Registry::default();
    let provider = Arc::new(PrometheusMetrics::new(&mut registry));
    let q = RateLimitingQueue::with_config(
        ItemExponentialFailureRateLimiter::new(ms(10), Duration::from_secs(1)),
        QueueConfig::named("pods").with_metrics(provider),
    );
    q.add("a");
    q.add("a");
    q.add("b");
    let l = r#"{name="pods",controller="pods"}"#;
    let m = scrape(&registry);
    assert_eq!(m[&format!("workqueue_adds_total{l}")], 2.0, "the repeat is not counted");
    assert_eq!(m[&format!("workqueue_depth{l}")], 2.0);
    tokio::time::advance(ms(300)).await;
    let a = q.get().await.unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    let m = scrape(&registry);
    assert_eq!(m[&format!("workqueue_depth{l}")], 1.0);
    assert_eq!(m[&format!("workqueue_queue_duration_seconds_count{l}")], 1.0);
    assert!((m[&format!("workqueue_queue_duration_seconds_sum{l}")] - 0.3).abs() < 1e-6);
    assert!((m[&format!("workqueue_unfinished_work_seconds{l}")] - 2.0).abs() < 1e-6);
    assert!((m[&format!("workqueue_longest_running_processor_seconds{l}")] - 2.0).abs() < 1e-6);
    q.done(&a);
    q.add_rate_limited("a");
    let m = scrape(&registry);
    assert_eq!(m[&format!("workqueue_work_duration_seconds_count{l}")], 1.0);
    assert!((m[&format!("workqueue_work_duration_seconds_sum{l}")] - 2.0).abs() < 1e-6);
    assert_eq!(m[&format!("workqueue_unfinished_work_seconds{l}")], 0.0);
    assert_eq!(m[&format!("workqueue_retries_total{l}")], 1.0);
    // A dropped queue disappears from the in-flight gauges.
    drop(q);
    let m = scrape(&registry);
    assert!(!m.contains_key(&format!("workqueue_unfinished_work_seconds{l}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_workers_never_hold_one_item_at_once_and_lose_nothing() {
    let q: Queue<u32> = Queue::new();
    let holding = Arc::new(Mutex::new(HashSet::new()));
    let processed = Arc::new(Mutex::new(HashMap::<u32, u32>::new()));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (q, holding, processed) = (q.clone(), holding.clone(), processed.clone());
            tokio::spawn(async move {
                while let Some(item) = q.get().await {
                    assert!(holding.lock().insert(item), "{item} held by two workers");
                    tokio::task::yield_now().await;
                    *processed.lock().entry(item).or_default() += 1;
                    holding.lock().remove(&item);
                    q.done(&item);
                }
            })
        })
        .collect();
    for round in 0..200u32 {
        for item in 0..50 {
            q.add(item);
        }
        if round % 10 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // Every item is processed after its last add.
    while !q.is_empty() || q.processing() > 0 {
        tokio::time::sleep(ms(5)).await;
    }
    q.shut_down_with_drain().await;
    for w in workers {
        w.await.unwrap();
    }
    let processed = processed.lock();
    assert_eq!(processed.len(), 50);
    assert!(processed.values().all(|n| *n >= 1));
    let total: u32 = processed.values().sum();
    assert!(total < 200 * 50, "adds collapsed: {total} reconciles for 10000 adds");
}

/// The model: a list of queued items with priority and order stamp, and the processing and
/// dirty-while-processing sets.
#[derive(Default, Debug)]
struct Model {
    queued: Vec<(u8, i32, u64)>,
    processing: HashSet<u8>,
    dirty_while_processing: HashMap<u8, i32>,
    stamp: u64,
}

impl Model {
    fn add(&mut self, item: u8, priority: i32) {
        self.stamp += 1;
        if let Some(p) = self.dirty_while_processing.get_mut(&item) {
            *p = (*p).max(priority);
        } else if self.processing.contains(&item) {
            self.dirty_while_processing.insert(item, priority);
        } else if let Some(q) = self.queued.iter_mut().find(|q| q.0 == item) {
            if priority > q.1 {
                *q = (item, priority, self.stamp);
            }
        } else {
            self.queued.push((item, priority, self.stamp));
        }
    }
    fn get(&mut self) -> Option<u8> {
        let best = self
            .queued
            .iter()
            .enumerate()
            .max_by_key(|(_, (_, p, s))| (*p, std::cmp::Reverse(*s)))
            .map(|(i, _)| i)?;
        let (item, _, _) = self.queued.remove(best);
        self.processing.insert(item);
        Some(item)
    }
    fn done(&mut self, item: u8) {
        if self.processing.remove(&item)
            && let Some(p) = self.dirty_while_processing.remove(&item)
        {
            self.stamp += 1;
            self.queued.push((item, p, self.stamp));
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Add(u8, i32),
    Get,
    Done(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, prop_oneof![Just(0), Just(0), Just(-100), Just(5)]).prop_map(|(i, p)| Op::Add(i, p)),
        Just(Op::Get),
        (0u8..6).prop_map(Op::Done),
    ]
}

proptest! {
    #[test]
    fn the_queue_behaves_like_its_model(ops in proptest::collection::vec(op(), 1..200)) {
        let q = Queue::new();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Add(i, p) => { q.add_with_priority(i, p); model.add(i, p); }
                Op::Get => prop_assert_eq!(q.try_get(), model.get()),
                Op::Done(i) => { q.done(&i); model.done(i); }
            }
            prop_assert_eq!(q.len(), model.queued.len());
            prop_assert_eq!(q.processing(), model.processing.len());
        }
        // Nothing lost: finishing everything hands out each pending item exactly once.
        let mut rest = Vec::new();
        loop {
            for i in model.processing.clone() { q.done(&i); model.done(i); }
            match (q.try_get(), model.get()) {
                (None, None) => break,
                (a, b) => { prop_assert_eq!(a, b); rest.push(a); }
            }
        }
        let distinct: HashSet<_> = rest.iter().collect();
        prop_assert_eq!(distinct.len(), rest.len(), "an item was handed out twice: {:?}", rest);
        prop_assert_eq!(q.processing(), 0);
    }
}
