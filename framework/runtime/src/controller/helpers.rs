//! The helpers reconcilers need again and again (controller-runtime's `controllerutil`, kube-rs'
//! `finalizer` and `wait`), one file each: `finalizer`, `ownership` (owner references,
//! create-or-update/patch), `status` and `wait`. This module gathers their names under one path.
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let config = server.kubeconfig().config;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use krust_client::Clientset;
//! use krust_runtime::controller::helpers::{OperationResult, create_or_update};
//!
//! let clientset = Clientset::new(&config)?;
//! let client = clientset.core_v1().config_maps("default");
//! let mut desired = ConfigMap::default();
//! desired.metadata.name = Some("settings".into());
//! // Created the first time, updated when it differs, left alone when it is as wanted.
//! let set_mode = |cm: &mut ConfigMap| {
//!     cm.data.get_or_insert_default().insert("mode".into(), "fast".into());
//! };
//! let (_, first) = create_or_update(&client, desired.clone(), set_mode).await?;
//! let (_, second) = create_or_update(&client, desired, set_mode).await?;
//! assert_eq!((first, second), (OperationResult::Created, OperationResult::Unchanged));
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

pub use super::{
    finalizer::{FinalizerError, FinalizerEvent, finalizer},
    ownership::{
        APPLIED_HASH_ANNOTATION, OperationResult, OwnerReferenceError, apply_owned, apply_owned_metadata,
        create_or_patch, create_or_update, owner_reference, set_controller_reference,
    },
    status::{apply_status, patch_status},
    wait::{WaitError, conditions, wait_for},
};
