//! Versions of custom resources (apiextensions-apiserver's `conversion`): with
//! `spec.conversion.strategy: Webhook`, objects are stored in the CRD's storage version and the
//! CRD's conversion webhook converts them on the way in (writes through another version) and
//! on the way out (gets, lists, watches and write responses in another version), with a
//! `ConversionReview`; with `None` only `apiVersion` changes (`handlers::present`).
//!
//! Mirrors kube-apiextensions-apiserver's `pkg/apiserver/conversion` (webhook converter).

use std::{sync::Arc, time::Duration};

use http::StatusCode;
use serde_json::{Value, json};

use crate::{
    object::{Stored, new_uid},
    resources::ResourceDef,
    server::Server,
    status::{ApiError, ApiResult},
};

/// How a custom resource's versions convert.
#[derive(Clone, Debug)]
pub(crate) struct Conversion {
    /// The storage version's apiVersion (`group/version`).
    pub storage: String,
    /// The webhook's clientConfig (strategy Webhook), or none (strategy None).
    pub webhook: Option<Value>,
}

impl Conversion {
    /// The conversion settings of a CRD.
    pub(crate) fn of(crd: &Value) -> Option<Arc<Conversion>> {
        let spec = &crd["spec"];
        let group = spec["group"].as_str()?;
        let storage = spec["versions"].as_array()?.iter().find(|v| v["storage"].as_bool() == Some(true))?;
        let webhook = (spec["conversion"]["strategy"].as_str() == Some("Webhook"))
            .then(|| spec["conversion"]["webhook"]["clientConfig"].clone())
            .filter(Value::is_object);
        Some(Arc::new(Conversion { storage: format!("{group}/{}", storage["name"].as_str()?), webhook }))
    }
}

/// Whether objects of `res` go through the webhook between `res`'s version and storage.
pub(crate) fn needs_webhook(res: &ResourceDef) -> bool {
    res.conversion.as_ref().is_some_and(|c| c.webhook.is_some() && c.storage != res.api_version())
}

fn failed(res: &ResourceDef, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        format!("conversion webhook for {}, Kind={} failed: {why}", res.api_version(), res.kind),
    )
}

/// Converts `objects` to `desired` with the CRD's webhook.
pub(crate) async fn convert(
    server: &Server,
    res: &ResourceDef,
    objects: Vec<Value>,
    desired: &str,
) -> ApiResult<Vec<Value>> {
    let Some(config) = res.conversion.as_ref().and_then(|c| c.webhook.clone()) else { return Ok(objects) };
    if objects.iter().all(|o| o["apiVersion"].as_str() == Some(desired)) {
        return Ok(objects);
    }
    let timeout = Duration::from_secs(30);
    let (url, ca) = crate::admission::endpoint(server, &config).map_err(|e| failed(res, e))?;
    let (client, uri) = crate::admission::webhook_client(&url, ca, timeout).map_err(|e| failed(res, e))?;
    let count = objects.len();
    let review = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": new_uid(), "desiredAPIVersion": desired, "objects": objects},
    });
    let response = client
        .post()
        .abs_path(uri.path())
        .body(&review)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| failed(res, format!("Post \"{url}?timeout=30s\": {e}")))?;
    if !response.status().is_success() {
        return Err(failed(res, format!("the webhook answered {}", response.status())));
    }
    let answer: Value = response.into().map_err(|e| failed(res, e))?;
    let result = &answer["response"]["result"];
    if result["status"].as_str() != Some("Success") {
        return Err(failed(res, result["message"].as_str().unwrap_or("no explanation")));
    }
    let converted = answer["response"]["convertedObjects"].as_array().cloned().unwrap_or_default();
    if converted.len() != count {
        return Err(failed(res, format!("expected {count} converted objects, got {}", converted.len())));
    }
    if let Some(bad) = converted.iter().find(|o| o["apiVersion"].as_str() != Some(desired)) {
        return Err(failed(res, format!("an object came back as {}, not {desired}", bad["apiVersion"])));
    }
    Ok(converted)
}

/// [`convert`], for code running off the async workers (handlers).
pub(crate) fn convert_blocking(
    server: &Server,
    res: &ResourceDef,
    objects: Vec<Value>,
    desired: &str,
) -> ApiResult<Vec<Value>> {
    if res.conversion.as_ref().is_none_or(|c| c.webhook.is_none()) {
        return Ok(objects);
    }
    tokio::runtime::Handle::current().block_on(convert(server, res, objects, desired))
}

/// A stored object as `res`'s version presents it (the same revision): converted, and with
/// the schema's defaults filled in (an object stored before a default was added gets it on
/// read, as from kube-apiserver).
pub(crate) fn view(server: &Server, res: &ResourceDef, stored: &Stored) -> ApiResult<Stored> {
    if !res.custom || stored.summary.api_version == res.api_version() || !needs_webhook_for(res) {
        return Ok(defaulted(res, stored.clone()));
    }
    let mut converted = convert_blocking(server, res, vec![stored.value()], &res.api_version())?;
    Ok(defaulted(res, Stored::new(stored.rv, &converted.pop().unwrap_or_default())))
}

/// [`view`] for async code (watches).
pub(crate) async fn view_async(server: &Server, res: &ResourceDef, stored: &Stored) -> ApiResult<Stored> {
    if !res.custom || stored.summary.api_version == res.api_version() || !needs_webhook_for(res) {
        return Ok(defaulted(res, stored.clone()));
    }
    let mut converted = convert(server, res, vec![stored.value()], &res.api_version()).await?;
    Ok(defaulted(res, Stored::new(stored.rv, &converted.pop().unwrap_or_default())))
}

/// `stored` with the defaults of `res`'s schema it lacks.
fn defaulted(res: &ResourceDef, stored: Stored) -> Stored {
    let Some(schema) = res.schema.as_ref().filter(|s| s.has_defaults()) else { return stored };
    let mut value = stored.value();
    if schema.default(&mut value) { Stored::new(stored.rv, &value) } else { stored }
}

fn needs_webhook_for(res: &ResourceDef) -> bool {
    res.conversion.as_ref().is_some_and(|c| c.webhook.is_some())
}

/// An object about to be stored, in the storage version.
pub(crate) fn to_storage(server: &Server, res: &ResourceDef, obj: Value) -> ApiResult<Value> {
    if !needs_webhook(res)
        || obj["apiVersion"].as_str() == res.conversion.as_ref().map(|c| c.storage.as_str())
    {
        return Ok(obj);
    }
    let storage = res.conversion.as_ref().map(|c| c.storage.clone()).unwrap_or_default();
    let mut converted = convert_blocking(server, res, vec![obj], &storage)?;
    Ok(converted.pop().unwrap_or_default())
}
