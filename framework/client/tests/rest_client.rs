//! RestClient against a real HTTP(S) server started in the test: paths, headers, TLS (custom CA,
//! server name, client certificates, HTTP/2), credentials (bearer, basic, token file, exec
//! plugin), impersonation, errors, retries, timeouts, proxies and watches.

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{StatusCode, Version};
use k8s_openapi::api::core::v1::Pod;
use krust_client::{Config, Error, PatchType, RestClient, config::Kubeconfig};
use kube_core::{GroupVersion, WatchEvent};
use support::*;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn core_client(config: Config) -> RestClient {
    RestClient::new(&config.with_group_version(GroupVersion::gv("", "v1"))).unwrap()
}

/// A config from kubeconfig YAML written to a temp folder (so the real loader is exercised).
fn config_from_yaml(dir: &tempfile::TempDir, yaml: &str) -> Config {
    let path = dir.path().join("config");
    std::fs::write(&path, yaml).unwrap();
    Config::from_kubeconfig(&path).unwrap()
}

fn kubeconfig(server: &str, cluster_extra: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: c\n  cluster:\n    server: {server}\n{cluster_extra}\
         contexts:\n- name: test\n  context:\n    cluster: c\n    user: u\n    namespace: ns1\nusers:\n- name: u\n  user:\n{user}"
    )
}

fn pod_handler() -> Handler {
    handler(|seen: Seen| async move {
        if seen.uri.path() == "/api/v1/namespaces/default/pods/test" {
            full(StatusCode::OK, pod_json("test"))
        } else {
            full(StatusCode::NOT_FOUND, status_body(404, "NotFound", "not here"))
        }
    })
}

#[tokio::test]
async fn gets_a_pod_over_plain_http() {
    let server = TestServer::plain(pod_handler()).await;
    let client = core_client(Config::new(server.url.parse().unwrap()));
    let response = client.get().namespace("default").resource("pods").name("test").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let pod: Pod = response.into().unwrap();
    assert_eq!(pod.metadata.name.as_deref(), Some("test"));

    let seen = &server.requests()[0];
    assert_eq!(seen.method, http::Method::GET);
    let ua = seen.headers["user-agent"].to_str().unwrap();
    assert!(ua.starts_with(&format!("krust/{}", env!("CARGO_PKG_VERSION"))), "{ua}");
    assert_eq!(seen.headers["accept"], "application/json");
    assert!(!seen.headers.contains_key("authorization"));
}

#[tokio::test]
async fn sends_bodies_params_and_patch_content_types() {
    let server =
        TestServer::plain(handler(|seen: Seen| async move { full(StatusCode::CREATED, seen.body) })).await;
    let client = core_client(Config::new(server.url.parse().unwrap()));
    let pod: Pod = serde_json::from_str(&pod_json("new")).unwrap();
    let created: Pod = client
        .post()
        .namespace("default")
        .resource("pods")
        .param("fieldManager", "krust test")
        .body(&pod)
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("new"));
    let patch = serde_json::json!({"metadata": {"labels": {"a": "b"}}});
    for (patch_type, content_type) in [
        (PatchType::Merge, "application/merge-patch+json"),
        (PatchType::StrategicMerge, "application/strategic-merge-patch+json"),
        (PatchType::Apply, "application/apply-patch+yaml"),
    ] {
        client
            .patch(patch_type)
            .namespace("default")
            .resource("pods")
            .name("new")
            .body(&patch)
            .send()
            .await
            .unwrap();
        assert_eq!(server.requests().last().unwrap().headers["content-type"], content_type);
    }
    let seen = server.requests();
    assert_eq!(seen[0].uri.query(), Some("fieldManager=krust+test"));
    assert_eq!(seen[0].headers["content-type"], "application/json");
    assert_eq!(seen[1].method, http::Method::PATCH);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&seen[1].body).unwrap(), patch);
}

#[tokio::test]
async fn api_errors_carry_the_status() {
    let server = TestServer::plain(handler(|seen: Seen| async move {
        match seen.uri.path() {
            "/api/v1/namespaces/default/pods/missing" => {
                full(StatusCode::NOT_FOUND, status_body(404, "NotFound", "pods \"missing\" not found"))
            }
            "/api/v1/namespaces/default/pods" => {
                full(StatusCode::CONFLICT, status_body(409, "AlreadyExists", "pods \"x\" already exists"))
            }
            _ => {
                let mut r = full(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<html><body>Internal proxy failure</body></html>",
                );
                r.headers_mut().insert("content-type", "text/html".parse().unwrap());
                r
            }
        }
    }))
    .await;
    let client = core_client(Config::new(server.url.parse().unwrap()));

    let err = client
        .get()
        .namespace("default")
        .resource("pods")
        .name("missing")
        .send()
        .await
        .unwrap()
        .into::<Pod>()
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.api_error().unwrap().message(), "pods \"missing\" not found");

    let err = client
        .post()
        .namespace("default")
        .resource("pods")
        .body(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .bytes()
        .unwrap_err();
    assert!(err.is_already_exists() && !err.is_conflict(), "{err}");

    let response = client.get().abs_path("/healthz").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let err = response.error_for_status().unwrap_err();
    assert!(err.is_server_error());
    assert!(err.to_string().contains("Internal proxy failure"), "{err}");
}

#[tokio::test]
async fn malformed_json_response_is_a_decode_error() {
    let server = TestServer::plain(handler(|_| async { full(StatusCode::OK, "{\"kind\": \"Pod\", ") })).await;
    let client = core_client(Config::new(server.url.parse().unwrap()));
    let err = client.get().resource("pods").name("x").send().await.unwrap().into::<Pod>().unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    assert!(err.to_string().contains("/api/v1/pods/x"), "{err}");
}

#[tokio::test]
async fn tls_with_custom_ca_bearer_token_and_http2() {
    let pki = Pki::new("test-ca");
    let server = TestServer::tls(
        pod_handler(),
        TlsOptions { server_cert: pki.sign("apiserver", &["127.0.0.1", "localhost"]), client_ca_pem: None },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = kubeconfig(
        &server.url,
        &format!("    certificate-authority-data: {}\n", b64(&pki.ca_pem)),
        "    token: secret-token-123\n",
    );
    let config = config_from_yaml(&dir, &yaml);
    assert_eq!(config.default_namespace, "ns1");
    assert!(!format!("{config:?}").contains("secret-token-123"), "Debug leaks the token");
    let client = core_client(config);
    let pod: Pod =
        client.get().namespace("default").resource("pods").name("test").send().await.unwrap().into().unwrap();
    assert_eq!(pod.metadata.name.as_deref(), Some("test"));
    let seen = &server.requests()[0];
    assert_eq!(seen.headers["authorization"], "Bearer secret-token-123");
    assert_eq!(seen.version, Version::HTTP_2, "ALPN should pick HTTP/2");
}

#[tokio::test]
async fn tls_rejects_a_server_signed_by_another_ca() {
    let pki = Pki::new("real-ca");
    let other = Pki::new("other-ca");
    let server = TestServer::tls(
        pod_handler(),
        TlsOptions { server_cert: other.sign("apiserver", &["127.0.0.1"]), client_ca_pem: None },
    )
    .await;
    let mut config = Config::new(server.url.parse().unwrap());
    config.tls.ca_data = Some(pki.ca_pem.into_bytes());
    let err = core_client(config).get().resource("pods").send().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert!(server.requests().is_empty());

    // insecure-skip-tls-verify accepts it.
    let dir = tempfile::tempdir().unwrap();
    let config =
        config_from_yaml(&dir, &kubeconfig(&server.url, "    insecure-skip-tls-verify: true\n", "    {}\n"));
    let response =
        core_client(config).get().namespace("default").resource("pods").name("test").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn tls_server_name_overrides_the_host() {
    let pki = Pki::new("ca");
    let server = TestServer::tls(
        pod_handler(),
        TlsOptions { server_cert: pki.sign("apiserver", &["kubernetes.default.svc"]), client_ca_pem: None },
    )
    .await;
    let mut config = Config::new(server.url.parse().unwrap());
    config.tls.ca_data = Some(pki.ca_pem.clone().into_bytes());
    let err = core_client(config.clone()).get().resource("pods").send().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "the IP is not in the certificate: {err}");
    config.tls.server_name = Some("kubernetes.default.svc".into());
    let response =
        core_client(config).get().namespace("default").resource("pods").name("test").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// A TLS server that requires client certificates: the server, its CA, the client CA.
async fn mutual_tls_server() -> (TestServer, Pki, Pki) {
    let server_pki = Pki::new("server-ca");
    let client_pki = Pki::new("client-ca");
    let server = TestServer::tls(
        pod_handler(),
        TlsOptions {
            server_cert: server_pki.sign("apiserver", &["127.0.0.1"]),
            client_ca_pem: Some(client_pki.ca_pem.clone()),
        },
    )
    .await;
    (server, server_pki, client_pki)
}

#[tokio::test]
async fn client_certificate_authenticates() {
    let (server, server_pki, client_pki) = mutual_tls_server().await;
    let user = client_pki.sign("jane", &[]);
    // Files relative to the kubeconfig's folder.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pki")).unwrap();
    std::fs::write(dir.path().join("pki/ca.crt"), &server_pki.ca_pem).unwrap();
    std::fs::write(dir.path().join("pki/jane.crt"), &user.cert_pem).unwrap();
    std::fs::write(dir.path().join("pki/jane.key"), &user.key_pem).unwrap();
    let config = config_from_yaml(
        &dir,
        &kubeconfig(
            &server.url,
            "    certificate-authority: pki/ca.crt\n",
            "    client-certificate: pki/jane.crt\n    client-key: pki/jane.key\n",
        ),
    );
    assert!(!format!("{config:?}").contains("PRIVATE KEY"), "Debug leaks the key");
    let response =
        core_client(config).get().namespace("default").resource("pods").name("test").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.requests()[0].client_cn.as_deref(), Some("jane"));

    // Without the certificate the handshake is refused.
    let mut config = Config::new(server.url.parse().unwrap());
    config.tls.ca_data = Some(server_pki.ca_pem.into_bytes());
    assert!(core_client(config).get().resource("pods").send().await.is_err());
}

#[tokio::test]
async fn basic_auth_and_impersonation_headers() {
    let server = TestServer::plain(pod_handler()).await;
    let dir = tempfile::tempdir().unwrap();
    let user = "    username: admin\n    password: s3cret\n    as: jane\n    as-groups: [devs, ops]\n    as-user-extra:\n      scopes: [view]\n";
    let config = config_from_yaml(&dir, &kubeconfig(&server.url, "", user));
    assert!(!format!("{config:?}").contains("s3cret"));
    core_client(config).get().resource("pods").send().await.unwrap();
    let seen = &server.requests()[0];
    assert_eq!(seen.headers["authorization"], format!("Basic {}", b64("admin:s3cret")));
    assert_eq!(seen.headers["impersonate-user"], "jane");
    let groups: Vec<_> =
        seen.headers.get_all("impersonate-group").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(groups, ["devs", "ops"]);
    assert_eq!(seen.headers["impersonate-extra-scopes"], "view");
}

#[tokio::test]
async fn token_file_is_reread_when_it_rotates() {
    let server = TestServer::plain(pod_handler()).await;
    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("token");
    std::fs::write(&token_path, "first-token\n").unwrap();
    let config = config_from_yaml(&dir, &kubeconfig(&server.url, "", "    tokenFile: token\n"));
    let client = core_client(config);
    client.get().resource("pods").send().await.unwrap();
    client.get().resource("pods").send().await.unwrap();
    // The kubelet rotates the projected token: new content, new modification time.
    std::fs::write(&token_path, "second-token").unwrap();
    let file = std::fs::File::options().write(true).open(&token_path).unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5)).unwrap();
    client.get().resource("pods").send().await.unwrap();
    let auth: Vec<_> =
        server.requests().iter().map(|s| s.headers["authorization"].to_str().unwrap().to_string()).collect();
    assert_eq!(auth, ["Bearer first-token", "Bearer first-token", "Bearer second-token"]);
}

/// Writes an exec plugin script: each run appends a line to `runs` and prints a credential whose
/// token is `token-<run number>`, expiring `expiry_secs` from now (never when negative). It also
/// saves `KUBERNETES_EXEC_INFO` and its `MY_ENV` variable.
fn exec_plugin(dir: &std::path::Path, api_version: &str, expiry_secs: i64) -> std::path::PathBuf {
    let script = dir.join("plugin.sh");
    let expiry = if expiry_secs >= 0 {
        format!(
            r#"exp=",\"expirationTimestamp\":\"$(date -u -d "+{expiry_secs} seconds" +%Y-%m-%dT%H:%M:%SZ)\"""#
        )
    } else {
        "exp=".to_string()
    };
    let body = format!(
        r#"#!/bin/sh
set -e
echo run >> "{runs}"
n=$(wc -l < "{runs}" | tr -d ' ')
printf '%s' "$KUBERNETES_EXEC_INFO" > "{info}"
printf '%s' "$MY_ENV $1" > "{env}"
{expiry}
printf '{{"apiVersion":"%s","kind":"ExecCredential","status":{{"token":"token-%s"%s}}}}\n' "{api_version}" "$n" "$exp"
"#,
        runs = dir.join("runs").display(),
        info = dir.join("exec-info.json").display(),
        env = dir.join("env").display(),
    );
    std::fs::write(&script, body).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn exec_user(api_version: &str) -> String {
    format!(
        "    exec:\n      apiVersion: {api_version}\n      command: ./plugin.sh\n      args: [arg1]\n      env:\n      - name: MY_ENV\n        value: from-kubeconfig\n      provideClusterInfo: true\n      interactiveMode: IfAvailable\n"
    )
}

fn runs(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("runs")).map(|s| s.lines().count()).unwrap_or(0)
}

#[tokio::test]
async fn exec_plugin_credential_is_cached_and_renewed_on_401() {
    // The server accepts only token-2: the first credential gets a 401.
    let server = TestServer::plain(handler(|seen: Seen| async move {
        if seen.headers.get("authorization").is_some_and(|v| v == "Bearer token-2") {
            full(StatusCode::OK, pod_json("test"))
        } else {
            full(StatusCode::UNAUTHORIZED, status_body(401, "Unauthorized", "Unauthorized"))
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    exec_plugin(dir.path(), "client.authentication.k8s.io/v1", -1);
    let yaml = kubeconfig(
        &server.url,
        "    extensions:\n    - name: client.authentication.k8s.io/exec\n      extension: {audience: krust}\n",
        &exec_user("client.authentication.k8s.io/v1"),
    );
    let client = core_client(config_from_yaml(&dir, &yaml));
    let response = client.get().resource("pods").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "a 401 renews the credential and retries once");
    assert_eq!(runs(dir.path()), 2);
    // Cached: no expiry, so the plugin does not run again.
    client.get().resource("pods").send().await.unwrap();
    client.get().resource("pods").send().await.unwrap();
    assert_eq!(runs(dir.path()), 2);
    let auth: Vec<_> =
        server.requests().iter().map(|s| s.headers["authorization"].to_str().unwrap().to_string()).collect();
    assert_eq!(auth, ["Bearer token-1", "Bearer token-2", "Bearer token-2", "Bearer token-2"]);

    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("exec-info.json")).unwrap()).unwrap();
    assert_eq!(info["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(info["kind"], "ExecCredential");
    assert_eq!(info["spec"]["interactive"], false);
    assert_eq!(info["spec"]["cluster"]["server"], server.url.as_str());
    assert_eq!(info["spec"]["cluster"]["config"]["audience"], "krust");
    assert_eq!(std::fs::read_to_string(dir.path().join("env")).unwrap(), "from-kubeconfig arg1");
}

#[tokio::test]
async fn exec_plugin_reruns_when_the_credential_expires() {
    let server = TestServer::plain(pod_handler()).await;
    let dir = tempfile::tempdir().unwrap();
    // v1beta1, expiring two seconds after it is issued (second precision).
    exec_plugin(dir.path(), "client.authentication.k8s.io/v1beta1", 2);
    let client = core_client(config_from_yaml(
        &dir,
        &kubeconfig(&server.url, "", &exec_user("client.authentication.k8s.io/v1beta1")),
    ));
    client.get().resource("pods").send().await.unwrap();
    client.get().resource("pods").send().await.unwrap();
    assert_eq!(runs(dir.path()), 1, "cached until it expires");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    client.get().resource("pods").send().await.unwrap();
    assert_eq!(runs(dir.path()), 2, "expired: the plugin runs again");
    let last = server.requests().last().unwrap().headers["authorization"].clone();
    assert_eq!(last, "Bearer token-2");
}

#[tokio::test]
async fn exec_plugin_failures_are_clear() {
    let server = TestServer::plain(pod_handler()).await;
    let dir = tempfile::tempdir().unwrap();
    let user = "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: krust-no-such-plugin\n      installHint: install it with `brew install krust-plugin`\n";
    let client = core_client(config_from_yaml(&dir, &kubeconfig(&server.url, "", user)));
    let err = client.get().resource("pods").send().await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("krust-no-such-plugin") && text.contains("brew install"), "{text}");

    // A plugin that answers with the wrong apiVersion.
    let dir = tempfile::tempdir().unwrap();
    exec_plugin(dir.path(), "client.authentication.k8s.io/v1beta1", -1);
    let client = core_client(config_from_yaml(
        &dir,
        &kubeconfig(&server.url, "", &exec_user("client.authentication.k8s.io/v1")),
    ));
    let err = client.get().resource("pods").send().await.unwrap_err();
    assert!(err.to_string().contains("returned client.authentication.k8s.io/v1beta1"), "{err}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn retries_429_and_5xx_with_retry_after_replaying_the_body() {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let server = TestServer::plain(handler(move |seen: Seen| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut r = match n {
                0 => full(StatusCode::TOO_MANY_REQUESTS, status_body(429, "TooManyRequests", "slow down")),
                1 => full(StatusCode::SERVICE_UNAVAILABLE, status_body(503, "ServiceUnavailable", "busy")),
                _ => return full(StatusCode::CREATED, seen.body),
            };
            r.headers_mut().insert("retry-after", "0".parse().unwrap());
            r
        }
    }))
    .await;
    let client = core_client(Config::new(server.url.parse().unwrap()));
    let body = serde_json::json!({"metadata": {"name": "x"}});
    let response = client.post().resource("configmaps").body(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| serde_json::from_slice::<serde_json::Value>(&s.body).unwrap() == body));
}

#[tokio::test]
async fn does_not_retry_without_retry_after_and_stops_at_max_retries() {
    let server = TestServer::plain(handler(|seen: Seen| async move {
        let mut r = full(StatusCode::TOO_MANY_REQUESTS, status_body(429, "TooManyRequests", "slow down"));
        if seen.uri.path().ends_with("with-retry-after") {
            r.headers_mut().insert("retry-after", "0".parse().unwrap());
        }
        r
    }))
    .await;
    let mut config = Config::new(server.url.parse().unwrap());
    config.max_retries = 2;
    let client = RestClient::unversioned(&config).unwrap();
    let r = client.get().abs_path("/no-header").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(server.requests().len(), 1);
    let err = client.get().abs_path("/with-retry-after").send().await.unwrap().into::<Pod>().unwrap_err();
    assert!(err.is_too_many_requests());
    assert_eq!(server.requests().len(), 1 + 3, "first try + max_retries");
}

#[tokio::test]
async fn get_is_retried_when_the_connection_is_refused() {
    // Reserve a port, close it, and start the server there a little later.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = core_client(Config::new(format!("http://127.0.0.1:{port}").parse().unwrap()));
    let starter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        TestServer::start(pod_handler(), None, Some(listener)).await
    });
    let response = client.get().namespace("default").resource("pods").name("test").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let server = starter.await.unwrap();
    assert_eq!(server.requests().len(), 1);

    // A POST is never retried on connection errors (a fresh client: the old one has a pooled
    // connection to the server).
    drop(server);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = core_client(Config::new(format!("http://127.0.0.1:{port}").parse().unwrap()));
    let err = client.post().resource("pods").body(&serde_json::json!({})).send().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
}

#[tokio::test]
async fn request_timeout_is_enforced_and_sent_to_the_server() {
    let server = TestServer::plain(handler(|_| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        full(StatusCode::OK, "{}")
    }))
    .await;
    let client = core_client(Config::new(server.url.parse().unwrap()));
    let started = std::time::Instant::now();
    let err = client.get().resource("pods").timeout(Duration::from_millis(300)).send().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(server.requests()[0].uri.query(), Some("timeout=300ms"));

    // The configuration's timeout applies (and is sent) too, but never to watches.
    let mut config = Config::new(server.url.parse().unwrap());
    config.timeout = Some(Duration::from_millis(200));
    let client = core_client(config);
    let err = client.get().resource("pods").send().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert_eq!(server.requests()[1].uri.query(), Some("timeout=200ms"));
    let watch =
        tokio::time::timeout(Duration::from_secs(1), client.get().resource("pods").watch::<Pod>()).await;
    assert!(watch.is_err(), "a watch is not cut by Config::timeout (the server is still sleeping)");
    assert_eq!(server.requests()[2].uri.query(), Some("watch=true"));
}

#[tokio::test]
async fn http_proxy_gets_absolute_request_targets() {
    // The "proxy" is our test server: a proxied plain-http request arrives in absolute form.
    let proxy = TestServer::plain(pod_handler()).await;
    let mut config = Config::new("http://kubernetes.example:8080".parse().unwrap());
    config.proxy_url = Some(proxy.url.parse().unwrap());
    let client = core_client(config);
    client.get().namespace("default").resource("pods").name("test").send().await.unwrap();
    let seen = &proxy.requests()[0];
    assert_eq!(seen.uri.to_string(), "http://kubernetes.example:8080/api/v1/namespaces/default/pods/test");
    // A watch (on a connection of its own) goes through the proxy the same way.
    client.get().namespace("default").resource("pods").name("test").watch::<Pod>().await.unwrap();
    let seen = &proxy.requests()[1];
    assert_eq!(
        seen.uri.to_string(),
        "http://kubernetes.example:8080/api/v1/namespaces/default/pods/test?watch=true"
    );
    assert_eq!(seen.headers["host"], "kubernetes.example:8080");
}

#[tokio::test]
async fn https_goes_through_a_connect_proxy() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = Pki::new("ca");
    let server = TestServer::tls(
        pod_handler(),
        TlsOptions { server_cert: pki.sign("apiserver", &["kubernetes.example"]), client_ca_pem: None },
    )
    .await;
    // A minimal CONNECT proxy that sends every tunnel to the test server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let target = server.addr;
    let connects = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let log = connects.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if inbound.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                log.lock()
                    .push(String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string());
                let mut outbound = tokio::net::TcpStream::connect(target).await.unwrap();
                inbound.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    let mut config = Config::new("https://kubernetes.example:6443".parse().unwrap());
    config.tls.ca_data = Some(pki.ca_pem.into_bytes());
    config.proxy_url = Some(proxy_url.parse().unwrap());
    let client = core_client(config);
    let response = client.get().namespace("default").resource("pods").name("test").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(connects.lock()[0], "CONNECT kubernetes.example:6443 HTTP/1.1");
    // A watch opens its own tunnel, TLS inside, an origin-form target and the server's Host.
    client.get().namespace("default").resource("pods").name("test").watch::<Pod>().await.unwrap();
    assert_eq!(connects.lock()[1], "CONNECT kubernetes.example:6443 HTTP/1.1");
    let seen = server.requests().into_iter().find(|r| r.uri.query() == Some("watch=true")).unwrap();
    assert_eq!(seen.uri.to_string(), "/api/v1/namespaces/default/pods/test?watch=true");
    assert_eq!(seen.headers["host"], "kubernetes.example:6443");
}

fn added(name: &str, rv: u32) -> String {
    format!(
        r#"{{"type":"ADDED","object":{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"default","resourceVersion":"{rv}"}}}}}}"#
    )
}

#[tokio::test]
async fn watch_decodes_events_split_across_chunks() {
    let (tx, response) = streaming();
    let response = parking_lot::Mutex::new(Some(response));
    let server = TestServer::plain(handler(move |_| {
        let r = response.lock().take().unwrap();
        async move { r }
    }))
    .await;
    let client = core_client(Config::new(server.url.parse().unwrap()));
    let mut events = client
        .get()
        .namespace("default")
        .resource("pods")
        .param("resourceVersion", "5")
        .watch::<Pod>()
        .await
        .unwrap();
    let two = format!("{}\n{}\n", added("a", 6), added("b", 7));
    let third = format!("{}\n", added("c", 8));
    let (head, tail) = third.split_at(30);
    tx.send(Ok(Bytes::from(two))).await.unwrap();
    tx.send(Ok(Bytes::from(head.to_string()))).await.unwrap();
    let mut names = Vec::new();
    for _ in 0..2 {
        match events.next().await {
            Some(Ok(WatchEvent::Added(p))) => names.push(p.metadata.name.unwrap()),
            other => panic!("unexpected {other:?}"),
        }
    }
    tx.send(Ok(Bytes::from(tail.to_string()))).await.unwrap();
    match events.next().await {
        Some(Ok(WatchEvent::Added(p))) => names.push(p.metadata.name.unwrap()),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(names, ["a", "b", "c"]);
    // A malformed line is an error item; the watch goes on.
    tx.send(Ok(Bytes::from(format!("{{\"type\":\"ADDED\",\"object\":[]}}\n{}\n", added("d", 9)))))
        .await
        .unwrap();
    assert!(matches!(events.next().await, Some(Err(Error::Decode { .. }))));
    assert!(matches!(events.next().await, Some(Ok(WatchEvent::Added(_)))));
    drop(tx);
    assert!(events.next().await.is_none(), "the stream ends when the server ends the body");

    let query = server.requests()[0].uri.query().unwrap().to_string();
    assert_eq!(query, "resourceVersion=5&watch=true");
}

#[tokio::test]
async fn watch_reports_a_server_closing_mid_event() {
    let (tx, response) = streaming();
    let response = parking_lot::Mutex::new(Some(response));
    let server = TestServer::plain(handler(move |_| {
        let r = response.lock().take().unwrap();
        async move { r }
    }))
    .await;
    let client = core_client(Config::new(server.url.parse().unwrap()));
    let mut events = client.get().resource("pods").watch::<Pod>().await.unwrap();
    let event = added("a", 2);
    tx.send(Ok(Bytes::from(format!("{event}\n{}", &event[..40])))).await.unwrap();
    assert!(matches!(events.next().await, Some(Ok(WatchEvent::Added(_)))));
    tx.send(Err(std::io::Error::other("server crashed"))).await.unwrap();
    match events.next().await {
        Some(Err(Error::Body { .. })) => {}
        other => panic!("expected a body error, got {other:?}"),
    }
    assert!(events.next().await.is_none());
}

#[tokio::test]
async fn watch_start_with_410_is_gone() {
    let server = TestServer::plain(handler(|_| async {
        full(StatusCode::GONE, status_body(410, "Expired", "too old resource version: 1 (42)"))
    }))
    .await;
    let client = core_client(Config::new(server.url.parse().unwrap()));
    let err = client.get().resource("pods").param("resourceVersion", "1").watch::<Pod>().await.unwrap_err();
    assert!(err.is_gone(), "{err}");
}

#[tokio::test]
async fn kubeconfig_loading_reaches_the_server() {
    // Kubeconfig::read + from_loaded_kubeconfig with a named (non-current) context.
    let server = TestServer::plain(pod_handler()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    let yaml = kubeconfig("https://unused.example", "", "    token: t\n")
        + "- name: other\n  user:\n    token: other-token\n";
    let yaml = yaml.replace(
        "contexts:\n",
        "contexts:\n- name: local\n  context:\n    cluster: local\n    user: other\n",
    );
    let yaml = yaml.replace(
        "clusters:\n",
        &format!("clusters:\n- name: local\n  cluster:\n    server: {}\n", server.url),
    );
    std::fs::write(&path, yaml).unwrap();
    let kc = Kubeconfig::read(&path).unwrap();
    assert_eq!(kc.contexts.len(), 2);
    let config = Config::from_kubeconfig_context(&path, "local").unwrap();
    assert_eq!(config.default_namespace, "default");
    core_client(config).get().namespace("default").resource("pods").name("test").send().await.unwrap();
    assert_eq!(server.requests()[0].headers["authorization"], "Bearer other-token");
}

#[tokio::test]
async fn exec_plugin_can_return_a_client_certificate() {
    let (server, server_pki, client_pki) = mutual_tls_server().await;
    let user = client_pki.sign("exec-user", &[]);
    let dir = tempfile::tempdir().unwrap();
    let credential = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"clientCertificateData": user.cert_pem, "clientKeyData": user.key_pem}
    });
    std::fs::write(dir.path().join("credential.json"), credential.to_string()).unwrap();
    let script = dir.path().join("plugin.sh");
    std::fs::write(&script, format!("#!/bin/sh\ncat \"{}\"\n", dir.path().join("credential.json").display()))
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let yaml = kubeconfig(
        &server.url,
        &format!("    certificate-authority-data: {}\n", b64(&server_pki.ca_pem)),
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ./plugin.sh\n",
    );
    let client = core_client(config_from_yaml(&dir, &yaml));
    let response = client.get().namespace("default").resource("pods").name("test").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = &server.requests()[0];
    assert_eq!(seen.client_cn.as_deref(), Some("exec-user"));
    assert!(!seen.headers.contains_key("authorization"), "a certificate-only credential sends no token");
}

#[tokio::test]
async fn connect_timeout_covers_a_stalled_tls_handshake() {
    // The kernel completes the TCP handshake, but nobody ever answers the TLS ClientHello.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = Config::new(format!("https://{}", listener.local_addr().unwrap()).parse().unwrap());
    config.connect_timeout = Duration::from_millis(300);
    config.tls.insecure_skip_verify = true;
    let started = std::time::Instant::now();
    let err =
        core_client(config).post().resource("pods").body(&serde_json::json!({})).send().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert!(format!("{:?}", err).contains("timed out"), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(listener);
}

#[tokio::test]
async fn pod_logs_stream_as_they_arrive() {
    let (tx, response) = streaming();
    let response = parking_lot::Mutex::new(Some(response));
    let server = TestServer::plain(handler(move |_| {
        let r = response.lock().take().unwrap();
        async move { r }
    }))
    .await;
    let cs = krust_client::Clientset::new(&Config::new(server.url.parse().unwrap())).unwrap();
    let opts = krust_client::LogOptions {
        follow: true,
        tail_lines: Some(10),
        container: Some("app".into()),
        ..Default::default()
    };
    let mut logs = Box::pin(cs.core_v1().pods("default").logs("web-0", &opts).await.unwrap());
    tx.send(Ok(Bytes::from_static(b"line 1\n"))).await.unwrap();
    assert_eq!(logs.next().await.unwrap().unwrap(), Bytes::from_static(b"line 1\n"));
    tx.send(Ok(Bytes::from_static(b"line 2\n"))).await.unwrap();
    assert_eq!(logs.next().await.unwrap().unwrap(), Bytes::from_static(b"line 2\n"));
    drop(tx);
    assert!(logs.next().await.is_none());
    let seen = &server.requests()[0];
    assert_eq!(seen.uri.path(), "/api/v1/namespaces/default/pods/web-0/log");
    assert_eq!(seen.uri.query(), Some("container=app&follow=true&tailLines=10"));
}
