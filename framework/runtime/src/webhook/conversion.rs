//! CRD conversion (controller-runtime's `conversion.Hub` / `Convertible`, hub and spoke): one
//! version is the hub, every other version converts to and from it, and any version reaches any
//! other through the hub. Built from the user's Rust types and their `From`/`TryFrom`
//! conversions; served as a `ConversionReview` handler.

use std::{collections::HashMap, sync::Arc};

use kube_core::{
    Resource,
    conversion::{ConversionRequest, ConversionResponse},
    response::Status,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

type ToHub<H> = Arc<dyn Fn(Value) -> Result<H, String> + Send + Sync>;
type FromHub<H> = Arc<dyn Fn(&H) -> Result<Value, String> + Send + Sync>;

/// Converts between the versions of one custom resource through a hub version `H`:
/// `Converter::<WebsiteV2>::hub().spoke::<WebsiteV1>()`, where `WebsiteV1: TryFrom<WebsiteV2>`
/// and `WebsiteV2: TryFrom<WebsiteV1>` (a `From` is a `TryFrom` that cannot fail). The example
/// operator's `Website` (`examples/operator/`) converts its `v1` and `v2` this way.
pub struct Converter<H> {
    versions: HashMap<String, (ToHub<H>, FromHub<H>)>,
}

impl<H> std::fmt::Debug for Converter<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Converter").field("versions", &self.versions.keys().collect::<Vec<_>>()).finish()
    }
}

fn decode<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_json::from_value(value)
        .map_err(|e| format!("cannot read the object as {}: {e}", std::any::type_name::<T>()))
}

fn encode<T: Serialize + Resource<DynamicType = ()>>(obj: &T) -> Result<Value, String> {
    let mut value = serde_json::to_value(obj).map_err(|e| format!("cannot encode the object: {e}"))?;
    // Typed objects may leave apiVersion/kind to the client; a converted object must carry its
    // (new) version.
    value["apiVersion"] = Value::String(T::api_version(&()).into_owned());
    value["kind"] = Value::String(T::kind(&()).into_owned());
    Ok(value)
}

impl<H> Converter<H>
where
    H: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// A converter whose hub is `H` (every version converts through it).
    pub fn hub() -> Self {
        let mut versions = HashMap::new();
        let to: ToHub<H> = Arc::new(|v| decode::<H>(v));
        let from: FromHub<H> = Arc::new(|h: &H| encode(h));
        versions.insert(H::api_version(&()).into_owned(), (to, from));
        Converter { versions }
    }

    /// Adds a version that converts to and from the hub.
    #[must_use]
    pub fn spoke<S>(mut self) -> Self
    where
        S: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Send + Sync + 'static,
        H: TryFrom<S>,
        <H as TryFrom<S>>::Error: std::fmt::Display,
        S: TryFrom<H>,
        <S as TryFrom<H>>::Error: std::fmt::Display,
    {
        let to: ToHub<H> = Arc::new(|v| {
            let spoke: S = decode(v)?;
            H::try_from(spoke).map_err(|e| format!("cannot convert to {}: {e}", H::api_version(&())))
        });
        let from: FromHub<H> = Arc::new(|h: &H| {
            let spoke = S::try_from(h.clone())
                .map_err(|e| format!("cannot convert to {}: {e}", S::api_version(&())))?;
            encode(&spoke)
        });
        self.versions.insert(S::api_version(&()).into_owned(), (to, from));
        self
    }

    /// The apiVersions this converter knows.
    pub fn versions(&self) -> Vec<String> {
        let mut v: Vec<String> = self.versions.keys().cloned().collect();
        v.sort();
        v
    }

    /// Converts one object to `desired` (`group/version`).
    pub fn convert(&self, object: Value, desired: &str) -> Result<Value, String> {
        let from = object["apiVersion"].as_str().unwrap_or_default().to_string();
        if from == desired {
            return Ok(object);
        }
        let (to_hub, _) = self
            .versions
            .get(&from)
            .ok_or_else(|| format!("unknown version {from:?}; known: {:?}", self.versions()))?;
        let (_, from_hub) = self
            .versions
            .get(desired)
            .ok_or_else(|| format!("unknown desired version {desired:?}; known: {:?}", self.versions()))?;
        // The metadata goes through unchanged, whatever the types do with it.
        let metadata = object.get("metadata").cloned();
        let mut converted = from_hub(&to_hub(object)?)?;
        if let Some(metadata) = metadata {
            converted["metadata"] = metadata;
        }
        Ok(converted)
    }

    /// The answer to a `ConversionReview` request: every object converted, or a failure that
    /// names the first object that could not be.
    pub fn review(&self, request: ConversionRequest) -> ConversionResponse {
        let desired = request.desired_api_version.clone();
        let objects = request.objects.clone();
        let response = ConversionResponse::for_request(request);
        let mut converted = Vec::with_capacity(objects.len());
        for object in objects {
            let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
            match self.convert(object, &desired) {
                Ok(v) => converted.push(v),
                Err(e) => {
                    return response.failure(
                        Status::failure(&format!("converting {name:?}: {e}"), "Invalid").with_code(422),
                    );
                }
            }
        }
        response.success(converted)
    }
}

/// A conversion handler the webhook server can hold, whatever the hub type.
pub(crate) trait ConversionHandler: Send + Sync + 'static {
    fn review(&self, request: ConversionRequest) -> ConversionResponse;
}

impl<H> ConversionHandler for Converter<H>
where
    H: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn review(&self, request: ConversionRequest) -> ConversionResponse {
        Converter::review(self, request)
    }
}
