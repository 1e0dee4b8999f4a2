//! The dynamic client (client-go's `dynamic.Interface`): any resource by group, version and
//! resource (GVR), as kube-core's `DynamicObject`, for custom resources without generated code.

use kube_core::{DynamicObject, GroupVersionResource};

use super::resource::ResourceClient;
use crate::{config::Config, error::Result, rest::RestClient};

/// The dynamic client.
#[derive(Clone, Debug)]
pub struct DynamicClient {
    rest: RestClient,
}

/// The dynamic client of one resource; `.namespace(ns)` narrows it to a namespace.
#[derive(Clone, Debug)]
pub struct DynamicResource {
    rest: RestClient,
    resource: String,
}

impl DynamicClient {
    /// A dynamic client for `config` (`dynamic.NewForConfig`).
    pub fn new(config: &Config) -> Result<DynamicClient> {
        Ok(DynamicClient { rest: RestClient::unversioned(config)? })
    }

    /// A dynamic client sharing an existing client's connections.
    pub fn from_rest(rest: &RestClient) -> DynamicClient {
        DynamicClient { rest: rest.clone() }
    }

    /// The resource `gvr` (`Resource(gvr)`).
    pub fn resource(&self, gvr: &GroupVersionResource) -> DynamicResource {
        let api_path = crate::rules::api_path(&gvr.group);
        let gv = kube_core::GroupVersion::gv(&gvr.group, &gvr.version);
        DynamicResource { rest: self.rest.with_group_version(api_path, &gv), resource: gvr.resource.clone() }
    }
}

impl DynamicResource {
    /// The resource in `namespace`.
    pub fn namespace(&self, namespace: &str) -> ResourceClient<DynamicObject> {
        ResourceClient::new(self.rest.clone(), &self.resource, Some(namespace))
    }

    /// The resource cluster-wide (cluster-scoped resources, or all namespaces).
    pub fn cluster(&self) -> ResourceClient<DynamicObject> {
        ResourceClient::new(self.rest.clone(), &self.resource, None)
    }
}
