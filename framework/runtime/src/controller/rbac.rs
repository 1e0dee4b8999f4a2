//! The RBAC a controller needs, derived from what it watches (controller-gen's role from
//! kubebuilder's `+kubebuilder:rbac` markers): [`WatchedResource`], [`WatchRole`] and
//! [`rbac_rules`].

use kube_core::{ApiResource, Resource};

/// How a controller uses a resource it watches, and so what its RBAC must allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WatchRole {
    /// The primary type: read, updated (finalizers, metadata) and its status written.
    Primary,
    /// An owned type: read and written (created, updated, deleted).
    Owned,
    /// A type only watched (mapped to requests): read.
    Watched,
}

/// One resource a controller watches ([`Controller::watched_resources`](super::Controller::watched_resources)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedResource {
    /// API group (`""` for the core group).
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// How the controller uses it.
    pub role: WatchRole,
}

impl WatchedResource {
    pub(crate) fn new(group: &str, version: &str, plural: &str, role: WatchRole) -> Self {
        WatchedResource { group: group.into(), version: version.into(), plural: plural.into(), role }
    }

    pub(crate) fn typed<K: Resource<DynamicType = ()>>(role: WatchRole) -> Self {
        Self::new(&K::group(&()), &K::version(&()), &K::plural(&()), role)
    }

    pub(crate) fn of(resource: &ApiResource, role: WatchRole) -> Self {
        Self::new(&resource.group, &resource.version, &resource.plural, role)
    }
}

/// The least-privilege RBAC rules for `resources` (controller-gen's role from kubebuilder
/// markers, derived here from what the controllers watch): primary types `get, list, watch,
/// update, patch`, their `status` `get, update, patch` and `finalizers` `update` (owner
/// references with `blockOwnerDeletion` need it); owned types also `create` and `delete`; other
/// watched types `get, list, watch`. Resources of one group with the same verbs share a rule;
/// the order is stable (by group, then verbs, then resource).
pub fn rbac_rules<'a>(
    resources: impl IntoIterator<Item = &'a WatchedResource>,
) -> Vec<k8s_openapi::api::rbac::v1::PolicyRule> {
    use std::collections::{BTreeMap, BTreeSet};
    // Verbs in the order kubectl and controller-gen write them.
    const ORDER: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete"];
    const READ: &[&str] = &["get", "list", "watch"];
    const PRIMARY: &[&str] = &["get", "list", "watch", "update", "patch"];
    const STATUS: &[&str] = &["get", "update", "patch"];
    const FINALIZERS: &[&str] = &["update"];
    const OWNED: &[&str] = ORDER;
    // (group, resource) -> the union of the verbs each use asks for.
    let mut wanted: BTreeMap<(String, String), BTreeSet<&str>> = BTreeMap::new();
    let mut want = |group: &str, resource: String, verbs: &[&'static str]| {
        wanted.entry((group.to_string(), resource)).or_default().extend(verbs.iter().copied());
    };
    for r in resources {
        match r.role {
            WatchRole::Primary => {
                want(&r.group, r.plural.clone(), PRIMARY);
                want(&r.group, format!("{}/status", r.plural), STATUS);
                want(&r.group, format!("{}/finalizers", r.plural), FINALIZERS);
            }
            WatchRole::Owned => want(&r.group, r.plural.clone(), OWNED),
            WatchRole::Watched => want(&r.group, r.plural.clone(), READ),
        }
    }
    let mut rules: BTreeMap<(String, Vec<&str>), BTreeSet<String>> = BTreeMap::new();
    for ((group, resource), verbs) in wanted {
        let verbs: Vec<&str> = ORDER.iter().copied().filter(|v| verbs.contains(v)).collect();
        rules.entry((group, verbs)).or_default().insert(resource);
    }
    rules
        .into_iter()
        .map(|((group, verbs), resources)| k8s_openapi::api::rbac::v1::PolicyRule {
            api_groups: Some(vec![group]),
            resources: Some(resources.into_iter().collect()),
            verbs: verbs.into_iter().map(String::from).collect(),
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rbac_rules_union_the_uses_of_each_resource_and_group_equal_verbs() {
        let resources = [
            WatchedResource::new("example.com", "v1", "widgets", WatchRole::Primary),
            WatchedResource::new("", "v1", "configmaps", WatchRole::Owned),
            WatchedResource::new("", "v1", "secrets", WatchRole::Watched),
            WatchedResource::new("", "v1", "services", WatchRole::Owned),
            // Watched and owned by another controller: the owner's verbs win.
            WatchedResource::new("", "v1", "secrets", WatchRole::Owned),
            WatchedResource::new("apps", "v1", "deployments", WatchRole::Watched),
        ];
        let rules: Vec<(Vec<String>, Vec<String>, Vec<String>)> = rbac_rules(&resources)
            .into_iter()
            .map(|r| (r.api_groups.unwrap(), r.resources.unwrap(), r.verbs))
            .collect();
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let all = s(&["get", "list", "watch", "create", "update", "patch", "delete"]);
        assert_eq!(
            rules,
            vec![
                (s(&[""]), s(&["configmaps", "secrets", "services"]), all),
                (s(&["apps"]), s(&["deployments"]), s(&["get", "list", "watch"])),
                (s(&["example.com"]), s(&["widgets"]), s(&["get", "list", "watch", "update", "patch"])),
                (s(&["example.com"]), s(&["widgets/status"]), s(&["get", "update", "patch"])),
                (s(&["example.com"]), s(&["widgets/finalizers"]), s(&["update"])),
            ]
        );
    }
}
