//! The verbs on one resource (client-go's typed `PodInterface` and friends, and the dynamic
//! `ResourceInterface`): get, list, watch, create, update, update_status, patch, patch_status,
//! apply, apply_status, delete, delete_collection, a pager, the scale subresource and pod logs.

use std::{marker::PhantomData, sync::Arc};

use bytes::Bytes;
use futures_util::{FutureExt, Stream, TryStreamExt, stream};
use k8s_openapi::{api::autoscaling::v1::Scale, apimachinery::pkg::apis::meta::v1::Status};
use kube_core::{ObjectList, Resource};
use parking_lot::Mutex;
use serde::{Serialize, de::DeserializeOwned};

use super::options::{
    CreateOptions, DeleteOptions, GetOptions, ListOptions, LogOptions, PatchOptions, UpdateOptions,
};
use crate::{
    error::{Error, Result},
    pager::{self, Page, PageMeta, PageStart},
    rest::{PatchType, Request, RestClient, WatchLines, WatchStream},
};

/// What a delete returns: the object (kept by finalizers, or as the server answers for pods and
/// custom resources) or a `Status`.
#[derive(Debug, Clone)]
pub enum Deleted<K> {
    /// The object, in its last state.
    Object(K),
    /// The server's Status (Success).
    Status(Box<Status>),
}

/// A client for one resource, in one namespace or cluster-wide, decoding into `K`.
pub struct ResourceClient<K> {
    rest: RestClient,
    resource: String,
    namespace: Option<String>,
    accept: Option<http::HeaderValue>,
    _type: PhantomData<fn() -> K>,
}

impl<K> Clone for ResourceClient<K> {
    fn clone(&self) -> Self {
        ResourceClient {
            rest: self.rest.clone(),
            resource: self.resource.clone(),
            namespace: self.namespace.clone(),
            accept: self.accept.clone(),
            _type: PhantomData,
        }
    }
}

impl<K> std::fmt::Debug for ResourceClient<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceClient")
            .field("resource", &self.resource)
            .field("namespace", &self.namespace)
            .field("rest", &self.rest)
            .finish()
    }
}

/// The object's name, required by update, apply and their status variants.
fn name_of<K: Resource>(obj: &K) -> Result<&str> {
    obj.meta()
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::InvalidRequest("the object has no metadata.name".into()))
}

impl<K> ResourceClient<K>
where
    K: DeserializeOwned + Clone,
{
    /// A client for `resource` of `rest`'s group version, in `namespace` (or cluster-wide).
    pub fn new(rest: RestClient, resource: &str, namespace: Option<&str>) -> Self {
        ResourceClient {
            rest,
            resource: resource.to_string(),
            namespace: namespace.filter(|n| !n.is_empty()).map(str::to_string),
            accept: None,
            _type: PhantomData,
        }
    }

    /// The same client sending another `Accept` header (e.g. for metadata-only answers).
    #[must_use]
    pub fn with_accept(&self, accept: http::HeaderValue) -> Self {
        let mut c = self.clone();
        c.accept = Some(accept);
        c
    }

    /// The same resource in another namespace (`None`: all namespaces).
    #[must_use]
    pub fn in_namespace(&self, namespace: Option<&str>) -> Self {
        Self::new(self.rest.clone(), &self.resource, namespace)
    }

    fn on(&self, r: Request) -> Request {
        let mut r = match &self.namespace {
            Some(ns) => r.namespace(ns),
            None => r,
        };
        if let Some(a) = &self.accept {
            r = r.header(http::header::ACCEPT, a.clone());
        }
        r.resource(&self.resource)
    }

    /// GET one object.
    pub async fn get(&self, name: &str, opts: &GetOptions) -> Result<K> {
        opts.add_to(self.on(self.rest.get()).name(name)).send().await?.into()
    }

    /// LIST (one page when `opts.limit` is set).
    pub async fn list(&self, opts: &ListOptions) -> Result<ObjectList<K>> {
        opts.add_to(self.on(self.rest.get())).send().await?.into()
    }

    /// WATCH from `opts.resource_version`.
    pub async fn watch(&self, opts: &ListOptions) -> Result<WatchStream<K>> {
        opts.add_watch_to(self.on(self.rest.get())).watch().await
    }

    /// LIST, the response body undecoded (a 2xx body; an error status is `Err`), for decoders
    /// of their own.
    pub async fn list_raw(&self, opts: &ListOptions) -> Result<Bytes> {
        opts.add_to(self.on(self.rest.get())).send().await?.bytes()
    }

    /// WATCH from `opts.resource_version`, the lines undecoded ([`WatchLines`]).
    pub async fn watch_lines(&self, opts: &ListOptions) -> Result<WatchLines> {
        opts.add_watch_to(self.on(self.rest.get())).watch_lines().await
    }

    /// The pages of a list (`opts.limit`, default [`DEFAULT_PAGE_SIZE`](crate::pager::DEFAULT_PAGE_SIZE)), each asked for as
    /// soon as the one before has been received ([`crate::pager`]); the last page carries the
    /// list's resourceVersion. A 410 Expired token ends the stream with that error (list again).
    pub fn pages(&self, opts: &ListOptions) -> impl Stream<Item = Result<Page<Vec<K>>>> + Send + 'static
    where
        K: Send + 'static,
    {
        let client = self.clone();
        pager::pages(opts.clone(), move |options| {
            // One request answers both: the items wait in `slot` for the pager to take them.
            let slot: Arc<Mutex<Option<Vec<K>>>> = Arc::default();
            let (client, fill) = (client.clone(), slot.clone());
            let meta = async move {
                let list = client.list(&options).await?;
                *fill.lock() = Some(list.items);
                Ok(PageMeta {
                    continue_token: list.metadata.continue_,
                    resource_version: list.metadata.resource_version,
                })
            };
            let items = async move {
                slot.lock().take().ok_or_else(|| Error::InvalidRequest("a list page was read twice".into()))
            };
            PageStart { meta: meta.boxed(), items: items.boxed() }
        })
    }

    /// Every object, page by page (`opts.limit`, default [`DEFAULT_PAGE_SIZE`](crate::pager::DEFAULT_PAGE_SIZE)), as one stream;
    /// the pages are a consistent snapshot, as the server's continue tokens guarantee. A 410
    /// Expired token ends the stream with that error (list again).
    pub fn pager(&self, opts: &ListOptions) -> impl Stream<Item = Result<K>> + Send + 'static
    where
        K: Send + 'static,
    {
        self.pages(opts).map_ok(|page| stream::iter(page.items.into_iter().map(Ok::<K, Error>))).try_flatten()
    }
}

impl<K> ResourceClient<K>
where
    K: Serialize + DeserializeOwned + Resource + Clone,
{
    /// POST a new object.
    pub async fn create(&self, obj: &K, opts: &CreateOptions) -> Result<K> {
        opts.add_to(self.on(self.rest.post())).body(obj).send().await?.into()
    }

    /// PUT the object (its resourceVersion guards against lost updates: 409 on a stale one).
    pub async fn update(&self, obj: &K, opts: &UpdateOptions) -> Result<K> {
        opts.add_to(self.on(self.rest.put()).name(name_of(obj)?)).body(obj).send().await?.into()
    }

    /// PUT the object's status (`/status`).
    pub async fn update_status(&self, obj: &K, opts: &UpdateOptions) -> Result<K> {
        opts.add_to(self.on(self.rest.put()).name(name_of(obj)?).sub_resource("status"))
            .body(obj)
            .send()
            .await?
            .into()
    }

    /// PATCH with a merge, JSON or strategic merge patch.
    pub async fn patch<P: Serialize + ?Sized>(
        &self,
        name: &str,
        patch_type: PatchType,
        patch: &P,
        opts: &PatchOptions,
    ) -> Result<K> {
        opts.add_to(self.on(self.rest.patch(patch_type)).name(name)).body(patch).send().await?.into()
    }

    /// PATCH the status subresource.
    pub async fn patch_status<P: Serialize + ?Sized>(
        &self,
        name: &str,
        patch_type: PatchType,
        patch: &P,
        opts: &PatchOptions,
    ) -> Result<K> {
        opts.add_to(self.on(self.rest.patch(patch_type)).name(name).sub_resource("status"))
            .body(patch)
            .send()
            .await?
            .into()
    }

    /// Server-side apply of `obj` (`opts.field_manager` is required).
    pub async fn apply(&self, obj: &K, opts: &PatchOptions) -> Result<K> {
        self.apply_to(obj, opts, None).await
    }

    /// Server-side apply of the status of `obj`.
    pub async fn apply_status(&self, obj: &K, opts: &PatchOptions) -> Result<K> {
        self.apply_to(obj, opts, Some("status")).await
    }

    async fn apply_to(&self, obj: &K, opts: &PatchOptions, sub: Option<&str>) -> Result<K> {
        if opts.field_manager.as_deref().is_none_or(str::is_empty) {
            return Err(Error::InvalidRequest(
                "server-side apply needs a field manager: use PatchOptions::apply(\"my-controller\")".into(),
            ));
        }
        let mut r = self.on(self.rest.patch(PatchType::Apply)).name(name_of(obj)?);
        if let Some(s) = sub {
            r = r.sub_resource(s);
        }
        opts.add_to(r).body(obj).send().await?.into()
    }

    /// DELETE one object.
    pub async fn delete(&self, name: &str, opts: &DeleteOptions) -> Result<Deleted<K>> {
        let response = self.on(self.rest.delete()).name(name).body(opts).send().await?.error_for_status()?;
        decode_deleted(response)
    }

    /// DELETE every object matching `list` (deletecollection).
    pub async fn delete_collection(
        &self,
        opts: &DeleteOptions,
        list: &ListOptions,
    ) -> Result<Deleted<ObjectList<K>>> {
        let response =
            list.add_to(self.on(self.rest.delete())).body(opts).send().await?.error_for_status()?;
        decode_deleted(response)
    }

    /// GET the scale subresource.
    pub async fn get_scale(&self, name: &str) -> Result<Scale> {
        self.on(self.rest.get()).name(name).sub_resource("scale").send().await?.into()
    }

    /// PUT the scale subresource.
    pub async fn update_scale(&self, name: &str, scale: &Scale, opts: &UpdateOptions) -> Result<Scale> {
        opts.add_to(self.on(self.rest.put()).name(name).sub_resource("scale"))
            .body(scale)
            .send()
            .await?
            .into()
    }

    /// The log of a pod (`pods/log`), streamed as it arrives (`follow` keeps it open).
    pub async fn logs(
        &self,
        name: &str,
        opts: &LogOptions,
    ) -> Result<impl Stream<Item = Result<Bytes>> + use<K>> {
        opts.add_to(self.on(self.rest.get()).name(name).sub_resource("log")).stream().await
    }
}

fn decode_deleted<T: DeserializeOwned>(response: crate::rest::Response) -> Result<Deleted<T>> {
    let value: serde_json::Value = response.into()?;
    if value.get("kind").and_then(|k| k.as_str()) == Some("Status") {
        return Ok(Deleted::Status(Box::new(serde_json::from_value(value).map_err(|e| Error::Decode {
            what: "a delete's Status".into(),
            excerpt: String::new(),
            source: e,
        })?)));
    }
    Ok(Deleted::Object(serde_json::from_value(value).map_err(|e| Error::Decode {
        what: "a deleted object".into(),
        excerpt: String::new(),
        source: e,
    })?))
}
