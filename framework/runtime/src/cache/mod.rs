//! The informer cache, client-go's `tools/cache`: the [`Reflector`] (ListAndWatch) feeding the
//! [`DeltaFifo`], the [`SharedIndexInformer`] applying deltas to the thread-safe [`Indexer`] and
//! calling event handlers, and [`Cached`], the representation of a cached object.

pub mod delta_fifo;
pub mod factory;
pub mod informer;
pub mod lister;
pub mod object;
pub mod reflector;
pub mod store;

pub use delta_fifo::{Delta, DeltaFifo, DeltaObject, DeltaType, KnownObjects};
pub use factory::SharedInformerFactory;
pub use informer::{EventHandler, HANDLER_BUFFER, HandlerRegistration, InformerOptions, SharedIndexInformer};
pub use lister::{Lister, NamespaceLister};
pub use object::{CacheMeta, Cached, ObjectView};
pub use reflector::{PAGE_SIZE, Reflector, Transform, WatchErrorHandler};
pub use store::{CacheObject, IndexFunc, Indexer, NAMESPACE_INDEX, StoreError};
