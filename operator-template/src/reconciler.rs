//! What the operator does for each {{kind}}: keep a ConfigMap holding its message (owned by the
//! {{kind}}, so it goes when the {{kind}} goes, and repaired when someone else changes or deletes
//! it) and report that in the {{kind}}'s `Ready` condition.{% if finalizer %} A finalizer gives the
//! operator a last word before a {{kind}} is deleted (clean up what lives outside the cluster).{% endif %}
//!
//! Replace the ConfigMap with what your operator manages; keep the shape: read from the cache,
//! compute the desired objects, apply them, write the status only when it changes.

use std::{collections::BTreeMap, time::Duration};

use krust::{
    TerminalError,
    k8s_openapi::{api::core::v1::ConfigMap, apimachinery::pkg::apis::meta::v1::ObjectMeta},
    prelude::*,
{%- if finalizer %}
    runtime::controller::helpers::{
        self, FinalizerError, FinalizerEvent, OperationResult, OwnerReferenceError, finalizer,
        set_controller_reference,
    },
{%- else %}
    runtime::controller::helpers::{self, OperationResult, OwnerReferenceError, set_controller_reference},
{%- endif %}
    status::{Condition, set_condition},
};

use crate::crd::{{kind}};

/// The operator's name: its field manager for server-side apply and the source of its events.
pub const MANAGER: &str = "{{project-name}}";
{%- if finalizer %}
/// The finalizer the operator puts on every {{kind}}.
pub const FINALIZER: &str = "{{group}}/cleanup";
{%- endif %}
/// How often a {{kind}} is reconciled even when nothing changed (drift the watches cannot see).
pub const RESYNC: Duration = Duration::from_secs(300);

/// Why a reconcile failed (an error is retried with backoff, except `Invalid`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed.
    #[error(transparent)]
    Client(#[from] krust::Error),
    /// The owner reference could not be set.
    #[error(transparent)]
    Owner(#[from] OwnerReferenceError),
    /// The {{kind}} cannot be reconciled as it is; retrying will not help.
    #[error("invalid {{kind}}: {0}")]
    Invalid(#[source] TerminalError),
{%- if finalizer %}
    /// Adding or removing the finalizer failed, or the step it wraps did.
    #[error(transparent)]
    Finalizer(#[from] Box<FinalizerError<Error>>),
{%- endif %}
}

/// The name of the ConfigMap kept for a {{kind}}.
pub fn config_map_name(obj: &{{kind}}) -> String {
    format!("{}-message", obj.metadata.name.as_deref().unwrap_or_default())
}

/// The namespace of that ConfigMap.
pub fn config_map_namespace(obj: &{{kind}}) -> String {
{%- if scope == "Namespaced" %}
    obj.metadata.namespace.clone().unwrap_or_default()
{%- else %}
    obj.spec.target_namespace.clone()
{%- endif %}
}

/// The ConfigMap as it should be (pure: unit-testable without a server).
pub fn desired_config_map(obj: &{{kind}}) -> Result<ConfigMap, Error> {
    let namespace = config_map_namespace(obj);
    if namespace.is_empty() {
        return Err(Error::Invalid(TerminalError::new("the ConfigMap's namespace is empty")));
    }
    let labels = BTreeMap::from([
        ("app.kubernetes.io/managed-by".to_string(), MANAGER.to_string()),
        ("{{group}}/{{kind_lower}}".to_string(), obj.metadata.name.clone().unwrap_or_default()),
    ]);
    let mut metadata = ObjectMeta {
        name: Some(config_map_name(obj)),
        namespace: Some(namespace),
        labels: Some(labels),
        ..Default::default()
    };
    set_controller_reference(obj, &mut metadata)?;
    Ok(ConfigMap {
        metadata,
        data: Some(BTreeMap::from([("message".to_string(), obj.spec.message.clone())])),
        ..Default::default()
    })
}

/// The reconciler: one call per {{kind}} that changed (or whose ConfigMap did).
pub struct {{kind}}Reconciler;

impl {{kind}}Reconciler {
    async fn apply(&self, obj: &{{kind}}, ctx: &Context) -> Result<Action, Error> {
        let desired = desired_config_map(obj)?;
        let (namespace, name) = (config_map_namespace(obj), config_map_name(obj));
        // Server-side apply; what it did is judged from the cached resourceVersion before it.
        let (_, result) = helpers::apply_owned(ctx, &desired, MANAGER).await?;
        let event = match result {
            OperationResult::Created => Some(("Created", format!("created ConfigMap {namespace}/{name}"))),
            OperationResult::Updated => {
                Some(("Updated", format!("brought ConfigMap {namespace}/{name} back in line")))
            }
            OperationResult::Unchanged => None,
        };
        if let Some((reason, note)) = event {
            ctx.recorder().publish_for(obj, Event::normal(reason, "Reconcile").note(note));
        }

        // The status, written only when it changes (a status write is itself a change).
        let generation = obj.metadata.generation;
        let mut status = obj.status.clone().unwrap_or_default();
        let message = format!("ConfigMap {namespace}/{name} holds the message");
        let ready = Condition::new("Ready", true, "Reconciled", message).observed(generation);
        if set_condition(&mut status.conditions, ready) || status.observed_generation != generation {
            status.observed_generation = generation;
            let client = ctx.client::<{{kind}}>({% if scope == "Namespaced" %}obj.metadata.namespace.as_deref(){% else %}None{% endif %});
            let name = obj.metadata.name.as_deref().unwrap_or_default();
            helpers::patch_status(&client, name, &status).await?;
        }
        Ok(Action::requeue_after(RESYNC))
    }
{%- if finalizer %}

    async fn cleanup(&self, obj: &{{kind}}, ctx: &Context) -> Result<Action, Error> {
        // The ConfigMap is garbage-collected with its owner. Release here what the cluster does
        // not own (cloud resources, DNS records, ...), then say so.
        ctx.recorder().publish_for(
            obj,
            Event::normal("CleanedUp", "Cleanup").note("nothing outside the cluster to release"),
        );
        Ok(Action::done())
    }
{%- endif %}
}

#[async_trait]
impl Reconciler for {{kind}}Reconciler {
    type Error = Error;

    async fn reconcile(&self, req: Request, ctx: &Context) -> Result<Action, Error> {
{%- if scope == "Namespaced" %}
        let Some(obj) = ctx.lister::<{{kind}}>().namespace(&req.namespace).get(&req.name)? else {
            return Ok(Action::done()); // gone: what it owned is garbage-collected
        };
{%- else %}
        let Some(obj) = ctx.lister::<{{kind}}>().get(&req.name)? else {
            return Ok(Action::done()); // gone: what it owned is garbage-collected
        };
{%- endif %}
{%- if finalizer %}
        let client = ctx.client::<{{kind}}>({% if scope == "Namespaced" %}Some(&req.namespace){% else %}None{% endif %});
        finalizer(&client, FINALIZER, (*obj).clone(), |event| async move {
            match event {
                FinalizerEvent::Apply(obj) => self.apply(&obj, ctx).await,
                FinalizerEvent::Cleanup(obj) => self.cleanup(&obj, ctx).await,
            }
        })
        .await
        .map_err(|e| Error::Finalizer(Box::new(e)))
{%- else %}
        self.apply(&obj, ctx).await
{%- endif %}
    }
}

/// The controller: {{kind}}s, and the ConfigMaps they own (a change to one reconciles its owner).
pub fn controller() -> Controller {
    Controller::for_::<{{kind}}>().owns::<ConfigMap>().named(MANAGER).build({{kind}}Reconciler)
}
