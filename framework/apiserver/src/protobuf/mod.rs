//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), decoded to JSON
//! for the types kubectl's generator subcommands send that way (`kubectl create namespace`,
//! `configmap`, `secret`, `serviceaccount`, and `create token` and `auth can-i`/`whoami`'s
//! TokenRequest and reviews). The envelope is `k8s\0` followed by a
//! `runtime.Unknown` (typeMeta, raw); `raw` is the object's message, read here with a small
//! table of field numbers from k8s.io/api's generated.proto. Other kinds are refused with 415.

use base64::Engine;
use serde_json::{Map, Value, json};

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    Time,
    MapStr,
    MapBytes,
    Msg(&'static [Field]),
}

#[derive(Clone, Copy)]
struct Field {
    num: u64,
    name: &'static str,
    kind: Kind,
    repeated: bool,
}

const fn f(num: u64, name: &'static str, kind: Kind) -> Field {
    Field { num, name, kind, repeated: false }
}
const fn r(num: u64, name: &'static str, kind: Kind) -> Field {
    Field { num, name, kind, repeated: true }
}

const OWNER_REFERENCE: &[Field] = &[
    f(1, "kind", Kind::Str),
    f(3, "name", Kind::Str),
    f(4, "uid", Kind::Str),
    f(5, "apiVersion", Kind::Str),
    f(6, "controller", Kind::Bool),
    f(7, "blockOwnerDeletion", Kind::Bool),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Kind::Str),
    f(2, "generateName", Kind::Str),
    f(3, "namespace", Kind::Str),
    f(5, "uid", Kind::Str),
    f(6, "resourceVersion", Kind::Str),
    f(7, "generation", Kind::Int),
    f(8, "creationTimestamp", Kind::Time),
    f(11, "labels", Kind::MapStr),
    f(12, "annotations", Kind::MapStr),
    r(13, "ownerReferences", Kind::Msg(OWNER_REFERENCE)),
    r(14, "finalizers", Kind::Str),
];

const NAMESPACE: &[Field] =
    &[f(1, "metadata", Kind::Msg(OBJECT_META)), f(2, "spec", Kind::Msg(&[r(1, "finalizers", Kind::Str)]))];

const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Kind::Msg(OBJECT_META)),
    f(2, "data", Kind::MapStr),
    f(3, "binaryData", Kind::MapBytes),
    f(4, "immutable", Kind::Bool),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Kind::Msg(OBJECT_META)),
    f(2, "data", Kind::MapBytes),
    f(3, "type", Kind::Str),
    f(4, "immutable", Kind::Bool),
    f(5, "stringData", Kind::MapStr),
];

const SERVICE_ACCOUNT: &[Field] = &[
    f(1, "metadata", Kind::Msg(OBJECT_META)),
    r(3, "imagePullSecrets", Kind::Msg(&[f(1, "name", Kind::Str)])),
    f(4, "automountServiceAccountToken", Kind::Bool),
];

const RESOURCE_ATTRIBUTES: &[Field] = &[
    f(1, "namespace", Kind::Str),
    f(2, "verb", Kind::Str),
    f(3, "group", Kind::Str),
    f(4, "version", Kind::Str),
    f(5, "resource", Kind::Str),
    f(6, "subresource", Kind::Str),
    f(7, "name", Kind::Str),
];

const NON_RESOURCE_ATTRIBUTES: &[Field] = &[f(1, "path", Kind::Str), f(2, "verb", Kind::Str)];

const SUBJECT_ACCESS_REVIEW: &[Field] = &[
    f(1, "metadata", Kind::Msg(OBJECT_META)),
    f(
        2,
        "spec",
        Kind::Msg(&[
            f(1, "resourceAttributes", Kind::Msg(RESOURCE_ATTRIBUTES)),
            f(2, "nonResourceAttributes", Kind::Msg(NON_RESOURCE_ATTRIBUTES)),
            f(3, "user", Kind::Str),
            r(4, "groups", Kind::Str),
            f(6, "uid", Kind::Str),
        ]),
    ),
];

const TOKEN_REQUEST: &[Field] = &[
    f(1, "metadata", Kind::Msg(OBJECT_META)),
    f(2, "spec", Kind::Msg(&[r(1, "audiences", Kind::Str), f(4, "expirationSeconds", Kind::Int)])),
];

const TOKEN_REVIEW: &[Field] = &[
    f(1, "metadata", Kind::Msg(OBJECT_META)),
    f(2, "spec", Kind::Msg(&[f(1, "token", Kind::Str), r(2, "audiences", Kind::Str)])),
];

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.buf.split_first().ok_or("truncated varint")?;
            self.buf = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long".into())
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
        if len > self.buf.len() {
            return Err("truncated field".into());
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    fn skip(&mut self, wire: u64) -> Result<(), String> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.take(8),
            2 => self.bytes().map(drop),
            5 => self.take(4),
            other => Err(format!("unsupported wire type {other}")),
        }
    }

    fn take(&mut self, n: usize) -> Result<(), String> {
        if n > self.buf.len() {
            return Err("truncated field".into());
        }
        self.buf = &self.buf[n..];
        Ok(())
    }
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "a string field is not UTF-8".to_string())
}

fn map_entry(bytes: &[u8], binary: bool) -> Result<(String, Value), String> {
    let mut r = Reader { buf: bytes };
    let (mut key, mut value) = (String::new(), Value::String(String::new()));
    while !r.buf.is_empty() {
        let tag = r.varint()?;
        match (tag >> 3, tag & 7) {
            (1, 2) => key = text(r.bytes()?)?,
            (2, 2) => {
                let b = r.bytes()?;
                value = if binary {
                    json!(base64::engine::general_purpose::STANDARD.encode(b))
                } else {
                    json!(text(b)?)
                };
            }
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok((key, value))
}

fn time(bytes: &[u8]) -> Result<Value, String> {
    let mut r = Reader { buf: bytes };
    let mut seconds = 0i64;
    while !r.buf.is_empty() {
        let tag = r.varint()?;
        match (tag >> 3, tag & 7) {
            (1, 0) => seconds = r.varint()? as i64,
            (_, wire) => r.skip(wire)?,
        }
    }
    let ts = jiff::Timestamp::from_second(seconds).map_err(|e| e.to_string())?;
    Ok(json!(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

fn message(schema: &[Field], bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let mut r = Reader { buf: bytes };
    while !r.buf.is_empty() {
        let tag = r.varint()?;
        let (num, wire) = (tag >> 3, tag & 7);
        let Some(field) = schema.iter().find(|f| f.num == num) else {
            r.skip(wire)?;
            continue;
        };
        let value = match (field.kind, wire) {
            (Kind::Str, 2) => json!(text(r.bytes()?)?),
            (Kind::Int, 0) => json!(r.varint()? as i64),
            (Kind::Bool, 0) => json!(r.varint()? != 0),
            (Kind::Time, 2) => time(r.bytes()?)?,
            (Kind::Msg(s), 2) => Value::Object(message(s, r.bytes()?)?),
            (Kind::MapStr | Kind::MapBytes, 2) => {
                let (k, v) = map_entry(r.bytes()?, matches!(field.kind, Kind::MapBytes))?;
                let entry = out.entry(field.name).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = entry {
                    m.insert(k, v);
                }
                continue;
            }
            (_, wire) => {
                r.skip(wire)?;
                continue;
            }
        };
        if field.repeated {
            let entry = out.entry(field.name).or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = entry {
                a.push(value);
            }
        } else {
            out.insert(field.name.to_string(), value);
        }
    }
    Ok(out)
}

/// Decodes a protobuf body to the JSON object it stands for. `Err(None)` for a kind this
/// server does not decode, `Err(Some(msg))` for a malformed body.
pub(crate) fn decode(body: &[u8]) -> Result<Value, Option<String>> {
    let inner =
        body.strip_prefix(b"k8s\0").ok_or_else(|| Some("missing the k8s protobuf prefix".to_string()))?;
    let mut r = Reader { buf: inner };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while !r.buf.is_empty() {
        let tag = r.varint().map_err(Some)?;
        match (tag >> 3, tag & 7) {
            (1, 2) => {
                let meta = message(
                    &[f(1, "apiVersion", Kind::Str), f(2, "kind", Kind::Str)],
                    r.bytes().map_err(Some)?,
                )
                .map_err(Some)?;
                api_version = meta.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string();
                kind = meta.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
            }
            (2, 2) => raw = r.bytes().map_err(Some)?,
            (_, wire) => r.skip(wire).map_err(Some)?,
        }
    }
    let schema = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("authentication.k8s.io/v1", "TokenRequest") => TOKEN_REQUEST,
        ("authentication.k8s.io/v1", "TokenReview") => TOKEN_REVIEW,
        ("authentication.k8s.io/v1", "SelfSubjectReview") => &[f(1, "metadata", Kind::Msg(OBJECT_META))],
        (
            "authorization.k8s.io/v1",
            "SubjectAccessReview" | "SelfSubjectAccessReview" | "LocalSubjectAccessReview",
        ) => SUBJECT_ACCESS_REVIEW,
        _ => return Err(None),
    };
    let mut object = message(schema, raw).map_err(Some)?;
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(num: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![((num << 3) | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decodes_a_config_map_envelope() {
        let meta =
            [field(1, b"cm"), field(11, &[field(1, b"app").as_slice(), &field(2, b"web")].concat())].concat();
        let raw =
            [field(1, &meta), field(2, &[field(1, b"k").as_slice(), &field(2, b"v")].concat())].concat();
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let mut body = b"k8s\0".to_vec();
        body.extend(field(1, &type_meta));
        body.extend(field(2, &raw));
        let obj = decode(&body).unwrap();
        assert_eq!(
            obj,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": {"app": "web"}}, "data": {"k": "v"}})
        );
        assert!(decode(b"k8s\0\x0a\x05").is_err(), "truncated");
        assert!(decode(b"nope").is_err());
    }
}
