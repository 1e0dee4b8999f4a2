//! The RestClient, as client-go's `rest` package is used: build requests fluently, decode
//! responses into k8s-openapi types, tell API errors apart, and watch.
//!
//! It talks to the cluster of your kubeconfig (`KUBECONFIG`, `~/.kube/config`, or in-cluster);
//! with none (or with `--embedded`) it starts an embedded krust-apiserver. It creates a
//! ConfigMap, reads it, lists ConfigMaps, watches for a moment and deletes it.
//!
//! `cargo run -p krust-examples --example rest_client [-- --embedded] [--namespace NS]`

use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::{api::core::v1::ConfigMap, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use krust::prelude::*;
use krust::{k8s_openapi::List, kube_core::WatchEvent};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let args: Vec<String> = std::env::args().collect();
    // client-go: config, _ := clientcmd.BuildConfigFromFlags(...); config.GroupVersion = &v1; config.APIPath = "/api"
    let mut embedded = None;
    let config = match Config::infer().await {
        Ok(config) if !args.iter().any(|a| a == "--embedded") => config,
        result => {
            if let Err(e) = result {
                println!("{e}\nstarting an embedded krust-apiserver instead");
            }
            let server = krust_apiserver::ApiServer::builder().start().await?;
            let config = server.kubeconfig().config;
            embedded = Some(server);
            config
        }
    };
    let config = config.with_group_version(GroupVersion::gv("", "v1"));
    let namespace = match args.iter().position(|a| a == "--namespace") {
        Some(i) => args.get(i + 1).cloned().unwrap_or_default(),
        None => config.default_namespace.clone(),
    };
    println!("API server {} (namespace {namespace})", config.server);
    let client = RestClient::new(&config)?;

    // Create (tolerating AlreadyExists from an earlier run).
    let cm = ConfigMap {
        metadata: ObjectMeta { name: Some("krust-example".into()), ..Default::default() },
        data: Some([("greeting".to_string(), "hello from krust".to_string())].into()),
        ..Default::default()
    };
    let created = client.post().namespace(&namespace).resource("configmaps").body(&cm).send().await?;
    match created.into::<ConfigMap>() {
        Ok(cm) => println!("created configmap {}", cm.metadata.name.unwrap_or_default()),
        Err(e) if e.is_already_exists() => println!("configmap krust-example already exists"),
        Err(e) => return Err(e.into()),
    }

    // Get, as in client-go's Get().Namespace(ns).Resource("configmaps").Name(n).Do(ctx).Into(&cm).
    let cm: ConfigMap = client
        .get()
        .namespace(&namespace)
        .resource("configmaps")
        .name("krust-example")
        .send()
        .await?
        .into()?;
    println!(
        "got {} at resourceVersion {}",
        cm.metadata.name.unwrap_or_default(),
        cm.metadata.resource_version.clone().unwrap_or_default()
    );

    // List with a limit.
    let list: List<ConfigMap> =
        client.get().namespace(&namespace).resource("configmaps").param("limit", 50).send().await?.into()?;
    println!("{} configmaps in {namespace}", list.items.len());

    // Watch for two seconds from the list's resourceVersion; the server ends the watch.
    let mut events = client
        .get()
        .namespace(&namespace)
        .resource("configmaps")
        .param("resourceVersion", list.metadata.resource_version.unwrap_or_default())
        .param("timeoutSeconds", 2)
        .watch::<ConfigMap>()
        .await?;
    let patch = serde_json::json!({"data": {"greeting": "patched by krust"}});
    client
        .patch(PatchType::Merge)
        .namespace(&namespace)
        .resource("configmaps")
        .name("krust-example")
        .body(&patch)
        .send()
        .await?
        .bytes()?;
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), events.next()).await {
        match event? {
            WatchEvent::Added(cm) | WatchEvent::Modified(cm) => {
                println!("watch: {} changed", cm.metadata.name.unwrap_or_default())
            }
            WatchEvent::Deleted(cm) => println!("watch: {} deleted", cm.metadata.name.unwrap_or_default()),
            WatchEvent::Bookmark(b) => println!("watch: bookmark at {}", b.metadata.resource_version),
            WatchEvent::Error(status) => println!("watch: error {}", status.message),
        }
    }

    // Delete; a second delete is NotFound.
    // The server answers a delete with the object (or a Status, depending on the resource).
    client
        .delete()
        .namespace(&namespace)
        .resource("configmaps")
        .name("krust-example")
        .send()
        .await?
        .bytes()?;
    let again =
        client.delete().namespace(&namespace).resource("configmaps").name("krust-example").send().await?;
    match again.error_for_status() {
        Err(e) if e.is_not_found() => println!("deleted (a second delete is NotFound, as expected)"),
        other => anyhow::bail!("unexpected answer to the second delete: {other:?}"),
    }
    if let Some(server) = embedded {
        server.shutdown().await;
    }
    Ok(())
}
