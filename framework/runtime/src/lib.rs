//! krust-runtime: the controller runtime of krust, with client-go's semantics and invariants:
//! the informer cache (`cache`) and the work queues (`workqueue`).

pub mod cache;
pub mod workqueue;
