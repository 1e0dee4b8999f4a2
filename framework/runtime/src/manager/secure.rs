//! Secure metrics (controller-runtime's `metricsserver.Options{SecureServing: true,
//! FilterProvider: filters.WithAuthenticationAndAuthorization}`, Kubebuilder's default since
//! 4.1): `/metrics` over HTTPS, and only for a caller whose bearer token the API server
//! authenticates (TokenReview) and who may `get` the path (SubjectAccessReview on the
//! non-resource URL), as a kube-apiserver-delegated endpoint does. Results are cached as
//! controller-runtime caches them: tokens for a minute, allowed decisions for five minutes,
//! denied ones for thirty seconds.

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    authentication::v1::{TokenReview, UserInfo},
    authorization::v1::{NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
};
use krust_client::{Clientset, CreateOptions};
use parking_lot::Mutex;

/// How a token review is cached.
const AUTHN_TTL: Duration = Duration::from_secs(60);
/// How an allowed decision is cached.
const ALLOW_TTL: Duration = Duration::from_secs(300);
/// How a denied decision is cached.
const DENY_TTL: Duration = Duration::from_secs(30);
/// Cached entries at most (the cache is emptied when full: a flood of made-up tokens cannot
/// grow memory).
const MAX_CACHED: usize = 1024;
/// How long a review may take.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the metrics server's serving certificate comes from.
#[derive(Clone, Debug)]
pub struct SecureMetrics {
    /// `tls.crt` and `tls.key` (a mounted `kubernetes.io/tls` Secret); read again when they
    /// change.
    pub cert_dir: PathBuf,
}

impl SecureMetrics {
    /// Serving certificate files in `dir` (`tls.crt`, `tls.key`).
    pub fn cert_dir(dir: impl Into<PathBuf>) -> Self {
        SecureMetrics { cert_dir: dir.into() }
    }
}

/// The outcome of checking a request.
pub(super) enum Verdict {
    Allowed,
    /// 401: no token, or one the API server does not know.
    Unauthenticated,
    /// 403, naming the user.
    Denied(String),
    /// 500: a review failed.
    Failed(&'static str),
}

/// What a decision is about: user, verb, path.
type Decision = (String, String, String);

/// The delegated authentication and authorization of `/metrics`.
pub(super) struct Delegated {
    clientset: Clientset,
    /// Token → user (None: not authenticated), and when it was asked. Never printed.
    tokens: Mutex<HashMap<String, (Instant, Option<UserInfo>)>>,
    /// (user, verb, path) → allowed, and when it was asked.
    decisions: Mutex<HashMap<Decision, (Instant, bool)>>,
}

impl Delegated {
    pub(super) fn new(clientset: Clientset) -> Self {
        Delegated { clientset, tokens: Mutex::default(), decisions: Mutex::default() }
    }

    /// Whether the request with these headers may `method` `path`.
    pub(super) async fn check(
        &self,
        headers: &http::HeaderMap,
        method: &http::Method,
        path: &str,
    ) -> Verdict {
        let Some(token) = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Verdict::Unauthenticated;
        };
        let user = match self.authenticate(token).await {
            Ok(Some(user)) => user,
            Ok(None) => return Verdict::Unauthenticated,
            Err(e) => {
                tracing::warn!(error = %e, "a TokenReview for the metrics endpoint failed");
                return Verdict::Failed("Authentication failed");
            }
        };
        let verb = method.as_str().to_ascii_lowercase();
        match self.authorize(&user, &verb, path).await {
            Ok(true) => Verdict::Allowed,
            Ok(false) => Verdict::Denied(user.username.unwrap_or_default()),
            Err(e) => {
                tracing::warn!(error = %e, "a SubjectAccessReview for the metrics endpoint failed");
                Verdict::Failed("Authorization failed")
            }
        }
    }

    /// Creates a review (TokenReview, SubjectAccessReview) and returns the API server's answer,
    /// within [`REVIEW_TIMEOUT`].
    async fn review<K>(&self, review: &K) -> Result<K, String>
    where
        K: kube_core::Resource<DynamicType = ()> + serde::Serialize + serde::de::DeserializeOwned + Clone,
    {
        let client = self.clientset.typed::<K>(None);
        tokio::time::timeout(REVIEW_TIMEOUT, client.create(review, &CreateOptions::default()))
            .await
            .map_err(|_| format!("no answer within {REVIEW_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())
    }

    async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, String> {
        if let Some((at, user)) = self.tokens.lock().get(token)
            && at.elapsed() < AUTHN_TTL
        {
            return Ok(user.clone());
        }
        // Built from JSON: the type of `spec.token` differs between Kubernetes versions of
        // k8s-openapi (optional before 1.34, required since).
        let review: TokenReview = serde_json::from_value(serde_json::json!({"spec": {"token": token}}))
            .map_err(|e| format!("building the TokenReview: {e}"))?;
        let reviewed = self.review(&review).await?;
        let user = reviewed
            .status
            .filter(|s| s.authenticated == Some(true))
            .and_then(|s| s.user)
            .filter(|u| u.username.as_deref().is_some_and(|n| !n.is_empty()));
        let mut tokens = self.tokens.lock();
        if tokens.len() >= MAX_CACHED {
            tokens.clear();
        }
        tokens.insert(token.to_string(), (Instant::now(), user.clone()));
        Ok(user)
    }

    async fn authorize(&self, user: &UserInfo, verb: &str, path: &str) -> Result<bool, String> {
        let key = (user.username.clone().unwrap_or_default(), verb.to_string(), path.to_string());
        if let Some((at, allowed)) = self.decisions.lock().get(&key)
            && at.elapsed() < if *allowed { ALLOW_TTL } else { DENY_TTL }
        {
            return Ok(*allowed);
        }
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username.clone(),
                groups: user.groups.clone(),
                uid: user.uid.clone(),
                extra: user.extra.clone(),
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(path.to_string()),
                    verb: Some(verb.to_string()),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let reviewed = self.review(&review).await?;
        let allowed = reviewed.status.is_some_and(|s| s.allowed);
        let mut decisions = self.decisions.lock();
        if decisions.len() >= MAX_CACHED {
            decisions.clear();
        }
        decisions.insert(key, (Instant::now(), allowed));
        Ok(allowed)
    }
}
