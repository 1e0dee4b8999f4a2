//! A complete response (client-go's `rest.Result`): status, headers, body, decoded on demand;
//! a non-2xx response is the API error its `metav1.Status` describes.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Error, Result, excerpt};

/// Decodes JSON, validating UTF-8 once for the whole input (`from_str`) instead of string by
/// string (`from_slice`), which is measurably faster on Kubernetes objects (see the `decode`
/// benchmark). Invalid UTF-8 goes through `from_slice` for its precise error.
pub(crate) fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// A complete response (client-go's `rest.Result`).
#[derive(Debug)]
pub struct Response {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
    pub(super) method: Method,
    pub(super) url: String,
}

impl Response {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The raw body, whatever the status.
    pub fn raw_body(&self) -> &Bytes {
        &self.body
    }

    /// The API error of a non-2xx response.
    pub fn error(&self) -> Option<Error> {
        (!self.status.is_success())
            .then(|| Error::Api(Box::new(ApiError::from_response(self.status, &self.body))))
    }

    /// `Err` with the API error for a non-2xx response, else the response.
    pub fn error_for_status(self) -> Result<Response> {
        match self.error() {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }

    /// The body of a 2xx response.
    pub fn bytes(self) -> Result<Bytes> {
        Ok(self.error_for_status()?.body)
    }

    /// The body of a 2xx response decoded from JSON.
    pub fn into<T: DeserializeOwned>(self) -> Result<T> {
        let response = self.error_for_status()?;
        from_json(&response.body).map_err(|source| Error::Decode {
            what: format!("the response of {} {}", response.method, response.url),
            excerpt: excerpt(&response.body),
            source,
        })
    }
}
