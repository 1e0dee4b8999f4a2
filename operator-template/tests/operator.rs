//! The operator against an embedded Kubernetes API server (krust-apiserver, in this process):
//! the CRD installs, a {{kind}} gets its ConfigMap and a `Ready` condition, the ConfigMap is
//! repaired when someone else changes or deletes it{% if finalizer %}, the finalizer runs on deletion{% endif %};
//! and the binary runs with the flags the Helm chart passes.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::Duration,
};

use clap::Parser;
{%- if leader_election %}
use krust::k8s_openapi::api::coordination::v1::Lease;
{%- endif %}
{%- if webhooks %}
use krust::runtime::webhook::{WebhookEndpoint, WebhookServer, webhook_configurations};
{%- endif %}
use krust::{
    Clientset, TypedClient,
    k8s_openapi::api::core::v1::ConfigMap,
    prelude::*,
    runtime::controller::helpers::{conditions::is_deleted, wait_for},
    serde_json,
    testing::TestEnv,
};
use krust_apiserver::ApiServer;

use {{crate_name}}::{
    crd::{self, {{kind}}, {{kind}}Spec},
    operator::{self, Args},
{%- if webhooks %}
    reconciler, webhook,
{%- else %}
    reconciler,
{%- endif %}
};

const WAIT: Duration = Duration::from_secs(20);

fn sample(name: &str, message: &str) -> {{kind}} {
    let spec = {{kind}}Spec { {% if scope == "Cluster" %}target_namespace: "default".into(), {% endif %}message: message.into() };
{%- if scope == "Namespaced" %}
    let mut obj = {{kind}}::new(name, spec);
    obj.metadata.namespace = Some("default".into());
    obj
{%- else %}
    {{kind}}::new(name, spec)
{%- endif %}
}

fn objects(clientset: &Clientset) -> TypedClient<{{kind}}> {
    clientset.typed::<{{kind}}>({% if scope == "Namespaced" %}Some("default"){% else %}None{% endif %})
}

/// `GET path` on the manager's metrics/probes server: (status code, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("the probes server listens");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, response)
}

async fn wait_until_ready(addr: &str) {
    for _ in 0..200 {
        if http_get(addr, "/readyz").0 == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/readyz never answered 200: {:?}", http_get(addr, "/readyz"));
}

fn message_of(cm: Option<&ConfigMap>) -> Option<&str> {
    cm.and_then(|c| c.data.as_ref()).and_then(|d| d.get("message")).map(String::as_str)
}

fn is_ready(obj: Option<&{{kind}}>) -> bool {
    obj.and_then(|o| o.status.as_ref()).is_some_and(|s| {
        s.observed_generation == obj.and_then(|o| o.metadata.generation)
            && s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

#[test]
fn the_chart_holds_the_crd_of_the_rust_type() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/{{project-name}}/crds/crd.yaml");
    let in_chart: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(path).expect("the chart's CRD")).unwrap();
    assert_eq!(
        in_chart,
        serde_json::to_value(crd::crd()).unwrap(),
        "{path} is stale: cargo run -- crdgen > charts/{{project-name}}/crds/crd.yaml"
    );
}

#[test]
fn the_chart_grants_what_the_controller_watches() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/{{project-name}}/values.yaml");
    let values: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(path).expect("the chart's values")).unwrap();
    let derived: serde_json::Value = serde_saphyr::from_str(&operator::rbac_yaml().unwrap()).unwrap();
    assert_eq!(values["rbac"]["rules"], derived, "{path}: rbac.rules is stale: paste `cargo run -- rbacgen`");
}

{%- if webhooks %}

#[test]
fn the_chart_lists_the_operator_webhooks() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/{{project-name}}/values.yaml");
    let values: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(path).expect("the chart's values")).unwrap();
    let derived: serde_json::Value = serde_saphyr::from_str(&webhook::webhook_yaml().unwrap()).unwrap();
    let stale = "webhook.webhooks is stale: paste `cargo run -- webhookgen`";
    assert_eq!(values["webhook"]["webhooks"], derived, "{path}: {stale}");
}

/// The webhooks over HTTPS, called by the API server as a cluster would: a {{kind}} with a
/// message too long is refused with the validator's message, one without a message gets the
/// defaulter's greeting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_calls_the_webhooks() {
    let server = ApiServer::builder().start().await.unwrap();
    let clientset = Clientset::new(&server.kubeconfig().config).unwrap();
    crd::install(&clientset).await.unwrap();
    let certs = tempfile::tempdir().unwrap();
    let ca = krust_apiserver::write_webhook_certificate(certs.path()).unwrap();
    let server_builder = WebhookServer::builder().bind(([127, 0, 0, 1], 0).into()).cert_dir(certs.path());
    let builder = webhook::webhooks(server_builder);
    let specs = builder.webhooks();
    let webhooks = builder.build().unwrap();
    let url = format!("https://127.0.0.1:{}", webhooks.local_addr().unwrap().port());
    let stop = krust::CancellationToken::new();
    let serving = tokio::spawn(webhooks.run(stop.clone()));
    let endpoint = WebhookEndpoint::Url(url);
    let (mutating, validating) =
        webhook_configurations(reconciler::MANAGER, &specs, &endpoint, Some(ca.as_bytes()));
    let admission = clientset.admissionregistration_v1();
    let create = CreateOptions::default();
    admission.mutating_webhook_configurations().create(&mutating.unwrap(), &create).await.unwrap();
    admission.validating_webhook_configurations().create(&validating.unwrap(), &create).await.unwrap();

    let objects = objects(&clientset);
    let long = "x".repeat(webhook::MAX_MESSAGE + 1);
    let refused = objects.create(&sample("too-long", &long), &CreateOptions::default()).await.unwrap_err();
    assert!(refused.to_string().contains("spec.message: must be at most 1024 bytes"), "{refused}");
    let created = objects.create(&sample("quiet", ""), &CreateOptions::default()).await.unwrap();
    assert_eq!(created.spec.message, "Hello from quiet");
    stop.cancel();
    serving.await.unwrap().unwrap();
}
{%- endif %}

#[test]
fn the_desired_config_map_is_owned_by_its_{{kind_lower}}() {
    let mut obj = sample("demo", "hi");
    obj.metadata.uid = Some("0e7b0d4c-0000-4000-8000-000000000001".into());
    let cm = reconciler::desired_config_map(&obj).unwrap();
    assert_eq!(cm.metadata.name.as_deref(), Some("demo-message"));
    assert_eq!(cm.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(message_of(Some(&cm)), Some("hi"));
    let owner = &cm.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.controller), ("{{kind}}", "demo", Some(true)));
}

/// The reconciler alone (krust::testing): no manager, a reconcile called by hand, then what it
/// wrote is read back. Start your own reconciler tests from this one.
#[tokio::test]
async fn a_reconcile_writes_the_config_map_and_the_status() {
    let env = TestEnv::start().await.unwrap();
    env.install_crd::<{{kind}}>().await.unwrap();
    let obj = env.create(&sample("unit", "from a unit test")).await.unwrap();
    let req = {% if scope == "Namespaced" %}Request::new("default", "unit"){% else %}Request::cluster("unit"){% endif %};
    let reconciler = reconciler::{{kind}}Reconciler;
{%- if finalizer %}

    // The first reconcile puts the finalizer on; the next one, once the cache has the object
    // with it, does the work.
    assert_eq!(env.reconcile(&reconciler, req.clone()).await.unwrap(), Action::done());
    let caught_up: {{kind}} = env.catch_up({% if scope == "Namespaced" %}Some("default"){% else %}None{% endif %}, "unit").await.unwrap();
    assert_eq!(caught_up.metadata.finalizers.as_deref(), Some(&[reconciler::FINALIZER.to_string()][..]));
{%- endif %}
    let action = env.reconcile(&reconciler, req).await.unwrap();
    assert_eq!(action, Action::requeue_after(reconciler::RESYNC));

    let cm = env
        .clientset()
        .core_v1()
        .config_maps("default")
        .get("unit-message", &GetOptions::default())
        .await
        .unwrap();
    assert_eq!(message_of(Some(&cm)), Some("from a unit test"));
    assert_eq!(cm.metadata.owner_references.unwrap()[0].uid, obj.metadata.uid.clone().unwrap());
    let obj = objects(env.clientset()).get("unit", &GetOptions::default()).await.unwrap();
    assert!(is_ready(Some(&obj)), "{:?}", obj.status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciles_against_an_embedded_api_server() {
    let server = ApiServer::builder().start().await.unwrap();
    let config = server.kubeconfig().config;
    let clientset = Clientset::new(&config).unwrap();
    crd::install(&clientset).await.unwrap();

    // The manager as the binary builds it (the flags the chart passes, a free port).
    let args = Args::parse_from([
        "{{project-name}}",
        "--metrics-addr=127.0.0.1:0",
        "--leader-election-namespace=default",
    ]);
    let manager = operator::manager(&args, config).unwrap();
    let identity = manager.identity().to_string();
    let stop = manager.shutdown_token();
    let running = tokio::spawn(manager.run());

    let objects = objects(&clientset);
    objects.create(&sample("demo", "hello"), &CreateOptions::default()).await.unwrap();
    let config_maps = clientset.core_v1().config_maps("default");
    wait_for(&config_maps, "demo-message", |c| message_of(c) == Some("hello"), WAIT).await.unwrap();
    let obj = wait_for(&objects, "demo", is_ready, WAIT).await.unwrap().unwrap();
{%- if finalizer %}
    assert_eq!(obj.metadata.finalizers.as_deref(), Some(&[reconciler::FINALIZER.to_string()][..]));
{%- else %}
    assert!(obj.metadata.finalizers.is_none());
{%- endif %}

    // A spec change reaches the ConfigMap and the status follows the new generation.
    let patch = serde_json::json!({"spec": {"message": "hello again"}});
    objects.patch("demo", PatchType::Merge, &patch, &PatchOptions::default()).await.unwrap();
    wait_for(&config_maps, "demo-message", |c| message_of(c) == Some("hello again"), WAIT).await.unwrap();
    wait_for(&objects, "demo", is_ready, WAIT).await.unwrap();

    // Someone else edits or deletes the ConfigMap: the operator puts it back.
    let patch = serde_json::json!({"data": {"message": "tampered"}});
    config_maps.patch("demo-message", PatchType::Merge, &patch, &PatchOptions::default()).await.unwrap();
    wait_for(&config_maps, "demo-message", |c| message_of(c) == Some("hello again"), WAIT).await.unwrap();
    config_maps.delete("demo-message", &DeleteOptions::default()).await.unwrap();
    wait_for(&config_maps, "demo-message", |c| message_of(c) == Some("hello again"), WAIT).await.unwrap();
{%- if leader_election %}

    // It leads: the Lease names this manager.
    let leases = clientset.coordination_v1().leases("default");
    let lease: Lease = leases.get("{{project-name}}-leader", &GetOptions::default()).await.unwrap();
    assert_eq!(lease.spec.and_then(|s| s.holder_identity).as_deref(), Some(identity.as_str()));
{%- else %}
    assert!(!identity.is_empty());
{%- endif %}

    // Deleting the {{kind}}{% if finalizer %} runs the clean-up, then{% endif %} takes its ConfigMap with it.
    objects.delete("demo", &DeleteOptions::default()).await.unwrap();
    wait_for(&objects, "demo", is_deleted(), WAIT).await.unwrap();
    wait_for(&config_maps, "demo-message", is_deleted(), WAIT).await.unwrap();
    // Events are sent in the background: the last one may still be on its way.
    let expected = [{% if finalizer %}"Created", "CleanedUp"{% else %}"Created"{% endif %}];
    let mut reasons: Vec<String> = Vec::new();
    for _ in 0..100 {
        let events = clientset.events_v1().events("").list(&ListOptions::default()).await.unwrap();
        reasons = events
            .items
            .iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("demo"))
            .filter_map(|e| e.reason.clone())
            .collect();
        if expected.iter().all(|r| reasons.iter().any(|x| x == r)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reasons.iter().any(|r| r == "Created"), "events: {reasons:?}");
{%- if finalizer %}
    assert!(reasons.iter().any(|r| r == "CleanedUp"), "events: {reasons:?}");
{%- endif %}

    stop.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_with_the_charts_flags() {
    let server = ApiServer::builder().start().await.unwrap();
    let clientset = Clientset::new(&server.kubeconfig().config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, &server.kubeconfig().yaml).unwrap();

    // `crdgen` prints the CRD; install it as `kubectl apply` would.
    let crdgen = Command::new(env!("CARGO_BIN_EXE_{{project-name}}")).arg("crdgen").output().unwrap();
    assert!(crdgen.status.success(), "{}", String::from_utf8_lossy(&crdgen.stderr));
    let printed: serde_json::Value = serde_saphyr::from_slice(&crdgen.stdout).unwrap();
    assert_eq!(printed, serde_json::to_value(crd::crd()).unwrap());
    crd::install(&clientset).await.unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_{{project-name}}"))
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--metrics-addr={addr}"))
        .arg("--log-format=json")
        .arg("--leader-elect")
        .arg("--leader-election-lease=chart-lease")
        .arg("--leader-election-namespace=default")
        .env_remove("KUBECONFIG")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let logs =
        std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>());

    objects(&clientset).create(&sample("from-binary", "hi"), &CreateOptions::default()).await.unwrap();
    let config_maps = clientset.core_v1().config_maps("default");
    wait_for(&config_maps, "from-binary-message", |c| message_of(c) == Some("hi"), WAIT).await.unwrap();
    wait_until_ready(&addr).await;
    assert_eq!(http_get(&addr, "/healthz").0, 200);
    let (_, metrics) = http_get(&addr, "/metrics");
    let reconciles = ["controller_runtime_reconcile_total{controller=\"", reconciler::MANAGER, "\""].concat();
    assert!(metrics.contains(&reconciles), "{metrics}");
    assert!(metrics.contains("leader_election_master_status"), "{metrics}");

    // SIGTERM: a graceful stop that releases the Lease.
    let killed = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let logs = logs.join().unwrap();
    assert!(status.success(), "exit {status}; logs:\n{}", logs.join("\n"));
    assert!(!logs.is_empty(), "no logs");
    for line in &logs {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok_and(|v| v["level"].is_string()), "not a JSON log line: {line}");
    }
    let leases = clientset.coordination_v1().leases("default");
    let lease = leases.get("chart-lease", &GetOptions::default()).await.unwrap();
    let holder = lease.spec.and_then(|s| s.holder_identity).unwrap_or_default();
    assert_eq!(holder, "", "the Lease is released on SIGTERM");
}
