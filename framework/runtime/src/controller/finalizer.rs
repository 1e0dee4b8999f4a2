//! Finalizers (controller-runtime's `controllerutil.AddFinalizer`/`RemoveFinalizer`, kube-rs'
//! `finalizer`): [`finalizer`] adds the controller's finalizer, runs the apply step while the
//! object lives and the clean-up step once it is being deleted, then removes the finalizer.

use std::future::Future;

use krust_client::{Error, PatchOptions, PatchType, ResourceClient};
use kube_core::Resource;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;

use super::reconciler::Action;

/// What [`finalizer`] asks the reconcile function to do.
#[derive(Debug)]
pub enum FinalizerEvent<K> {
    /// The object is live (and carries the finalizer): bring the world in line with it.
    Apply(K),
    /// The object is being deleted: clean up what it owns outside Kubernetes; the finalizer is
    /// removed when this succeeds.
    Cleanup(K),
}

/// A [`finalizer`] failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FinalizerError<E: std::error::Error + 'static> {
    /// The apply step failed.
    #[error("apply failed: {0}")]
    Apply(#[source] E),
    /// The cleanup step failed (the finalizer stays; the deletion waits).
    #[error("cleanup failed: {0}")]
    Cleanup(#[source] E),
    /// Adding the finalizer failed.
    #[error("adding finalizer {name:?} failed: {source}")]
    Add {
        /// The finalizer.
        name: String,
        /// Why.
        #[source]
        source: Error,
    },
    /// Removing the finalizer failed.
    #[error("removing finalizer {name:?} failed: {source}")]
    Remove {
        /// The finalizer.
        name: String,
        /// Why.
        #[source]
        source: Error,
    },
    /// The object has no name.
    #[error("the object has no metadata.name")]
    Unnamed,
}

/// Runs a reconcile with a finalizer (kube-rs' `finalizer`, controller-runtime's
/// `controllerutil.AddFinalizer`/`RemoveFinalizer` pattern):
///
/// - a live object without the finalizer gets it added (a JSON patch guarded by a `test` of
///   the current list, so concurrent writers conflict instead of clobbering), and the function
///   returns: the patch itself triggers the next reconcile;
/// - a live object with it: `reconcile(FinalizerEvent::Apply(obj))`;
/// - an object being deleted with it: `reconcile(FinalizerEvent::Cleanup(obj))`, then the
///   finalizer is removed (so the deletion can complete);
/// - an object being deleted without it: nothing to do.
pub async fn finalizer<K, E, F, Fut>(
    client: &ResourceClient<K>,
    name: &str,
    obj: K,
    reconcile: F,
) -> Result<Action, FinalizerError<E>>
where
    K: Resource + Clone + Serialize + DeserializeOwned,
    E: std::error::Error + 'static,
    F: FnOnce(FinalizerEvent<K>) -> Fut,
    Fut: Future<Output = Result<Action, E>>,
{
    let meta = obj.meta();
    let object_name = meta.name.clone().ok_or(FinalizerError::Unnamed)?;
    let finalizers = meta.finalizers.clone().unwrap_or_default();
    let position = finalizers.iter().position(|f| f == name);
    let deleting = meta.deletion_timestamp.is_some();
    match (deleting, position) {
        (false, Some(_)) => reconcile(FinalizerEvent::Apply(obj)).await.map_err(FinalizerError::Apply),
        (false, None) => {
            let patch = if meta.finalizers.is_none() {
                json!([
                    {"op": "test", "path": "/metadata/finalizers", "value": null},
                    {"op": "add", "path": "/metadata/finalizers", "value": [name]},
                ])
            } else {
                json!([
                    {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
                    {"op": "add", "path": "/metadata/finalizers/-", "value": name},
                ])
            };
            client
                .patch(&object_name, PatchType::Json, &patch, &PatchOptions::default())
                .await
                .map_err(|source| FinalizerError::Add { name: name.to_string(), source })?;
            Ok(Action::done())
        }
        (true, Some(index)) => {
            let action = reconcile(FinalizerEvent::Cleanup(obj)).await.map_err(FinalizerError::Cleanup)?;
            let path = format!("/metadata/finalizers/{index}");
            let patch = json!([
                {"op": "test", "path": path, "value": name},
                {"op": "remove", "path": path},
            ]);
            client
                .patch(&object_name, PatchType::Json, &patch, &PatchOptions::default())
                .await
                .map_err(|source| FinalizerError::Remove { name: name.to_string(), source })?;
            Ok(action)
        }
        (true, None) => Ok(Action::done()),
    }
}
