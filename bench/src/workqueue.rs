//! Suite `workqueue`: krust's work queue, and kube-rs 5's `scheduler` (the dedup-and-delay queue
//! inside its `Controller`) where it does the same thing. In one process (nothing here is about
//! RSS), runs interleaved, medians.
//!
//! 1. add/get/done cycles, 1 producer task and 1 worker task on a one-thread runtime (one core).
//!    kube-rs: requests sent into its scheduler through a channel and taken out (it has no
//!    `done`: its controller holds a key back while it is reconciled).
//! 2. The same with 8 workers on a two-thread runtime (2 cores).
//! 3. Cycles (get, done, add a new key) with 100, 100k, 1M and 2M distinct keys queued, on one
//!    thread without a runtime: past the CPU caches a cycle costs two cache misses (the dedup
//!    map's lookup on add and removal on get), and nothing grows with the depth past that.
//! 4. `add_after` of 100,000 items due within 1 s: adds/s, and how late they come out (p50/p99,
//!    sampled on every 64th item so that reading the clock does not slow the adds).
//!    kube-rs: 100,000 `ScheduleRequest`s due within 1 s into its scheduler.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use krust_runtime::workqueue::Queue;

use crate::stats::{median, option, percentile};

fn one_core() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn two_cores() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

/// Items/s through a queue with `workers` worker tasks and one producer adding `n` keys.
async fn krust_cycles(n: u64, workers: usize) -> f64 {
    let q: Queue<u64> = Queue::new();
    let start = Instant::now();
    let producer = {
        let q = q.clone();
        tokio::spawn(async move {
            for i in 0..n {
                q.add(i);
                if i % 256 == 255 {
                    tokio::task::yield_now().await;
                }
            }
            q.shut_down();
        })
    };
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let q = q.clone();
            tokio::spawn(async move {
                let mut done = 0u64;
                while let Some(item) = q.get().await {
                    q.done(&item);
                    done += 1;
                }
                done
            })
        })
        .collect();
    let _ = producer.await;
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap_or(0);
    }
    assert_eq!(total, n, "every item processed once");
    n as f64 / start.elapsed().as_secs_f64()
}

/// Cycles/s (get, done, add a new key) with `depth` distinct keys queued throughout.
fn krust_deep(depth: u64, cycles: u64) -> f64 {
    let q: Queue<u64> = Queue::new();
    for i in 0..depth {
        q.add(i);
    }
    let start = Instant::now();
    for next in depth..depth + cycles {
        if let Some(item) = q.try_get() {
            q.done(&item);
        }
        q.add(next);
    }
    let rate = cycles as f64 / start.elapsed().as_secs_f64();
    assert_eq!(q.len() as u64, depth);
    rate
}

/// kube-rs' scheduler: requests due now sent by one task, taken out by another.
async fn kube_cycles(n: u64) -> f64 {
    use kube::runtime::scheduler::{ScheduleRequest, scheduler};
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut out = std::pin::pin!(scheduler(requests(rx)));
    let start = Instant::now();
    let producer = tokio::spawn(async move {
        for i in 0..n {
            let _ = tx.send(ScheduleRequest { message: i, run_at: tokio::time::Instant::now() });
            if i % 256 == 255 {
                tokio::task::yield_now().await;
            }
        }
    });
    let mut got = 0u64;
    while got < n {
        match out.next().await {
            Some(_) => got += 1,
            None => break,
        }
    }
    let _ = producer.await;
    n as f64 / start.elapsed().as_secs_f64()
}

/// A tokio channel as the request stream of kube-rs' scheduler.
fn requests<T>(rx: tokio::sync::mpsc::UnboundedReceiver<T>) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

fn spread(i: u64, n: u64) -> Duration {
    // A fixed permutation of [0, 1 s) so that the timers are not added in order.
    let slot = (i.wrapping_mul(2_654_435_761)) % n;
    Duration::from_nanos(slot * 1_000_000_000 / n)
}

/// (adds/s, p50 ms late, p99 ms late) for `n` timers due within 1 s.
async fn krust_timers(n: u64) -> (f64, f64, f64) {
    let q: Queue<u64> = Queue::new();
    // add_after is relative to the add: remember when each was added (outside the timing).
    let mut added = vec![tokio::time::Instant::now(); n as usize];
    let start = Instant::now();
    for i in 0..n {
        q.add_after(i, spread(i, n));
        if i % 64 == 0 {
            added[i as usize] = tokio::time::Instant::now();
        }
    }
    let adds = n as f64 / start.elapsed().as_secs_f64();
    let mut late = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let Some(item) = q.get().await else { break };
        if item % 64 != 0 {
            q.done(&item);
            continue;
        }
        let due = added[item as usize] + spread(item, n);
        late.push(tokio::time::Instant::now().saturating_duration_since(due).as_secs_f64() * 1e3);
        q.done(&item);
    }
    late.sort_by(f64::total_cmp);
    (adds, percentile(&late, 0.5), percentile(&late, 0.99))
}

async fn kube_timers(n: u64) -> (f64, f64, f64) {
    use kube::runtime::scheduler::{ScheduleRequest, scheduler};
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut out = std::pin::pin!(scheduler(requests(rx)));
    let base = tokio::time::Instant::now();
    let start = Instant::now();
    for i in 0..n {
        let _ = tx.send(ScheduleRequest { message: i, run_at: base + spread(i, n) });
    }
    let adds = n as f64 / start.elapsed().as_secs_f64();
    let mut late = Vec::with_capacity(n as usize);
    let mut got = 0;
    while got < n {
        let Some(item) = out.next().await else { break };
        got += 1;
        if item % 64 != 0 {
            continue;
        }
        let due = base + spread(item, n);
        late.push(tokio::time::Instant::now().saturating_duration_since(due).as_secs_f64() * 1e3);
    }
    late.sort_by(f64::total_cmp);
    (adds, percentile(&late, 0.5), percentile(&late, 0.99))
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let n: u64 = option(args, "--items", 2_000_000)?;
    let deep: u64 = option(args, "--deep", 1_000_000)?;
    let timers: u64 = option(args, "--timers", 100_000)?;
    let runs: usize = option(args, "--runs", 5)?;
    let mut one = (Vec::new(), Vec::new());
    let mut eight = Vec::new();
    let depths = [100, 100_000, deep, 2 * deep];
    let mut depth: Vec<Vec<f64>> = vec![Vec::new(); depths.len()];
    let mut kube_one = Vec::new();
    let mut tk = (Vec::new(), Vec::new(), Vec::new());
    let mut tb = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        one.0.push(one_core()?.block_on(krust_cycles(n, 1)));
        kube_one.push(one_core()?.block_on(kube_cycles(n)));
        one.1.push(two_cores()?.block_on(krust_cycles(n, 1)));
        eight.push(two_cores()?.block_on(krust_cycles(n, 8)));
        for (d, samples) in depths.iter().zip(depth.iter_mut()) {
            samples.push(krust_deep(*d, n));
        }
        let (a, p50, p99) = one_core()?.block_on(krust_timers(timers));
        tk.0.push(a);
        tk.1.push(p50);
        tk.2.push(p99);
        let (a, p50, p99) = one_core()?.block_on(kube_timers(timers));
        tb.0.push(a);
        tb.1.push(p50);
        tb.2.push(p99);
    }
    let (k1, k1_2, k8, kb) = (median(&one.0), median(&one.1), median(&eight), median(&kube_one));
    let rates: Vec<f64> = depth.iter().map(|d| median(d)).collect();
    let (shallow, deep_rate, deeper) = (rates[0], rates[2], rates[3]);
    println!("workqueue, {n} items, {runs} runs (medians)");
    println!("                                        krust     kube-rs");
    println!("add/get/done, 1 producer + 1 worker, 1 core   {k1:>12.0} {kb:>12.0}   {:.2}x", k1 / kb);
    println!("add/get/done, 1 producer + 1 worker, 2 cores  {k1_2:>12.0}");
    println!("add/get/done, 1 producer + 8 workers, 2 cores {k8:>12.0}");
    for (d, r) in depths.iter().zip(&rates) {
        println!("cycles with {d:>8} keys queued              {r:>12.0}   ({:.2} of 100 keys)", r / shallow);
    }
    println!(
        "add_after {timers} timers: adds/s              {:>12.0} {:>12.0}",
        median(&tk.0),
        median(&tb.0)
    );
    println!(
        "  lateness p50 / p99 (ms)                 {:>6.2}/{:<6.2} {:>6.2}/{:<6.2}",
        median(&tk.1),
        median(&tk.2),
        median(&tb.1),
        median(&tb.2)
    );
    println!();
    println!("result queue_cycles_per_sec_kube_rs {kb:.0}");
    println!("result queue_cycles_per_sec_8_workers {k8:.0}");
    println!("result queue_deep_over_shallow {:.3}", deep_rate / shallow);
    println!("result queue_2x_deep_over_deep {:.3}", deeper / deep_rate);
    println!("result timers_adds_per_sec {:.0}", median(&tk.0));
    println!("result timers_adds_per_sec_kube_rs {:.0}", median(&tb.0));
    println!("result timers_late_p99_ms {:.3}", median(&tk.2));
    println!("result timers_late_p99_ms_kube_rs {:.3}", median(&tb.2));
    println!("result queue_cycles_per_sec {k1:.0}");
    Ok(())
}
