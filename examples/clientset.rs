//! The typed clientset, as client-go's `kubernetes.Clientset`: count the pods of the cluster,
//! then get pod `test` in `default` through `core_v1().pods("default")`.
//!
//! `cargo run -p krust-examples --example clientset [-- --kubeconfig PATH]`

#[path = "support.rs"]
mod support;

use k8s_openapi::api::core::v1::Pod;
use krust::client::{Clientset, CreateOptions, GetOptions, ListOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (config, server) = support::connect(|config| async move {
        let pod: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "test"},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.12"}]}}))?;
        Clientset::new(&config)?.core_v1().pods("default").create(&pod, &CreateOptions::default()).await?;
        Ok(())
    })
    .await?;
    let clientset = Clientset::new(&config)?;

    // client-go: clientset.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
    let pods = clientset.core_v1().pods("").list(&ListOptions::default()).await?;
    println!("There are {} pods in the cluster", pods.items.len());

    // client-go: clientset.CoreV1().Pods("default").Get(ctx, "test", metav1.GetOptions{})
    match clientset.core_v1().pods("default").get("test", &GetOptions::default()).await {
        Ok(pod) => {
            println!("Found pod test in namespace default (uid {})", pod.metadata.uid.unwrap_or_default())
        }
        Err(e) if e.is_not_found() => println!("Pod test in namespace default not found"),
        Err(e) => return Err(e.into()),
    }
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}
