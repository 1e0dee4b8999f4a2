//! krust-runtime: the controller runtime of krust. So far: the informer cache's data
//! structures (`cache`), with client-go's semantics and invariants.

pub mod cache;
