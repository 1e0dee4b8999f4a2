//! The operator template (`operator-template/`): the real `cargo generate --path` (cargo-generate
//! 0.23.7, which scripts/test.sh installs) generates two projects — the defaults (namespaced,
//! leader election, finalizer, no webhooks; made by running every command of the guide's
//! chapter "Your first operator", `docs/src/first-operator.md`, from `cargo generate` to
//! `helm install` into krust-apiserver) and the other choice of every placeholder
//! (cluster-scoped, neither, webhooks — whose generated tests have the API server call them —
//! a kind whose plural is irregular); each points `krust` at this workspace with a
//! `[patch.crates-io]` override, builds without a warning, is rustfmt- and clippy-clean, passes
//! its own tests (which start an in-process krust-apiserver), comes up ready with
//! `cargo run --example local`, and its chart lints, renders and validates with real Helm. The
//! template's chart templates are the ones of `charts/krust-operator` (no drift).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use krust_tests::{
    cargo, chapter, http_status, nested_target_dir, passed_tests, repo, run_ok as run, warnings,
};

/// Where the generated projects build: beside this workspace's target folder, kept between runs.
fn target_dir() -> PathBuf {
    nested_target_dir("operator-template")
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    found.sort();
    found
}

/// As a user's CI would check a project: formatted, clippy-clean.
fn lint(project: &Path) {
    run(cargo().current_dir(project).args(["fmt", "--check"]));
    run(cargo()
        .current_dir(project)
        .args(["clippy", "--all-targets", "--color", "never", "--", "-D", "warnings"])
        .env("CARGO_TARGET_DIR", target_dir()));
}

/// Generates `name` with `defines`, builds it and runs its tests; returns the project folder.
fn generate_and_test(out: &Path, name: &str, defines: &[&str], tests: usize) -> PathBuf {
    let version = cargo().args(["generate", "--version"]).output();
    assert!(
        version.as_ref().is_ok_and(|v| v.status.success()),
        "cargo-generate is missing: `cargo install cargo-generate@0.23.7 --locked` (scripts/test.sh does)"
    );
    let mut generate = cargo();
    generate.current_dir(out).args(["generate", "--path"]).arg(repo().join("operator-template"));
    generate.args(["--name", name, "--destination"]).arg(out).args(["--silent", "--vcs", "none"]);
    for define in defines {
        generate.args(["--define", define]);
    }
    run(&mut generate);
    let project = out.join(name);

    // krust is taken from this workspace, not crates.io; the workspace's lock file pins the
    // dependencies the workspace is tested with (cargo adds what the project needs besides).
    let patch = format!(
        "[patch.crates-io]\nkrust = {{ path = {:?} }}\nkrust-apiserver = {{ path = {:?} }}\n",
        repo().join("framework/krust"),
        repo().join("framework/apiserver"),
    );
    std::fs::create_dir_all(project.join(".cargo")).unwrap();
    std::fs::write(project.join(".cargo/config.toml"), patch).unwrap();
    std::fs::copy(repo().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();

    let (stdout, stderr) = run(cargo()
        .current_dir(&project)
        .args(["test", "--all-targets", "--color", "never"])
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("RUST_LOG"));
    assert!(warnings(&stderr).is_empty(), "{name} builds with warnings:\n{stderr}");
    lint(&project);
    assert_eq!(
        passed_tests(&stdout),
        tests,
        "{name}: every test of the generated project runs and passes:\n{stdout}"
    );
    run(cargo()
        .current_dir(&project)
        .args(["build", "--example", "local", "--color", "never"])
        .env("CARGO_TARGET_DIR", target_dir()));
    run_locally(name);
    project
}

/// The README's first command, `cargo run --example local` (just built): the operator comes up
/// against its embedded API server and reports ready.
fn run_locally(name: &str) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let example = target_dir().join("debug/examples/local");
    let mut child = Command::new(&example)
        .arg(format!("--metrics-addr=127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{} does not start: {e}", example.display()));
    let ready = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        http_status(port, "/readyz") == Some(200)
    });
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(ready, "{name}: `cargo run --example local` never became ready; it printed:\n{printed}");
    assert!(printed.contains("krust-apiserver at http://127.0.0.1:"), "{name}: {printed}");
}

fn check_chart(chart: &Path, objects: &str) {
    let out = tempfile::tempdir().unwrap();
    let (report, _) =
        run(Command::new("python3").arg(repo().join("scripts/check_chart.py")).arg(chart).arg(out.path()));
    for line in ["ok helm lint --strict", &format!("ok render default: {objects}"), "ok render full: "] {
        assert!(report.lines().any(|l| l.starts_with(line)), "{line:?} missing:\n{report}");
    }
}

#[test]
fn generated_operators_build_without_warnings_and_pass_their_tests() {
    let out = tempfile::tempdir().unwrap();

    // The defaults, made by following the guide's chapter command by command.
    let mut env = chapter::reader_env(out.path());
    env.push(("CARGO_TARGET_DIR", target_dir().display().to_string()));
    env.push((
        "PATH",
        format!("{}:{}", repo().join("scripts/bin").display(), std::env::var("PATH").unwrap_or_default()),
    ));
    env.push(("RUST_LOG", "warn".into()));
    let chapter = chapter::run("docs/src/first-operator.md", out.path(), &env);
    let widget = out.path().join("widget-operator");
    let tested = chapter.output_of("cargo test");
    assert!(warnings(&tested.stderr).is_empty(), "widget-operator builds with warnings:\n{}", tested.stderr);
    assert_eq!(
        passed_tests(&tested.stdout),
        6,
        "every test of the generated project runs:\n{}",
        tested.stdout
    );
    drop(chapter);
    lint(&widget);
    assert!(!widget.join("src/webhook.rs").exists(), "no webhooks by default");
    let crd = std::fs::read_to_string(widget.join("charts/widget-operator/crds/crd.yaml")).unwrap();
    for needle in ["name: widgets.example.com", "scope: Namespaced", "name: v1alpha1", "kind: Widget"] {
        assert!(crd.contains(needle), "{needle:?} missing from the CRD:\n{crd}");
    }
    let reconciler = std::fs::read_to_string(widget.join("src/reconciler.rs")).unwrap();
    assert!(reconciler.contains("FINALIZER"), "the default has a finalizer");
    check_chart(
        &widget.join("charts/widget-operator"),
        "8 objects (ClusterRole, ClusterRoleBinding, Deployment, PodDisruptionBudget, Role, RoleBinding, Service, ServiceAccount)",
    );
    let values = std::fs::read_to_string(widget.join("charts/widget-operator/values.yaml")).unwrap();
    assert!(values.contains("resources: [\"widgets/status\"]") && values.contains("replicas: 2"), "{values}");

    // Every placeholder's other choice, and a plural kube-derive spells "-ies".
    let policy = generate_and_test(
        out.path(),
        "fleet-policy",
        &[
            "kind=Policy",
            "group=fleet.example.org",
            "api_version=v1beta1",
            "scope=Cluster",
            "leader_election=false",
            "finalizer=false",
            "webhooks=true",
        ],
        8,
    );
    let webhook = std::fs::read_to_string(policy.join("src/webhook.rs")).unwrap();
    assert!(webhook.contains("impl Validator<Policy> for PolicyValidator"), "{webhook}");
    let crd = std::fs::read_to_string(policy.join("charts/fleet-policy/crds/crd.yaml")).unwrap();
    for needle in ["name: policies.fleet.example.org", "scope: Cluster", "name: v1beta1", "targetNamespace:"]
    {
        assert!(crd.contains(needle), "{needle:?} missing from the CRD:\n{crd}");
    }
    let reconciler = std::fs::read_to_string(policy.join("src/reconciler.rs")).unwrap();
    assert!(!reconciler.contains("FINALIZER"), "finalizer=false has none");
    // Webhooks on by default in its chart: their Service, a cert-manager Certificate and
    // Issuer, and the two configurations.
    check_chart(
        &policy.join("charts/fleet-policy"),
        "10 objects (Certificate, ClusterRole, ClusterRoleBinding, Deployment, Issuer, MutatingWebhookConfiguration, Service, ServiceAccount, ValidatingWebhookConfiguration)",
    );
    let values = std::fs::read_to_string(policy.join("charts/fleet-policy/values.yaml")).unwrap();
    assert!(values.contains("resources: [\"policies\"]") && values.contains("replicas: 1"), "{values}");
    assert!(values.contains("path: /validate-fleet-example-org-v1beta1-policy"), "{values}");
}

#[test]
fn the_template_chart_is_the_krust_operator_chart() {
    let template = repo().join("operator-template/charts/{{project-name}}");
    let chart = repo().join("charts/krust-operator");
    assert!(
        files(&template.join("templates")) == files(&chart.join("templates")),
        "operator-template/charts/{{{{project-name}}}}/templates differs from charts/krust-operator/templates: copy them over"
    );
    assert_eq!(
        std::fs::read(template.join("values.schema.json")).unwrap(),
        std::fs::read(chart.join("values.schema.json")).unwrap(),
        "the template's values.schema.json differs from charts/krust-operator's"
    );
}
