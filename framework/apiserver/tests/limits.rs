//! krust-apiserver against abuse, over real HTTP: what a hostile or broken client sends is
//! refused with a Status, bounded in memory and time, and never stops the server answering
//! others (each case was once found to hurt the server).

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use http::StatusCode;
use krust_apiserver::{ApiServer, ConnectionLimits};
use krust_client::{PatchType, RestClient};
use kube_core::GroupVersion;
use serde_json::{Value, json};

fn client(server: &ApiServer, group: &str) -> RestClient {
    let config = server.kubeconfig().config;
    RestClient::new(&config.with_group_version(GroupVersion::gv(group, "v1"))).unwrap()
}

async fn healthy(server: &ApiServer) {
    let core = client(server, "");
    let started = Instant::now();
    let r = core.get().abs_path("/healthz").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(2), "/healthz took {:?}", started.elapsed());
}

/// A message from a failed request's Status body.
fn message(r: &krust_client::Response) -> String {
    serde_json::from_slice::<Value>(r.raw_body()).map(|v| v["message"].to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_patch_that_doubles_a_value_is_refused_and_the_server_stays_healthy() {
    let server = ApiServer::builder().start().await.unwrap();
    let core = client(&server, "");
    let big = "x".repeat(100_000);
    let cm = json!({"metadata": {"name": "big", "finalizers": [big]}, "data": {"a": "b"}});
    let r = core.post().namespace("default").resource("configmaps").body(&cm).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // 30 copies of the list into itself would make 100 KB × 2^30.
    let ops: Vec<Value> = (0..30)
        .map(|_| json!({"op": "copy", "from": "/metadata/finalizers", "path": "/metadata/finalizers/-"}))
        .collect();
    let patch = core
        .patch(PatchType::Json)
        .namespace("default")
        .resource("configmaps")
        .name("big")
        .body(&Value::Array(ops))
        .send();
    let (r, ()) = tokio::join!(patch, healthy(&server));
    let r = r.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&r).contains("accumulated size exceeded limit"), "{}", message(&r));
    // More operations than kube-apiserver allows.
    let ops: Vec<Value> =
        (0..10_001).map(|_| json!({"op": "test", "path": "/data/a", "value": "b"})).collect();
    let r = core
        .patch(PatchType::Json)
        .namespace("default")
        .resource("configmaps")
        .name("big")
        .body(&Value::Array(ops))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        message(&r).contains("maximum operations in a JSON patch is 10000, got 10001"),
        "{}",
        message(&r)
    );
    // Nothing changed.
    let cm: Value = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .name("big")
        .send()
        .await
        .unwrap()
        .into()
        .unwrap();
    assert_eq!(cm["metadata"]["finalizers"].as_array().unwrap().len(), 1);
    healthy(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_bodies_are_refused_before_parsing() {
    let server = ApiServer::builder().start().await.unwrap();
    let core = client(&server, "");
    let mut block = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n");
    let mut depth = 1;
    while block.len() < 300_000 {
        block.push_str(&" ".repeat(depth * 2));
        block.push_str("a:\n");
        depth += 1;
    }
    let flow =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: deep}}\ndata: {}", "[".repeat(300_000));
    let json_body = format!("{{\"metadata\": {}", "{\"a\": ".repeat(50_000));
    for (body, content_type) in
        [(block, "application/yaml"), (flow, "application/yaml"), (json_body, "application/json")]
    {
        let started = Instant::now();
        let send = core
            .post()
            .namespace("default")
            .resource("configmaps")
            .header(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type))
            .body_bytes(body.into_bytes())
            .send();
        let (r, ()) = tokio::join!(send, healthy(&server));
        let r = r.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{}", message(&r));
        assert!(message(&r).contains("nested too deeply"), "{}", message(&r));
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    }
    // Ordinary nesting is fine.
    let ok = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\n  labels: {a: b}\ndata:\n  k: '[[[[not nesting'\n";
    let r = core
        .post()
        .namespace("default")
        .resource("configmaps")
        .header(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/yaml"))
        .body_bytes(ok.as_bytes().to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", message(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_history_is_bounded_in_bytes_and_older_resumes_expire() {
    let server = ApiServer::builder().watch_history_bytes(8 << 20).start().await.unwrap();
    let core = client(&server, "");
    let mut versions = Vec::new();
    for i in 0..30 {
        let value = format!("{i}{}", "v".repeat(1 << 20));
        let cm = json!({"metadata": {"name": "huge"}, "data": {"v": value}});
        let r = if i == 0 {
            core.post().namespace("default").resource("configmaps").body(&cm).send().await.unwrap()
        } else {
            core.put()
                .namespace("default")
                .resource("configmaps")
                .name("huge")
                .body(&cm)
                .send()
                .await
                .unwrap()
        };
        assert!(r.status().is_success(), "{}", message(&r));
        let obj: Value = r.into().unwrap();
        versions.push(obj["metadata"]["resourceVersion"].as_str().unwrap().to_string());
    }
    let watch = |rv: &str| {
        core.get()
            .namespace("default")
            .resource("configmaps")
            .param("watch", "true")
            .param("resourceVersion", rv)
            .param("timeoutSeconds", "1")
            .send()
    };
    // 8 MiB hold about 7 of the 1 MiB versions: an early resume is gone, a recent one is not.
    let old = watch(&versions[2]).await.unwrap();
    let body = String::from_utf8_lossy(old.raw_body()).to_string();
    assert!(old.status() == StatusCode::GONE || body.contains("\"code\":410"), "{body}");
    let recent = watch(&versions[27]).await.unwrap();
    assert_eq!(recent.status(), StatusCode::OK);
    let recent = String::from_utf8_lossy(recent.raw_body()).to_string();
    assert!(
        !recent.contains("\"code\":410") && recent.contains("MODIFIED"),
        "{}",
        &recent[..200.min(recent.len())]
    );
}

fn raw_connect(server: &ApiServer) -> TcpStream {
    let stream = TcpStream::connect(server.url().trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream
}

/// Waits for the server to close the connection; returns how long that took.
fn closed_after(mut stream: TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_closed_and_connections_are_capped() {
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_secs(1),
        max_connections: 8,
        ..Default::default()
    };
    let server = ApiServer::builder().connection_limits(limits).start().await.unwrap();
    let (idle, slow) = tokio::task::spawn_blocking({
        let idle = raw_connect(&server);
        let slow = raw_connect(&server);
        move || {
            // Slowloris: a header line every half second, never the end of the headers.
            let writer = {
                let mut slow = slow.try_clone().unwrap();
                std::thread::spawn(move || {
                    let _ = slow.write_all(b"GET /api HTTP/1.1\r\nHost: x\r\n");
                    for i in 0..20 {
                        std::thread::sleep(Duration::from_millis(500));
                        if slow.write_all(format!("X-Slow-{i}: y\r\n").as_bytes()).is_err() {
                            break;
                        }
                    }
                })
            };
            let idle = closed_after(idle);
            slow.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let slow = closed_after(slow);
            let _ = writer.join();
            (idle, slow)
        }
    })
    .await
    .unwrap();
    assert!(idle < Duration::from_secs(5), "an idle connection stayed open {idle:?}");
    assert!(slow < Duration::from_secs(5), "a slowloris connection stayed open {slow:?}");

    // Fill the cap with idle connections: the next one is closed at once, and once the idle ones
    // time out, ordinary clients get in again.
    let held: Vec<TcpStream> = (0..8).map(|_| raw_connect(&server)).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let extra = raw_connect(&server);
    let refused = tokio::task::spawn_blocking(move || closed_after(extra)).await.unwrap();
    assert!(refused < Duration::from_millis(500), "over the cap, a connection stayed open {refused:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    healthy(&server).await;
    drop(held);
}

#[tokio::test]
async fn values_of_the_wrong_type_are_refused() {
    let server = ApiServer::builder().start().await.unwrap();
    let core = client(&server, "");
    let apps = client(&server, "apps");
    let post = |client: &RestClient, resource: &str, body: Value| {
        client.post().namespace("default").resource(resource).body(&body).send()
    };
    let r = post(&core, "configmaps", json!({"metadata": {"name": "a"}, "data": ["x"]})).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        message(&r).contains("ConfigMap in version \\\"v1\\\" cannot be handled as a ConfigMap: data"),
        "{}",
        message(&r)
    );
    let r = post(&core, "configmaps", json!({"metadata": {"name": "a", "labels": {"n": 5}}})).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(message(&r).contains("metadata.labels.n"), "{}", message(&r));
    let template =
        json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
    let deployment = |replicas: Value| json!({"metadata": {"name": "d"}, "spec": {"replicas": replicas, "selector": {"matchLabels": {"a": "b"}}, "template": template}});
    let r = post(&apps, "deployments", deployment(json!(1e20))).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post(&apps, "deployments", deployment(json!(-1))).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = post(&apps, "deployments", deployment(json!(1))).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = apps
        .put()
        .namespace("default")
        .resource("deployments")
        .name("d")
        .sub_resource("scale")
        .body(&json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "d"}, "spec": {"replicas": -5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&r).contains("spec.replicas: Invalid value: -5"), "{}", message(&r));
    // A required field that is missing is 422, as kube-apiserver's validation says it.
    let r = post(&apps, "deployments", json!({"metadata": {"name": "e"}, "spec": {"template": template}}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&r).contains("spec.selector: Required value"), "{}", message(&r));

    // CRD schemas: unknown types and patterns that do not compile.
    let ext = RestClient::new(
        &server.kubeconfig().config.with_group_version(GroupVersion::gv("apiextensions.k8s.io", "v1")),
    )
    .unwrap();
    let crd = |schema: Value| {
        json!({"metadata": {"name": "things.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "things", "kind": "Thing"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema}}]}})
    };
    for (schema, expected) in [
        (
            json!({"type": "object", "properties": {"spec": {"type": "bogus"}}}),
            "properties[spec].type: Unsupported value: \\\"bogus\\\"",
        ),
        (
            json!({"type": "object", "properties": {"name": {"type": "string", "pattern": "(["}}}),
            "properties[name].pattern: Invalid value",
        ),
    ] {
        let r = ext.post().resource("customresourcedefinitions").body(&crd(schema)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(message(&r).contains(expected), "{}", message(&r));
    }
}

#[tokio::test]
async fn options_that_do_not_parse_are_refused_and_nothing_is_written() {
    let server = ApiServer::builder().start().await.unwrap();
    let core = client(&server, "");
    let cm = json!({"metadata": {"name": "a"}, "data": {"k": "v"}});
    let r = core
        .post()
        .namespace("default")
        .resource("configmaps")
        .param("dryRun", "Bogus")
        .body(&cm)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&r).contains("dryRun: Unsupported value"), "{}", message(&r));
    let r = core.get().namespace("default").resource("configmaps").name("a").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "a refused dry run must not write");
    let r = core.post().namespace("default").resource("configmaps").body(&cm).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = core
        .delete()
        .namespace("default")
        .resource("configmaps")
        .name("a")
        .param("gracePeriodSeconds", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = core.get().namespace("default").resource("configmaps").name("a").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "a refused delete must not delete");
    let r = core
        .get()
        .namespace("default")
        .resource("configmaps")
        .param("timeoutSeconds", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_client_without_the_servers_ca_says_why_the_connection_failed() {
    let server = ApiServer::builder().tls(true).start().await.unwrap();
    // The generated kubeconfig without its CA: the system roots do not know the server.
    let yaml = server.kubeconfig().yaml;
    let stripped: String = yaml
        .lines()
        .filter(|l| !l.trim_start().starts_with("certificate-authority-data"))
        .collect::<Vec<_>>()
        .join("\n");
    let kubeconfig =
        krust_client::config::Kubeconfig::parse(&stripped, std::path::Path::new("test")).unwrap();
    let config = krust_client::Config::from_loaded_kubeconfig(&kubeconfig, None).unwrap();
    let core = RestClient::new(&config.with_group_version(GroupVersion::gv("", "v1"))).unwrap();
    let error = core.get().resource("namespaces").send().await.unwrap_err().to_string();
    assert!(error.contains("UnknownIssuer") || error.contains("unknown issuer"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reads_trickle_the_same_bytes_out() {
    let server = ApiServer::builder().start().await.unwrap();
    let core = client(&server, "");
    for i in 0..20 {
        let cm = json!({"metadata": {"name": format!("cm-{i}")}, "data": {"v": "x".repeat(1000)}});
        core.post().namespace("default").resource("configmaps").body(&cm).send().await.unwrap();
    }
    let list = || core.get().namespace("default").resource("configmaps").send();
    let fast: Value = list().await.unwrap().into().unwrap();
    server.set_slow_reads(Some((4096, Duration::from_millis(50))));
    let started = Instant::now();
    let slow: Value = list().await.unwrap().into().unwrap();
    let took = started.elapsed();
    server.set_slow_reads(None);
    // ~25 KB in 4 KiB pieces, 50 ms apart.
    assert!(took >= Duration::from_millis(250), "took {took:?}");
    assert_eq!(slow["items"], fast["items"]);
    let started = Instant::now();
    list().await.unwrap();
    assert!(started.elapsed() < took);
}

#[tokio::test]
async fn the_token_never_appears_in_debug_output() {
    let builder = ApiServer::builder().token("s3cret-t0ken");
    assert!(!format!("{builder:?}").contains("s3cret-t0ken"));
    let server = builder.start().await.unwrap();
    let kubeconfig = server.kubeconfig();
    assert!(kubeconfig.yaml.contains("s3cret-t0ken"), "the kubeconfig itself carries it");
    assert!(!format!("{kubeconfig:?}").contains("s3cret-t0ken"), "{kubeconfig:?}");
    assert!(!format!("{server:?}").contains("s3cret-t0ken"));
}
