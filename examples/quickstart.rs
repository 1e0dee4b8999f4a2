//! The quickstart: `cargo run -p krust-examples --example quickstart`.
//!
//! With no flags it starts an embedded krust-apiserver, writes a kubeconfig for it, installs the
//! Website CRD, runs the Website operator, creates a sample Website and shows what the operator
//! does with it (the objects it creates, the status it writes, the events it records, how it
//! repairs what someone else breaks); then it keeps serving until Ctrl-C, so that you can look
//! with kubectl. On the embedded server it also runs the Website's webhooks (a validator that
//! refuses a bad Website, a defaulter, v1/v2 conversion) and writes `invalid-website.yaml` for
//! `kubectl apply` to be refused. `--once` exits 0 once the sample has reconciled (for CI).
//! `--kubeconfig PATH` runs the same against any cluster, without the webhooks (the cluster
//! could not reach them on this machine).

#[path = "operator/website.rs"]
mod website;

use std::time::{Duration, Instant};

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Service},
};
use krust::{
    PatchType,
    prelude::*,
    runtime::{
        controller::helpers::{self, WaitError},
        webhook::WebhookEndpoint,
    },
};
use krust_apiserver::ApiServer;

const WAIT: Duration = Duration::from_secs(30);

fn step(text: impl std::fmt::Display) {
    println!("  ✓ {text}");
}

async fn wait<K>(
    client: &krust::TypedClient<K>,
    name: &str,
    what: &str,
    condition: impl Fn(Option<&K>) -> bool,
) -> anyhow::Result<K>
where
    K: krust::kube_core::Resource + Clone + krust::serde::de::DeserializeOwned,
{
    println!("  … waiting for {what}");
    match helpers::wait_for(client, name, condition, WAIT).await {
        Ok(Some(o)) => Ok(o),
        Ok(None) => anyhow::bail!("{what}: the object is gone"),
        Err(WaitError::Timeout(t)) => {
            anyhow::bail!("{what}: not seen within {t:?}; is the operator running?")
        }
        Err(e) => Err(e.into()),
    }
}

/// What the Website's webhooks do: a bad Website refused, a default filled in, v2 read back.
async fn webhook_tour(clientset: &Clientset, kubeconfig: &str) -> anyhow::Result<()> {
    let sites = clientset.typed::<website::Website>(Some("default"));
    let mut too_big = website::sample("too-big");
    too_big.spec.replicas = 50;
    match sites.create(&too_big, &CreateOptions::default()).await {
        Err(e) => step(format!("the validating webhook refused Website default/too-big: {e}")),
        Ok(_) => anyhow::bail!(
            "Website default/too-big (50 replicas) was accepted: the validating webhook is not called"
        ),
    }
    let mut plain = website::sample("plain");
    plain.spec.content.clear();
    let dry_run = CreateOptions { dry_run: true, ..Default::default() };
    let defaulted = sites.create(&plain, &dry_run).await?;
    step(format!(
        "the defaulting webhook filled in a Website without content (dry run): content {:?}",
        defaulted.spec.content
    ));
    let v2 =
        clientset.typed::<website::v2::Website>(Some("default")).get("hello", &Default::default()).await?;
    step(format!(
        "read as example.krust.dev/v2 (converted by the webhook): image repository {:?}, tag {:?}",
        v2.spec.image.repository,
        v2.spec.image.tag.as_deref().unwrap_or_default()
    ));
    let invalid = std::path::Path::new(kubeconfig).with_file_name("invalid-website.yaml");
    std::fs::write(&invalid, INVALID_WEBSITE)?;
    println!(
        "    try: kubectl --kubeconfig {kubeconfig} apply -f {}   (refused: no image)",
        invalid.display()
    );
    Ok(())
}

/// A Website the validating webhook refuses (`kubectl apply -f` it).
const INVALID_WEBSITE: &str = "apiVersion: example.krust.dev/v1
kind: Website
metadata:
  name: broken
  namespace: default
spec:
  image: \"\"
  replicas: 2
  content: <h1>never served</h1>
";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let once = args.iter().any(|a| a == "--once");
    let kubeconfig_flag =
        args.iter().position(|a| a == "--kubeconfig").and_then(|i| args.get(i + 1)).cloned();
    // Operator logs go to stderr (RUST_LOG=info to see them); the story goes to stdout.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let started = Instant::now();
    println!("krust quickstart: the Website operator");

    let mut _server = None;
    let (config, kubeconfig) = match &kubeconfig_flag {
        Some(path) => {
            step(format!("using the cluster of {path}"));
            (Config::from_kubeconfig(path)?, path.clone())
        }
        None => {
            let server = ApiServer::builder().start().await?;
            step(format!("started an embedded krust-apiserver at {}", server.url()));
            let dir = std::env::temp_dir().join("krust-quickstart");
            std::fs::create_dir_all(&dir)?;
            let path = dir.join("kubeconfig");
            std::fs::write(&path, &server.kubeconfig().yaml)?;
            step(format!("wrote its kubeconfig to {}", path.display()));
            let config = server.kubeconfig().config;
            _server = Some(server);
            (config, path.display().to_string())
        }
    };
    println!(
        "    look with: kubectl --kubeconfig {kubeconfig} get websites,deployments,services,configmaps,events"
    );

    let clientset = Clientset::new(&config)?;
    // The webhooks, on the embedded server only: its webhook calls reach this process.
    let local = match &_server {
        Some(_) => Some(website::LocalWebhooks::start(
            &std::env::temp_dir().join("krust-quickstart").join("webhook-certs"),
        )?),
        None => None,
    };
    website::install_crd(&clientset, local.as_ref().map(|l| (&l.endpoint, l.ca.as_bytes()))).await?;
    match &local {
        Some(_) => step(
            "installed the CRD websites.example.krust.dev (Established; v1 stored, v2 converted by the webhook)",
        ),
        None => step(
            "installed the CRD websites.example.krust.dev (Established; v1 only: no webhooks against a given cluster)",
        ),
    }

    let mut manager = Manager::builder(config.clone())
        .metrics_addr("127.0.0.1:0")
        .graceful_shutdown_timeout(Duration::from_secs(10));
    let mut registration = None;
    if let Some(local) = local {
        if let WebhookEndpoint::Url(url) = &local.endpoint {
            let paths: Vec<&str> = local.specs.iter().map(|s| s.path.as_str()).chain(["/convert"]).collect();
            step(format!("webhook server at {url} ({})", paths.join(", ")));
        }
        manager = manager.webhook_server(local.server);
        registration = Some((local.specs, local.endpoint, local.ca));
    }
    let manager = manager.build()?;
    website::controller().register(&manager)?;
    let running = tokio::spawn(manager.clone().run());
    while !manager.is_ready() {
        if running.is_finished() {
            anyhow::bail!("the operator stopped before it was ready");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let addr = manager.local_addr().map(|a| a.to_string()).unwrap_or_default();
    step(format!("operator running (metrics: http://{addr}/metrics, probes: /healthz /readyz)"));
    let webhooks_on = registration.is_some();
    if let Some((specs, endpoint, ca)) = &registration {
        website::register_webhooks(&clientset, specs, endpoint, ca).await?;
        step("registered the Mutating- and ValidatingWebhookConfiguration website-webhooks");
    }

    let sites = clientset.typed::<website::Website>(Some("default"));
    let sample = website::sample("hello");
    sites.apply(&sample, &PatchOptions::apply("quickstart").force()).await?;
    step("created Website default/hello (nginx:1.27, 2 replicas)");

    let deployments = clientset.apps_v1().deployments("default");
    let services = clientset.core_v1().services("default");
    let config_maps = clientset.core_v1().config_maps("default");
    let deployment =
        wait(&deployments, "hello", "the Deployment", |d: Option<&Deployment>| d.is_some()).await?;
    let owner = deployment
        .metadata
        .owner_references
        .as_ref()
        .and_then(|o| o.first())
        .map(|o| format!("{} {}", o.kind, o.name));
    step(format!(
        "operator created Deployment default/hello: {} replicas of {}, owned by {}",
        deployment.spec.replicas.unwrap_or_default(),
        deployment
            .spec
            .template
            .spec
            .as_ref()
            .and_then(|p| p.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default(),
        owner.unwrap_or_default()
    ));
    let service = wait(&services, "hello", "the Service", |s: Option<&Service>| s.is_some()).await?;
    step("operator created Service default/hello (port 80)");
    wait(&config_maps, "hello-content", "the ConfigMap", |c: Option<&ConfigMap>| c.is_some()).await?;
    step("operator created ConfigMap default/hello-content (the page)");
    let site = wait(&sites, "hello", "the Website's status", |s: Option<&website::Website>| {
        s.and_then(|s| s.status.as_ref())
            .is_some_and(|st| st.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    })
    .await?;
    let ready = site.status.unwrap_or_default().conditions.into_iter().find(|c| c.type_ == "Ready");
    if let Some(c) = ready {
        step(format!("status: Ready={} ({}: {})", c.status, c.reason, c.message));
    }
    let site = sites.get("hello", &Default::default()).await?;
    step(format!("finalizer on the Website: {}", site.metadata.finalizers.unwrap_or_default().join(", ")));

    if webhooks_on {
        webhook_tour(&clientset, &kubeconfig).await?;
    }

    // Someone else breaks things: the operator repairs them.
    deployments
        .patch("hello", PatchType::Merge, &serde_json::json!({"spec": {"replicas": 5}}), &Default::default())
        .await?;
    println!("  … someone scales Deployment hello to 5 replicas by hand");
    wait(&deployments, "hello", "the operator to restore 2 replicas", |d: Option<&Deployment>| {
        d.and_then(|d| d.spec.replicas) == Some(2)
    })
    .await?;
    step("operator restored the Deployment to 2 replicas");
    services.delete("hello", &DeleteOptions::default()).await?;
    println!("  … someone deletes Service hello");
    let old_uid = service.metadata.uid.clone();
    wait(&services, "hello", "the operator to recreate the Service", |s: Option<&Service>| {
        s.is_some_and(|s| s.metadata.uid != old_uid)
    })
    .await?;
    step("operator recreated Service hello");

    // The events it recorded.
    let events = clientset.events_v1().events("default");
    let deadline = Instant::now() + WAIT;
    let listed = loop {
        let listed = events.list(&Default::default()).await?.items;
        if listed.iter().filter(|e| e.reason.as_deref() == Some("Created")).count() >= 3
            || Instant::now() > deadline
        {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for e in listed.iter().filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("hello")) {
        step(format!(
            "event: {} {} — {}",
            e.type_.as_deref().unwrap_or(""),
            e.reason.as_deref().unwrap_or(""),
            e.note.as_deref().unwrap_or("")
        ));
    }
    println!("The sample Website reconciled in {:.1} s.", started.elapsed().as_secs_f64());

    if once {
        manager.shutdown_token().cancel();
        running.await??;
        println!("--once: operator stopped cleanly.");
        return Ok(());
    }
    println!("The operator keeps running; try kubectl (the line above). Ctrl-C to stop.");
    let token = manager.shutdown_token();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        token.cancel();
    });
    running.await??;
    println!("operator stopped.");
    Ok(())
}
