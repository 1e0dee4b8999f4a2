//! The resource types the server serves: the built-in table (group, version, kind, plural,
//! singular, scope, short names, categories, subresources, as a real kube-apiserver lists them in
//! discovery) and the resources that custom resource definitions add at run time.

use std::sync::Arc;

use base64::Engine;

/// The verbs of a full resource, in the order discovery lists them.
pub(crate) const ALL_VERBS: &[&str] =
    &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
/// The verbs of namespaces (no deletecollection).
const NAMESPACE_VERBS: &[&str] = &["create", "delete", "get", "list", "patch", "update", "watch"];
/// The verbs of a status or scale subresource.
pub(crate) const SUBRESOURCE_VERBS: &[&str] = &["get", "patch", "update"];
/// The verbs of review APIs and of `serviceaccounts/token`.
pub(crate) const CREATE_ONLY: &[&str] = &["create"];

/// The verbs of a subresource.
pub(crate) fn subresource_verbs(name: &str) -> &'static [&'static str] {
    if name == "token" { CREATE_ONLY } else { SUBRESOURCE_VERBS }
}

/// A subresource (`status`, `scale`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Subresource {
    pub name: String,
    pub kind: String,
    /// Group and version of the subresource's kind (`autoscaling/v1` for scale), empty when it
    /// is the parent's.
    pub group: String,
    pub version: String,
}

/// How generation is kept for a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Generation {
    /// No `metadata.generation`.
    None,
    /// Starts at 1, +1 when `spec` changes.
    Spec,
    /// Starts at 1, +1 on any change but metadata and status (custom resources).
    AllButMetadataAndStatus,
}

/// One served resource (one group, version and plural).
#[derive(Clone, Debug)]
pub(crate) struct ResourceDef {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
    pub subresources: Vec<Subresource>,
    pub generation: Generation,
    /// Custom resources: strategic merge patch is refused (415).
    pub custom: bool,
    /// The storage key shared by all versions of the resource: `group/plural`.
    pub storage: String,
    /// The CRD's validation schema and settings, for custom resources.
    pub schema: Option<Arc<crate::crd::Schema>>,
    /// The CRD version's `additionalPrinterColumns` (custom resources; empty otherwise).
    pub columns: Vec<crate::table::PrinterColumn>,
    /// How the versions of a custom resource convert (custom resources only).
    pub conversion: Option<Arc<crate::conversion::Conversion>>,
}

impl ResourceDef {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `pods` or `deployments.apps`, as names appear in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.iter().any(|s| s.name == name)
    }

    /// kube-apiserver's storageVersionHash: base64 of the first 8 bytes of
    /// sha256("group/version/kind") of the storage version.
    pub fn storage_version_hash(&self) -> String {
        // The storage version, which is not always the served one: events.k8s.io/v1 Events are
        // stored as core/v1 Events, and CRDs still as apiextensions.k8s.io/v1beta1.
        let (group, version) = match self.group.as_str() {
            "events.k8s.io" => ("", "v1"),
            "apiextensions.k8s.io" => ("apiextensions.k8s.io", "v1beta1"),
            _ => (self.group.as_str(), self.version.as_str()),
        };
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            format!("{group}/{version}/{}", self.kind).as_bytes(),
        );
        base64::engine::general_purpose::STANDARD.encode(&digest.as_ref()[..8])
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    scale: bool,
    /// A review API: `create` only, nothing stored.
    create_only: bool,
    generation: Generation,
}

const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names: &[],
        categories: &[],
        status: false,
        scale: false,
        create_only: false,
        generation: Generation::None,
    }
}

impl Builtin {
    const fn short(mut self, s: &'static [&'static str]) -> Self {
        self.short_names = s;
        self
    }
    const fn cat(mut self, c: &'static [&'static str]) -> Self {
        self.categories = c;
        self
    }
    const fn status(mut self) -> Self {
        self.status = true;
        self
    }
    const fn create_only(mut self) -> Self {
        self.create_only = true;
        self
    }
    const fn scale(mut self) -> Self {
        self.scale = true;
        self
    }
    const fn generation(mut self) -> Self {
        self.generation = Generation::Spec;
        self
    }
}

const ALL: &[&str] = &["all"];

/// The built-in resources (kube-apiserver's, as its discovery documents describe them).
const BUILTINS: &[Builtin] = &[
    b("", "v1", "ConfigMap", "configmaps", "configmap", true).short(&["cm"]),
    b("", "v1", "Endpoints", "endpoints", "endpoints", true).short(&["ep"]),
    b("", "v1", "Event", "events", "event", true).short(&["ev"]),
    b("", "v1", "Namespace", "namespaces", "namespace", false).short(&["ns"]).status(),
    b("", "v1", "Node", "nodes", "node", false).short(&["no"]).status(),
    b("", "v1", "Pod", "pods", "pod", true).short(&["po"]).cat(ALL).status(),
    b("", "v1", "Secret", "secrets", "secret", true),
    b("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true).short(&["sa"]),
    b("", "v1", "Service", "services", "service", true).short(&["svc"]).cat(ALL).status(),
    b("apps", "v1", "DaemonSet", "daemonsets", "daemonset", true)
        .short(&["ds"])
        .cat(ALL)
        .status()
        .generation(),
    b("apps", "v1", "Deployment", "deployments", "deployment", true)
        .short(&["deploy"])
        .cat(ALL)
        .status()
        .scale()
        .generation(),
    b("apps", "v1", "ReplicaSet", "replicasets", "replicaset", true)
        .short(&["rs"])
        .cat(ALL)
        .status()
        .scale()
        .generation(),
    b("apps", "v1", "StatefulSet", "statefulsets", "statefulset", true)
        .short(&["sts"])
        .cat(ALL)
        .status()
        .scale()
        .generation(),
    b("batch", "v1", "CronJob", "cronjobs", "cronjob", true).short(&["cj"]).cat(ALL).status().generation(),
    b("batch", "v1", "Job", "jobs", "job", true).cat(ALL).status().generation(),
    b("coordination.k8s.io", "v1", "Lease", "leases", "lease", true),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        false,
    )
    .cat(&["api-extensions"]),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        "validatingwebhookconfiguration",
        false,
    )
    .cat(&["api-extensions"]),
    b("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", true)
        .short(&["netpol"])
        .generation(),
    b("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", true)
        .short(&["pdb"])
        .status()
        .generation(),
    b("events.k8s.io", "v1", "Event", "events", "event", true).short(&["ev"]),
    b("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview", false)
        .create_only(),
    b("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", "tokenreview", false).create_only(),
    b(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        "localsubjectaccessreview",
        true,
    )
    .create_only(),
    b(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        false,
    )
    .create_only(),
    b(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        "subjectaccessreview",
        false,
    )
    .create_only(),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        false,
    ),
    b("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", false),
    b("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", true),
    b("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", true),
    b(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "customresourcedefinition",
        false,
    )
    .short(&["crd", "crds"])
    .cat(&["api-extensions"])
    .status()
    .generation(),
];

/// The built-in resources as definitions.
pub(crate) fn builtins() -> Vec<Arc<ResourceDef>> {
    BUILTINS
        .iter()
        .map(|b| {
            let mut subresources = Vec::new();
            if b.scale {
                subresources.push(Subresource {
                    name: "scale".into(),
                    kind: "Scale".into(),
                    group: "autoscaling".into(),
                    version: "v1".into(),
                });
            }
            if b.plural == "serviceaccounts" {
                subresources.push(Subresource {
                    name: "token".into(),
                    kind: "TokenRequest".into(),
                    group: "authentication.k8s.io".into(),
                    version: "v1".into(),
                });
            }
            if b.status {
                subresources.push(Subresource {
                    name: "status".into(),
                    kind: b.kind.into(),
                    group: String::new(),
                    version: String::new(),
                });
            }
            let verbs = if b.create_only {
                CREATE_ONLY
            } else if b.plural == "namespaces" {
                NAMESPACE_VERBS
            } else {
                ALL_VERBS
            };
            Arc::new(ResourceDef {
                group: b.group.into(),
                version: b.version.into(),
                kind: b.kind.into(),
                list_kind: format!("{}List", b.kind),
                plural: b.plural.into(),
                singular: b.singular.into(),
                namespaced: b.namespaced,
                short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
                categories: b.categories.iter().map(|s| s.to_string()).collect(),
                verbs: verbs.iter().map(|s| s.to_string()).collect(),
                subresources,
                generation: b.generation,
                custom: false,
                storage: format!("{}/{}", b.group, b.plural),
                schema: None,
                columns: Vec::new(),
                conversion: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_version_hash_matches_kube_apiserver() {
        let all = builtins();
        let find = |g: &str, p: &str| all.iter().find(|r| r.group == g && r.plural == p).unwrap().clone();
        // Values from the discovery documents of a real kube-apiserver.
        assert_eq!(find("", "configmaps").storage_version_hash(), "qFsyl6wFWjQ=");
        assert_eq!(find("", "pods").storage_version_hash(), "xPOwRZ+Yhw8=");
        assert_eq!(find("apps", "deployments").storage_version_hash(), "8aSe+NMegvE=");
    }
}
