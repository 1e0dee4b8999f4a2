//! The discovery client (client-go's `discovery.DiscoveryClient`), its in-memory and disk
//! caches, and a RESTMapper.
//!
//! - Aggregated discovery (`apidiscovery.k8s.io/v2`, two requests for everything) is used when
//!   the server answers it (checked by the response's Content-Type, as client-go does); else the
//!   legacy endpoints, one per group version, fetched concurrently.
//! - A group version that fails does not fail the rest: [`Discovery::failed`] holds its error,
//!   like client-go's `ErrGroupDiscoveryFailed`.
//! - [`RestMapper`] maps GVK -> GVR (plural, scope), GVR -> GVK, and resolves plural, singular
//!   and short names (`deploy`, `deployments`, `deployment.apps`, `Deployment`); on a miss it
//!   invalidates the cache and looks again once, so it learns new CRDs.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let config = server.kubeconfig().config;
//! use krust_client::{CachedDiscovery, DiscoveryClient, RestMapper};
//!
//! let discovery = DiscoveryClient::new(&config)?;
//! let groups = discovery.server_groups().await?;
//! assert!(groups.groups.iter().any(|g| g.name == "apps"));
//!
//! // Names as kubectl takes them: short names, plurals, kinds, with or without the group.
//! let mapper = RestMapper::new(CachedDiscovery::new(discovery));
//! for name in ["deploy", "deployments", "deployment.apps", "Deployment"] {
//!     let mapping = mapper.resolve(name).await?;
//!     assert_eq!((mapping.gvr.group.as_str(), mapping.gvr.resource.as_str()), ("apps", "deployments"));
//!     assert!(mapping.namespaced);
//! }
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use futures_util::future::join_all;
use http::HeaderValue;
use k8s_openapi::apimachinery::pkg::{
    apis::meta::v1::{
        APIGroup, APIGroupList, APIResource, APIResourceList, APIVersions, GroupVersionForDiscovery,
    },
    version::Info,
};
use kube_core::{GroupVersionKind, GroupVersionResource};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{config::Config, error::Error, error::Result, rest::RestClient};

const AGGREGATED: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

/// Everything discovery found: groups (core first), resource lists per group version, and the
/// group versions that could not be read.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Discovery {
    /// The groups, with their versions and preferred version.
    pub groups: Vec<APIGroup>,
    /// One list per group version that answered.
    pub resources: Vec<APIResourceList>,
    /// Group versions whose discovery failed, with the error text.
    #[serde(default)]
    pub failed: BTreeMap<String, String>,
}

/// The discovery client.
#[derive(Clone, Debug)]
pub struct DiscoveryClient {
    rest: RestClient,
}

fn gv_string(group: &str, version: &str) -> String {
    if group.is_empty() { version.to_string() } else { format!("{group}/{version}") }
}

impl DiscoveryClient {
    /// A discovery client for `config`.
    pub fn new(config: &Config) -> Result<DiscoveryClient> {
        Ok(DiscoveryClient { rest: RestClient::unversioned(config)? })
    }

    /// A discovery client sharing an existing client's connections.
    pub fn from_rest(rest: &RestClient) -> DiscoveryClient {
        DiscoveryClient { rest: rest.clone() }
    }

    /// `/version`.
    pub async fn server_version(&self) -> Result<Info> {
        self.rest.get().abs_path("/version").send().await?.into()
    }

    /// The groups (legacy endpoints): the core group from `/api`, then `/apis`.
    pub async fn server_groups(&self) -> Result<APIGroupList> {
        let core: APIVersions = self.rest.get().abs_path("/api").send().await?.into()?;
        let mut list: APIGroupList = self.rest.get().abs_path("/apis").send().await?.into()?;
        if !core.versions.is_empty() {
            let versions: Vec<GroupVersionForDiscovery> = core
                .versions
                .iter()
                .map(|v| GroupVersionForDiscovery { group_version: v.clone(), version: v.clone() })
                .collect();
            let core_group = APIGroup {
                name: String::new(),
                preferred_version: versions.first().cloned(),
                server_address_by_client_cidrs: None,
                versions,
            };
            list.groups.insert(0, core_group);
        }
        Ok(list)
    }

    /// The resources of one group version (`v1`, `apps/v1`); an unknown one is an error naming it.
    pub async fn server_resources_for_group_version(&self, group_version: &str) -> Result<APIResourceList> {
        let path = if group_version.contains('/') {
            format!("/apis/{group_version}")
        } else {
            format!("/api/{group_version}")
        };
        let response = self.rest.get().abs_path(&path).send().await?;
        if response.status() == http::StatusCode::NOT_FOUND {
            return Err(Error::InvalidRequest(format!(
                "the server does not serve the group version \"{group_version}\" (GET {path} answered 404)"
            )));
        }
        response.into()
    }

    /// Every group and its resources: aggregated discovery when the server offers it, else the
    /// legacy endpoints fetched concurrently; failures per group version are in `failed`.
    pub async fn server_groups_and_resources(&self) -> Result<Discovery> {
        if let Some(d) = self.aggregated().await? {
            return Ok(d);
        }
        self.server_groups_and_resources_legacy().await
    }

    /// [`DiscoveryClient::server_groups_and_resources`] through the legacy endpoints only.
    pub async fn server_groups_and_resources_legacy(&self) -> Result<Discovery> {
        let groups = self.server_groups().await?.groups;
        let gvs: Vec<String> =
            groups.iter().flat_map(|g| g.versions.iter().map(|v| v.group_version.clone())).collect();
        let answers = join_all(gvs.iter().map(|gv| self.server_resources_for_group_version(gv))).await;
        let mut discovery = Discovery { groups, ..Default::default() };
        for (gv, answer) in gvs.into_iter().zip(answers) {
            match answer {
                Ok(list) => discovery.resources.push(list),
                Err(e) => {
                    tracing::warn!(group_version = %gv, error = %e, "discovery of a group version failed");
                    discovery.failed.insert(gv, e.to_string());
                }
            }
        }
        Ok(discovery)
    }

    /// The resource lists of each group's preferred version only.
    pub async fn server_preferred_resources(&self) -> Result<Vec<APIResourceList>> {
        let d = self.server_groups_and_resources().await?;
        Ok(preferred(&d))
    }

    async fn aggregated(&self) -> Result<Option<Discovery>> {
        let mut discovery = Discovery::default();
        for path in ["/api", "/apis"] {
            let response = self
                .rest
                .get()
                .abs_path(path)
                .header(http::header::ACCEPT, HeaderValue::from_static(AGGREGATED))
                .send()
                .await?;
            let aggregated = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.contains("as=APIGroupDiscoveryList"));
            if !aggregated {
                return Ok(None);
            }
            let doc: Value = response.into()?;
            for item in doc["items"].as_array().into_iter().flatten() {
                let group = item["metadata"]["name"].as_str().unwrap_or_default().to_string();
                let mut versions = Vec::new();
                for v in item["versions"].as_array().into_iter().flatten() {
                    let version = v["version"].as_str().unwrap_or_default().to_string();
                    let gv = gv_string(&group, &version);
                    versions.push(GroupVersionForDiscovery {
                        group_version: gv.clone(),
                        version: version.clone(),
                    });
                    let mut resources = Vec::new();
                    for r in v["resources"].as_array().into_iter().flatten() {
                        let strings = |x: &Value| -> Option<Vec<String>> {
                            x.as_array()
                                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                        };
                        let name = r["resource"].as_str().unwrap_or_default().to_string();
                        let namespaced = r["scope"] == "Namespaced";
                        resources.push(APIResource {
                            name: name.clone(),
                            singular_name: r["singularResource"].as_str().unwrap_or_default().to_string(),
                            namespaced,
                            kind: r["responseKind"]["kind"].as_str().unwrap_or_default().to_string(),
                            verbs: strings(&r["verbs"]).unwrap_or_default(),
                            short_names: strings(&r["shortNames"]),
                            categories: strings(&r["categories"]),
                            group: None,
                            version: None,
                            storage_version_hash: None,
                        });
                        for s in r["subresources"].as_array().into_iter().flatten() {
                            let kind = &s["responseKind"];
                            let other_group =
                                kind["group"].as_str().filter(|g| !g.is_empty()).map(str::to_string);
                            resources.push(APIResource {
                                name: format!("{name}/{}", s["subresource"].as_str().unwrap_or_default()),
                                singular_name: String::new(),
                                namespaced,
                                kind: kind["kind"].as_str().unwrap_or_default().to_string(),
                                verbs: strings(&s["verbs"]).unwrap_or_default(),
                                version: other_group
                                    .as_ref()
                                    .and(kind["version"].as_str().map(str::to_string)),
                                group: other_group,
                                short_names: None,
                                categories: None,
                                storage_version_hash: None,
                            });
                        }
                    }
                    discovery.resources.push(APIResourceList { group_version: gv, resources });
                }
                discovery.groups.push(APIGroup {
                    name: group,
                    preferred_version: versions.first().cloned(),
                    server_address_by_client_cidrs: None,
                    versions,
                });
            }
        }
        Ok(Some(discovery))
    }
}

fn preferred(d: &Discovery) -> Vec<APIResourceList> {
    d.groups
        .iter()
        .filter_map(|g| g.preferred_version.as_ref())
        .filter_map(|p| d.resources.iter().find(|r| r.group_version == p.group_version).cloned())
        .collect()
}

/// Discovery cached in memory until [`CachedDiscovery::invalidate`] (client-go's
/// `memory.NewMemCacheClient`), optionally backed by a disk cache with a TTL like kubectl's
/// (`~/.kube/cache/discovery`, 6 hours there).
#[derive(Clone, Debug)]
pub struct CachedDiscovery {
    client: DiscoveryClient,
    cached: Arc<RwLock<Option<Arc<Discovery>>>>,
    disk: Option<(PathBuf, Duration)>,
}

impl CachedDiscovery {
    /// An in-memory cache.
    pub fn new(client: DiscoveryClient) -> CachedDiscovery {
        CachedDiscovery { client, cached: Arc::new(RwLock::new(None)), disk: None }
    }

    /// An in-memory cache backed by `file` on disk, trusted for `ttl`.
    pub fn with_disk(client: DiscoveryClient, file: impl AsRef<Path>, ttl: Duration) -> CachedDiscovery {
        CachedDiscovery {
            client,
            cached: Arc::new(RwLock::new(None)),
            disk: Some((file.as_ref().to_path_buf(), ttl)),
        }
    }

    /// Forgets the cached answer (memory and disk).
    pub fn invalidate(&self) {
        *self.cached.write() = None;
        if let Some((file, _)) = &self.disk {
            let _ = std::fs::remove_file(file);
        }
    }

    /// The discovery, from the cache when present.
    pub async fn discovery(&self) -> Result<Arc<Discovery>> {
        if let Some(d) = self.cached.read().clone() {
            return Ok(d);
        }
        if let Some((file, ttl)) = &self.disk
            && let Some(d) = read_fresh(file, *ttl)
        {
            let d = Arc::new(d);
            *self.cached.write() = Some(d.clone());
            return Ok(d);
        }
        let d = Arc::new(self.client.server_groups_and_resources().await?);
        if let Some((file, _)) = &self.disk {
            write_cache(file, &d);
        }
        *self.cached.write() = Some(d.clone());
        Ok(d)
    }
}

fn read_fresh(file: &Path, ttl: Duration) -> Option<Discovery> {
    let age = std::fs::metadata(file).ok()?.modified().ok()?.elapsed().ok()?;
    if age > ttl {
        return None;
    }
    serde_json::from_slice(&std::fs::read(file).ok()?).ok()
}

fn write_cache(file: &Path, d: &Discovery) {
    let result = file
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|_| std::fs::write(file, serde_json::to_vec(d).unwrap_or_default()));
    if let Err(e) = result {
        tracing::debug!(path = %file.display(), error = %e, "cannot write the discovery cache");
    }
}

/// Where a resource lives and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Group, version and plural.
    pub gvr: GroupVersionResource,
    /// Group, version and kind.
    pub gvk: GroupVersionKind,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
}

/// The RESTMapper: kinds, resources and their short names, from (cached) discovery.
#[derive(Clone, Debug)]
pub struct RestMapper {
    discovery: CachedDiscovery,
}

impl RestMapper {
    /// A mapper over a cached discovery.
    pub fn new(discovery: CachedDiscovery) -> RestMapper {
        RestMapper { discovery }
    }

    async fn find(&self, what: &str, pick: impl Fn(&Discovery) -> Option<Mapping>) -> Result<Mapping> {
        if let Some(m) = pick(&*self.discovery.discovery().await?) {
            return Ok(m);
        }
        // A miss: the server may have learned something new (a CRD). Look once more.
        self.discovery.invalidate();
        pick(&*self.discovery.discovery().await?)
            .ok_or_else(|| Error::InvalidRequest(format!("no matches for {what} on the server")))
    }

    /// GVK -> GVR and scope (`RESTMapping`).
    pub async fn mapping_for_kind(&self, gvk: &GroupVersionKind) -> Result<Mapping> {
        let what = format!("kind \"{}\" in version \"{}\"", gvk.kind, gv_string(&gvk.group, &gvk.version));
        self.find(&what, |d| {
            let gv = gv_string(&gvk.group, &gvk.version);
            let list = d.resources.iter().find(|l| l.group_version == gv)?;
            let r = list.resources.iter().find(|r| r.kind == gvk.kind && !r.name.contains('/'))?;
            Some(mapping(&gvk.group, &gvk.version, r))
        })
        .await
    }

    /// GVR -> GVK.
    pub async fn kind_for(&self, gvr: &GroupVersionResource) -> Result<GroupVersionKind> {
        let what =
            format!("resource \"{}\" in version \"{}\"", gvr.resource, gv_string(&gvr.group, &gvr.version));
        Ok(self
            .find(&what, |d| {
                let gv = gv_string(&gvr.group, &gvr.version);
                let list = d.resources.iter().find(|l| l.group_version == gv)?;
                let r = list.resources.iter().find(|r| r.name == gvr.resource)?;
                Some(mapping(&gvr.group, &gvr.version, r))
            })
            .await?
            .gvk)
    }

    /// Resolves what a user types (kubectl's rules): a plural, singular or short name or a kind,
    /// optionally qualified by group (`deployments.apps`, `deploy`, `Deployment`); the preferred
    /// version of the first group that has it wins (core first).
    pub async fn resolve(&self, name: &str) -> Result<Mapping> {
        let (short, group) = match name.split_once('.') {
            Some((n, g)) => (n.to_string(), Some(g.to_string())),
            None => (name.to_string(), None),
        };
        self.find(&format!("resource \"{name}\""), |d| {
            for list in preferred(d) {
                let (g, v) = match list.group_version.split_once('/') {
                    Some((g, v)) => (g.to_string(), v.to_string()),
                    None => (String::new(), list.group_version.clone()),
                };
                if group.as_ref().is_some_and(|want| *want != g) {
                    continue;
                }
                let lower = short.to_lowercase();
                let hit = list.resources.iter().filter(|r| !r.name.contains('/')).find(|r| {
                    r.name == lower
                        || r.singular_name == lower
                        || r.kind == short
                        || r.kind.to_lowercase() == lower
                        || r.short_names.iter().flatten().any(|s| *s == lower)
                });
                if let Some(r) = hit {
                    return Some(mapping(&g, &v, r));
                }
            }
            None
        })
        .await
    }
}

fn mapping(group: &str, version: &str, r: &APIResource) -> Mapping {
    Mapping {
        gvr: GroupVersionResource::gvr(group, version, &r.name),
        gvk: GroupVersionKind::gvk(group, version, &r.kind),
        namespaced: r.namespaced,
    }
}
