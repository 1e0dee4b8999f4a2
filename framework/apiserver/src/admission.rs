//! Dynamic admission: the webhooks of `MutatingWebhookConfiguration`s and
//! `ValidatingWebhookConfiguration`s (admissionregistration.k8s.io/v1), called for the writes
//! their rules match — mutating ones first, in order, their JSON patches applied; validating
//! ones after, on the object about to be stored — with kube-apiserver's matching (operations,
//! groups, versions, resources and subresources, scope, namespace and object selectors,
//! `matchPolicy`), `failurePolicy`, `timeoutSeconds`, `sideEffects` on dry runs, and its wording
//! of denials and call failures. Under `matchPolicy: Equivalent` a webhook that registered for
//! another version of the resource gets the objects converted to that version (a custom
//! resource through its conversion webhook), `kind`/`resource` naming it and
//! `requestKind`/`requestResource` the request's; a mutation comes back converted.
//!
//! A write that webhooks see is computed from a snapshot of the current object, sent to the
//! webhooks without holding the store (a webhook may read from this server), and stored only if
//! the object did not change meanwhile; otherwise it is computed again (kube-apiserver's
//! `GuaranteedUpdate` with admission inside).
//!
//! Mirrors kube-apiserver's `admission/plugin/webhook` (`generic`, `mutating`, `validating`,
//! `errors`, `request`).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use base64::Engine;
use http::StatusCode;
use serde_json::{Value, json};

use crate::{
    object::{Stored, new_uid},
    resources::ResourceDef,
    server::Server,
    status::{ApiError, ApiResult},
    store::{Write, Written},
};

/// The operation of a request, as admission names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }
}

/// What admission needs to know of a request.
#[derive(Clone, Copy)]
pub(crate) struct Attributes<'a> {
    pub res: &'a ResourceDef,
    pub sub: Option<&'a str>,
    pub operation: Operation,
    pub namespace: &'a str,
    pub name: &'a str,
    pub dry_run: bool,
}

const MUTATING: &str = "admissionregistration.k8s.io/mutatingwebhookconfigurations";
const VALIDATING: &str = "admissionregistration.k8s.io/validatingwebhookconfigurations";

/// One webhook of a configuration.
#[derive(Clone, Debug)]
struct Hook {
    name: String,
    spec: Value,
}

/// The webhooks of every configuration of one kind, in name order (kube-apiserver sorts
/// configurations by name).
fn hooks(server: &Server, table: &str) -> Vec<Hook> {
    server
        .store
        .table(table)
        .values()
        .flat_map(|stored| {
            let config = stored.value();
            config["webhooks"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|spec| Hook { name: spec["name"].as_str().unwrap_or_default().to_string(), spec })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// Whether one rule matches the request (`rules[]` of a webhook).
fn rule_matches(rule: &Value, attrs: &Attributes<'_>, exact: bool) -> bool {
    let ops = strings(&rule["operations"]);
    let op_ok = ops.iter().any(|o| *o == "*" || *o == attrs.operation.as_str());
    let groups = strings(&rule["apiGroups"]);
    let group_ok = groups.iter().any(|g| *g == "*" || *g == attrs.res.group);
    let versions = strings(&rule["apiVersions"]);
    // matchPolicy Equivalent: another version of the same resource matches too.
    let version_ok = !exact || versions.iter().any(|v| *v == "*" || *v == attrs.res.version);
    let resources = strings(&rule["resources"]);
    let plural = attrs.res.plural.as_str();
    let resource_ok = resources.iter().any(|r| {
        let (res, sub) = r.split_once('/').map_or((*r, None), |(a, b)| (a, Some(b)));
        let res_ok = res == "*" || res == plural;
        match (sub, attrs.sub) {
            (None, None) => res_ok,
            (None, Some(_)) => false,
            (Some(_), None) => false,
            (Some(want), Some(have)) => res_ok && (want == "*" || want == have),
        }
    });
    let scope_ok = match rule["scope"].as_str().unwrap_or("*") {
        "Namespaced" => attrs.res.namespaced,
        "Cluster" => !attrs.res.namespaced,
        _ => true,
    };
    op_ok && group_ok && version_ok && resource_ok && scope_ok
}

/// `metav1.LabelSelector` (matchLabels, matchExpressions) against labels; absent matches all.
fn selector_matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    if let Some(wanted) = selector["matchLabels"].as_object()
        && !wanted.iter().all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
    {
        return false;
    }
    selector["matchExpressions"].as_array().into_iter().flatten().all(|e| {
        let key = e["key"].as_str().unwrap_or_default();
        let values = strings(&e["values"]);
        let have = labels.get(key);
        match e["operator"].as_str().unwrap_or_default() {
            "In" => have.is_some_and(|v| values.contains(&v.as_str())),
            "NotIn" => have.is_none_or(|v| !values.contains(&v.as_str())),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    })
}

fn labels_of(obj: Option<&Value>) -> BTreeMap<String, String> {
    obj.and_then(|o| o["metadata"]["labels"].as_object())
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

/// Whether a webhook applies to this request and these objects.
fn applies(
    server: &Server,
    hook: &Hook,
    attrs: &Attributes<'_>,
    new: Option<&Value>,
    old: Option<&Value>,
) -> bool {
    let exact = hook.spec["matchPolicy"].as_str() == Some("Exact");
    if !hook.spec["rules"].as_array().is_some_and(|rules| rules.iter().any(|r| rule_matches(r, attrs, exact)))
    {
        return false;
    }
    // The namespace's labels (a Namespace's own, for namespaces).
    let namespace_selector = &hook.spec["namespaceSelector"];
    if !namespace_selector.is_null() {
        let labels = if attrs.res.group.is_empty() && attrs.res.plural == "namespaces" {
            labels_of(new.or(old))
        } else if attrs.res.namespaced {
            labels_of(server.store.get("/namespaces", attrs.namespace).map(|n| n.value()).as_ref())
        } else {
            BTreeMap::new()
        };
        if (attrs.res.namespaced || attrs.res.plural == "namespaces")
            && !selector_matches(namespace_selector, &labels)
        {
            return false;
        }
    }
    let object_selector = &hook.spec["objectSelector"];
    if !object_selector.is_null()
        && !selector_matches(object_selector, &labels_of(new))
        && !selector_matches(object_selector, &labels_of(old))
    {
        return false;
    }
    true
}

/// The webhooks whose rules match a request's resource and operation, read once per write
/// (selectors are checked against the objects later).
struct Chain {
    mutating: Vec<Hook>,
    validating: Vec<Hook>,
}

impl Chain {
    fn load(server: &Server, attrs: &Attributes<'_>) -> Chain {
        let matching = |table| -> Vec<Hook> {
            hooks(server, table)
                .into_iter()
                .filter(|h| {
                    h.spec["rules"]
                        .as_array()
                        .is_some_and(|rules| rules.iter().any(|r| rule_matches(r, attrs, false)))
                })
                .collect()
        };
        Chain { mutating: matching(MUTATING), validating: matching(VALIDATING) }
    }

    /// No webhook can apply: the fast path skips admission.
    fn is_empty(&self) -> bool {
        self.mutating.is_empty() && self.validating.is_empty()
    }
}

/// Where a webhook is: its URL and the CA to trust.
pub(crate) fn endpoint(server: &Server, config: &Value) -> Result<(String, Option<Vec<u8>>), String> {
    let ca = match config["caBundle"].as_str().filter(|s| !s.is_empty()) {
        Some(b64) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("caBundle is not base64: {e}"))?,
        ),
        None => None,
    };
    if let Some(url) = config["url"].as_str() {
        return Ok((url.to_string(), ca));
    }
    let service = &config["service"];
    let (namespace, name) =
        (service["namespace"].as_str().unwrap_or_default(), service["name"].as_str().unwrap_or_default());
    let path = service["path"].as_str().unwrap_or("/");
    let port = service["port"].as_u64().unwrap_or(443);
    let base = server
        .services
        .read()
        .get(&(namespace.to_string(), name.to_string()))
        .cloned()
        .unwrap_or_else(|| format!("https://{name}.{namespace}.svc:{port}"));
    Ok((format!("{}{path}", base.trim_end_matches('/')), ca))
}

/// A client for a webhook URL that trusts `ca` (or the system roots), and the parsed URL.
pub(crate) fn webhook_client(
    url: &str,
    ca: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<(krust_client::RestClient, http::Uri), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("invalid webhook URL {url:?}: {e}"))?;
    let origin: http::Uri =
        format!("{}://{}", uri.scheme_str().unwrap_or("https"), uri.authority().map_or("", |a| a.as_str()))
            .parse()
            .map_err(|e| format!("invalid webhook URL {url:?}: {e}"))?;
    let mut config = krust_client::Config::new(origin);
    config.tls.ca_data = ca;
    config.timeout = Some(timeout);
    config.max_retries = 0;
    config.qps = None;
    let client = krust_client::RestClient::unversioned(&config).map_err(|e| e.to_string())?;
    Ok((client, uri))
}

/// The version a webhook registered for when only an equivalent one matched the request
/// (matchPolicy Equivalent): the first version of its first rule that matches otherwise; `None`
/// when the request's own version matches (no conversion).
fn equivalent_version(hook: &Hook, attrs: &Attributes<'_>) -> Option<String> {
    let rules = hook.spec["rules"].as_array()?;
    if rules.iter().any(|r| rule_matches(r, attrs, true)) {
        return None;
    }
    let rule = rules.iter().find(|r| rule_matches(r, attrs, false))?;
    strings(&rule["apiVersions"]).first().map(|v| v.to_string())
}

/// `obj` in `group/version` (a custom resource through its conversion webhook; otherwise only
/// `apiVersion` changes, as with strategy None).
fn in_version(server: &Server, res: &ResourceDef, obj: &Value, version: &str) -> ApiResult<Value> {
    let desired = if res.group.is_empty() { version.to_string() } else { format!("{}/{version}", res.group) };
    if res.custom && res.conversion.as_ref().is_some_and(|c| c.webhook.is_some()) {
        let mut converted = crate::conversion::convert_blocking(server, res, vec![obj.clone()], &desired)?;
        return converted.pop().ok_or_else(|| ApiError::internal("the conversion returned no object"));
    }
    let mut obj = obj.clone();
    obj["apiVersion"] = Value::String(desired);
    Ok(obj)
}

/// Calls one webhook with an AdmissionReview in the version it registered for (`version`,
/// else the request's); returns its response object.
fn call(
    server: &Server,
    hook: &Hook,
    attrs: &Attributes<'_>,
    version: Option<&str>,
    new: Option<&Value>,
    old: Option<&Value>,
) -> Result<Value, String> {
    let (url, ca) = endpoint(server, &hook.spec["clientConfig"])?;
    let timeout = Duration::from_secs(hook.spec["timeoutSeconds"].as_u64().unwrap_or(10).clamp(1, 30));
    let (client, uri) = webhook_client(&url, ca, timeout)?;
    let res = attrs.res;
    let request_gvk = json!({"group": res.group, "version": res.version, "kind": res.kind});
    let request_gvr = json!({"group": res.group, "version": res.version, "resource": res.plural});
    let version = version.unwrap_or(&res.version);
    let gvk = json!({"group": res.group, "version": version, "kind": res.kind});
    let gvr = json!({"group": res.group, "version": version, "resource": res.plural});
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": new_uid(),
            "kind": gvk, "resource": gvr, "subResource": attrs.sub,
            "requestKind": request_gvk, "requestResource": request_gvr, "requestSubResource": attrs.sub,
            "name": attrs.name, "namespace": if res.namespaced { Some(attrs.namespace) } else { None },
            "operation": attrs.operation.as_str(),
            "userInfo": {"username": "system:admin", "groups": ["system:masters", "system:authenticated"]},
            "object": if attrs.operation == Operation::Delete { None } else { new },
            "oldObject": old,
            "dryRun": attrs.dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": match attrs.operation {
                Operation::Create => "CreateOptions", Operation::Update => "UpdateOptions", Operation::Delete => "DeleteOptions" }},
        }
    });
    let send = client.post().abs_path(uri.path()).body(&review).timeout(timeout).send();
    let failed =
        |e: String| format!("failed to call webhook: Post \"{url}?timeout={}s\": {e}", timeout.as_secs());
    let response = tokio::runtime::Handle::current().block_on(send).map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("the webhook answered {}", response.status())));
    }
    let answer: Value = response.into().map_err(|e| failed(e.to_string()))?;
    let result = answer["response"].clone();
    if !result.is_object() {
        return Err("received invalid webhook response: the AdmissionReview has no response".into());
    }
    Ok(result)
}

/// The denial of a webhook, worded as kube-apiserver's `ToStatusErr`.
fn denied(hook: &Hook, status: &Value) -> ApiError {
    let by = format!("admission webhook \"{}\" denied the request", hook.name);
    let message = status["message"].as_str().filter(|m| !m.is_empty());
    let reason = status["reason"].as_str().filter(|r| !r.is_empty());
    let text = match (message, reason) {
        (Some(m), _) => format!("{by}: {m}"),
        (None, Some(r)) => format!("{by}: {r}"),
        (None, None) => format!("{by} without explanation"),
    };
    let code = status["code"].as_u64().filter(|c| *c >= 400).unwrap_or(400) as u16;
    let reason_static: &'static str = match reason {
        Some("Invalid") => "Invalid",
        Some("Forbidden") => "Forbidden",
        Some("AlreadyExists") => "AlreadyExists",
        Some("Conflict") => "Conflict",
        Some("NotFound") => "NotFound",
        Some("BadRequest") => "BadRequest",
        _ if code == 403 => "Forbidden",
        _ if code == 422 => "Invalid",
        _ => "BadRequest",
    };
    let mut error =
        ApiError::new(StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST), reason_static, text);
    if status["details"].is_object() {
        error = error.with_details(status["details"].clone());
    }
    error
}

/// A failed call: ignored with `failurePolicy: Ignore`, else 500 as kube-apiserver says it.
fn call_failed(hook: &Hook, why: String) -> Option<ApiError> {
    if hook.spec["failurePolicy"].as_str() == Some("Ignore") {
        tracing::warn!(webhook = %hook.name, error = %why, "webhook call failed; ignored (failurePolicy Ignore)");
        return None;
    }
    Some(ApiError::internal(format!(
        "Internal error occurred: failed calling webhook \"{}\": {why}",
        hook.name
    )))
}

/// A webhook with side effects cannot be called on a dry run.
fn dry_run_refused(hook: &Hook, attrs: &Attributes<'_>) -> Option<ApiError> {
    let effects = hook.spec["sideEffects"].as_str().unwrap_or("Unknown");
    (attrs.dry_run && !matches!(effects, "None" | "NoneOnDryRun")).then(|| {
        ApiError::bad_request(format!("admission webhook \"{}\" does not support dry run", hook.name))
    })
}

/// The bytes of a JSON patch in a response: base64 text (Go's `[]byte`) or a list of numbers.
fn patch_bytes(patch: &Value) -> Option<Vec<u8>> {
    match patch {
        Value::String(b64) => base64::engine::general_purpose::STANDARD.decode(b64).ok(),
        Value::Array(_) => serde_json::from_value(patch.clone()).ok(),
        _ => None,
    }
}

/// Runs the mutating webhooks on `new`, in order.
fn mutate(
    server: &Server,
    chain: &Chain,
    attrs: &Attributes<'_>,
    new: &mut Value,
    old: Option<&Value>,
) -> ApiResult<()> {
    if attrs.operation == Operation::Delete {
        return Ok(());
    }
    for hook in &chain.mutating {
        if !applies(server, hook, attrs, Some(new), old) {
            continue;
        }
        if let Some(e) = dry_run_refused(hook, attrs) {
            return Err(e);
        }
        // Objects go in the webhook's version (matchPolicy Equivalent) and its patch applies
        // there; the result comes back in the request's.
        let version = equivalent_version(hook, attrs);
        let converted = match &version {
            Some(v) => {
                let new = in_version(server, attrs.res, new, v)?;
                let old = old.map(|o| in_version(server, attrs.res, o, v)).transpose()?;
                Some((new, old))
            }
            None => None,
        };
        let (sent_new, sent_old) = match &converted {
            Some((n, o)) => (n, o.as_ref()),
            None => (&*new, old),
        };
        let response = match call(server, hook, attrs, version.as_deref(), Some(sent_new), sent_old) {
            Ok(r) => r,
            Err(why) => match call_failed(hook, why) {
                Some(e) => return Err(e),
                None => continue,
            },
        };
        if response["allowed"] != json!(true) {
            return Err(denied(hook, &response["status"]));
        }
        if let Some(bytes) = response.get("patch").and_then(patch_bytes) {
            let mut converted_new = converted.map(|(n, _)| n);
            let target: &mut Value = match &mut converted_new {
                Some(n) => n,
                None => &mut *new,
            };
            let patch: json_patch::Patch = serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::internal(format!(
                    "Internal error occurred: admission webhook \"{}\" returned an invalid patch: {e}",
                    hook.name
                ))
            })?;
            json_patch::patch(target, &patch).map_err(|e| {
                ApiError::internal(format!(
                    "Internal error occurred: admission webhook \"{}\" returned a patch that cannot be applied: {e}",
                    hook.name
                ))
            })?;
            if let Some(patched) = converted_new {
                *new = in_version(server, attrs.res, &patched, &attrs.res.version)?;
            }
        }
    }
    Ok(())
}

/// Runs the validating webhooks (all of them; the first denial wins).
fn validate(
    server: &Server,
    chain: &Chain,
    attrs: &Attributes<'_>,
    new: Option<&Value>,
    old: Option<&Value>,
) -> ApiResult<()> {
    for hook in &chain.validating {
        if !applies(server, hook, attrs, new, old) {
            continue;
        }
        if let Some(e) = dry_run_refused(hook, attrs) {
            return Err(e);
        }
        let version = equivalent_version(hook, attrs);
        let converted = match &version {
            Some(v) => Some((
                new.map(|o| in_version(server, attrs.res, o, v)).transpose()?,
                old.map(|o| in_version(server, attrs.res, o, v)).transpose()?,
            )),
            None => None,
        };
        let (sent_new, sent_old) = match &converted {
            Some((n, o)) => (n.as_ref(), o.as_ref()),
            None => (new, old),
        };
        match call(server, hook, attrs, version.as_deref(), sent_new, sent_old) {
            Ok(response) if response["allowed"] == json!(true) => {}
            Ok(response) => return Err(denied(hook, &response["status"])),
            Err(why) => {
                if let Some(e) = call_failed(hook, why) {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// Stores the decision of `decide` on the current object, through the admission chain when a
/// webhook may apply: `decide` then runs on a snapshot (maybe more than once), the webhooks
/// run without the store held, and the result is stored only if the object is unchanged.
pub(crate) fn write(
    server: &Arc<Server>,
    attrs: &Attributes<'_>,
    storage: &Arc<str>,
    key: &str,
    decide: impl Fn(Option<&Stored>) -> ApiResult<Write>,
) -> ApiResult<Written> {
    let converting = crate::conversion::needs_webhook(attrs.res);
    let chain = Chain::load(server, attrs);
    if !converting && chain.is_empty() {
        return server.store.write(storage, key, |current, _| decide(current));
    }
    for _ in 0..10 {
        let stored = server.store.get(storage, key);
        // In the request's version (custom resources stored in another one are converted).
        let snapshot = stored.as_ref().map(|s| crate::conversion::view(server, attrs.res, s)).transpose()?;
        let old = snapshot.as_ref().map(Stored::value);
        // An update of an object that is not there (server-side apply) creates it.
        let mut attrs = *attrs;
        if attrs.operation == Operation::Update && snapshot.is_none() {
            attrs.operation = Operation::Create;
        }
        let attrs = &attrs;
        let decision = match decide(snapshot.as_ref())? {
            Write::Unchanged(s) => return Ok(Written::Unchanged(s)),
            Write::Put(mut obj) => {
                mutate(server, &chain, attrs, &mut obj, old.as_ref())?;
                validate(server, &chain, attrs, Some(&obj), old.as_ref())?;
                Write::Put(crate::conversion::to_storage(server, attrs.res, obj)?)
            }
            Write::Delete(obj) => {
                validate(server, &chain, attrs, None, old.as_ref().or(Some(&obj)))?;
                Write::Delete(crate::conversion::to_storage(server, attrs.res, obj)?)
            }
        };
        let expected = stored.as_ref().map(|s| s.rv);
        let mut decision = Some(decision);
        // Err(()): the object changed while the webhooks ran; compute again.
        let written = server.store.write(storage, key, |current, _| {
            if current.map(|c| c.rv) != expected {
                return Err(());
            }
            decision.take().ok_or(())
        });
        if let Ok(w) = written {
            return Ok(w);
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "Conflict",
        format!("the object {key} kept changing while admission webhooks ran; try again"),
    ))
}

/// Runs the admission chain on a new object that is not stored through [`write`] (a create
/// whose object is prepared up front): mutating webhooks on `obj`, then `prepare` (the
/// server's own validation and defaults), then validating webhooks.
pub(crate) fn admit_create(
    server: &Arc<Server>,
    attrs: &Attributes<'_>,
    obj: Value,
    prepare: impl FnOnce(Value) -> ApiResult<Value>,
) -> ApiResult<Value> {
    let chain = Chain::load(server, attrs);
    if chain.is_empty() {
        return prepare(obj);
    }
    let mut obj = obj;
    mutate(server, &chain, attrs, &mut obj, None)?;
    let prepared = prepare(obj)?;
    validate(server, &chain, attrs, Some(&prepared), None)?;
    Ok(prepared)
}
