//! The RestClient, as client-go's `rest` package is used: get pod `test` in namespace
//! `default` with a fluent request, decode it into a k8s-openapi `Pod`, and tell a missing pod
//! apart from other errors.
//!
//! `cargo run -p krust-examples --example rest_client [-- --kubeconfig PATH]` — with no
//! kubeconfig it starts an embedded krust-apiserver holding a `test` pod.

#[path = "support.rs"]
mod support;

use k8s_openapi::api::core::v1::Pod;
use krust::{RestClient, kube_core::GroupVersion};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (config, server) = support::connect(|config| async move {
        let core = RestClient::new(&config.with_group_version(GroupVersion::gv("", "v1")))?;
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "test"},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.12"}]}});
        core.post().namespace("default").resource("pods").body(&pod).send().await?.bytes()?;
        Ok(())
    })
    .await?;
    // client-go: config.GroupVersion = &v1.SchemeGroupVersion; config.APIPath = "/api"; rest.RESTClientFor(config)
    let client = RestClient::new(&config.with_group_version(GroupVersion::gv("", "v1")))?;

    // client-go: client.Get().Namespace("default").Resource("pods").Name("test").Do(ctx).Into(&pod)
    let response = client.get().namespace("default").resource("pods").name("test").send().await?;
    match response.into::<Pod>() {
        Ok(pod) => {
            let phase = pod.status.and_then(|s| s.phase).unwrap_or_else(|| "Unknown".into());
            println!("Found pod test in namespace default (phase {phase})");
        }
        Err(e) if e.is_not_found() => println!("Pod test in namespace default not found"),
        Err(e) => return Err(e.into()),
    }
    let missing = client.get().namespace("default").resource("pods").name("no-such-pod").send().await?;
    match missing.into::<Pod>() {
        Err(e) if e.is_not_found() => println!("Pod no-such-pod in namespace default not found, as expected"),
        other => anyhow::bail!("expected NotFound, got {other:?}"),
    }
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}
