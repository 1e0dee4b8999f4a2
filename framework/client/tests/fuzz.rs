//! Property-based fuzzing of what krust-client reads from the network and from files: the watch
//! decoder on arbitrary bytes cut into arbitrary chunks, kubeconfig loading on arbitrary YAML,
//! and the label selector parser on arbitrary text. None of them may panic; valid input must
//! decode the same however it is cut. A bounded number of cases runs in CI; proptest keeps every
//! input that once failed in `proptest-regressions/` (committed) and replays it first.

use std::path::Path;

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use krust_client::{Error, WatchStream, config::Kubeconfig, rules::parse_label_selector};
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a runtime")
}

/// `body` cut at `cuts` (positions, any order, duplicates allowed).
fn chunks(body: &[u8], cuts: &[usize]) -> Vec<Result<Bytes, Error>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    at.push(0);
    at.push(body.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| Ok(Bytes::copy_from_slice(&body[w[0]..w[1]]))).collect()
}

/// What a watch stream yields, as comparable text.
fn decode(body: Vec<Result<Bytes, Error>>) -> Vec<String> {
    runtime().block_on(async {
        WatchStream::<serde_json::Value>::new(stream::iter(body), "fuzz")
            .map(|e| match e {
                Ok(event) => serde_json::to_string(&event).unwrap_or_default(),
                Err(e) => format!("error: {e}"),
            })
            .collect()
            .await
    })
}

fn event() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["ADDED", "MODIFIED", "DELETED"]),
        "[a-z0-9-]{1,20}",
        "\\PC{0,40}",
        prop::collection::btree_map("[a-z]{1,8}", "\\PC{0,12}", 0..4),
    )
        .prop_map(|(kind, name, note, labels)| {
            serde_json::json!({
                "type": kind,
                "object": {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "resourceVersion": "7", "labels": labels},
                    "data": {"note": note},
                }
            })
            .to_string()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Valid events decode to the same sequence however the body is cut into chunks.
    #[test]
    fn watch_events_decode_the_same_however_the_body_is_cut(
        events in prop::collection::vec(event(), 1..8),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let body = events.join("\n") + "\n";
        let whole = decode(vec![Ok(Bytes::from(body.clone()))]);
        prop_assert_eq!(whole.len(), events.len());
        prop_assert!(whole.iter().all(|e| !e.starts_with("error")), "{:?}", whole);
        prop_assert_eq!(decode(chunks(body.as_bytes(), &cuts)), whole);
    }

    /// Arbitrary bytes, arbitrarily cut: errors at worst, never a panic, and the stream ends.
    #[test]
    fn arbitrary_watch_bytes_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..2048),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let items = decode(chunks(&body, &cuts));
        let lines = body.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count();
        prop_assert!(items.len() <= lines, "{} items from {} lines", items.len(), lines);
    }

    /// Arbitrary text as a kubeconfig file: an error naming the file, or a configuration.
    #[test]
    fn arbitrary_kubeconfig_text_never_panics(text in "\\PC{0,400}") {
        if let Err(e) = Kubeconfig::parse(&text, Path::new("/fuzz/config")) {
            prop_assert!(e.to_string().contains("/fuzz/config"), "{}", e);
        }
    }

    /// Kubeconfig-shaped YAML with arbitrary values: loading and resolving a context never panics.
    #[test]
    fn kubeconfig_shaped_yaml_never_panics(
        server in "\\PC{0,40}",
        context in "[a-z]{0,6}",
        cluster in "[a-z]{0,6}",
        user in "[a-z]{0,6}",
        token in "\\PC{0,20}",
        namespace in "\\PC{0,12}",
        exec in any::<bool>(),
    ) {
        let auth = if exec {
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /nonexistent/plugin\n".to_string()
        } else {
            format!("    token: {token:?}\n")
        };
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {context:?}\nclusters:\n- name: {cluster:?}\n  cluster:\n    server: {server:?}\ncontexts:\n- name: {context:?}\n  context:\n    cluster: {cluster:?}\n    user: {user:?}\n    namespace: {namespace:?}\nusers:\n- name: {user:?}\n  user:\n{auth}"
        );
        if let Ok(kubeconfig) = Kubeconfig::parse(&text, Path::new("/fuzz/config")) {
            let _ = krust_client::Config::from_loaded_kubeconfig(&kubeconfig, None);
            let _ = krust_client::Config::from_loaded_kubeconfig(&kubeconfig, Some(&context));
        }
    }

    /// Arbitrary text as a label selector: parsed or refused, never a panic; what parses prints
    /// back to a selector that parses to the same.
    #[test]
    fn arbitrary_label_selectors_never_panic_and_round_trip(text in "[a-z0-9=!,() .inot/_-]{0,40}|\\PC{0,40}") {
        if let Ok(selector) = parse_label_selector(&text) {
            let printed = selector.to_string();
            let again = parse_label_selector(&printed);
            prop_assert!(again.is_ok(), "{:?} printed as {:?}, which does not parse", text, printed);
            prop_assert_eq!(again.unwrap(), selector);
        }
    }
}
