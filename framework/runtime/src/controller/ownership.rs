//! Owned objects (controller-runtime's `controllerutil`): owner and controller references
//! ([`set_controller_reference`]), and [`create_or_update`] / [`create_or_patch`] with the
//! [`OperationResult`] they report.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use krust_client::{
    CreateOptions, Error, GetOptions, PatchOptions, PatchType, ResourceClient, UpdateOptions,
};
use kube_core::Resource;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;

use super::reconciler::Context;

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
    obj: K,
    mutate: impl Fn(&mut K),
) -> Result<(K, OperationResult), Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned,
{
    let existing = match existing_or_create(client, obj, &mutate).await? {
        Existing::Created(created) => return Ok((created, OperationResult::Created)),
        Existing::Found(existing) => existing,
    };
    let mut changed = existing.clone();
    mutate(&mut changed);
    if to_value(&changed)? == to_value(&existing)? {
        return Ok((existing, OperationResult::Unchanged));
    }
    let updated = client.update(&changed, &UpdateOptions::default()).await?;
    Ok((updated, OperationResult::Updated))
}

/// What [`existing_or_create`] found.
enum Existing<K> {
    /// There was none: `mutate(obj)` was created.
    Created(K),
    /// The object as it is.
    Found(K),
}

/// The first step of create-or-update and create-or-patch: the object named like `obj`, or,
/// when there is none, `mutate(obj)` created.
async fn existing_or_create<K>(
    client: &ResourceClient<K>,
    mut obj: K,
    mutate: &impl Fn(&mut K),
) -> Result<Existing<K>, Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned,
{
    let name = name_of(&obj)?;
    match client.get(&name, &GetOptions::default()).await {
        Err(e) if e.is_not_found() => {
            mutate(&mut obj);
            Ok(Existing::Created(client.create(&obj, &CreateOptions::default()).await?))
        }
        other => Ok(Existing::Found(other?)),
    }
}

/// Like [`create_or_update`], but writes the change as a JSON patch of what `mutate` changed
/// (guarded by a `test` of the resourceVersion), and a status change through the status
/// subresource (controller-runtime's `CreateOrPatch`).
pub async fn create_or_patch<K>(
    client: &ResourceClient<K>,
    obj: K,
    mutate: impl Fn(&mut K),
) -> Result<(K, OperationResult), Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned,
{
    let name = name_of(&obj)?;
    let existing = match existing_or_create(client, obj, &mutate).await? {
        Existing::Created(created) => return Ok((created, OperationResult::Created)),
        Existing::Found(existing) => existing,
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

/// The annotation [`apply_owned`] puts on what it applies: a hash of the desired object.
pub const APPLIED_HASH_ANNOTATION: &str = "krust.dev/applied-hash";

/// Applies `desired` with server-side apply as `field_manager` (forced: the controller owns the
/// fields it sets) when the object needs it, and says what that did: [`OperationResult::Created`]
/// (nothing cached), [`OperationResult::Updated`] (the server wrote a new version: someone had
/// changed or deleted what the controller owns, or the desired state moved) or
/// [`OperationResult::Unchanged`]. Meant for the types a controller owns (their cache is warm).
///
/// No request is made when the cached object was applied from this same desired state (the
/// [`APPLIED_HASH_ANNOTATION`] it carries says so) and still holds every field of it (no one
/// changed or removed them): a reconcile that finds everything in place writes nothing, however
/// often it runs — after a relist every primary object is reconciled again. A field dropped
/// from the desired state changes the hash, so the apply that removes it is made.
pub async fn apply_owned<K>(
    ctx: &Context,
    desired: &K,
    field_manager: &str,
) -> Result<(K, OperationResult), Error>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let name = name_of(desired)?;
    let namespace = desired.meta().namespace.clone();
    let mut wanted = to_value(desired)?;
    let hash = format!("{:016x}", fnv1a(wanted.to_string().as_bytes()));
    let cached = ctx.lister::<K>().namespace(namespace.as_deref().unwrap_or("")).get_cached(&name)?;
    if let Some(cached) = &cached
        && cached.annotations().get(APPLIED_HASH_ANNOTATION) == Some(&hash)
        && let Ok(actual) = serde_json::from_slice::<serde_json::Value>(cached.raw())
        && holds(&actual, &wanted)
        && let Ok(current) = cached.decode()
    {
        return Ok((current, OperationResult::Unchanged));
    }
    let before = cached.map(|c| c.resource_version().to_string());
    if let Some(meta) = wanted.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(map) = annotations.as_object_mut() {
            map.insert(APPLIED_HASH_ANNOTATION.into(), json!(hash));
        }
    }
    let stamped: K = serde_json::from_value(wanted)
        .map_err(|e| Error::InvalidRequest(format!("cannot serialize the object: {e}")))?;
    let applied = ctx
        .client::<K>(namespace.as_deref())
        .apply(&stamped, &PatchOptions::apply(field_manager).force())
        .await?;
    let result = match before {
        None => OperationResult::Created,
        Some(rv) if Some(&rv) != applied.meta().resource_version.as_ref() => OperationResult::Updated,
        Some(_) => OperationResult::Unchanged,
    };
    Ok((applied, result))
}

/// [`apply_owned`] for types the controller watches through a metadata-only informer
/// ([`owns_metadata`](super::ControllerBuilder::owns_metadata)): the cache holds no spec to
/// compare, so no request is made when the cached metadata shows the object is the very version
/// this context's last apply of the same desired state returned (same
/// [`APPLIED_HASH_ANNOTATION`], same resourceVersion): no one changed it since. Otherwise —
/// first reconcile after a start, a change by someone else, a new desired state — it applies
/// (server-side, forced, as `field_manager`), which changes nothing on the server when nothing
/// differs. Returns what the apply did.
pub async fn apply_owned_metadata<K>(
    ctx: &Context,
    desired: &K,
    field_manager: &str,
) -> Result<OperationResult, Error>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let name = name_of(desired)?;
    let namespace = desired.meta().namespace.clone();
    let mut wanted = to_value(desired)?;
    let hash = format!("{:016x}", fnv1a(wanted.to_string().as_bytes()));
    let gvr = kube_core::GroupVersionResource::gvr(&K::group(&()), &K::version(&()), &K::plural(&()));
    let informer = ctx.factory().metadata(&gvr);
    if !informer.has_synced() {
        ctx.factory().start();
        tokio::select! {
            _ = informer.wait_synced() => {}
            _ = tokio::time::sleep(ctx.inner.sync_timeout) => {}
            _ = ctx.cancellation().cancelled() => {}
        }
    }
    let key = match namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(ns) => format!("{ns}/{name}"),
        None => name.clone(),
    };
    let memo_key = format!("{}/{}/{}/{key}", gvr.group, gvr.version, gvr.resource);
    let cached = if informer.has_synced() { informer.indexer().get(&key) } else { None };
    let before = cached.as_ref().map(|c| c.resource_version().to_string());
    if let Some(cached) = &cached
        && cached.annotations().get(APPLIED_HASH_ANNOTATION) == Some(&hash)
        && ctx.inner.applied.lock().get(&memo_key)
            == Some(&(hash.clone(), cached.resource_version().to_string()))
    {
        return Ok(OperationResult::Unchanged);
    }
    if let Some(meta) = wanted.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(map) = annotations.as_object_mut() {
            map.insert(APPLIED_HASH_ANNOTATION.into(), json!(hash));
        }
    }
    let stamped: K = serde_json::from_value(wanted)
        .map_err(|e| Error::InvalidRequest(format!("cannot serialize the object: {e}")))?;
    let applied = ctx
        .client::<K>(namespace.as_deref())
        .apply(&stamped, &PatchOptions::apply(field_manager).force())
        .await?;
    let rv = applied.meta().resource_version.clone().unwrap_or_default();
    {
        let mut memo = ctx.inner.applied.lock();
        // Objects deleted since leave their entries: drop those no longer cached now and then.
        if memo.len() > 2 * informer.indexer().len() + 1024 {
            let indexer = informer.indexer();
            memo.retain(|k, _| indexer.get(memo_key_object(k)).is_some());
        }
        memo.insert(memo_key, (hash, rv.clone()));
    }
    Ok(match before {
        None => OperationResult::Created,
        Some(previous) if previous != rv => OperationResult::Updated,
        Some(_) => OperationResult::Unchanged,
    })
}

/// The cache key (`namespace/name` or `name`) of a memo key (`group/version/resource/<key>`).
fn memo_key_object(memo_key: &str) -> &str {
    memo_key.splitn(4, '/').nth(3).unwrap_or("")
}

/// Whether `actual` holds every field `wanted` sets, with the same value (lists: the same
/// length, each element held); fields the server added (defaults, status) do not matter.
fn holds(actual: &serde_json::Value, wanted: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (actual, wanted) {
        (_, Value::Null) => true,
        (Value::Object(a), Value::Object(w)) => {
            w.iter().all(|(k, wv)| wv.is_null() || a.get(k).is_some_and(|av| holds(av, wv)))
        }
        (Value::Array(a), Value::Array(w)) => {
            a.len() == w.len() && a.iter().zip(w).all(|(av, wv)| holds(av, wv))
        }
        (Value::Number(a), Value::Number(w)) => a.as_f64() == w.as_f64(),
        (a, w) => a == w,
    }
}

/// FNV-1a, 64 bits: a stable hash of the desired object's JSON (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
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
