//! Helpers of krust's end-to-end suites: run the `krust-apiserver` binary and real clients
//! (kubectl) against it, each test with its own HOME (kubectl caches discovery there).

pub mod chapter;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::OnceLock,
};

/// The `krust-apiserver` binary of this workspace, built (or brought up to date: a stale binary
/// would test old code) on first use in this process.
pub fn apiserver_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            // The test executable lives in target/<profile>/deps/.
            let exe = std::env::current_exe().expect("the test executable's path");
            let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
            let binary = profile_dir.join("krust-apiserver");
            {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let mut build = Command::new(cargo);
                build.args([
                    "build",
                    "-p",
                    "krust-apiserver",
                    "--features",
                    "cli",
                    "--bin",
                    "krust-apiserver",
                ]);
                if profile_dir.file_name().is_some_and(|n| n == "release") {
                    build.arg("--release");
                }
                let status = build.status().expect("cargo build runs");
                assert!(status.success(), "building krust-apiserver failed");
            }
            binary
        })
        .clone()
}

/// An example of krust-examples, built (or brought up to date: a stale binary would test old
/// code) on first use in this process.
pub fn example_binary(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let binary = profile_dir.join("examples").join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        built.push(name.to_string());
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "krust-examples", "--example", name]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        assert!(build.status().expect("cargo build runs").success(), "building example {name} failed");
    }
    binary
}

/// Runs an example with no kubeconfig (so it starts its embedded server); returns stdout.
pub fn run_example(name: &str, args: &[&str]) -> String {
    let home = tempfile::tempdir().expect("a temp HOME");
    let out = Command::new(example_binary(name))
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", home.path())
        .output()
        .expect("the example runs");
    assert!(
        out.status.success(),
        "example {name} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A `krust-apiserver` process with a kubeconfig and a HOME of its own; killed on drop.
pub struct ApiServerProcess {
    child: Child,
    /// The server's URL.
    pub url: String,
    /// The temporary folder holding the kubeconfig and HOME.
    pub dir: tempfile::TempDir,
    /// The kubectl binary the helpers run (the machine's, or `KRUST_KUBECTL`).
    kubectl: PathBuf,
}

/// The kubectl versions besides the default one that the machine image carries (the Google
/// Cloud SDK's `kubectl.1.27` … `kubectl.1.33`, next to its `kubectl`).
pub fn other_kubectl(version: &str) -> PathBuf {
    let default = std::env::var("KRUST_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(&default))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(&default));
    let dir = std::fs::canonicalize(&path).ok().and_then(|p| p.parent().map(Path::to_path_buf));
    let other = dir.map(|d| d.join(format!("kubectl.{version}")));
    match other {
        Some(p) if p.exists() => p,
        _ => {
            panic!("kubectl {version} is not next to {} (the Google Cloud SDK's bin folder)", path.display())
        }
    }
}

impl ApiServerProcess {
    /// Starts the binary on a free port with extra arguments and waits for its ready line.
    pub fn start(extra: &[&str]) -> ApiServerProcess {
        let dir = tempfile::tempdir().expect("a temp folder");
        let kubeconfig = dir.path().join("kubeconfig");
        let mut child = Command::new(apiserver_binary())
            .args(["--port", "0", "--kubeconfig-out"])
            .arg(&kubeconfig)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("krust-apiserver starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("the ready line");
        let url = line
            .trim()
            .strip_prefix("krust-apiserver listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        std::fs::create_dir_all(dir.path().join("home")).expect("HOME");
        let kubectl = std::env::var("KRUST_KUBECTL").unwrap_or_else(|_| "kubectl".into()).into();
        ApiServerProcess { child, url, dir, kubectl }
    }

    /// The kubeconfig the server wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Runs the helpers' kubectl commands with another kubectl binary (see [`other_kubectl`]).
    pub fn use_kubectl(&mut self, kubectl: PathBuf) {
        self.kubectl = kubectl;
    }

    /// Runs kubectl (the machine's, or `KRUST_KUBECTL`) against this server.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with_input(args, None)
    }

    /// Runs kubectl with `input` on its stdin.
    pub fn kubectl_with_input(&self, args: &[&str], input: Option<&str>) -> Output {
        use std::io::Write;
        let mut child = Command::new(&self.kubectl)
            .args(args)
            .env("HOME", self.dir.path().join("home"))
            .env("KUBECONFIG", self.kubeconfig())
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(text.as_bytes()).expect("kubectl stdin");
        }
        child.wait_with_output().expect("kubectl finishes")
    }

    /// Starts a long-running kubectl (`get -w`, say): its stdout lines arrive on the receiver,
    /// read on a thread so that every wait can have a deadline. Kill the child when done.
    pub fn kubectl_lines(&self, args: &[&str]) -> (Child, std::sync::mpsc::Receiver<String>) {
        let mut child = Command::new(&self.kubectl)
            .args(args)
            .env("HOME", self.dir.path().join("home"))
            .env("KUBECONFIG", self.kubeconfig())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl runs");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        (child, rx)
    }

    /// Runs kubectl and returns its stdout, failing the test when it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply -f -` of a manifest.
    pub fn apply(&self, manifest: &str, extra: &[&str]) -> String {
        let mut args = vec!["apply", "-f", "-"];
        args.extend_from_slice(extra);
        let out = self.kubectl_with_input(&args, Some(manifest));
        assert!(
            out.status.success(),
            "kubectl apply failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl get ... -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("kubectl printed JSON")
    }

    /// Sends SIGTERM and waits; returns whether the process exited on its own.
    pub fn terminate(mut self) -> bool {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    }
}

impl Drop for ApiServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HTTP status of `GET path` on 127.0.0.1:`port`, if something answers (probes, metrics).
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split(' ').nth(1)?.parse().ok()
}

/// The repository's root folder.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the repository")
}

/// A target folder beside this workspace's (`target/<name>`), kept between runs: where the
/// projects built by the tests (generated operators, the user project) share their dependencies.
pub fn nested_target_dir(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.ancestors().nth(3).expect("target/<profile>/deps/<exe>").join(name)
}

/// The cargo that runs the tests.
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Runs `cmd`, failing the test (with both outputs) unless it succeeds; returns stdout and
/// stderr.
pub fn run_ok(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?} does not run: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{stdout}\n{stderr}", out.status);
    (stdout, stderr)
}

/// How many tests `cargo test` reports as passed in its output.
pub fn passed_tests(stdout: &str) -> usize {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum()
}

/// The `warning` lines of a cargo build's stderr.
pub fn warnings(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.trim_start().starts_with("warning")).collect()
}

/// The guide's chapters (`docs/`): their Rust snippets run as this crate's doc tests, against
/// an embedded krust-apiserver.
#[cfg(doctest)]
pub mod guide {
    #[doc = include_str!("../../docs/src/clients.md")]
    pub struct Clients;
    #[doc = include_str!("../../docs/src/controller.md")]
    pub struct Controller;
    #[doc = include_str!("../../docs/src/informers.md")]
    pub struct Informers;
    #[doc = include_str!("../../docs/src/testing.md")]
    pub struct Testing;
    #[doc = include_str!("../../docs/src/concepts.md")]
    pub struct Concepts;
    #[doc = include_str!("../../docs/src/workqueue.md")]
    pub struct Workqueue;
    #[doc = include_str!("../../docs/src/leader.md")]
    pub struct Leader;
    #[doc = include_str!("../../docs/src/webhooks.md")]
    pub struct Webhooks;
    #[doc = include_str!("../../docs/src/observability.md")]
    pub struct Observability;
    #[doc = include_str!("../../docs/src/apiserver.md")]
    pub struct ApiServer;
    #[doc = include_str!("../../docs/src/troubleshooting.md")]
    pub struct Troubleshooting;
}
