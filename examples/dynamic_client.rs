//! The dynamic client, as client-go's `dynamic` example: create, update, list and delete the
//! `demo-deployment` Deployment (nginx:1.12, 2 replicas, port 80) by GVR apps/v1 deployments,
//! without generated types.
//!
//! `cargo run -p krust-examples --example dynamic_client [-- --kubeconfig PATH]`

#[path = "support.rs"]
mod support;

use krust::{
    client::{CreateOptions, DeleteOptions, DynamicClient, GetOptions, ListOptions, UpdateOptions},
    kube_core::{DynamicObject, GroupVersionResource},
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (config, server) = support::connect(|_| async { Ok(()) }).await?;
    let client = DynamicClient::new(&config)?;
    let deployments =
        client.resource(&GroupVersionResource::gvr("apps", "v1", "deployments")).namespace("default");

    let deployment: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "demo-deployment"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {
                "metadata": {"labels": {"app": "demo"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.12",
                    "ports": [{"name": "http", "protocol": "TCP", "containerPort": 80}]}]}
            }
        }
    }))?;
    println!("Creating deployment...");
    let created = deployments.create(&deployment, &CreateOptions::default()).await?;
    println!("Created deployment {:?}.", created.metadata.name.unwrap_or_default());

    println!("Updating deployment...");
    let mut current = deployments.get("demo-deployment", &GetOptions::default()).await?;
    current.data["spec"]["replicas"] = serde_json::json!(1);
    current.data["spec"]["template"]["spec"]["containers"][0]["image"] = serde_json::json!("nginx:1.13");
    deployments.update(&current, &UpdateOptions::default()).await?;
    println!("Updated deployment...");

    println!("Listing deployments in namespace default:");
    for d in deployments.list(&ListOptions::default()).await?.items {
        let replicas = d.data["spec"]["replicas"].as_i64().unwrap_or_default();
        println!(" * {} ({replicas} replicas)", d.metadata.name.unwrap_or_default());
    }

    println!("Deleting deployment...");
    deployments.delete("demo-deployment", &DeleteOptions::default()).await?;
    println!("Deleted deployment.");
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}
