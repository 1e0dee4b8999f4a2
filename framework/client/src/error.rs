//! Errors of the REST layer: API failures (a `metav1.Status` from the server), transport failures,
//! and decoding failures, kept apart so callers can tell "the server said no" from "we never got an
//! answer".
//!
//! The `is_*` predicates mirror `k8s.io/apimachinery/pkg/api/errors`: they look at the Status
//! `reason` first and fall back to the HTTP code when the reason is unknown, exactly like
//! `errors.IsNotFound` and friends.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let clientset = krust_client::Clientset::new(&server.kubeconfig().config)?;
//! use krust_client::GetOptions;
//!
//! let config_maps = clientset.core_v1().config_maps("default");
//! match config_maps.get("missing", &GetOptions::default()).await {
//!     Err(e) if e.is_not_found() => {
//!         // The server's Status, as kubectl prints it.
//!         assert_eq!(e.api_error().map(|s| s.code.as_u16()), Some(404));
//!         assert!(e.to_string().contains(r#"configmaps "missing" not found"#), "{e}");
//!     }
//!     other => panic!("expected 404, got {other:?}"),
//! }
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

use std::fmt;

use http::StatusCode;
use kube_core::Status;

use crate::config::ConfigError;

/// How many bytes of a non-Status error body are kept in the error message.
const EXCERPT_LEN: usize = 256;

/// An error and its causes, outermost first (`client error (Connect): invalid peer certificate:
/// UnknownIssuer`): transport errors say little at the top, the reason is at the bottom.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = cause.source();
    }
    text
}

/// The error type of every request made through krust-client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API server answered with a failure (`metav1.Status`, or a non-2xx response).
    #[error(transparent)]
    Api(#[from] Box<ApiError>),

    /// The request never got an HTTP response: DNS, connect, TLS, or the connection dropped.
    #[error("request {method} {url} failed: {}", causes(source.as_ref()))]
    Transport {
        /// HTTP method of the failed request.
        method: http::Method,
        /// URL of the failed request (no credentials are ever part of it).
        url: String,
        /// The underlying transport error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// Reading the response body failed after the headers arrived (e.g. the server closed a watch).
    #[error("reading the response body of {url} failed: {}", causes(source))]
    Body {
        /// URL of the request.
        url: String,
        /// The underlying error.
        #[source]
        source: hyper::Error,
    },

    /// The request did not complete within its timeout.
    #[error(
        "request {method} {url} timed out after {timeout:?}; raise the timeout with `.timeout(..)` or `Config::timeout`"
    )]
    Timeout {
        /// HTTP method of the request.
        method: http::Method,
        /// URL of the request.
        url: String,
        /// The timeout that expired.
        timeout: std::time::Duration,
    },

    /// A response (or a watch event) could not be decoded into the requested type.
    #[error("cannot decode {what}: {source} (body starts with: {excerpt:?})")]
    Decode {
        /// What was being decoded, e.g. `a watch event` or `the response of GET /api/v1/pods`.
        what: String,
        /// The first bytes of the offending body, for diagnosis.
        excerpt: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },

    /// A request body could not be serialized to JSON.
    #[error("cannot serialize the request body: {0}")]
    Serialize(#[source] serde_json::Error),

    /// The request was built wrongly (an invalid name, a missing group version, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// The configuration cannot be used (bad kubeconfig, TLS material, ...).
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// Obtaining credentials failed (exec plugin, token file).
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),

    /// A cache was read before its informer had listed everything, so "not there" could not be
    /// told from "not listed yet".
    #[error(
        "the cache of {what} has not synced yet; retry later (a reconcile returning this error is \
         retried with backoff), or wait for it first; if it never syncs, check that the controller \
         may list and watch {what}"
    )]
    NotSynced {
        /// The cached type (and resource).
        what: String,
    },
}

/// Convenience alias for results of krust-client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! delegate_predicates {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        impl Error {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> bool {
                    matches!(self, Error::Api(e) if e.$name())
                }
            )*

            /// The API error, when the server answered with one.
            pub fn api_error(&self) -> Option<&ApiError> {
                match self {
                    Error::Api(e) => Some(e),
                    _ => None,
                }
            }
        }
    };
}

delegate_predicates!(
    /// The object does not exist (404 / `NotFound`).
    is_not_found,
    /// The object already exists (`AlreadyExists`).
    is_already_exists,
    /// A write conflicted with a newer version of the object (409 / `Conflict`).
    is_conflict,
    /// The requested resourceVersion is too old (410 / `Gone` / `Expired`): relist.
    is_gone,
    /// The server is throttling (429 / `TooManyRequests`).
    is_too_many_requests,
    /// The caller is not allowed to do this (403 / `Forbidden`).
    is_forbidden,
    /// The caller is not authenticated (401 / `Unauthorized`).
    is_unauthorized,
    /// The object failed validation (422 / `Invalid`).
    is_invalid,
    /// The server timed out (504 / `Timeout`); see also [`Error::Timeout`] for client-side timeouts.
    is_timeout,
    /// The server failed (any 5xx).
    is_server_error,
    /// The requested resourceVersion is newer than the server has (`ResourceVersionTooLarge`).
    is_resource_version_too_large,
);

/// A failure reported by the API server: the decoded `metav1.Status` and the HTTP status code.
///
/// When the body is not a `Status` (an HTML page from a proxy, say), the status is synthesized
/// from the HTTP code, as client-go does, and its message carries a short excerpt of the body.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status code of the response.
    pub code: StatusCode,
    /// The Status the server returned (or the one synthesized from a non-Status body).
    pub status: Status,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = if self.status.reason.is_empty() { "Unknown" } else { &self.status.reason };
        write!(f, "the server answered {} ({}): {}", self.code.as_u16(), reason, self.status.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// The error a `metav1.Status` describes (a watch's ERROR event): its code, or 500 when the
    /// Status carries none that HTTP knows.
    pub fn from_status(status: Status) -> ApiError {
        let code = StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError { code, status }
    }

    /// Builds the error of a non-2xx response from its code and body.
    pub fn from_response(code: StatusCode, body: &[u8]) -> Self {
        if let Ok(status) = serde_json::from_slice::<Status>(body)
            && (status.is_failure() || status.code != 0 || !status.reason.is_empty())
        {
            return ApiError { code, status };
        }
        // Not a Status: synthesize one from the code, like client-go's
        // newUnstructuredResponseError, keeping a short excerpt of the body.
        let reason = reason_for_code(code);
        let excerpt = excerpt(body);
        let message = if excerpt.is_empty() {
            format!("the server responded with {code} and an empty body")
        } else {
            format!("the server responded with {code}: {excerpt}")
        };
        ApiError { code, status: Status::failure(&message, reason).with_code(code.as_u16()) }
    }

    /// The Status `reason` (e.g. `NotFound`), or an empty string.
    pub fn reason(&self) -> &str {
        &self.status.reason
    }

    /// The Status `message`.
    pub fn message(&self) -> &str {
        &self.status.message
    }

    /// The effective code: the Status code when set, else the HTTP code.
    fn effective_code(&self) -> u16 {
        if self.status.code != 0 { self.status.code } else { self.code.as_u16() }
    }

    /// apimachinery's rule: the reason matches, or the reason is not a known one and the code
    /// matches.
    fn reason_or_code(&self, reason: &str, code: u16) -> bool {
        self.status.reason == reason
            || (!KNOWN_REASONS.contains(&self.status.reason.as_str()) && self.effective_code() == code)
    }

    /// The object does not exist (404 / `NotFound`).
    pub fn is_not_found(&self) -> bool {
        self.reason_or_code("NotFound", 404)
    }
    /// The object already exists (`AlreadyExists`; the code alone, 409, is not enough).
    pub fn is_already_exists(&self) -> bool {
        self.status.reason == "AlreadyExists"
    }
    /// A write conflicted with a newer version of the object (409 / `Conflict`).
    pub fn is_conflict(&self) -> bool {
        self.reason_or_code("Conflict", 409)
    }
    /// The requested resourceVersion is too old (410 / `Gone` / `Expired`).
    pub fn is_gone(&self) -> bool {
        self.status.reason == "Expired" || self.reason_or_code("Gone", 410)
    }
    /// The server is throttling (429 / `TooManyRequests`).
    pub fn is_too_many_requests(&self) -> bool {
        self.reason_or_code("TooManyRequests", 429)
    }
    /// The caller is not allowed to do this (403 / `Forbidden`).
    pub fn is_forbidden(&self) -> bool {
        self.reason_or_code("Forbidden", 403)
    }
    /// The caller is not authenticated (401 / `Unauthorized`).
    pub fn is_unauthorized(&self) -> bool {
        self.reason_or_code("Unauthorized", 401)
    }
    /// The object failed validation (422 / `Invalid`).
    pub fn is_invalid(&self) -> bool {
        self.reason_or_code("Invalid", 422)
    }
    /// The server timed out (504 / `Timeout`).
    pub fn is_timeout(&self) -> bool {
        self.reason_or_code("Timeout", 504)
    }
    /// The server failed (any 5xx code).
    pub fn is_server_error(&self) -> bool {
        (500..600).contains(&self.effective_code())
    }
    /// The requested resourceVersion is newer than the server has: a `Timeout` whose cause is
    /// `ResourceVersionTooLarge` (apimachinery's IsTooLargeResourceVersion), or its message.
    pub fn is_resource_version_too_large(&self) -> bool {
        let by_cause = self
            .status
            .details
            .as_ref()
            .is_some_and(|d| d.causes.iter().any(|c| c.reason == "ResourceVersionTooLarge"));
        by_cause || self.status.message.contains("Too large resource version")
    }
}

/// The reasons apimachinery knows (`knownReasons`); an unknown reason lets the code decide.
const KNOWN_REASONS: &[&str] = &[
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "AlreadyExists",
    "Conflict",
    "Gone",
    "Invalid",
    "ServerTimeout",
    "StoreReadError",
    "Timeout",
    "TooManyRequests",
    "BadRequest",
    "MethodNotAllowed",
    "NotAcceptable",
    "RequestEntityTooLarge",
    "UnsupportedMediaType",
    "InternalError",
    "Expired",
    "ServiceUnavailable",
];

/// The Status reason client-go assumes for a bare HTTP code.
fn reason_for_code(code: StatusCode) -> &'static str {
    match code.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Gone",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

/// A printable excerpt of the first 256 bytes of a body (what [`Error::Decode`] shows), cut on
/// a char boundary.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_LEN)]);
    let text = text.trim();
    let mut out: String = text.chars().filter(|c| !c.is_control() || *c == ' ').collect();
    if body.len() > EXCERPT_LEN {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_body() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"pods"},"code":404}"#;
        let e = ApiError::from_response(StatusCode::NOT_FOUND, body);
        assert!(e.is_not_found());
        assert!(!e.is_conflict());
        assert_eq!(e.message(), "pods \"x\" not found");
    }

    #[test]
    fn html_body_gives_code_and_excerpt() {
        let body = b"<html><body><h1>502 Bad Gateway</h1>\n</body></html>";
        let e = ApiError::from_response(StatusCode::BAD_GATEWAY, body);
        assert!(e.is_server_error());
        assert!(e.message().contains("502 Bad Gateway"), "{}", e.message());
        assert!(e.to_string().contains("502"));
    }

    #[test]
    fn reason_wins_over_code() {
        // A 409 that is AlreadyExists is not a Conflict (apimachinery semantics).
        let body = br#"{"kind":"Status","status":"Failure","reason":"AlreadyExists","code":409}"#;
        let e = ApiError::from_response(StatusCode::CONFLICT, body);
        assert!(e.is_already_exists());
        assert!(!e.is_conflict());
        let expired = br#"{"kind":"Status","status":"Failure","reason":"Expired","code":410}"#;
        assert!(ApiError::from_response(StatusCode::GONE, expired).is_gone());
    }

    #[test]
    fn too_large_resource_version() {
        let body = br#"{"kind":"Status","status":"Failure","reason":"Timeout","code":504,"message":"Too large resource version: 10, current: 5","details":{"causes":[{"reason":"ResourceVersionTooLarge","message":"Too large resource version"}],"retryAfterSeconds":1}}"#;
        let e = ApiError::from_response(StatusCode::GATEWAY_TIMEOUT, body);
        assert!(e.is_resource_version_too_large());
        assert!(e.is_timeout());
    }

    #[test]
    fn long_excerpt_is_cut() {
        let body = vec![b'a'; 10_000];
        let e = ApiError::from_response(StatusCode::INTERNAL_SERVER_ERROR, &body);
        assert!(e.message().len() < 400);
    }
}
