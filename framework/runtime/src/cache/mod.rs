//! The informer cache, client-go's `tools/cache`: the [`Reflector`] (ListAndWatch) feeding the
//! [`DeltaFifo`], the [`SharedIndexInformer`] applying deltas to the thread-safe [`Indexer`] and
//! calling event handlers, and [`Cached`], the representation of a cached object: its JSON
//! bytes (decoded in one scan, managedFields and other [`FieldPath`]s dropped in that pass) and
//! where its metadata lies in them. Typed reads go through [`Lister`]s, which decode on demand
//! and share a bounded set of recently decoded objects.

mod decoded;
pub mod delta_fifo;
pub mod factory;
pub mod informer;
pub mod lister;
pub mod object;
pub mod reflector;
pub mod scan;
pub mod store;
mod synced;

pub use delta_fifo::{Delta, DeltaFifo, DeltaObject, DeltaType, KnownObjects, Replace};
pub use factory::SharedInformerFactory;
pub use informer::{EventHandler, HANDLER_BUFFER, HandlerRegistration, InformerOptions, SharedIndexInformer};
pub use lister::{DEFAULT_RECENTLY_DECODED, Lister, NamespaceLister};
pub use object::{Cached, Labels, ObjectView};
pub use reflector::{PAGE_SIZE, Reflector, Transform, WatchErrorHandler};
pub use scan::{FieldPath, FieldPathError, ScanError};
pub use store::{CacheObject, IndexFunc, Indexer, NAMESPACE_INDEX, StoreError};
pub use synced::Synced;
