//! `retry_on_conflict`, client-go's `util/retry.RetryOnConflict`: run a read-modify-write again
//! when the write loses a race (409 Conflict), with a short backoff.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let clientset = krust_client::Clientset::new(&server.kubeconfig().config)?;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use krust_client::{CreateOptions, DEFAULT_RETRY, GetOptions, UpdateOptions, retry_on_conflict};
//!
//! let config_maps = clientset.core_v1().config_maps("default");
//! let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": "counter"}, "data": {"n": "0"}}))?;
//! config_maps.create(&cm, &CreateOptions::default()).await?;
//!
//! // Read, change, write; again from the read if someone else wrote in between.
//! let updated = retry_on_conflict(DEFAULT_RETRY, || async {
//!     let mut cm = config_maps.get("counter", &GetOptions::default()).await?;
//!     let data = cm.data.get_or_insert_default();
//!     let n: u32 = data.get("n").and_then(|n| n.parse().ok()).unwrap_or(0);
//!     data.insert("n".into(), (n + 1).to_string());
//!     config_maps.update(&cm, &UpdateOptions::default()).await
//! })
//! .await?;
//! assert_eq!(updated.data.unwrap()["n"], "1");
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

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
