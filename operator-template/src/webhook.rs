//! The {{kind}}'s admission webhooks, served by the operator over HTTPS (`--webhook-addr`,
//! certificate from `--webhook-cert-dir`; the chart mounts it): a validator that refuses what the
//! reconciler could not work with, and a defaulter that fills in what was left out. The API
//! server calls them on creates and updates, as `webhook.webhooks` of the chart's values says
//! (`{{project-name}} webhookgen` prints them; a test fails when they are stale).

use krust::{
    prelude::*,
    runtime::webhook::{Defaulter, Denial, Validator, Warnings, WebhookServerBuilder},
};

use crate::crd::{{kind}};

/// The longest message a {{kind}} may carry (a ConfigMap value; replace with your own rules).
pub const MAX_MESSAGE: usize = 1024;

/// Refuses a {{kind}} whose message is too long.
pub struct {{kind}}Validator;

impl {{kind}}Validator {
    fn check(obj: &{{kind}}) -> Result<Warnings, Denial> {
        if obj.spec.message.len() > MAX_MESSAGE {
            return Err(Denial::invalid(
                "spec.message",
                format!("must be at most {MAX_MESSAGE} bytes, not {}", obj.spec.message.len()),
            ));
        }
        Ok(Warnings::new())
    }
}

#[async_trait]
impl Validator<{{kind}}> for {{kind}}Validator {
    async fn validate_create(&self, obj: &{{kind}}) -> Result<Warnings, Denial> {
        Self::check(obj)
    }

    async fn validate_update(&self, _old: &{{kind}}, obj: &{{kind}}) -> Result<Warnings, Denial> {
        Self::check(obj)
    }
}

/// Gives a {{kind}} without a message a greeting naming it.
pub struct {{kind}}Defaulter;

#[async_trait]
impl Defaulter<{{kind}}> for {{kind}}Defaulter {
    async fn default(&self, obj: &mut {{kind}}) -> Result<(), Denial> {
        if obj.spec.message.is_empty() {
            obj.spec.message = format!("Hello from {}", obj.name_any());
        }
        Ok(())
    }
}

/// The webhooks on `server` (the paths are kubebuilder's: `/validate-…` and `/mutate-…`).
pub fn webhooks(server: WebhookServerBuilder) -> WebhookServerBuilder {
    server.validator::<{{kind}}, _>({{kind}}Validator).defaulter::<{{kind}}, _>({{kind}}Defaulter)
}

/// The webhooks as the chart's `webhook.webhooks` lists them (what `webhookgen` prints).
pub fn webhook_yaml() -> anyhow::Result<String> {
    let specs = webhooks(krust::runtime::webhook::WebhookServer::builder()).webhooks();
    Ok(serde_saphyr::to_string(&specs)?)
}
