//! `retry_on_conflict`, client-go's `util/retry.RetryOnConflict`: run a read-modify-write again
//! when the write loses a race (409 Conflict), with a short backoff.

use std::{future::Future, time::Duration};

use backon::{ConstantBuilder, Retryable};

use crate::error::Result;

/// client-go's `retry.DefaultRetry`: 5 attempts, 10 ms apart, with jitter.
pub const DEFAULT_RETRY: ConstantBuilder =
    ConstantBuilder::new().with_delay(Duration::from_millis(10)).with_max_times(4).with_jitter();

/// Runs `f` until it succeeds, fails with something other than a conflict, or the backoff is
/// exhausted (then the last conflict is returned).
pub async fn retry_on_conflict<T, F, Fut>(backoff: ConstantBuilder, f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    f.retry(backoff).when(|e| e.is_conflict()).await
}
