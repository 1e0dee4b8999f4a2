//! Kubeconfig loading with client-go's rules: merging, relative paths, contexts, errors that name
//! the file and the field, `Config::infer` and the in-cluster configuration.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

use krust_client::config::{AuthConfig, Config, ConfigError, Environment, Kubeconfig};
use secrecy::ExposeSecret;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

const FIRST: &str = r#"
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: shared
  cluster:
    server: https://first.example:6443
- name: dev-cluster
  cluster:
    server: https://dev.example
contexts:
- name: dev
  context: {cluster: dev-cluster, user: dev-user, namespace: team-a}
users:
- name: dev-user
  user: {token: dev-token}
"#;

const SECOND: &str = r#"
apiVersion: v1
kind: Config
current-context: staging
clusters:
- name: shared
  cluster:
    server: https://second.example:6443
contexts:
- name: staging
  context: {cluster: shared, user: staging-user}
- name: dev
  context: {cluster: shared, user: staging-user, namespace: overridden}
users:
- name: staging-user
  user: {token: staging-token}
"#;

fn env_with_kubeconfig(list: &[&Path]) -> Environment {
    Environment {
        kubeconfig: Some(std::env::join_paths(list).unwrap()),
        home: None,
        service_host: None,
        service_port: None,
        service_account_dir: PathBuf::from("/nonexistent"),
    }
}

fn token(config: &Config) -> String {
    match &config.auth {
        AuthConfig::BearerToken(t) => t.expose_secret().to_string(),
        other => panic!("expected a bearer token, got {other:?}"),
    }
}

#[test]
fn merges_kubeconfig_list_first_file_wins() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "first", FIRST);
    let second = write(dir.path(), "second", SECOND);
    let missing = dir.path().join("missing");
    let env = env_with_kubeconfig(&[&first, &missing, &second]);

    // current-context and the "dev" context come from the first file.
    let config = Config::infer_from(&env, None).unwrap();
    assert_eq!(config.server.to_string(), "https://dev.example/");
    assert_eq!(config.default_namespace, "team-a");
    assert_eq!(token(&config), "dev-token");

    // A context only the second file has; its cluster "shared" is the first file's.
    let config = Config::infer_from(&env, Some("staging")).unwrap();
    assert_eq!(config.server.to_string(), "https://first.example:6443/");
    assert_eq!(config.default_namespace, "default");
    assert_eq!(token(&config), "staging-token");

    // Reversed order: the second file wins.
    let env = env_with_kubeconfig(&[&second, &first]);
    let config = Config::infer_from(&env, None).unwrap();
    assert_eq!(config.server.to_string(), "https://second.example:6443/");
    let merged = Kubeconfig::read_all(&[&second, &first]).unwrap();
    assert_eq!(merged.contexts.len(), 2);
    assert_eq!(merged.clusters.len(), 2);
}

#[test]
fn falls_back_to_home_then_in_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    write(&home, ".kube/config", FIRST);
    let mut env = Environment { home: Some(home.clone()), ..env_with_kubeconfig(&[]) };
    env.kubeconfig = Some(OsString::new());
    assert_eq!(Config::infer_from(&env, None).unwrap().server.to_string(), "https://dev.example/");

    // No home config: in-cluster.
    let sa = dir.path().join("sa");
    write(&sa, "token", "sa-token\n");
    write(&sa, "namespace", "operators\n");
    write(&sa, "ca.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    let env = Environment {
        kubeconfig: None,
        home: Some(dir.path().join("empty-home")),
        service_host: Some("10.96.0.1".into()),
        service_port: Some("443".into()),
        service_account_dir: sa.clone(),
    };
    let config = Config::infer_from(&env, None).unwrap();
    assert_eq!(config.server.to_string(), "https://10.96.0.1:443/");
    assert_eq!(config.default_namespace, "operators");
    assert!(config.tls.ca_data.is_some());
    match &config.auth {
        AuthConfig::TokenFile { path, fallback } => {
            assert_eq!(path, &sa.join("token"));
            assert_eq!(fallback.as_ref().unwrap().expose_secret(), "sa-token");
        }
        other => panic!("in-cluster uses the rotating token file, got {other:?}"),
    }
    assert!(!format!("{config:?}").contains("sa-token"), "Debug leaks the token");

    // IPv6 service host.
    let env = Environment { service_host: Some("fd00::1".into()), ..env };
    assert_eq!(Config::infer_from(&env, None).unwrap().server.to_string(), "https://[fd00::1]:443/");

    // Nothing at all.
    let env = Environment { service_host: None, ..env };
    let err = Config::infer_from(&env, None).unwrap_err();
    assert!(matches!(err, ConfigError::NoConfig { .. }), "{err}");
    assert!(err.to_string().contains("empty-home/.kube/config"), "{err}");
}

#[test]
fn in_cluster_without_a_token_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = krust_client::config::incluster_from(dir.path(), "10.0.0.1", "443").unwrap_err();
    assert!(err.to_string().contains("service-account token"), "{err}");
}

#[test]
fn kubeconfig_list_with_no_existing_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_with_kubeconfig(&[&dir.path().join("a"), &dir.path().join("b")]);
    let err = Config::infer_from(&env, None).unwrap_err();
    assert!(matches!(err, ConfigError::NoConfig { .. }), "{err}");
}

#[test]
fn relative_paths_resolve_against_the_file_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "nested/config",
        r#"
clusters:
- name: c
  cluster: {server: "https://x", certificate-authority: certs/ca.crt}
users:
- name: u
  user:
    client-certificate: /abs/client.crt
    client-key: client.key
    tokenFile: ../token
    exec: {apiVersion: client.authentication.k8s.io/v1, command: ./bin/plugin}
- name: path-lookup
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1, command: gke-gcloud-auth-plugin}
"#,
    );
    let kc = Kubeconfig::read(&path).unwrap();
    let folder = dir.path().join("nested");
    let cluster = kc.clusters[0].cluster.as_ref().unwrap();
    assert_eq!(cluster.certificate_authority.as_deref(), Some(folder.join("certs/ca.crt").to_str().unwrap()));
    let user = kc.users[0].user.as_ref().unwrap();
    assert_eq!(user.client_certificate.as_deref(), Some("/abs/client.crt"));
    assert_eq!(user.client_key.as_deref(), Some(folder.join("client.key").to_str().unwrap()));
    assert_eq!(user.token_file.as_deref(), Some(folder.join("../token").to_str().unwrap()));
    assert_eq!(user.exec.as_ref().unwrap().command, folder.join("./bin/plugin").to_str().unwrap());
    let bare = kc.users[1].user.as_ref().unwrap().exec.as_ref().unwrap();
    assert_eq!(bare.command, "gke-gcloud-auth-plugin", "bare commands are looked up in PATH");
}

fn load_err(yaml: &str, context: Option<&str>) -> (String, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "config", yaml);
    let result = match context {
        Some(c) => Config::from_kubeconfig_context(&path, c),
        None => Config::from_kubeconfig(&path),
    };
    (result.unwrap_err().to_string(), path)
}

#[test]
fn errors_name_the_file_the_field_and_what_exists() {
    let base = r#"
current-context: dev
clusters:
- {name: c, cluster: {server: "https://x"}}
contexts:
- {name: dev, context: {cluster: c, user: u}}
- {name: staging, context: {cluster: nope, user: u}}
- {name: lost-user, context: {cluster: c, user: ghost}}
users:
- {name: u, user: {token: t}}
"#;
    let (err, path) = load_err(base, Some("prod"));
    assert_eq!(
        err,
        format!(
            "kubeconfig {}: context \"prod\" not found (contexts: dev, staging, lost-user)",
            path.display()
        )
    );
    let (err, _) = load_err(base, Some("staging"));
    assert!(err.contains("context \"staging\": cluster \"nope\" not found (clusters: c)"), "{err}");
    let (err, _) = load_err(base, Some("lost-user"));
    assert!(err.contains("user \"ghost\" not found (users: u)"), "{err}");

    let (err, _) = load_err("clusters: []\ncontexts:\n- {name: a, context: {}}\n", None);
    assert!(err.contains("current-context is not set") && err.contains("(contexts: a)"), "{err}");

    let (err, path) = load_err("clusters: [\n  - name: x\n", None);
    assert!(err.starts_with(&format!("kubeconfig {}: invalid kubeconfig YAML", path.display())), "{err}");

    let (err, _) = load_err(
        &base.replace("token: t", "client-certificate-data: '!!notbase64', client-key-data: 'AAAA'"),
        None,
    );
    assert!(err.contains("user \"u\": client-certificate-data: invalid base64"), "{err}");

    let (err, _) = load_err(&base.replace("{server: \"https://x\"}", "{}"), None);
    assert!(err.contains("cluster \"c\": server: not set"), "{err}");

    let (err, _) = load_err(
        &base.replace(
            "{server: \"https://x\"}",
            "{server: \"https://x\", insecure-skip-tls-verify: true, certificate-authority-data: QUJD}",
        ),
        None,
    );
    assert!(err.contains("insecure-skip-tls-verify: cannot be combined"), "{err}");

    let (err, _) = load_err(&base.replace("{token: t}", "{auth-provider: {name: gcp}}"), None);
    assert!(
        err.contains("\"gcp\" auth provider is not supported") && err.contains("gke-gcloud-auth-plugin"),
        "{err}"
    );

    let (err, _) = load_err(&base.replace("{token: t}", "{token: t, username: admin, password: p}"), None);
    assert!(err.contains("more than one authentication method"), "{err}");

    let (err, _) = load_err(
        &base.replace(
            "{token: t}",
            "{client-certificate: /nonexistent/c.crt, client-key: /nonexistent/c.key}",
        ),
        None,
    );
    assert!(err.contains("client-certificate: cannot read /nonexistent/c.crt"), "{err}");

    let (err, _) = load_err(
        &base
            .replace("{token: t}", "{exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}}"),
        None,
    );
    assert!(err.contains("exec.apiVersion") && err.contains("v1alpha1"), "{err}");

    let (err, _) = load_err(&base.replace("https://x", "ftp://x"), None);
    assert!(err.contains("scheme must be https or http"), "{err}");

    let missing = PathBuf::from("/nonexistent/kubeconfig");
    let err = Config::from_kubeconfig(&missing).unwrap_err().to_string();
    assert!(err.starts_with("kubeconfig /nonexistent/kubeconfig: cannot read the file"), "{err}");
}

#[test]
fn the_file_of_the_faulty_entry_is_named_after_a_merge() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(
        dir.path(),
        "first",
        "current-context: a\ncontexts:\n- {name: a, context: {cluster: c, user: u}}\n",
    );
    let second = write(
        dir.path(),
        "second",
        "clusters:\n- {name: c, cluster: {server: https://x}}\nusers:\n- {name: u, user: {client-key-data: '%%%', client-certificate-data: QUJD}}\n",
    );
    let err = Config::infer_from(&env_with_kubeconfig(&[&first, &second]), None).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("kubeconfig {}: user \"u\": client-key-data", second.display())),
        "{err}"
    );
}

#[test]
fn server_without_scheme_defaults_to_https_and_proxy_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "config",
        "current-context: a\nclusters:\n- {name: c, cluster: {server: '10.0.0.1:6443', proxy-url: 'http://proxy:3128', tls-server-name: kubernetes}}\ncontexts:\n- {name: a, context: {cluster: c}}\n",
    );
    let config = Config::from_kubeconfig(&path).unwrap();
    assert_eq!(config.server.to_string(), "https://10.0.0.1:6443/");
    assert_eq!(config.proxy_url.unwrap().to_string(), "http://proxy:3128/");
    assert_eq!(config.tls.server_name.as_deref(), Some("kubernetes"));
    assert!(matches!(config.auth, AuthConfig::None));

    std::fs::write(&path, "current-context: a\nclusters:\n- {name: c, cluster: {server: 'https://x', proxy-url: 'socks5://p:1080'}}\ncontexts:\n- {name: a, context: {cluster: c}}\n").unwrap();
    let err = Config::from_kubeconfig(&path).unwrap_err().to_string();
    assert!(err.contains("proxy-url") && err.contains("socks5"), "{err}");
}

#[test]
fn empty_and_null_sections_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "config",
        "apiVersion: v1\nkind: Config\nclusters: null\nusers:\ncontexts: ~\npreferences: {}\n",
    );
    let kc = Kubeconfig::read(&path).unwrap();
    assert!(kc.clusters.is_empty() && kc.users.is_empty() && kc.contexts.is_empty());
    let empty = write(dir.path(), "empty", "");
    assert!(Kubeconfig::read(&empty).unwrap().contexts.is_empty());
}
