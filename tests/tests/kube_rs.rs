//! kube-rs 5 (a client we did not write) against krust-apiserver: `Api` CRUD, server-side
//! apply, and `watcher` through a 410 Expired and a server restart.

use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use krust_apiserver::ApiServer;
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;

async fn kube_client(server: &ApiServer) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig().yaml).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
    Client::try_from(config).unwrap()
}

fn cm(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": value}})).unwrap()
}

#[tokio::test]
async fn api_crud() {
    let server = ApiServer::builder().tls(true).start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(kube_client(&server).await, "default");
    let created = api.create(&PostParams::default(), &cm("a", "1")).await.unwrap();
    assert!(created.metadata.uid.is_some());
    let err = api.create(&PostParams::default(), &cm("a", "1")).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{err:?}"
    );
    let mut got = api.get("a").await.unwrap();
    got.data = Some([("v".to_string(), "2".to_string())].into());
    let replaced = api.replace("a", &PostParams::default(), &got).await.unwrap();
    assert_eq!(replaced.data.unwrap()["v"], "2");
    // A stale replace conflicts.
    let err = api.replace("a", &PostParams::default(), &got).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"), "{err:?}");
    let patched =
        api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"w": "3"}}))).await.unwrap();
    assert_eq!(patched.data.unwrap()["w"], "3");
    for i in 0..7 {
        api.create(&PostParams::default(), &cm(&format!("page-{i}"), "x")).await.unwrap();
    }
    let page = api.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(page.items.len(), 3);
    assert!(page.metadata.continue_.is_some());
    let all = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(all.items.len(), 8);
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let err = api.get("a").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404), "{err:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn server_side_apply() {
    let server = ApiServer::builder().start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(kube_client(&server).await, "default");
    let applied =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}});
    let obj = api.patch("ssa", &PatchParams::apply("alice"), &Patch::Apply(&applied)).await.unwrap();
    let managers: Vec<String> =
        obj.metadata.managed_fields.unwrap().iter().map(|m| m.manager.clone().unwrap_or_default()).collect();
    assert_eq!(managers, ["alice"]);
    let theirs =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "2"}});
    let err = api.patch("ssa", &PatchParams::apply("bob"), &Patch::Apply(&theirs)).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409), "{err:?}");
    let obj = api.patch("ssa", &PatchParams::apply("bob").force(), &Patch::Apply(&theirs)).await.unwrap();
    assert_eq!(obj.data.unwrap()["a"], "2");
}

#[tokio::test]
async fn watcher_recovers_from_410_and_a_restart() {
    let server = ApiServer::builder().watch_history(5).start().await.unwrap();
    let client = kube_client(&server).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &cm("before", "0")).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watch = tokio::spawn(
        watcher(api.clone(), watcher::Config::default()).default_backoff().applied_objects().for_each(
            move |o| {
                if let Ok(o) = o {
                    let _ = tx.send(o.metadata.name.unwrap_or_default());
                }
                futures_util::future::ready(())
            },
        ),
    );
    let mut seen = std::collections::BTreeSet::new();
    async fn wait_for(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
        seen: &mut std::collections::BTreeSet<String>,
        name: &str,
    ) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !seen.contains(name) {
            let n =
                tokio::time::timeout_at(deadline, rx.recv()).await.expect("the watcher keeps up").unwrap();
            seen.insert(n);
        }
    }
    wait_for(&mut rx, &mut seen, "before").await;
    // 410: the history is compacted and the watch closed; the resume gets Expired and relists.
    for i in 0..10 {
        api.create(&PostParams::default(), &cm(&format!("burst-{i}"), "1")).await.unwrap();
    }
    server.compact();
    server.close_watches();
    api.create(&PostParams::default(), &cm("after-410", "1")).await.unwrap();
    wait_for(&mut rx, &mut seen, "after-410").await;
    // A restart: watches dropped, history lost, objects kept.
    server.restart();
    api.create(&PostParams::default(), &cm("after-restart", "1")).await.unwrap();
    wait_for(&mut rx, &mut seen, "after-restart").await;
    assert!(seen.contains("burst-9"));
    watch.abort();
}

/// kube-rs sees what krust-apiserver writes as kube-apiserver would: built-in defaults, a CRD's
/// `default:`s, a CEL rule's refusal with its message, and its Recorder's events.k8s.io/v1
/// Events through core/v1 as `kubectl describe` reads them.
#[tokio::test]
async fn defaults_validation_rules_and_events_through_kube_rs() {
    use k8s_openapi::{
        api::{apps::v1::Deployment, core::v1::Event as CoreEvent},
        apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    };
    use kube::{
        Resource,
        api::{ApiResource, DynamicObject, GroupVersionKind},
        runtime::events::{Event, EventType, Recorder, Reporter},
    };
    let server = ApiServer::builder().start().await.unwrap();
    let client = kube_client(&server).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let web: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    }))
    .unwrap();
    let web = deployments.create(&PostParams::default(), &web).await.unwrap();
    let spec = &web.spec;
    assert_eq!(
        (spec.replicas, spec.revision_history_limit, spec.progress_deadline_seconds),
        (Some(1), Some(10), Some(600))
    );
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Always"));
    assert_eq!(pod.containers[0].image_pull_policy.as_deref(), Some("IfNotPresent"));

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "websites.example.org"},
        "spec": {"group": "example.org", "scope": "Namespaced",
            "names": {"plural": "websites", "singular": "website", "kind": "Website"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object",
                    "x-kubernetes-validations": [{"rule": "self.replicas <= 10", "message": "at most 10 replicas"}],
                    "properties": {"image": {"type": "string"}, "replicas": {"type": "integer", "default": 2}}}}}}}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("example.org", "v1", "Website"));
    let sites: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    let mut site = DynamicObject::new("blog", &resource);
    site.data = json!({"spec": {"image": "nginx"}});
    let created = sites.create(&PostParams::default(), &site).await.unwrap();
    assert_eq!(created.data["spec"], json!({"image": "nginx", "replicas": 2}));
    let mut big = DynamicObject::new("big", &resource);
    big.data = json!({"spec": {"image": "nginx", "replicas": 11}});
    let err = sites.create(&PostParams::default(), &big).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422 && s.reason == "Invalid"
            && s.message.contains(r#"spec: Invalid value: "object": at most 10 replicas"#)),
        "{err:?}"
    );

    let recorder = Recorder::new(
        client.clone(),
        Reporter { controller: "website-controller".into(), instance: Some("website-0".into()) },
    );
    let event = Event {
        type_: EventType::Warning,
        reason: "FailedScale".into(),
        note: Some("could not scale".into()),
        action: "Scale".into(),
        secondary: None,
    };
    recorder.publish(&event, &web.object_ref(&())).await.unwrap();
    let core: Api<CoreEvent> = Api::namespaced(client, "default");
    let uid = web.metadata.uid.clone().unwrap();
    let listed = core
        .list(&ListParams::default().fields(&format!(
            "involvedObject.kind=Deployment,involvedObject.name=web,involvedObject.uid={uid}"
        )))
        .await
        .unwrap();
    let seen = listed.items.first().expect("the event, as kubectl describe asks for it");
    assert_eq!(seen.reason.as_deref(), Some("FailedScale"));
    assert_eq!(seen.message.as_deref(), Some("could not scale"));
    assert_eq!(seen.type_.as_deref(), Some("Warning"));
    assert_eq!(seen.reporting_component.as_deref(), Some("website-controller"));
    assert_eq!(seen.reporting_instance.as_deref(), Some("website-0"));
    server.shutdown().await;
}
