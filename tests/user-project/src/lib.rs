//! A small operator: a `Backup` names a ConfigMap to copy; the reconciler writes the copy (owned
//! by the Backup) and reports it in the Backup's status.

use std::collections::BTreeMap;

use krust::{
    TerminalError,
    k8s_openapi::{api::core::v1::ConfigMap, apimachinery::pkg::apis::meta::v1::ObjectMeta},
    prelude::*,
    runtime::controller::helpers::{OwnerReferenceError, patch_status, set_controller_reference},
};

/// What to back up.
#[krust::custom_resource(
    group = "backups.example.com",
    version = "v1",
    kind = "Backup",
    namespaced,
    status = "BackupStatus"
)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// The ConfigMap (in the Backup's namespace) to copy.
    pub config_map: String,
}

/// What the reconciler did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// How many keys the copy holds.
    pub keys: usize,
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request or a cache read failed.
    #[error(transparent)]
    Client(#[from] krust::Error),
    /// The owner reference could not be set.
    #[error(transparent)]
    Owner(#[from] OwnerReferenceError),
    /// The source ConfigMap does not exist (retrying is up to the next change).
    #[error("{0}")]
    Missing(#[source] TerminalError),
}

/// Copies each Backup's ConfigMap into `<backup>-copy`.
pub struct BackupReconciler;

#[async_trait]
impl Reconciler for BackupReconciler {
    type Error = Error;

    async fn reconcile(&self, req: Request, ctx: &Context) -> Result<Action, Error> {
        let Some(backup) = ctx.lister::<Backup>().namespace(&req.namespace).get(&req.name)? else {
            return Ok(Action::done());
        };
        let Some(source) = ctx.lister::<ConfigMap>().namespace(&req.namespace).get(&backup.spec.config_map)? else {
            return Err(Error::Missing(TerminalError::new(format!(
                "ConfigMap {}/{} not found",
                req.namespace, backup.spec.config_map
            ))));
        };
        let data: BTreeMap<String, String> = source.data.clone().unwrap_or_default();
        let mut metadata = ObjectMeta {
            name: Some(format!("{}-copy", backup.name_any())),
            namespace: backup.namespace(),
            ..Default::default()
        };
        set_controller_reference(backup.as_ref(), &mut metadata)?;
        let keys = data.len();
        let copy = ConfigMap { metadata, data: Some(data), ..Default::default() };
        ctx.clientset()
            .core_v1()
            .config_maps(&req.namespace)
            .apply(&copy, &PatchOptions::apply("backup-operator").force())
            .await?;
        patch_status(&ctx.client::<Backup>(Some(&req.namespace)), &req.name, &BackupStatus { keys }).await?;
        ctx.recorder().publish_for(backup.as_ref(), Event::normal("Copied", "Reconcile").note(format!("{keys} keys")));
        Ok(Action::done())
    }
}
