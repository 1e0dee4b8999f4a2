//! The typed clientset, the dynamic client and the options of their verbs.
//!
//! Mirrors client-go's `kubernetes` clientset, `dynamic` client and metav1 options.

mod clientset;
mod dynamic;
pub mod options;
mod resource;

pub use crate::pager::DEFAULT_PAGE_SIZE;
pub use clientset::{Clientset, TypedClient};
pub use dynamic::{DynamicClient, DynamicResource};
pub use resource::{Deleted, ResourceClient};
