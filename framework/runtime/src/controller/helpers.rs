//! Helpers reconcilers need again and again (controller-runtime's `controllerutil`, kube-rs'
//! `finalizer` and `wait`): finalizers, create-or-update, owner references, status writes, and
//! waiting for a condition.

use std::{future::Future, time::Duration};

use futures_util::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use krust_client::{
    CreateOptions, Error, GetOptions, ListOptions, PatchOptions, PatchType, ResourceClient, UpdateOptions,
};
use kube_core::{Resource, WatchEvent};
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

/// What [`create_or_update`] and [`create_or_patch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperationResult {
    /// The object did not exist and was created.
    Created,
    /// The object existed and was changed.
    Updated,
    /// The object existed and `mutate` changed nothing: no write.
    Unchanged,
}

fn name_of<K: Resource>(obj: &K) -> Result<String, Error> {
    obj.meta()
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::InvalidRequest("the object has no metadata.name".into()))
}

fn to_value<T: Serialize>(v: &T) -> Result<serde_json::Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::InvalidRequest(format!("cannot serialize the object: {e}")))
}

/// Gets the object named like `obj`; if it does not exist, `mutate(obj)` is created, otherwise
/// `mutate(existing)` is written with an update when it changed anything
/// (controller-runtime's `CreateOrUpdate`). A conflict is returned as an error (retry the
/// reconcile).
pub async fn create_or_update<K>(
    client: &ResourceClient<K>,
    mut obj: K,
    mutate: impl Fn(&mut K),
) -> Result<(K, OperationResult), Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned,
{
    let name = name_of(&obj)?;
    match client.get(&name, &GetOptions::default()).await {
        Err(e) if e.is_not_found() => {
            mutate(&mut obj);
            let created = client.create(&obj, &CreateOptions::default()).await?;
            Ok((created, OperationResult::Created))
        }
        Err(e) => Err(e),
        Ok(existing) => {
            let mut changed = existing.clone();
            mutate(&mut changed);
            if to_value(&changed)? == to_value(&existing)? {
                return Ok((existing, OperationResult::Unchanged));
            }
            let updated = client.update(&changed, &UpdateOptions::default()).await?;
            Ok((updated, OperationResult::Updated))
        }
    }
}

/// Like [`create_or_update`], but writes the change as a JSON patch of what `mutate` changed
/// (guarded by a `test` of the resourceVersion), and a status change through the status
/// subresource (controller-runtime's `CreateOrPatch`).
pub async fn create_or_patch<K>(
    client: &ResourceClient<K>,
    mut obj: K,
    mutate: impl Fn(&mut K),
) -> Result<(K, OperationResult), Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned,
{
    let name = name_of(&obj)?;
    let existing = match client.get(&name, &GetOptions::default()).await {
        Err(e) if e.is_not_found() => {
            mutate(&mut obj);
            let created = client.create(&obj, &CreateOptions::default()).await?;
            return Ok((created, OperationResult::Created));
        }
        other => other?,
    };
    let mut changed = existing.clone();
    mutate(&mut changed);
    let (mut before, mut after) = (to_value(&existing)?, to_value(&changed)?);
    let status_before = before.as_object_mut().and_then(|o| o.remove("status"));
    let status_after = after.as_object_mut().and_then(|o| o.remove("status"));
    let mut result = (existing.clone(), OperationResult::Unchanged);
    let rv = existing.meta().resource_version.clone();
    let guarded = |ops: json_patch::Patch| -> Result<serde_json::Value, Error> {
        let mut ops = to_value(&ops)?;
        if let (Some(list), Some(rv)) = (ops.as_array_mut(), rv.as_ref()) {
            list.insert(0, json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv}));
        }
        Ok(ops)
    };
    let ops = json_patch::diff(&before, &after);
    if !ops.0.is_empty() {
        let patched = client.patch(&name, PatchType::Json, &guarded(ops)?, &PatchOptions::default()).await?;
        result = (patched, OperationResult::Updated);
    }
    if status_before != status_after {
        let patch = json!({"status": status_after});
        let patched = client.patch_status(&name, PatchType::Merge, &patch, &PatchOptions::default()).await?;
        result = (patched, OperationResult::Updated);
    }
    Ok(result)
}

/// Why [`set_controller_reference`] refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OwnerReferenceError {
    /// Another object already controls it (an object has at most one controller).
    #[error("{object} is already controlled by {kind} {name}")]
    AlreadyOwned {
        /// The object.
        object: String,
        /// The existing controller's kind.
        kind: String,
        /// The existing controller's name.
        name: String,
    },
    /// The owner has no name or uid (it must have been read from the server).
    #[error("the owner has no {0}; use an object read from the server")]
    OwnerIncomplete(&'static str),
    /// A namespaced owner in another namespace, or a cluster-scoped object owned by a
    /// namespaced one: the garbage collector would not honour it.
    #[error("cross-namespace owner references are not allowed (owner in {owner:?}, object in {object:?})")]
    CrossNamespace {
        /// The owner's namespace.
        owner: String,
        /// The object's namespace.
        object: String,
    },
}

/// The owner reference of `owner` (not a controller reference).
pub fn owner_reference<O: Resource<DynamicType = ()>>(
    owner: &O,
) -> Result<OwnerReference, OwnerReferenceError> {
    let meta = owner.meta();
    Ok(OwnerReference {
        api_version: O::api_version(&()).to_string(),
        kind: O::kind(&()).to_string(),
        name: meta.name.clone().ok_or(OwnerReferenceError::OwnerIncomplete("name"))?,
        uid: meta.uid.clone().ok_or(OwnerReferenceError::OwnerIncomplete("uid"))?,
        controller: None,
        block_owner_deletion: None,
    })
}

/// Makes `owner` the controller of the object whose metadata is `object` (controller-runtime's
/// `SetControllerReference`): `controller: true`, `blockOwnerDeletion: true`; so that the
/// object is garbage-collected with its owner and its changes are mapped to the owner by
/// [`ControllerBuilder::owns`](super::ControllerBuilder::owns). Refuses a second controller.
pub fn set_controller_reference<O: Resource<DynamicType = ()>>(
    owner: &O,
    object: &mut ObjectMeta,
) -> Result<(), OwnerReferenceError> {
    let mut reference = owner_reference(owner)?;
    reference.controller = Some(true);
    reference.block_owner_deletion = Some(true);
    let owner_ns = owner.meta().namespace.clone().unwrap_or_default();
    let object_ns = object.namespace.clone().unwrap_or_default();
    if !owner_ns.is_empty() && owner_ns != object_ns {
        return Err(OwnerReferenceError::CrossNamespace { owner: owner_ns, object: object_ns });
    }
    let references = object.owner_references.get_or_insert_with(Vec::new);
    if let Some(existing) = references.iter().find(|r| r.controller == Some(true) && r.uid != reference.uid) {
        return Err(OwnerReferenceError::AlreadyOwned {
            object: object.name.clone().unwrap_or_default(),
            kind: existing.kind.clone(),
            name: existing.name.clone(),
        });
    }
    references.retain(|r| r.uid != reference.uid);
    references.push(reference);
    Ok(())
}

/// Writes `status` with a JSON merge patch of the status subresource (only the fields given
/// change; no resourceVersion conflict).
pub async fn patch_status<K, S>(client: &ResourceClient<K>, name: &str, status: &S) -> Result<K, Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned,
    S: Serialize,
{
    client.patch_status(name, PatchType::Merge, &json!({ "status": status }), &PatchOptions::default()).await
}

/// Writes the status of `obj` with server-side apply as `field_manager` (forced: the
/// controller owns its status fields).
pub async fn apply_status<K>(client: &ResourceClient<K>, obj: &K, field_manager: &str) -> Result<K, Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned,
{
    client.apply_status(obj, &PatchOptions::apply(field_manager).force()).await
}

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

/// Conditions for [`wait_for`].
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};

    #[test]
    fn controller_reference_is_set_once_and_refuses_a_second_controller() {
        let mut owner = Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("cfg".into());
        cm.metadata.namespace = Some("ns".into());
        set_controller_reference(&owner, &mut cm.metadata).unwrap();
        set_controller_reference(&owner, &mut cm.metadata).unwrap();
        let refs = cm.metadata.owner_references.as_ref().unwrap();
        assert_eq!(refs.len(), 1, "idempotent");
        assert_eq!(
            (
                refs[0].api_version.as_str(),
                refs[0].kind.as_str(),
                refs[0].controller,
                refs[0].block_owner_deletion
            ),
            ("apps/v1", "Deployment", Some(true), Some(true))
        );
        let mut other = owner.clone();
        other.metadata.uid = Some("u2".into());
        other.metadata.name = Some("other".into());
        let err = set_controller_reference(&other, &mut cm.metadata).unwrap_err();
        assert!(err.to_string().contains("already controlled by Deployment web"), "{err}");
        let mut elsewhere = cm.clone();
        elsewhere.metadata.namespace = Some("x".into());
        elsewhere.metadata.owner_references = None;
        assert!(matches!(
            set_controller_reference(&owner, &mut elsewhere.metadata),
            Err(OwnerReferenceError::CrossNamespace { .. })
        ));
        owner.metadata.uid = None;
        assert!(matches!(owner_reference(&owner), Err(OwnerReferenceError::OwnerIncomplete("uid"))));
    }
}
