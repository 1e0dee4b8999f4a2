//! {{project-name}}: a Kubernetes operator for `{{kind}}` resources ({{group}}/{{api_version}}),
//! built with [krust](https://github.com/krust-dev/krust).
//!
//! - [`crd`]: the `{{kind}}` custom resource (its Rust type, from which the CRD is generated).
//! - [`reconciler`]: what the operator does for each `{{kind}}`.
//! - [`operator`]: the command line, the logging and the manager that runs the controller.
{%- if webhooks %}
//! - [`webhook`]: the admission webhooks (validation and defaults).
{%- endif %}

pub mod crd;
pub mod operator;
pub mod reconciler;
{%- if webhooks %}
pub mod webhook;
{%- endif %}
