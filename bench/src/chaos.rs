//! Suite `chaos`: the example operator (the Website reconciler: a ConfigMap, a Deployment and a
//! Service per Website, a finalizer, status) plus two extra informers (Pods and Secrets), in 3
//! replicas with leader election, against krust-apiserver under its seeded fault schedule
//! (restarts, watch cuts, compaction, 429/500/503 bursts, latency spikes, stalls), while a
//! writer creates, updates and deletes Websites and Secrets for the whole run and the leading
//! replica is stopped and replaced now and then. After the faults stop it checks:
//! - every informer of every replica equals the server (same keys, same resourceVersions);
//! - every Website's last generation was reconciled (observedGeneration), its owned objects
//!   exist with its replicas, and no deleted Website is left behind its finalizer;
//! - no key was reconciled by two workers at once, anywhere;
//! - never two replicas leading at once;
//! - no panic;
//! - memory: RSS of the process at start, peak and end (the process also holds the server).
//!
//! It also counts the operator's writes that changed an owned object, per reconcile: a fight
//! with the server (an apply that never converges) shows as a ratio that keeps growing.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Pod, Secret, Service},
};
use krust::{
    prelude::*,
    runtime::{
        cache::{Cached, EventHandler, SharedInformerFactory},
        controller::{Action, Context, Controller, Reconciler, Request},
        leader::LeaderElectionConfig,
        manager::Manager,
    },
};
use krust_apiserver::{ApiServer, FaultKind, FaultSchedule};
use krust_client::{Clientset, CreateOptions, DeleteOptions, PatchOptions, PatchType, RestClient};
use parking_lot::Mutex;
use serde_json::json;

use crate::stats::option;

#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/operator/website.rs"]
pub(crate) mod website;

use website::{Website, WebsiteReconciler};

static PANICS: AtomicU64 = AtomicU64::new(0);

/// What the replicas did, seen from outside.
#[derive(Default)]
struct Probe {
    /// Keys being reconciled now, by anyone, and how many times each.
    in_flight: Mutex<HashMap<String, u32>>,
    overlapping_reconciles: AtomicU64,
    reconciles: AtomicU64,
    /// Which replicas believe they lead now.
    leading: Mutex<Vec<usize>>,
    overlapping_leaders: AtomicU64,
    leader_changes: AtomicU64,
    /// Writes that changed an owned object (a new resourceVersion of a Deployment, Service or
    /// ConfigMap; only the operator writes them).
    owned_writes: AtomicU64,
}

/// The Website reconciler, watched.
struct Watched {
    inner: WebsiteReconciler,
    probe: Arc<Probe>,
}

#[async_trait]
impl Reconciler for Watched {
    type Error = website::OperatorError;

    async fn reconcile(&self, req: Request, ctx: &Context) -> Result<Action, Self::Error> {
        let key = format!("{}/{}", req.namespace, req.name);
        {
            let mut in_flight = self.probe.in_flight.lock();
            let n = in_flight.entry(key.clone()).or_default();
            if *n > 0 {
                self.probe.overlapping_reconciles.fetch_add(1, Ordering::Relaxed);
            }
            *n += 1;
        }
        self.probe.reconciles.fetch_add(1, Ordering::Relaxed);
        // Out of flight when it returns or is dropped (a replica that loses leadership drops
        // its reconciles).
        let _in_flight = InFlight { probe: &self.probe, key };
        self.inner.reconcile(req, ctx).await
    }
}

/// A key in flight until dropped.
struct InFlight<'a> {
    probe: &'a Probe,
    key: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.probe.in_flight.lock();
        if let Some(n) = in_flight.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                in_flight.remove(&self.key);
            }
        }
    }
}

/// Counts changes of owned objects.
struct OwnedWrites(Arc<Probe>);

impl<K: Send + Sync + 'static> EventHandler<K> for OwnedWrites {
    fn on_add(&self, _obj: &Arc<Cached<K>>, initial: bool) {
        if !initial {
            self.0.owned_writes.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn on_update(&self, old: &Arc<Cached<K>>, new: &Arc<Cached<K>>) {
        if old.resource_version() != new.resource_version() {
            self.0.owned_writes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Replica {
    id: usize,
    manager: Manager,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start_replica(id: usize, config: &krust_client::Config, probe: &Arc<Probe>) -> anyhow::Result<Replica> {
    let manager = Manager::builder(config.clone())
        .without_metrics_server()
        .identity(format!("replica-{id}"))
        .leader_election("chaos-operator", "default")
        .leader_election_config(LeaderElectionConfig {
            lease_duration: Duration::from_secs(3),
            renew_deadline: Duration::from_secs(2),
            retry_period: Duration::from_millis(400),
            release_on_cancel: true,
        })
        .exit_on_lost_leadership(false)
        .graceful_shutdown_timeout(Duration::from_secs(5))
        .build()?;
    Controller::for_::<Website>()
        .owns::<Deployment>()
        .owns::<Service>()
        .owns::<ConfigMap>()
        .concurrency(2)
        .named(website::MANAGER)
        .build(Watched { inner: WebsiteReconciler, probe: probe.clone() })
        .register(&manager)?;
    // The two extra informers.
    let _ = manager.factory().informer::<Pod>();
    let _ = manager.factory().informer::<Secret>();
    // Leadership, as the replica sees it: a runnable runs exactly while it leads.
    let leading = probe.clone();
    manager.add_runnable("leadership-probe", move |token| {
        let probe = leading.clone();
        async move {
            {
                let mut now = probe.leading.lock();
                if !now.is_empty() {
                    probe.overlapping_leaders.fetch_add(1, Ordering::Relaxed);
                }
                now.push(id);
                probe.leader_changes.fetch_add(1, Ordering::Relaxed);
            }
            token.cancelled().await;
            probe.leading.lock().retain(|r| *r != id);
            Ok(())
        }
    });
    let stop = manager.shutdown_token();
    let running = manager.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = running.run().await {
            report_stopped(id, &e.to_string());
        }
    });
    Ok(Replica { id, manager, stop, task })
}

/// A replica that stopped with an error says so (the bench prints; it is not a library).
fn report_stopped(id: usize, e: &str) {
    eprintln!("replica-{id} stopped with an error: {e}");
}

fn rss_kib() -> u64 {
    crate::stats::rss_kib(std::process::id())
}

/// The keys and resourceVersions of one informer's cache.
fn cached<K>(factory: &SharedInformerFactory) -> BTreeMap<String, String>
where
    K: kube_core::Resource<DynamicType = ()> + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    factory
        .informer::<K>()
        .indexer()
        .list()
        .iter()
        .map(|o| (format!("{}/{}", o.namespace(), o.name()), o.resource_version().to_string()))
        .collect()
}

/// The keys and resourceVersions on the server.
async fn on_server(rest: &RestClient, resource: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let list: serde_json::Value = rest.get().resource(resource).send().await?.error_for_status()?.into()?;
    Ok(list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|o| {
                    let m = &o["metadata"];
                    (
                        format!(
                            "{}/{}",
                            m["namespace"].as_str().unwrap_or(""),
                            m["name"].as_str().unwrap_or("")
                        ),
                        m["resourceVersion"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Keys that differ between a cache and the server.
fn divergence(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> u64 {
    let missing = b.iter().filter(|(k, v)| a.get(*k) != Some(*v)).count();
    let extra = a.keys().filter(|k| !b.contains_key(*k)).count();
    (missing + extra) as u64
}

struct Clients {
    core: RestClient,
    apps: RestClient,
    sites: RestClient,
}

/// Cache divergence over every replica's six informers.
async fn cache_divergence(
    clients: &Clients,
    replicas: &[Replica],
    watcher: &SharedInformerFactory,
) -> anyhow::Result<u64> {
    let server = [
        on_server(&clients.sites, "websites").await?,
        on_server(&clients.apps, "deployments").await?,
        on_server(&clients.core, "services").await?,
        on_server(&clients.core, "configmaps").await?,
        on_server(&clients.core, "pods").await?,
        on_server(&clients.core, "secrets").await?,
    ];
    let mut total = 0;
    for r in replicas {
        let f = r.manager.factory();
        let caches = [
            cached::<Website>(f),
            cached::<Deployment>(f),
            cached::<Service>(f),
            cached::<ConfigMap>(f),
            cached::<Pod>(f),
            cached::<Secret>(f),
        ];
        total += caches.iter().zip(&server).map(|(c, s)| divergence(c, s)).sum::<u64>();
    }
    // The harness's own informers (they count the owned-object writes): caught up too, or a
    // late relist of theirs would be counted as writes in the quiet seconds.
    let watched = [cached::<Deployment>(watcher), cached::<Service>(watcher), cached::<ConfigMap>(watcher)];
    total += watched.iter().zip(&server[1..4]).map(|(c, s)| divergence(c, s)).sum::<u64>();
    Ok(total)
}

/// Websites whose last generation was not reconciled, whose owned objects are missing or
/// wrong, or that are stuck in deletion.
async fn unreconciled(clients: &Clients) -> anyhow::Result<u64> {
    let sites: serde_json::Value = clients
        .sites
        .get()
        .namespace("default")
        .resource("websites")
        .send()
        .await?
        .error_for_status()?
        .into()?;
    let deployments = on_server(&clients.apps, "deployments").await?;
    let services = on_server(&clients.core, "services").await?;
    let config_maps = on_server(&clients.core, "configmaps").await?;
    let mut bad = 0;
    for site in sites["items"].as_array().into_iter().flatten() {
        let name = site["metadata"]["name"].as_str().unwrap_or("");
        let deleting = !site["metadata"]["deletionTimestamp"].is_null();
        let reconciled = site["status"]["observedGeneration"] == site["metadata"]["generation"];
        let owned = deployments.contains_key(&format!("default/{name}"))
            && services.contains_key(&format!("default/{name}"))
            && config_maps.contains_key(&format!("default/{name}-content"));
        if deleting || !reconciled || !owned {
            bad += 1;
            continue;
        }
        let deployment: serde_json::Value = clients
            .apps
            .get()
            .namespace("default")
            .resource("deployments")
            .name(name)
            .send()
            .await?
            .into()?;
        if deployment["spec"]["replicas"] != site["spec"]["replicas"] {
            bad += 1;
        }
    }
    Ok(bad)
}

/// The writer: creates, updates and deletes Websites and Secrets until stopped; returns how
/// many of its writes succeeded, and how many write requests it sent.
async fn writer(
    clientset: Clientset,
    sites: RestClient,
    pool: u32,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> (u64, u64) {
    let secrets = clientset.core_v1().secrets("default");
    let mut done = 0u64;
    let mut sent = 0u64;
    let mut rng = 0x2545_f491_4f6c_dd1du64 ^ (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    while !stop.load(Ordering::Relaxed) {
        let r = next();
        let i = (r >> 8) % u64::from(pool);
        let name = format!("site-{i}");
        sent += 1;
        let ok = match r % 10 {
            // Websites: create 4, update 3, delete 1 of 10.
            0..=3 => {
                let site = json!({"apiVersion": "example.krust.dev/v1", "kind": "Website",
                    "metadata": {"name": name},
                    "spec": {"image": "nginx:1.27", "replicas": 1 + (r >> 20) % 3, "content": format!("<h1>{i}</h1>")}});
                sites.post().namespace("default").resource("websites").body(&site).send().await
            }
            4..=6 => {
                let patch =
                    json!({"spec": {"replicas": 1 + (r >> 20) % 5, "content": format!("<h1>{r}</h1>")}});
                sites
                    .patch(PatchType::Merge)
                    .namespace("default")
                    .resource("websites")
                    .name(&name)
                    .body(&patch)
                    .send()
                    .await
            }
            7 => sites.delete().namespace("default").resource("websites").name(&name).send().await,
            // Secrets, for the extra informer.
            8 => {
                let secret: Secret = serde_json::from_value(
                    json!({"metadata": {"name": format!("secret-{i}")}, "stringData": {"v": r.to_string()}}),
                )
                .unwrap_or_default();
                let created = secrets.create(&secret, &CreateOptions::default()).await.map(|_| ());
                if created.is_err() {
                    sent += 1;
                    let _ = secrets.delete(&format!("secret-{i}"), &DeleteOptions::default()).await;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            _ => {
                let _ = secrets
                    .patch(
                        &format!("secret-{i}"),
                        PatchType::Merge,
                        &json!({"data": {"v": "eA=="}, "metadata": {"labels": {"r": (r % 1000).to_string()}}}),
                        &PatchOptions::default(),
                    )
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if ok.is_ok_and(|r| r.status().is_success()) {
            done += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (done, sent)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let seconds: u64 = option(args, "--seconds", 600)?;
    let seed: u64 = option(args, "--seed", 7)?;
    let rate: f64 = option(args, "--faults-per-minute", 6.0)?;
    let pool: u32 = option(args, "--websites", 150)?;
    let churn: u64 = option(args, "--replace-leader-every", 30)?;
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        default_hook(info);
    }));
    // The server on runtime threads of its own (it is the cluster, not the operator).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()
        else {
            return;
        };
        rt.block_on(async move {
            match ApiServer::builder().start().await {
                Ok(server) => {
                    let server = Arc::new(server);
                    let _ = tx.send(Ok(server.clone()));
                    std::future::pending::<()>().await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
    });
    let server = rx.recv()??;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(run_async(server, seconds, seed, rate, pool, churn))
}

async fn run_async(
    server: Arc<ApiServer>,
    seconds: u64,
    seed: u64,
    rate: f64,
    pool: u32,
    churn: u64,
) -> anyhow::Result<()> {
    let config = server.kubeconfig().config;
    let clientset = Clientset::new(&config)?;
    website::install_crd(&clientset, None).await?;
    let client = |g: &str, v: &str| {
        RestClient::new(&config.clone().with_group_version(kube_core::GroupVersion::gv(g, v)))
    };
    let clients = Clients {
        core: client("", "v1")?,
        apps: client("apps", "v1")?,
        sites: client("example.krust.dev", "v1")?,
    };

    let setup_requests: u64 =
        ["POST", "PUT", "PATCH", "DELETE"].iter().map(|m| server.request_count(m)).sum();
    let probe = Arc::new(Probe::default());
    // The harness's own view of owned objects, to count the operator's writes.
    let watcher = SharedInformerFactory::new(&clients.core);
    watcher.informer::<Deployment>().add_inline_handler(OwnedWrites(probe.clone()));
    watcher.informer::<Service>().add_inline_handler(OwnedWrites(probe.clone()));
    watcher.informer::<ConfigMap>().add_inline_handler(OwnedWrites(probe.clone()));
    watcher.start();
    let _ = watcher.wait_for_cache_sync(Duration::from_secs(30)).await;

    let mut replicas = Vec::new();
    let mut next_id = 0;
    for _ in 0..3 {
        replicas.push(start_replica(next_id, &config, &probe)?);
        next_id += 1;
    }
    let rss_start = rss_kib();
    let rss_peak = Arc::new(AtomicU64::new(rss_start));
    let sampling = {
        let peak = rss_peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    let stop_writer = Arc::new(AtomicBool::new(false));
    // Four writers at once, each a request at a time.
    let writing: Vec<_> = (0..4u64)
        .map(|w| tokio::spawn(writer(clientset.clone(), clients.sites.clone(), pool, w, stop_writer.clone())))
        .collect();
    let faults = server.run_faults(FaultSchedule::uniform(seed, rate));
    let started = Instant::now();
    let mut last_churn = Instant::now();
    let mut replaced = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if churn > 0 && last_churn.elapsed() >= Duration::from_secs(churn) {
            last_churn = Instant::now();
            let leader = probe.leading.lock().first().copied();
            if let Some(pos) = leader.and_then(|l| replicas.iter().position(|r| r.id == l)) {
                let old = replicas.remove(pos);
                old.stop.cancel();
                let _ = tokio::time::timeout(Duration::from_secs(10), old.task).await;
                replicas.push(start_replica(next_id, &config, &probe)?);
                next_id += 1;
                replaced += 1;
            }
        }
    }
    let counts = faults.counts();
    faults.stop();
    stop_writer.store(true, Ordering::Relaxed);
    let (mut writes, mut writer_requests) = (0, 0);
    for w in writing {
        let (done, sent) = w.await.unwrap_or((0, 0));
        writes += done;
        writer_requests += sent;
    }
    let faulted = started.elapsed();

    // Convergence: at most two minutes after the faults stop.
    let settle = Instant::now();
    let (mut divergence, mut unreconciled_now) = (u64::MAX, u64::MAX);
    while settle.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        divergence = cache_divergence(&clients, &replicas, &watcher).await.unwrap_or(u64::MAX);
        unreconciled_now = unreconciled(&clients).await.unwrap_or(u64::MAX);
        if divergence == 0 && unreconciled_now == 0 {
            break;
        }
        eprintln!(
            "  {:.0} s after the faults: {divergence} cached keys differ from the server, {unreconciled_now} Websites unreconciled",
            settle.elapsed().as_secs_f64()
        );
    }
    let converged_after = settle.elapsed();
    // Quiet: with nothing changing, the operator must not keep writing.
    let write_requests =
        || ["POST", "PUT", "PATCH", "DELETE"].iter().map(|m| server.request_count(m)).sum::<u64>();
    let before_quiet = probe.owned_writes.load(Ordering::Relaxed);
    let requests_before_quiet = write_requests();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let quiet_writes = probe.owned_writes.load(Ordering::Relaxed) - before_quiet;
    let quiet_requests = write_requests() - requests_before_quiet;
    // Every write request but the writer's and the harness's own: applies, status, finalizers,
    // events and the leader's lease renewals.
    let operator_requests = write_requests().saturating_sub(writer_requests + setup_requests);
    let rss_end = rss_kib();
    sampling.abort();
    for r in &replicas {
        r.stop.cancel();
    }
    for r in replicas {
        let _ = tokio::time::timeout(Duration::from_secs(10), r.task).await;
    }

    let reconciles = probe.reconciles.load(Ordering::Relaxed);
    let owned_writes = probe.owned_writes.load(Ordering::Relaxed);
    println!(
        "chaos: {:.0} s of faults (seed {seed}, {rate}/min per kind), {writes} writer writes over {pool} Websites and Secrets, {replaced} leaders replaced, {} leadership starts",
        faulted.as_secs_f64(),
        probe.leader_changes.load(Ordering::Relaxed)
    );
    println!(
        "  faults injected: {}",
        counts.iter().map(|(k, n)| format!("{} {n}", k.name())).collect::<Vec<_>>().join(", ")
    );
    println!(
        "  converged {:.1} s after the faults stopped; {reconciles} reconciles, {owned_writes} owned-object changes ({:.2} per reconcile), {quiet_writes} in 5 quiet seconds",
        converged_after.as_secs_f64(),
        owned_writes as f64 / reconciles.max(1) as f64
    );
    println!(
        "  the operator's write requests (applies, status, finalizers, events, leases): {operator_requests} ({:.2} per reconcile); {quiet_requests} in the 5 quiet seconds (lease renewals)",
        operator_requests as f64 / reconciles.max(1) as f64
    );
    println!(
        "  RSS (operator replicas + server, one process): start {:.1} MiB, peak {:.1} MiB, end {:.1} MiB",
        rss_start as f64 / 1024.0,
        rss_peak.load(Ordering::Relaxed) as f64 / 1024.0,
        rss_end as f64 / 1024.0
    );
    println!("result chaos_cache_divergence {divergence}");
    println!("result chaos_unreconciled {unreconciled_now}");
    println!("result chaos_overlapping_reconciles {}", probe.overlapping_reconciles.load(Ordering::Relaxed));
    println!("result chaos_overlapping_leaders {}", probe.overlapping_leaders.load(Ordering::Relaxed));
    println!("result chaos_panics {}", PANICS.load(Ordering::Relaxed));
    println!("result chaos_quiet_writes {quiet_writes}");
    println!("result chaos_writer_writes {writes}");
    println!("result chaos_reconciles {reconciles}");
    println!("result chaos_owned_writes_per_reconcile {:.3}", owned_writes as f64 / reconciles.max(1) as f64);
    println!(
        "result chaos_operator_write_requests_per_reconcile {:.3}",
        operator_requests as f64 / reconciles.max(1) as f64
    );
    println!("result chaos_quiet_write_requests {quiet_requests}");
    println!("result chaos_leaders_replaced {replaced}");
    println!("result chaos_converged_s {:.1}", converged_after.as_secs_f64());
    println!("result chaos_rss_start_mib {:.1}", rss_start as f64 / 1024.0);
    println!("result chaos_rss_peak_mib {:.1}", rss_peak.load(Ordering::Relaxed) as f64 / 1024.0);
    println!("result chaos_rss_end_mib {:.1}", rss_end as f64 / 1024.0);
    for kind in FaultKind::ALL {
        let n = counts.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n);
        println!("result chaos_faults_{} {n}", kind.name());
    }
    Ok(())
}
