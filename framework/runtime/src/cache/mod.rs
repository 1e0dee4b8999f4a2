//! The informer cache, client-go's `tools/cache`: the thread-safe [`Indexer`] that listers read
//! and the [`DeltaFifo`] between the reflector and the informer. (The reflector, shared
//! informers, the factory and listers build on these.)

pub mod delta_fifo;
pub mod store;

pub use delta_fifo::{Delta, DeltaFifo, DeltaObject, DeltaType, KnownObjects};
pub use store::{CacheObject, IndexFunc, Indexer, NAMESPACE_INDEX, StoreError};
