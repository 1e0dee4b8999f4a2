//! Waiting for a condition on an object (kube-rs' `await_condition` and `conditions`).

use std::time::Duration;

use futures_util::StreamExt;
use krust_client::{Error, ListOptions, ResourceClient};
use kube_core::{Resource, WatchEvent};
use serde::de::DeserializeOwned;

/// Why [`wait_for`] ended without the condition.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The time ran out.
    #[error("timed out after {0:?} waiting for the condition")]
    Timeout(Duration),
    /// A request failed.
    #[error(transparent)]
    Client(#[from] Error),
}

/// Waits until `condition` holds for the object named `name` (`None`: it does not exist),
/// watching it; returns the object as it was then (kube-rs' `await_condition`).
pub async fn wait_for<K>(
    client: &ResourceClient<K>,
    name: &str,
    condition: impl Fn(Option<&K>) -> bool,
    timeout: Duration,
) -> Result<Option<K>, WaitError>
where
    K: Resource + Clone + DeserializeOwned,
{
    let work = async {
        loop {
            let options =
                ListOptions { field_selector: Some(format!("metadata.name={name}")), ..Default::default() };
            let list = client.list(&options).await?;
            let mut current = list.items.into_iter().next();
            if condition(current.as_ref()) {
                return Ok(current);
            }
            let options = ListOptions {
                resource_version: list.metadata.resource_version.clone(),
                allow_watch_bookmarks: true,
                ..options
            };
            let mut stream = client.watch(&options).await?;
            while let Some(event) = stream.next().await {
                match event? {
                    WatchEvent::Added(o) | WatchEvent::Modified(o) => current = Some(o),
                    WatchEvent::Deleted(_) => current = None,
                    WatchEvent::Bookmark(_) => continue,
                    // Expired or another error: list again.
                    WatchEvent::Error(_) => break,
                }
                if condition(current.as_ref()) {
                    return Ok(current);
                }
            }
        }
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| WaitError::Timeout(timeout))?
}

/// Conditions for [`wait_for`]: functions of the object (`None` when it does not exist) that
/// say whether the wait is over.
///
/// ```
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use krust_runtime::controller::helpers::conditions;
///
/// let gone = conditions::is_deleted::<ConfigMap>();
/// assert!(gone(None));
/// assert!(!gone(Some(&ConfigMap::default())));
/// ```
pub mod conditions {
    use kube_core::Resource;
    use serde::Serialize;

    /// The object does not exist.
    pub fn is_deleted<K>() -> impl Fn(Option<&K>) -> bool {
        |o| o.is_none()
    }

    /// The object exists with `status.conditions[type=condition_type].status == status`.
    pub fn has_condition<K: Resource + Serialize>(
        condition_type: &str,
        status: &str,
    ) -> impl Fn(Option<&K>) -> bool {
        let (t, s) = (condition_type.to_string(), status.to_string());
        move |o| {
            o.and_then(|o| serde_json::to_value(o).ok())
                .and_then(|v| v.pointer("/status/conditions").and_then(|c| c.as_array()).cloned())
                .is_some_and(|conditions| {
                    conditions.iter().any(|c| c["type"] == t.as_str() && c["status"] == s.as_str())
                })
        }
    }
}
