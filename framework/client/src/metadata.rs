//! The metadata client (client-go's `metadata.Interface`): get, list and watch only the
//! metadata of objects (`PartialObjectMetadata`), which is all a controller needs to key,
//! index and route events, at a fraction of the bytes.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let config = server.kubeconfig().config;
//! # let clientset = krust_client::Clientset::new(&config)?;
//! use k8s_openapi::api::core::v1::Secret;
//! use krust_client::{CreateOptions, ListOptions, MetadataClient};
//! use kube_core::GroupVersionResource;
//!
//! let secret: Secret = serde_json::from_value(serde_json::json!({
//!     "metadata": {"name": "big", "labels": {"app": "web"}},
//!     "stringData": {"blob": "x".repeat(100_000)}}))?;
//! clientset.core_v1().secrets("default").create(&secret, &CreateOptions::default()).await?;
//!
//! // Names, labels, owners — without the 100 KB of data.
//! let metadata = MetadataClient::new(&config)?;
//! let secrets = metadata.resource(&GroupVersionResource::gvr("", "v1", "secrets"), Some("default"));
//! let list = secrets.list(&ListOptions::default()).await?;
//! assert_eq!(list.items[0].metadata.labels.as_ref().unwrap()["app"], "web");
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

use http::HeaderValue;
use kube_core::{GroupVersionResource, metadata::PartialObjectMeta};

use crate::{
    api::{
        ResourceClient,
        options::{GetOptions, ListOptions},
    },
    config::Config,
    error::Result,
    rest::{RestClient, WatchStream},
};

/// `Accept` for one object.
pub const ACCEPT_OBJECT: &str =
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
/// `Accept` for a list (and a watch).
pub const ACCEPT_LIST: &str =
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";

/// The metadata client.
#[derive(Clone, Debug)]
pub struct MetadataClient {
    rest: RestClient,
}

/// One resource through the metadata client.
#[derive(Clone, Debug)]
pub struct MetadataResource {
    inner: ResourceClient<PartialObjectMeta>,
}

impl MetadataClient {
    /// A metadata client for `config`.
    pub fn new(config: &Config) -> Result<MetadataClient> {
        Ok(MetadataClient { rest: RestClient::unversioned(config)? })
    }

    /// The resource `gvr` in `namespace` (`None`: cluster-wide).
    pub fn resource(&self, gvr: &GroupVersionResource, namespace: Option<&str>) -> MetadataResource {
        let api_path = crate::rules::api_path(&gvr.group);
        let rest =
            self.rest.with_group_version(api_path, &kube_core::GroupVersion::gv(&gvr.group, &gvr.version));
        MetadataResource { inner: ResourceClient::new(rest, &gvr.resource, namespace) }
    }
}

impl MetadataResource {
    /// The metadata of one object.
    pub async fn get(&self, name: &str, opts: &GetOptions) -> Result<PartialObjectMeta> {
        self.inner.with_accept(HeaderValue::from_static(ACCEPT_OBJECT)).get(name, opts).await
    }

    /// The metadata of every object (one page when `opts.limit` is set).
    pub async fn list(&self, opts: &ListOptions) -> Result<kube_core::ObjectList<PartialObjectMeta>> {
        self.inner.with_accept(HeaderValue::from_static(ACCEPT_LIST)).list(opts).await
    }

    /// Watch events carrying metadata only.
    pub async fn watch(&self, opts: &ListOptions) -> Result<WatchStream<PartialObjectMeta>> {
        self.inner.with_accept(HeaderValue::from_static(ACCEPT_LIST)).watch(opts).await
    }
}
