//! What a body of a built-in kind must look like: decoded into its Rust type (k8s-openapi's, as
//! kube-apiserver decodes into its Go structs), so a value of the wrong type — a list in a
//! ConfigMap's `data`, a number as a label, `replicas: 1e20` — is refused instead of stored; and
//! the few rules every client meets (workloads have a selector, replicas are never negative).
//! Custom resources get the same check of their metadata (their schema checks the rest).
//!
//! Mirrors kube-apiserver's decoding (`runtime.Decode` into the internal types) and the
//! `ValidateNonnegativeField` checks of the apps and core validation.

use http::StatusCode;
use k8s_openapi::{
    api::{
        admissionregistration::v1 as admissionregistration, apps::v1 as apps, batch::v1 as batch,
        coordination::v1 as coordination, core::v1 as core, events::v1 as events,
        networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions,
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    resources::ResourceDef,
    status::{ApiError, ApiResult},
};

/// Checks a complete object (after defaults, merges and patches) of `res`.
pub(crate) fn check(res: &ResourceDef, name: &str, obj: &Value) -> ApiResult<()> {
    if res.custom {
        if let Some(meta) = obj.get("metadata") {
            decode::<ObjectMeta>(res, name, meta, "metadata.")?;
        }
        return Ok(());
    }
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "ConfigMap") => decode::<core::ConfigMap>(res, name, obj, ""),
        ("", "Endpoints") => decode::<core::Endpoints>(res, name, obj, ""),
        ("", "Event") => decode::<core::Event>(res, name, obj, ""),
        ("", "Namespace") => decode::<core::Namespace>(res, name, obj, ""),
        ("", "Node") => decode::<core::Node>(res, name, obj, ""),
        ("", "Pod") => decode::<core::Pod>(res, name, obj, ""),
        ("", "Secret") => decode::<core::Secret>(res, name, obj, ""),
        ("", "ServiceAccount") => decode::<core::ServiceAccount>(res, name, obj, ""),
        ("", "Service") => decode::<core::Service>(res, name, obj, ""),
        ("apps", "DaemonSet") => decode::<apps::DaemonSet>(res, name, obj, ""),
        ("apps", "Deployment") => decode::<apps::Deployment>(res, name, obj, ""),
        ("apps", "ReplicaSet") => decode::<apps::ReplicaSet>(res, name, obj, ""),
        ("apps", "StatefulSet") => decode::<apps::StatefulSet>(res, name, obj, ""),
        ("batch", "CronJob") => decode::<batch::CronJob>(res, name, obj, ""),
        ("batch", "Job") => decode::<batch::Job>(res, name, obj, ""),
        ("coordination.k8s.io", "Lease") => decode::<coordination::Lease>(res, name, obj, ""),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            decode::<admissionregistration::MutatingWebhookConfiguration>(res, name, obj, "")
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            decode::<admissionregistration::ValidatingWebhookConfiguration>(res, name, obj, "")
        }
        ("networking.k8s.io", "NetworkPolicy") => decode::<networking::NetworkPolicy>(res, name, obj, ""),
        ("policy", "PodDisruptionBudget") => decode::<policy::PodDisruptionBudget>(res, name, obj, ""),
        ("events.k8s.io", "Event") => decode::<events::Event>(res, name, obj, ""),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            decode::<rbac::ClusterRoleBinding>(res, name, obj, "")
        }
        ("rbac.authorization.k8s.io", "ClusterRole") => decode::<rbac::ClusterRole>(res, name, obj, ""),
        ("rbac.authorization.k8s.io", "RoleBinding") => decode::<rbac::RoleBinding>(res, name, obj, ""),
        ("rbac.authorization.k8s.io", "Role") => decode::<rbac::Role>(res, name, obj, ""),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            decode::<apiextensions::CustomResourceDefinition>(res, name, obj, "")
        }
        _ => Ok(()),
    }?;
    if res.group == "apps" && obj["spec"]["selector"].is_null() {
        return Err(ApiError::invalid(res, name, &[("spec.selector".into(), "Required value".into())]));
    }
    if matches!(res.kind.as_str(), "Deployment" | "ReplicaSet" | "StatefulSet")
        && let Some(replicas) = obj["spec"]["replicas"].as_i64()
        && replicas < 0
    {
        return Err(ApiError::invalid(
            res,
            name,
            &[(
                "spec.replicas".into(),
                format!("Invalid value: {replicas}: must be greater than or equal to 0"),
            )],
        ));
    }
    Ok(())
}

/// Decodes `value` as `T`: a value of the wrong type is 400 (kube-apiserver's decoder error), a
/// required field that is missing is 422 (its validation's "Required value").
fn decode<T: DeserializeOwned>(res: &ResourceDef, name: &str, value: &Value, prefix: &str) -> ApiResult<()> {
    let Err(error) = serde_path_to_error::deserialize::<_, T>(value) else { return Ok(()) };
    let path = error.path().to_string();
    let message = error.inner().to_string();
    let at = if path == "." { prefix.trim_end_matches('.').to_string() } else { format!("{prefix}{path}") };
    if let Some(field) = message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
        let field = if at.is_empty() { field.to_string() } else { format!("{at}.{field}") };
        return Err(ApiError::invalid(res, name, &[(field, "Required value".into())]));
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {at}{sep}{message}",
            kind = res.kind,
            version = res.version,
            sep = if at.is_empty() { "" } else { ": " },
        ),
    ))
}
