//! Paginated lists (client-go's `tools/pager`), one loop for every lister of krust: pages of
//! [`DEFAULT_PAGE_SIZE`] objects, each page asked for with the continue token of the one before
//! — and asked for as soon as that token is known, so that fetching the next page overlaps
//! decoding this one — until the last page, which carries the list's resourceVersion.
//!
//! A page source is a function from the [`ListOptions`] of a page to a [`PageStart`]: a future
//! of the page's metadata (resolved as soon as the continue token has been read) and a future of
//! its items. [`ResourceClient::pages`](crate::ResourceClient::pages) is the typed source; the
//! informers' reflector has its own (raw bytes scanned on the task that received them).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let clientset = krust_client::Clientset::new(&server.kubeconfig().config)?;
//! use futures_util::TryStreamExt;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use krust_client::{CreateOptions, ListOptions};
//!
//! let config_maps = clientset.core_v1().config_maps("default");
//! for i in 0..5 {
//!     let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": format!("cm-{i}")}}))?;
//!     config_maps.create(&cm, &CreateOptions::default()).await?;
//! }
//! // Pages of 2: three requests, one consistent snapshot.
//! let pages: Vec<_> = config_maps.pages(&ListOptions::default().limit(2)).try_collect().await?;
//! assert_eq!(pages.iter().map(|p| p.items.len()).collect::<Vec<_>>(), [2, 2, 1]);
//! assert!(pages[2].last && pages[2].resource_version.is_some());
//! // Or every object as one stream.
//! let all: Vec<ConfigMap> = config_maps.pager(&ListOptions::default().limit(2)).try_collect().await?;
//! assert_eq!(all.len(), 5);
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

use futures_util::{Stream, future::BoxFuture, stream};

use crate::{ListOptions, Result};

/// The page size when none is given (client-go's pager and reflector: 500).
pub const DEFAULT_PAGE_SIZE: u32 = 500;

/// What a page's metadata says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageMeta {
    /// Where the next page starts (`None` or empty on the last page).
    pub continue_token: Option<String>,
    /// The list's resourceVersion.
    pub resource_version: Option<String>,
}

/// One page under way: its metadata first, its items later.
pub struct PageStart<T> {
    /// Resolves as soon as the continue token is known.
    pub meta: BoxFuture<'static, Result<PageMeta>>,
    /// Resolves to the page's items.
    pub items: BoxFuture<'static, Result<T>>,
}

impl<T> std::fmt::Debug for PageStart<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageStart").finish_non_exhaustive()
    }
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The page's items.
    pub items: T,
    /// Whether this is the last page.
    pub last: bool,
    /// The list's resourceVersion, on the last page only (where a watch would start).
    pub resource_version: Option<String>,
}

/// The pages of a list, from `options` (its `limit` defaults to [`DEFAULT_PAGE_SIZE`]; its
/// continue token is replaced page by page), started by `start`. The stream ends after the last
/// page or with the first error; an expired continue token (410) after the first page means the
/// whole list must start again.
pub fn pages<T, F>(mut options: ListOptions, mut start: F) -> impl Stream<Item = Result<Page<T>>>
where
    F: FnMut(ListOptions) -> PageStart<T>,
{
    if options.limit.is_none_or(|l| l == 0) {
        options.limit = Some(DEFAULT_PAGE_SIZE);
    }
    options.continue_token = None;
    let first = start(options.clone());
    stream::unfold(Some((first, options, start)), |state| async move {
        let (current, mut options, mut start) = state?;
        let meta = match current.meta.await {
            Ok(meta) => meta,
            Err(e) => return Some((Err(e), None)),
        };
        // The next page is asked for before this one's items are awaited.
        let next = meta.continue_token.clone().filter(|c| !c.is_empty()).map(|token| {
            options.continue_token = Some(token);
            start(options.clone())
        });
        let items = match current.items.await {
            Ok(items) => items,
            Err(e) => return Some((Err(e), None)),
        };
        let last = next.is_none();
        let page = Page { items, last, resource_version: if last { meta.resource_version } else { None } };
        Some((Ok(page), next.map(|n| (n, options, start))))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures_util::{FutureExt, StreamExt};

    use super::*;

    #[tokio::test]
    async fn pages_follow_continue_tokens_and_the_last_carries_the_resource_version() {
        let asked: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let log = asked.clone();
        let source = move |options: ListOptions| {
            log.lock().unwrap().push(options.continue_token.clone());
            let n: usize = options.continue_token.as_deref().map_or(0, |t| t.parse().unwrap());
            assert_eq!(options.limit, Some(DEFAULT_PAGE_SIZE));
            let meta = PageMeta {
                continue_token: (n < 2).then(|| (n + 1).to_string()),
                resource_version: Some("42".into()),
            };
            PageStart { meta: async move { Ok(meta) }.boxed(), items: async move { Ok(vec![n]) }.boxed() }
        };
        let pages: Vec<Page<Vec<usize>>> =
            pages(ListOptions::default(), source).map(|p| p.unwrap()).collect().await;
        assert_eq!(pages.iter().map(|p| p.items[0]).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(pages.iter().map(|p| p.last).collect::<Vec<_>>(), [false, false, true]);
        assert_eq!(
            pages.iter().map(|p| p.resource_version.clone()).collect::<Vec<_>>(),
            [None, None, Some("42".into())]
        );
        assert_eq!(*asked.lock().unwrap(), [None, Some("1".into()), Some("2".into())]);
    }
}
