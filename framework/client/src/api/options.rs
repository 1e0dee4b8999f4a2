//! Request options mirroring metav1's (`GetOptions`, `ListOptions`, `CreateOptions`,
//! `UpdateOptions`, `PatchOptions`, `DeleteOptions`) and core/v1 `PodLogOptions`, turned into the
//! query parameters (and DeleteOptions body) the API server reads.
//!
//! Mirrors apimachinery's `metav1` options types.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let clientset = krust_client::Clientset::new(&server.kubeconfig().config)?;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use krust_client::{CreateOptions, DeleteOptions, ListOptions, PatchOptions, PropagationPolicy};
//!
//! let config_maps = clientset.core_v1().config_maps("default");
//! for (name, tier) in [("web", "front"), ("db", "back")] {
//!     let cm: ConfigMap = serde_json::from_value(serde_json::json!({
//!         "metadata": {"name": name, "labels": {"tier": tier}}}))?;
//!     config_maps.create(&cm, &CreateOptions::default()).await?;
//! }
//! // labelSelector and limit, as `kubectl get -l tier=front --chunk-size 100` sends them.
//! let front = config_maps.list(&ListOptions::default().labels("tier=front").limit(100)).await?;
//! assert_eq!(front.items.len(), 1);
//! // Server-side apply as a field manager, taking over conflicting fields.
//! let apply = PatchOptions::apply("my-operator").force();
//! assert!(apply.force && apply.field_manager.as_deref() == Some("my-operator"));
//! // Deletion with dependents first.
//! let foreground = DeleteOptions { propagation_policy: Some(PropagationPolicy::Foreground), ..Default::default() };
//! config_maps.delete("db", &foreground).await?;
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

use serde::Serialize;

use crate::rest::Request;

/// `metav1.GetOptions`.
#[derive(Clone, Debug, Default)]
pub struct GetOptions {
    /// `resourceVersion`: "" (most recent, the default) or "0" (any, possibly cached).
    pub resource_version: Option<String>,
}

/// `metav1.ListOptions` (also used for watches).
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// `labelSelector`, e.g. `app=web,tier in (a,b)`.
    pub label_selector: Option<String>,
    /// `fieldSelector`, e.g. `metadata.name=x`.
    pub field_selector: Option<String>,
    /// `limit`: the page size (0 or `None`: everything).
    pub limit: Option<u32>,
    /// `continue`: the token of the previous page.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`: `NotOlderThan` or `Exact`.
    pub resource_version_match: Option<String>,
    /// `timeoutSeconds`: the server ends a watch (or list) after this long.
    pub timeout_seconds: Option<u32>,
    /// `allowWatchBookmarks` (watches).
    pub allow_watch_bookmarks: bool,
    /// `sendInitialEvents` (watches; needs `resourceVersionMatch=NotOlderThan`).
    pub send_initial_events: Option<bool>,
}

impl ListOptions {
    /// Options with a label selector.
    #[must_use]
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = Some(selector.to_string());
        self
    }
    /// Options with a field selector.
    #[must_use]
    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = Some(selector.to_string());
        self
    }
    /// Options with a page size.
    #[must_use]
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// `dryRun=All`.
fn dry_run(r: Request, dry_run: bool) -> Request {
    if dry_run { r.param("dryRun", "All") } else { r }
}

fn opt(r: Request, key: &str, value: &Option<String>) -> Request {
    match value {
        Some(v) if !v.is_empty() => r.param(key, v),
        _ => r,
    }
}

/// `metav1.CreateOptions`.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// `dryRun=All`: validate, do not persist.
    pub dry_run: bool,
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// `fieldValidation`: `Ignore`, `Warn` or `Strict`.
    pub field_validation: Option<String>,
}

/// `metav1.UpdateOptions` (same fields as create).
pub type UpdateOptions = CreateOptions;

/// `metav1.PatchOptions`.
#[derive(Clone, Debug, Default)]
pub struct PatchOptions {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `fieldManager` (required for server-side apply).
    pub field_manager: Option<String>,
    /// `force`: take ownership of conflicting fields (server-side apply only).
    pub force: bool,
    /// `fieldValidation`.
    pub field_validation: Option<String>,
}

impl PatchOptions {
    /// Options for server-side apply by `field_manager`.
    pub fn apply(field_manager: &str) -> PatchOptions {
        PatchOptions { field_manager: Some(field_manager.to_string()), ..Default::default() }
    }
    /// Forces the apply (takes conflicting fields).
    #[must_use]
    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }
}

/// `metav1.Preconditions`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Preconditions {
    /// The object's uid must be this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The object's resourceVersion must be this.
    #[serde(rename = "resourceVersion", skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

/// `metav1.DeletionPropagation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PropagationPolicy {
    /// Dependents are left alone (their owner reference is removed).
    Orphan,
    /// The object goes at once, dependents after it (the default).
    Background,
    /// Dependents go first, then the object.
    Foreground,
}

/// `metav1.DeleteOptions` (sent as the body of the DELETE, as client-go does).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOptions {
    /// `dryRun: [All]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<String>,
    /// `gracePeriodSeconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<u32>,
    /// `propagationPolicy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation_policy: Option<PropagationPolicy>,
    /// `preconditions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preconditions: Option<Preconditions>,
}

/// core/v1 `PodLogOptions`.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    /// The container (needed when the pod has several).
    pub container: Option<String>,
    /// Keep streaming new lines.
    pub follow: bool,
    /// The previous (crashed) container's logs.
    pub previous: bool,
    /// Only the last N lines.
    pub tail_lines: Option<i64>,
    /// Only lines newer than this many seconds.
    pub since_seconds: Option<i64>,
    /// Prefix lines with timestamps.
    pub timestamps: bool,
    /// At most this many bytes.
    pub limit_bytes: Option<i64>,
}

impl GetOptions {
    pub(crate) fn add_to(&self, r: Request) -> Request {
        opt(r, "resourceVersion", &self.resource_version)
    }
}

impl ListOptions {
    /// Adds these options to a request as query parameters.
    pub fn add_to(&self, r: Request) -> Request {
        let mut r = opt(r, "labelSelector", &self.label_selector);
        r = opt(r, "fieldSelector", &self.field_selector);
        if let Some(l) = self.limit.filter(|l| *l > 0) {
            r = r.param("limit", l);
        }
        r = opt(r, "continue", &self.continue_token);
        r = opt(r, "resourceVersion", &self.resource_version);
        r = opt(r, "resourceVersionMatch", &self.resource_version_match);
        if let Some(t) = self.timeout_seconds {
            r = r.param("timeoutSeconds", t);
        }
        r
    }

    /// Adds these options, and the watch-only ones, to a request.
    pub fn add_watch_to(&self, r: Request) -> Request {
        let mut r = self.add_to(r);
        if self.allow_watch_bookmarks {
            r = r.param("allowWatchBookmarks", "true");
        }
        if let Some(s) = self.send_initial_events {
            r = r.param("sendInitialEvents", s);
        }
        r
    }
}

impl CreateOptions {
    pub(crate) fn add_to(&self, r: Request) -> Request {
        let r = opt(dry_run(r, self.dry_run), "fieldManager", &self.field_manager);
        opt(r, "fieldValidation", &self.field_validation)
    }
}

impl PatchOptions {
    pub(crate) fn add_to(&self, r: Request) -> Request {
        let mut r = opt(dry_run(r, self.dry_run), "fieldManager", &self.field_manager);
        if self.force {
            r = r.param("force", "true");
        }
        opt(r, "fieldValidation", &self.field_validation)
    }
}

impl LogOptions {
    pub(crate) fn add_to(&self, r: Request) -> Request {
        let mut r = opt(r, "container", &self.container);
        for (flag, key) in
            [(self.follow, "follow"), (self.previous, "previous"), (self.timestamps, "timestamps")]
        {
            if flag {
                r = r.param(key, "true");
            }
        }
        for (value, key) in [
            (self.tail_lines, "tailLines"),
            (self.since_seconds, "sinceSeconds"),
            (self.limit_bytes, "limitBytes"),
        ] {
            if let Some(v) = value {
                r = r.param(key, v);
            }
        }
        r
    }
}
