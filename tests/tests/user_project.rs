//! krust as a dependency of a project outside this workspace (`tests/user-project`), as a user
//! adds it: the project picks its Kubernetes version (k8s-openapi `latest`; krust enables none),
//! derives a custom resource with `#[krust::custom_resource]` (no `crates(...)` block), and
//! unit-tests its reconciler with `krust::testing`. It must build without a warning and pass its
//! tests; what `krust` pulls into a user's build must hold none of krust-apiserver,
//! tracing-subscriber or a YAML crate on unsafe-libyaml.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use krust_tests::{cargo, nested_target_dir, passed_tests, repo, run_ok as run, warnings};

fn cargo_in(project: &Path) -> Command {
    let mut cmd = cargo();
    // The generated operators' target folder (tests/tests/template.rs): the same dependencies,
    // built once for both.
    cmd.current_dir(project)
        .env("CARGO_TARGET_DIR", nested_target_dir("operator-template"))
        .env_remove("RUST_LOG");
    cmd
}

/// The project copied out of the repository (its path dependencies made absolute), with the
/// workspace's lock file (the versions krust is tested with).
fn copy_project(to: &Path) -> PathBuf {
    let from = repo().join("tests/user-project");
    let project = to.join("user-project");
    for dir in ["src", "tests"] {
        std::fs::create_dir_all(project.join(dir)).unwrap();
        for entry in std::fs::read_dir(from.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, project.join(dir).join(path.file_name().unwrap())).unwrap();
        }
    }
    let manifest = std::fs::read_to_string(from.join("Cargo.toml"))
        .unwrap()
        .replace("\"../../framework/", &format!("\"{}/framework/", repo().display()));
    std::fs::write(project.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(repo().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    project
}

#[test]
fn a_project_that_picks_its_kubernetes_version_builds_and_tests_its_reconciler() {
    let dir = tempfile::tempdir().unwrap();
    let project = copy_project(dir.path());

    let (stdout, stderr) = run(cargo_in(&project).args(["test", "--color", "never"]));
    assert!(warnings(&stderr).is_empty(), "the project builds with warnings:\n{stderr}");
    assert_eq!(passed_tests(&stdout), 3, "every test of the project runs and passes:\n{stdout}");

    // What `krust` (default features) brings into the user's build.
    let (tree, _) = run(cargo_in(&project).args(["tree", "-p", "krust", "-e", "normal", "--prefix", "none"]));
    for banned in ["unsafe-libyaml", "serde_yaml", "krust-apiserver", "tracing-subscriber"] {
        assert!(!tree.lines().any(|l| l.starts_with(&format!("{banned} "))), "krust pulls {banned}:\n{tree}");
    }
    assert!(
        tree.lines().any(|l| l.starts_with("serde-saphyr ")),
        "kubeconfig YAML goes through serde-saphyr"
    );
    // The clients alone (`default-features = false, features = ["ring"]`): no runtime, no derive.
    let (tree, _) = run(cargo_in(repo()).args([
        "tree",
        "-p",
        "krust",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--no-default-features",
        "--features",
        "ring",
    ]));
    for absent in ["krust-runtime", "kube-derive", "krust-derive", "prometheus-client"] {
        assert!(
            !tree.lines().any(|l| l.starts_with(&format!("{absent} "))),
            "a client-only build has {absent}:\n{tree}"
        );
    }
    assert!(tree.lines().any(|l| l.starts_with("krust-client ")), "{tree}");
    // The version the project chose is the one krust is built with.
    let (features, _) =
        run(cargo_in(&project).args(["tree", "-i", "k8s-openapi", "-e", "features", "--prefix", "none"]));
    assert!(features.contains("k8s-openapi feature \"v1_37\""), "{features}");
    assert!(!features.contains("feature \"v1_33\""), "a second version enabled by a library:\n{features}");
}
