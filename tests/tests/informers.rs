//! The shared informer against krust-apiserver: initial sync and events, relist after a 410
//! with tombstones for what was deleted meanwhile, bookmarks advancing the resourceVersion,
//! faults (restart, closed watches), and handlers that panic or block.

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::ConfigMap;
use krust_apiserver::ApiServer;
use krust_client::{
    CreateOptions, DeleteOptions, ListOptions, ResourceClient, RestClient, TypedClient, UpdateOptions,
};
use krust_runtime::cache::{Cached, DeltaObject, EventHandler, SharedIndexInformer};
use kube_core::GroupVersion;
use parking_lot::Mutex;
use serde_json::json;

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl EventHandler<ConfigMap> for Recorder {
    fn on_add(&self, obj: &Arc<Cached<ConfigMap>>, initial: bool) {
        self.0.lock().push(format!("add {} {initial}", obj.name()));
    }
    fn on_update(&self, _old: &Arc<Cached<ConfigMap>>, new: &Arc<Cached<ConfigMap>>) {
        self.0.lock().push(format!("update {}", new.name()));
    }
    fn on_delete(&self, obj: &DeltaObject<Cached<ConfigMap>>) {
        match obj {
            DeltaObject::Object(o) => self.0.lock().push(format!("delete {}", o.name())),
            DeltaObject::DeletedFinalStateUnknown { key, .. } => {
                self.0.lock().push(format!("tombstone {key}"))
            }
        }
    }
}

impl Recorder {
    async fn wait_for(&self, line: &str) {
        for _ in 0..500 {
            if self.0.lock().iter().any(|l| l == line) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{line:?} never came; got {:?}", self.0.lock());
    }
}

async fn setup(
    server: &ApiServer,
) -> (TypedClient<ConfigMap>, Arc<SharedIndexInformer<ConfigMap>>, Recorder) {
    let config = server.kubeconfig().config.with_group_version(GroupVersion::gv("", "v1"));
    let rest = RestClient::new(&config).unwrap();
    let typed: TypedClient<ConfigMap> = ResourceClient::new(rest.clone(), "configmaps", Some("default"));
    let informer = SharedIndexInformer::new(
        ResourceClient::new(rest, "configmaps", Some("default")),
        ListOptions::default(),
    );
    let recorder = Recorder::default();
    informer.add_event_handler(recorder.clone());
    (typed, informer, recorder)
}

/// Waits until the server has `n` watches open, so that `close_watches` cuts them (a watch
/// still on its way when they are closed would escape and see the changes that follow as
/// events).
async fn wait_for_watches(server: &ApiServer, n: usize) {
    for _ in 0..1000 {
        if server.watch_count() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.watch_count(), n, "the informer's watches are open");
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": "1"}})).unwrap()
}

fn cached_names(informer: &SharedIndexInformer<ConfigMap>) -> Vec<String> {
    let mut names: Vec<String> = informer.indexer().list().iter().map(|o| o.name().to_string()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_then_follows_changes() {
    let server = ApiServer::builder().start().await.unwrap();
    let (cms, informer, recorder) = setup(&server).await;
    for n in ["a", "b"] {
        cms.create(&cm(n), &CreateOptions::default()).await.unwrap();
    }
    tokio::spawn(informer.clone().run());
    assert!(informer.wait_for_cache_sync(Duration::from_secs(10)).await);
    recorder.wait_for("add a true").await;
    recorder.wait_for("add b true").await;
    cms.create(&cm("c"), &CreateOptions::default()).await.unwrap();
    recorder.wait_for("add c false").await;
    let mut b = cms.get("b", &Default::default()).await.unwrap();
    b.data = Some([("v".to_string(), "2".to_string())].into());
    cms.update(&b, &UpdateOptions::default()).await.unwrap();
    recorder.wait_for("update b").await;
    cms.delete("a", &DeleteOptions::default()).await.unwrap();
    recorder.wait_for("delete a").await;
    assert_eq!(cached_names(&informer), ["b", "c"]);
    // Listers hand out typed objects, decoded on read.
    let b = informer.lister().get("default/b").unwrap().unwrap();
    assert_eq!(b.data.as_ref().unwrap()["v"], "2");
    informer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relists_after_410_with_tombstones_for_deletions_missed() {
    let server = ApiServer::builder().watch_history(5).start().await.unwrap();
    let (cms, informer, recorder) = setup(&server).await;
    for n in ["a", "b"] {
        cms.create(&cm(n), &CreateOptions::default()).await.unwrap();
    }
    tokio::spawn(informer.clone().run());
    assert!(informer.wait_for_cache_sync(Duration::from_secs(10)).await);
    wait_for_watches(&server, 1).await;
    // Disconnect: watches closed and re-watches failing (the reflector backs off and tries
    // again) until b is deleted and c created...
    server.fail_next_reads(u32::MAX, 503, None);
    server.close_watches();
    cms.delete("b", &DeleteOptions::default()).await.unwrap();
    cms.create(&cm("c"), &CreateOptions::default()).await.unwrap();
    // ...and the history of those changes is lost before the reflector comes back.
    server.compact();
    server.fail_next_reads(0, 503, None);
    // The resume from the old resourceVersion gets 410: relist, tombstone for b.
    recorder.wait_for("tombstone default/b").await;
    recorder.wait_for("add c false").await;
    assert_eq!(cached_names(&informer), ["a", "c"]);
    // A restart (objects kept, watches and history dropped): the informer follows on.
    server.restart();
    cms.create(&cm("d"), &CreateOptions::default()).await.unwrap();
    recorder.wait_for("add d false").await;
    assert_eq!(cached_names(&informer), ["a", "c", "d"]);
    informer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bookmark_advances_the_resource_version_without_an_event() {
    let server = ApiServer::builder().bookmark_interval(Duration::from_millis(100)).start().await.unwrap();
    let (_cms, informer, recorder) = setup(&server).await;
    tokio::spawn(informer.clone().run());
    assert!(informer.wait_for_cache_sync(Duration::from_secs(10)).await);
    let before: u64 = informer.reflector().last_sync_resource_version().parse().unwrap();
    // A write to another resource moves the global revision.
    let core =
        RestClient::new(&server.kubeconfig().config.with_group_version(GroupVersion::gv("", "v1"))).unwrap();
    core.post()
        .namespace("default")
        .resource("secrets")
        .body(&json!({"metadata": {"name": "s"}}))
        .send()
        .await
        .unwrap()
        .bytes()
        .unwrap();
    let target = server.resource_version();
    for _ in 0..300 {
        if informer.reflector().last_sync_resource_version().parse::<u64>().unwrap() >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after: u64 = informer.reflector().last_sync_resource_version().parse().unwrap();
    assert!(after >= target && after > before, "{before} -> {after}, target {target}");
    assert!(recorder.0.lock().is_empty(), "no event for a bookmark");
    informer.shutdown();
}

struct Panicker;
impl EventHandler<ConfigMap> for Panicker {
    fn on_add(&self, _obj: &Arc<Cached<ConfigMap>>, _initial: bool) {
        panic!("a buggy handler");
    }
}

struct Blocker;
impl EventHandler<ConfigMap> for Blocker {
    fn on_add(&self, _obj: &Arc<Cached<ConfigMap>>, _initial: bool) {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panicking_or_blocked_handler_does_not_stop_the_others() {
    let server = ApiServer::builder().start().await.unwrap();
    let (cms, informer, recorder) = setup(&server).await;
    informer.add_event_handler(Panicker);
    informer.add_event_handler(Blocker);
    tokio::spawn(informer.clone().run());
    assert!(informer.wait_for_cache_sync(Duration::from_secs(10)).await);
    for n in ["x", "y", "z"] {
        cms.create(&cm(n), &CreateOptions::default()).await.unwrap();
    }
    recorder.wait_for("add z false").await;
    // A handler added late first gets the cache.
    let late = Recorder::default();
    informer.add_event_handler(late.clone());
    late.wait_for("add x false").await;
    late.wait_for("add z false").await;
    informer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listers_read_typed_objects_by_namespace_selector_and_index() {
    use krust_runtime::cache::IndexFunc;
    let server = ApiServer::builder().start().await.unwrap();
    let config = server.kubeconfig().config.with_group_version(GroupVersion::gv("", "v1"));
    let rest = RestClient::new(&config).unwrap();
    for (ns, name, tier) in [("default", "a", "web"), ("default", "b", "db"), ("kube-system", "c", "web")] {
        let client: TypedClient<ConfigMap> = ResourceClient::new(rest.clone(), "configmaps", Some(ns));
        let obj: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"tier": tier}}, "data": {"tier": tier}}),
        )
        .unwrap();
        client.create(&obj, &CreateOptions::default()).await.unwrap();
    }
    let informer = SharedIndexInformer::<ConfigMap>::new(
        ResourceClient::new(rest, "configmaps", None),
        ListOptions::default(),
    );
    // A custom index, added before start.
    let by_tier: IndexFunc<Cached<ConfigMap>> = Arc::new(|o: &Cached<ConfigMap>| {
        o.labels().get("tier").map(|t| t.into_owned()).into_iter().collect()
    });
    informer.indexer().add_indexers(vec![("tier".to_string(), by_tier)]).unwrap();
    tokio::spawn(informer.clone().run());
    assert!(informer.wait_for_cache_sync(Duration::from_secs(10)).await);
    let lister = informer.lister();
    assert_eq!(lister.list(None).unwrap().len(), 3);
    let web: kube_core::Selector = kube_core::Expression::Equal("tier".into(), "web".into()).into();
    assert_eq!(lister.list(Some(&web)).unwrap().len(), 2);
    assert_eq!(lister.namespace("default").list(Some(&web)).unwrap().len(), 1);
    let b = lister.namespace("default").get("b").unwrap().unwrap();
    assert_eq!(b.data.as_ref().unwrap()["tier"], "db");
    assert!(lister.namespace("default").get("c").unwrap().is_none());
    let mut names: Vec<String> =
        lister.by_index("tier", "web").unwrap().iter().map(|c| c.metadata.name.clone().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["a", "c"]);
    informer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_factory_shares_one_informer_per_type_and_serves_dynamic_and_metadata_ones() {
    use krust_runtime::cache::SharedInformerFactory;
    use kube_core::{DynamicObject, GroupVersionResource, metadata::PartialObjectMeta};
    let server = ApiServer::builder().start().await.unwrap();
    let config = server.kubeconfig().config.with_group_version(GroupVersion::gv("", "v1"));
    let rest = RestClient::new(&config).unwrap();
    let cms: TypedClient<ConfigMap> = ResourceClient::new(rest.clone(), "configmaps", Some("default"));
    cms.create(&cm("one"), &CreateOptions::default()).await.unwrap();
    let transformed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = transformed.clone();
    let factory = SharedInformerFactory::new(&rest)
        .with_namespace("default")
        .with_strip_managed_fields(true)
        .with_watch_list(true)
        .with_resync(Duration::from_secs(3600))
        .with_custom_resync::<ConfigMap>(Duration::from_millis(200))
        .with_transform::<ConfigMap>(Arc::new(move |o: Cached<ConfigMap>| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            o
        }));
    let a = factory.informer::<ConfigMap>();
    let b = factory.informer::<ConfigMap>();
    assert!(Arc::ptr_eq(&a, &b), "one informer per type");
    let recorder = Recorder::default();
    a.add_event_handler(recorder.clone());
    let gvr = GroupVersionResource::gvr("", "v1", "configmaps");
    let dynamic = factory.dynamic(&gvr);
    let metadata = factory.metadata(&gvr);
    // A cluster-scoped type is watched cluster-wide by a namespaced factory (as controller-runtime).
    let namespaces = factory.informer::<k8s_openapi::api::core::v1::Namespace>();
    factory.start();
    assert!(factory.wait_for_cache_sync(Duration::from_secs(10)).await, "unsynced: {:?}", factory.unsynced());
    assert!(namespaces.lister().get("kube-system").unwrap().is_some(), "namespaces are cached cluster-wide");
    let one = a.lister().namespace("default").get("one").unwrap().unwrap();
    assert_eq!(one.data.as_ref().unwrap()["v"], "1");
    assert!(one.metadata.managed_fields.is_none(), "the factory strips managedFields");
    // ConfigMap's transform ran for ConfigMap's informer only (not the dynamic/metadata ones).
    assert_eq!(transformed.load(std::sync::atomic::Ordering::SeqCst), 1);
    // ConfigMap's custom resync period: the unchanged object comes again as an update.
    recorder.wait_for("update one").await;
    let d: Arc<DynamicObject> = dynamic.lister().namespace("default").get("one").unwrap().unwrap();
    assert_eq!(d.data["data"]["v"], "1");
    let m: Arc<PartialObjectMeta> = metadata.lister().namespace("default").get("one").unwrap().unwrap();
    assert_eq!(m.metadata.name.as_deref(), Some("one"));
    assert!(
        !String::from_utf8_lossy(metadata.indexer().get("default/one").unwrap().raw()).contains("\"data\""),
        "metadata only"
    );
    // Namespace scoping: objects elsewhere are not cached.
    let other: TypedClient<ConfigMap> = ResourceClient::new(rest, "configmaps", Some("kube-system"));
    other.create(&cm("elsewhere"), &CreateOptions::default()).await.unwrap();
    cms.create(&cm("two"), &CreateOptions::default()).await.unwrap();
    for _ in 0..500 {
        if a.indexer().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(cached_names(&a), ["one", "two"]);
    factory.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_list_syncs_and_falls_back_to_list_when_refused() {
    for refuse in [false, true] {
        let server = ApiServer::builder().start().await.unwrap();
        let config = server.kubeconfig().config.with_group_version(GroupVersion::gv("", "v1"));
        let rest = RestClient::new(&config).unwrap();
        let cms: TypedClient<ConfigMap> = ResourceClient::new(rest.clone(), "configmaps", Some("default"));
        for n in ["a", "b"] {
            cms.create(&cm(n), &CreateOptions::default()).await.unwrap();
        }
        if refuse {
            // The WatchList request is refused (as by a server without the feature): LIST instead.
            server.fail_next_reads(1, 422, None);
        }
        let informer = SharedIndexInformer::<ConfigMap>::with_watch_list(
            ResourceClient::new(rest, "configmaps", Some("default")),
            ListOptions::default(),
            true,
        );
        let recorder = Recorder::default();
        informer.add_event_handler(recorder.clone());
        tokio::spawn(informer.clone().run());
        assert!(informer.wait_for_cache_sync(Duration::from_secs(10)).await, "refused: {refuse}");
        recorder.wait_for("add a true").await;
        recorder.wait_for("add b true").await;
        cms.create(&cm("c"), &CreateOptions::default()).await.unwrap();
        recorder.wait_for("add c false").await;
        assert_eq!(cached_names(&informer), ["a", "b", "c"]);
        informer.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_handler_resync_registration_sync_and_removal() {
    let server = ApiServer::builder().start().await.unwrap();
    let (cms, informer, plain) = setup(&server).await;
    cms.create(&cm("a"), &CreateOptions::default()).await.unwrap();
    let resyncing = Recorder::default();
    let registration =
        informer.add_event_handler_with_resync(resyncing.clone(), Some(Duration::from_millis(200)));
    tokio::spawn(informer.clone().run());
    assert!(informer.wait_for_cache_sync(Duration::from_secs(10)).await);
    for _ in 0..500 {
        if registration.has_synced() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(registration.has_synced());
    // The resyncing handler is handed the cached object again; the other one is not.
    resyncing.wait_for("update a").await;
    assert!(!plain.0.lock().iter().any(|l| l.starts_with("update")), "{:?}", plain.0.lock());
    // A late handler syncs after its replay of the cache.
    let late = Recorder::default();
    let late_registration = informer.add_event_handler(late.clone());
    late.wait_for("add a false").await;
    for _ in 0..500 {
        if late_registration.has_synced() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(late_registration.has_synced());
    // A removed handler hears nothing more.
    informer.remove_event_handler(&late_registration);
    cms.create(&cm("b"), &CreateOptions::default()).await.unwrap();
    plain.wait_for("add b false").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!late.0.lock().iter().any(|l| l.contains(" b ")), "{:?}", late.0.lock());
    informer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_backs_off_without_relisting() {
    let server = ApiServer::builder().start().await.unwrap();
    let (cms, informer, recorder) = setup(&server).await;
    cms.create(&cm("a"), &CreateOptions::default()).await.unwrap();
    tokio::spawn(informer.clone().run());
    assert!(informer.wait_for_cache_sync(Duration::from_secs(10)).await);
    assert_eq!(informer.reflector().lists_started(), 1);
    server.fail_next_reads(2, 429, None);
    server.close_watches();
    cms.create(&cm("b"), &CreateOptions::default()).await.unwrap();
    recorder.wait_for("add b false").await;
    assert_eq!(informer.reflector().lists_started(), 1, "a 429 is retried as a watch, not a relist");
    informer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_at_watch_start_relists_and_tombstones_what_was_deleted() {
    let server = ApiServer::builder().start().await.unwrap();
    let (cms, informer, recorder) = setup(&server).await;
    for n in ["a", "b"] {
        cms.create(&cm(n), &CreateOptions::default()).await.unwrap();
    }
    tokio::spawn(informer.clone().run());
    assert!(informer.wait_for_cache_sync(Duration::from_secs(10)).await);
    assert_eq!(informer.reflector().lists_started(), 1);
    wait_for_watches(&server, 1).await;
    // Re-watches fail (503: retried as watches) until a is deleted; the next one is answered
    // with HTTP 410 (not an ERROR event).
    server.fail_next_reads(u32::MAX, 503, None);
    server.close_watches();
    cms.delete("a", &DeleteOptions::default()).await.unwrap();
    server.fail_next_reads(1, 410, None);
    recorder.wait_for("tombstone default/a").await;
    assert_eq!(informer.reflector().lists_started(), 2, "the 410 led to one relist");
    assert_eq!(cached_names(&informer), ["b"]);
    informer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_large_resource_version_relists() {
    let server = ApiServer::builder().start().await.unwrap();
    let (cms, informer, recorder) = setup(&server).await;
    cms.create(&cm("a"), &CreateOptions::default()).await.unwrap();
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = errors.clone();
    let informer = SharedIndexInformer::<ConfigMap>::with_options(
        informer.reflector().client().clone(),
        ListOptions::default(),
        krust_runtime::cache::InformerOptions {
            watch_error_handler: Some(Arc::new(move |e: &krust_client::Error| {
                seen.lock().push(format!("{e}"))
            })),
            ..Default::default()
        },
    );
    informer.add_event_handler(recorder.clone());
    tokio::spawn(informer.clone().run());
    assert!(informer.wait_for_cache_sync(Duration::from_secs(10)).await);
    // A failover to a replica 1000 revisions behind: the resume is refused as too large.
    server.set_watch_lag(Some(1000));
    server.close_watches();
    for _ in 0..500 {
        if informer.reflector().lists_started() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(informer.reflector().lists_started() >= 2, "no relist after ResourceVersionTooLarge");
    assert!(
        errors.lock().iter().any(|e| e.contains("Too large resource version")),
        "the error hook saw {:?}",
        errors.lock()
    );
    // The replica catches up: the informer watches again and follows changes.
    server.set_watch_lag(None);
    cms.create(&cm("b"), &CreateOptions::default()).await.unwrap();
    recorder.wait_for("add b false").await;
    assert_eq!(cached_names(&informer), ["a", "b"]);
    informer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_continue_token_on_the_second_page_restarts_the_list() {
    let server = ApiServer::builder().start().await.unwrap();
    let config = server.kubeconfig().config.with_group_version(GroupVersion::gv("", "v1"));
    let rest = RestClient::new(&config).unwrap();
    let cms: TypedClient<ConfigMap> = ResourceClient::new(rest.clone(), "configmaps", Some("default"));
    let mut writes = Vec::new();
    for i in 0..600 {
        let cms = cms.clone();
        writes.push(tokio::spawn(async move {
            cms.create(&cm(&format!("cm-{i:03}")), &CreateOptions::default()).await
        }));
    }
    for w in writes {
        w.await.unwrap().unwrap();
    }
    // Every request takes 2 s: the first page is served at ~2 s, the second at ~4 s;
    // compacting at ~3 s expires the second page's continue token (1 s of margin each way).
    server.set_latency(Some(Duration::from_millis(2000)));
    let informer = SharedIndexInformer::<ConfigMap>::new(
        ResourceClient::new(rest, "configmaps", Some("default")),
        ListOptions::default(),
    );
    tokio::spawn(informer.clone().run());
    tokio::time::sleep(Duration::from_millis(3000)).await;
    server.compact();
    assert!(informer.wait_for_cache_sync(Duration::from_secs(30)).await);
    server.set_latency(None);
    assert_eq!(informer.indexer().len(), 600);
    assert_eq!(informer.reflector().lists_started(), 2, "the list restarted once after the 410");
    informer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_fields_are_stripped_on_request_and_transforms_apply() {
    use krust_runtime::cache::InformerOptions;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let server = ApiServer::builder().start().await.unwrap();
    let config = server.kubeconfig().config.with_group_version(GroupVersion::gv("", "v1"));
    let rest = RestClient::new(&config).unwrap();
    let cms: TypedClient<ConfigMap> = ResourceClient::new(rest.clone(), "configmaps", Some("default"));
    cms.create(&cm("a"), &CreateOptions { field_manager: Some("tests".into()), ..Default::default() })
        .await
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let options = InformerOptions {
        strip_managed_fields: true,
        transform: Some(Arc::new(move |o: Cached<ConfigMap>| {
            counted.fetch_add(1, Ordering::SeqCst);
            o
        })),
        ..Default::default()
    };
    let stripped = SharedIndexInformer::<ConfigMap>::with_options(
        ResourceClient::new(rest.clone(), "configmaps", Some("default")),
        ListOptions::default(),
        options,
    );
    let kept = SharedIndexInformer::<ConfigMap>::with_options(
        ResourceClient::new(rest, "configmaps", Some("default")),
        ListOptions::default(),
        InformerOptions::default(),
    );
    tokio::spawn(stripped.clone().run());
    tokio::spawn(kept.clone().run());
    assert!(stripped.wait_for_cache_sync(Duration::from_secs(10)).await);
    assert!(kept.wait_for_cache_sync(Duration::from_secs(10)).await);
    let a = stripped.lister().namespace("default").get("a").unwrap().unwrap();
    assert!(a.metadata.managed_fields.is_none(), "stripped on request");
    assert_eq!(a.data.as_ref().unwrap()["v"], "1");
    let b = kept.lister().namespace("default").get("a").unwrap().unwrap();
    assert_eq!(b.metadata.managed_fields.as_ref().unwrap()[0].manager.as_deref(), Some("tests"));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the transform saw the listed object");
    stripped.shutdown();
    kept.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_overflows_during_the_initial_list_catches_up_and_syncs() {
    use std::collections::HashSet;
    let server = ApiServer::builder().start().await.unwrap();
    let config = server.kubeconfig().config.with_group_version(GroupVersion::gv("", "v1"));
    let rest = RestClient::new(&config).unwrap();
    let cms: TypedClient<ConfigMap> = ResourceClient::new(rest.clone(), "configmaps", Some("default"));
    let mut writes = Vec::new();
    for i in 0..3000 {
        let cms = cms.clone();
        writes.push(tokio::spawn(async move {
            cms.create(&cm(&format!("cm-{i:04}")), &CreateOptions::default()).await
        }));
    }
    for w in writes {
        w.await.unwrap().unwrap();
    }
    // A handler slower than the informer: its 1,024-slot buffer overflows during the list.
    struct Slow(Arc<Mutex<HashSet<String>>>);
    impl EventHandler<ConfigMap> for Slow {
        fn on_add(&self, obj: &Arc<Cached<ConfigMap>>, _initial: bool) {
            std::thread::sleep(Duration::from_micros(200));
            self.0.lock().insert(obj.name().to_string());
        }
    }
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let informer = SharedIndexInformer::<ConfigMap>::new(
        ResourceClient::new(rest, "configmaps", Some("default")),
        ListOptions::default(),
    );
    let registration = informer.add_event_handler(Slow(seen.clone()));
    tokio::spawn(informer.clone().run());
    // No event comes after the list: the catch-up must not depend on one.
    for _ in 0..1000 {
        if registration.has_synced() && seen.lock().len() == 3000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen.lock().len(), 3000, "every object reached the slow handler");
    assert!(registration.has_synced(), "the slow handler's registration synced");
    informer.shutdown();
}

/// A relist after a 410 diffs by key and resourceVersion: what did not change stays the very
/// object already cached (no second copy is kept, even for a moment), what changed is replaced,
/// what is gone gets a tombstone; the list is handed over page by page (600 objects, 2 pages).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relist_keeps_unchanged_objects_and_replaces_only_what_changed() {
    use std::collections::HashMap;
    let server = ApiServer::builder().watch_history(5).start().await.unwrap();
    let (cms, informer, recorder) = setup(&server).await;
    let mut creates = Vec::new();
    for i in 0..600 {
        let cms = cms.clone();
        creates.push(tokio::spawn(async move {
            cms.create(&cm(&format!("cm-{i:03}")), &CreateOptions::default()).await.unwrap();
        }));
    }
    for c in creates {
        c.await.unwrap();
    }
    tokio::spawn(informer.clone().run());
    assert!(informer.wait_for_cache_sync(Duration::from_secs(10)).await);
    let before: HashMap<String, Arc<Cached<ConfigMap>>> =
        informer.indexer().list().into_iter().map(|o| (o.name().to_string(), o)).collect();
    assert_eq!(before.len(), 600);
    assert_eq!(informer.reflector().lists_completed(), 1);
    wait_for_watches(&server, 1).await;

    // Disconnected (every re-watch fails until the changes are made, however long they take
    // on a loaded machine), changes happen, their history is lost.
    server.fail_next_reads(u32::MAX, 503, None);
    server.close_watches();
    for i in 0..5 {
        let patch = json!({"data": {"v": "2"}});
        cms.patch(&format!("cm-{i:03}"), krust_client::PatchType::Merge, &patch, &Default::default())
            .await
            .unwrap();
    }
    for i in 10..13 {
        cms.delete(&format!("cm-{i:03}"), &DeleteOptions::default()).await.unwrap();
    }
    for name in ["new-a", "new-b"] {
        cms.create(&cm(name), &CreateOptions::default()).await.unwrap();
    }
    server.compact();
    server.fail_next_reads(0, 503, None);
    recorder.wait_for("tombstone default/cm-012").await;
    recorder.wait_for("add new-b false").await;
    for _ in 0..500 {
        if informer.reflector().lists_completed() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(informer.reflector().lists_completed(), 2, "one relist");

    let after: HashMap<String, Arc<Cached<ConfigMap>>> =
        informer.indexer().list().into_iter().map(|o| (o.name().to_string(), o)).collect();
    assert_eq!(after.len(), 600 - 3 + 2);
    for (name, old) in &before {
        let i: usize = name.trim_start_matches("cm-").parse().unwrap();
        match after.get(name) {
            None => assert!((10..13).contains(&i), "{name} is gone"),
            Some(new) if i < 5 => {
                assert!(!Arc::ptr_eq(old, new), "{name} changed: replaced");
                assert_ne!(old.resource_version(), new.resource_version());
                assert_eq!(new.decode().unwrap().data.unwrap()["v"], "2");
            }
            Some(new) => assert!(Arc::ptr_eq(old, new), "{name} did not change: the cached object is kept"),
        }
    }
    for i in 10..13 {
        recorder.wait_for(&format!("tombstone default/cm-{i:03}")).await;
    }
    informer.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_cut_in_the_middle_of_an_event_is_resumed_without_losing_it() {
    let server = ApiServer::builder().start().await.unwrap();
    let (cms, informer, recorder) = setup(&server).await;
    tokio::spawn(informer.clone().run());
    assert!(informer.wait_for_cache_sync(Duration::from_secs(10)).await);
    for round in 0..3 {
        // The next event reaches the informer only half sent, then the connection drops.
        server.cut_watches_mid_event();
        let name = format!("cut-{round}");
        let created = cms.create(&cm(&name), &CreateOptions::default()).await.unwrap();
        recorder.wait_for(&format!("add {name} false")).await;
        let cached = informer.indexer().get(&format!("default/{name}")).unwrap();
        assert_eq!(Some(cached.resource_version()), created.metadata.resource_version.as_deref());
    }
    assert_eq!(cached_names(&informer), ["cut-0", "cut-1", "cut-2"]);
    informer.shutdown();
}

/// After a restore from an old backup, the new server's resourceVersions are lower than the
/// ones the informer last saw: its resume is "too large", and it relists instead of waiting for
/// the server to catch up with a revision that will mean something else (client-go's reflector
/// answers "too large" the same way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restored_with_lower_resource_versions_is_relisted() {
    let first = ApiServer::builder().start().await.unwrap();
    let port: u16 = first.url().rsplit(':').next().unwrap().parse().unwrap();
    let (cms, informer, recorder) = setup(&first).await;
    cms.create(&cm("old"), &CreateOptions::default()).await.unwrap();
    tokio::spawn(informer.clone().run());
    assert!(informer.wait_for_cache_sync(Duration::from_secs(10)).await);
    recorder.wait_for("add old true").await;
    first.shutdown().await;

    // Same address, revisions far below the ones the informer saw, other objects.
    let second = ApiServer::builder().port(port).first_revision(1_000).start().await.unwrap();
    let (cms, _, _) = setup(&second).await;
    let created = cms.create(&cm("restored"), &CreateOptions::default()).await.unwrap();
    assert!(created.metadata.resource_version.unwrap().parse::<u64>().unwrap() < 10_000);
    for _ in 0..300 {
        if cached_names(&informer) == ["restored"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cached_names(&informer), ["restored"], "the informer kept the old server's objects");
    let told = recorder.0.lock().iter().any(|l| l == "delete old" || l == "tombstone default/old");
    assert!(told, "handlers were not told that old is gone: {:?}", recorder.0.lock());
    informer.shutdown();
}

/// An informer of a set of namespaces (controller-runtime's `DefaultNamespaces`): one cache with
/// the objects of those namespaces only, live changes of those only, and a relist of one
/// namespace that replaces only that namespace's objects (no tombstone for the others').
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_informer_of_several_namespaces_caches_them_together_and_relists_each_alone() {
    use krust_runtime::cache::InformerOptions;
    let server = ApiServer::builder().watch_history(5).start().await.unwrap();
    let config = server.kubeconfig().config.with_group_version(GroupVersion::gv("", "v1"));
    let rest = RestClient::new(&config).unwrap();
    let in_ns =
        |ns: &str| -> TypedClient<ConfigMap> { ResourceClient::new(rest.clone(), "configmaps", Some(ns)) };
    let namespaces: TypedClient<k8s_openapi::api::core::v1::Namespace> =
        ResourceClient::new(rest.clone(), "namespaces", None);
    for (ns, n) in [("a", 50), ("b", 50), ("c", 10)] {
        let namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        namespaces.create(&namespace, &CreateOptions::default()).await.unwrap();
        for i in 0..n {
            in_ns(ns).create(&cm(&format!("{ns}-{i}")), &CreateOptions::default()).await.unwrap();
        }
    }
    let informer = SharedIndexInformer::with_options(
        ResourceClient::new(rest.clone(), "configmaps", None),
        ListOptions::default(),
        InformerOptions { namespaces: vec!["b".into(), "a".into()], ..Default::default() },
    );
    let recorder = Recorder::default();
    informer.add_event_handler(recorder.clone());
    tokio::spawn(informer.clone().run());
    assert!(informer.wait_for_cache_sync(Duration::from_secs(10)).await);
    let keys = || {
        let mut keys: Vec<String> = informer.indexer().list_keys();
        keys.sort();
        keys
    };
    let listed = keys();
    assert_eq!(listed.len(), 100, "{listed:?}");
    assert!(listed.iter().all(|k| k.starts_with("a/") || k.starts_with("b/")), "{listed:?}");
    assert_eq!(informer.reflectors().count(), 2);
    // Live: a change in a watched namespace arrives; one in another namespace does not.
    in_ns("c").create(&cm("c-new"), &CreateOptions::default()).await.unwrap();
    in_ns("a").create(&cm("a-new"), &CreateOptions::default()).await.unwrap();
    recorder.wait_for("add a-new false").await;
    assert!(!keys().iter().any(|k| k.starts_with("c/")), "{:?}", keys());
    let before: std::collections::HashMap<String, Arc<Cached<ConfigMap>>> =
        informer.indexer().list().into_iter().map(|o| (o.key(), o)).collect();

    wait_for_watches(&server, 2).await;
    // Disconnected; b-1 is deleted and a-0 changed meanwhile; history lost: both relist.
    server.fail_next_reads(u32::MAX, 503, None);
    server.close_watches();
    in_ns("b").delete("b-1", &DeleteOptions::default()).await.unwrap();
    let patch = json!({"data": {"v": "2"}});
    in_ns("a").patch("a-0", krust_client::PatchType::Merge, &patch, &Default::default()).await.unwrap();
    server.compact();
    server.fail_next_reads(0, 503, None);
    recorder.wait_for("tombstone b/b-1").await;
    for _ in 0..500 {
        if informer.reflectors().all(|r| r.lists_completed() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(informer.reflectors().all(|r| r.lists_completed() == 2), "each namespace relisted once");
    recorder.wait_for("update a-0").await;
    let removed: Vec<String> = recorder
        .0
        .lock()
        .iter()
        .filter(|l| l.starts_with("tombstone") || l.starts_with("delete"))
        .cloned()
        .collect();
    assert_eq!(removed, ["tombstone b/b-1"], "a relist removes only what its namespace lost");
    let after = keys();
    assert_eq!(after.len(), 100, "{after:?}");
    for (key, old) in &before {
        match informer.indexer().get(key) {
            None => assert_eq!(key, "b/b-1"),
            Some(new) if key == "a/a-0" => assert_ne!(old.resource_version(), new.resource_version()),
            Some(new) => assert!(Arc::ptr_eq(old, &new), "{key} did not change: the cached object is kept"),
        }
    }
    informer.shutdown();
}
