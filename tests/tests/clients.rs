//! The four clients (typed clientset, dynamic, discovery with RESTMapper, metadata) against
//! krust-apiserver over HTTP.

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::{
    api::{
        apps::v1::Deployment, batch::v1::Job, coordination::v1::Lease, core::v1::ConfigMap,
        events::v1::Event, rbac::v1::Role,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use krust_apiserver::ApiServer;
use krust_client::{
    CachedDiscovery, Clientset, CreateOptions, DeleteOptions, Deleted, DiscoveryClient, DynamicClient,
    GetOptions, ListOptions, MetadataClient, PatchOptions, PatchType, RestMapper, TypedClient, UpdateOptions,
    retry_on_conflict,
};
use kube::CustomResource;
use kube_core::{DynamicObject, GroupVersionKind, GroupVersionResource, Resource, WatchEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::json;

async fn start() -> (ApiServer, Clientset) {
    let server = ApiServer::builder().start().await.unwrap();
    let clientset = Clientset::new(&server.kubeconfig().config).unwrap();
    (server, clientset)
}

fn from_json<K: DeserializeOwned>(v: serde_json::Value) -> K {
    serde_json::from_value(v).unwrap()
}

/// Every verb on one typed client: create, get, list, watch, update, patch, apply, delete,
/// delete_collection.
async fn every_verb<K>(client: TypedClient<K>, make: impl Fn(&str) -> K)
where
    K: Resource + Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + 'static,
{
    let what = std::any::type_name::<K>();
    let created = client
        .create(&make("one"), &CreateOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let rv = created.meta().resource_version.clone().unwrap();
    let mut watch =
        client.watch(&ListOptions { resource_version: Some(rv), ..Default::default() }).await.unwrap();
    let got = client.get("one", &GetOptions::default()).await.unwrap();
    assert_eq!(got.meta().uid, created.meta().uid, "{what}");
    let mut changed = got.clone();
    changed.meta_mut().labels = Some([("changed".to_string(), "yes".to_string())].into());
    let updated = client.update(&changed, &UpdateOptions::default()).await.unwrap();
    assert_eq!(updated.meta().labels.as_ref().unwrap()["changed"], "yes", "{what}");
    match tokio::time::timeout(Duration::from_secs(5), watch.next()).await.unwrap() {
        Some(Ok(WatchEvent::Modified(o))) => assert_eq!(o.meta().name.as_deref(), Some("one")),
        other => panic!("{what}: expected MODIFIED, got {other:?}"),
    }
    let patched = client
        .patch(
            "one",
            PatchType::Merge,
            &json!({"metadata": {"annotations": {"a": "b"}}}),
            &PatchOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(patched.meta().annotations.as_ref().unwrap()["a"], "b", "{what}");
    // Server-side apply of another object (creates it).
    let applied = client.apply(&make("two"), &PatchOptions::apply("tests")).await.unwrap();
    assert_eq!(
        applied.meta().managed_fields.as_ref().unwrap()[0].manager.as_deref(),
        Some("tests"),
        "{what}"
    );
    let list = client.list(&ListOptions::default()).await.unwrap();
    assert_eq!(list.items.len(), 2, "{what}");
    match client.delete("one", &DeleteOptions::default()).await.unwrap() {
        Deleted::Status(_) | Deleted::Object(_) => {}
    }
    let err = client.get("one", &GetOptions::default()).await.unwrap_err();
    assert!(err.is_not_found(), "{what}: {err}");
    client.delete_collection(&DeleteOptions::default(), &ListOptions::default()).await.unwrap();
    assert!(client.list(&ListOptions::default()).await.unwrap().items.is_empty(), "{what}");
}

#[tokio::test]
async fn every_verb_for_a_type_of_every_group() {
    let (_server, cs) = start().await;
    every_verb(cs.core_v1().config_maps("default"), |n| {
        from_json::<ConfigMap>(json!({"metadata": {"name": n}, "data": {"k": "v"}}))
    })
    .await;
    let deployment = |n: &str| -> Deployment {
        from_json(
            json!({"metadata": {"name": n}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": n}},
            "template": {"metadata": {"labels": {"app": n}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
        )
    };
    every_verb(cs.apps_v1().deployments("default"), deployment).await;
    every_verb(cs.batch_v1().jobs("default"), |n| {
        from_json::<Job>(json!({"metadata": {"name": n}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}))
    })
    .await;
    every_verb(cs.coordination_v1().leases("default"), |n| {
        from_json::<Lease>(json!({"metadata": {"name": n}, "spec": {"holderIdentity": "me"}}))
    })
    .await;
    every_verb(cs.rbac_v1().roles("default"), |n| {
        from_json::<Role>(json!({"metadata": {"name": n}, "rules": []}))
    })
    .await;
    every_verb(cs.events_v1().events("default"), |n| {
        from_json::<Event>(json!({"metadata": {"name": n}, "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "x", "reportingInstance": "y", "action": "A", "reason": "R"}))
    })
    .await;

    // Status and scale subresources.
    let deployments = cs.apps_v1().deployments("default");
    let d = deployments.create(&deployment("web"), &CreateOptions::default()).await.unwrap();
    let mut with_status = d.clone();
    with_status.status = Some(from_json(json!({"replicas": 1, "readyReplicas": 1})));
    let s = deployments.update_status(&with_status, &UpdateOptions::default()).await.unwrap();
    assert_eq!(s.status.unwrap().ready_replicas, Some(1));
    let s = deployments
        .patch_status("web", PatchType::Merge, &json!({"status": {"replicas": 2}}), &PatchOptions::default())
        .await
        .unwrap();
    assert_eq!(s.status.unwrap().replicas, Some(2));
    let mut scale = deployments.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(1));
    scale.spec.as_mut().unwrap().replicas = Some(4);
    let scale = deployments.update_scale("web", &scale, &UpdateOptions::default()).await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(4));
    // The status subresource ignores the spec it is sent (k8s-openapi 1.37 makes a Deployment's
    // spec required, so one is always sent).
    let mut status_apply = deployment("web");
    status_apply.status = Some(from_json(json!({"availableReplicas": 1})));
    let applied =
        deployments.apply_status(&status_apply, &PatchOptions::apply("status-owner")).await.unwrap();
    assert_eq!(applied.status.unwrap().available_replicas, Some(1));
    assert_eq!(applied.spec.replicas, Some(4), "apply_status does not touch spec");

    // Cluster-scoped: namespaces.
    let ns = cs.core_v1().namespaces().get("kube-system", &GetOptions::default()).await.unwrap();
    assert_eq!(ns.metadata.name.as_deref(), Some("kube-system"));
    // Bad input: a 404 is is_not_found; apply without a field manager is refused before sending.
    let err = cs.core_v1().pods("default").get("missing", &GetOptions::default()).await.unwrap_err();
    assert!(err.is_not_found());
    let err = cs
        .core_v1()
        .config_maps("default")
        .apply(&from_json(json!({"metadata": {"name": "x"}})), &PatchOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("field manager"), "{err}");
}

#[tokio::test]
async fn pager_streams_2500_objects_in_pages_of_500_and_retry_on_conflict() {
    let (_server, cs) = start().await;
    let cms = cs.core_v1().config_maps("default");
    let mut writes = Vec::new();
    for i in 0..2500 {
        let cms = cms.clone();
        writes.push(tokio::spawn(async move {
            cms.create(
                &from_json(json!({"metadata": {"name": format!("cm-{i:04}")}})),
                &CreateOptions::default(),
            )
            .await
        }));
        if writes.len() == 64 {
            for w in writes.drain(..) {
                w.await.unwrap().unwrap();
            }
        }
    }
    for w in writes {
        w.await.unwrap().unwrap();
    }
    let first = cms.list(&ListOptions::default().limit(500)).await.unwrap();
    assert_eq!(first.items.len(), 500);
    assert_eq!(first.metadata.remaining_item_count, Some(2000));
    let all: Vec<ConfigMap> = cms.pager(&ListOptions::default()).try_collect().await.unwrap();
    assert_eq!(all.len(), 2500);
    let mut names: Vec<String> = all.into_iter().map(|c| c.metadata.name.unwrap()).collect();
    names.dedup();
    assert_eq!(names.len(), 2500, "no duplicates across pages");

    // retry_on_conflict: two writers race on one object; both increments land.
    let counter = cms
        .create(
            &from_json(json!({"metadata": {"name": "counter"}, "data": {"n": "0"}})),
            &CreateOptions::default(),
        )
        .await
        .unwrap();
    let _ = counter;
    let bump = |cms: TypedClient<ConfigMap>| async move {
        retry_on_conflict(krust_client::DEFAULT_RETRY, || {
            let cms = cms.clone();
            async move {
                let mut c = cms.get("counter", &GetOptions::default()).await?;
                let n: u32 = c.data.as_ref().unwrap()["n"].parse().unwrap();
                tokio::task::yield_now().await;
                c.data = Some([("n".to_string(), (n + 1).to_string())].into());
                cms.update(&c, &UpdateOptions::default()).await
            }
        })
        .await
    };
    let (a, b) = tokio::join!(bump(cms.clone()), bump(cms.clone()));
    a.unwrap();
    b.unwrap();
    let c = cms.get("counter", &GetOptions::default()).await.unwrap();
    assert_eq!(c.data.unwrap()["n"], "2");
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(group = "example.org", version = "v1", kind = "Website", namespaced)]
struct WebsiteSpec {
    image: String,
    replicas: i32,
}

fn website_crd() -> CustomResourceDefinition {
    from_json(json!({
        "metadata": {"name": "websites.example.org"},
        "spec": {"group": "example.org", "scope": "Namespaced",
            "names": {"plural": "websites", "singular": "website", "kind": "Website", "shortNames": ["ws"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "required": ["image"],
                    "properties": {"image": {"type": "string"}, "replicas": {"type": "integer", "minimum": 1, "maximum": 5}}}}}}}]}
    }))
}

#[tokio::test]
async fn crds_through_the_dynamic_client_and_a_derived_type_with_discovery_and_restmapper() {
    let (server, cs) = start().await;
    let config = server.kubeconfig().config;
    let discovery = DiscoveryClient::new(&config).unwrap();
    let mapper = RestMapper::new(CachedDiscovery::new(discovery.clone()));
    // Built-in names, kubectl style.
    for name in ["deploy", "deployments", "Deployment", "deployment", "deployments.apps"] {
        let m = mapper.resolve(name).await.unwrap();
        assert_eq!(m.gvr, GroupVersionResource::gvr("apps", "v1", "deployments"), "{name}");
        assert!(m.namespaced);
    }
    assert_eq!(mapper.resolve("ns").await.unwrap().gvk, GroupVersionKind::gvk("", "v1", "Namespace"));
    let m = mapper.mapping_for_kind(&GroupVersionKind::gvk("apps", "v1", "StatefulSet")).await.unwrap();
    assert_eq!(m.gvr.resource, "statefulsets");
    assert_eq!(mapper.kind_for(&GroupVersionResource::gvr("", "v1", "pods")).await.unwrap().kind, "Pod");
    assert!(mapper.resolve("websites").await.is_err(), "not yet");

    // Discovery, aggregated and legacy: every built-in group.
    let aggregated = discovery.server_groups_and_resources().await.unwrap();
    let legacy = discovery.server_groups_and_resources_legacy().await.unwrap();
    for d in [&aggregated, &legacy] {
        let groups: Vec<&str> = d.groups.iter().map(|g| g.name.as_str()).collect();
        for g in [
            "",
            "apps",
            "batch",
            "coordination.k8s.io",
            "rbac.authorization.k8s.io",
            "events.k8s.io",
            "apiextensions.k8s.io",
        ] {
            assert!(groups.contains(&g), "{g} missing from {groups:?}");
        }
        assert!(d.failed.is_empty());
        let apps = d.resources.iter().find(|l| l.group_version == "apps/v1").unwrap();
        assert!(apps.resources.iter().any(|r| r.name == "deployments/scale"));
    }
    assert_eq!(discovery.server_version().await.unwrap().major, "1");
    let preferred = discovery.server_preferred_resources().await.unwrap();
    assert!(
        preferred.iter().any(|l| l.group_version == "v1")
            && preferred.iter().any(|l| l.group_version == "apps/v1")
    );
    let groups = discovery.server_groups().await.unwrap();
    assert_eq!(groups.groups[0].name, "", "the core group comes first");
    let err = discovery.server_resources_for_group_version("nope.example/v9").await.unwrap_err();
    assert!(err.to_string().contains("nope.example/v9"), "{err}");

    // Create the CRD; the mapper learns it after a miss.
    cs.apiextensions_v1()
        .custom_resource_definitions()
        .create(&website_crd(), &CreateOptions::default())
        .await
        .unwrap();
    let m = mapper.resolve("ws").await.unwrap();
    assert_eq!(m.gvr, GroupVersionResource::gvr("example.org", "v1", "websites"));
    let refreshed = discovery.server_groups_and_resources().await.unwrap();
    assert!(refreshed.groups.iter().any(|g| g.name == "example.org"));
    let refreshed = discovery.server_groups_and_resources_legacy().await.unwrap();
    assert!(refreshed.resources.iter().any(|l| l.group_version == "example.org/v1"));

    // Through the dynamic client.
    let dynamic = DynamicClient::new(&config).unwrap();
    let sites = dynamic.resource(&m.gvr).namespace("default");
    let obj: DynamicObject = from_json(
        json!({"apiVersion": "example.org/v1", "kind": "Website", "metadata": {"name": "blog"}, "spec": {"image": "nginx", "replicas": 2}}),
    );
    let created = sites.create(&obj, &CreateOptions::default()).await.unwrap();
    assert_eq!(created.data["spec"]["replicas"], 2);
    let bad: DynamicObject = from_json(
        json!({"apiVersion": "example.org/v1", "kind": "Website", "metadata": {"name": "bad"}, "spec": {"replicas": 9}}),
    );
    let err = sites.create(&bad, &CreateOptions::default()).await.unwrap_err();
    assert!(err.is_invalid(), "{err}");
    let mut causes: Vec<String> = err
        .api_error()
        .unwrap()
        .status
        .details
        .as_ref()
        .unwrap()
        .causes
        .iter()
        .map(|c| c.field.clone())
        .collect();
    causes.sort();
    assert_eq!(causes, ["spec.image", "spec.replicas"]);
    let list = dynamic.resource(&m.gvr).cluster().list(&ListOptions::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);

    // Through a derived type.
    let typed: TypedClient<Website> = cs.typed(Some("default"));
    let site = typed.get("blog", &GetOptions::default()).await.unwrap();
    assert_eq!(site.spec.image, "nginx");
    let shop = Website::new("shop", WebsiteSpec { image: "caddy".into(), replicas: 1 });
    typed.create(&shop, &CreateOptions::default()).await.unwrap();
    let applied = typed
        .apply(
            &Website::new("shop", WebsiteSpec { image: "caddy:2".into(), replicas: 3 }),
            &PatchOptions::apply("tests").force(),
        )
        .await
        .unwrap();
    assert_eq!((applied.spec.image.as_str(), applied.spec.replicas), ("caddy:2", 3));
    assert_eq!(typed.list(&ListOptions::default()).await.unwrap().items.len(), 2);
}

#[tokio::test]
async fn metadata_client_returns_no_spec() {
    let (server, cs) = start().await;
    cs.core_v1()
        .config_maps("default")
        .create(
            &from_json(
                json!({"metadata": {"name": "m", "labels": {"a": "b"}}, "data": {"big": "x".repeat(1000)}}),
            ),
            &CreateOptions::default(),
        )
        .await
        .unwrap();
    let meta = MetadataClient::new(&server.kubeconfig().config).unwrap();
    let cms = meta.resource(&GroupVersionResource::gvr("", "v1", "configmaps"), Some("default"));
    let one = cms.get("m", &GetOptions::default()).await.unwrap();
    assert_eq!(one.metadata.labels.unwrap()["a"], "b");
    let types = one.types.unwrap();
    assert_eq!(
        (types.api_version.as_str(), types.kind.as_str()),
        ("meta.k8s.io/v1", "PartialObjectMetadata")
    );
    let list = cms.list(&ListOptions::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    // The raw answers carry no data/spec at all.
    let raw = cs
        .rest()
        .get()
        .abs_path("/api/v1/namespaces/default/configmaps")
        .header(http::header::ACCEPT, krust_client::metadata::ACCEPT_LIST.parse().unwrap())
        .send()
        .await
        .unwrap();
    let body = String::from_utf8_lossy(raw.raw_body()).to_string();
    assert!(body.contains("PartialObjectMetadataList") && !body.contains("xxxx"), "{body}");
    let mut watch = cms.watch(&ListOptions::default()).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), watch.next()).await.unwrap() {
        Some(Ok(WatchEvent::Added(o))) => assert_eq!(o.metadata.name.as_deref(), Some("m")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn disk_cached_discovery_respects_its_ttl() {
    let (server, _) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cache/discovery.json");
    // No retries: the last step talks to a stopped server.
    let mut config = server.kubeconfig().config;
    config.max_retries = 0;
    let client = DiscoveryClient::new(&config).unwrap();
    let cached = CachedDiscovery::with_disk(client.clone(), &file, Duration::from_secs(3600));
    let d = cached.discovery().await.unwrap();
    assert!(file.exists());
    // A new process (a new cache) reads the file while it is fresh, even with the server gone.
    server.shutdown().await;
    let again = CachedDiscovery::with_disk(client.clone(), &file, Duration::from_secs(3600));
    assert_eq!(again.discovery().await.unwrap().groups.len(), d.groups.len());
    // Past its TTL it asks the server (which is gone: an error).
    let stale = CachedDiscovery::with_disk(client, &file, Duration::from_secs(0));
    std::thread::sleep(Duration::from_millis(20));
    assert!(stale.discovery().await.is_err());
}

/// The request metrics hook (client-go's `tools/metrics`): every attempt with its method,
/// host, code (none when no response came) and latency, and each wait for the client-side
/// rate limiter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_metrics_see_every_attempt_and_rate_limiter_wait() {
    #[derive(Default)]
    struct Seen {
        requests: parking_lot::Mutex<Vec<(String, String, Option<u16>)>>,
        waits: parking_lot::Mutex<Vec<Duration>>,
    }
    struct Hook(std::sync::Arc<Seen>);
    impl krust_client::RequestMetrics for Hook {
        fn request(&self, method: &http::Method, host: &str, code: Option<u16>, _latency: Duration) {
            self.0.requests.lock().push((method.to_string(), host.to_string(), code));
        }
        fn rate_limited(&self, _method: &http::Method, _host: &str, wait: Duration) {
            self.0.waits.lock().push(wait);
        }
    }
    let server = ApiServer::builder().start().await.unwrap();
    let seen = std::sync::Arc::new(Seen::default());
    let mut config = server.kubeconfig().config;
    config.qps = Some(5.0);
    config.burst = 1;
    config.max_retries = 0;
    config.metrics = Some(krust_client::MetricsHook(std::sync::Arc::new(Hook(seen.clone()))));
    let cms = Clientset::new(&config).unwrap().core_v1().config_maps("default");
    let cm: ConfigMap = from_json(json!({"metadata": {"name": "a"}}));
    cms.create(&cm, &CreateOptions::default()).await.unwrap();
    cms.get("a", &GetOptions::default()).await.unwrap();
    assert!(cms.get("missing", &GetOptions::default()).await.unwrap_err().is_not_found());
    let host = server.url().trim_start_matches("http://").to_string();
    let requests = seen.requests.lock().clone();
    assert_eq!(
        requests,
        [
            ("POST".to_string(), host.clone(), Some(201)),
            ("GET".into(), host.clone(), Some(200)),
            ("GET".into(), host.clone(), Some(404))
        ]
    );
    // Burst 1 at 5 per second: the second and third requests waited ~200 ms each.
    let waits = seen.waits.lock().clone();
    assert_eq!(waits.len(), 3);
    assert!(waits[1] >= Duration::from_millis(150) && waits[2] >= Duration::from_millis(150), "{waits:?}");
    // No response at all: the code is none.
    server.shutdown().await;
    assert!(cms.get("a", &GetOptions::default()).await.is_err());
    assert_eq!(seen.requests.lock().last().map(|r| r.2), Some(None));
}
