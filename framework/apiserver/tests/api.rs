//! krust-apiserver over real HTTP, driven by krust's RestClient: CRUD semantics and error
//! texts, lists with pagination and selectors, watches (resume, 410, bookmarks, initial events,
//! selector transitions, timeouts), subresources, server-side apply, finalizers, garbage
//! collection, namespace lifecycle, discovery shapes against a real kube-apiserver's documents,
//! bad input, TLS, tokens and faults.

use std::time::Duration;

use futures_util::StreamExt;
use http::StatusCode;
use krust_apiserver::ApiServer;
use krust_client::{Error, PatchType, RestClient};
use kube_core::{GroupVersion, WatchEvent};
use serde_json::{Value, json};

async fn start() -> (ApiServer, RestClient, RestClient) {
    let server = ApiServer::builder().bookmark_interval(Duration::from_millis(200)).start().await.unwrap();
    let config = server.kubeconfig().config;
    let core = RestClient::new(&config.clone().with_group_version(GroupVersion::gv("", "v1"))).unwrap();
    let apps = RestClient::new(&config.with_group_version(GroupVersion::gv("apps", "v1"))).unwrap();
    (server, core, apps)
}

fn cm(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        "status": {"replicas": 7}})
}

async fn create(client: &RestClient, ns: &str, resource: &str, body: &Value) -> Value {
    let r = client.post().namespace(ns).resource(resource).body(body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.raw_body());
    r.into().unwrap()
}

fn rv(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn create_get_update_with_kube_apiserver_semantics() {
    let (server, core, apps) = start().await;
    let created = create(&core, "default", "configmaps", &cm("a", json!({}))).await;
    assert!(created["metadata"]["uid"].as_str().unwrap().len() == 36);
    assert!(created["metadata"]["creationTimestamp"].as_str().unwrap().ends_with('Z'));
    assert!(created["metadata"].get("generation").is_none(), "configmaps have no generation");

    let err = core
        .post()
        .namespace("default")
        .resource("configmaps")
        .body(&cm("a", json!({})))
        .send()
        .await
        .unwrap()
        .bytes()
        .unwrap_err();
    assert!(err.is_already_exists(), "{err}");
    assert_eq!(err.api_error().unwrap().message(), "configmaps \"a\" already exists");

    // A stale resourceVersion conflicts, with the real message.
    let mut stale = created.clone();
    stale["data"]["k"] = json!("w");
    core.put()
        .namespace("default")
        .resource("configmaps")
        .name("a")
        .body(&stale)
        .send()
        .await
        .unwrap()
        .bytes()
        .unwrap();
    let err = core
        .put()
        .namespace("default")
        .resource("configmaps")
        .name("a")
        .body(&stale)
        .send()
        .await
        .unwrap()
        .bytes()
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(
        err.api_error().unwrap().message(),
        "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // Revisions are global and strictly increasing.
    let b = create(&core, "kube-system", "configmaps", &cm("b", json!({}))).await;
    assert!(rv(&b) > rv(&created));
    assert_eq!(server.resource_version(), rv(&b));

    // generation: 1, +1 on a spec change, not on metadata or status; status is ignored on the
    // main resource and only status changes through /status.
    let d = create(&apps, "default", "deployments", &deployment("web", 1)).await;
    assert_eq!(d["metadata"]["generation"], 1);
    assert!(d.get("status").is_none(), "status is dropped on create");
    let mut d2 = d.clone();
    d2["metadata"]["labels"] = json!({"x": "y"});
    d2["status"] = json!({"replicas": 3});
    let d2: Value = apps
        .put()
        .namespace("default")
        .resource("deployments")
        .name("web")
        .body(&d2)
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(d2["metadata"]["generation"], 1);
    assert!(d2.get("status").is_none());
    let mut d3 = d2.clone();
    d3["spec"]["replicas"] = json!(3);
    let d3: Value = apps
        .put()
        .namespace("default")
        .resource("deployments")
        .name("web")
        .body(&d3)
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(d3["metadata"]["generation"], 2);
    let mut s = d3.clone();
    s["status"] = json!({"replicas": 3});
    s["spec"]["replicas"] = json!(9);
    let s: Value = apps
        .put()
        .namespace("default")
        .resource("deployments")
        .name("web")
        .sub_resource("status")
        .body(&s)
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(s["status"]["replicas"], 3);
    assert_eq!(s["spec"]["replicas"], 3, "/status changes only status");
    assert_eq!(s["metadata"]["generation"], 2);

    // An update that changes nothing keeps the resourceVersion.
    let same: Value = apps
        .put()
        .namespace("default")
        .resource("deployments")
        .name("web")
        .body(&s)
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(rv(&same), rv(&s));

    // Scale subresource.
    let scale: Value = apps
        .get()
        .namespace("default")
        .resource("deployments")
        .name("web")
        .sub_resource("scale")
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "app=web");
    let scaled: Value = apps
        .patch(PatchType::Merge)
        .namespace("default")
        .resource("deployments")
        .name("web")
        .sub_resource("scale")
        .body(&json!({"spec": {"replicas": 5}}))
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(scaled["spec"]["replicas"], 5);

    // generateName.
    let g = create(&core, "default", "configmaps", &json!({"metadata": {"generateName": "gen-"}})).await;
    assert!(g["metadata"]["name"].as_str().unwrap().starts_with("gen-"));
    assert_eq!(g["metadata"]["name"].as_str().unwrap().len(), 9);
}

#[tokio::test]
async fn bad_input_gets_status_errors_and_never_hurts_the_server() {
    let (server, core, _) = start().await;
    let url = server.url().to_string();
    let raw = RestClient::unversioned(&server.kubeconfig().config).unwrap();
    let status = |r: &krust_client::Response| r.status().as_u16();

    let r =
        core.post().namespace("default").resource("configmaps").body_bytes("{not json").send().await.unwrap();
    assert_eq!(status(&r), 400);
    let r = core
        .post()
        .namespace("default")
        .resource("configmaps")
        .body(&json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(status(&r), 400);
    assert!(r.error().unwrap().to_string().contains("does not match the expected kind"));
    let r = core
        .post()
        .namespace("default")
        .resource("configmaps")
        .body(&json!({"apiVersion": "apps/v1", "metadata": {"name": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(status(&r), 400);
    let r = core.get().namespace("default").resource("widgets").send().await.unwrap();
    assert_eq!(status(&r), 404);
    let r = raw.get().abs_path("/apis/nope.example/v1/things").send().await.unwrap();
    assert_eq!(status(&r), 404);
    let big = json!({"metadata": {"name": "big"}, "data": {"k": "x".repeat(4 * 1024 * 1024)}});
    let r = core.post().namespace("default").resource("configmaps").body(&big).send().await.unwrap();
    assert_eq!(status(&r), 413);
    let r = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .param("resourceVersion", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(status(&r), 400);
    let r = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .param("labelSelector", "a in (b")
        .send()
        .await
        .unwrap();
    assert_eq!(status(&r), 400);
    let r = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .param("fieldSelector", "spec.nodeName=x")
        .send()
        .await
        .unwrap();
    assert_eq!(status(&r), 400);
    let r =
        core.post().namespace("nope").resource("configmaps").body(&cm("x", json!({}))).send().await.unwrap();
    assert_eq!(status(&r), 404);
    assert_eq!(r.error().unwrap().api_error().unwrap().message(), "namespaces \"nope\" not found");
    let r = core
        .post()
        .namespace("default")
        .resource("configmaps")
        .body(&json!({"metadata": {"name": "Bad_Name"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(status(&r), 422);
    let r = core
        .post()
        .namespace("default")
        .resource("configmaps")
        .body(&json!({"metadata": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(status(&r), 422);
    // Every error is a Status.
    let body: Value = serde_json::from_slice(r.raw_body()).unwrap();
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "Invalid");
    // The server still works.
    let ok = raw.get().abs_path("/healthz").send().await.unwrap();
    assert_eq!(ok.status(), 200, "{url}");
}

#[tokio::test]
async fn list_pages_are_a_consistent_snapshot_and_expire_after_compaction() {
    let (server, core, _) = start().await;
    for i in 0..25 {
        let labels = if i % 2 == 0 { json!({"parity": "even"}) } else { json!({"parity": "odd"}) };
        create(&core, "default", "configmaps", &cm(&format!("cm-{i:02}"), labels)).await;
    }
    create(&core, "kube-system", "configmaps", &cm("elsewhere", json!({}))).await;
    let page1: Value = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .param("limit", 10)
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(page1["kind"], "ConfigMapList");
    assert_eq!(page1["items"].as_array().unwrap().len(), 10);
    assert_eq!(page1["metadata"]["remainingItemCount"], 15);
    let list_rv = page1["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    // A write during paging is not seen by later pages.
    create(&core, "default", "configmaps", &cm("cm-99-late", json!({}))).await;
    let mut names: Vec<String> = Vec::new();
    let mut page = page1;
    loop {
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        assert_eq!(page["metadata"]["resourceVersion"], list_rv.as_str());
        let Some(token) = page["metadata"]["continue"].as_str().map(str::to_string) else { break };
        page = core
            .get()
            .namespace("default")
            .resource("configmaps")
            .param("limit", 10)
            .param("continue", token)
            .send()
            .await
            .unwrap()
            .into()
            .unwrap();
    }
    assert_eq!(names.len(), 25);
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted by name");

    // Selectors.
    let even: Value = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .param("labelSelector", "parity=even")
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(even["items"].as_array().unwrap().len(), 13);
    let by_name: Value = core
        .get()
        .resource("configmaps")
        .param("fieldSelector", "metadata.name=elsewhere")
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(by_name["items"][0]["metadata"]["namespace"], "kube-system");
    let not_default: Value = core
        .get()
        .resource("configmaps")
        .param("fieldSelector", "metadata.namespace!=default")
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(not_default["items"].as_array().unwrap().len(), 1);

    // After a compaction the continue token is gone: 410 Expired.
    let first: Value = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .param("limit", 5)
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    server.compact();
    let err = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .param("limit", 5)
        .param("continue", first["metadata"]["continue"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .unwrap_err();
    assert!(err.is_gone(), "{err}");

    // resourceVersionMatch.
    let future = server.resource_version() + 100;
    let err = core
        .get()
        .resource("configmaps")
        .param("resourceVersion", future)
        .param("resourceVersionMatch", "NotOlderThan")
        .send()
        .await
        .unwrap()
        .bytes()
        .unwrap_err();
    assert!(err.is_resource_version_too_large(), "{err}");
}

async fn next_event(stream: &mut krust_client::WatchStream<Value>) -> (String, Value) {
    let event = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("an event in time");
    match event.expect("the stream goes on").expect("a valid event") {
        WatchEvent::Added(o) => ("ADDED".into(), o),
        WatchEvent::Modified(o) => ("MODIFIED".into(), o),
        WatchEvent::Deleted(o) => ("DELETED".into(), o),
        WatchEvent::Bookmark(b) => ("BOOKMARK".into(), serde_json::to_value(&b).unwrap()),
        WatchEvent::Error(s) => {
            ("ERROR".into(), json!({"code": s.code, "reason": s.reason, "message": s.message}))
        }
    }
}

#[tokio::test]
async fn watches_resume_expire_bookmark_and_follow_selectors() {
    let (server, core, _) = start().await;
    let a = create(&core, "default", "configmaps", &cm("a", json!({"app": "x"}))).await;
    create(&core, "default", "configmaps", &cm("b", json!({}))).await;

    // No resourceVersion: the current state as ADDED, then changes.
    let mut w = core.get().namespace("default").resource("configmaps").watch::<Value>().await.unwrap();
    let got = [next_event(&mut w).await, next_event(&mut w).await];
    assert_eq!(
        got.iter()
            .map(|(t, o)| format!("{t} {}", o["metadata"]["name"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        ["ADDED a", "ADDED b"]
    );
    core.delete()
        .namespace("default")
        .resource("configmaps")
        .name("b")
        .send()
        .await
        .unwrap()
        .bytes()
        .unwrap();
    let (t, o) = next_event(&mut w).await;
    assert_eq!((t.as_str(), o["metadata"]["name"].as_str().unwrap()), ("DELETED", "b"));
    assert!(rv(&o) > rv(&a), "a DELETED event carries the deletion's revision");

    // Resume after a's revision: exactly the later changes.
    let mut w = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .param("resourceVersion", rv(&a))
        .watch::<Value>()
        .await
        .unwrap();
    assert_eq!(next_event(&mut w).await.0, "ADDED");
    assert_eq!(next_event(&mut w).await.0, "DELETED");

    // Label selector transitions: stops matching -> DELETED, starts matching -> ADDED.
    let mut w = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .param("resourceVersion", server.resource_version())
        .param("labelSelector", "app=x")
        .watch::<Value>()
        .await
        .unwrap();
    let current: Value = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .name("a")
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    let mut moved = current.clone();
    moved["metadata"]["labels"] = json!({"app": "y"});
    let moved: Value = core
        .put()
        .namespace("default")
        .resource("configmaps")
        .name("a")
        .body(&moved)
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(next_event(&mut w).await.0, "DELETED");
    let mut back = moved.clone();
    back["metadata"]["labels"] = json!({"app": "x"});
    core.put()
        .namespace("default")
        .resource("configmaps")
        .name("a")
        .body(&back)
        .send()
        .await
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(next_event(&mut w).await.0, "ADDED");

    // Too old: one ERROR event with a 410 Expired Status, as the real server sends.
    server.compact();
    let mut w = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .param("resourceVersion", rv(&a))
        .watch::<Value>()
        .await
        .unwrap();
    let (t, status) = next_event(&mut w).await;
    assert_eq!(
        (t.as_str(), status["code"].as_u64(), status["reason"].as_str()),
        ("ERROR", Some(410), Some("Expired"))
    );
    assert!(w.next().await.is_none());

    // Bookmarks and sendInitialEvents.
    let mut w = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .param("sendInitialEvents", "true")
        .param("resourceVersionMatch", "NotOlderThan")
        .param("allowWatchBookmarks", "True")
        .watch::<Value>()
        .await
        .unwrap();
    assert_eq!(next_event(&mut w).await.0, "ADDED");
    let (t, b) = next_event(&mut w).await;
    assert_eq!(t, "BOOKMARK");
    assert_eq!(b["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
    let (t, _) = next_event(&mut w).await;
    assert_eq!(t, "BOOKMARK", "a periodic bookmark");

    // timeoutSeconds ends the watch; closing watches (a fault) too.
    let mut w = core.get().resource("configmaps").param("timeoutSeconds", 1).watch::<Value>().await.unwrap();
    let started = std::time::Instant::now();
    while let Some(e) = tokio::time::timeout(Duration::from_secs(5), w.next()).await.unwrap() {
        e.unwrap();
    }
    assert!(started.elapsed() >= Duration::from_millis(900));
    let mut w = core
        .get()
        .resource("configmaps")
        .param("resourceVersion", server.resource_version())
        .watch::<Value>()
        .await
        .unwrap();
    server.close_watches();
    assert!(tokio::time::timeout(Duration::from_secs(5), w.next()).await.unwrap().is_none());
}

#[tokio::test]
async fn finalizers_garbage_collection_and_namespace_deletion() {
    let (server, core, apps) = start().await;
    let _ = &server;
    // Finalizer: the object stays, marked, until the finalizer is removed.
    let mut obj = cm("kept", json!({}));
    obj["metadata"]["finalizers"] = json!(["example.org/cleanup"]);
    create(&core, "default", "configmaps", &obj).await;
    let marked: Value = core
        .delete()
        .namespace("default")
        .resource("configmaps")
        .name("kept")
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    core.get()
        .namespace("default")
        .resource("configmaps")
        .name("kept")
        .send()
        .await
        .unwrap()
        .bytes()
        .unwrap();
    core.patch(PatchType::Merge)
        .namespace("default")
        .resource("configmaps")
        .name("kept")
        .body(&json!({"metadata": {"finalizers": null}}))
        .send()
        .await
        .unwrap()
        .bytes()
        .unwrap();
    let err = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .name("kept")
        .send()
        .await
        .unwrap()
        .bytes()
        .unwrap_err();
    assert!(err.is_not_found());

    // Garbage collection: a dependent of a deleted owner goes away.
    let owner = create(&apps, "default", "deployments", &deployment("owner", 1)).await;
    let mut dep = cm("dependent", json!({}));
    dep["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "owner", "uid": owner["metadata"]["uid"], "controller": true}]);
    create(&core, "default", "configmaps", &dep).await;
    apps.delete()
        .namespace("default")
        .resource("deployments")
        .name("owner")
        .send()
        .await
        .unwrap()
        .bytes()
        .unwrap();
    wait_gone(&core, "default", "configmaps", "dependent").await;

    // Namespace deletion: Terminating, contents deleted, then the namespace is removed.
    create(&core, "", "namespaces", &json!({"metadata": {"name": "team"}})).await;
    create(&core, "team", "configmaps", &cm("one", json!({}))).await;
    let ns: Value = core.delete().resource("namespaces").name("team").send().await.unwrap().into().unwrap();
    assert_eq!(ns["status"]["phase"], "Terminating");
    let r = core
        .post()
        .namespace("team")
        .resource("configmaps")
        .body(&cm("two", json!({})))
        .send()
        .await
        .unwrap();
    if r.status() != StatusCode::NOT_FOUND {
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "no new content in a terminating namespace");
    }
    wait_gone(&core, "team", "configmaps", "one").await;
    wait_gone(&core, "", "namespaces", "team").await;
}

async fn wait_gone(client: &RestClient, ns: &str, resource: &str, name: &str) {
    for _ in 0..100 {
        let r = client.get().namespace(ns).resource(resource).name(name).send().await.unwrap();
        if r.status() == StatusCode::NOT_FOUND {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{resource} {ns}/{name} was not deleted");
}

#[tokio::test]
async fn server_side_apply_tracks_owners_conflicts_and_removals() {
    let (_server, core, _) = start().await;
    let apply = |manager: &str, body: Value, force: bool| {
        let mut r = core
            .patch(PatchType::Apply)
            .namespace("default")
            .resource("configmaps")
            .name("ssa")
            .param("fieldManager", manager);
        if force {
            r = r.param("force", "true");
        }
        r.body(&body)
    };
    let first = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1", "b": "2"}});
    // dryRun=All: the answer of a create, and nothing stored.
    let r = apply("alice", first.clone(), false).param("dryRun", "All").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "a dry-run apply answers like the create");
    let preview: Value = r.into().unwrap();
    assert_eq!(preview["data"]["a"], "1");
    let missing = core.get().namespace("default").resource("configmaps").name("ssa").send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND, "a dry-run apply stores nothing");
    let r = apply("alice", first, false).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "apply creates");
    let obj: Value = r.into().unwrap();
    assert_eq!(obj["metadata"]["managedFields"][0]["manager"], "alice");
    assert_eq!(obj["metadata"]["managedFields"][0]["operation"], "Apply");
    assert_eq!(obj["metadata"]["managedFields"][0]["fieldsV1"], json!({"f:data": {"f:a": {}, "f:b": {}}}));

    let changed = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1", "b": "3"}});
    let r = apply("alice", changed, false).param("dryRun", "All").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let stored: Value = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .name("ssa")
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(stored["data"]["b"], "2", "a dry-run apply changes nothing");

    // Bob changes a field alice owns: conflict naming the field, unless forced.
    let bob =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "9"}});
    let err = apply("bob", bob.clone(), false).send().await.unwrap().bytes().unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(
        err.to_string().contains("conflict with \"alice\"") && err.to_string().contains(".data.a"),
        "{err}"
    );
    let obj: Value = apply("bob", bob, true).send().await.unwrap().into().unwrap();
    assert_eq!(obj["data"]["a"], "9");

    // Alice stops applying b (she alone owns it): it is removed. She no longer owns a.
    let obj: Value = apply(
        "alice",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {}}),
        false,
    )
    .send()
    .await
    .unwrap()
    .into()
    .unwrap();
    assert_eq!(obj["data"], json!({"a": "9"}));

    // Missing fieldManager is refused.
    let r = core
        .patch(PatchType::Apply)
        .namespace("default")
        .resource("configmaps")
        .name("ssa")
        .body(&json!({"apiVersion": "v1", "kind": "ConfigMap"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn patches_merge_json_and_strategic() {
    let (_server, core, _) = start().await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}});
    let created = create(&core, "default", "pods", &pod).await;
    assert_eq!(created["status"]["phase"], "Pending");
    let p: Value = core
        .patch(PatchType::StrategicMerge)
        .namespace("default")
        .resource("pods")
        .name("p")
        .body(&json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}}))
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    // (The containers also carry kube-apiserver's defaults: pull policy, termination message.)
    let containers: Vec<(&Value, &Value)> =
        p["spec"]["containers"].as_array().unwrap().iter().map(|c| (&c["name"], &c["image"])).collect();
    assert_eq!(containers, [(&json!("a"), &json!("a:1")), (&json!("b"), &json!("b:2"))]);
    let p: Value = core
        .patch(PatchType::Merge)
        .namespace("default")
        .resource("pods")
        .name("p")
        .body(&json!({"metadata": {"labels": {"x": "1"}}}))
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(p["metadata"]["labels"]["x"], "1");
    let r = core
        .patch(PatchType::Json)
        .namespace("default")
        .resource("pods")
        .name("p")
        .body(&json!([{"op": "test", "path": "/metadata/labels/x", "value": "2"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A patch carrying a stale resourceVersion conflicts.
    let r = core
        .patch(PatchType::Merge)
        .namespace("default")
        .resource("pods")
        .name("p")
        .body(&json!({"metadata": {"resourceVersion": "1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Status through its subresource.
    let s: Value = core
        .patch(PatchType::Merge)
        .namespace("default")
        .resource("pods")
        .name("p")
        .sub_resource("status")
        .body(&json!({"status": {"phase": "Running"}}))
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(s["status"]["phase"], "Running");
    let running: Value = core
        .get()
        .resource("pods")
        .param("fieldSelector", "status.phase=Running")
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(running["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn custom_resources_are_served_validated_and_deleted_with_their_crd() {
    let (server, _, _) = start().await;
    let config = server.kubeconfig().config;
    let ext =
        RestClient::new(&config.clone().with_group_version(GroupVersion::gv("apiextensions.k8s.io", "v1")))
            .unwrap();
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "websites.example.org"},
        "spec": {"group": "example.org", "scope": "Namespaced",
            "names": {"plural": "websites", "singular": "website", "kind": "Website", "shortNames": ["ws"]},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "required": ["image"],
                    "properties": {"image": {"type": "string"}, "replicas": {"type": "integer", "maximum": 5}}}, "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}});
    let created = create(&ext, "", "customresourcedefinitions", &crd).await;
    let conditions: Vec<&str> = created["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(conditions, ["NamesAccepted", "Established"]);
    let sites = RestClient::new(&config.with_group_version(GroupVersion::gv("example.org", "v1"))).unwrap();
    let site = create(&sites, "default", "websites", &json!({"apiVersion": "example.org/v1", "kind": "Website", "metadata": {"name": "blog"}, "spec": {"image": "nginx", "replicas": 2, "unknown": true}})).await;
    assert_eq!(site["spec"], json!({"image": "nginx", "replicas": 2}), "unknown fields pruned");
    assert_eq!(site["metadata"]["generation"], 1);
    let r = sites
        .post()
        .namespace("default")
        .resource("websites")
        .body(&json!({"metadata": {"name": "bad"}, "spec": {"replicas": 9}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let message = r.error().unwrap().to_string();
    assert!(message.contains("spec.image") && message.contains("spec.replicas"), "{message}");
    let r = sites
        .patch(PatchType::StrategicMerge)
        .namespace("default")
        .resource("websites")
        .name("blog")
        .body(&json!({"spec": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let scale: Value = sites
        .get()
        .namespace("default")
        .resource("websites")
        .name("blog")
        .sub_resource("scale")
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(scale["spec"]["replicas"], 2);
    // Discovery lists it.
    let doc: Value = sites.get().abs_path("/apis/example.org/v1").send().await.unwrap().into().unwrap();
    let names: Vec<&str> =
        doc["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["websites", "websites/scale", "websites/status"]);
    // Deleting the CRD deletes its objects and stops serving it.
    ext.delete()
        .resource("customresourcedefinitions")
        .name("websites.example.org")
        .send()
        .await
        .unwrap()
        .bytes()
        .unwrap();
    let r = sites.get().namespace("default").resource("websites").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/kube-apiserver/discovery")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn discovery_has_the_shapes_of_a_real_kube_apiserver() {
    let (server, _, _) = start().await;
    let raw = RestClient::unversioned(&server.kubeconfig().config).unwrap();
    for (path, file) in [
        ("/api/v1", "api__v1.json"),
        ("/apis/apps/v1", "apis__apps__v1.json"),
        ("/apis/batch/v1", "apis__batch__v1.json"),
        ("/apis/coordination.k8s.io/v1", "apis__coordination.k8s.io__v1.json"),
        ("/apis/rbac.authorization.k8s.io/v1", "apis__rbac.authorization.k8s.io__v1.json"),
        ("/apis/events.k8s.io/v1", "apis__events.k8s.io__v1.json"),
        ("/apis/apiextensions.k8s.io/v1", "apis__apiextensions.k8s.io__v1.json"),
    ] {
        let ours: Value = raw.get().abs_path(path).send().await.unwrap().into().unwrap();
        let real = fixture(file);
        assert_eq!(ours["kind"], real["kind"], "{path}");
        assert_eq!(ours.get("apiVersion"), real.get("apiVersion"), "{path}");
        assert_eq!(ours["groupVersion"], real["groupVersion"], "{path}");
        let real_resources = real["resources"].as_array().unwrap();
        for r in ours["resources"].as_array().unwrap() {
            let name = r["name"].as_str().unwrap();
            let expected = real_resources
                .iter()
                .find(|x| x["name"] == name)
                .unwrap_or_else(|| panic!("{path}: {name} is not in the real server's list"));
            assert_eq!(r, expected, "{path}: {name}");
        }
    }
    // Aggregated discovery, for the groups we serve.
    let ours: Value = raw
        .get()
        .abs_path("/apis")
        .header(
            http::header::ACCEPT,
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
                .parse()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    let real = fixture("aggregated_v2.json");
    assert_eq!(ours["kind"], real["kind"]);
    assert_eq!(ours["apiVersion"], real["apiVersion"]);
    for group in ours["items"].as_array().unwrap() {
        let name = group["metadata"]["name"].as_str().unwrap();
        let expected =
            real["items"].as_array().unwrap().iter().find(|g| g["metadata"]["name"] == name).unwrap();
        for version in group["versions"].as_array().unwrap() {
            let ev = expected["versions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["version"] == version["version"])
                .unwrap();
            assert_eq!(version["freshness"], ev["freshness"]);
            for r in version["resources"].as_array().unwrap() {
                let er = ev["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|x| x["resource"] == r["resource"])
                    .unwrap();
                assert_eq!(r, er, "{name}: {}", r["resource"]);
            }
        }
    }
    // The legacy group list has the real shape too.
    let apis: Value = raw.get().abs_path("/apis").send().await.unwrap().into().unwrap();
    let real = fixture("apis.json");
    let apps = apis["groups"].as_array().unwrap().iter().find(|g| g["name"] == "apps").unwrap();
    let real_apps = real["groups"].as_array().unwrap().iter().find(|g| g["name"] == "apps").unwrap();
    assert_eq!(apps, real_apps);
    let api: Value = raw.get().abs_path("/api").send().await.unwrap().into().unwrap();
    assert_eq!(api["versions"], fixture("api.json")["versions"]);
    // kubectl's requirements.
    assert_eq!(raw.get().abs_path("/openapi/v2").send().await.unwrap().status(), 200);
    let version: Value = raw.get().abs_path("/version").send().await.unwrap().into().unwrap();
    assert_eq!(version["major"], "1");
}

#[tokio::test]
async fn tls_token_and_injected_failures() {
    let server = ApiServer::builder().tls(true).token("s3cret").start().await.unwrap();
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let config = server.kubeconfig().config.with_group_version(GroupVersion::gv("", "v1"));
    let core = RestClient::new(&config).unwrap();
    let ns: Value = core.get().resource("namespaces").send().await.unwrap().into().unwrap();
    assert_eq!(ns["items"].as_array().unwrap().len(), 4);
    // Without the token: 401.
    let mut anonymous = config.clone();
    anonymous.auth = krust_client::config::AuthConfig::None;
    let err = RestClient::new(&anonymous)
        .unwrap()
        .get()
        .resource("namespaces")
        .send()
        .await
        .unwrap()
        .bytes()
        .unwrap_err();
    assert!(err.is_unauthorized(), "{err}");
    // Injected 503s with Retry-After: the client retries through them.
    server.fail_next(2, 503, Some(0));
    core.get().resource("namespaces").send().await.unwrap().bytes().unwrap();
    // Without Retry-After the failure reaches the caller.
    server.fail_next(1, 500, None);
    let err = core.get().resource("namespaces").send().await.unwrap().bytes().unwrap_err();
    assert!(err.is_server_error());
    server.set_latency(Some(Duration::from_millis(300)));
    let started = std::time::Instant::now();
    core.get().resource("namespaces").send().await.unwrap().bytes().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    server.shutdown().await;
}

#[tokio::test]
async fn a_slow_watcher_is_closed_without_blocking_writers() {
    let server = ApiServer::builder().watch_buffer(10).start().await.unwrap();
    let core =
        RestClient::new(&server.kubeconfig().config.with_group_version(GroupVersion::gv("", "v1"))).unwrap();
    // Open a watch and never read it.
    let _stalled = core
        .get()
        .resource("configmaps")
        .param("resourceVersion", server.resource_version())
        .watch::<Value>()
        .await
        .unwrap();
    let body = |i: usize| cm(&format!("c{i}"), json!({}));
    let started = std::time::Instant::now();
    for i in 0..2000 {
        // Large-ish objects so the socket buffers fill up too.
        let mut b = body(i);
        b["data"]["k"] = json!("x".repeat(2000));
        core.post()
            .namespace("default")
            .resource("configmaps")
            .body(&b)
            .send()
            .await
            .unwrap()
            .bytes()
            .unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(server.watch_count(), 0, "the stalled watch was closed");
    let _ = Error::InvalidRequest(String::new());
}

#[tokio::test]
async fn propagation_policies_preconditions_and_dry_run() {
    let (_server, core, apps) = start().await;
    let owned = |name: &str, owner: &Value| {
        let mut c = cm(name, json!({}));
        c["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"], "blockOwnerDeletion": true}]);
        c
    };
    // Orphan: the dependent stays, without its owner reference.
    let owner = create(&apps, "default", "deployments", &deployment("orphaner", 1)).await;
    create(&core, "default", "configmaps", &owned("orphan", &owner)).await;
    apps.delete()
        .namespace("default")
        .resource("deployments")
        .name("orphaner")
        .param("propagationPolicy", "Orphan")
        .send()
        .await
        .unwrap()
        .bytes()
        .unwrap();
    wait_gone(&apps, "default", "deployments", "orphaner").await;
    let orphan: Value = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .name("orphan")
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert!(
        orphan["metadata"].get("ownerReferences").is_none_or(|r| r.as_array().unwrap().is_empty()),
        "{orphan}"
    );

    // Foreground: the owner is kept (with the foregroundDeletion finalizer) until the dependent is gone.
    let owner = create(&apps, "default", "deployments", &deployment("fg", 1)).await;
    create(&core, "default", "configmaps", &owned("fg-child", &owner)).await;
    let marked: Value = apps
        .delete()
        .namespace("default")
        .resource("deployments")
        .name("fg")
        .body(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}))
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(marked["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    wait_gone(&core, "default", "configmaps", "fg-child").await;
    wait_gone(&apps, "default", "deployments", "fg").await;

    // Preconditions.
    let c = create(&core, "default", "configmaps", &cm("pre", json!({}))).await;
    let r = core
        .delete()
        .namespace("default")
        .resource("configmaps")
        .name("pre")
        .body(&json!({"preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.error().unwrap().to_string().contains("Precondition failed: UID in precondition"));
    let r = core.delete().namespace("default").resource("configmaps").name("pre")
        .body(&json!({"preconditions": {"uid": c["metadata"]["uid"], "resourceVersion": c["metadata"]["resourceVersion"]}})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let status: Value = serde_json::from_slice(r.raw_body()).unwrap();
    assert_eq!(status["status"], "Success");

    // dryRun=All changes nothing.
    let r = core
        .post()
        .namespace("default")
        .resource("configmaps")
        .param("dryRun", "All")
        .body(&cm("dry", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = core.get().namespace("default").resource("configmaps").name("dry").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn hostile_shapes_do_not_panic_the_server_or_its_controllers() {
    let (server, core, apps) = start().await;
    // A deployment whose spec is a string, then scaled and patched into a non-object.
    // (A spec of the wrong type is refused as kube-apiserver's decoder refuses it.)
    let weird = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "weird"}, "spec": "not an object"});
    let r = apps.post().namespace("default").resource("deployments").body(&weird).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let text = String::from_utf8_lossy(r.raw_body()).to_string();
    assert!(text.contains("cannot be handled as a Deployment: spec: invalid type: string"), "{text}");
    let weird = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "weird"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    create(&apps, "default", "deployments", &weird).await;
    let r = apps.put().namespace("default").resource("deployments").name("weird").sub_resource("scale")
        .body(&json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "weird"}, "spec": {"replicas": 2}})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = apps
        .patch(PatchType::Json)
        .namespace("default")
        .resource("deployments")
        .name("weird")
        .body(&json!([{"op": "replace", "path": "", "value": 5}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = apps
        .patch(PatchType::Merge)
        .namespace("default")
        .resource("deployments")
        .name("weird")
        .body(&json!(5))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A namespace whose spec would become a string is refused; deleted, the lifecycle controller
    // finishes it.
    create(&core, "", "namespaces", &json!({"metadata": {"name": "odd"}})).await;
    let r = core
        .patch(PatchType::Merge)
        .resource("namespaces")
        .name("odd")
        .body(&json!({"spec": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    core.delete().resource("namespaces").name("odd").send().await.unwrap().bytes().unwrap();
    wait_gone(&core, "", "namespaces", "odd").await;
    assert!(server.resource_version() > 0);
}

#[tokio::test]
async fn events_written_through_one_api_are_seen_through_the_other() {
    let (server, core, _) = start().await;
    let config = server.kubeconfig().config;
    let events =
        RestClient::new(&config.with_group_version(GroupVersion::gv("events.k8s.io", "v1"))).unwrap();
    let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "hello.1"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "website-operator",
        "reportingInstance": "pod-1", "action": "Reconcile", "reason": "Created", "type": "Normal",
        "note": "created Deployment hello",
        "regarding": {"apiVersion": "example.krust.dev/v1", "kind": "Website", "namespace": "default", "name": "hello", "uid": "u-1"}});
    let created = create(&events, "default", "events", &event).await;

    // core/v1, as kubectl describe asks: by the involved object's fields.
    let list: Value = core
        .get()
        .namespace("default")
        .resource("events")
        .param(
            "fieldSelector",
            "involvedObject.name=hello,involvedObject.kind=Website,involvedObject.uid=u-1",
        )
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let mirrored = &items[0];
    assert_eq!(mirrored["apiVersion"], "v1");
    assert_eq!(mirrored["message"], "created Deployment hello");
    assert_eq!(mirrored["involvedObject"]["name"], "hello");
    assert_eq!(mirrored["reportingComponent"], "website-operator");
    assert_eq!(mirrored["metadata"]["uid"], created["metadata"]["uid"]);
    let none: Value = core
        .get()
        .namespace("default")
        .resource("events")
        .param("fieldSelector", "involvedObject.name=other")
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(none["items"].as_array().map(Vec::len), Some(0));

    // A change through core/v1 (a series count) shows through events.k8s.io/v1, and a delete
    // through either removes both.
    let r = core
        .patch(PatchType::Merge)
        .namespace("default")
        .resource("events")
        .name("hello.1")
        .body(&json!({"count": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let seen: Value = events
        .get()
        .namespace("default")
        .resource("events")
        .name("hello.1")
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(seen["deprecatedCount"], 3);
    assert_eq!(seen["note"], "created Deployment hello");
    let r = events.delete().namespace("default").resource("events").name("hello.1").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    wait_gone(&core, "default", "events", "hello.1").await;
}
