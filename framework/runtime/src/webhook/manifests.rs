//! The webhook configurations a server's typed handlers need (what kubebuilder generates from
//! its `+kubebuilder:webhook` markers): one [`WebhookSpec`] per validator or defaulter —
//! name, path, rules — and the Mutating/ValidatingWebhookConfiguration objects built from them
//! for a given client configuration (a Service in a cluster, a URL for a local run).

use k8s_openapi::{
    ByteString,
    api::admissionregistration::v1::{
        MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
        ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube_core::Resource;
use serde::{Deserialize, Serialize};

/// Which configuration a webhook belongs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookType {
    /// A `MutatingWebhookConfiguration` (defaulters).
    Mutating,
    /// A `ValidatingWebhookConfiguration` (validators).
    Validating,
}

/// One webhook of a server, as its configuration names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// The webhook's name (`v<kind>-<version>.<group>` or `m…`, lowercase).
    pub name: String,
    /// Mutating or validating.
    #[serde(rename = "type")]
    pub type_: WebhookType,
    /// The path it is served at.
    pub path: String,
    /// What it is called for.
    pub rules: Vec<RuleWithOperations>,
}

impl WebhookSpec {
    /// The spec of a typed webhook of `K` for `operations`.
    pub(crate) fn of<K: Resource<DynamicType = ()>>(
        type_: WebhookType,
        path: String,
        operations: &[&str],
    ) -> Self {
        let group = K::group(&());
        let domain = if group.is_empty() { "core.krust.dev".to_string() } else { group.to_string() };
        let prefix = match type_ {
            WebhookType::Mutating => "m",
            WebhookType::Validating => "v",
        };
        WebhookSpec {
            name: format!("{prefix}{}-{}.{domain}", K::kind(&()).to_lowercase(), K::version(&())),
            type_,
            path,
            rules: vec![RuleWithOperations {
                api_groups: Some(vec![group.to_string()]),
                api_versions: Some(vec![K::version(&()).to_string()]),
                resources: Some(vec![K::plural(&()).to_string()]),
                operations: Some(operations.iter().map(|o| o.to_string()).collect()),
                scope: Some("*".to_string()),
            }],
        }
    }
}

/// Where the API server reaches the webhook server.
#[derive(Clone, Debug)]
pub enum WebhookEndpoint {
    /// A Service in the cluster (port 443 unless given), as the Helm chart deploys it.
    Service {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Its port.
        port: Option<i32>,
    },
    /// A URL (`https://host:port`) the API server dials directly, for a local run; each
    /// webhook's path is appended.
    Url(String),
}

/// The Mutating- and ValidatingWebhookConfiguration named `name` holding `webhooks` (either is
/// `None` when no webhook is of its type): `sideEffects: None`, `admissionReviewVersions:
/// [v1]`, `failurePolicy: Fail`, 10 s timeouts, and `ca_bundle` (PEM) to verify the server.
pub fn webhook_configurations(
    name: &str,
    webhooks: &[WebhookSpec],
    endpoint: &WebhookEndpoint,
    ca_bundle: Option<&[u8]>,
) -> (Option<MutatingWebhookConfiguration>, Option<ValidatingWebhookConfiguration>) {
    let client = |path: &str| {
        let mut config = WebhookClientConfig {
            ca_bundle: ca_bundle.map(|ca| ByteString(ca.to_vec())),
            ..Default::default()
        };
        match endpoint {
            WebhookEndpoint::Service { namespace, name, port } => {
                config.service = Some(ServiceReference {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    path: Some(path.to_string()),
                    port: *port,
                });
            }
            WebhookEndpoint::Url(base) => config.url = Some(format!("{}{path}", base.trim_end_matches('/'))),
        }
        config
    };
    let meta = || ObjectMeta { name: Some(name.to_string()), ..Default::default() };
    let versions = || vec!["v1".to_string()];
    let mutating: Vec<MutatingWebhook> = webhooks
        .iter()
        .filter(|w| w.type_ == WebhookType::Mutating)
        .map(|w| MutatingWebhook {
            name: w.name.clone(),
            admission_review_versions: versions(),
            client_config: client(&w.path),
            failure_policy: Some("Fail".into()),
            side_effects: "None".into(),
            timeout_seconds: Some(10),
            rules: Some(w.rules.clone()),
            ..Default::default()
        })
        .collect();
    let validating: Vec<ValidatingWebhook> = webhooks
        .iter()
        .filter(|w| w.type_ == WebhookType::Validating)
        .map(|w| ValidatingWebhook {
            name: w.name.clone(),
            admission_review_versions: versions(),
            client_config: client(&w.path),
            failure_policy: Some("Fail".into()),
            side_effects: "None".into(),
            timeout_seconds: Some(10),
            rules: Some(w.rules.clone()),
            ..Default::default()
        })
        .collect();
    (
        (!mutating.is_empty())
            .then(|| MutatingWebhookConfiguration { metadata: meta(), webhooks: Some(mutating) }),
        (!validating.is_empty())
            .then(|| ValidatingWebhookConfiguration { metadata: meta(), webhooks: Some(validating) }),
    )
}

/// Points `crd`'s conversion at a webhook (`strategy: Webhook`, ConversionReview `v1`) served at
/// `path` of `endpoint`, verified with `ca_bundle` (PEM).
pub fn set_conversion_webhook(
    crd: &mut k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    endpoint: &WebhookEndpoint,
    path: &str,
    ca_bundle: Option<&[u8]>,
) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    let mut client = ext::WebhookClientConfig {
        ca_bundle: ca_bundle.map(|ca| ByteString(ca.to_vec())),
        ..Default::default()
    };
    match endpoint {
        WebhookEndpoint::Service { namespace, name, port } => {
            client.service = Some(ext::ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                path: Some(path.to_string()),
                port: *port,
            });
        }
        WebhookEndpoint::Url(base) => client.url = Some(format!("{}{path}", base.trim_end_matches('/'))),
    }
    crd.spec.conversion = Some(ext::CustomResourceConversion {
        strategy: "Webhook".into(),
        webhook: Some(ext::WebhookConversion {
            client_config: Some(client),
            conversion_review_versions: vec!["v1".into()],
        }),
    });
}
