//! The helpers reconcilers need again and again (controller-runtime's `controllerutil`, kube-rs'
//! `finalizer` and `wait`), one file each: `finalizer`, `ownership` (owner references,
//! create-or-update/patch), `status` and `wait`. This module gathers their names under one path.

pub use super::{
    finalizer::{FinalizerError, FinalizerEvent, finalizer},
    ownership::{
        APPLIED_HASH_ANNOTATION, OperationResult, OwnerReferenceError, apply_owned, apply_owned_metadata,
        create_or_patch, create_or_update, owner_reference, set_controller_reference,
    },
    status::{apply_status, patch_status},
    wait::{WaitError, conditions, wait_for},
};
