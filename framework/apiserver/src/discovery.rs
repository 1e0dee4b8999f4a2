//! Discovery documents, in the shapes of a real kube-apiserver: `/api`, `/apis`, `/api/v1`,
//! `/apis/<group>`, `/apis/<group>/<version>`, and aggregated discovery (`apidiscovery.k8s.io/v2`)
//! for `/api` and `/apis`.

use std::{collections::BTreeMap, sync::Arc};

use serde_json::{Value, json};

use crate::resources::{ResourceDef, subresource_verbs};

/// The content type that marks an aggregated discovery answer (clients check it).
pub(crate) const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
/// The v2beta1 form, still sent by older clients.
pub(crate) const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// Whether an `Accept` header asks for aggregated discovery (and which version).
pub(crate) fn wants_aggregated(accept: &str) -> Option<&'static str> {
    // The first acceptable media type wins, as content negotiation does.
    for part in accept.split(',') {
        let compact: String = part.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.contains("as=APIGroupDiscoveryList") && compact.contains("g=apidiscovery.k8s.io") {
            if compact.contains("v=v2beta1") {
                return Some(AGGREGATED_V2BETA1);
            }
            if compact.contains("v=v2") {
                return Some(AGGREGATED_V2);
            }
        }
        if compact.starts_with("application/json") && !compact.contains("as=") {
            return None;
        }
    }
    None
}

/// Groups in the order kube-apiserver lists them (then any other group, alphabetically).
const GROUP_ORDER: &[&str] = &[
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
];

fn group_rank(group: &str) -> (usize, String) {
    (GROUP_ORDER.iter().position(|g| *g == group).unwrap_or(GROUP_ORDER.len()), group.to_string())
}

/// The resources of one version of a group.
type Versions = Vec<(String, Vec<Arc<ResourceDef>>)>;

/// group -> versions (by kube's version priority, preferred first) -> resources sorted by plural.
fn grouped(resources: &[Arc<ResourceDef>]) -> Vec<(String, Versions)> {
    let mut groups: BTreeMap<(usize, String), Versions> = BTreeMap::new();
    for r in resources {
        let versions = groups.entry(group_rank(&r.group)).or_default();
        match versions.iter_mut().find(|(v, _)| *v == r.version) {
            Some((_, list)) => list.push(r.clone()),
            None => versions.push((r.version.clone(), vec![r.clone()])),
        }
    }
    groups
        .into_iter()
        .map(|((_, g), mut versions)| {
            for (_, list) in &mut versions {
                list.sort_by(|a, b| a.plural.cmp(&b.plural));
            }
            // kube-apiserver's version priority: v2 before v1 before v1beta1 (the first is
            // the preferred version, the one kubectl uses).
            versions.sort_by_key(|(v, _)| std::cmp::Reverse(kube_core::Version::parse(v).priority()));
            (g, versions)
        })
        .collect()
}

/// `GET /api`.
pub(crate) fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_json(group: &str, versions: &[(String, Vec<Arc<ResourceDef>>)]) -> Value {
    let versions: Vec<Value> =
        versions.iter().map(|(v, _)| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect();
    json!({"name": group, "versions": versions, "preferredVersion": versions[0]})
}

/// `GET /apis`.
pub(crate) fn api_group_list(resources: &[Arc<ResourceDef>]) -> Value {
    let groups: Vec<Value> =
        grouped(resources).iter().filter(|(g, _)| !g.is_empty()).map(|(g, v)| group_json(g, v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/<group>`, or `None` when the group is not served.
pub(crate) fn api_group(resources: &[Arc<ResourceDef>], group: &str) -> Option<Value> {
    grouped(resources).iter().find(|(g, _)| g == group).map(|(g, v)| {
        let mut doc = group_json(g, v);
        doc["kind"] = json!("APIGroup");
        doc["apiVersion"] = json!("v1");
        doc
    })
}

/// `GET /api/v1` or `GET /apis/<group>/<version>`, or `None` when not served.
pub(crate) fn resource_list(resources: &[Arc<ResourceDef>], group: &str, version: &str) -> Option<Value> {
    let mut list: Vec<&Arc<ResourceDef>> =
        resources.iter().filter(|r| r.group == group && r.version == version).collect();
    if list.is_empty() {
        return None;
    }
    list.sort_by(|a, b| a.plural.cmp(&b.plural));
    let mut entries = Vec::new();
    for r in list {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
            "storageVersionHash": r.storage_version_hash(),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        entries.push(entry);
        let mut subs = r.subresources.clone();
        subs.sort_by(|a, b| a.name.cmp(&b.name));
        for s in subs {
            let mut entry = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": subresource_verbs(&s.name),
            });
            if !s.group.is_empty() {
                entry["group"] = json!(s.group);
                entry["version"] = json!(s.version);
            }
            entries.push(entry);
        }
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    let mut doc = json!({"kind": "APIResourceList", "groupVersion": gv, "resources": entries});
    if !group.is_empty() {
        // The core group's list has no apiVersion, as kube-apiserver's.
        doc["apiVersion"] = json!("v1");
    }
    Some(doc)
}

/// Aggregated discovery for `/api` (`core == true`) or `/apis`.
pub(crate) fn aggregated(resources: &[Arc<ResourceDef>], core: bool, content_type: &str) -> Value {
    let items: Vec<Value> = grouped(resources)
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|(v, list)| {
                    let resources: Vec<Value> = list.iter().map(|r| aggregated_resource(r)).collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    let api_version = if content_type == AGGREGATED_V2BETA1 {
        "apidiscovery.k8s.io/v2beta1"
    } else {
        "apidiscovery.k8s.io/v2"
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items})
}

fn aggregated_resource(r: &ResourceDef) -> Value {
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": {"group": "", "version": "", "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        let mut subs = r.subresources.clone();
        subs.sort_by(|a, b| a.name.cmp(&b.name));
        let subs: Vec<Value> = subs
            .iter()
            .map(|s| {
                json!({
                    "subresource": s.name,
                    "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                    "verbs": subresource_verbs(&s.name),
                })
            })
            .collect();
        entry["subresources"] = json!(subs);
    }
    entry
}
