//! Controllers and the manager against krust-apiserver over HTTP: what triggers a reconcile
//! (the primary, an owned object, a mapped watch), what each outcome does (backoff, terminal
//! errors, panics), concurrency, collapsing bursts, graceful shutdown, metrics and probes,
//! events, and the helpers (finalizer, create-or-update, owner references, wait).

use std::{
    collections::HashSet,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Secret},
};
use krust_apiserver::ApiServer;
use krust_client::{CreateOptions, DeleteOptions, PatchOptions, PatchType, TypedClient};
use krust_runtime::{
    controller::{
        Action, Context, Controller, Reconciler, Request, TerminalError,
        helpers::{self, FinalizerEvent, OperationResult},
        predicate,
    },
    events::Event,
    manager::Manager,
    workqueue::ItemExponentialFailureRateLimiter,
};
use parking_lot::Mutex;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error("transient failure {0}")]
    Transient(usize),
    #[error("bad input")]
    Terminal(#[source] TerminalError),
    #[error(transparent)]
    Client(#[from] krust_client::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
}

type Handler = Arc<
    dyn Fn(Request, Context, usize) -> futures_util::future::BoxFuture<'static, Result<Action, TestError>>
        + Send
        + Sync,
>;

/// A reconciler that logs every call (request, start time) and delegates to a closure.
#[derive(Clone)]
struct Probe {
    calls: Arc<Mutex<Vec<(Request, Instant)>>>,
    handler: Handler,
}

impl Probe {
    fn new<F, Fut>(f: F) -> Self
    where
        F: Fn(Request, Context, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, TestError>> + Send + 'static,
    {
        Probe { calls: Arc::default(), handler: Arc::new(move |r, c, n| Box::pin(f(r, c, n))) }
    }

    fn ok() -> Self {
        Self::new(|_, _, _| async { Ok(Action::done()) })
    }

    fn count(&self, name: &str) -> usize {
        self.calls.lock().iter().filter(|(r, _)| r.name == name).count()
    }

    async fn wait_for(&self, name: &str, at_least: usize) {
        for _ in 0..1000 {
            if self.count(name) >= at_least {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{name} reconciled {} times, wanted {at_least}: {:?}", self.count(name), self.calls.lock());
    }
}

#[async_trait]
impl Reconciler for Probe {
    type Error = TestError;
    async fn reconcile(&self, req: Request, ctx: &Context) -> Result<Action, TestError> {
        let n = {
            let mut calls = self.calls.lock();
            calls.push((req.clone(), Instant::now()));
            calls.iter().filter(|(r, _)| *r == req).count()
        };
        (self.handler)(req, ctx.clone(), n).await
    }
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": "1"}})).unwrap()
}

async fn start(server: &ApiServer, controllers: Vec<krust_runtime::controller::Controller>) -> Manager {
    let manager = Manager::builder(server.kubeconfig().config)
        .metrics_addr("127.0.0.1:0")
        .graceful_shutdown_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for c in controllers {
        c.register(&manager).unwrap();
    }
    tokio::spawn(manager.clone().run());
    for _ in 0..1000 {
        if manager.is_ready() {
            return manager;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the manager never got ready: {:?}", get(&manager, "/readyz").await);
}

async fn get(manager: &Manager, path: &str) -> (u16, String) {
    let addr = manager.local_addr().unwrap();
    let config = krust_client::Config::new(format!("http://{addr}").parse().unwrap());
    let rest = krust_client::RestClient::unversioned(&config).unwrap();
    let response = rest.get().abs_path(path).send().await.unwrap();
    let status = response.status().as_u16();
    (status, String::from_utf8_lossy(response.raw_body()).to_string())
}

fn metric(text: &str, line_prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{line_prefix} not in:\n{text}"))
}

fn configmaps(server: &ApiServer) -> TypedClient<ConfigMap> {
    krust_client::Clientset::new(&server.kubeconfig().config).unwrap().core_v1().config_maps("default")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_owned_and_mapped_changes_each_reconcile() {
    let server = ApiServer::builder().start().await.unwrap();
    let clientset = krust_client::Clientset::new(&server.kubeconfig().config).unwrap();
    let deployments = clientset.apps_v1().deployments("default");
    let probe = Probe::ok();
    // Primary: Deployments; owned: ConfigMaps; mapped: Secrets labelled with a deployment name.
    let controller = Controller::for_::<Deployment>()
        .owns::<ConfigMap>()
        .watches::<Secret>(|s| {
            s.labels().get("for").map(|d| vec![Request::new(s.namespace(), d.as_ref())]).unwrap_or_default()
        })
        .build(probe.clone());
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}}}
    }))
    .unwrap();
    let web = deployments.create(&deployment, &CreateOptions::default()).await.unwrap();
    let manager = start(&server, vec![controller]).await;
    probe.wait_for("web", 1).await;
    // A change to the primary.
    let patch = json!({"metadata": {"labels": {"x": "1"}}});
    deployments.patch("web", PatchType::Merge, &patch, &PatchOptions::default()).await.unwrap();
    probe.wait_for("web", 2).await;
    // An owned object appears and changes.
    let mut owned = cm("web-config");
    owned.metadata.namespace = Some("default".into());
    helpers::set_controller_reference(&web, &mut owned.metadata).unwrap();
    let cms = clientset.core_v1().config_maps("default");
    cms.create(&owned, &CreateOptions::default()).await.unwrap();
    probe.wait_for("web", 3).await;
    cms.patch("web-config", PatchType::Merge, &json!({"data": {"v": "2"}}), &PatchOptions::default())
        .await
        .unwrap();
    probe.wait_for("web", 4).await;
    // An object not owned by a Deployment maps to nothing.
    cms.create(&cm("stray"), &CreateOptions::default()).await.unwrap();
    // A mapped watch.
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s", "labels": {"for": "web"}}})).unwrap();
    clientset.core_v1().secrets("default").create(&secret, &CreateOptions::default()).await.unwrap();
    probe.wait_for("web", 5).await;
    // Deleting the owned object also reconciles its owner.
    cms.delete("web-config", &DeleteOptions::default()).await.unwrap();
    probe.wait_for("web", 6).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        probe.calls.lock().iter().all(|(r, _)| r.name == "web" && r.namespace == "default"),
        "{:?}",
        probe.calls.lock()
    );
    manager.shutdown_token().cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_back_off_per_key_growing_and_success_resets() {
    let server = ApiServer::builder().start().await.unwrap();
    // Fail three times, then succeed; then (after a change) fail once more.
    let probe = Probe::new(|_, _, n| async move {
        if n <= 3 || n == 5 { Err(TestError::Transient(n)) } else { Ok(Action::done()) }
    });
    let controller = Controller::for_::<ConfigMap>()
        .rate_limiter(ItemExponentialFailureRateLimiter::new(
            Duration::from_millis(100),
            Duration::from_secs(10),
        ))
        .build(probe.clone());
    configmaps(&server).create(&cm("a"), &CreateOptions::default()).await.unwrap();
    let manager = start(&server, vec![controller]).await;
    probe.wait_for("a", 4).await;
    let times: Vec<Instant> = probe.calls.lock().iter().map(|(_, t)| *t).collect();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // 100 ms, 200 ms, 400 ms (the limiter's values; allow scheduling slack above).
    for (gap, want) in gaps.iter().zip([100, 200, 400]) {
        assert!(
            *gap >= Duration::from_millis(want) && *gap < Duration::from_millis(want + 300),
            "gaps {gaps:?}"
        );
    }
    let (_, metrics) = get(&manager, "/metrics").await;
    assert_eq!(metric(&metrics, r#"controller_runtime_reconcile_errors_total{controller="configmap"}"#), 3.0);
    // After the success the backoff starts again from 100 ms.
    configmaps(&server)
        .patch("a", PatchType::Merge, &json!({"data": {"v": "2"}}), &PatchOptions::default())
        .await
        .unwrap();
    probe.wait_for("a", 6).await;
    let calls = probe.calls.lock().clone();
    let reset = calls[5].1 - calls[4].1;
    assert!(
        reset >= Duration::from_millis(100) && reset < Duration::from_millis(400),
        "after a success: {reset:?}"
    );
    manager.shutdown_token().cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_error_is_not_retried_and_a_panic_is_recovered() {
    let server = ApiServer::builder().start().await.unwrap();
    let probe = Probe::new(|req, _, n| async move {
        match (req.name.as_str(), n) {
            ("terminal", _) => Err(TestError::Terminal(TerminalError::new("the spec is invalid"))),
            ("panics", 1) => panic!("boom"),
            _ => Ok(Action::done()),
        }
    });
    let controller = Controller::for_::<ConfigMap>()
        .rate_limiter(ItemExponentialFailureRateLimiter::new(
            Duration::from_millis(20),
            Duration::from_secs(1),
        ))
        .named("faults")
        .build(probe.clone());
    for n in ["terminal", "panics"] {
        configmaps(&server).create(&cm(n), &CreateOptions::default()).await.unwrap();
    }
    let manager = start(&server, vec![controller]).await;
    probe.wait_for("panics", 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(probe.count("terminal"), 1, "a terminal error is not retried");
    assert_eq!(probe.count("panics"), 2, "retried once after the panic, then succeeded");
    let (_, m) = get(&manager, "/metrics").await;
    let l = r#"{controller="faults"}"#;
    assert_eq!(metric(&m, &format!("controller_runtime_terminal_reconcile_errors_total{l}")), 1.0);
    assert_eq!(metric(&m, &format!("controller_runtime_reconcile_panics_total{l}")), 1.0);
    assert_eq!(metric(&m, &format!("controller_runtime_reconcile_errors_total{l}")), 2.0);
    assert_eq!(metric(&m, r#"controller_runtime_reconcile_total{controller="faults",result="error"}"#), 2.0);
    assert_eq!(
        metric(&m, r#"controller_runtime_reconcile_total{controller="faults",result="success"}"#),
        1.0
    );
    manager.shutdown_token().cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_never_run_one_key_twice_and_a_burst_collapses() {
    let server = ApiServer::builder().start().await.unwrap();
    let in_flight = Arc::new(Mutex::new(HashSet::<Request>::new()));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let max_parallel = Arc::new(AtomicUsize::new(0));
    let (f, o, m) = (in_flight.clone(), overlaps.clone(), max_parallel.clone());
    let probe = Probe::new(move |req, _, _| {
        let (f, o, m) = (f.clone(), o.clone(), m.clone());
        async move {
            {
                let mut set = f.lock();
                if !set.insert(req.clone()) {
                    o.fetch_add(1, Ordering::SeqCst);
                }
                m.fetch_max(set.len(), Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            f.lock().remove(&req);
            Ok(Action::done())
        }
    });
    let controller = Controller::for_::<ConfigMap>().concurrency(4).build(probe.clone());
    let cms = configmaps(&server);
    for i in 0..8 {
        cms.create(&cm(&format!("c{i}")), &CreateOptions::default()).await.unwrap();
    }
    let manager = start(&server, vec![controller]).await;
    // A burst of 1,000 updates to one object, 8 writers at a time.
    let mut writes = Vec::new();
    for w in 0..8 {
        let writer = cms.clone();
        writes.push(tokio::spawn(async move {
            for i in 0..125 {
                let patch = json!({"data": {"v": format!("{w}-{i}")}});
                writer.patch("c0", PatchType::Merge, &patch, &PatchOptions::default()).await.unwrap();
            }
        }));
        // And the others change too, so that workers run in parallel.
        cms.patch(&format!("c{w}"), PatchType::Merge, &json!({"data": {"x": "1"}}), &PatchOptions::default())
            .await
            .unwrap();
    }
    for w in writes {
        w.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(overlaps.load(Ordering::SeqCst), 0, "one key was reconciled by two workers at once");
    assert!(max_parallel.load(Ordering::SeqCst) >= 2, "4 workers ran in parallel");
    let c0 = probe.count("c0");
    assert!((2..=300).contains(&c0), "1,000 updates collapsed into {c0} reconciles");
    manager.shutdown_token().cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_reconciles_finish() {
    let server = ApiServer::builder().start().await.unwrap();
    let finished = Arc::new(AtomicUsize::new(0));
    let f = finished.clone();
    let probe = Probe::new(move |_, _, _| {
        let f = f.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            f.fetch_add(1, Ordering::SeqCst);
            Ok(Action::done())
        }
    });
    configmaps(&server).create(&cm("slow"), &CreateOptions::default()).await.unwrap();
    let manager = Manager::builder(server.kubeconfig().config).without_metrics_server().build().unwrap();
    Controller::for_::<ConfigMap>().build(probe.clone()).register(&manager).unwrap();
    let running = tokio::spawn(manager.clone().run());
    probe.wait_for("slow", 1).await;
    manager.shutdown_token().cancel();
    running.await.unwrap().unwrap();
    assert_eq!(finished.load(Ordering::SeqCst), 1, "the in-flight reconcile finished before run returned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_until_caches_sync_and_says_why_after_the_timeout() {
    let server = ApiServer::builder().start().await.unwrap();
    configmaps(&server).create(&cm("a"), &CreateOptions::default()).await.unwrap();
    // Every request takes 1.5 s: the initial list is slow.
    server.set_latency(Some(Duration::from_millis(1500)));
    let manager = Manager::builder(server.kubeconfig().config)
        .metrics_addr("127.0.0.1:0")
        .cache_sync_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let probe = Probe::ok();
    Controller::for_::<ConfigMap>().build(probe.clone()).register(&manager).unwrap();
    tokio::spawn(manager.clone().run());
    let (code, body) = get(&manager, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (code, body) = get(&manager, "/readyz").await;
    assert_eq!(code, 503);
    assert!(body.contains("informer caches not synced after") && body.contains("configmaps"), "{body}");
    let (code, _) = get(&manager, "/healthz").await;
    assert_eq!(code, 200, "liveness is not readiness");
    server.set_latency(None);
    probe.wait_for("a", 1).await;
    let (code, body) = get(&manager, "/readyz?verbose").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("[+]informers ok"), "{body}");
    let (_, m) = get(&manager, "/metrics").await;
    for name in [
        "controller_runtime_reconcile_total",
        "controller_runtime_reconcile_errors_total",
        "controller_runtime_terminal_reconcile_errors_total",
        "controller_runtime_reconcile_panics_total",
        "controller_runtime_reconcile_time_seconds_bucket",
        "controller_runtime_max_concurrent_reconciles",
        "controller_runtime_active_workers",
        "workqueue_depth",
        "workqueue_adds_total",
        "workqueue_queue_duration_seconds_bucket",
        "workqueue_work_duration_seconds_bucket",
        "workqueue_unfinished_work_seconds",
        "workqueue_longest_running_processor_seconds",
        "workqueue_retries_total",
        "rest_client_requests_total",
        "rest_client_request_duration_seconds_bucket",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
        "process_max_fds",
    ] {
        assert!(m.contains(name), "{name} missing from /metrics:\n{m}");
    }
    // The manager's own clients: the informer's list (and the lists that failed slowly).
    let host = server.url().trim_start_matches("http://").to_string();
    let listed = format!(r#"rest_client_requests_total{{code="200",method="GET",host="{host}"}}"#);
    assert!(metric(&m, &listed) >= 1.0, "{listed} missing:\n{m}");
    let timed = format!(r#"rest_client_request_duration_seconds_count{{verb="GET",host="{host}"}}"#);
    assert!(metric(&m, &timed) >= 1.0, "{timed} missing:\n{m}");
    // This very process: some memory, open files, started in the last hour.
    assert!(metric(&m, "process_resident_memory_bytes ") > 1e6, "{m}");
    assert!(metric(&m, "process_open_fds ") >= 3.0, "{m}");
    let started = metric(&m, "process_start_time_seconds ");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(started <= now + 1.0 && started > now - 3600.0, "started at {started}, now {now}");
    assert_eq!(metric(&m, r#"controller_runtime_max_concurrent_reconciles{controller="configmap"}"#), 1.0);
    assert_eq!(metric(&m, r#"workqueue_adds_total{name="configmap",controller="configmap"}"#), 1.0);
    manager.shutdown_token().cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predicates_filter_events() {
    let server = ApiServer::builder().start().await.unwrap();
    let probe = Probe::ok();
    let controller = Controller::for_::<ConfigMap>()
        .with_event_filter(predicate::or(predicate::LabelChanged, predicate::AnnotationChanged))
        .with_event_filter(predicate::not(predicate::label_selector("skip=true").unwrap()))
        .build(probe.clone());
    let cms = configmaps(&server);
    cms.create(&cm("a"), &CreateOptions::default()).await.unwrap();
    let manager = start(&server, vec![controller]).await;
    probe.wait_for("a", 1).await;
    // A data change passes neither label nor annotation changes.
    cms.patch("a", PatchType::Merge, &json!({"data": {"v": "2"}}), &PatchOptions::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(probe.count("a"), 1);
    cms.patch(
        "a",
        PatchType::Merge,
        &json!({"metadata": {"annotations": {"n": "1"}}}),
        &PatchOptions::default(),
    )
    .await
    .unwrap();
    probe.wait_for("a", 2).await;
    // Labelled skip=true: filtered out, even though the labels changed.
    cms.patch(
        "a",
        PatchType::Merge,
        &json!({"metadata": {"labels": {"skip": "true"}}}),
        &PatchOptions::default(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(probe.count("a"), 2);
    manager.shutdown_token().cancel();
}

/// A predicate on one watch filters that watch alone: a generation filter on the primary
/// (`for_with`) ignores the Deployment's label edits yet still hears of its owned ConfigMap's
/// changes, which the same filter set controller-wide (`with_event_filter`) hides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_predicate_per_watch_filters_that_watch_only() {
    let server = ApiServer::builder().start().await.unwrap();
    let (per_watch, controller_wide) = (Probe::ok(), Probe::ok());
    let a = Controller::for_with::<Deployment>(predicate::GenerationChanged)
        .owns::<ConfigMap>()
        .named("per-watch")
        .build(per_watch.clone());
    let b = Controller::for_::<Deployment>()
        .owns::<ConfigMap>()
        .with_event_filter(predicate::GenerationChanged)
        .named("controller-wide")
        .build(controller_wide.clone());
    let manager = start(&server, vec![a, b]).await;
    let client = krust_client::Clientset::new(&server.kubeconfig().config).unwrap();
    let deployments = client.apps_v1().deployments("default");
    let labels = json!({"app": "web"});
    let web: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    }))
    .unwrap();
    let web = deployments.create(&web, &CreateOptions::default()).await.unwrap();
    per_watch.wait_for("web", 1).await;
    controller_wide.wait_for("web", 1).await;
    let mut owned = cm("web-config");
    owned.metadata.namespace = Some("default".into());
    let mut meta = owned.metadata.clone();
    helpers::set_controller_reference(&web, &mut meta).unwrap();
    owned.metadata = meta;
    let cms = configmaps(&server);
    cms.create(&owned, &CreateOptions::default()).await.unwrap();
    per_watch.wait_for("web", 2).await;
    controller_wide.wait_for("web", 2).await;

    // The owned ConfigMap changes (it has no generation): only the per-watch filter lets it in.
    cms.patch("web-config", PatchType::Merge, &json!({"data": {"v": "2"}}), &PatchOptions::default())
        .await
        .unwrap();
    per_watch.wait_for("web", 3).await;
    // The Deployment's labels change (same generation): filtered on both.
    let label = json!({"metadata": {"labels": {"tier": "front"}}});
    deployments.patch("web", PatchType::Merge, &label, &PatchOptions::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!((per_watch.count("web"), controller_wide.count("web")), (3, 2));
    // Its spec changes (a new generation): both.
    let scale = json!({"spec": {"replicas": 3}});
    deployments.patch("web", PatchType::Merge, &scale, &PatchOptions::default()).await.unwrap();
    per_watch.wait_for("web", 4).await;
    controller_wide.wait_for("web", 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!((per_watch.count("web"), controller_wide.count("web")), (4, 3));
    manager.shutdown_token().cancel();
}

/// A cache scoped by label and field selectors (`cache_by_object`): only matching ConfigMaps
/// are cached, listed and reconciled; one relabelled into the selector arrives, one relabelled
/// out of it leaves the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_cache_holds_and_reconciles_only_what_matches() {
    use krust_runtime::manager::ByObject;
    let server = ApiServer::builder().start().await.unwrap();
    let cms = configmaps(&server);
    let labelled = |name: &str, app: &str| {
        let mut c = cm(name);
        c.metadata.labels = Some([("app".to_string(), app.to_string())].into());
        c
    };
    cms.create(&labelled("web-1", "web"), &CreateOptions::default()).await.unwrap();
    cms.create(&labelled("db-1", "db"), &CreateOptions::default()).await.unwrap();
    cms.create(&cm("plain"), &CreateOptions::default()).await.unwrap();
    let probe = Probe::ok();
    let manager = Manager::builder(server.kubeconfig().config)
        .metrics_addr("127.0.0.1:0")
        .cache_by_object::<ConfigMap>(
            ByObject::label_selector("app in (web, api)").with_field_selector("metadata.name!=web-2"),
        )
        .build()
        .unwrap();
    Controller::for_::<ConfigMap>().build(probe.clone()).register(&manager).unwrap();
    tokio::spawn(manager.clone().run());
    probe.wait_for("web-1", 1).await;
    let cached = || {
        let mut names: Vec<String> = manager
            .factory()
            .informer::<ConfigMap>()
            .indexer()
            .list()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(cached(), ["web-1"]);
    cms.create(&labelled("web-2", "web"), &CreateOptions::default()).await.unwrap();
    cms.create(&labelled("api-1", "api"), &CreateOptions::default()).await.unwrap();
    probe.wait_for("api-1", 1).await;
    // Relabelled into the selector: it arrives; out of it: it leaves.
    let relabel = |app: &str| json!({"metadata": {"labels": {"app": app}}});
    cms.patch("db-1", PatchType::Merge, &relabel("web"), &PatchOptions::default()).await.unwrap();
    probe.wait_for("db-1", 1).await;
    cms.patch("web-1", PatchType::Merge, &relabel("db"), &PatchOptions::default()).await.unwrap();
    for _ in 0..200 {
        if cached() == ["api-1", "db-1"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(cached(), ["api-1", "db-1"]);
    assert_eq!((probe.count("plain"), probe.count("web-2")), (0, 0), "not in the scope: never reconciled");
    manager.shutdown_token().cancel();
}

/// A manager caching a set of namespaces (controller-runtime's `DefaultNamespaces`, and
/// `ByObject.Namespaces` for one type) reconciles objects of those namespaces only; a
/// cluster-scoped type is still cached cluster-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_of_several_namespaces_reconciles_only_theirs() {
    use k8s_openapi::api::core::v1::{Namespace, Secret};
    use krust_runtime::manager::ByObject;
    let server = ApiServer::builder().start().await.unwrap();
    let clientset = krust_client::Clientset::new(&server.kubeconfig().config).unwrap();
    for ns in ["team-a", "team-b", "team-c"] {
        let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        clientset.core_v1().namespaces().create(&namespace, &CreateOptions::default()).await.unwrap();
    }
    for ns in ["team-a", "team-b", "team-c", "default"] {
        clientset
            .core_v1()
            .config_maps(ns)
            .create(&cm(&format!("{ns}-cm")), &CreateOptions::default())
            .await
            .unwrap();
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": format!("{ns}-secret")}})).unwrap();
        clientset.core_v1().secrets(ns).create(&secret, &CreateOptions::default()).await.unwrap();
    }
    let probe = Probe::ok();
    let manager = Manager::builder(server.kubeconfig().config)
        .metrics_addr("127.0.0.1:0")
        .cache_namespaces(["team-a", "team-b"])
        .cache_by_object::<Secret>(ByObject::default().with_namespaces(["team-c"]))
        .build()
        .unwrap();
    Controller::for_::<ConfigMap>().build(probe.clone()).register(&manager).unwrap();
    tokio::spawn(manager.clone().run());
    probe.wait_for("team-a-cm", 1).await;
    probe.wait_for("team-b-cm", 1).await;
    clientset.core_v1().config_maps("team-c").create(&cm("late-c"), &CreateOptions::default()).await.unwrap();
    clientset.core_v1().config_maps("team-b").create(&cm("late-b"), &CreateOptions::default()).await.unwrap();
    probe.wait_for("late-b", 1).await;
    for outside in ["team-c-cm", "default-cm", "late-c"] {
        assert_eq!(probe.count(outside), 0, "{outside} is outside the cache's namespaces");
    }
    let factory = manager.factory();
    let secrets = factory.informer::<Secret>();
    factory.start();
    assert!(secrets.wait_for_cache_sync(Duration::from_secs(5)).await);
    let names = |keys: Vec<String>| {
        let mut keys = keys;
        keys.sort();
        keys
    };
    assert_eq!(names(secrets.indexer().list_keys()), ["team-c/team-c-secret"], "ByObject's namespaces");
    let namespaces = factory.informer::<Namespace>();
    factory.start();
    assert!(namespaces.wait_for_cache_sync(Duration::from_secs(5)).await);
    let all = names(namespaces.indexer().list_keys());
    assert!(all.contains(&"team-c".to_string()) && all.contains(&"default".to_string()), "{all:?}");
    manager.shutdown_token().cancel();
}

/// Secure metrics (Kubebuilder's default): `/metrics` over HTTPS only for a token the API
/// server authenticates (TokenReview) whose user may `get /metrics` (SubjectAccessReview on
/// RBAC); the probes on their own plain-HTTP address, open to anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_metrics_need_an_authenticated_and_authorized_caller_and_probes_stay_open() {
    use krust_runtime::manager::SecureMetrics;
    let server = ApiServer::builder()
        .token("admin-token")
        .user("scraper-token", "scraper", &["monitoring"])
        .user("nobody-token", "nobody", &[])
        .user("viewer-token", "viewer", &["monitoring"])
        .start()
        .await
        .unwrap();
    let certs = tempfile::tempdir().unwrap();
    let ca = krust_apiserver::write_webhook_certificate(certs.path()).unwrap();
    let manager = Manager::builder(server.kubeconfig().config)
        .metrics_addr("127.0.0.1:0")
        .health_probe_addr("127.0.0.1:0")
        .secure_metrics(SecureMetrics::cert_dir(certs.path()))
        .build()
        .unwrap();
    Controller::for_::<ConfigMap>().build(Probe::ok()).register(&manager).unwrap();
    tokio::spawn(manager.clone().run());
    let scrape = |token: Option<&str>, path: &str| {
        let mut config = krust_client::Config::new(
            format!("https://localhost:{}", manager.local_addr().unwrap().port()).parse().unwrap(),
        );
        config.tls.ca_data = Some(ca.clone().into_bytes());
        if let Some(t) = token {
            config.auth = krust_client::config::AuthConfig::BearerToken(t.to_string().into());
        }
        let path = path.to_string();
        async move {
            let rest = krust_client::RestClient::unversioned(&config).unwrap();
            let r = rest.get().abs_path(&path).send().await.unwrap();
            (r.status().as_u16(), String::from_utf8_lossy(r.raw_body()).to_string())
        }
    };
    let probe = |path: &str| {
        let addr = manager.probe_addr().unwrap();
        let config = krust_client::Config::new(format!("http://{addr}").parse().unwrap());
        let path = path.to_string();
        async move {
            let rest = krust_client::RestClient::unversioned(&config).unwrap();
            rest.get().abs_path(&path).send().await.unwrap().status().as_u16()
        }
    };
    for _ in 0..500 {
        if probe("/readyz").await == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(probe("/readyz").await, 200, "probes need no token");
    assert_eq!(probe("/healthz").await, 200);
    assert_eq!(probe("/metrics").await, 404, "the probe server serves no metrics");
    assert_eq!(scrape(None, "/metrics").await.0, 401);
    assert_eq!(scrape(Some("made-up"), "/metrics").await.0, 401);
    assert_eq!(scrape(Some("scraper-token"), "/healthz").await.0, 404, "probes moved to their own address");
    let (code, body) = scrape(Some("scraper-token"), "/metrics").await;
    assert_eq!((code, body.trim()), (403, "Authorization denied for user scraper"));
    // The scraper's group gets the role: another member is allowed (the scraper's denial is
    // cached for 30 s, as controller-runtime caches it).
    let clientset = krust_client::Clientset::new(&server.kubeconfig().config).unwrap();
    let role: k8s_openapi::api::rbac::v1::ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "metrics-reader"},
        "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    }))
    .unwrap();
    clientset.typed(None).create(&role, &CreateOptions::default()).await.unwrap();
    let binding: k8s_openapi::api::rbac::v1::ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "metrics-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "metrics-reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "monitoring"}]
    }))
    .unwrap();
    clientset.typed(None).create(&binding, &CreateOptions::default()).await.unwrap();
    assert_eq!(scrape(Some("nobody-token"), "/metrics").await.0, 403, "not in the group");
    let (code, body) = scrape(Some("viewer-token"), "/metrics").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("controller_runtime_reconcile_total"), "{body}");
    assert_eq!(scrape(Some("scraper-token"), "/metrics").await.0, 403, "a denial is cached for 30 s");
    // The admin is in system:masters: allowed at once.
    let (code, body) = scrape(Some("admin-token"), "/metrics").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("controller_runtime_reconcile_total"), "{body}");
    manager.shutdown_token().cancel();
}

/// Each reconcile's span carries a `reconcile_id` of its own (controller-runtime's
/// `reconcileID`), so the log lines of one reconcile can be told from the next one's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reconcile_logs_under_its_own_reconcile_id() {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = Buffer::default();
    let writer = logs.clone();
    // nextest runs each test in its own process: the global subscriber is this test's.
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_env_filter("reconciled=info,krust_runtime::controller=info")
        .with_ansi(false)
        .init();
    let server = ApiServer::builder().start().await.unwrap();
    let probe = Probe::new(|req, _, _| async move {
        tracing::info!(target: "reconciled", "working on {}", req.name);
        Ok(Action::done())
    });
    let cms = configmaps(&server);
    cms.create(&cm("a"), &CreateOptions::default()).await.unwrap();
    let manager = start(&server, vec![Controller::for_::<ConfigMap>().build(probe.clone())]).await;
    probe.wait_for("a", 1).await;
    cms.patch("a", PatchType::Merge, &json!({"data": {"v": "2"}}), &PatchOptions::default()).await.unwrap();
    probe.wait_for("a", 2).await;
    // The probe counts a reconcile when it starts; its log line follows.
    let logged = || String::from_utf8_lossy(&logs.0.lock()).matches("working on a").count();
    for _ in 0..500 {
        if logged() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    manager.shutdown_token().cancel();
    let text = String::from_utf8_lossy(&logs.0.lock()).to_string();
    let ids: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("working on a"))
        .filter_map(|l| l.split("reconcile_id=").nth(1))
        .map(|rest| rest.split(['}', ' ', ':']).next().unwrap_or_default())
        .collect();
    assert_eq!(ids.len(), 2, "{text}");
    assert_ne!(ids[0], ids[1], "{text}");
    assert_eq!(ids[0].len(), 36, "{text}");
}

/// Owned objects followed through a metadata-only informer (`owns_metadata`): their changes
/// reconcile the owner as `owns` does, and no full informer of them is started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_objects_watched_by_metadata_only_reconcile_their_owner() {
    let server = ApiServer::builder().start().await.unwrap();
    let probe = Probe::ok();
    let controller = Controller::for_::<ConfigMap>().owns_metadata::<Secret>().build(probe.clone());
    let cms = configmaps(&server);
    let mut owner = cm("owner");
    owner.metadata.namespace = Some("default".into());
    let owner = cms.create(&owner, &CreateOptions::default()).await.unwrap();
    let manager = start(&server, vec![controller]).await;
    probe.wait_for("owner", 1).await;
    let secrets =
        krust_client::Clientset::new(&server.kubeconfig().config).unwrap().core_v1().secrets("default");
    let mut secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "owned", "namespace": "default"}, "stringData": {"k": "v"}}),
    )
    .unwrap();
    let mut meta = secret.metadata.clone();
    helpers::set_controller_reference(&owner, &mut meta).unwrap();
    secret.metadata = meta;
    secrets.create(&secret, &CreateOptions::default()).await.unwrap();
    probe.wait_for("owner", 2).await;
    secrets
        .patch("owned", PatchType::Merge, &json!({"data": {"k": "dzI="}}), &PatchOptions::default())
        .await
        .unwrap();
    probe.wait_for("owner", 3).await;
    let informers = format!("{:?}", manager.factory());
    assert!(
        informers.contains(r#"flavor: "metadata", gvr: "/v1/secrets""#)
            && !informers.contains(r#"flavor: "typed", gvr: "/v1/secrets""#),
        "{informers}"
    );
    manager.shutdown_token().cancel();
}

/// `apply_owned_metadata` with `owns_metadata`: the first reconcile applies; reconciles that
/// find the object as their own last apply left it make no request; a change by someone else
/// (a new resourceVersion) is applied over and reported as an update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_through_a_metadata_only_cache_skip_what_is_in_place_and_repair_what_changed() {
    let server = ApiServer::builder().start().await.unwrap();
    let results: Arc<Mutex<Vec<helpers::OperationResult>>> = Arc::default();
    let seen = results.clone();
    let probe = Probe::new(move |req: Request, ctx: Context, _| {
        let seen = seen.clone();
        async move {
            let Some(owner) = ctx.lister::<ConfigMap>().namespace(&req.namespace).get(&req.name)? else {
                return Ok(Action::done());
            };
            let mut desired: Secret = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": format!("{}-secret", req.name), "namespace": req.namespace},
                "data": {"k": "dg=="}
            }))
            .map_err(|e| TestError::Finalizer(e.to_string()))?;
            let mut meta = desired.metadata.clone();
            helpers::set_controller_reference(owner.as_ref(), &mut meta)
                .map_err(|e| TestError::Finalizer(e.to_string()))?;
            desired.metadata = meta;
            let result = helpers::apply_owned_metadata(&ctx, &desired, "test-manager").await?;
            seen.lock().push(result);
            Ok(Action::done())
        }
    });
    let controller = Controller::for_::<ConfigMap>().owns_metadata::<Secret>().build(probe.clone());
    let cms = configmaps(&server);
    let mut owner = cm("site");
    owner.metadata.namespace = Some("default".into());
    cms.create(&owner, &CreateOptions::default()).await.unwrap();
    let manager = start(&server, vec![controller]).await;
    probe.wait_for("site", 2).await; // created, then its own write comes back through the watch
    assert_eq!(results.lock()[0], helpers::OperationResult::Created, "{:?}", results.lock());
    // Reconciles of an object in place: no request at all.
    let patches = server.request_count("PATCH");
    for i in 0..5 {
        // One reconcile per patch: patches sent while a reconcile is queued collapse into it (the
        // queue deduplicates), so each waits for the reconcile it causes.
        let before = probe.count("site");
        cms.patch("site", PatchType::Merge, &json!({"data": {"i": i.to_string()}}), &PatchOptions::default())
            .await
            .unwrap();
        probe.wait_for("site", before + 1).await;
    }
    assert!(
        results.lock()[1..].iter().all(|r| *r == helpers::OperationResult::Unchanged),
        "{:?}",
        results.lock()
    );
    assert_eq!(server.request_count("PATCH") - patches, 5, "only the test's own patches");
    // Someone changes the owned Secret: applied over, an update.
    let secrets =
        krust_client::Clientset::new(&server.kubeconfig().config).unwrap().core_v1().secrets("default");
    secrets
        .patch("site-secret", PatchType::Merge, &json!({"data": {"k": "aGFja2Vk"}}), &PatchOptions::default())
        .await
        .unwrap();
    for _ in 0..500 {
        if results.lock().contains(&helpers::OperationResult::Updated) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(results.lock().contains(&helpers::OperationResult::Updated), "{:?}", results.lock());
    let secret = secrets.get("site-secret", &Default::default()).await.unwrap();
    assert_eq!(secret.data.unwrap()["k"].0, b"v", "the owned field is restored");
    let informers = format!("{:?}", manager.factory());
    assert!(!informers.contains(r#"flavor: "typed", gvr: "/v1/secrets""#), "{informers}");
    manager.shutdown_token().cancel();
}

/// A stream from outside the cluster: one reconcile of every cached object per trigger
/// (`reconcile_all_on`), and requests of its own (`watches_stream`), even of objects that do
/// not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_triggers_reconcile_every_object_or_the_requests_they_carry() {
    let server = ApiServer::builder().start().await.unwrap();
    fn stream<T: Send + 'static>(
        rx: tokio::sync::mpsc::UnboundedReceiver<T>,
    ) -> impl futures_util::Stream<Item = T> + Send + 'static {
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
    }
    let (trigger, triggers) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (send, requests) = tokio::sync::mpsc::unbounded_channel::<Request>();
    let probe = Probe::ok();
    let controller = Controller::for_::<ConfigMap>()
        .reconcile_all_on(stream(triggers))
        .watches_stream(stream(requests))
        .build(probe.clone());
    let cms = configmaps(&server);
    for name in ["a", "b", "c"] {
        cms.create(&cm(name), &CreateOptions::default()).await.unwrap();
    }
    let manager = start(&server, vec![controller]).await;
    for name in ["a", "b", "c"] {
        probe.wait_for(name, 1).await;
    }
    trigger.send(()).unwrap();
    for name in ["a", "b", "c"] {
        probe.wait_for(name, 2).await;
    }
    send.send(Request::new("default", "b")).unwrap();
    send.send(Request::new("elsewhere", "not-there")).unwrap();
    probe.wait_for("b", 3).await;
    probe.wait_for("not-there", 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!([probe.count("a"), probe.count("b"), probe.count("c")], [2, 3, 2]);
    manager.shutdown_token().cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizer_events_and_create_or_update() {
    let server = ApiServer::builder().start().await.unwrap();
    let cleaned = Arc::new(AtomicUsize::new(0));
    let c = cleaned.clone();
    let probe = Probe::new(move |req, ctx, _| {
        let c = c.clone();
        async move {
            let Some(obj) = ctx.lister::<ConfigMap>().namespace(&req.namespace).get(&req.name)? else {
                return Ok(Action::done());
            };
            let client = ctx.clientset().core_v1().config_maps(&req.namespace);
            let ctx2 = ctx.clone();
            helpers::finalizer(&client, "example.org/cleanup", (*obj).clone(), |event| async move {
                match event {
                    FinalizerEvent::Apply(cm) => {
                        // Keep a derived object in shape.
                        let mut want = ConfigMap::default();
                        want.metadata.name = Some(format!("{}-derived", req.name));
                        let derived = ctx2.clientset().core_v1().config_maps(&req.namespace);
                        let source = cm.data.clone();
                        let (_, result) =
                            helpers::create_or_update(&derived, want, |d| d.data = source.clone()).await?;
                        if result != OperationResult::Unchanged {
                            ctx2.recorder().publish_for(
                                &cm,
                                Event::normal("Synced", "Reconcile")
                                    .note(format!("derived object {result:?}")),
                            );
                        }
                        Ok::<_, TestError>(Action::done())
                    }
                    FinalizerEvent::Cleanup(_) => {
                        c.fetch_add(1, Ordering::SeqCst);
                        Ok(Action::done())
                    }
                }
            })
            .await
            .map_err(|e| TestError::Finalizer(e.to_string()))
        }
    });
    let cms = configmaps(&server);
    cms.create(&cm("a"), &CreateOptions::default()).await.unwrap();
    let manager = start(&server, vec![Controller::for_::<ConfigMap>().build(probe.clone())]).await;
    let derived =
        helpers::wait_for(&cms, "a-derived", |o: Option<&ConfigMap>| o.is_some(), Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(derived.data.unwrap()["v"], "1");
    let a = cms.get("a", &Default::default()).await.unwrap();
    assert_eq!(a.metadata.finalizers.as_deref(), Some(&["example.org/cleanup".to_string()][..]));
    // A change flows to the derived object; unchanged writes are skipped.
    cms.patch("a", PatchType::Merge, &json!({"data": {"v": "2"}}), &PatchOptions::default()).await.unwrap();
    helpers::wait_for(
        &cms,
        "a-derived",
        |o: Option<&ConfigMap>| o.is_some_and(|d| d.data.as_ref().unwrap()["v"] == "2"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    // Deleting runs the cleanup, then the finalizer goes and the object with it.
    cms.delete("a", &DeleteOptions::default()).await.unwrap();
    helpers::wait_for(&cms, "a", helpers::conditions::is_deleted(), Duration::from_secs(10)).await.unwrap();
    assert_eq!(cleaned.load(Ordering::SeqCst), 1);
    // The events: a new one per different note; written as events.k8s.io/v1.
    let events =
        krust_client::Clientset::new(&server.kubeconfig().config).unwrap().events_v1().events("default");
    for _ in 0..200 {
        if events.list(&Default::default()).await.unwrap().items.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listed = events.list(&Default::default()).await.unwrap().items;
    assert!(
        listed
            .iter()
            .any(|e| e.reason.as_deref() == Some("Synced")
                && e.note.as_deref() == Some("derived object Created")),
        "{listed:?}"
    );
    assert!(listed.iter().all(|e| e.reporting_controller.as_deref() == Some("configmap")));
    manager.shutdown_token().cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_events_become_a_series_and_spam_is_limited() {
    let server = ApiServer::builder().start().await.unwrap();
    let clientset = krust_client::Clientset::new(&server.kubeconfig().config).unwrap();
    let cms = clientset.core_v1().config_maps("default");
    let a = cms.create(&cm("a"), &CreateOptions::default()).await.unwrap();
    let broadcaster = krust_runtime::events::EventBroadcaster::new(clientset.clone());
    let recorder = broadcaster.recorder("tests", "here");
    for _ in 0..5 {
        recorder.publish_for(&a, Event::warning("Failed", "Reconcile").note("same thing"));
    }
    // 30 different notes: the spam filter lets 25 events in a burst for one object (5 used).
    for i in 0..30 {
        recorder.publish_for(&a, Event::normal("Step", "Reconcile").note(format!("step {i}")));
    }
    for _ in 0..300 {
        if broadcaster.sent() >= 25 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = clientset.events_v1().events("default").list(&Default::default()).await.unwrap().items;
    let failed: Vec<_> = events.iter().filter(|e| e.reason.as_deref() == Some("Failed")).collect();
    assert_eq!(failed.len(), 1, "repeats are one object");
    assert_eq!(failed[0].series.as_ref().map(|s| s.count), Some(5));
    let steps = events.iter().filter(|e| e.reason.as_deref() == Some("Step")).count();
    assert_eq!(steps, 20, "25 allowed in a burst, 5 taken by the repeats");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_controllers_own_and_watch_by_api_resource() {
    use kube_core::{ApiResource, GroupVersionKind};
    let server = ApiServer::builder().start().await.unwrap();
    let clientset = krust_client::Clientset::new(&server.kubeconfig().config).unwrap();
    let deployments = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"));
    let config_maps = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"));
    let secrets = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Secret"));
    let probe = Probe::ok();
    let controller = Controller::for_dynamic(&deployments, true)
        .owns_dynamic(&config_maps)
        .watches_metadata(&secrets, |s| {
            s.labels().get("for").map(|d| vec![Request::new(s.namespace(), d.as_ref())]).unwrap_or_default()
        })
        .named("dynamic")
        .build(probe.clone());
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}}}
    }))
    .unwrap();
    let web = clientset
        .apps_v1()
        .deployments("default")
        .create(&deployment, &CreateOptions::default())
        .await
        .unwrap();
    let manager = start(&server, vec![controller]).await;
    probe.wait_for("web", 1).await;
    let mut owned = cm("owned");
    owned.metadata.namespace = Some("default".into());
    helpers::set_controller_reference(&web, &mut owned.metadata).unwrap();
    clientset.core_v1().config_maps("default").create(&owned, &CreateOptions::default()).await.unwrap();
    probe.wait_for("web", 2).await;
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s", "labels": {"for": "web"}}})).unwrap();
    clientset.core_v1().secrets("default").create(&secret, &CreateOptions::default()).await.unwrap();
    probe.wait_for("web", 3).await;
    manager.shutdown_token().cancel();
}

/// A burst far beyond any buffer: 200,000 updates over 10,000 ConfigMaps, held back by the
/// server and then delivered at once, while 10,000 others do not change. The controller's
/// event path only maps events to keys of its deduplicating queue (nothing to overflow, so no
/// replay of the cache): every changed key is reconciled at its last version, no unchanged key
/// is reconciled at all.
/// `ctx.lister::<K>()` of a type no controller watches starts its informer: until that has
/// listed, reads say "not synced" (never "not found" for an object that exists), and
/// `synced_lister` waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lister_of_an_unwatched_type_never_answers_not_found_before_its_sync() {
    let server = ApiServer::builder().start().await.unwrap();
    configmaps(&server).create(&cm("present"), &CreateOptions::default()).await.unwrap();
    // Every request now takes 300 ms: the informer's initial list is still under way below.
    server.set_latency(Some(Duration::from_millis(300)));
    let ctx = Context::new(server.kubeconfig().config, "test").unwrap();
    let lister = ctx.lister::<ConfigMap>();
    let early = lister.namespace("default").get("present");
    assert!(
        matches!(early, Err(krust_client::Error::NotSynced { .. })),
        "a read before the sync must not answer: {early:?}"
    );
    assert!(matches!(lister.list(None), Err(krust_client::Error::NotSynced { .. })));
    assert!(matches!(
        lister.namespace("default").get_cached("present"),
        Err(krust_client::Error::NotSynced { .. })
    ));

    let synced = ctx.synced_lister::<ConfigMap>().await.unwrap();
    assert!(synced.namespace("default").get("present").unwrap().is_some());
    assert!(
        lister.namespace("default").get("present").unwrap().is_some(),
        "the same lister answers once synced"
    );
    assert!(lister.namespace("default").get("absent").unwrap().is_none(), "and then says not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_added_after_run_is_an_error() {
    let server = ApiServer::builder().start().await.unwrap();
    let manager =
        start(&server, vec![Controller::for_::<ConfigMap>().named("first").build(Probe::ok())]).await;
    let late = Controller::for_::<Secret>().named("late").build(Probe::ok()).register(&manager);
    match late {
        Err(krust_runtime::manager::ManagerError::ControllerAfterStart(name)) => assert_eq!(name, "late"),
        other => panic!("a controller registered after run must be refused: {other:?}"),
    }
    manager.shutdown_token().cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_200k_updates_reconciles_each_changed_key_and_no_unchanged_one() {
    const CHANGED: usize = 10_000;
    const UNCHANGED: usize = 10_000;
    const UPDATES: usize = 20;
    let server = ApiServer::builder().watch_buffer(250_000).watch_history(250_000).start().await.unwrap();
    let cms = configmaps(&server);
    let create = |range: std::ops::Range<usize>, prefix: &'static str| {
        let cms = cms.clone();
        async move {
            let mut tasks = Vec::new();
            for chunk in range.collect::<Vec<_>>().chunks(625) {
                let (cms, chunk) = (cms.clone(), chunk.to_vec());
                tasks.push(tokio::spawn(async move {
                    for i in chunk {
                        cms.create(&cm(&format!("{prefix}{i}")), &CreateOptions::default()).await.unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
    };
    create(0..CHANGED, "changed-").await;
    create(0..UNCHANGED, "still-").await;

    // The reconciler records, per key, how often it ran and the resourceVersion it read.
    type Seen = Arc<Mutex<std::collections::HashMap<String, (usize, String)>>>;
    struct Recorder(Seen);
    #[async_trait]
    impl Reconciler for Recorder {
        type Error = TestError;
        async fn reconcile(&self, req: Request, ctx: &Context) -> Result<Action, TestError> {
            let rv = ctx
                .lister::<ConfigMap>()
                .namespace(&req.namespace)
                .get_cached(&req.name)?
                .map(|o| o.resource_version().to_string())
                .unwrap_or_default();
            let mut seen = self.0.lock();
            let entry = seen.entry(req.name.clone()).or_default();
            entry.0 += 1;
            entry.1 = rv;
            Ok(Action::done())
        }
    }
    let seen: Seen = Arc::default();
    let controller = Controller::for_::<ConfigMap>().concurrency(2).build(Recorder(seen.clone()));
    let manager = start(&server, vec![controller]).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.lock().len() < CHANGED + UNCHANGED {
        assert!(Instant::now() < deadline, "the initial list was not reconciled: {}", seen.lock().len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen.lock().clear();

    // 200,000 updates while the watch is held, then all of them at once. (Raw requests, only
    // the last round's resourceVersion read: the writes are the slow part of this test.)
    server.hold_watches(true);
    let rest = krust_client::RestClient::new(
        &server.kubeconfig().config.with_group_version(kube_core::GroupVersion::gv("", "v1")),
    )
    .unwrap();
    let mut writers = Vec::new();
    for w in 0..16 {
        let rest = rest.clone();
        writers.push(tokio::spawn(async move {
            #[derive(serde::Deserialize)]
            struct Meta {
                metadata: kube_core::ObjectMeta,
            }
            let mut last = Vec::new();
            for round in 0..UPDATES {
                let body = format!(r#"{{"data":{{"v":"{round}"}}}}"#);
                for i in (w..CHANGED).step_by(16) {
                    let response = rest
                        .patch(PatchType::Merge)
                        .namespace("default")
                        .resource("configmaps")
                        .name(&format!("changed-{i}"))
                        .body_bytes(body.clone())
                        .send()
                        .await
                        .unwrap()
                        .error_for_status()
                        .unwrap();
                    if round + 1 == UPDATES {
                        let meta: Meta = response.into().unwrap();
                        last.push((i, meta.metadata.resource_version.unwrap_or_default()));
                    }
                }
            }
            last
        }));
    }
    let mut final_rv = std::collections::HashMap::new();
    for w in writers {
        for (i, rv) in w.await.unwrap() {
            final_rv.insert(format!("changed-{i}"), rv);
        }
    }
    assert!(seen.lock().is_empty(), "events got through the held watch: no burst");
    server.hold_watches(false);

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = {
            let seen = seen.lock();
            final_rv.iter().all(|(name, rv)| seen.get(name).is_some_and(|(_, read)| read == rv))
        };
        if done {
            break;
        }
        if Instant::now() >= deadline {
            let seen = seen.lock();
            let missing: Vec<_> = final_rv
                .iter()
                .filter(|(name, rv)| seen.get(*name).is_none_or(|(_, read)| read != *rv))
                .take(3)
                .map(|(n, rv)| (n.clone(), rv.clone(), seen.get(n).cloned()))
                .collect();
            let informer = manager.factory().informer::<ConfigMap>();
            let cached = missing
                .first()
                .and_then(|(n, _, _)| informer.indexer().get(&format!("default/{n}")))
                .map(|o| o.resource_version().to_string());
            panic!(
                "not every changed key was reconciled at its last version: {missing:?} ({} keys seen); cached now {cached:?}, last synced rv {}",
                seen.len(),
                informer.reflector().last_sync_resource_version()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Anything still queued would show up now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = seen.lock();
    let unchanged: Vec<&String> = seen.keys().filter(|k| k.starts_with("still-")).collect();
    assert!(
        unchanged.is_empty(),
        "{} unchanged keys were reconciled, e.g. {:?}",
        unchanged.len(),
        unchanged.first()
    );
    eprintln!("{} reconciles for {CHANGED} changed keys", seen.values().map(|(n, _)| n).sum::<usize>());
    manager.shutdown_token().cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_server_caps_its_connections_and_serves_again_when_they_go() {
    use std::io::Read;
    let server = ApiServer::builder().start().await.unwrap();
    let manager = Manager::builder(server.kubeconfig().config).metrics_addr("127.0.0.1:0").build().unwrap();
    tokio::spawn(manager.clone().run());
    let addr = manager.local_addr().unwrap();
    // 128 clients that connect and send nothing hold every slot...
    let held: Vec<std::net::TcpStream> =
        (0..128).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...so one more is closed at once instead of using up a file descriptor for good.
    let closed = tokio::task::spawn_blocking(move || {
        let mut extra = std::net::TcpStream::connect(addr).unwrap();
        extra.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let started = std::time::Instant::now();
        let read = extra.read(&mut [0u8; 16]);
        (started.elapsed(), read.map_err(|e| e.kind()))
    })
    .await
    .unwrap();
    assert!(closed.0 < Duration::from_secs(2), "an extra connection stayed open: {closed:?}");
    assert!(matches!(closed.1, Ok(0) | Err(_)), "{closed:?}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, _) = get(&manager, "/healthz").await;
    assert_eq!(code, 200);
}
