//! Runs {{project-name}} against an embedded Kubernetes API server (krust-apiserver): no cluster
//! needed. It installs the CRD, creates a sample {{kind}} and runs the operator until Ctrl-C;
//! kubectl works against the server with the kubeconfig it prints.
//!
//! `cargo run --example local` (operator flags go after `--`, e.g. `-- --metrics-addr 127.0.0.1:9090`).

use clap::Parser;
use krust::prelude::*;
{%- if webhooks %}
use krust::runtime::webhook::{WebhookEndpoint, WebhookServer, webhook_configurations};
{%- endif %}
use krust_apiserver::ApiServer;

use {{crate_name}}::{
    crd::{self, {{kind}}, {{kind}}Spec},
    operator::{self, Args},
{%- if webhooks %}
    webhook::webhooks,
{%- endif %}
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = ApiServer::builder().start().await?;
    let kubeconfig = std::env::temp_dir().join("{{project-name}}.kubeconfig");
    std::fs::write(&kubeconfig, &server.kubeconfig().yaml)?;
    let mut argv = vec![
        "{{project-name}}".to_string(),
        "--kubeconfig".to_string(),
        kubeconfig.display().to_string(),
        "--metrics-addr".to_string(),
        "127.0.0.1:8080".to_string(),
    ];
{%- if webhooks %}
    // The webhooks on this machine, with a certificate made for it, registered by URL.
    let certs = std::env::temp_dir().join("{{project-name}}-webhook-certs");
    let ca = krust_apiserver::write_webhook_certificate(&certs)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    argv.push(format!("--webhook-addr=127.0.0.1:{port}"));
    argv.push(format!("--webhook-cert-dir={}", certs.display()));
{%- endif %}
    argv.extend(std::env::args().skip(1));
    let args = Args::parse_from(argv);
    krust::operator::init_logging(args.operator.log_format);

    let clientset = Clientset::new(&server.kubeconfig().config)?;
    crd::install(&clientset).await?;

    let message = "Hello from {{project-name}}".to_string();
    let spec = {{kind}}Spec { {% if scope == "Cluster" %}target_namespace: "default".into(), {% endif %}message };
    let {% if scope == "Namespaced" %}mut {% endif %}sample = {{kind}}::new("sample", spec);
{%- if scope == "Namespaced" %}
    sample.metadata.namespace = Some("default".into());
    let client = clientset.typed::<{{kind}}>(Some("default"));
{%- else %}
    let client = clientset.typed::<{{kind}}>(None);
{%- endif %}
    client.apply(&sample, &PatchOptions::apply("local").force()).await?;
{%- if webhooks %}
    // Registered after the sample: the operator starts serving them below.
    if let Some(addr) = args.operator.webhook_addr {
        let specs = webhooks(WebhookServer::builder()).webhooks();
        let endpoint = WebhookEndpoint::Url(format!("https://{addr}"));
        let name = {{crate_name}}::reconciler::MANAGER;
        let (mutating, validating) = webhook_configurations(name, &specs, &endpoint, Some(ca.as_bytes()));
        let admission = clientset.admissionregistration_v1();
        let apply = PatchOptions::apply("local").force();
        if let Some(m) = mutating {
            admission.mutating_webhook_configurations().apply(&m, &apply).await?;
        }
        if let Some(v) = validating {
            admission.validating_webhook_configurations().apply(&v, &apply).await?;
        }
        println!("webhooks at https://{addr} (registered with the API server)");
    }
{%- endif %}
    println!("krust-apiserver at {}; try:", server.url());
    println!("  kubectl --kubeconfig {} get {{plural}}", kubeconfig.display());
    println!(
        "  kubectl --kubeconfig {} get configmap sample-message -n default -o yaml",
        kubeconfig.display()
    );
    println!("metrics and probes on http://{}/metrics (Ctrl-C stops)", args.operator.metrics_addr);
    operator::run(args).await
}
