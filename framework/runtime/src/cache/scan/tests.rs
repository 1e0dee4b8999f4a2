//! The scanner against serde_json, on every shape it meets and on arbitrary bytes.
//!
//! Mirrors no client-go counterpart: the scanner checked against serde_json.

use super::*;
use proptest::prelude::*;
use serde_json::{Value, json};

fn decoder(paths: &[&[&str]]) -> Decoder {
    let paths: Vec<FieldPath> = paths.iter().map(|p| FieldPath::new(p.iter().copied()).unwrap()).collect();
    Decoder::new(Arc::new(DropTree::new(&paths)))
}

fn text(o: &ScannedObject, span: Span) -> &str {
    std::str::from_utf8(&o.bytes[span.range()]).unwrap()
}

#[test]
fn finds_the_metadata_and_drops_managed_fields_in_one_pass() {
    let json = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1","namespace":"team","uid":"u-1","resourceVersion":"42","generation":3,"labels":{"app":"web"},"annotations":{"a":"b"},"ownerReferences":[{"name":"rs"}],"finalizers":["f"],"managedFields":[{"manager":"m","fieldsV1":{"f:x":{}}}],"deletionTimestamp":"2026-01-01T00:00:00Z"},"spec":{"metadata":{"name":"inner"}}}"#;
    let o = decoder(&[&["metadata", "managedFields"]]).object(json).unwrap();
    let kept: Value = serde_json::from_slice(&o.bytes).unwrap();
    let mut expected: Value = serde_json::from_slice(json).unwrap();
    expected["metadata"].as_object_mut().unwrap().remove("managedFields");
    assert_eq!(kept, expected);
    assert_eq!(text(&o, o.meta.name), "web-1");
    assert_eq!(text(&o, o.meta.namespace), "team");
    assert_eq!(text(&o, o.meta.uid), "u-1");
    assert_eq!(text(&o, o.meta.resource_version), "42");
    assert_eq!(text(&o, o.meta.labels), r#"{"app":"web"}"#);
    assert_eq!(text(&o, o.meta.annotations), r#"{"a":"b"}"#);
    assert_eq!(text(&o, o.meta.owner_references), r#"[{"name":"rs"}]"#);
    assert_eq!(text(&o, o.meta.finalizers), r#"["f"]"#);
    assert_eq!(o.meta.generation, Some(3));
    assert!(o.meta.deleting);
    assert_eq!(o.meta.escaped, 0);
}

#[test]
fn drops_first_middle_last_and_only_members() {
    let cases = [
        (r#"{"a":1,"b":2,"c":3}"#, &["a"][..], json!({"b":2,"c":3})),
        (r#"{"a":1,"b":2,"c":3}"#, &["b"][..], json!({"a":1,"c":3})),
        (r#"{"a":1,"b":2,"c":3}"#, &["c"][..], json!({"a":1,"b":2})),
        (r#"{ "a" : 1 , "b" : 2 }"#, &["a", "b"][..], json!({})),
        (r#"{"a":1}"#, &["a"][..], json!({})),
        (r#"{"a":{"x":[1,{"y":"}"}]},"b":"\"a\""}"#, &["a"][..], json!({"b":"\"a\""})),
    ];
    for (input, keys, expected) in cases {
        let paths: Vec<&[&str]> = keys.iter().map(std::slice::from_ref).collect();
        let o = decoder(&paths).object(input.as_bytes()).unwrap();
        let kept: Value = serde_json::from_slice(&o.bytes).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(kept, expected, "{input} without {keys:?}");
    }
}

#[test]
fn drops_nested_paths_and_keeps_spans_right_after_the_cut() {
    let json = br#"{"metadata":{"managedFields":[{"m":1}],"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"big\":1}","keep":"x"},"name":"n"},"status":{"x":1}}"#;
    let o = decoder(&[
        &["metadata", "managedFields"],
        &["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"],
        &["status"],
    ])
    .object(json)
    .unwrap();
    let kept: Value = serde_json::from_slice(&o.bytes).unwrap();
    assert_eq!(kept, json!({"metadata":{"annotations":{"keep":"x"},"name":"n"}}));
    assert_eq!(text(&o, o.meta.name), "n");
    assert_eq!(text(&o, o.meta.annotations), r#"{"keep":"x"}"#);
}

#[test]
fn a_framed_event_is_scanned_up_to_its_metadata_only() {
    // kube-apiserver's shape: the object's end comes from the line; what follows metadata is
    // copied unread (a typed read would report the broken spec).
    let line =
        br#"{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"a","managedFields":[1]},"spec":{]}}"#;
    let ScannedEvent::Added(o) = decoder(&[&["metadata", "managedFields"]]).event(line).unwrap() else {
        panic!("not ADDED")
    };
    assert_eq!(o.bytes, br#"{"kind":"Pod","metadata":{"name":"a"},"spec":{]}"#);
    // Scanned whole (another shape), the same line is refused.
    let spaced = br#"{"type": "ADDED", "object": {"kind":"Pod","metadata":{"name":"a"},"spec":{]}}"#;
    assert!(decoder(&[]).event(spaced).is_err());
    // Dropping outside metadata needs the whole object: it is scanned, and refused.
    assert!(decoder(&[&["status"]]).event(line).is_err());
    // A truncated line does not look framed and fails the whole scan.
    assert!(decoder(&[]).event(&line[..line.len() - 1]).is_err());
}

#[test]
fn flags_escaped_strings() {
    let json = br#"{"metadata":{"name":"a\u0062","resourceVersion":"1"}}"#;
    let o = decoder(&[]).object(json).unwrap();
    assert_eq!(o.meta.escaped, ESCAPED_NAME);
    assert_eq!(text(&o, o.meta.name), r"a\u0062");
}

#[test]
fn reads_watch_events_of_every_type() {
    let mut d = decoder(&[&["metadata", "managedFields"]]);
    let line = br#"{"type":"MODIFIED","object":{"metadata":{"name":"a","managedFields":[]},"data":{}}}"#;
    match d.event(line).unwrap() {
        ScannedEvent::Modified(o) => assert_eq!(o.bytes, br#"{"metadata":{"name":"a"},"data":{}}"#),
        _ => panic!("expected MODIFIED"),
    }
    // The object first, the type after.
    let line = br#"{"object":{"metadata":{"name":"b"}},"type":"DELETED"}"#;
    assert!(matches!(d.event(line).unwrap(), ScannedEvent::Deleted(o) if text(&o, o.meta.name) == "b"));
    let line = br#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12","annotations":{"k8s.io/initial-events-end":"true"}}}}"#;
    match d.event(line).unwrap() {
        ScannedEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, "12"),
        _ => panic!("expected BOOKMARK"),
    }
    let line = br#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old","reason":"Expired","code":410}}"#;
    match d.event(line).unwrap() {
        ScannedEvent::Error(s) => assert_eq!(s.code, 410),
        _ => panic!("expected ERROR"),
    }
    assert!(d.event(br#"{"type":"NOPE","object":{}}"#).is_err());
    assert!(d.event(br#"{"type":"ADDED"}"#).is_err());
    assert!(d.event(br#"{"object":{}}"#).is_err());
}

#[test]
fn reads_a_list_page() {
    let body = br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"99","continue":"tok","remainingItemCount":3},"items":[{"metadata":{"name":"a","managedFields":[1]}},{"metadata":{"name":"b"}}]}"#;
    let mut names = Vec::new();
    let meta = decoder(&[&["metadata", "managedFields"]])
        .list(body, |o| names.push((text(&o, o.meta.name).to_string(), o.bytes.clone())))
        .unwrap();
    assert_eq!(meta, ListMeta { resource_version: Some("99".into()), continue_token: Some("tok".into()) });
    assert_eq!(decoder(&[]).list_meta(body).unwrap(), meta);
    let items_first = br#"{"items":[{"metadata":{"name":"a"}}],"metadata":{"resourceVersion":"5"}}"#;
    assert_eq!(decoder(&[]).list_meta(items_first).unwrap().resource_version.as_deref(), Some("5"));
    assert_eq!(names[0], ("a".to_string(), br#"{"metadata":{"name":"a"}}"#.to_vec()));
    assert_eq!(names[1].0, "b");
    let empty = decoder(&[]).list(br#"{"metadata":{},"items":null}"#, |_| panic!("no items")).unwrap();
    assert_eq!(empty, ListMeta::default());
}

#[test]
fn rejects_broken_structure() {
    let bad: &[&[u8]] = &[
        b"",
        b"[]",
        b"{",
        br#"{"a":[1,2}"#,
        br#"{"a":{"b":1]}"#,
        br#"{"a" 1}"#,
        br#"{"a":1 "b":2}"#,
        br#"{"a":"unterminated}"#,
        br#"{"metadata":{"name":5}}"#,
        br#"{"metadata":{"generation":"x"}}"#,
        br#"{"metadata":[]}"#,
        br#"{"a":1} x"#,
        b"{\"metadata\":{\"name\":\"\xff\"}}",
    ];
    for input in bad {
        assert!(decoder(&[]).object(input).is_err(), "{:?} was accepted", String::from_utf8_lossy(input));
    }
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
    assert!(decoder(&[]).object(deep.as_bytes()).is_err());
}

#[test]
fn field_paths_that_the_cache_needs_are_refused() {
    assert!(FieldPath::new(["metadata"]).is_err());
    assert!(FieldPath::new(["metadata", "name"]).is_err());
    assert!(FieldPath::new(["metadata", "resourceVersion"]).is_err());
    assert!(FieldPath::new(Vec::<String>::new()).is_err());
    assert!(FieldPath::new(["status", ""]).is_err());
    assert_eq!(FieldPath::new(["metadata", "managedFields"]).unwrap(), FieldPath::managed_fields());
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z\"\\\\/\u{e9} ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,3}|metadata|name|managedFields", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn remove_path(v: &mut Value, path: &[&str]) {
    match path {
        [last] => {
            if let Some(o) = v.as_object_mut() {
                o.remove(*last);
            }
        }
        [first, rest @ ..] => {
            if let Some(inner) = v.get_mut(*first) {
                remove_path(inner, rest);
            }
        }
        [] => {}
    }
}

proptest! {
    /// Against serde_json: the kept bytes parse to the input minus the dropped members, and
    /// the metadata spans hold what a parser finds there.
    #[test]
    fn scanning_matches_a_json_parser(
        mut object in proptest::collection::btree_map("[a-z]{1,3}|spec|status", arb_json(), 0..4),
        name in "[a-z0-9.-]{0,10}",
        labels in proptest::collection::btree_map("[a-z/.]{1,6}", "[a-z]{0,4}", 0..3),
        extra in arb_json(),
        pretty in any::<bool>(),
    ) {
        object.insert("metadata".into(), json!({
            "managedFields": extra.clone(), "name": name, "labels": labels, "resourceVersion": "7", "x": extra,
        }));
        let value = Value::Object(object.into_iter().collect());
        let input = if pretty { serde_json::to_vec_pretty(&value) } else { serde_json::to_vec(&value) }.unwrap();
        let drops: &[&[&str]] = &[&["metadata", "managedFields"], &["status"], &["spec", "name"]];
        let o = decoder(drops).object(&input).unwrap();
        let mut expected = value.clone();
        for path in drops {
            remove_path(&mut expected, path);
        }
        let kept: Value = serde_json::from_slice(&o.bytes).unwrap();
        prop_assert_eq!(kept, expected);
        prop_assert_eq!(text(&o, o.meta.name), value["metadata"]["name"].as_str().unwrap());
        let labels_kept: Value = serde_json::from_slice(&o.bytes[o.meta.labels.range()]).unwrap();
        prop_assert_eq!(&labels_kept, &value["metadata"]["labels"]);
        // As a watch event: the framed line (compact) and a whole scan (spaced) agree.
        let compact = [&br#"{"type":"MODIFIED","object":"#[..], &input, b"}"].concat();
        let spaced = [&br#"{"type": "MODIFIED", "object": "#[..], &input, b" }\n"].concat();
        for line in [compact, spaced] {
            let ScannedEvent::Modified(e) = decoder(drops).event(&line).unwrap() else { panic!("not MODIFIED") };
            prop_assert_eq!(&e.bytes, &o.bytes);
            prop_assert_eq!(&e.meta, &o.meta);
        }
        // Only metadata dropped: the framed line stops after metadata, with the same result.
        let meta_only: &[&[&str]] = &[&["metadata", "managedFields"]];
        let whole = decoder(meta_only).object(&input).unwrap();
        let line = [&br#"{"type":"ADDED","object":"#[..], &input, b"}"].concat();
        let ScannedEvent::Added(framed) = decoder(meta_only).event(&line).unwrap() else { panic!("not ADDED") };
        prop_assert_eq!(&framed.bytes, &whole.bytes);
        prop_assert_eq!(&framed.meta, &whole.meta);
    }

    /// Arbitrary bytes and mutated objects give an error or an object, never a panic; what
    /// is accepted is kept as valid UTF-8.
    #[test]
    fn no_input_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), cut in 0usize..400, byte in any::<u8>()) {
        let mut d = decoder(&[&["metadata", "managedFields"]]);
        let _ = d.object(&bytes);
        let _ = d.event(&bytes);
        let _ = d.list(&bytes, |_| {});
        let mut pod = br#"{"type":"ADDED","object":{"metadata":{"name":"a","labels":{"x":"y"},"managedFields":[{"m":"n"}]},"spec":{"c":[1,2,{"d":null}]}}}"#.to_vec();
        let at = cut % pod.len();
        pod[at] = byte;
        if let Ok(ScannedEvent::Added(o)) = d.event(&pod) {
            prop_assert!(std::str::from_utf8(&o.bytes[o.meta.name.range()]).is_ok());
        }
        pod.truncate(at);
        let _ = d.event(&pod);
    }
}
