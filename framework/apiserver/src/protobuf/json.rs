//! From k8s-pb's messages to the JSON kube-apiserver would store: the scalar and container
//! rules (Go's protobuf encoder writes every non-pointer field, zero or not, and its JSON encoder
//! leaves zero `omitempty` fields out) and the messages whose JSON form is not an object of their
//! fields (times, durations, quantities, int-or-strings, raw JSON, schema unions).

use std::collections::BTreeMap;

use base64::Engine;
use k8s_pb as pb;
use serde_json::{Map, Value, json};

/// A k8s-pb value as JSON.
pub(crate) trait ToJson {
    /// The JSON value (`Null` for a value that JSON leaves out, like a zero time).
    fn to_json(&self) -> Result<Value, String>;
    /// A zero value, which an `omitempty` field leaves out of JSON.
    fn is_zero(&self) -> bool {
        false
    }
    /// An absent value (for pointer fields, where zero is a value).
    fn is_unset(&self) -> bool {
        self.is_zero()
    }
}

/// The fields of one JSON object, in the order of the message.
#[derive(Default)]
pub(crate) struct Fields(Map<String, Value>);

impl Fields {
    /// A field that JSON leaves out when zero (a Go non-pointer `omitempty` field).
    pub(crate) fn put<T: ToJson>(&mut self, name: &str, value: &T) -> Result<(), String> {
        if !value.is_zero() {
            self.insert(name, value)?;
        }
        Ok(())
    }

    /// A field kept whenever it is set, zero or not (a Go pointer or a required field).
    pub(crate) fn keep<T: ToJson>(&mut self, name: &str, value: &T) -> Result<(), String> {
        if !value.is_unset() {
            self.insert(name, value)?;
        }
        Ok(())
    }

    /// A message embedded inline in its Go type: its fields become this object's.
    pub(crate) fn inline<T: ToJson>(&mut self, value: &Option<T>) -> Result<(), String> {
        if let Some(value) = value
            && let Value::Object(fields) = value.to_json()?
        {
            self.0.extend(fields);
        }
        Ok(())
    }

    fn insert<T: ToJson>(&mut self, name: &str, value: &T) -> Result<(), String> {
        let value = value.to_json().map_err(|e| format!("{name}: {e}"))?;
        if !value.is_null() {
            self.0.insert(name.to_string(), value);
        }
        Ok(())
    }

    pub(crate) fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

impl ToJson for String {
    fn to_json(&self) -> Result<Value, String> {
        Ok(Value::String(self.clone()))
    }
    fn is_zero(&self) -> bool {
        self.is_empty()
    }
}

impl ToJson for bool {
    fn to_json(&self) -> Result<Value, String> {
        Ok(Value::Bool(*self))
    }
    fn is_zero(&self) -> bool {
        !*self
    }
}

impl ToJson for i32 {
    fn to_json(&self) -> Result<Value, String> {
        Ok(json!(*self))
    }
    fn is_zero(&self) -> bool {
        *self == 0
    }
}

impl ToJson for i64 {
    fn to_json(&self) -> Result<Value, String> {
        Ok(json!(*self))
    }
    fn is_zero(&self) -> bool {
        *self == 0
    }
}

impl ToJson for f64 {
    fn to_json(&self) -> Result<Value, String> {
        serde_json::Number::from_f64(*self)
            .map(Value::Number)
            .ok_or_else(|| format!("{self} is not a JSON number"))
    }
    fn is_zero(&self) -> bool {
        *self == 0.0
    }
}

/// `bytes` fields are base64 in JSON, as Go's `[]byte`.
impl ToJson for Vec<u8> {
    fn to_json(&self) -> Result<Value, String> {
        Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(self)))
    }
    fn is_zero(&self) -> bool {
        self.is_empty()
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Result<Value, String> {
        self.as_ref().map_or(Ok(Value::Null), ToJson::to_json)
    }
    fn is_zero(&self) -> bool {
        self.as_ref().is_none_or(ToJson::is_zero)
    }
    fn is_unset(&self) -> bool {
        self.is_none()
    }
}

impl<T: ToJson> ToJson for Box<T> {
    fn to_json(&self) -> Result<Value, String> {
        (**self).to_json()
    }
    fn is_zero(&self) -> bool {
        (**self).is_zero()
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Result<Value, String> {
        self.iter()
            .enumerate()
            .map(|(i, v)| {
                v.to_json()
                    .map(|v| if v.is_null() { json!({}) } else { v })
                    .map_err(|e| format!("[{i}]: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    }
    fn is_zero(&self) -> bool {
        self.is_empty()
    }
}

impl<T: ToJson> ToJson for BTreeMap<String, T> {
    fn to_json(&self) -> Result<Value, String> {
        self.iter()
            .map(|(k, v)| Ok((k.clone(), v.to_json().map_err(|e| format!("[{k}]: {e}"))?)))
            .collect::<Result<Map<_, _>, String>>()
            .map(Value::Object)
    }
    fn is_zero(&self) -> bool {
        self.is_empty()
    }
}

fn timestamp(seconds: i64, nanos: i32, format: &str) -> Result<Value, String> {
    if seconds == 0 && nanos == 0 {
        // Go's zero time, which metav1.Time writes as null.
        return Ok(Value::Null);
    }
    let t = jiff::Timestamp::new(seconds, nanos).map_err(|e| format!("not a valid time: {e}"))?;
    Ok(Value::String(t.strftime(format).to_string()))
}

impl ToJson for pb::apimachinery::pkg::apis::meta::v1::Time {
    fn to_json(&self) -> Result<Value, String> {
        timestamp(self.seconds.unwrap_or_default(), 0, "%Y-%m-%dT%H:%M:%SZ")
    }
    fn is_zero(&self) -> bool {
        self.seconds.unwrap_or_default() == 0
    }
}

impl ToJson for pb::apimachinery::pkg::apis::meta::v1::MicroTime {
    fn to_json(&self) -> Result<Value, String> {
        timestamp(self.seconds.unwrap_or_default(), self.nanos.unwrap_or_default(), "%Y-%m-%dT%H:%M:%S.%6fZ")
    }
    fn is_zero(&self) -> bool {
        self.seconds.unwrap_or_default() == 0 && self.nanos.unwrap_or_default() == 0
    }
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `150ms`, `0s`.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000 {
        return format!("{sign}{n}ns");
    }
    if n < 1_000_000 {
        return format!("{sign}{}µs", fraction(n, 1_000));
    }
    if n < 1_000_000_000 {
        return format!("{sign}{}ms", fraction(n, 1_000_000));
    }
    let (h, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
    let (m, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let s = fraction(rest, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, m) => format!("{sign}{m}m{s}s"),
        (h, m) => format!("{sign}{h}h{m}m{s}s"),
    }
}

/// `n / unit` with the fraction's trailing zeros dropped.
fn fraction(n: u64, unit: u64) -> String {
    let (whole, part) = (n / unit, n % unit);
    if part == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{part:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl ToJson for pb::apimachinery::pkg::apis::meta::v1::Duration {
    fn to_json(&self) -> Result<Value, String> {
        Ok(Value::String(go_duration(self.duration.unwrap_or_default())))
    }
    fn is_zero(&self) -> bool {
        self.duration.unwrap_or_default() == 0
    }
}

/// Raw JSON carried as bytes (RawExtension, apiextensions JSON, FieldsV1).
fn raw_json(raw: &Option<Vec<u8>>) -> Result<Value, String> {
    match raw.as_deref() {
        None | Some([]) => Ok(Value::Null),
        Some(bytes) => {
            serde_json::from_slice(bytes).map_err(|e| format!("raw JSON that does not parse: {e}"))
        }
    }
}

impl ToJson for pb::apimachinery::pkg::runtime::RawExtension {
    fn to_json(&self) -> Result<Value, String> {
        raw_json(&self.raw)
    }
}

impl ToJson for pb::apiextensions_apiserver::pkg::apis::apiextensions::v1::Json {
    fn to_json(&self) -> Result<Value, String> {
        raw_json(&self.raw)
    }
}

impl ToJson for pb::apimachinery::pkg::apis::meta::v1::FieldsV1 {
    fn to_json(&self) -> Result<Value, String> {
        raw_json(&self.raw)
    }
}

impl ToJson for pb::apimachinery::pkg::util::intstr::IntOrString {
    fn to_json(&self) -> Result<Value, String> {
        Ok(if self.r#type == Some(1) {
            Value::String(self.str_val.clone().unwrap_or_default())
        } else {
            json!(self.int_val.unwrap_or_default())
        })
    }
}

impl ToJson for pb::apimachinery::pkg::api::resource::Quantity {
    fn to_json(&self) -> Result<Value, String> {
        Ok(Value::String(self.string.clone().unwrap_or_default()))
    }
}

impl ToJson for pb::apimachinery::pkg::apis::meta::v1::Verbs {
    fn to_json(&self) -> Result<Value, String> {
        self.items.to_json()
    }
}

impl ToJson for pb::api::authentication::v1::ExtraValue {
    fn to_json(&self) -> Result<Value, String> {
        self.items.to_json()
    }
}

impl ToJson for pb::api::authorization::v1::ExtraValue {
    fn to_json(&self) -> Result<Value, String> {
        self.items.to_json()
    }
}

mod schema {
    use super::*;
    use pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;

    impl ToJson for ext::JsonSchemaPropsOrArray {
        fn to_json(&self) -> Result<Value, String> {
            match &self.schema {
                Some(schema) => schema.to_json(),
                None => self.j_son_schemas.to_json(),
            }
        }
    }

    impl ToJson for ext::JsonSchemaPropsOrBool {
        fn to_json(&self) -> Result<Value, String> {
            match &self.schema {
                Some(schema) => schema.to_json(),
                None => Ok(Value::Bool(self.allows.unwrap_or_default())),
            }
        }
    }

    impl ToJson for ext::JsonSchemaPropsOrStringArray {
        fn to_json(&self) -> Result<Value, String> {
            match &self.schema {
                Some(schema) => schema.to_json(),
                None => self.property.to_json(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_prints_them() {
        for (nanos, text) in [
            (0, "0s"),
            (999, "999ns"),
            (1_500, "1.5µs"),
            (150_000_000, "150ms"),
            (1_000_000_000, "1s"),
            (90_500_000_000, "1m30.5s"),
            (3_600_000_000_000, "1h0m0s"),
            (-2_000_000_000, "-2s"),
        ] {
            assert_eq!(go_duration(nanos), text);
        }
    }

    #[test]
    fn zero_fields_are_left_out_and_pointer_fields_kept() {
        let mut f = Fields::default();
        f.put("a", &Some(String::new())).unwrap();
        f.put("b", &Some(0i32)).unwrap();
        f.keep("replicas", &Some(0i32)).unwrap();
        f.keep("unset", &None::<i32>).unwrap();
        f.put(
            "time",
            &Some(pb::apimachinery::pkg::apis::meta::v1::Time { seconds: Some(0), nanos: Some(0) }),
        )
        .unwrap();
        f.put("labels", &BTreeMap::from([("k".to_string(), String::new())])).unwrap();
        f.put("data", &BTreeMap::from([("k".to_string(), b"v".to_vec())])).unwrap();
        assert_eq!(f.into_value(), json!({"replicas": 0, "labels": {"k": ""}, "data": {"k": "dg=="}}));
    }
}
