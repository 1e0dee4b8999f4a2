//! The `{{kind}}` custom resource. The CRD is generated from these types: `{{project-name}} crdgen`
//! prints it (the chart's `crds/crd.yaml` holds that output; a test fails when it is stale).

use std::time::Duration;

use krust::{
    Clientset, k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    prelude::*, runtime::controller::helpers,
};

// `#[krust::custom_resource(...)]` takes kube-derive's `#[kube(...)]` arguments and derives the
// `{{kind}}` resource type (with its CRD) from this spec.
/// What a {{kind}} asks for.
#[krust::custom_resource(
    group = "{{group}}",
    version = "{{api_version}}",
    kind = "{{kind}}",
    plural = "{{plural}}",
{%- if scope == "Namespaced" %}
    namespaced,
{%- endif %}
    status = "{{kind}}Status",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct {{kind}}Spec {
{%- if scope == "Cluster" %}
    /// The namespace of the ConfigMap the operator keeps for this {{kind}}.
    pub target_namespace: String,
{%- endif %}
    /// A greeting: the operator writes it into the ConfigMap it owns (replace with your fields).
    pub message: String,
}

/// What the operator observed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct {{kind}}Status {
    /// The generation last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions; `Ready` says whether the ConfigMap is in shape.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// The CRD of [`{{kind}}`], as the cluster should have it.
pub fn crd() -> CustomResourceDefinition {
    {{kind}}::crd()
}

/// The CRD as YAML (what `crdgen` prints).
pub fn crd_yaml() -> anyhow::Result<String> {
    Ok(serde_saphyr::to_string(&crd())?)
}

/// Installs (or updates) the CRD with server-side apply and waits until it is established.
/// The chart installs it from `crds/` in a cluster; this is for local runs and tests.
pub async fn install(clientset: &Clientset) -> anyhow::Result<()> {
    let crds = clientset.apiextensions_v1().custom_resource_definitions();
    crds.apply(&crd(), &PatchOptions::apply(crate::reconciler::MANAGER).force()).await?;
    let established = |c: Option<&CustomResourceDefinition>| {
        c.and_then(|c| c.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
    };
    helpers::wait_for(&crds, {{kind}}::crd_name(), established, Duration::from_secs(30)).await?;
    Ok(())
}
