//! Property-based fuzzing of krust-apiserver's request handling: arbitrary methods, paths (built
//! from the API's own words and random ones), query strings, content types, headers and bodies.
//! Whatever it is sent, the server answers with a status line — never a dropped connection — and
//! never with a 500 (a bad request is the client's error: 4xx), and it is still healthy after.
//! A bounded number of cases runs in CI; proptest keeps every input that once failed in
//! `proptest-regressions/` (committed) and replays it first.

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::OnceLock,
    time::Duration,
};

use krust_apiserver::ApiServer;
use proptest::prelude::*;

/// One server for every case, on a runtime of its own.
fn server_addr() -> &'static str {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let server = ApiServer::builder().start().await.unwrap();
                tx.send(server.url().trim_start_matches("http://").to_string()).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().unwrap()
    })
}

/// Sends raw request bytes (then, with `end`, closes the sending side: nothing more is coming);
/// returns the status code of the answer (`None`: no status line).
fn send_with(request: &[u8], end: bool) -> Option<u16> {
    let mut stream = TcpStream::connect(server_addr()).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    stream.write_all(request).ok()?;
    if end {
        stream.shutdown(std::net::Shutdown::Write).ok()?;
    }
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") && head.len() < 256 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let line = String::from_utf8_lossy(&head);
    line.strip_prefix("HTTP/1.1 ").and_then(|rest| rest.get(..3)).and_then(|code| code.parse().ok())
}

fn send(request: &[u8]) -> Option<u16> {
    send_with(request, false)
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "api",
            "apis",
            "v1",
            "v2",
            "namespaces",
            "default",
            "kube-system",
            "pods",
            "configmaps",
            "secrets",
            "apps",
            "deployments",
            "status",
            "scale",
            "events.k8s.io",
            "events",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "coordination.k8s.io",
            "leases",
            "openapi",
            "version",
            "healthz",
            "x",
            "..",
            ".",
            "%2F",
            "a%00b",
        ])
        .prop_map(String::from),
        "[a-zA-Z0-9.%_-]{0,12}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(vec![
                "labelSelector",
                "fieldSelector",
                "watch",
                "resourceVersion",
                "resourceVersionMatch",
                "limit",
                "continue",
                "dryRun",
                "fieldManager",
                "force",
                "propagationPolicy",
                "gracePeriodSeconds",
                "timeoutSeconds",
                "allowWatchBookmarks",
                "sendInitialEvents",
                "pretty",
                "zz",
            ]),
            "[a-zA-Z0-9=!,()%+ .-]{0,16}",
        ),
        0..4,
    )
    .prop_map(|pairs| {
        pairs.into_iter().map(|(k, v)| format!("{k}={}", v.replace(' ', "+"))).collect::<Vec<_>>().join("&")
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        (
            prop::sample::select(vec!["v1", "apps/v1", "x/y", ""]),
            prop::sample::select(vec!["ConfigMap", "Pod", "Deployment", "Secret", "Namespace", "Lease", ""]),
            "[a-z0-9.-]{0,20}",
            prop::sample::select(vec!["{}", "[]", "null", "1", "\"s\"", "{\"a\":{\"b\":[1,2]}}"]),
        )
            .prop_map(|(api_version, kind, name, extra)| {
                format!(
                    r#"{{"apiVersion":"{api_version}","kind":"{kind}","metadata":{{"name":"{name}","labels":{extra}}},"data":{extra},"spec":{extra}}}"#
                )
                .into_bytes()
            }),
        prop::sample::select(vec![
            r#"[{"op":"replace","path":"/metadata/labels","value":{"a":"b"}}]"#,
            r#"[{"op":"test","path":"/x","value":1}]"#,
            r#"{"metadata":{"labels":null}}"#,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_requests_get_an_answer_and_never_a_500(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
        segments in prop_oneof![
            prop::collection::vec(segment(), 0..8),
            // Real resource paths, with a random tail.
            (
                prop::sample::select(vec![
                    "api/v1/namespaces/default/configmaps", "api/v1/namespaces", "api/v1/namespaces/default/pods",
                    "apis/apps/v1/namespaces/default/deployments", "api/v1/namespaces/default/secrets",
                    "apis/coordination.k8s.io/v1/namespaces/default/leases", "apis/events.k8s.io/v1/events",
                    "apis/apiextensions.k8s.io/v1/customresourcedefinitions", "api/v1/nodes",
                ]),
                prop::collection::vec(segment(), 0..3),
            )
                .prop_map(|(base, tail)| {
                    let mut segments: Vec<String> = base.split('/').map(String::from).collect();
                    segments.extend(tail);
                    segments
                }),
        ],
        query in query(),
        content_type in prop::sample::select(vec![
            "application/json", "application/yaml", "application/merge-patch+json",
            "application/json-patch+json", "application/strategic-merge-patch+json",
            "application/apply-patch+yaml", "application/vnd.kubernetes.protobuf", "text/plain", "",
        ]),
        accept in prop::sample::select(vec![
            "application/json", "application/json;as=Table;v=v1;g=meta.k8s.io",
            "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io", "*/*", "application/xml",
        ]),
        body in body(),
    ) {
        // A watch would stream until its timeout: ask for a short one.
        let query = if query.contains("watch=") { format!("{query}&timeoutSeconds=1") } else { query };
        let path = format!("/{}{}{}", segments.join("/"), if query.is_empty() { "" } else { "?" }, query);
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: fuzz\r\nContent-Type: {content_type}\r\nAccept: {accept}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        let status = send(&request);
        prop_assert!(status.is_some(), "no answer to {method} {path}");
        prop_assert!(status != Some(500), "500 for {method} {path} ({content_type}): {:?}", String::from_utf8_lossy(&body));
        prop_assert_eq!(send(b"GET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n"), Some(200));
    }

    /// Bytes that are not HTTP at all: the server refuses them (or closes) and stays healthy.
    #[test]
    fn garbage_on_the_socket_leaves_the_server_healthy(garbage in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = send_with(&garbage, true);
        prop_assert_eq!(send(b"GET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n"), Some(200));
    }
}
