//! Kubernetes Events from controllers (client-go's `tools/events` recorder with the correlation
//! of `tools/record`): what `kubectl describe` and `kubectl events` show about an object.
//!
//! - [`EventRecorder::publish`] never blocks and never fails a reconcile: events go into a
//!   bounded queue (1024) that one background task sends; when the queue is full the event is
//!   dropped and a warning logged.
//! - Repeats are correlated: an event identical to one sent in the last 10 minutes (same
//!   object, type, reason, action, note and source) updates that event's series (count and
//!   last time) instead of creating another object.
//! - A spam filter limits each source and object pair to bursts of 25 events, refilled at one
//!   per 5 minutes (client-go's values); events over it are dropped.
//! - events.k8s.io/v1 is used; if the server does not serve it, core/v1 Events (with
//!   `count`, `firstTimestamp`, `lastTimestamp`) from then on.
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = krust_apiserver::ApiServer::builder().start().await?;
//! # let config = server.kubeconfig().config;
//! use std::time::Duration;
//!
//! use k8s_openapi::api::{core::v1::ConfigMap, events::v1::Event as K8sEvent};
//! use krust_client::{Clientset, CreateOptions, ListOptions};
//! use krust_runtime::events::{Event, EventBroadcaster};
//!
//! let clientset = Clientset::new(&config)?;
//! let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": "web", "namespace": "default"}}))?;
//! let cm = clientset.core_v1().config_maps("default").create(&cm, &CreateOptions::default()).await?;
//!
//! let broadcaster = EventBroadcaster::new(clientset.clone());
//! let recorder = broadcaster.recorder("example.org/my-operator", "pod-1");
//! for _ in 0..3 {
//!     // The same event three times: one Event object with a series of 3.
//!     recorder.publish_for(&cm, Event::warning("Invalid", "Reconcile").note("data.mode must be fast or slow"));
//! }
//! let events = clientset.typed::<K8sEvent>(Some("default"));
//! let mut found = None;
//! for _ in 0..200 {
//!     let list = events.list(&ListOptions::default()).await?;
//!     if let Some(e) = list.items.into_iter().find(|e| e.series.as_ref().is_some_and(|s| s.count == 3)) {
//!         found = Some(e);
//!         break;
//!     }
//!     tokio::time::sleep(Duration::from_millis(20)).await;
//! }
//! let event = found.expect("one Event with a series of 3");
//! assert_eq!(event.reason.as_deref(), Some("Invalid"));
//! assert_eq!(event.regarding.unwrap().name.as_deref(), Some("web"));
//! # server.shutdown().await;
//! # Ok(()) }
//! ```

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use k8s_openapi::{
    api::{
        core::v1::{EventSource, ObjectReference},
        events::v1::{Event as EventV1, EventSeries},
    },
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time},
    jiff::Timestamp,
};
use krust_client::{Clientset, CreateOptions, PatchOptions, PatchType};
use kube_core::Resource;
use serde_json::json;
use tokio::{sync::mpsc, time::Instant};

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something happened as expected.
    Normal,
    /// Something needs attention.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// How long a repeat is correlated with an earlier event (client-go: 10 minutes).
pub const CORRELATION_WINDOW: Duration = Duration::from_secs(600);
/// The spam filter's burst per source and object (client-go: 25).
pub const SPAM_BURST: f64 = 25.0;
/// The spam filter's refill interval: one event per 5 minutes (client-go).
pub const SPAM_REFILL: Duration = Duration::from_secs(300);
/// The bound of the queue of unsent events.
pub const QUEUE_CAPACITY: usize = 1024;

#[derive(Debug)]
struct Pending {
    regarding: ObjectReference,
    kind: EventType,
    reason: String,
    action: String,
    note: Option<String>,
    controller: String,
    instance: String,
}

/// Sends the events of every recorder of a manager (client-go's `EventBroadcaster`).
#[derive(Clone)]
pub struct EventBroadcaster {
    tx: mpsc::Sender<Pending>,
    dropped: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
}

impl std::fmt::Debug for EventBroadcaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBroadcaster")
            .field("sent", &self.sent.load(Ordering::Relaxed))
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

impl EventBroadcaster {
    /// Starts the background sender (needs a tokio runtime); it ends when every recorder and
    /// the broadcaster are dropped.
    pub fn new(clientset: Clientset) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let sent = Arc::new(AtomicU64::new(0));
        tokio::spawn(Sender { clientset, core_fallback: AtomicBool::new(false), sent: sent.clone() }.run(rx));
        EventBroadcaster { tx, dropped: Arc::new(AtomicU64::new(0)), sent }
    }

    /// A recorder whose events come from `controller` (events.k8s.io `reportingController`,
    /// e.g. `example.org/website-operator`) on `instance` (`reportingInstance`, e.g. the pod).
    pub fn recorder(&self, controller: &str, instance: &str) -> EventRecorder {
        EventRecorder {
            broadcaster: self.clone(),
            controller: controller.to_string(),
            instance: instance.to_string(),
        }
    }

    /// Events written or updated on the server so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Records events about objects; cheap to clone.
#[derive(Clone, Debug)]
pub struct EventRecorder {
    broadcaster: EventBroadcaster,
    controller: String,
    instance: String,
}

/// The reference to an object, for events about it.
pub fn object_reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    let meta = obj.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).to_string()),
        kind: Some(K::kind(&()).to_string()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}

/// What happened, for [`EventRecorder::publish`] (the fields of an events.k8s.io/v1 Event that
/// a controller chooses; kube-rs' `Event`).
///
/// ```
/// use krust_runtime::events::Event;
/// let event = Event::normal("Created", "Reconcile").note("created ConfigMap web-page");
/// assert_eq!(event.reason, "Created");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub type_: EventType,
    /// Why, in one UpperCamelCase word (`Created`, `FailedCreate`).
    pub reason: String,
    /// What the controller did or failed to do (`Reconcile`, `Delete`).
    pub action: String,
    /// A human-readable sentence.
    pub note: Option<String>,
}

impl Event {
    /// A `Normal` event: something happened as expected.
    pub fn normal(reason: impl Into<String>, action: impl Into<String>) -> Self {
        Event { type_: EventType::Normal, reason: reason.into(), action: action.into(), note: None }
    }

    /// A `Warning` event: something needs attention.
    pub fn warning(reason: impl Into<String>, action: impl Into<String>) -> Self {
        Event { type_: EventType::Warning, reason: reason.into(), action: action.into(), note: None }
    }

    /// Sets the note.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

impl EventRecorder {
    /// Records `event` about `regarding` (see [`object_reference`]). Never blocks.
    pub fn publish(&self, regarding: &ObjectReference, event: Event) {
        let Event { type_, reason, action, note } = event;
        let pending = Pending {
            regarding: regarding.clone(),
            kind: type_,
            reason,
            action,
            note,
            controller: self.controller.clone(),
            instance: self.instance.clone(),
        };
        if let Err(e) = self.broadcaster.tx.try_send(pending) {
            self.broadcaster.dropped.fetch_add(1, Ordering::Relaxed);
            let reason = match &e {
                mpsc::error::TrySendError::Full(p) | mpsc::error::TrySendError::Closed(p) => p.reason.clone(),
            };
            tracing::warn!(%reason, error = %e, "event dropped: the event queue is full or closed");
        }
    }

    /// [`publish`](Self::publish) about a typed object.
    pub fn publish_for<K: Resource<DynamicType = ()>>(&self, obj: &K, event: Event) {
        self.publish(&object_reference(obj), event)
    }
}

/// A sent event: where it is and how often it happened.
struct Sent {
    namespace: String,
    name: String,
    count: i32,
    last_seen: Instant,
}

/// The per source+object token bucket of the spam filter.
struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Sender {
    clientset: Clientset,
    core_fallback: AtomicBool,
    sent: Arc<AtomicU64>,
}

type CorrelationKey = (String, String, String, String, String, String, String, String);

fn correlation_key(e: &Pending) -> CorrelationKey {
    let r = &e.regarding;
    (
        r.uid.clone().unwrap_or_default(),
        r.kind.clone().unwrap_or_default(),
        r.namespace.clone().unwrap_or_default(),
        r.name.clone().unwrap_or_default(),
        format!("{}/{}", e.kind.as_str(), e.reason),
        e.action.clone(),
        e.note.clone().unwrap_or_default(),
        e.controller.clone(),
    )
}

impl Sender {
    async fn run(self, mut rx: mpsc::Receiver<Pending>) {
        let mut sent: HashMap<CorrelationKey, Sent> = HashMap::new();
        let mut buckets: HashMap<(String, String), Bucket> = HashMap::new();
        while let Some(event) = rx.recv().await {
            let now = Instant::now();
            // The spam filter, per source and object.
            let object = format!(
                "{}/{}/{}/{}",
                event.regarding.kind.as_deref().unwrap_or(""),
                event.regarding.namespace.as_deref().unwrap_or(""),
                event.regarding.name.as_deref().unwrap_or(""),
                event.regarding.uid.as_deref().unwrap_or("")
            );
            let bucket = buckets
                .entry((event.controller.clone(), object))
                .or_insert(Bucket { tokens: SPAM_BURST, at: now });
            let refill = now.saturating_duration_since(bucket.at).as_secs_f64() / SPAM_REFILL.as_secs_f64();
            bucket.tokens = (bucket.tokens + refill).min(SPAM_BURST);
            bucket.at = now;
            if bucket.tokens < 1.0 {
                tracing::debug!(reason = %event.reason, "event dropped by the spam filter");
                continue;
            }
            bucket.tokens -= 1.0;
            // Forget correlations past the window (bounded memory).
            if sent.len() > 4096 {
                sent.retain(|_, s| now.saturating_duration_since(s.last_seen) < CORRELATION_WINDOW);
                buckets.retain(|_, b| {
                    b.tokens < SPAM_BURST - 1e-9 || now.saturating_duration_since(b.at) < SPAM_REFILL
                });
            }
            let key = correlation_key(&event);
            let repeat = sent
                .get_mut(&key)
                .filter(|s| now.saturating_duration_since(s.last_seen) < CORRELATION_WINDOW);
            let outcome = match repeat {
                Some(previous) => {
                    previous.count += 1;
                    previous.last_seen = now;
                    let (namespace, name, count) =
                        (previous.namespace.clone(), previous.name.clone(), previous.count);
                    self.update(&namespace, &name, count).await
                }
                None => match self.create(&event).await {
                    Ok((namespace, name)) => {
                        sent.insert(key, Sent { namespace, name, count: 1, last_seen: now });
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
            };
            match outcome {
                Ok(()) => {
                    self.sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(reason = %event.reason, error = %e, "could not write an event"),
            }
        }
    }

    async fn create(&self, e: &Pending) -> Result<(String, String), krust_client::Error> {
        let now = Timestamp::now();
        let namespace =
            e.regarding.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into());
        // client-go: <object name>.<unix nanoseconds in hex>.
        let name = format!(
            "{}.{:x}",
            e.regarding.name.as_deref().unwrap_or("object"),
            now.as_nanosecond().max(0) as u128
        );
        if !self.core_fallback.load(Ordering::Relaxed) {
            let event = EventV1 {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(namespace.clone()),
                    ..Default::default()
                },
                event_time: Some(MicroTime(now)),
                type_: Some(e.kind.as_str().to_string()),
                reason: Some(e.reason.clone()),
                action: Some(e.action.clone()),
                note: e.note.clone(),
                regarding: Some(e.regarding.clone()),
                reporting_controller: Some(e.controller.clone()),
                reporting_instance: Some(e.instance.clone()),
                ..Default::default()
            };
            match self
                .clientset
                .events_v1()
                .events(&namespace)
                .create(&event, &CreateOptions::default())
                .await
            {
                Ok(_) => return Ok((namespace, name)),
                Err(err) if err.is_not_found() && !names_a_namespace(&err) => {
                    tracing::info!("events.k8s.io/v1 is not served; writing core/v1 Events");
                    self.core_fallback.store(true, Ordering::Relaxed);
                }
                Err(err) => return Err(err),
            }
        }
        let event = k8s_openapi::api::core::v1::Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: e.regarding.clone(),
            type_: Some(e.kind.as_str().to_string()),
            reason: Some(e.reason.clone()),
            action: Some(e.action.clone()),
            message: e.note.clone(),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            source: Some(EventSource { component: Some(e.controller.clone()), host: None }),
            reporting_component: Some(e.controller.clone()),
            reporting_instance: Some(e.instance.clone()),
            ..Default::default()
        };
        self.clientset.core_v1().events(&namespace).create(&event, &CreateOptions::default()).await?;
        Ok((namespace, name))
    }

    async fn update(&self, namespace: &str, name: &str, count: i32) -> Result<(), krust_client::Error> {
        let now = Timestamp::now();
        if self.core_fallback.load(Ordering::Relaxed) {
            let patch = json!({"count": count, "lastTimestamp": Time(now)});
            self.clientset
                .core_v1()
                .events(namespace)
                .patch(name, PatchType::Merge, &patch, &PatchOptions::default())
                .await?;
        } else {
            let series = EventSeries { count, last_observed_time: MicroTime(now) };
            let patch = json!({"series": series});
            self.clientset
                .events_v1()
                .events(namespace)
                .patch(name, PatchType::Merge, &patch, &PatchOptions::default())
                .await?;
        }
        Ok(())
    }
}

fn names_a_namespace(err: &krust_client::Error) -> bool {
    err.api_error().is_some_and(|a| a.status.details.as_ref().is_some_and(|d| d.kind == "namespaces"))
}
