//! How the informer keeps an object: its JSON bytes as the server sent them, the few metadata
//! fields the cache needs (key, labels, resourceVersion, owners), and the typed object decoded
//! on first read and then shared.
//!
//! The trade-off, measured against kube-rs (which decodes every event into its typed struct and
//! keeps that): decoding a watch event costs one validating scan of its bytes plus a scan for
//! the metadata, instead of building a ~2.4 KB struct with ~115 allocations; a cached Pod costs
//! about its JSON size plus a small header instead of ~17 KB of structs. The price is paid on
//! the first typed read of each version of an object (a full decode, then shared through an
//! `Arc`), so a controller that reads every object on every event pays what kube-rs pays, once
//! per version.

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
};

use bytes::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use serde_json::value::RawValue;

use super::store::CacheObject;

/// The metadata the cache decodes eagerly.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CacheMeta {
    /// `metadata.name`.
    #[serde(default)]
    pub name: String,
    /// `metadata.namespace` (empty when cluster-scoped).
    #[serde(default)]
    pub namespace: String,
    /// `metadata.uid`.
    #[serde(default)]
    pub uid: String,
    /// `metadata.resourceVersion`.
    #[serde(default)]
    pub resource_version: String,
    /// `metadata.generation`.
    #[serde(default)]
    pub generation: Option<i64>,
    /// `metadata.labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Whether `metadata.deletionTimestamp` is set.
    #[serde(default, rename = "deletionTimestamp", deserialize_with = "present")]
    pub deleting: bool,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<serde::de::IgnoredAny>::deserialize(d)?.is_some())
}

#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    metadata: CacheMeta,
}

/// One cached object: JSON bytes, eager metadata, lazily decoded typed value.
pub struct Cached<K> {
    raw: Bytes,
    meta: CacheMeta,
    typed: OnceLock<Arc<K>>,
}

impl<K> Clone for Cached<K> {
    fn clone(&self) -> Self {
        let typed = OnceLock::new();
        if let Some(t) = self.typed.get() {
            let _ = typed.set(t.clone());
        }
        Cached { raw: self.raw.clone(), meta: self.meta.clone(), typed }
    }
}

impl<K> std::fmt::Debug for Cached<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached").field("meta", &self.meta).field("bytes", &self.raw.len()).finish()
    }
}

impl<K> Cached<K> {
    /// Parses the metadata of an object's JSON. Only the `metadata` value is read: it is
    /// found by a scan of the top-level keys (it comes third in Kubernetes objects), so the
    /// rest of the object is not parsed a second time. The bytes must be valid JSON: the list
    /// and watch decoders (`Deserialize` of `Cached`) have validated them already.
    pub fn from_json(raw: Bytes) -> Result<Self, serde_json::Error> {
        let meta = match metadata_start(&raw) {
            Some(start) => {
                let mut de = serde_json::Deserializer::from_slice(&raw[start..]);
                CacheMeta::deserialize(&mut de)?
            }
            // No top-level metadata found by the scan: parse it all (and report bad JSON).
            None => serde_json::from_slice::<Head>(&raw)?.metadata,
        };
        Ok(Cached { raw, meta, typed: OnceLock::new() })
    }

    /// The eagerly decoded metadata.
    pub fn meta(&self) -> &CacheMeta {
        &self.meta
    }

    /// The object's JSON as the server sent it.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// This object without `metadata.managedFields` (often a fifth of a Pod's bytes, and rarely
    /// needed by controllers): the bytes are rewritten once, without decoding the rest.
    pub fn without_managed_fields(self) -> Self {
        match strip_managed_fields(&self.raw) {
            Some(raw) => Cached { raw, meta: self.meta, typed: OnceLock::new() },
            None => self,
        }
    }

    /// Whether the typed value has been decoded.
    pub fn is_decoded(&self) -> bool {
        self.typed.get().is_some()
    }
}

impl<K: DeserializeOwned> Cached<K> {
    /// The typed object, decoded on first use and shared afterwards.
    pub fn get(&self) -> Result<Arc<K>, serde_json::Error> {
        if let Some(t) = self.typed.get() {
            return Ok(t.clone());
        }
        let decoded = Arc::new(serde_json::from_slice::<K>(&self.raw)?);
        Ok(self.typed.get_or_init(|| decoded).clone())
    }
}

/// What every cached object offers without its type: the eager metadata, the bytes, and the
/// metadata fields the cache does not keep decoded (parsed from the bytes on demand). Predicates
/// and event mappers work on this.
pub trait ObjectView: Send + Sync {
    /// The eagerly decoded metadata.
    fn meta(&self) -> &CacheMeta;
    /// The object's JSON.
    fn raw(&self) -> &Bytes;

    /// `metadata.annotations`, read from the bytes (empty when absent or unreadable).
    fn annotations(&self) -> BTreeMap<String, String> {
        metadata_field::<Annotations>(self.raw()).map(|m| m.annotations).unwrap_or_default()
    }

    /// `metadata.ownerReferences`, read from the bytes (empty when absent or unreadable).
    fn owner_references(&self) -> Vec<OwnerReference> {
        metadata_field::<Owners>(self.raw()).map(|m| m.owner_references).unwrap_or_default()
    }

    /// `metadata.finalizers`, read from the bytes.
    fn finalizers(&self) -> Vec<String> {
        metadata_field::<Finalizers>(self.raw()).map(|m| m.finalizers).unwrap_or_default()
    }
}

impl<K: Send + Sync> ObjectView for Cached<K> {
    fn meta(&self) -> &CacheMeta {
        &self.meta
    }
    fn raw(&self) -> &Bytes {
        &self.raw
    }
}

#[derive(Deserialize)]
struct Annotations {
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Owners {
    #[serde(default)]
    owner_references: Vec<OwnerReference>,
}

#[derive(Deserialize)]
struct Finalizers {
    #[serde(default)]
    finalizers: Vec<String>,
}

/// Parses part of the top-level metadata of an object's JSON.
fn metadata_field<T: DeserializeOwned>(raw: &[u8]) -> Option<T> {
    let start = metadata_start(raw)?;
    let mut de = serde_json::Deserializer::from_slice(&raw[start..]);
    T::deserialize(&mut de).ok()
}

/// Where the value of the top-level `"metadata"` key starts, by a scan that tracks strings and
/// nesting only. `None` when the input is not an object or has no such key.
fn metadata_start(raw: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"\"metadata\"";
    let mut i = raw.iter().position(|b| !b.is_ascii_whitespace())?;
    if raw[i] != b'{' {
        return None;
    }
    i += 1;
    let mut depth = 1usize;
    let mut expecting_key = true;
    while i < raw.len() {
        match raw[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < raw.len() && raw[i] != b'"' {
                    i += if raw[i] == b'\\' { 2 } else { 1 };
                }
                if depth == 1 && expecting_key && raw.get(start..=i) == Some(KEY) {
                    let colon = i + 1 + raw[i + 1..].iter().position(|b| !b.is_ascii_whitespace())?;
                    if raw[colon] != b':' {
                        return None;
                    }
                    return Some(colon + 1);
                }
                expecting_key = false;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1)?,
            b',' if depth == 1 => expecting_key = true,
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Deserialize)]
struct MetaSpan<'a> {
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
}

/// The fields of a JSON object in order, values left as text.
struct Fields<'a>(Vec<(std::borrow::Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<std::borrow::Cow<'de, str>, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The object's bytes without `metadata.managedFields`, or `None` when it has none.
fn strip_managed_fields(raw: &Bytes) -> Option<Bytes> {
    let span: MetaSpan = serde_json::from_slice(raw).ok()?;
    let meta = span.metadata?.get();
    let fields: Fields = serde_json::from_str(meta).ok()?;
    if !fields.0.iter().any(|(k, _)| k == "managedFields") {
        return None;
    }
    let start = meta.as_ptr() as usize - raw.as_ptr() as usize;
    let end = start + meta.len();
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[..start]);
    out.push(b'{');
    let mut first = true;
    for (k, v) in fields.0.iter().filter(|(k, _)| k != "managedFields") {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(serde_json::to_string(k).ok()?.as_bytes());
        out.push(b':');
        out.extend_from_slice(v.get().as_bytes());
    }
    out.push(b'}');
    out.extend_from_slice(&raw[end..]);
    Some(Bytes::from(out))
}

impl<K: Send + Sync + 'static> CacheObject for Cached<K> {
    fn namespace(&self) -> Option<&str> {
        (!self.meta.namespace.is_empty()).then_some(self.meta.namespace.as_str())
    }
    fn name(&self) -> &str {
        &self.meta.name
    }
}

impl<'de, K> Deserialize<'de> for Cached<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // One copy of the object's bytes (the RawValue), kept as they are.
        let raw: Box<RawValue> = Box::deserialize(d)?;
        let text: Box<str> = raw.into();
        let bytes = Bytes::from(text.into_boxed_bytes());
        Cached::from_json(bytes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_top_level_metadata_only() {
        let tricky = br#"{"kind":"X","spec":{"metadata":{"name":"inner"}},"note":"\"metadata\":","metadata":{"name":"outer"}}"#;
        let start = metadata_start(tricky).unwrap();
        assert!(tricky[start..].starts_with(br#"{"name":"outer"}"#));
        let c: Cached<serde_json::Value> = Cached::from_json(Bytes::from_static(tricky)).unwrap();
        assert_eq!(c.meta().name, "outer");
        assert_eq!(metadata_start(b"[1,2]"), None);
        assert_eq!(metadata_start(br#"{"a":1}"#), None);
        assert!(Cached::<serde_json::Value>::from_json(Bytes::from_static(b"{\"metadata\": 5}")).is_err());
        let none: Cached<serde_json::Value> =
            Cached::from_json(Bytes::from_static(br#"{"kind":"X"}"#)).unwrap();
        assert_eq!(none.meta(), &CacheMeta::default());
    }

    #[test]
    fn reads_annotations_owners_and_finalizers_on_demand() {
        let json = br#"{"metadata":{"name":"a","annotations":{"x":"1"},"finalizers":["f"],"ownerReferences":[{"apiVersion":"v1","kind":"K","name":"o","uid":"u","controller":true}]},"spec":{"metadata":{"annotations":{"y":"2"}}}}"#;
        let cached: Cached<serde_json::Value> = serde_json::from_slice(json).unwrap();
        assert_eq!(cached.annotations()["x"], "1");
        assert_eq!(cached.annotations().len(), 1);
        assert_eq!(cached.finalizers(), ["f"]);
        let owners = cached.owner_references();
        assert_eq!((owners[0].name.as_str(), owners[0].controller), ("o", Some(true)));
        let bare: Cached<serde_json::Value> =
            serde_json::from_slice(br#"{"metadata":{"name":"b"}}"#).unwrap();
        assert!(bare.annotations().is_empty() && bare.owner_references().is_empty());
    }

    #[test]
    fn decodes_metadata_now_and_the_object_later() {
        let json = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"ns","resourceVersion":"7","labels":{"x":"y"},"deletionTimestamp":"2026-01-01T00:00:00Z","managedFields":[{"manager":"m"}]},"data":{"k":"v"}}"#;
        let cached: Cached<k8s_openapi::api::core::v1::ConfigMap> = serde_json::from_slice(json).unwrap();
        assert_eq!(cached.key(), "ns/a");
        assert_eq!(cached.meta().resource_version, "7");
        assert_eq!(cached.meta().labels["x"], "y");
        assert!(cached.meta().deleting);
        assert!(!cached.is_decoded());
        let typed = cached.get().unwrap();
        assert_eq!(typed.data.as_ref().unwrap()["k"], "v");
        assert!(Arc::ptr_eq(&typed, &cached.get().unwrap()), "decoded once, shared");
        assert_eq!(cached.raw().as_ref(), json.as_slice());

        let stripped = cached.clone().without_managed_fields();
        let v: serde_json::Value = serde_json::from_slice(stripped.raw()).unwrap();
        assert!(v["metadata"].get("managedFields").is_none());
        assert_eq!(v["metadata"]["labels"]["x"], "y");
        assert_eq!(v["data"]["k"], "v");
        assert_eq!(stripped.meta(), cached.meta());
        assert!(stripped.raw().len() < cached.raw().len());
        // Without managedFields the bytes stay as they are.
        let again = stripped.clone().without_managed_fields();
        assert_eq!(again.raw(), stripped.raw());
    }
}
