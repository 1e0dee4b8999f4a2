//! A pod informer with a custom index by node name, as client-go's informer examples: it
//! prints add/update/delete events as they happen while the example itself changes pods, then
//! lists the pods of one node through the index.
//!
//! `cargo run -p krust-examples --example informer [-- --kubeconfig PATH]`

#[path = "support.rs"]
mod support;

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::Pod;
use krust::client::{Clientset, CreateOptions, DeleteOptions, PatchOptions, PatchType};
use krust_runtime::cache::{Cached, DeltaObject, EventHandler, IndexFunc, SharedInformerFactory};

struct Printer;

impl EventHandler<Pod> for Printer {
    fn on_add(&self, pod: &Arc<Cached<Pod>>, initial: bool) {
        let when = if initial { " (initial list)" } else { "" };
        println!("added: {}/{}{when}", pod.namespace(), pod.name());
    }
    fn on_update(&self, old: &Arc<Cached<Pod>>, new: &Arc<Cached<Pod>>) {
        println!(
            "updated: {}/{} (resourceVersion {} -> {})",
            new.namespace(),
            new.name(),
            old.resource_version(),
            new.resource_version()
        );
    }
    fn on_delete(&self, pod: &DeltaObject<Cached<Pod>>) {
        match pod {
            DeltaObject::Object(p) => println!("deleted: {}/{}", p.namespace(), p.name()),
            DeltaObject::DeletedFinalStateUnknown { key, .. } => {
                println!("deleted (missed while away): {key}")
            }
        }
    }
}

fn pod(name: &str, node: &str) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx:1.25"}]}
    }))?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (config, server) = support::connect(|config| async move {
        Clientset::new(&config)?
            .core_v1()
            .pods("default")
            .create(&pod("seed", "node-a")?, &CreateOptions::default())
            .await?;
        Ok(())
    })
    .await?;
    let clientset = Clientset::new(&config)?;
    let factory = SharedInformerFactory::new(clientset.rest()).with_namespace("default");
    let informer = factory.informer::<Pod>();
    // An index by node name, added before the informer starts.
    let by_node: IndexFunc<Cached<Pod>> = Arc::new(|p: &Cached<Pod>| {
        p.decode().ok().and_then(|p| p.spec.and_then(|s| s.node_name)).into_iter().collect()
    });
    informer.indexer().add_indexers(vec![("node".to_string(), by_node)])?;
    informer.add_event_handler(Printer);
    factory.start();
    if !factory.wait_for_cache_sync(Duration::from_secs(30)).await {
        anyhow::bail!("the pod cache did not sync");
    }
    println!("cache synced: {} pods", informer.indexer().len());

    let pods = clientset.core_v1().pods("default");
    pods.create(&pod("web-1", "node-a")?, &CreateOptions::default()).await?;
    pods.create(&pod("web-2", "node-b")?, &CreateOptions::default()).await?;
    pods.patch(
        "web-1",
        PatchType::Merge,
        &serde_json::json!({"metadata": {"labels": {"tier": "web"}}}),
        &PatchOptions::default(),
    )
    .await?;
    pods.delete("web-2", &DeleteOptions::default()).await?;
    // Let the events arrive.
    for _ in 0..100 {
        if informer.indexer().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut on_a: Vec<String> = informer
        .lister()
        .by_index("node", "node-a")?
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    on_a.sort();
    println!("pods on node-a: {}", on_a.join(", "));
    factory.shutdown();
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}
