//! Suite `leader`: leader election failover. Three replicas (each its own process, a krust
//! `Manager` with leader election) campaign for one Lease on krust-apiserver with client-go's
//! default durations scaled down 5× (lease 3 s, renew deadline 2 s, retry 0.4 s). The leader is
//! killed with SIGKILL, or stopped with SIGTERM (it releases the lease), alternately, and a new
//! replica replaces it each time. Measured: the time from the kill/stop to the next replica's
//! start of leadership, and whether any two leadership intervals overlapped (a killed
//! leader's interval ends at the kill). kube-rs has no leader election (kube-rs #485), so there
//! is no side-by-side.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use parking_lot::Mutex;

use crate::stats::{ServerProcess, median, option};

const LEASE: f64 = 3.0;
const RENEW: f64 = 2.0;
const RETRY: f64 = 0.4;

fn unix_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

type Events = Arc<Mutex<Vec<(String, String, u128)>>>;

struct Replica {
    id: String,
    child: Child,
}

fn spawn(exe: &std::path::Path, url: &str, id: &str, events: &Events) -> anyhow::Result<Replica> {
    let mut child = Command::new(exe)
        .args(["leader-replica", url, id])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let events = events.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [id, kind, ms] = words[..]
                && let Ok(ms) = ms.parse()
            {
                events.lock().push((id.to_string(), kind.to_string(), ms));
            }
        }
    });
    Ok(Replica { id: id.to_string(), child })
}

fn leader(events: &Events) -> Option<String> {
    let mut leading: Vec<String> = Vec::new();
    for (id, kind, _) in events.lock().iter() {
        if kind == "LEADING" {
            leading.push(id.clone());
        } else {
            leading.retain(|l| l != id);
        }
    }
    leading.last().cloned()
}

fn wait_leader(events: &Events, not: Option<&str>, timeout: Duration) -> anyhow::Result<(String, u128)> {
    let start = Instant::now();
    loop {
        if let Some(id) = leader(events).filter(|id| Some(id.as_str()) != not) {
            let since = events.lock().iter().rev().find(|(i, k, _)| *i == id && k == "LEADING").map(|e| e.2);
            if let Some(since) = since {
                return Ok((id, since));
            }
        }
        anyhow::ensure!(start.elapsed() < timeout, "no leader within {timeout:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let rounds: usize = option(args, "--rounds", 20)?;
    let exe = std::env::current_exe()?;
    let server = ServerProcess::start()?;
    let url = server.url.clone();
    let events: Events = Arc::default();
    let mut next = 0;
    let mut new_id = || {
        next += 1;
        format!("replica-{next}")
    };
    let outcome = (|| -> anyhow::Result<()> {
        let mut replicas = Vec::new();
        for _ in 0..3 {
            replicas.push(spawn(&exe, &url, &new_id(), &events)?);
        }
        wait_leader(&events, None, Duration::from_secs(20))?;
        let (mut kills, mut releases, mut killed) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let current = wait_leader(&events, None, Duration::from_secs(20))?.0;
            let i = replicas
                .iter()
                .position(|r: &Replica| r.id == current)
                .ok_or_else(|| anyhow::anyhow!("leader {current} unknown"))?;
            let mut replica = replicas.remove(i);
            let graceful = round % 2 == 1;
            let at = unix_ms();
            if graceful {
                Command::new("kill").args(["-TERM", &replica.child.id().to_string()]).status()?;
            } else {
                replica.child.kill()?;
                killed.push((current.clone(), at));
                // A killed replica says nothing more: its leadership ends here.
                events.lock().push((current.clone(), "KILLED".into(), at));
            }
            replica.child.wait()?;
            let (_, since) = wait_leader(&events, Some(&current), Duration::from_secs(20))?;
            let seconds = since.saturating_sub(at) as f64 / 1000.0;
            if graceful {
                releases.push(seconds)
            } else {
                kills.push(seconds)
            }
            eprintln!("round {round}: {} failover {seconds:.3} s", if graceful { "release" } else { "kill" });
            replicas.push(spawn(&exe, &url, &new_id(), &events)?);
            std::thread::sleep(Duration::from_millis(600));
        }
        for mut r in replicas {
            let _ = Command::new("kill").args(["-TERM", &r.child.id().to_string()]).status();
            let _ = r.child.wait();
        }
        let events = events.lock().clone();
        let mut intervals: Vec<(u128, u128)> = Vec::new();
        for (id, kind, ms) in &events {
            if kind == "LEADING" {
                let end = events
                    .iter()
                    .find(|(i, k, m)| i == id && k == "STOPPED" && m >= ms)
                    .map(|e| e.2)
                    .or_else(|| killed.iter().find(|(i, _)| i == id).map(|e| e.1))
                    .unwrap_or(u128::MAX);
                intervals.push((*ms, end));
            }
        }
        intervals.sort();
        let overlaps = intervals.windows(2).filter(|p| p[1].0 < p[0].1).count();
        let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        println!(
            "leader: 3 replicas, lease {LEASE} s / renew deadline {RENEW} s / retry {RETRY} s, {rounds} rounds"
        );
        println!("                      kills ({})   releases ({})", kills.len(), releases.len());
        println!("failover median (s)   {:>10.3} {:>14.3}", median(&kills), median(&releases));
        println!("failover max (s)      {:>10.3} {:>14.3}", max(&kills), max(&releases));
        println!(
            "bounds (s)            {:>10.3} {:>14.3}   (lease + 2 × 1.2 × retry; 1.2 × retry)",
            LEASE + 2.0 * 1.2 * RETRY,
            1.2 * RETRY
        );
        println!("leadership intervals {}, overlapping {overlaps}", intervals.len());
        println!();
        println!("result failover_kill_median_s {:.3}", median(&kills));
        println!("result failover_release_median_s {:.3}", median(&releases));
        println!("result failover_kill_max_s {:.3}", max(&kills));
        println!("result failover_release_max_s {:.3}", max(&releases));
        println!("result overlapping_leadership_intervals {overlaps}");
        println!("result lease_duration_s {LEASE}");
        println!("result retry_period_s {RETRY}");
        Ok(())
    })();
    drop(server);
    outcome
}

/// The child: a manager with leader election whose only work prints when it leads.
pub fn replica(args: &[String]) -> anyhow::Result<()> {
    let [url, id] = args else { anyhow::bail!("leader-replica <url> <identity>") };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(async {
        use krust_runtime::{leader::LeaderElectionConfig, manager::Manager};
        let manager = Manager::builder(krust_client::Config::new(url.parse()?))
            .without_metrics_server()
            .identity(id.clone())
            .leader_election("bench-leader", "default")
            .leader_election_config(LeaderElectionConfig {
                lease_duration: Duration::from_secs_f64(LEASE),
                renew_deadline: Duration::from_secs_f64(RENEW),
                retry_period: Duration::from_secs_f64(RETRY),
                release_on_cancel: true,
            })
            .graceful_shutdown_timeout(Duration::from_secs(2))
            .build()?;
        let me = id.clone();
        manager.add_runnable("work", move |stop| {
            let me = me.clone();
            async move {
                println!("{me} LEADING {}", unix_ms());
                let _ = std::io::stdout().flush();
                stop.cancelled().await;
                println!("{me} STOPPED {}", unix_ms());
                let _ = std::io::stdout().flush();
                Ok(())
            }
        });
        manager.run_until_signal().await?;
        Ok::<_, anyhow::Error>(())
    })
}
