//! krust-runtime: the controller runtime of krust, with client-go's semantics and invariants:
//! the informer cache (`cache`), the work queues (`workqueue`), controllers and their
//! reconcilers (`controller`), events (`events`), leader election (`leader`), the manager
//! (`manager`) and the admission and conversion webhook server (`webhook`).

pub mod cache;
pub mod controller;
pub mod events;
pub mod leader;
pub mod manager;
mod random;
pub mod webhook;
pub mod workqueue;
