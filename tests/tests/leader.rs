//! Leader election against krust-apiserver: client-go's leaderelection_test cases (acquire when
//! there is no lease, when it is released, when it expired; not while held; renew; release on
//! cancel; a race decided by a conflict), faults (the server failing or hanging longer than the
//! renew deadline), and 3 replicas of the example binary killed and stopped repeatedly.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use krust_apiserver::ApiServer;
use krust_client::{Clientset, CreateOptions};
use krust_runtime::leader::{LeaderCallbacks, LeaderElectionConfig, LeaderElector, LeaseLock};
use krust_tests::{ApiServerProcess, example_binary};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

fn fast() -> LeaderElectionConfig {
    LeaderElectionConfig {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1500),
        retry_period: Duration::from_millis(500),
        release_on_cancel: true,
    }
}

fn clientset(server: &ApiServer) -> Clientset {
    Clientset::new(&server.kubeconfig().config).unwrap()
}

type Log = Arc<Mutex<Vec<(String, Instant)>>>;

/// Starts a candidate; returns (leading-since events, stop token, task).
fn candidate(
    cs: &Clientset,
    id: &str,
    config: LeaderElectionConfig,
) -> (Log, CancellationToken, tokio::task::JoinHandle<bool>) {
    let elector = LeaderElector::new(LeaseLock::new(cs, "default", "test-lease", id), config).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let cancel = CancellationToken::new();
    let (l1, l2) = (log.clone(), log.clone());
    let callbacks = LeaderCallbacks::new()
        .on_started_leading(move |work| async move {
            l1.lock().push(("started".to_string(), Instant::now()));
            work.cancelled().await;
        })
        .on_stopped_leading(move || l2.lock().push(("stopped".to_string(), Instant::now())));
    let c = cancel.clone();
    let task = tokio::spawn(async move { elector.run(callbacks, c).await });
    (log, cancel, task)
}

async fn wait_until(what: &str, timeout: Duration, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn started(log: &Mutex<Vec<(String, Instant)>>) -> bool {
    log.lock().iter().any(|(e, _)| e == "started")
}

async fn lease(cs: &Clientset) -> LeaseSpec {
    cs.coordination_v1().leases("default").get("test-lease", &Default::default()).await.unwrap().spec.unwrap()
}

async fn put_lease(cs: &Clientset, holder: &str, renewed_ago: Duration) {
    let when = Timestamp::now() - renewed_ago;
    let lease = Lease {
        metadata: ObjectMeta { name: Some("test-lease".into()), ..Default::default() },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(2),
            acquire_time: Some(MicroTime(when)),
            renew_time: Some(MicroTime(when)),
            lease_transitions: Some(3),
            ..Default::default()
        }),
    };
    cs.coordination_v1().leases("default").create(&lease, &CreateOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquires_when_there_is_no_lease_and_renews() {
    let server = ApiServer::builder().start().await.unwrap();
    let cs = clientset(&server);
    let (log, cancel, task) = candidate(&cs, "a", fast());
    wait_until("leading", Duration::from_secs(3), || started(&log)).await;
    let first = lease(&cs).await;
    assert_eq!(first.holder_identity.as_deref(), Some("a"));
    assert_eq!(first.lease_duration_seconds, Some(2));
    assert_eq!(first.lease_transitions, Some(0));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let renewed = lease(&cs).await;
    assert!(renewed.renew_time.unwrap().0 > first.renew_time.unwrap().0, "renewed");
    assert_eq!(renewed.acquire_time, first.acquire_time, "acquire time kept on renewal");
    assert_eq!(renewed.lease_transitions, Some(0));
    cancel.cancel();
    assert!(task.await.unwrap());
    // Released on cancel: the holder is empty.
    assert_eq!(lease(&cs).await.holder_identity.as_deref(), Some(""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquires_a_released_lease_at_once() {
    let server = ApiServer::builder().start().await.unwrap();
    let cs = clientset(&server);
    put_lease(&cs, "", Duration::ZERO).await;
    let start = Instant::now();
    let (log, cancel, _task) = candidate(&cs, "b", fast());
    wait_until("leading", Duration::from_secs(2), || started(&log)).await;
    assert!(start.elapsed() < Duration::from_millis(700), "no waiting for an unheld lease");
    assert_eq!(lease(&cs).await.lease_transitions, Some(4), "a transition counted");
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn does_not_take_a_held_lease_and_takes_it_once_expired_by_its_own_clock() {
    let server = ApiServer::builder().start().await.unwrap();
    let cs = clientset(&server);
    // Held by "other", renewed (by its timestamp) an hour ago: the timestamp does not matter,
    // only how long this candidate sees the record unchanged.
    put_lease(&cs, "other", Duration::from_secs(3600)).await;
    let start = Instant::now();
    let (log, cancel, _task) = candidate(&cs, "c", fast());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!started(&log), "took a lease it had not seen unchanged for lease_duration");
    wait_until("leading after expiry", Duration::from_secs(4), || started(&log)).await;
    let took = log.lock()[0].1 - start;
    assert!(took >= Duration::from_secs(2) && took < Duration::from_millis(3300), "took it after {took:?}");
    assert_eq!(lease(&cs).await.holder_identity.as_deref(), Some("c"));
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_leader_keeps_the_lease_and_a_release_hands_it_over_quickly() {
    let server = ApiServer::builder().start().await.unwrap();
    let cs = clientset(&server);
    let (a_log, a_cancel, a_task) = candidate(&cs, "a", fast());
    wait_until("a leads", Duration::from_secs(3), || started(&a_log)).await;
    let (b_log, b_cancel, _b) = candidate(&cs, "b", fast());
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!started(&b_log), "b took a lease a keeps renewing");
    a_cancel.cancel();
    let released = Instant::now();
    a_task.await.unwrap();
    wait_until("b leads after the release", Duration::from_secs(2), || started(&b_log)).await;
    let handover = b_log.lock()[0].1 - released;
    assert!(handover < Duration::from_millis(900), "handover after release took {handover:?}");
    b_cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_candidates_for_an_expired_lease_one_wins_by_conflict() {
    let server = ApiServer::builder().start().await.unwrap();
    let cs = clientset(&server);
    put_lease(&cs, "gone", Duration::ZERO).await;
    let mut candidates = Vec::new();
    for id in ["x", "y", "z"] {
        candidates.push(candidate(&cs, id, fast()));
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let leaders = candidates.iter().filter(|(log, _, _)| started(log)).count();
    assert_eq!(leaders, 1, "exactly one of three took the expired lease");
    assert_eq!(lease(&cs).await.lease_transitions, Some(4), "one transition, not three");
    for (_, cancel, _) in candidates {
        cancel.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_renew_steps_down_before_its_lease_expires() {
    for fault in ["errors", "hang"] {
        let server = ApiServer::builder().start().await.unwrap();
        let cs = clientset(&server);
        let (a_log, a_cancel, _a) = candidate(&cs, "a", fast());
        wait_until("a leads", Duration::from_secs(3), || started(&a_log)).await;
        let (b_log, b_cancel, _b) = candidate(&cs, "b", fast());
        tokio::time::sleep(Duration::from_millis(700)).await;
        let renewed_before = lease(&cs).await.renew_time.unwrap().0;
        let fault_start = Instant::now();
        match fault {
            // 500s for every request (40 × 500 ms of retries is far past the renew deadline).
            "errors" => server.fail_next(200, 500, None),
            // No answer for 3 s.
            _ => server.set_latency(Some(Duration::from_secs(3))),
        }
        wait_until("a steps down", Duration::from_secs(4), || {
            a_log.lock().iter().any(|(e, _)| e == "stopped")
        })
        .await;
        let stopped = a_log.lock().iter().find(|(e, _)| e == "stopped").unwrap().1;
        // The last renewal is at most one retry period before the fault; a stops within the
        // renew deadline of it, before the lease (2 s) could expire for b.
        let since_fault = stopped - fault_start;
        assert!(
            since_fault < Duration::from_millis(1900),
            "{fault}: stepped down {since_fault:?} after the fault"
        );
        assert!(!started(&b_log), "{fault}: b led while the server was failing");
        // The server comes back: exactly one leader resumes.
        server.fail_next(0, 500, None);
        server.set_latency(None);
        let after = Instant::now();
        wait_until("a leader again", Duration::from_secs(8), || started(&b_log)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let spec = lease(&cs).await;
        let holder = spec.holder_identity.clone().unwrap_or_default();
        assert!(holder == "a" || holder == "b", "{fault}: holder {holder:?}");
        assert!(spec.renew_time.unwrap().0 > renewed_before, "{fault}: renewed again");
        let b_leads = started(&b_log) && !b_log.lock().iter().any(|(e, _)| e == "stopped");
        assert_eq!(
            b_leads,
            holder == "b",
            "{fault}: the lease and the leaders agree (after {:?})",
            after.elapsed()
        );
        a_cancel.cancel();
        b_cancel.cancel();
    }
}

// The multi-process test: 3 replicas of the example, the leader killed or stopped repeatedly.

struct Replica {
    id: String,
    child: Child,
}

fn unix_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

type Events = Arc<Mutex<Vec<(String, String, u128)>>>;

fn spawn_replica(kubeconfig: &std::path::Path, id: &str, events: &Events) -> Replica {
    let mut child = Command::new(example_binary("leader_election"))
        .args(["--kubeconfig", kubeconfig.to_str().unwrap(), "--identity", id])
        .args(["--lease-duration", "2", "--renew-deadline", "1.5", "--retry-period", "0.5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let events = events.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [id, kind, stamp] = words[..]
                && (kind == "LEADING" || kind == "STOPPED")
                && let Some(ms) = stamp.split('=').nth(1).and_then(|v| v.parse().ok())
            {
                events.lock().push((id.to_string(), kind.to_string(), ms));
            }
        }
    });
    Replica { id: id.to_string(), child }
}

fn current_leader(events: &Events) -> Option<String> {
    let events = events.lock();
    let mut leading: Vec<String> = Vec::new();
    for (id, kind, _) in events.iter() {
        if kind == "LEADING" {
            leading.push(id.clone());
        } else {
            leading.retain(|l| l != id);
        }
    }
    leading.last().cloned()
}

fn wait_new_leader(events: &Events, not: &str, timeout: Duration) -> (String, u128) {
    let start = Instant::now();
    loop {
        if let Some(id) = current_leader(events).filter(|id| id != not) {
            let snapshot = events.lock().clone();
            if let Some((_, _, ms)) = snapshot.iter().rev().find(|(i, kind, _)| *i == id && kind == "LEADING")
            {
                return (id, *ms);
            }
        }
        assert!(start.elapsed() < timeout, "no new leader within {timeout:?}: {:?}", events.lock());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn three_replicas_never_lead_together_and_fail_over_in_time() {
    let server = ApiServerProcess::start(&[]);
    let kubeconfig = server.kubeconfig();
    let events: Events = Arc::default();
    let next = AtomicUsize::new(0);
    let new_id = || format!("replica-{}", next.fetch_add(1, Ordering::SeqCst));
    let mut replicas: Vec<Replica> = (0..3).map(|_| spawn_replica(&kubeconfig, &new_id(), &events)).collect();
    let (lease, retry) = (2000u128, 500u128);
    let start = Instant::now();
    while current_leader(&events).is_none() {
        assert!(start.elapsed() < Duration::from_secs(15), "no first leader");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut ends: Vec<(String, u128)> = Vec::new();
    let mut kill_failovers = Vec::new();
    let mut release_failovers = Vec::new();
    for round in 0..5 {
        let leader = current_leader(&events).unwrap();
        let i = replicas.iter().position(|r| r.id == leader).unwrap();
        let mut replica = replicas.remove(i);
        let graceful = round % 2 == 1;
        let stop_ms = unix_ms();
        if graceful {
            Command::new("kill").args(["-TERM", &replica.child.id().to_string()]).status().unwrap();
            replica.child.wait().unwrap();
        } else {
            replica.child.kill().unwrap(); // SIGKILL
            replica.child.wait().unwrap();
            ends.push((leader.clone(), stop_ms));
            // A killed replica says nothing more: its leadership ends here.
            events.lock().push((leader.clone(), "KILLED".into(), stop_ms));
        }
        let (_, since) = wait_new_leader(&events, &leader, Duration::from_secs(10));
        let failover = since.saturating_sub(stop_ms);
        if graceful {
            release_failovers.push(failover);
        } else {
            kill_failovers.push(failover);
        }
        replicas.push(spawn_replica(&kubeconfig, &new_id(), &events));
        std::thread::sleep(Duration::from_millis(800));
    }
    for mut r in replicas {
        let _ = Command::new("kill").args(["-TERM", &r.child.id().to_string()]).status();
        let _ = r.child.wait();
    }
    // Leadership intervals: LEADING .. STOPPED (or the SIGKILL).
    let events = events.lock().clone();
    let mut intervals: Vec<(u128, u128, String)> = Vec::new();
    for (id, kind, ms) in &events {
        if kind == "LEADING" {
            let end = events
                .iter()
                .find(|(i, k, m)| i == id && k == "STOPPED" && m >= ms)
                .map(|(_, _, m)| *m)
                .or_else(|| ends.iter().find(|(i, _)| i == id).map(|(_, m)| *m))
                .unwrap_or(u128::MAX);
            intervals.push((*ms, end, id.clone()));
        }
    }
    intervals.sort();
    for pair in intervals.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "overlapping leadership: {pair:?}");
    }
    // After a kill: within the lease duration plus up to two jittered retry periods (one to see
    // the last renewal, one to act once it expired).
    for f in &kill_failovers {
        assert!(
            *f <= lease + 2 * (retry * 12 / 10) + 300,
            "failover after a kill took {f} ms: {kill_failovers:?}"
        );
    }
    // After a graceful stop (lease released): within one jittered retry period.
    for f in kill_failovers.iter().chain(&release_failovers) {
        assert!(
            *f > 0,
            "a new leader must start after the old one stopped: {kill_failovers:?} {release_failovers:?}"
        );
    }
    for f in &release_failovers {
        assert!(*f <= retry * 12 / 10 + 300, "failover after a release took {f} ms: {release_failovers:?}");
    }
    assert_eq!(kill_failovers.len(), 3);
    assert_eq!(release_failovers.len(), 2);
}

/// A reconciler counting its calls.
struct Count(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl krust_runtime::controller::Reconciler for Count {
    type Error = std::convert::Infallible;
    async fn reconcile(
        &self,
        _req: krust_runtime::controller::Request,
        _ctx: &krust_runtime::controller::Context,
    ) -> Result<krust_runtime::controller::Action, Self::Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(krust_runtime::controller::Action::done())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_run_controllers_only_while_leading_and_hand_over_on_shutdown() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use krust_runtime::{controller::Controller, manager::Manager};
    let server = ApiServer::builder().start().await.unwrap();
    let cs = clientset(&server);
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": "a"}})).unwrap();
    cs.core_v1().config_maps("default").create(&cm, &CreateOptions::default()).await.unwrap();
    let start = |id: &str, count: Arc<AtomicUsize>| {
        let manager = Manager::builder(server.kubeconfig().config)
            .metrics_addr("127.0.0.1:0")
            .identity(id)
            .leader_election("managers", "default")
            .leader_election_config(fast())
            .build()
            .unwrap();
        Controller::for_::<ConfigMap>().build(Count(count)).register(&manager).unwrap();
        let task = tokio::spawn(manager.clone().run());
        (manager, task)
    };
    let (a_count, b_count) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, a_task) = start("a", a_count.clone());
    wait_until("a reconciles", Duration::from_secs(5), || a_count.load(Ordering::SeqCst) > 0).await;
    let (b, b_task) = start("b", b_count.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(b_count.load(Ordering::SeqCst), 0, "the standby did not reconcile");
    assert!(b.is_ready(), "a standby with warm caches is ready");
    let metrics = |m: &Manager| {
        let addr = m.local_addr().unwrap();
        let config = krust_client::Config::new(format!("http://{addr}").parse().unwrap());
        async move {
            let rest = krust_client::RestClient::unversioned(&config).unwrap();
            let r = rest.get().abs_path("/metrics").send().await.unwrap();
            String::from_utf8_lossy(r.raw_body()).to_string()
        }
    };
    assert!(metrics(&a).await.contains(r#"leader_election_master_status{name="managers"} 1"#));
    assert!(metrics(&b).await.contains(r#"leader_election_master_status{name="managers"} 0"#));
    // a shuts down gracefully: it releases the lease, b takes over at its next retry.
    a.shutdown_token().cancel();
    a_task.await.unwrap().unwrap();
    let stopped = Instant::now();
    wait_until("b reconciles", Duration::from_secs(3), || b_count.load(Ordering::SeqCst) > 0).await;
    assert!(stopped.elapsed() < Duration::from_millis(1500), "handover took {:?}", stopped.elapsed());
    assert_eq!(lease_holder(&cs, "managers").await, "b");
    b.shutdown_token().cancel();
    b_task.await.unwrap().unwrap();
}

async fn lease_holder(cs: &Clientset, name: &str) -> String {
    cs.coordination_v1()
        .leases("default")
        .get(name, &Default::default())
        .await
        .unwrap()
        .spec
        .unwrap()
        .holder_identity
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_that_loses_leadership_exits_with_an_error() {
    use krust_runtime::manager::{Manager, ManagerError};
    let server = ApiServer::builder().start().await.unwrap();
    let manager = Manager::builder(server.kubeconfig().config)
        .without_metrics_server()
        .identity("a")
        .leader_election("lost", "default")
        .leader_election_config(fast())
        .build()
        .unwrap();
    let led = Arc::new(AtomicUsize::new(0));
    let l = led.clone();
    manager.add_runnable("work", move |stop| {
        let l = l.clone();
        async move {
            l.fetch_add(1, Ordering::SeqCst);
            stop.cancelled().await;
            Ok(())
        }
    });
    let task = tokio::spawn(manager.clone().run());
    wait_until("leading", Duration::from_secs(5), || led.load(Ordering::SeqCst) == 1).await;
    // The API server stops answering longer than the renew deadline.
    server.set_latency(Some(Duration::from_secs(4)));
    let result = tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
    server.set_latency(None);
    assert!(matches!(result, Err(ManagerError::LeadershipLost(_))), "{result:?}");
    // And the configuration is validated up front.
    let bad = krust_runtime::leader::LeaderElectionConfig {
        renew_deadline: Duration::from_secs(20),
        ..Default::default()
    };
    let err = Manager::builder(server.kubeconfig().config)
        .leader_election("x", "default")
        .leader_election_config(bad)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("lease_duration"), "{err}");
}

/// What a reconciler that hangs on its first call saw.
#[derive(Default)]
struct HangSeen {
    /// When each call started, and whether its context was already cancelled.
    calls: Mutex<Vec<(Instant, bool)>>,
    /// When a call was dropped before it returned.
    dropped: Mutex<Option<Instant>>,
}

/// Hangs (a minute, not watching its context) on its first call; returns at once after.
struct HangFirst(Arc<HangSeen>);

struct DropMark(Arc<HangSeen>, bool);

impl Drop for DropMark {
    fn drop(&mut self) {
        if !self.1 {
            *self.0.dropped.lock() = Some(Instant::now());
        }
    }
}

#[async_trait::async_trait]
impl krust_runtime::controller::Reconciler for HangFirst {
    type Error = std::convert::Infallible;
    async fn reconcile(
        &self,
        _req: krust_runtime::controller::Request,
        ctx: &krust_runtime::controller::Context,
    ) -> Result<krust_runtime::controller::Action, Self::Error> {
        let first = {
            let mut calls = self.0.calls.lock();
            calls.push((Instant::now(), ctx.cancellation().is_cancelled()));
            calls.len() == 1
        };
        let mut mark = DropMark(self.0.clone(), false);
        if first {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        mark.1 = true;
        Ok(krust_runtime::controller::Action::done())
    }
}

/// Lost leadership is not a graceful shutdown: a reconcile in flight is dropped before the
/// lease can expire for another replica (not after the 30 s grace period), and when the
/// replica leads again its request is reconciled again, with a context that is not cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_that_loses_leadership_drops_its_reconciles_at_once_and_redoes_them_when_it_leads_again() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use krust_runtime::{controller::Controller, manager::Manager};
    let server = ApiServer::builder().start().await.unwrap();
    let cs = clientset(&server);
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": "slow"}})).unwrap();
    cs.core_v1().config_maps("default").create(&cm, &CreateOptions::default()).await.unwrap();
    let manager = Manager::builder(server.kubeconfig().config)
        .without_metrics_server()
        .identity("a")
        .leader_election("drops", "default")
        .leader_election_config(fast())
        .exit_on_lost_leadership(false)
        .graceful_shutdown_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let seen = Arc::new(HangSeen::default());
    Controller::for_::<ConfigMap>().build(HangFirst(seen.clone())).register(&manager).unwrap();
    let task = tokio::spawn(manager.clone().run());
    wait_until("the first reconcile", Duration::from_secs(5), || !seen.calls.lock().is_empty()).await;
    // Renewals hang: the replica steps down at its renew deadline (1.5 s after its last renewal).
    let fault = Instant::now();
    server.set_latency(Some(Duration::from_secs(3)));
    wait_until("the reconcile dropped", Duration::from_secs(5), || seen.dropped.lock().is_some()).await;
    let dropped = seen.dropped.lock().unwrap() - fault;
    assert!(
        dropped < Duration::from_millis(1900),
        "dropped {dropped:?} after the fault; the lease lasts 2 s"
    );
    server.set_latency(None);
    wait_until("reconciled again after leading again", Duration::from_secs(10), || {
        seen.calls.lock().len() >= 2
    })
    .await;
    let calls = seen.calls.lock().clone();
    assert!(!calls[0].1 && !calls[1].1, "a new term's context is not cancelled: {calls:?}");
    assert_eq!(calls.len(), 2, "{calls:?}");
    manager.shutdown_token().cancel();
    task.await.unwrap().unwrap();
}

/// A runnable added for every replica runs on the standby too (from its cache sync to its
/// shutdown, which cancels it); a plain runnable runs only on the leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runnables_on_every_replica_run_on_standbys_too() {
    use krust_runtime::manager::Manager;
    let server = ApiServer::builder().start().await.unwrap();
    #[derive(Default)]
    struct Seen {
        leading: AtomicUsize,
        everywhere: AtomicUsize,
        stopped: AtomicUsize,
    }
    let start = |id: &str, seen: Arc<Seen>| {
        let manager = Manager::builder(server.kubeconfig().config)
            .without_metrics_server()
            .identity(id)
            .leader_election("runnables", "default")
            .leader_election_config(fast())
            .build()
            .unwrap();
        let leading = seen.clone();
        manager.add_runnable("leader-only", move |stop| {
            let seen = leading.clone();
            async move {
                seen.leading.fetch_add(1, Ordering::SeqCst);
                stop.cancelled().await;
                Ok(())
            }
        });
        manager.add_runnable_on_every_replica("warmer", move |stop| {
            let seen = seen.clone();
            async move {
                seen.everywhere.fetch_add(1, Ordering::SeqCst);
                stop.cancelled().await;
                seen.stopped.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
        let task = tokio::spawn(manager.clone().run());
        (manager, task)
    };
    let (a_seen, b_seen) = (Arc::new(Seen::default()), Arc::new(Seen::default()));
    let (a, a_task) = start("a", a_seen.clone());
    wait_until("a leads", Duration::from_secs(5), || a_seen.leading.load(Ordering::SeqCst) == 1).await;
    let (b, b_task) = start("b", b_seen.clone());
    wait_until("b's warmer runs", Duration::from_secs(5), || b_seen.everywhere.load(Ordering::SeqCst) == 1)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b_seen.leading.load(Ordering::SeqCst), 0, "the standby ran a leader-only runnable");
    assert_eq!(a_seen.everywhere.load(Ordering::SeqCst), 1);
    for (manager, task, seen) in [(b, b_task, &b_seen), (a, a_task, &a_seen)] {
        manager.shutdown_token().cancel();
        task.await.unwrap().unwrap();
        assert_eq!(seen.stopped.load(Ordering::SeqCst), 1, "cancelled on shutdown");
    }
}
