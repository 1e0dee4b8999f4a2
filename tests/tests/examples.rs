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
