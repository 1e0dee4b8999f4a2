//! The webhook server over real HTTPS: typed validators (allow with warnings, deny with a
//! message and a field, delete), a defaulter's JSON patch, a panicking handler answering with a
//! denial, CRD conversion through a hub in both directions, its metrics, and a renewed
//! certificate picked up without a restart.

use std::{collections::BTreeMap, path::Path, time::Duration};

use async_trait::async_trait;
use base64::{Engine, engine::general_purpose::STANDARD};
use k8s_openapi::api::core::v1::ConfigMap;
use krust_client::{Config, RestClient, config::Kubeconfig};
use krust_runtime::webhook::{
    Converter, Defaulter, Denial, Validator, Warnings, WebhookServer, webhook_path,
};
use kube::CustomResource;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod v1 {
    use super::*;
    /// The old shape: one `size` string.
    #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    #[kube(group = "example.com", version = "v1", kind = "Thing", namespaced)]
    pub struct ThingSpec {
        pub size: String,
    }
}

mod v2 {
    use super::*;
    /// The hub: `size` split into a number and a unit.
    #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    #[kube(group = "example.com", version = "v2", kind = "Thing", namespaced)]
    pub struct ThingSpec {
        pub amount: u32,
        pub unit: String,
    }
}

impl TryFrom<v1::Thing> for v2::Thing {
    type Error = String;
    fn try_from(old: v1::Thing) -> Result<Self, String> {
        let digits: String = old.spec.size.chars().take_while(char::is_ascii_digit).collect();
        let amount = digits.parse().map_err(|_| format!("size {:?} has no number", old.spec.size))?;
        let unit = old.spec.size[digits.len()..].to_string();
        Ok(v2::Thing { metadata: old.metadata, spec: v2::ThingSpec { amount, unit } })
    }
}

impl From<v2::Thing> for v1::Thing {
    fn from(new: v2::Thing) -> Self {
        v1::Thing {
            metadata: new.metadata,
            spec: v1::ThingSpec { size: format!("{}{}", new.spec.amount, new.spec.unit) },
        }
    }
}

struct NoForbiddenKeys;

#[async_trait]
impl Validator<ConfigMap> for NoForbiddenKeys {
    async fn validate_create(&self, cm: &ConfigMap) -> Result<Warnings, Denial> {
        let data = cm.data.clone().unwrap_or_default();
        if data.contains_key("forbidden") {
            return Err(Denial::invalid("data.forbidden", "is not allowed"));
        }
        if data.contains_key("panic") {
            panic!("a bug in the validator");
        }
        Ok(if data.is_empty() { vec!["an empty ConfigMap".into()] } else { vec![] })
    }
    async fn validate_update(&self, old: &ConfigMap, new: &ConfigMap) -> Result<Warnings, Denial> {
        if old.data.as_ref().and_then(|d| d.get("locked")).is_some() && old.data != new.data {
            return Err(Denial::new("locked ConfigMaps do not change"));
        }
        Ok(vec![])
    }
    async fn validate_delete(&self, cm: &ConfigMap) -> Result<Warnings, Denial> {
        if cm.metadata.labels.as_ref().is_some_and(|l| l.contains_key("keep")) {
            return Err(Denial::new(format!("{} is kept", cm.metadata.name.as_deref().unwrap_or(""))));
        }
        Ok(vec![])
    }
}

struct Labeller;

#[async_trait]
impl Defaulter<ConfigMap> for Labeller {
    async fn default(&self, cm: &mut ConfigMap) -> Result<(), Denial> {
        cm.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .entry("defaulted".into())
            .or_insert_with(|| "yes".into());
        Ok(())
    }
}

/// A CA and a serving certificate for 127.0.0.1 signed by it, written as tls.crt/tls.key.
fn write_certs(dir: &Path) -> String {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.distinguished_name.push(DnType::CommonName, "webhook-test-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap();
    ca.pem()
}

/// A client of `url` that trusts only `ca_pem`.
fn client(url: &str, ca_pem: &str) -> RestClient {
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: w\n  cluster:\n    server: {url}\n    certificate-authority-data: {}\ncontexts:\n- name: w\n  context:\n    cluster: w\n    user: w\nusers:\n- name: w\n  user: {{}}\ncurrent-context: w\n",
        STANDARD.encode(ca_pem.as_bytes())
    );
    let kubeconfig = Kubeconfig::parse(&yaml, Path::new("webhook-test")).unwrap();
    RestClient::unversioned(&Config::from_loaded_kubeconfig(&kubeconfig, None).unwrap()).unwrap()
}

fn review(operation: &str, object: Option<Value>, old: Option<Value>) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "uid-1",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "requestKind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "requestResource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": "c", "namespace": "default", "operation": operation,
            "userInfo": {"username": "tester"},
            "object": object, "oldObject": old, "dryRun": false, "options": null,
        }
    })
}

fn cm(data: Value, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default", "labels": labels}, "data": data})
}

async fn post(client: &RestClient, path: &str, body: &Value) -> Value {
    let response = client.post().abs_path(path).body(body).send().await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK, "{}", String::from_utf8_lossy(response.raw_body()));
    response.into().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_server_validates_defaults_converts_and_reloads_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = write_certs(dir.path());
    let server = WebhookServer::builder()
        .bind("127.0.0.1:0".parse().unwrap())
        .cert_dir(dir.path())
        .cert_reload_interval(Duration::from_millis(100))
        .validator::<ConfigMap, _>(NoForbiddenKeys)
        .defaulter::<ConfigMap, _>(Labeller)
        .conversion(Converter::<v2::Thing>::hub().spoke::<v1::Thing>())
        .build()
        .unwrap();
    assert_eq!(server.paths(), ["/convert", "/mutate--v1-configmap", "/validate--v1-configmap"]);
    assert_eq!(webhook_path::<v1::Thing>("validate"), "/validate-example-com-v1-thing");
    let mut registry = prometheus_client::registry::Registry::default();
    server.register_metrics(&mut registry);
    let url = format!("https://{}", server.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(server.run(stop.clone()));
    let https = client(&url, &ca);
    let validate = "/validate--v1-configmap";

    // Allowed, with a warning.
    let answer = post(&https, validate, &review("CREATE", Some(cm(json!({}), json!({}))), None)).await;
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], "uid-1");
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["warnings"], json!(["an empty ConfigMap"]));
    // Denied, with the field and 422.
    let answer =
        post(&https, validate, &review("CREATE", Some(cm(json!({"forbidden": "x"}), json!({}))), None)).await;
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 422);
    assert_eq!(answer["response"]["status"]["message"], "data.forbidden: is not allowed");
    assert_eq!(answer["response"]["status"]["details"]["causes"][0]["field"], "data.forbidden");
    // Update sees the old object; delete sees the object being deleted (oldObject).
    let locked = cm(json!({"locked": "1"}), json!({}));
    let answer =
        post(&https, validate, &review("UPDATE", Some(cm(json!({"locked": "2"}), json!({}))), Some(locked)))
            .await;
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["message"], "locked ConfigMaps do not change");
    let answer =
        post(&https, validate, &review("DELETE", None, Some(cm(json!({}), json!({"keep": "1"}))))).await;
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["message"], "c is kept");
    // A handler that panics denies, and the server goes on.
    let answer =
        post(&https, validate, &review("CREATE", Some(cm(json!({"panic": "1"}), json!({}))), None)).await;
    assert_eq!(answer["response"]["allowed"], false);
    assert!(answer["response"]["status"]["message"].as_str().unwrap().contains("panicked"));
    // Garbage is answered, not dropped.
    let answer = post(&https, validate, &json!({"not": "a review"})).await;
    assert_eq!(answer["response"]["allowed"], false);

    // The defaulter's JSON patch adds the label, and nothing else.
    let answer = post(
        &https,
        "/mutate--v1-configmap",
        &review("CREATE", Some(cm(json!({"a": "b"}), json!({"x": "y"}))), None),
    )
    .await;
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    // kube-core encodes the patch bytes as a list of numbers (Go's []byte decoder takes that as
    // well as base64).
    let bytes: Vec<u8> = match &answer["response"]["patch"] {
        Value::String(b64) => STANDARD.decode(b64).unwrap(),
        other => serde_json::from_value(other.clone()).unwrap(),
    };
    let patch: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(patch, json!([{"op": "add", "path": "/metadata/labels/defaulted", "value": "yes"}]));

    // Conversion through the hub, both ways, metadata kept.
    let conversion = |desired: &str, objects: Value| {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": "conv-1", "desiredAPIVersion": desired, "objects": objects}})
    };
    let v1_thing = json!({"apiVersion": "example.com/v1", "kind": "Thing",
        "metadata": {"name": "t", "namespace": "default", "resourceVersion": "7", "labels": {"a": "b"}}, "spec": {"size": "10Gi"}});
    let answer = post(&https, "/convert", &conversion("example.com/v2", json!([v1_thing]))).await;
    assert_eq!(answer["response"]["result"]["status"], "Success", "{answer}");
    let converted = &answer["response"]["convertedObjects"][0];
    assert_eq!(converted["apiVersion"], "example.com/v2");
    assert_eq!(converted["spec"], json!({"amount": 10, "unit": "Gi"}));
    assert_eq!(converted["metadata"]["resourceVersion"], "7");
    assert_eq!(converted["metadata"]["labels"], json!({"a": "b"}));
    let answer = post(&https, "/convert", &conversion("example.com/v1", json!([converted]))).await;
    assert_eq!(answer["response"]["convertedObjects"][0]["spec"], json!({"size": "10Gi"}));
    let bad = json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "bad"}, "spec": {"size": "Gi"}});
    let answer = post(&https, "/convert", &conversion("example.com/v2", json!([bad]))).await;
    assert_eq!(answer["response"]["result"]["status"], "Failure");
    assert!(answer["response"]["result"]["message"].as_str().unwrap().contains("\"bad\""), "{answer}");

    // Metrics, with controller-runtime's names.
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(
            "controller_runtime_webhook_requests_total{webhook=\"/validate--v1-configmap\",code=\"200\"} 6"
        ),
        "{text}"
    );
    assert!(
        text.contains("controller_runtime_webhook_latency_seconds_count{webhook=\"/convert\"} 3"),
        "{text}"
    );
    assert!(text.contains("controller_runtime_webhook_requests_in_flight{webhook=\"/convert\"} 0"), "{text}");

    // A renewed certificate from another CA: picked up without a restart.
    let new_ca = write_certs(dir.path());
    let renewed = client(&url, &new_ca);
    let mut switched = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if renewed.get().abs_path("/healthz").send().await.is_ok() {
            switched = true;
            break;
        }
    }
    assert!(switched, "the renewed certificate was never served");
    assert!(
        client(&url, &ca).get().abs_path("/healthz").send().await.is_err(),
        "the old certificate is still served"
    );

    stop.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_runs_its_webhook_server_until_shutdown() {
    let api = krust_apiserver::ApiServer::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = write_certs(dir.path());
    let server = WebhookServer::builder()
        .bind("127.0.0.1:0".parse().unwrap())
        .cert_dir(dir.path())
        .validator::<ConfigMap, _>(NoForbiddenKeys)
        .build()
        .unwrap();
    let addr = server.local_addr().unwrap();
    let url = format!("https://{addr}");
    let manager = krust_runtime::manager::Manager::builder(api.kubeconfig().config)
        .metrics_addr("127.0.0.1:0")
        .webhook_server(server)
        .build()
        .unwrap();
    let stop = manager.shutdown_token();
    let running = tokio::spawn(manager.clone().run());
    let https = client(&url, &ca);
    let mut up = false;
    for _ in 0..100 {
        if https.get().abs_path("/healthz").send().await.is_ok_and(|r| r.status() == http::StatusCode::OK) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the webhook server never answered");
    let answer = post(
        &https,
        "/validate--v1-configmap",
        &review("CREATE", Some(cm(json!({"forbidden": "x"}), json!({}))), None),
    )
    .await;
    assert_eq!(answer["response"]["allowed"], false);
    // Its metrics are the manager's.
    let metrics_url = format!("http://{}", manager.local_addr().unwrap());
    let plain = RestClient::unversioned(&Config::new(metrics_url.parse().unwrap())).unwrap();
    let metrics = plain.get().abs_path("/metrics").send().await.unwrap();
    let text = String::from_utf8_lossy(metrics.raw_body()).to_string();
    assert!(
        text.contains(
            "controller_runtime_webhook_requests_total{webhook=\"/validate--v1-configmap\",code=\"200\"} 1"
        ),
        "{text}"
    );
    stop.cancel();
    running.await.unwrap().unwrap();
    assert!(std::net::TcpStream::connect(addr).is_err(), "still listening after shutdown");
}

/// A raw handler that takes its time (for timeouts), then allows.
struct Slow;

#[async_trait]
impl krust_runtime::webhook::AdmissionHandler for Slow {
    async fn handle(
        &self,
        request: &kube_core::admission::AdmissionRequest<kube_core::DynamicObject>,
    ) -> kube_core::admission::AdmissionResponse {
        tokio::time::sleep(Duration::from_secs(3)).await;
        kube_core::admission::AdmissionResponse::from(request)
    }
}

fn webhook_config(kind: &str, name: &str, path: &str, ca: &str, extra: Value) -> Value {
    let mut hook = json!({
        "name": name,
        "clientConfig": {"service": {"namespace": "system", "name": "webhooks", "path": path, "port": 443},
                         "caBundle": STANDARD.encode(ca.as_bytes())},
        "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"], "scope": "Namespaced"}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "objectSelector": {"matchLabels": {"checked": "yes"}},
    });
    if let (Some(h), Some(e)) = (hook.as_object_mut(), extra.as_object()) {
        h.extend(e.clone());
    }
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name}, "webhooks": [hook]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn krust_apiserver_calls_mutating_and_validating_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let ca = write_certs(dir.path());
    let server = WebhookServer::builder()
        .bind("127.0.0.1:0".parse().unwrap())
        .cert_dir(dir.path())
        .validator::<ConfigMap, _>(NoForbiddenKeys)
        .defaulter::<ConfigMap, _>(Labeller)
        .admission("/slow", Slow)
        .build()
        .unwrap();
    let hooks_url = format!("https://{}", server.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(server.run(stop.clone()));
    let api = krust_apiserver::ApiServer::builder()
        .tls(true)
        .token("webhook-test-token")
        .resolve_service("system", "webhooks", hooks_url.clone())
        .resolve_service("system", "nobody", "https://127.0.0.1:1")
        .start()
        .await
        .unwrap();
    let config = api.kubeconfig().config;
    let admission = RestClient::new(
        &config.clone().with_group_version(kube_core::GroupVersion::gv("admissionregistration.k8s.io", "v1")),
    )
    .unwrap();
    let core =
        RestClient::new(&config.clone().with_group_version(kube_core::GroupVersion::gv("", "v1"))).unwrap();
    let create = |resource: &'static str, body: Value| {
        let admission = admission.clone();
        async move {
            let r = admission.post().resource(resource).body(&body).send().await.unwrap();
            assert!(r.status().is_success(), "{}", String::from_utf8_lossy(r.raw_body()));
        }
    };
    create(
        "mutatingwebhookconfigurations",
        webhook_config(
            "MutatingWebhookConfiguration",
            "label.example.com",
            "/mutate--v1-configmap",
            &ca,
            json!({}),
        ),
    )
    .await;
    create(
        "validatingwebhookconfigurations",
        webhook_config(
            "ValidatingWebhookConfiguration",
            "keys.example.com",
            "/validate--v1-configmap",
            &ca,
            json!({}),
        ),
    )
    .await;
    let post_cm = |name: &str, data: Value, labels: Value| {
        let body = json!({"metadata": {"name": name, "labels": labels}, "data": data});
        let core = core.clone();
        async move { core.post().namespace("default").resource("configmaps").body(&body).send().await.unwrap() }
    };
    let message = |r: &krust_client::Response| -> String {
        serde_json::from_slice::<Value>(r.raw_body())
            .map(|v| v["message"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };

    // Denied, worded as kube-apiserver words it, with the webhook's code.
    let r = post_cm("bad", json!({"forbidden": "x"}), json!({"checked": "yes"})).await;
    assert_eq!(r.status(), http::StatusCode::UNPROCESSABLE_ENTITY, "{}", message(&r));
    assert_eq!(
        message(&r),
        "admission webhook \"keys.example.com\" denied the request: data.forbidden: is not allowed"
    );
    // Allowed, and mutated: the defaulter's label is stored.
    let r = post_cm("good", json!({"a": "b"}), json!({"checked": "yes"})).await;
    assert_eq!(r.status(), http::StatusCode::CREATED, "{}", message(&r));
    let stored: Value = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .name("good")
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(stored["metadata"]["labels"]["defaulted"], "yes");
    // The object selector: unlabelled objects are not sent to the webhooks.
    let r = post_cm("unchecked", json!({"forbidden": "x"}), json!({})).await;
    assert_eq!(r.status(), http::StatusCode::CREATED);
    // Updates go through them too (an update of a locked ConfigMap is refused).
    let r = post_cm("locked", json!({"locked": "1"}), json!({"checked": "yes"})).await;
    assert_eq!(r.status(), http::StatusCode::CREATED);
    let r = core
        .patch(krust_client::PatchType::Merge)
        .namespace("default")
        .resource("configmaps")
        .name("locked")
        .body(&json!({"data": {"locked": "2"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), http::StatusCode::FORBIDDEN);
    assert!(message(&r).contains("locked ConfigMaps do not change"), "{}", message(&r));

    // A webhook that cannot be reached: Fail refuses the write, Ignore lets it through.
    for (policy, expected) in
        [("Fail", http::StatusCode::INTERNAL_SERVER_ERROR), ("Ignore", http::StatusCode::CREATED)]
    {
        let name = format!("down-{}.example.com", policy.to_lowercase());
        let mut config = webhook_config(
            "ValidatingWebhookConfiguration",
            &name,
            "/",
            &ca,
            json!({"failurePolicy": policy, "timeoutSeconds": 2}),
        );
        config["webhooks"][0]["clientConfig"]["service"]["name"] = json!("nobody");
        config["webhooks"][0]["objectSelector"] = json!({"matchLabels": {"down": policy}});
        create("validatingwebhookconfigurations", config).await;
        let r = post_cm(&format!("down-{}", policy.to_lowercase()), json!({}), json!({"down": policy})).await;
        assert_eq!(r.status(), expected, "{policy}: {}", message(&r));
        if policy == "Fail" {
            assert!(message(&r).starts_with(&format!("Internal error occurred: failed calling webhook \"{name}\": failed to call webhook: Post \"https://127.0.0.1:1/?timeout=2s\"")), "{}", message(&r));
        }
    }

    // A webhook slower than its timeoutSeconds fails the call.
    let mut config = webhook_config(
        "ValidatingWebhookConfiguration",
        "slow.example.com",
        "/slow",
        &ca,
        json!({"timeoutSeconds": 1}),
    );
    config["webhooks"][0]["objectSelector"] = json!({"matchLabels": {"slow": "yes"}});
    create("validatingwebhookconfigurations", config).await;
    let started = std::time::Instant::now();
    let r = post_cm("slow", json!({}), json!({"slow": "yes"})).await;
    assert_eq!(r.status(), http::StatusCode::INTERNAL_SERVER_ERROR, "{}", message(&r));
    assert!(message(&r).contains("failed calling webhook \"slow.example.com\""), "{}", message(&r));
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "the timeout was not applied: {:?}",
        started.elapsed()
    );

    // kubectl sees the denial.
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = home.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig().yaml).unwrap();
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-kubectl\n  labels:\n    checked: \"yes\"\ndata:\n  forbidden: x\n";
    let mut child =
        std::process::Command::new(std::env::var("KRUST_KUBECTL").unwrap_or_else(|_| "kubectl".into()))
            .args(["apply", "--validate=false", "-f", "-", "--kubeconfig"])
            .arg(&kubeconfig)
            .env("HOME", home.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(manifest.as_bytes()).unwrap();
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("The ConfigMap \"from-kubectl\" is invalid: data.forbidden: is not allowed"),
        "{stderr}"
    );
    stop.cancel();
}

/// A validating webhook that knows only v2 Things: it refuses an amount over 100, and anything
/// that is not sent as v2 (its rules name v2 only; matchPolicy Equivalent must convert).
struct AmountLimit;

#[async_trait]
impl krust_runtime::webhook::AdmissionHandler for AmountLimit {
    async fn handle(
        &self,
        request: &kube_core::admission::AdmissionRequest<kube_core::DynamicObject>,
    ) -> kube_core::admission::AdmissionResponse {
        let response = kube_core::admission::AdmissionResponse::from(request);
        let sent = request.object.as_ref().and_then(|o| o.types.as_ref()).map(|t| t.api_version.clone());
        let came = request.request_kind.as_ref().map(|k| k.version.clone()).unwrap_or_default();
        if request.kind.version != "v2" || sent.as_deref() != Some("example.com/v2") {
            return response.deny(format!("sent as {:?} ({sent:?}), not v2", request.kind.version));
        }
        let amount =
            request.object.as_ref().map(|o| o.data["spec"]["amount"].as_i64().unwrap_or(0)).unwrap_or(0);
        if amount > 100 {
            return response.deny(format!("amount {amount} is over 100 (the request came as {came})"));
        }
        response
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_are_stored_in_the_storage_version_and_converted_by_their_webhook() {
    use futures_util::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let ca = write_certs(dir.path());
    let server = WebhookServer::builder()
        .bind("127.0.0.1:0".parse().unwrap())
        .cert_dir(dir.path())
        .conversion(Converter::<v2::Thing>::hub().spoke::<v1::Thing>())
        .admission("/amount-limit", AmountLimit)
        .build()
        .unwrap();
    let hooks_url = format!("https://{}", server.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(server.run(stop.clone()));
    let api = krust_apiserver::ApiServer::builder()
        .tls(true)
        .resolve_service("system", "webhooks", hooks_url.clone())
        .start()
        .await
        .unwrap();
    let config = api.kubeconfig().config;
    let gv = |g: &str, v: &str| {
        RestClient::new(&config.clone().with_group_version(kube_core::GroupVersion::gv(g, v))).unwrap()
    };
    let schema = |props: Value| json!({"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": props}}}});
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "things", "kind": "Thing"},
            "conversion": {"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {
                "service": {"namespace": "system", "name": "webhooks", "path": "/convert", "port": 443},
                "caBundle": STANDARD.encode(ca.as_bytes())}}},
            "versions": [
                {"name": "v1", "served": true, "storage": false, "schema": schema(json!({"size": {"type": "string"}}))},
                {"name": "v2", "served": true, "storage": true, "schema": schema(json!({"amount": {"type": "integer"}, "unit": {"type": "string"}}))}]}});
    let r = gv("apiextensions.k8s.io", "v1")
        .post()
        .resource("customresourcedefinitions")
        .body(&crd)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", String::from_utf8_lossy(r.raw_body()));
    let (v1c, v2c) = (gv("example.com", "v1"), gv("example.com", "v2"));
    let get = |client: &RestClient, name: &str| {
        let (client, name) = (client.clone(), name.to_string());
        async move {
            let r = client.get().namespace("default").resource("things").name(&name).send().await.unwrap();
            assert!(r.status().is_success(), "{}", String::from_utf8_lossy(r.raw_body()));
            r.into::<Value>().unwrap()
        }
    };

    // Written as v1, read as v2 and as v1.
    let thing = json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "a"}, "spec": {"size": "10Gi"}});
    let r = v1c.post().namespace("default").resource("things").body(&thing).send().await.unwrap();
    assert_eq!(r.status(), http::StatusCode::CREATED, "{}", String::from_utf8_lossy(r.raw_body()));
    let created: Value = r.into().unwrap();
    assert_eq!(created["apiVersion"], "example.com/v1");
    assert_eq!(created["spec"], json!({"size": "10Gi"}));
    let as_v2 = get(&v2c, "a").await;
    assert_eq!(as_v2["apiVersion"], "example.com/v2");
    assert_eq!(as_v2["spec"], json!({"amount": 10, "unit": "Gi"}));
    assert_eq!(get(&v1c, "a").await["spec"], json!({"size": "10Gi"}));

    // Written as v2, listed as v1.
    let thing = json!({"apiVersion": "example.com/v2", "kind": "Thing", "metadata": {"name": "b"}, "spec": {"amount": 3, "unit": "Mi"}});
    let r = v2c.post().namespace("default").resource("things").body(&thing).send().await.unwrap();
    assert_eq!(r.status(), http::StatusCode::CREATED);
    let list: Value = v1c.get().namespace("default").resource("things").send().await.unwrap().into().unwrap();
    let sizes: Vec<&Value> = list["items"].as_array().unwrap().iter().map(|i| &i["spec"]["size"]).collect();
    assert_eq!(sizes, [&json!("10Gi"), &json!("3Mi")]);

    // A patch through v1 of an object stored as v2, and a watch through v1 that sees it.
    let mut watch = v1c
        .get()
        .namespace("default")
        .resource("things")
        .param("watch", "true")
        .param("resourceVersion", list["metadata"]["resourceVersion"].as_str().unwrap())
        .watch::<Value>()
        .await
        .unwrap();
    let r = v1c
        .patch(krust_client::PatchType::Merge)
        .namespace("default")
        .resource("things")
        .name("b")
        .body(&json!({"spec": {"size": "5Mi"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), http::StatusCode::OK, "{}", String::from_utf8_lossy(r.raw_body()));
    assert_eq!(get(&v2c, "b").await["spec"], json!({"amount": 5, "unit": "Mi"}));
    let event = tokio::time::timeout(Duration::from_secs(10), watch.next()).await.unwrap().unwrap().unwrap();
    match event {
        kube_core::WatchEvent::Modified(obj) => {
            assert_eq!(obj["apiVersion"], "example.com/v1");
            assert_eq!(obj["spec"], json!({"size": "5Mi"}));
        }
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    // kube-rs reads both versions.
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&api.kubeconfig().yaml).unwrap();
    let kube_config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    let kube_client = kube::Client::try_from(kube_config).unwrap();
    let old: kube::Api<v1::Thing> = kube::Api::namespaced(kube_client.clone(), "default");
    let new: kube::Api<v2::Thing> = kube::Api::namespaced(kube_client, "default");
    assert_eq!(old.get("a").await.unwrap().spec.size, "10Gi");
    assert_eq!(new.get("a").await.unwrap().spec.amount, 10);
    assert_eq!(old.get("b").await.unwrap().spec.size, "5Mi");

    // A validating webhook registered for v2 only (matchPolicy Equivalent by default) gets a
    // write through v1 converted to v2; with matchPolicy Exact it is not called for v1.
    let config = |policy: &str| {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "amount-limit"},
            "webhooks": [{"name": "amount.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "matchPolicy": policy,
                "clientConfig": {"url": format!("{hooks_url}/amount-limit"), "caBundle": STANDARD.encode(ca.as_bytes())},
                "rules": [{"apiGroups": ["example.com"], "apiVersions": ["v2"], "resources": ["things"], "operations": ["CREATE"]}]}]})
    };
    let admission = gv("admissionregistration.k8s.io", "v1");
    let r = admission
        .post()
        .resource("validatingwebhookconfigurations")
        .body(&config("Equivalent"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", String::from_utf8_lossy(r.raw_body()));
    let big = json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "big"}, "spec": {"size": "500Gi"}});
    let r = v1c.post().namespace("default").resource("things").body(&big).send().await.unwrap();
    let text = String::from_utf8_lossy(r.raw_body()).to_string();
    // No code in the webhook's status: 400, as kube-apiserver's ToStatusErr makes it.
    assert_eq!(r.status(), http::StatusCode::BAD_REQUEST, "{text}");
    assert!(
        text.contains(r#"admission webhook \"amount.example.com\" denied the request: amount 500 is over 100 (the request came as v1)"#),
        "{text}"
    );
    let small = json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "small"}, "spec": {"size": "50Gi"}});
    let r = v1c.post().namespace("default").resource("things").body(&small).send().await.unwrap();
    assert_eq!(r.status(), http::StatusCode::CREATED, "{}", String::from_utf8_lossy(r.raw_body()));
    let r = admission
        .delete()
        .resource("validatingwebhookconfigurations")
        .name("amount-limit")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = admission
        .post()
        .resource("validatingwebhookconfigurations")
        .body(&config("Exact"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", String::from_utf8_lossy(r.raw_body()));
    let r = v1c.post().namespace("default").resource("things").body(&big).send().await.unwrap();
    assert_eq!(
        r.status(),
        http::StatusCode::CREATED,
        "Exact: a v1 write does not match a v2 rule: {}",
        String::from_utf8_lossy(r.raw_body())
    );

    // A conversion that fails is the client's 500, with the webhook's reason.
    let bad = json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "bad"}, "spec": {"size": "huge"}});
    let r = v1c.post().namespace("default").resource("things").body(&bad).send().await.unwrap();
    assert_eq!(r.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    let text = String::from_utf8_lossy(r.raw_body()).to_string();
    assert!(
        text.contains("conversion webhook for example.com/v1, Kind=Thing failed")
            && text.contains("has no number"),
        "{text}"
    );
    stop.cancel();
}
