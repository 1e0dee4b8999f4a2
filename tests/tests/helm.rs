//! The Helm chart `charts/krust-operator`: real Helm (v4 SDK through helm-python-sdk) lints it
//! strictly and renders it with default values and with every optional feature on; the manifests
//! validate offline against the Kubernetes 1.33 schemas (kubernetes-validate, strict); bad values
//! are rejected by `values.schema.json` with a message naming the value; and krust-apiserver
//! accepts every rendered object with `kubectl apply --server-side --dry-run=server`; the operator
//! runs with the Deployment's rendered arguments. The CRD in `files/crds/` is the one the example
//! operator's Rust types generate, `rbac.rules` the ones its controller's watches derive, and
//! `webhook.webhooks` its webhook server's handlers. With the webhooks on, the chart renders
//! their Service, a cert-manager Certificate (or uses a provided Secret and caBundle), the
//! webhook configurations and the CRD's conversion webhook; off, the CRD serves `v1` only.

use std::{path::Path, process::Command};

use krust_tests::{ApiServerProcess, example_binary, http_status};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the repository")
}

#[test]
fn the_chart_lints_renders_validates_and_is_accepted_by_an_api_server() {
    let out = tempfile::tempdir().unwrap();
    let check = Command::new("python3")
        .arg(repo().join("scripts/check_chart.py"))
        .arg(repo().join("charts/krust-operator"))
        .arg(out.path())
        .output()
        .expect("python3 runs");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "chart check failed (needs `pip install helm-python-sdk kubernetes-validate pyyaml`, as .ci/run does):\n{report}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    for line in [
        "ok helm lint --strict",
        "ok render default: 9 objects (ClusterRole, ClusterRoleBinding, CustomResourceDefinition, Deployment, PodDisruptionBudget, Role, RoleBinding, Service, ServiceAccount)",
        "ok render full: 19 objects (Certificate, ClusterRole, ClusterRoleBinding, CustomResourceDefinition, Deployment, Issuer, MutatingWebhookConfiguration, NetworkPolicy, PodDisruptionBudget, Role, RoleBinding, Service, ServiceAccount, ServiceMonitor, ValidatingWebhookConfiguration)",
        "ok render secret: 13 objects (ClusterRole, ClusterRoleBinding, CustomResourceDefinition, Deployment, MutatingWebhookConfiguration, PodDisruptionBudget, Role, RoleBinding, Service, ServiceAccount, ValidatingWebhookConfiguration)",
        "ok webhooks from a Secret without caBundle refused: ",
        "ok values {\"replicas\": \"two\"} rejected: krust-operator: - at '/replicas': got string, want integer",
        "ok values {\"webhook\": {\"failurePolicy\": \"Sometimes\"}} rejected: krust-operator: - at '/webhook/failurePolicy': value must be one of 'Fail', 'Ignore'",
        "ok values {\"tracing\": {\"otlpEndpoint\": \"https://collector:4318\"}} rejected: krust-operator: - at '/tracing/otlpEndpoint'",
    ] {
        assert!(report.lines().any(|l| l.starts_with(line)), "{line:?} missing:\n{report}");
    }
    let full = std::fs::read_to_string(out.path().join("full.yaml")).unwrap();
    for needle in [
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        "- ALL",
        "type: RuntimeDefault",
        "path: /healthz",
        "path: /readyz",
        "replicas: 2",
        "--leader-elect",
        "--webhook-addr=0.0.0.0:9443",
        "secretName: demo-krust-operator-webhook-tls",
        "cert-manager.io/inject-ca-from: operators/demo-krust-operator-webhook",
        "path: /validate-example-krust-dev-v1-website",
        "path: /mutate-example-krust-dev-v1-website",
        "path: /convert",
        "strategy: Webhook",
        "--health-probe-addr=0.0.0.0:8081",
        "port: probes",
        "--metrics-secure",
        "--namespace=team-a,team-b",
        "secretName: demo-krust-operator-metrics-tls",
        "name: demo-krust-operator-metrics-reader",
        "resources:\n  - tokenreviews",
        "scheme: https",
        "name: OTEL_EXPORTER_OTLP_ENDPOINT\n          value: http://otel-collector.monitoring:4318",
        "name: OTEL_SERVICE_NAME\n          value: demo-krust-operator",
    ] {
        assert!(full.contains(needle), "{needle:?} missing from the rendered chart:\n{full}");
    }
    let secret = std::fs::read_to_string(out.path().join("secret.yaml")).unwrap();
    for needle in [
        "secretName: my-webhook-tls",
        "caBundle: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
        "failurePolicy: Ignore",
        "secretName: my-metrics-tls",
    ] {
        assert!(
            secret.contains(needle),
            "{needle:?} missing from the chart rendered with a Secret:\n{secret}"
        );
    }
    assert!(!secret.contains("cert-manager.io"), "a provided Secret needs no cert-manager:\n{secret}");
    // Webhooks off: the CRD serves its storage version only (v2 could not be converted).
    let default = std::fs::read_to_string(out.path().join("default.yaml")).unwrap();
    let crd: serde_json::Value = default
        .split("\n---\n")
        .map(|d| serde_saphyr::from_str::<serde_json::Value>(d).unwrap())
        .find(|d| d["kind"] == "CustomResourceDefinition")
        .expect("the chart renders the Website CRD");
    let served: Vec<(&str, bool)> = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["served"].as_bool().unwrap()))
        .collect();
    assert_eq!(served, [("v1", true), ("v2", false)]);
    assert!(crd["spec"]["conversion"].is_null(), "{crd}");

    // Every rendered object is accepted by an API server (krust-apiserver, with the
    // ServiceMonitor CRD installed as the Prometheus operator would).
    let server = ApiServerProcess::start(&[]);
    let kubeconfig = server.kubeconfig();
    let home = tempfile::tempdir().unwrap();
    let kubectl = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = Command::new("kubectl");
        cmd.args(["--kubeconfig", kubeconfig.to_str().unwrap()]).args(args).env("HOME", home.path());
        let out = match stdin {
            None => cmd.output().expect("kubectl runs"),
            Some(text) => {
                let path = home.path().join("stdin.yaml");
                std::fs::write(&path, text).unwrap();
                cmd.args(["-f", path.to_str().unwrap()]).output().expect("kubectl runs")
            }
        };
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for crd in [SERVICE_MONITOR_CRD, &cert_manager_crd("Certificate"), &cert_manager_crd("Issuer")] {
        kubectl(&["apply", "--server-side"], Some(crd));
    }
    kubectl(&["wait", "--for", "condition=established", "crd/servicemonitors.monitoring.coreos.com"], None);
    kubectl(&["wait", "--for", "condition=established", "crd/certificates.cert-manager.io"], None);
    kubectl(&["create", "namespace", "operators"], None);
    let crd = std::fs::read_to_string(
        repo().join("charts/krust-operator/files/crds/websites.example.krust.dev.yaml"),
    )
    .unwrap();
    kubectl(&["apply", "--server-side"], Some(&crd));
    for name in ["default", "full", "secret"] {
        let manifests = std::fs::read_to_string(out.path().join(format!("{name}.yaml"))).unwrap();
        let applied = kubectl(&["apply", "--server-side", "--dry-run=server"], Some(&manifests));
        let count = applied.lines().filter(|l| l.contains("serverside-applied (server dry run)")).count();
        assert_eq!(count, manifests.split("\n---\n").count(), "{name}: {applied}");
    }
    // Dry run: nothing was created.
    assert!(kubectl(&["get", "deployments", "-n", "operators", "-o", "name"], None).trim().is_empty());

    // The operator binary takes the arguments the Deployment passes (a free local port instead of
    // 0.0.0.0:8080): it leads on the chart's Lease, serves its probes, logs JSON and reconciles.
    // (default.yaml, read above)
    let mut args: Vec<String> = default
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- --"))
        .map(|a| format!("--{}", a.trim_matches('\'').trim_matches('"')))
        .collect();
    assert_eq!(args.len(), 6, "the Deployment's args: {args:?}");
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (metrics_port, port) = (free(), free());
    for arg in &mut args {
        if arg.starts_with("--metrics-addr=") {
            *arg = format!("--metrics-addr=127.0.0.1:{metrics_port}");
        }
        if arg.starts_with("--health-probe-addr=") {
            *arg = format!("--health-probe-addr=127.0.0.1:{port}");
        }
    }
    let mut operator = std::process::Command::new(example_binary("website_operator"))
        .args(&args)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ready = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        http_status(port, "/readyz") == Some(200)
    });
    let metrics = http_status(metrics_port, "/metrics");
    let lease = if ready {
        kubectl(
            &[
                "get",
                "lease",
                "demo-krust-operator",
                "-n",
                "operators",
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ],
            None,
        )
    } else {
        String::new()
    };
    operator.kill().unwrap();
    let output = operator.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(ready, "/readyz never answered 200 on the probe port; logs:\n{logs}");
    assert_eq!(metrics, Some(200), "/metrics on the metrics port");
    assert!(!lease.trim().is_empty(), "the operator holds the chart's Lease operators/demo-krust-operator");
    let first = logs.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok_and(|v| v["level"].is_string()),
        "--log-format=json: {first}"
    );
}

/// What `website_operator <flag>` prints, and the chart's values.
fn printed_and_values(flag: &str) -> (serde_json::Value, serde_json::Value) {
    let out = Command::new(example_binary("website_operator")).arg(flag).output().unwrap();
    assert!(out.status.success(), "{flag}: {}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_saphyr::from_slice(&out.stdout).unwrap();
    let values: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(repo().join("charts/krust-operator/values.yaml")).unwrap(),
    )
    .unwrap();
    (printed, values)
}

#[test]
fn the_chart_rbac_rules_are_derived_from_the_operator_controller() {
    let (derived, values) = printed_and_values("--print-rbac");
    assert_eq!(
        values["rbac"]["rules"], derived,
        "charts/krust-operator/values.yaml rbac.rules is stale: `cargo run --example website_operator -- --print-rbac`"
    );
}

#[test]
fn the_chart_crd_is_generated_from_the_operator_type() {
    let out = Command::new(example_binary("website_operator")).arg("--print-crd").output().unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let in_chart = std::fs::read_to_string(
        repo().join("charts/krust-operator/files/crds/websites.example.krust.dev.yaml"),
    )
    .unwrap();
    assert_eq!(
        generated, in_chart,
        "charts/krust-operator/files/crds/ is stale: regenerate with `cargo run --example website_operator -- --print-crd`"
    );
}

#[test]
fn the_chart_webhooks_are_the_operator_webhooks() {
    let (derived, values) = printed_and_values("--print-webhooks");
    assert_eq!(derived.as_array().map(Vec::len), Some(2), "a validating and a mutating webhook: {derived}");
    assert_eq!(
        values["webhook"]["webhooks"], derived,
        "charts/krust-operator/values.yaml webhook.webhooks is stale: `cargo run --example website_operator -- --print-webhooks`"
    );
}

/// A cert-manager CRD that accepts anything (as installed by cert-manager, for the dry run).
fn cert_manager_crd(kind: &str) -> String {
    let plural = format!("{}s", kind.to_lowercase());
    format!(
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.cert-manager.io
spec:
  group: cert-manager.io
  names: {{kind: {kind}, listKind: {kind}List, plural: {plural}, singular: {singular}}}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
",
        singular = kind.to_lowercase()
    )
}

const SERVICE_MONITOR_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"#;

/// The chart's webhooks end to end (all but cert-manager, which is not on this machine): the
/// chart rendered with a provided certificate (`certificate.source: secret` and its
/// `caBundle`) is applied for real to a krust-apiserver that reaches the webhook Service on
/// this machine (`--service`); the operator runs with the Deployment's rendered arguments
/// (ports and the certificate folder made local); then `kubectl apply` of an invalid Website is
/// refused by the webhook, a Website written as v2 without content is converted and defaulted,
/// and kubectl reads it back in both versions. Its secure metrics answer only a service account
/// bound to the chart's metrics-reader ClusterRole.
#[test]
fn the_charts_webhooks_refuse_default_and_convert_through_an_api_server() {
    use base64::Engine;
    let certs = tempfile::tempdir().unwrap();
    let ca = krust_apiserver::write_webhook_certificate(certs.path()).unwrap();
    let values = serde_json::json!({
        "webhook": {"enabled": true, "certificate": {
            "source": "secret", "caBundle": base64::engine::general_purpose::STANDARD.encode(&ca)}},
        "metrics": {"secure": true, "certificate": {"source": "secret"}},
    });
    let rendered = Command::new("python3")
        .arg(repo().join("scripts/render_chart.py"))
        .arg(repo().join("charts/krust-operator"))
        .args(["demo", "operators", &values.to_string()])
        .output()
        .expect("python3 runs");
    assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
    let manifests = String::from_utf8(rendered.stdout).unwrap();

    let free_port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (webhook_port, metrics_port, probe_port) = (free_port(), free_port(), free_port());
    let service = format!("operators/demo-krust-operator-webhook=https://127.0.0.1:{webhook_port}");
    let server = ApiServerProcess::start(&["--service", &service]);
    let kubeconfig = server.kubeconfig();
    let home = tempfile::tempdir().unwrap();
    let kubectl = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = Command::new("kubectl");
        cmd.args(["--kubeconfig", kubeconfig.to_str().unwrap()]).args(args).env("HOME", home.path());
        if let Some(text) = stdin {
            let path = home.path().join("stdin.yaml");
            std::fs::write(&path, text).unwrap();
            cmd.args(["-f", path.to_str().unwrap()]);
        }
        cmd.output().expect("kubectl runs")
    };
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(kubectl(&["create", "namespace", "operators"], None));
    ok(kubectl(&["apply", "--server-side"], Some(&manifests)));

    // The operator with the Deployment's arguments, made local.
    let deployment = manifests.split("\n---\n").find(|d| d.contains("kind: Deployment")).unwrap();
    let args: Vec<String> = deployment
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- --"))
        .map(|a| format!("--{}", a.trim_matches('\'').trim_matches('"')))
        .map(|a| match a.split_once('=') {
            Some(("--metrics-addr", _)) => format!("--metrics-addr=127.0.0.1:{metrics_port}"),
            Some(("--health-probe-addr", _)) => format!("--health-probe-addr=127.0.0.1:{probe_port}"),
            Some(("--webhook-addr", _)) => format!("--webhook-addr=127.0.0.1:{webhook_port}"),
            Some(("--webhook-cert-dir", _)) => format!("--webhook-cert-dir={}", certs.path().display()),
            Some(("--metrics-cert-dir", _)) => format!("--metrics-cert-dir={}", certs.path().display()),
            _ => a,
        })
        .collect();
    assert!(args.iter().any(|a| a.starts_with("--webhook-addr=")), "{args:?}");
    let mut operator = Command::new(example_binary("website_operator"))
        .args(&args)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ready = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        http_status(probe_port, "/readyz") == Some(200)
    });
    let invalid = "apiVersion: example.krust.dev/v1\nkind: Website\nmetadata: {name: big, namespace: default}\nspec: {image: nginx, replicas: 50}\n";
    let refused = kubectl(&["apply"], Some(invalid));
    let v2 = "apiVersion: example.krust.dev/v2\nkind: Website\nmetadata: {name: plain, namespace: default}\nspec: {image: {repository: nginx, tag: '1.27'}, replicas: 1}\n";
    let created = kubectl(&["apply"], Some(v2));
    let as_v1 = kubectl(
        &[
            "get",
            "websites.v1.example.krust.dev",
            "plain",
            "-n",
            "default",
            "-o",
            "jsonpath={.spec.image} {.spec.content}",
        ],
        None,
    );
    let as_v2 = kubectl(
        &[
            "get",
            "websites.v2.example.krust.dev",
            "plain",
            "-n",
            "default",
            "-o",
            "jsonpath={.spec.image.repository} {.spec.image.tag}",
        ],
        None,
    );
    // Secure metrics: HTTPS, for a service account bound to the chart's metrics-reader only.
    std::fs::write(home.path().join("ca.pem"), &ca).unwrap();
    let scrape = |token: Option<&str>| {
        let mut curl = Command::new("curl");
        curl.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(home.path().join("ca.pem"))
            .arg(format!("https://localhost:{metrics_port}/metrics"));
        if let Some(t) = token {
            curl.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        String::from_utf8_lossy(&curl.output().expect("curl runs").stdout).to_string()
    };
    let token = |account: &str| {
        ok(kubectl(&["create", "serviceaccount", account, "-n", "operators"], None));
        ok(kubectl(&["create", "token", account, "-n", "operators"], None)).trim().to_string()
    };
    let binding = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: prometheus-metrics}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: demo-krust-operator-metrics-reader}\nsubjects: [{kind: ServiceAccount, name: prometheus, namespace: operators}]\n";
    ok(kubectl(&["apply"], Some(binding)));
    let (prometheus, other) = (token("prometheus"), token("other"));
    let scrapes = [scrape(None), scrape(Some(&other)), scrape(Some(&prometheus))];
    operator.kill().unwrap();
    let output = operator.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(ready, "/readyz never answered 200; logs:\n{logs}");
    assert_eq!(scrapes, ["401", "403", "200"], "no token, an unbound account, the bound one; logs:\n{logs}");
    assert!(!refused.status.success(), "a Website with 50 replicas was accepted");
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr).trim(),
        "The Website \"big\" is invalid: spec.replicas: must be between 0 and 10, not 50"
    );
    ok(created);
    assert_eq!(ok(as_v1), "nginx:1.27 <h1>plain</h1>");
    assert_eq!(ok(as_v2), "nginx 1.27");
}
