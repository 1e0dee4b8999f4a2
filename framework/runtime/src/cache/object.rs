//! How the informer keeps an object: its JSON bytes (without the dropped fields) and where in
//! them the metadata the cache needs lies. Nothing else stays: the typed object is decoded from
//! the bytes when someone reads it, and is not kept by the cache afterwards (listers share
//! recently decoded objects through a small bounded set, see [`Lister`](super::Lister)).
//!
//! The trade-off, measured with `krust-bench informers` against kube-rs (which decodes every
//! event into its typed struct and keeps that): a watch event costs one structural scan and one
//! copy of its bytes instead of building a ~2.4 KB struct with ~115 allocations, and a cached
//! 3.3 KB Pod costs ~3.6 KB of RSS (~2.8 KB without managedFields) instead of ~24 KB, however
//! often it is read. The price is a decode on each typed read that misses the
//! recently-decoded set (a 3.3 KB Pod: ~30 µs on the benchmark machine, where a hit is ~0.2 µs
//! and kube-rs' `Store::get` ~0.4 µs).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use k8s_openapi::api::core::v1::Pod;
//! use krust_runtime::cache::{Cached, FieldPath};
//!
//! let raw = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1","namespace":"shop",
//!   "resourceVersion":"7","labels":{"app":"web"},"managedFields":[{"manager":"kubectl"}]},
//!   "spec":{"containers":[{"name":"c","image":"nginx"}]}}"#;
//! let cached = Cached::<Pod>::from_json(raw)?;
//! // What the cache keys and indexes by is read without decoding the Pod.
//! assert_eq!((cached.namespace(), cached.name(), cached.resource_version()), ("shop", "web-1", "7"));
//! assert_eq!(cached.labels().get("app").as_deref(), Some("web"));
//! // Fields the operator never reads can be left out of the cache (managedFields is by default).
//! let smaller = cached.without(&[FieldPath::managed_fields()]);
//! assert!(smaller.cached_size() < cached.cached_size());
//! // A typed read decodes the bytes.
//! let pod: Pod = smaller.decode()?;
//! assert_eq!(pod.spec.unwrap().containers[0].image.as_deref(), Some("nginx"));
//! # Ok(()) }
//! ```

use std::{borrow::Cow, collections::BTreeMap, marker::PhantomData, sync::Arc};

use bytes::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube_core::{Expression, Selector};
use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use serde_json::value::RawValue;

use super::{
    scan::{
        Decoder, DropTree, ESCAPED_NAME, ESCAPED_NAMESPACE, ESCAPED_RESOURCE_VERSION, ESCAPED_UID, FieldPath,
        MetaSpans, ScannedObject, Span,
    },
    store::CacheObject,
};

/// Unescaped copies of string fields that the server sent with JSON escapes (rare).
#[derive(Debug, Default)]
struct Unescaped {
    name: String,
    namespace: String,
    uid: String,
    resource_version: String,
}

/// One cached object: its JSON bytes and where its metadata lies in them.
pub struct Cached<K> {
    raw: Bytes,
    meta: MetaSpans,
    unescaped: Option<Box<Unescaped>>,
    _type: PhantomData<fn() -> K>,
}

impl<K> Clone for Cached<K> {
    fn clone(&self) -> Self {
        Cached {
            raw: self.raw.clone(),
            meta: self.meta.clone(),
            unescaped: self.unescaped.as_ref().map(|u| {
                Box::new(Unescaped {
                    name: u.name.clone(),
                    namespace: u.namespace.clone(),
                    uid: u.uid.clone(),
                    resource_version: u.resource_version.clone(),
                })
            }),
            _type: PhantomData,
        }
    }
}

impl<K> std::fmt::Debug for Cached<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("namespace", &self.namespace_str())
            .field("name", &self.name_str())
            .field("resource_version", &self.resource_version_str())
            .field("bytes", &self.raw.len())
            .finish()
    }
}

fn unescape_span(bytes: &[u8], span: Span) -> String {
    let mut quoted = Vec::with_capacity(span.range().len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(bytes.get(span.range()).unwrap_or_default());
    quoted.push(b'"');
    serde_json::from_slice(&quoted).unwrap_or_default()
}

impl<K> Cached<K> {
    /// From a scan: the kept bytes and their metadata.
    pub(crate) fn from_scanned(scanned: ScannedObject) -> Self {
        let ScannedObject { bytes, meta } = scanned;
        let unescaped = (meta.escaped != 0).then(|| {
            let field = |bit: u8, span: Span| {
                if meta.escaped & bit != 0 { unescape_span(&bytes, span) } else { String::new() }
            };
            Box::new(Unescaped {
                name: field(ESCAPED_NAME, meta.name),
                namespace: field(ESCAPED_NAMESPACE, meta.namespace),
                uid: field(ESCAPED_UID, meta.uid),
                resource_version: field(ESCAPED_RESOURCE_VERSION, meta.resource_version),
            })
        });
        Cached { raw: Bytes::from(bytes), meta, unescaped, _type: PhantomData }
    }

    /// Scans an object's JSON: its bytes are kept (copied once), its metadata located. Errors
    /// when the bytes are not a JSON object or its metadata has the wrong shape.
    pub fn from_json(raw: &[u8]) -> Result<Self, serde_json::Error> {
        Decoder::default().object(raw).map(Self::from_scanned).map_err(|e| e.into_json())
    }

    /// This object without the members at `paths` (e.g. [`FieldPath::managed_fields`]); the
    /// bytes are scanned and copied once. The informer drops fields while it decodes events
    /// ([`InformerOptions::drop_fields`](super::InformerOptions)); this is for objects from
    /// elsewhere.
    pub fn without(&self, paths: &[FieldPath]) -> Self {
        let mut decoder = Decoder::new(Arc::new(DropTree::new(paths)));
        match decoder.object(&self.raw) {
            Ok(scanned) => Self::from_scanned(scanned),
            Err(_) => self.clone(),
        }
    }

    fn str_at(&self, span: Span) -> &str {
        // The bytes were checked to be UTF-8 when scanned, and spans start and end at quotes.
        self.raw.get(span.range()).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or("")
    }

    fn string_field(&self, bit: u8, span: Span, pick: fn(&Unescaped) -> &str) -> &str {
        match &self.unescaped {
            Some(u) if self.meta.escaped & bit != 0 => pick(u),
            _ => self.str_at(span),
        }
    }

    fn name_str(&self) -> &str {
        self.string_field(ESCAPED_NAME, self.meta.name, |u| &u.name)
    }

    fn namespace_str(&self) -> &str {
        self.string_field(ESCAPED_NAMESPACE, self.meta.namespace, |u| &u.namespace)
    }

    fn resource_version_str(&self) -> &str {
        self.string_field(ESCAPED_RESOURCE_VERSION, self.meta.resource_version, |u| &u.resource_version)
    }

    fn span_bytes(&self, span: Span) -> &[u8] {
        self.raw.get(span.range()).unwrap_or_default()
    }

    /// The size of what the cache holds for this object, in bytes (JSON and header).
    pub fn cached_size(&self) -> usize {
        self.raw.len()
            + std::mem::size_of::<Self>()
            + self.unescaped.as_ref().map_or(0, |u| {
                std::mem::size_of::<Unescaped>()
                    + u.name.len()
                    + u.namespace.len()
                    + u.uid.len()
                    + u.resource_version.len()
            })
    }
}

impl<K: DeserializeOwned> Cached<K> {
    /// Decodes the typed object from the bytes. Each call decodes (about 10 µs for a 3 KB Pod);
    /// listers share what they decoded recently, so read through a [`Lister`](super::Lister)
    /// where you can.
    pub fn decode(&self) -> Result<K, serde_json::Error> {
        match std::str::from_utf8(&self.raw) {
            Ok(text) => serde_json::from_str(text),
            Err(_) => serde_json::from_slice(&self.raw),
        }
    }
}

/// A view of an object's `metadata.labels`, read from the cached bytes.
#[derive(Clone, Copy)]
pub struct Labels<'a> {
    json: &'a [u8],
}

impl std::fmt::Debug for Labels<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a> Labels<'a> {
    /// Every label, in the order the server sent them.
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)> + 'a {
        StringPairs::new(self.json)
    }

    /// The value of label `key`.
    pub fn get(&self, key: &str) -> Option<Cow<'a, str>> {
        self.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The labels as a map.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    /// Whether these labels are the same as `other`'s (the same pairs, in any order).
    pub fn same_as(&self, other: &Labels<'_>) -> bool {
        self.json == other.json || self.to_map() == other.to_map()
    }

    /// Whether the labels satisfy `selector` (kube-core's `SelectorExt::matches`, without
    /// building a map).
    pub fn matches(&self, selector: &Selector) -> bool {
        if selector.selects_all() {
            return true;
        }
        // kube-core's Selector only gives its expressions by value.
        let expressions: Vec<Expression> = selector.clone().into_iter().collect();
        self.matches_all(&expressions)
    }

    /// Whether the labels satisfy every expression.
    pub fn matches_all(&self, expressions: &[Expression]) -> bool {
        expressions.iter().all(|e| match e {
            Expression::In(key, values) => self.get(key).is_some_and(|v| values.contains(v.as_ref())),
            Expression::NotIn(key, values) => self.get(key).is_none_or(|v| !values.contains(v.as_ref())),
            Expression::Equal(key, value) => self.get(key).is_some_and(|v| v == value.as_str()),
            Expression::NotEqual(key, value) => self.get(key).is_none_or(|v| v != value.as_str()),
            Expression::Exists(key) => self.get(key).is_some(),
            Expression::DoesNotExist(key) => self.get(key).is_none(),
        })
    }
}

/// The string members of a JSON object of strings (`{"k":"v",...}`), unescaped where needed.
/// Members whose value is not a string are skipped; a malformed object ends the iteration.
struct StringPairs<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> StringPairs<'a> {
    fn new(json: &'a [u8]) -> Self {
        // Past the opening brace (an empty or absent span yields nothing).
        let i = json.iter().position(|c| *c == b'{').map_or(json.len(), |p| p + 1);
        StringPairs { b: json, i }
    }

    fn string(&mut self) -> Option<Cow<'a, str>> {
        let b = self.b;
        let start = self.i;
        if b.get(start) != Some(&b'"') {
            return None;
        }
        let mut j = start + 1;
        let mut escaped = false;
        loop {
            match b.get(j)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    j += 2;
                }
                _ => j += 1,
            }
        }
        self.i = j + 1;
        if escaped {
            serde_json::from_slice::<String>(&b[start..=j]).ok().map(Cow::Owned)
        } else {
            std::str::from_utf8(&b[start + 1..j]).ok().map(Cow::Borrowed)
        }
    }

    fn skip_ws(&mut self) {
        while self.b.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
}

impl<'a> Iterator for StringPairs<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.skip_ws();
            if self.b.get(self.i) == Some(&b',') {
                self.i += 1;
                self.skip_ws();
            }
            let key = self.string()?;
            self.skip_ws();
            if self.b.get(self.i) != Some(&b':') {
                self.i = self.b.len();
                return None;
            }
            self.i += 1;
            self.skip_ws();
            match self.string() {
                Some(value) => return Some((key, value)),
                None => {
                    // Not a string value (labels never are): skip it.
                    let rest = self.b.get(self.i..).unwrap_or_default();
                    let end = rest.iter().position(|c| matches!(c, b',' | b'}')).unwrap_or(rest.len());
                    if rest.get(end) != Some(&b',') {
                        self.i = self.b.len();
                        return None;
                    }
                    self.i += end;
                }
            }
        }
    }
}

/// What every cached object offers without its type: its metadata, read from the bytes.
/// Predicates, index functions and event mappers work on this.
pub trait ObjectView: Send + Sync {
    /// The object's JSON.
    fn raw(&self) -> &Bytes;
    /// `metadata.name`.
    fn name(&self) -> &str;
    /// `metadata.namespace` (empty when cluster-scoped).
    fn namespace(&self) -> &str;
    /// `metadata.uid`.
    fn uid(&self) -> &str;
    /// `metadata.resourceVersion`.
    fn resource_version(&self) -> &str;
    /// `metadata.generation`.
    fn generation(&self) -> Option<i64>;
    /// Whether `metadata.deletionTimestamp` is set.
    fn is_deleting(&self) -> bool;
    /// `metadata.labels`.
    fn labels(&self) -> Labels<'_>;
    /// `metadata.annotations` (empty when absent or unreadable).
    fn annotations(&self) -> BTreeMap<String, String>;
    /// `metadata.ownerReferences` (empty when absent or unreadable).
    fn owner_references(&self) -> Vec<OwnerReference>;
    /// `metadata.finalizers` (empty when absent or unreadable).
    fn finalizers(&self) -> Vec<String>;
    /// The store key: `namespace/name`, or `name` when cluster-scoped.
    fn key(&self) -> String {
        match self.namespace() {
            "" => self.name().to_string(),
            ns => format!("{ns}/{}", self.name()),
        }
    }
}

impl<K> Cached<K> {
    /// The object's JSON.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }
    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.name_str()
    }
    /// `metadata.namespace` (empty when cluster-scoped).
    pub fn namespace(&self) -> &str {
        self.namespace_str()
    }
    /// `metadata.uid`.
    pub fn uid(&self) -> &str {
        self.string_field(ESCAPED_UID, self.meta.uid, |u| &u.uid)
    }
    /// `metadata.resourceVersion`.
    pub fn resource_version(&self) -> &str {
        self.resource_version_str()
    }
    /// `metadata.generation`.
    pub fn generation(&self) -> Option<i64> {
        self.meta.generation
    }
    /// Whether `metadata.deletionTimestamp` is set.
    pub fn is_deleting(&self) -> bool {
        self.meta.deleting
    }
    /// `metadata.labels`.
    pub fn labels(&self) -> Labels<'_> {
        Labels { json: self.span_bytes(self.meta.labels) }
    }
    /// `metadata.annotations` (empty when absent or unreadable).
    pub fn annotations(&self) -> BTreeMap<String, String> {
        StringPairs::new(self.span_bytes(self.meta.annotations))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
    /// `metadata.ownerReferences` (empty when absent or unreadable).
    pub fn owner_references(&self) -> Vec<OwnerReference> {
        let span = self.meta.owner_references;
        if span.is_empty() {
            return Vec::new();
        }
        serde_json::from_slice(self.span_bytes(span)).unwrap_or_default()
    }
    /// `metadata.finalizers` (empty when absent or unreadable).
    pub fn finalizers(&self) -> Vec<String> {
        let span = self.meta.finalizers;
        if span.is_empty() {
            return Vec::new();
        }
        serde_json::from_slice(self.span_bytes(span)).unwrap_or_default()
    }
    /// The store key: `namespace/name`, or `name` when cluster-scoped.
    pub fn key(&self) -> String {
        match self.namespace() {
            "" => self.name().to_string(),
            ns => format!("{ns}/{}", self.name()),
        }
    }
}

impl<K: Send + Sync> ObjectView for Cached<K> {
    fn raw(&self) -> &Bytes {
        Cached::raw(self)
    }
    fn name(&self) -> &str {
        Cached::name(self)
    }
    fn namespace(&self) -> &str {
        Cached::namespace(self)
    }
    fn uid(&self) -> &str {
        Cached::uid(self)
    }
    fn resource_version(&self) -> &str {
        Cached::resource_version(self)
    }
    fn generation(&self) -> Option<i64> {
        Cached::generation(self)
    }
    fn is_deleting(&self) -> bool {
        Cached::is_deleting(self)
    }
    fn labels(&self) -> Labels<'_> {
        Cached::labels(self)
    }
    fn annotations(&self) -> BTreeMap<String, String> {
        Cached::annotations(self)
    }
    fn owner_references(&self) -> Vec<OwnerReference> {
        Cached::owner_references(self)
    }
    fn finalizers(&self) -> Vec<String> {
        Cached::finalizers(self)
    }
}

impl<K: Send + Sync + 'static> CacheObject for Cached<K> {
    fn namespace(&self) -> Option<&str> {
        Some(self.namespace_str()).filter(|n| !n.is_empty())
    }
    fn name(&self) -> &str {
        self.name_str()
    }
    fn namespace_and_name(&self) -> (&[u8], &[u8]) {
        // Straight from the spans: no UTF-8 check on every hash and comparison.
        match &self.unescaped {
            Some(u) => (
                if self.meta.escaped & ESCAPED_NAMESPACE != 0 {
                    u.namespace.as_bytes()
                } else {
                    self.span_bytes(self.meta.namespace)
                },
                if self.meta.escaped & ESCAPED_NAME != 0 {
                    u.name.as_bytes()
                } else {
                    self.span_bytes(self.meta.name)
                },
            ),
            None => (self.span_bytes(self.meta.namespace), self.span_bytes(self.meta.name)),
        }
    }
}

impl<'de, K> Deserialize<'de> for Cached<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Box::deserialize(d)?;
        Cached::from_json(raw.get().as_bytes()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_metadata_from_the_bytes() {
        let json = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"ns","uid":"u","resourceVersion":"7","generation":2,"labels":{"x":"y","tier":"web"},"annotations":{"n":"1"},"finalizers":["f"],"ownerReferences":[{"apiVersion":"v1","kind":"K","name":"o","uid":"u","controller":true}],"deletionTimestamp":"2026-01-01T00:00:00Z","managedFields":[{"manager":"m"}]},"data":{"k":"v"}}"#;
        let cached: Cached<k8s_openapi::api::core::v1::ConfigMap> = serde_json::from_slice(json).unwrap();
        assert_eq!(cached.key(), "ns/a");
        assert_eq!(cached.namespace(), "ns");
        assert_eq!(cached.uid(), "u");
        assert_eq!(cached.resource_version(), "7");
        assert_eq!(cached.generation(), Some(2));
        assert!(cached.is_deleting());
        assert_eq!(cached.labels().get("x").as_deref(), Some("y"));
        assert_eq!(cached.labels().to_map().len(), 2);
        assert_eq!(cached.annotations()["n"], "1");
        assert_eq!(cached.finalizers(), ["f"]);
        assert_eq!(cached.owner_references()[0].name, "o");
        assert_eq!(cached.raw().as_ref(), json.as_slice());
        let typed = cached.decode().unwrap();
        assert_eq!(typed.data.as_ref().unwrap()["k"], "v");

        let stripped = cached.without(&[FieldPath::managed_fields()]);
        let v: serde_json::Value = serde_json::from_slice(stripped.raw()).unwrap();
        assert!(v["metadata"].get("managedFields").is_none());
        assert_eq!(v["data"]["k"], "v");
        assert_eq!(stripped.resource_version(), "7");
        assert_eq!(stripped.labels().get("tier").as_deref(), Some("web"));
        assert!(stripped.raw().len() < cached.raw().len());
    }

    #[test]
    fn objects_without_metadata_or_with_escapes() {
        let none: Cached<serde_json::Value> = Cached::from_json(br#"{"kind":"X"}"#).unwrap();
        assert_eq!((none.name(), none.namespace(), none.generation()), ("", "", None));
        assert!(
            none.labels().is_empty() && none.annotations().is_empty() && none.owner_references().is_empty()
        );
        let escaped: Cached<serde_json::Value> = Cached::from_json(
            br#"{"metadata":{"name":"a\u0062","namespace":"n\"s","labels":{"k\u0065y":"v\\1"}}}"#,
        )
        .unwrap();
        assert_eq!(escaped.name(), "ab");
        assert_eq!(escaped.namespace(), "n\"s");
        assert_eq!(escaped.labels().get("key").as_deref(), Some("v\\1"));
        assert!(Cached::<serde_json::Value>::from_json(br#"{"metadata": 5}"#).is_err());
        assert!(Cached::<serde_json::Value>::from_json(b"[1]").is_err());
    }

    #[test]
    fn labels_match_selectors_like_kube_core() {
        use kube_core::SelectorExt;
        let cached: Cached<serde_json::Value> =
            Cached::from_json(br#"{"metadata":{"name":"a","labels":{"app":"web","tier":"front"}}}"#).unwrap();
        let map = cached.labels().to_map();
        for selector in [
            "app=web",
            "app!=web",
            "app in (web,db)",
            "app notin (web)",
            "tier",
            "!tier",
            "x",
            "!x",
            "app=web,tier=back",
            "",
        ] {
            let parsed = crate::controller::predicate::parse_selector(selector).unwrap();
            assert_eq!(cached.labels().matches(&parsed), parsed.matches(&map), "{selector}");
        }
    }

    #[test]
    fn decoding_a_wrong_shape_is_an_error() {
        let cached: Cached<k8s_openapi::api::core::v1::ConfigMap> =
            Cached::from_json(br#"{"metadata":{"name":"a"},"data":{"k":5}}"#).unwrap();
        assert!(cached.decode().is_err());
    }
}
