//! Status writes (controller-runtime's `client.Status()`): a merge patch of the status
//! subresource, or server-side apply of it.

use krust_client::{Error, PatchOptions, PatchType, ResourceClient};
use kube_core::Resource;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;

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
