//! The typed clientset (client-go's `kubernetes.Clientset`): one accessor per API group
//! version, named as client-go names them (`core_v1()`, `apps_v1()`, ...), each with one method
//! per resource (`core_v1().pods("default")`, `core_v1().nodes()`), generated from one table of
//! every resource type k8s-openapi provides (`clientset_table.rs`). [`Clientset::typed`] gives a
//! [`TypedClient`] for any other `Resource`, such as a custom resource type.

use kube_core::{GroupVersion, Resource};
use serde::{Serialize, de::DeserializeOwned};

use super::resource::ResourceClient;
use crate::{config::Config, error::Result, rest::RestClient, rules::api_path};

/// A typed client for resource `K`.
pub type TypedClient<K> = ResourceClient<K>;

/// All the typed clients, sharing one connection pool.
#[derive(Clone, Debug)]
pub struct Clientset {
    rest: RestClient,
}

impl Clientset {
    /// A clientset for `config` (`kubernetes.NewForConfig`).
    pub fn new(config: &Config) -> Result<Clientset> {
        Ok(Clientset { rest: RestClient::unversioned(config)? })
    }

    /// A clientset sharing an existing client's connections and credentials.
    pub fn from_rest(rest: &RestClient) -> Clientset {
        Clientset { rest: rest.clone() }
    }

    /// The unversioned REST client underneath (absolute paths).
    pub fn rest(&self) -> &RestClient {
        &self.rest
    }

    /// A typed client for any resource type, e.g. a custom resource; `namespace` is `None` for
    /// cluster-scoped resources or to act on all namespaces.
    pub fn typed<K>(&self, namespace: Option<&str>) -> TypedClient<K>
    where
        K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone,
    {
        let group = K::group(&());
        let gv = GroupVersion::gv(&group, &K::version(&()));
        ResourceClient::new(self.rest.with_group_version(api_path(&group), &gv), &K::plural(&()), namespace)
    }
}

macro_rules! resource_method {
    ($method:ident, $kind:ty, $plural:literal, ns) => {
        #[doc = concat!("`", $plural, "` in a namespace (`\"\"` for all namespaces).")]
        pub fn $method(&self, namespace: &str) -> TypedClient<$kind> {
            ResourceClient::new(self.rest.clone(), $plural, Some(namespace))
        }
    };
    ($method:ident, $kind:ty, $plural:literal, cluster) => {
        #[doc = concat!("`", $plural, "` (cluster-scoped).")]
        pub fn $method(&self) -> TypedClient<$kind> {
            ResourceClient::new(self.rest.clone(), $plural, None)
        }
    };
}

/// One group version: its client struct and the clientset's accessor.
macro_rules! group_version {
    ($accessor:ident => $name:ident, $group:literal, $version:literal) => {
        #[doc = concat!("The clients of `", $group, "/", $version, "` (the core group when empty).")]
        #[derive(Clone, Debug)]
        pub struct $name {
            rest: RestClient,
        }

        impl Clientset {
            #[doc = concat!("The `", $group, "/", $version, "` clients.")]
            pub fn $accessor(&self) -> $name {
                $name {
                    rest: self.rest.with_group_version(api_path($group), &GroupVersion::gv($group, $version)),
                }
            }
        }
    };
}

include!("clientset_table.rs");
