//! The examples run as a user runs them (no kubeconfig: each starts an embedded krust-apiserver
//! and seeds it), and say what happened in plain words; and against a kubeconfig they are given.

use krust_tests::{ApiServerProcess, run_example};

#[test]
fn rest_client_gets_the_test_pod() {
    let out = run_example("rest_client", &[]);
    assert!(out.contains("starting an embedded krust-apiserver"), "{out}");
    assert!(out.contains("Found pod test in namespace default (phase Pending)"), "{out}");
    assert!(out.contains("Pod no-such-pod in namespace default not found, as expected"), "{out}");
}

#[test]
fn clientset_counts_and_gets_pods() {
    let out = run_example("clientset", &[]);
    assert!(out.contains("There are 1 pods in the cluster"), "{out}");
    assert!(out.contains("Found pod test in namespace default (uid "), "{out}");
}

#[test]
fn dynamic_client_creates_updates_lists_and_deletes_the_demo_deployment() {
    let out = run_example("dynamic_client", &[]);
    let expected = [
        "Creating deployment...",
        "Created deployment \"demo-deployment\".",
        "Updating deployment...",
        "Updated deployment...",
        "Listing deployments in namespace default:",
        " * demo-deployment (1 replicas)",
        "Deleting deployment...",
        "Deleted deployment.",
    ];
    let lines: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(lines, expected, "{out}");
}

#[test]
fn discovery_prints_every_resource_list() {
    let out = run_example("discovery", &[]);
    for line in [
        "v1:",
        "apps/v1:",
        "  deployments (Deployment, namespaced)",
        "  namespaces (Namespace, cluster)",
        "coordination.k8s.io/v1:",
    ] {
        assert!(out.lines().any(|l| l.starts_with(line)), "{line:?} missing:\n{out}");
    }
}

#[test]
fn examples_use_the_kubeconfig_they_are_given() {
    let server = ApiServerProcess::start(&[]);
    let kubeconfig = server.kubeconfig();
    let out = run_example("clientset", &["--kubeconfig", kubeconfig.to_str().unwrap()]);
    assert!(!out.contains("embedded"), "{out}");
    assert!(out.contains("There are 0 pods in the cluster"), "{out}");
    assert!(out.contains("Pod test in namespace default not found"), "{out}");
    let out = run_example("dynamic_client", &["--kubeconfig", kubeconfig.to_str().unwrap()]);
    assert!(out.contains("Deleted deployment."), "{out}");
}

#[test]
fn informer_prints_events_as_they_happen_and_uses_its_index() {
    let out = run_example("informer", &[]);
    for line in [
        "added: default/seed (initial list)",
        "cache synced: 1 pods",
        "added: default/web-1",
        "added: default/web-2",
        "deleted: default/web-2",
        "pods on node-a: seed, web-1",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} missing:\n{out}");
    }
    assert!(out.lines().any(|l| l.starts_with("updated: default/web-1 (resourceVersion ")), "{out}");
}

#[test]
fn the_quickstart_runs_the_operator_and_shows_what_it_did() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(krust_tests::example_binary("quickstart"))
        .arg("--once")
        .env_remove("KUBECONFIG")
        .env("TMPDIR", tmp.path())
        .env("HOME", home.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let kubeconfig = tmp.path().join("krust-quickstart").join("kubeconfig");
    for line in [
        "  ✓ started an embedded krust-apiserver at http://127.0.0.1:".to_string(),
        format!("  ✓ wrote its kubeconfig to {}", kubeconfig.display()),
        format!("    look with: kubectl --kubeconfig {} get websites", kubeconfig.display()),
        "  ✓ installed the CRD websites.example.krust.dev (Established; v1 stored, v2 converted by the webhook)".into(),
        "  ✓ webhook server at https://127.0.0.1:".into(),
        "  ✓ operator running (metrics: http://127.0.0.1:".into(),
        "  ✓ registered the Mutating- and ValidatingWebhookConfiguration website-webhooks".into(),
        "  ✓ created Website default/hello (nginx:1.27, 2 replicas)".into(),
        "  ✓ operator created Deployment default/hello: 2 replicas of nginx:1.27, owned by Website hello"
            .into(),
        "  ✓ operator created Service default/hello (port 80)".into(),
        "  ✓ operator created ConfigMap default/hello-content (the page)".into(),
        "  ✓ status: Ready=True (Reconciled: 2 replica(s) of nginx:1.27 behind Service hello)".into(),
        "  ✓ finalizer on the Website: example.krust.dev/cleanup".into(),
        "  ✓ the validating webhook refused Website default/too-big: the server answered 422 (Invalid): admission webhook \"vwebsite-v1.example.krust.dev\" denied the request: spec.replicas: must be between 0 and 10, not 50".into(),
        "  ✓ the defaulting webhook filled in a Website without content (dry run): content \"<h1>plain</h1>\"".into(),
        "  ✓ read as example.krust.dev/v2 (converted by the webhook): image repository \"nginx\", tag \"1.27\"".into(),
        format!("    try: kubectl --kubeconfig {} apply -f {}", kubeconfig.display(), kubeconfig.with_file_name("invalid-website.yaml").display()),
        "  ✓ operator restored the Deployment to 2 replicas".into(),
        "  ✓ operator recreated Service hello".into(),
        "  ✓ event: Normal Created — created Deployment hello".into(),
        "The sample Website reconciled in ".into(),
        "--once: operator stopped cleanly.".into(),
    ] {
        assert!(stdout.lines().any(|l| l.starts_with(&line)), "{line:?} missing:\n{stdout}");
    }
}

/// The quickstart left running (as the README says): `kubectl apply` of the invalid Website it
/// wrote is refused with the webhook's message, a Website without content gets the default
/// page, and kubectl reads Websites in v2 (the preferred version, converted by the webhook)
/// and in v1.
#[test]
fn kubectl_in_the_quickstarts_cluster_meets_the_webhooks() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(krust_tests::example_binary("quickstart"))
        .env_remove("KUBECONFIG")
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let running = lines.by_ref().map_while(Result::ok).any(|line| {
        printed.push_str(&line);
        printed.push('\n');
        line.starts_with("The operator keeps running")
    });
    let dir = tmp.path().join("krust-quickstart");
    let kubectl = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = std::process::Command::new("kubectl");
        cmd.args(["--kubeconfig", dir.join("kubeconfig").to_str().unwrap()])
            .args(args)
            .env("HOME", home.path());
        if let Some(text) = stdin {
            let path = home.path().join("stdin.yaml");
            std::fs::write(&path, text).unwrap();
            cmd.args(["-f", path.to_str().unwrap()]);
        }
        cmd.output().expect("kubectl runs")
    };
    let refused = kubectl(&["apply", "-f", dir.join("invalid-website.yaml").to_str().unwrap()], None);
    let plain = kubectl(
        &["apply"],
        Some(
            "apiVersion: example.krust.dev/v2\nkind: Website\nmetadata: {name: plain, namespace: default}\nspec: {image: {repository: nginx, tag: '1.27'}, replicas: 1}\n",
        ),
    );
    let content = kubectl(
        &["get", "websites.v1.example.krust.dev", "plain", "-o", "jsonpath={.spec.content} {.spec.image}"],
        None,
    );
    let table = kubectl(&["get", "websites"], None);
    let v2 = kubectl(
        &[
            "get",
            "website",
            "hello",
            "-o",
            "jsonpath={.apiVersion} {.spec.image.repository} {.spec.image.tag}",
        ],
        None,
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(running, "the quickstart did not come up:\n{printed}");
    assert!(!refused.status.success(), "the invalid Website was accepted");
    // kubectl prints a 422 with causes (the webhook's field error, passed on as
    // kube-apiserver passes it) in its "is invalid" form.
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr).trim(),
        "The Website \"broken\" is invalid: spec.image: an image is required"
    );
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
    assert_eq!(String::from_utf8_lossy(&content.stdout), "<h1>plain</h1> nginx:1.27");
    let table = String::from_utf8_lossy(&table.stdout);
    let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAME", "REPOSITORY", "TAG", "READY"], "v2 is preferred:\n{table}");
    assert!(table.lines().any(|l| l.split_whitespace().take(3).eq(["hello", "nginx", "1.27"])), "{table}");
    assert_eq!(String::from_utf8_lossy(&v2.stdout), "example.krust.dev/v2 nginx 1.27");
}

#[test]
fn the_quickstart_runs_against_a_given_cluster_and_kubectl_sees_its_objects() {
    let server = ApiServerProcess::start(&[]);
    let kubeconfig = server.kubeconfig();
    let out = run_example("quickstart", &["--once", "--kubeconfig", kubeconfig.to_str().unwrap()]);
    assert!(out.contains(&format!("  ✓ using the cluster of {}", kubeconfig.display())), "{out}");
    assert!(!out.contains("embedded"), "{out}");
    assert!(out.contains("--once: operator stopped cleanly."), "{out}");
    let home = tempfile::tempdir().unwrap();
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new("kubectl")
            .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
            .args(args)
            .env("HOME", home.path())
            .output()
            .expect("kubectl runs");
        assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(kubectl(&["get", "websites", "-o", "name"]).trim(), "website.example.krust.dev/hello");
    let ready = kubectl(&["get", "ws", "hello", "-o", "jsonpath={.status.conditions[0].status}"]);
    assert_eq!(ready, "True");
    let owned = kubectl(&[
        "get",
        "deployment,service,configmap",
        "-l",
        "app.kubernetes.io/managed-by=website-operator",
        "-o",
        "name",
    ]);
    let mut owned: Vec<&str> = owned.lines().collect();
    owned.sort();
    assert_eq!(owned, ["configmap/hello-content", "deployment.apps/hello", "service/hello"]);
    // Generation 1 created, 2 scaled by hand, 3 restored: re-applying the same Deployment
    // changed nothing more (it looped through container ports when apply mis-keyed them).
    assert_eq!(kubectl(&["get", "deploy", "hello", "-o", "jsonpath={.metadata.generation}"]), "3");
    // kubectl (core/v1 Events) sees what the operator recorded through events.k8s.io/v1, and
    // the table has the CRD's printer columns.
    let described = kubectl(&["describe", "website", "hello"]);
    assert!(described.contains("created Deployment hello"), "{described}");
    let table = kubectl(&["get", "websites"]);
    let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAME", "IMAGE", "READY"], "{table}");
}

/// `cargo run --example website_operator` with no cluster: it starts its own server, creates
/// the sample, registers its webhooks (after the sample, so that the sample is not held up by
/// a webhook server the manager has not started yet) and comes up ready; kubectl's invalid
/// Website is refused by its validator.
#[test]
fn the_website_operator_alone_runs_its_webhooks_on_its_embedded_server() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = std::process::Command::new(krust_tests::example_binary("website_operator"))
        .arg(format!("--metrics-addr=127.0.0.1:{port}"))
        .env_remove("KUBECONFIG")
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let registered = lines.map_while(Result::ok).any(|line| {
        printed.push_str(&line);
        printed.push('\n');
        line.starts_with("webhooks at 127.0.0.1:")
    });
    let ready = registered
        && (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            krust_tests::http_status(port, "/readyz") == Some(200)
        });
    let kubeconfig = tmp.path().join("krust-website-operator.kubeconfig");
    let manifest = home.path().join("big.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: example.krust.dev/v1\nkind: Website\nmetadata: {name: big, namespace: default}\nspec: {image: nginx, replicas: 50}\n",
    )
    .unwrap();
    let refused = std::process::Command::new("kubectl")
        .args(["--kubeconfig", kubeconfig.to_str().unwrap(), "apply", "-f", manifest.to_str().unwrap()])
        .env("HOME", home.path())
        .output()
        .expect("kubectl runs");
    let _ = child.kill();
    let _ = child.wait();
    assert!(printed.contains("created Website default/hello"), "{printed}");
    assert!(ready, "never ready; it printed:\n{printed}");
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr).trim(),
        "The Website \"big\" is invalid: spec.replicas: must be between 0 and 10, not 50"
    );
}
