//! Who a request is, and what a user may do: the create-only review APIs kube-apiserver serves
//! for delegated authentication and authorization (what a secured metrics endpoint, a kubelet
//! or an aggregated API server call), and service account tokens.
//!
//! - `TokenRequest` (`POST …/serviceaccounts/NAME/token`, what `kubectl create token` calls)
//!   issues a token for an existing service account: user
//!   `system:serviceaccount:NS:NAME`, groups `system:serviceaccounts`,
//!   `system:serviceaccounts:NS` and `system:authenticated`; it expires after
//!   `expirationSeconds` (default 3600, at least 600, as kube-apiserver).
//! - `TokenReview` says whose a token is: an issued one, a static user's
//!   ([`ApiServerBuilder::user`](crate::ApiServerBuilder::user)), or the server's own token
//!   (`system:admin` in `system:masters`).
//! - `SubjectAccessReview`, `LocalSubjectAccessReview` and `SelfSubjectAccessReview`
//!   (`kubectl auth can-i`) evaluate the stored RBAC objects as kube-apiserver's RBAC
//!   authorizer does: ClusterRoleBindings grant everywhere (and non-resource URLs),
//!   RoleBindings in their namespace; `system:masters` may do anything. Aggregated
//!   ClusterRoles are not expanded.
//!
//! krust-apiserver itself does not enforce RBAC: every authenticated request is allowed.

use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http::StatusCode;
use hyper::Response;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject};
use serde_json::{Value, json};

use crate::{
    http_util::{Body, json_response},
    server::{Server, Target},
    status::{ApiError, ApiResult},
};

/// An authenticated user.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    /// When it stops being valid (issued tokens).
    pub expires: Option<SystemTime>,
    /// The audiences it was issued for (empty: the API server's).
    pub audiences: Vec<String>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("username", &self.username).field("groups", &self.groups).finish()
    }
}

/// The server's superuser (its own token, or no token required).
pub(crate) fn admin() -> Identity {
    Identity {
        username: "system:admin".into(),
        uid: String::new(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        expires: None,
        audiences: Vec::new(),
    }
}

/// Tokens the server knows besides its own: static users and issued service account tokens.
/// Never printed.
#[derive(Default)]
pub(crate) struct Tokens(parking_lot::RwLock<HashMap<String, Identity>>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} known)", self.0.read().len())
    }
}

impl Tokens {
    pub fn insert(&self, token: String, identity: Identity) {
        self.0.write().insert(token, identity);
    }

    /// The identity of a token still valid.
    pub fn get(&self, token: &str) -> Option<Identity> {
        let identity = self.0.read().get(token).cloned()?;
        match identity.expires {
            Some(at) if at <= SystemTime::now() => {
                self.0.write().remove(token);
                None
            }
            _ => Some(identity),
        }
    }
}

/// Who presents `token` (the server's own token is the admin).
pub(crate) fn authenticate(server: &Server, token: &str) -> Option<Identity> {
    if server
        .token
        .as_deref()
        .is_some_and(|t| crate::server::constant_time_eq(token.as_bytes(), t.as_bytes()))
    {
        return Some(admin());
    }
    server.tokens.get(token)
}

/// Whether this request is for a review API or a token request, which [`handle`] answers.
pub(crate) fn handles(target: &Target) -> bool {
    matches!(target.res.group.as_str(), "authentication.k8s.io" | "authorization.k8s.io")
        || (target.res.group.is_empty()
            && target.res.plural == "serviceaccounts"
            && target.sub.as_deref() == Some("token"))
}

/// Answers a review or a token request; `caller` is who sent it.
pub(crate) fn handle(
    server: &Server,
    target: &Target,
    method: &http::Method,
    content_type: &str,
    body: &[u8],
    caller: &Identity,
) -> ApiResult<Response<Body>> {
    if method != http::Method::POST {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            target.res.plural
        )));
    }
    let review = crate::handlers::decode_body(content_type, body)?;
    let spec = review.get("spec").cloned().unwrap_or_else(|| json!({}));
    let (kind, status) = match (target.res.plural.as_str(), target.sub.as_deref()) {
        ("serviceaccounts", Some("token")) => return token_request(server, target, &spec),
        ("tokenreviews", _) => ("TokenReview", token_review(server, &spec)),
        ("subjectaccessreviews", _) => ("SubjectAccessReview", access_review(server, &spec, None)?),
        ("localsubjectaccessreviews", _) => {
            let namespace = target.namespace.clone().unwrap_or_default();
            let asked = spec.pointer("/resourceAttributes/namespace").and_then(Value::as_str).unwrap_or("");
            if asked != namespace {
                return Err(ApiError::bad_request(format!(
                    "spec.resourceAttributes.namespace must match metadata.namespace: {asked:?} is not {namespace:?}"
                )));
            }
            ("LocalSubjectAccessReview", access_review(server, &spec, None)?)
        }
        ("selfsubjectaccessreviews", _) => {
            ("SelfSubjectAccessReview", access_review(server, &spec, Some(caller))?)
        }
        ("selfsubjectreviews", _) => ("SelfSubjectReview", json!({"userInfo": user_info(caller)})),
        (other, _) => return Err(ApiError::method_not_allowed(format!("{other} cannot be created here"))),
    };
    let mut out = json!({
        "kind": kind,
        "apiVersion": target.res.api_version(),
        "metadata": {"creationTimestamp": null},
        "status": status,
    });
    if kind != "SelfSubjectReview" {
        out["spec"] = spec;
    }
    if let Some(ns) = &target.namespace {
        out["metadata"]["namespace"] = json!(ns);
    }
    Ok(json_response(StatusCode::CREATED, Bytes::from(out.to_string())))
}

fn user_info(identity: &Identity) -> Value {
    let mut user = json!({"username": identity.username, "groups": identity.groups});
    if !identity.uid.is_empty() {
        user["uid"] = json!(identity.uid);
    }
    user
}

/// `TokenReview`'s status.
fn token_review(server: &Server, spec: &Value) -> Value {
    let token = spec.get("token").and_then(Value::as_str).unwrap_or("");
    let asked: Vec<String> = strings(spec.get("audiences"));
    match authenticate(server, token) {
        Some(identity) => {
            // An audience-bound token passes only for one of its audiences.
            let audiences = if asked.is_empty() { identity.audiences.clone() } else { asked.clone() };
            let bound_ok = identity.audiences.is_empty()
                || asked.is_empty()
                || asked.iter().any(|a| identity.audiences.contains(a));
            if !bound_ok {
                return json!({"user": {}, "error": "[invalid bearer token, token audiences is invalid]"});
            }
            let mut status = json!({"authenticated": true, "user": user_info(&identity)});
            if !audiences.is_empty() {
                status["audiences"] = json!(audiences);
            }
            status
        }
        None => json!({"user": {}, "error": "[invalid bearer token, token not found or expired]"}),
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

/// `TokenRequest`: a token for an existing service account.
fn token_request(server: &Server, target: &Target, spec: &Value) -> ApiResult<Response<Body>> {
    let namespace = target.namespace.clone().unwrap_or_default();
    let name = target.name.clone().unwrap_or_default();
    let key = format!("{namespace}/{name}");
    let account =
        server.store.get(&target.res.storage, &key).ok_or_else(|| ApiError::not_found(&target.res, &name))?;
    let account: Value = serde_json::from_slice(&account.json).unwrap_or_default();
    let uid = account.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("").to_string();
    let seconds = spec.get("expirationSeconds").and_then(Value::as_i64).unwrap_or(3600);
    if seconds < 600 {
        return Err(ApiError::invalid(
            &target.res,
            &name,
            &[("spec.expirationSeconds".into(), "may not specify a duration less than 10 minutes".into())],
        ));
    }
    let expires = SystemTime::now() + Duration::from_secs(seconds.unsigned_abs());
    let token = format!(
        "krust-sa.{}{}",
        crate::object::new_uid().replace('-', ""),
        crate::object::new_uid().replace('-', "")
    );
    let identity = Identity {
        username: format!("system:serviceaccount:{namespace}:{name}"),
        uid,
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".into(),
        ],
        expires: Some(expires),
        audiences: strings(spec.get("audiences")),
    };
    server.tokens.insert(token.clone(), identity);
    let expiration = jiff::Timestamp::try_from(expires)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let mut spec = spec.clone();
    spec["expirationSeconds"] = json!(seconds);
    let out = json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": null},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": expiration},
    });
    Ok(json_response(StatusCode::CREATED, Bytes::from(out.to_string())))
}

/// What a review asks.
struct Attributes {
    verb: String,
    /// A resource request: namespace, group, resource, subresource, name.
    resource: Option<(String, String, String, String, String)>,
    /// A non-resource request: the path.
    path: Option<String>,
}

/// `SubjectAccessReview`'s status (`who`: the caller, for a self review).
fn access_review(server: &Server, spec: &Value, who: Option<&Identity>) -> ApiResult<Value> {
    let (user, groups) = match who {
        Some(identity) => (identity.username.clone(), identity.groups.clone()),
        None => {
            let user = spec.get("user").and_then(Value::as_str).unwrap_or("").to_string();
            let groups = strings(spec.get("groups"));
            if user.is_empty() && groups.is_empty() {
                return Err(ApiError::bad_request("spec.user or spec.groups: at least one is required"));
            }
            (user, groups)
        }
    };
    let attributes = if let Some(r) = spec.get("resourceAttributes") {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Attributes {
            verb: s("verb"),
            resource: Some((s("namespace"), s("group"), s("resource"), s("subresource"), s("name"))),
            path: None,
        }
    } else if let Some(n) = spec.get("nonResourceAttributes") {
        let s = |k: &str| n.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Attributes { verb: s("verb"), resource: None, path: Some(s("path")) }
    } else {
        return Err(ApiError::bad_request(
            "spec.resourceAttributes or spec.nonResourceAttributes is required",
        ));
    };
    Ok(match authorize(server, &user, &groups, &attributes) {
        Some(reason) => json!({"allowed": true, "reason": reason}),
        None => json!({"allowed": false}),
    })
}

fn stored<T: serde::de::DeserializeOwned>(server: &Server, storage: &str) -> Vec<T> {
    server.store.table(storage).iter().filter_map(|(_, s)| serde_json::from_slice(&s.json).ok()).collect()
}

fn subject_matches(subject: &Subject, user: &str, groups: &[String]) -> bool {
    match subject.kind.as_str() {
        "User" => subject.name == user,
        "Group" => groups.contains(&subject.name),
        "ServiceAccount" => {
            let ns = subject.namespace.as_deref().unwrap_or("");
            user == format!("system:serviceaccount:{ns}:{}", subject.name)
        }
        _ => false,
    }
}

fn any(list: &[String], wanted: &str) -> bool {
    list.iter().any(|v| v == "*" || v == wanted)
}

fn rule_allows(rule: &PolicyRule, attributes: &Attributes) -> bool {
    if !any(&rule.verbs, &attributes.verb) {
        return false;
    }
    match (&attributes.resource, &attributes.path) {
        (Some((_, group, resource, subresource, name)), _) => {
            let groups = rule.api_groups.as_deref().unwrap_or_default();
            let resources = rule.resources.as_deref().unwrap_or_default();
            let names = rule.resource_names.as_deref().unwrap_or_default();
            let wanted =
                if subresource.is_empty() { resource.clone() } else { format!("{resource}/{subresource}") };
            let resource_ok = resources.iter().any(|r| {
                r == "*" || *r == wanted || (!subresource.is_empty() && *r == format!("*/{subresource}"))
            });
            any(groups, group) && resource_ok && (names.is_empty() || names.contains(name))
        }
        (None, Some(path)) => rule.non_resource_urls.as_deref().unwrap_or_default().iter().any(|u| {
            u == "*" || u == path || u.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix))
        }),
        (None, None) => false,
    }
}

/// Why `user` may do what `attributes` say (kube-apiserver's RBAC reason), or `None`.
fn authorize(server: &Server, user: &str, groups: &[String], attributes: &Attributes) -> Option<String> {
    if groups.iter().any(|g| g == "system:masters") {
        return Some("the system:masters group may do anything".into());
    }
    let cluster_roles: HashMap<String, ClusterRole> =
        stored::<ClusterRole>(server, "rbac.authorization.k8s.io/clusterroles")
            .into_iter()
            .filter_map(|r| Some((r.metadata.name.clone()?, r)))
            .collect();
    let described = |subject: &Subject| {
        if subject.kind == "ServiceAccount" {
            format!("ServiceAccount \"{}/{}\"", subject.namespace.as_deref().unwrap_or(""), subject.name)
        } else {
            format!("{} \"{}\"", subject.kind, subject.name)
        }
    };
    for binding in stored::<ClusterRoleBinding>(server, "rbac.authorization.k8s.io/clusterrolebindings") {
        let Some(subject) = binding.subjects.iter().flatten().find(|s| subject_matches(s, user, groups))
        else {
            continue;
        };
        if binding.role_ref.kind != "ClusterRole" {
            continue;
        }
        let rules =
            cluster_roles.get(&binding.role_ref.name).and_then(|r| r.rules.clone()).unwrap_or_default();
        if rules.iter().any(|rule| rule_allows(rule, attributes)) {
            return Some(format!(
                "RBAC: allowed by ClusterRoleBinding \"{}\" of ClusterRole \"{}\" to {}",
                binding.metadata.name.as_deref().unwrap_or(""),
                binding.role_ref.name,
                described(subject)
            ));
        }
    }
    // RoleBindings grant resources in their namespace only.
    let (namespace, ..) = attributes.resource.as_ref().filter(|(ns, ..)| !ns.is_empty())?;
    let roles: HashMap<String, Role> = stored::<Role>(server, "rbac.authorization.k8s.io/roles")
        .into_iter()
        .filter(|r| r.metadata.namespace.as_deref() == Some(namespace))
        .filter_map(|r| Some((r.metadata.name.clone()?, r)))
        .collect();
    for binding in stored::<RoleBinding>(server, "rbac.authorization.k8s.io/rolebindings") {
        if binding.metadata.namespace.as_deref() != Some(namespace) {
            continue;
        }
        let Some(subject) = binding.subjects.iter().flatten().find(|s| subject_matches(s, user, groups))
        else {
            continue;
        };
        let rules = match binding.role_ref.kind.as_str() {
            "Role" => roles.get(&binding.role_ref.name).and_then(|r| r.rules.clone()),
            "ClusterRole" => cluster_roles.get(&binding.role_ref.name).and_then(|r| r.rules.clone()),
            _ => None,
        }
        .unwrap_or_default();
        if rules.iter().any(|rule| rule_allows(rule, attributes)) {
            return Some(format!(
                "RBAC: allowed by RoleBinding \"{}/{}\" of {} \"{}\" to {}",
                binding.metadata.name.as_deref().unwrap_or(""),
                namespace,
                binding.role_ref.kind,
                binding.role_ref.name,
                described(subject)
            ));
        }
    }
    None
}
