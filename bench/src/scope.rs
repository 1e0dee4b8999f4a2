//! `scope`: what a cache scoped by a label selector (the Manager's `cache_by_object`, the
//! factory's `with_list_options_for`) saves. krust-apiserver (its own process) holds N Secrets
//! of ~1 KiB, 1 in 100 labelled `scope=in`; an informer of Secrets syncs in a fresh process,
//! once over every Secret and once with the selector, and reports its RSS before the informer
//! started (after an informer of the empty ConfigMaps has paid the fixed costs) and once
//! synced. The cache's memory is the difference. A third informer holds every Secret's
//! metadata only (`owns_metadata`, `watches_metadata`). krust alone (kube-rs'
//! watcher takes the same selectors through `watcher::Config`; its memory is the informers
//! suite's subject).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::json;

use crate::{
    apiserver::{http_client, request},
    stats::{ServerProcess, field, median, option, rss_kib, run_child},
};

/// One in this many Secrets is in the scope.
const ONE_IN: usize = 100;

/// Creates `n` Secrets (`secret-<i>`, ~1 KiB of data), every `ONE_IN`-th labelled `scope=in`.
async fn load_secrets(url: &str, n: usize) -> anyhow::Result<()> {
    let client = http_client();
    let payload = "k".repeat(700);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, next, url, payload) = (client.clone(), next.clone(), url.to_string(), payload.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                let scope = if i.is_multiple_of(ONE_IN) { "in" } else { "out" };
                let secret = json!({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": format!("secret-{i}"), "labels": {"scope": scope, "app": "bench"}},
                    "type": "Opaque", "stringData": {"payload": payload}, "data": {"key": "dmFsdWUtdmFsdWUtdmFsdWU="}});
                let (status, body) = request(
                    &client,
                    "POST",
                    &format!("{url}/api/v1/namespaces/default/secrets"),
                    Some(serde_json::to_vec(&secret)?),
                    "application/json",
                )
                .await?;
                anyhow::ensure!(status == 201, "create answered {status}: {}", String::from_utf8_lossy(&body));
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// `scope [--secrets N] [--runs R]`.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let n: usize = option(args, "--secrets", 100_000)?;
    let runs: usize = option(args, "--runs", 3)?;
    let server = ServerProcess::start()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let loaded = Instant::now();
    runtime.block_on(load_secrets(&server.url, n))?;
    println!("loaded {n} Secrets ({} in the scope) in {:.1} s", n / ONE_IN, loaded.elapsed().as_secs_f64());
    let modes = ["all", "scoped", "metadata"];
    let mut samples: [Vec<(f64, f64, f64)>; 3] = Default::default();
    for run in 0..runs {
        for k in 0..modes.len() {
            let which = (run + k) % modes.len();
            let text = run_child(&["scope-client", &server.url, modes[which], &n.to_string()])?;
            samples[which].push((
                field(&text, "objects")?,
                field(&text, "cache_kib")?,
                field(&text, "rss_kib")?,
            ));
        }
    }
    let [all, scoped, metadata] = samples;
    let m =
        |v: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
    println!("\n{:<28} {:>10} {:>14} {:>14}", "informer of Secrets", "objects", "cache MiB", "RSS MiB");
    for (name, v) in
        [("every Secret", &all), ("scoped (scope=in)", &scoped), ("every Secret, metadata only", &metadata)]
    {
        println!(
            "{name:<28} {:>10.0} {:>14.1} {:>14.1}",
            m(v, |s| s.0),
            m(v, |s| s.1) / 1024.0,
            m(v, |s| s.2) / 1024.0
        );
    }
    let ratio = m(&scoped, |s| s.1) / m(&all, |s| s.1).max(1.0);
    let rss_ratio = m(&scoped, |s| s.2) / m(&all, |s| s.2).max(1.0);
    println!(
        "\nscoped cache / unscoped cache: {:.3} (goal <= 0.05: {}); whole process RSS: {rss_ratio:.3}",
        ratio,
        if ratio <= 0.05 { "met" } else { "NOT met" }
    );
    println!("result scope_unscoped_cache_mib {:.1}", m(&all, |s| s.1) / 1024.0);
    println!("result scope_scoped_cache_mib {:.2}", m(&scoped, |s| s.1) / 1024.0);
    let metadata_ratio = m(&metadata, |s| s.1) / m(&all, |s| s.1).max(1.0);
    println!("metadata-only cache / full cache (owns_metadata vs owns): {metadata_ratio:.3}");
    println!("result scope_metadata_cache_mib {:.1}", m(&metadata, |s| s.1) / 1024.0);
    println!("result scope_metadata_cache_ratio {metadata_ratio:.4}");
    println!("result scope_cache_ratio {ratio:.4}");
    println!("result scope_rss_ratio {rss_ratio:.4}");
    Ok(())
}

/// The child: one informer of Secrets (`all` or `scoped`), synced; prints what it holds and its
/// memory.
pub fn client(args: &[String]) -> anyhow::Result<()> {
    let [url, mode, n] = args else { anyhow::bail!("scope-client <url> <all|scoped|metadata> <secrets>") };
    let n: usize = n.parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        use k8s_openapi::api::core::v1::Secret;
        use krust_client::{ListOptions, RestClient};
        use krust_runtime::cache::SharedInformerFactory;
        let config =
            krust_client::Config::new(url.parse()?).with_group_version(kube_core::GroupVersion::gv("", "v1"));
        let rest = RestClient::new(&config)?;
        let mut factory = SharedInformerFactory::new(&rest).with_strip_managed_fields(true);
        let expected = match mode.as_str() {
            "all" | "metadata" | "owned-full" | "owned-metadata" => n,
            "scoped" => {
                let selector = ListOptions { label_selector: Some("scope=in".into()), ..Default::default() };
                factory = factory.with_list_options_for_type::<Secret>(selector);
                n.div_ceil(ONE_IN)
            }
            other => anyhow::bail!("unknown mode {other}"),
        };
        // The fixed cost of running an informer (runtime threads, connection pool, buffers)
        // is paid before the baseline: an informer of the (empty) ConfigMaps first.
        // (Of the empty Secrets in the owned modes, whose objects include ConfigMaps.)
        let warmed = if mode.starts_with("owned-") {
            let warm = factory.informer::<Secret>();
            factory.start();
            warm.wait_for_cache_sync(Duration::from_secs(60)).await
        } else {
            let warm = factory.informer::<k8s_openapi::api::core::v1::ConfigMap>();
            factory.start();
            warm.wait_for_cache_sync(Duration::from_secs(60)).await
        };
        anyhow::ensure!(warmed, "no sync");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = rss_kib(std::process::id());
        let objects = if let Some(owned) = mode.strip_prefix("owned-") {
            // The three kinds the example operator owns, full or metadata only.
            let mut count = 0;
            for (group, resource) in [("apps", "deployments"), ("", "services"), ("", "configmaps")] {
                let gvr = kube_core::GroupVersionResource::gvr(group, "v1", resource);
                count += if owned == "metadata" {
                    let informer = factory.metadata(&gvr);
                    factory.start();
                    anyhow::ensure!(informer.wait_for_cache_sync(Duration::from_secs(600)).await, "no sync");
                    informer.indexer().len()
                } else {
                    match resource {
                        "deployments" => {
                            let i = factory.informer::<k8s_openapi::api::apps::v1::Deployment>();
                            factory.start();
                            anyhow::ensure!(i.wait_for_cache_sync(Duration::from_secs(600)).await, "no sync");
                            i.indexer().len()
                        }
                        "services" => {
                            let i = factory.informer::<k8s_openapi::api::core::v1::Service>();
                            factory.start();
                            anyhow::ensure!(i.wait_for_cache_sync(Duration::from_secs(600)).await, "no sync");
                            i.indexer().len()
                        }
                        _ => {
                            let i = factory.informer::<k8s_openapi::api::core::v1::ConfigMap>();
                            factory.start();
                            anyhow::ensure!(i.wait_for_cache_sync(Duration::from_secs(600)).await, "no sync");
                            i.indexer().len()
                        }
                    }
                };
            }
            count
        } else if mode == "metadata" {
            let gvr = kube_core::GroupVersionResource::gvr("", "v1", "secrets");
            let informer = factory.metadata(&gvr);
            factory.start();
            anyhow::ensure!(informer.wait_for_cache_sync(Duration::from_secs(600)).await, "no sync");
            informer.indexer().len()
        } else {
            let informer = factory.informer::<Secret>();
            factory.start();
            anyhow::ensure!(informer.wait_for_cache_sync(Duration::from_secs(600)).await, "no sync");
            informer.indexer().len()
        };
        anyhow::ensure!(objects == expected, "{mode}: {objects} cached, {expected} expected");
        // Let the list pages' buffers go back before measuring.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rss_kib(std::process::id());
        println!("objects {objects} cache_kib {} rss_kib {after}", after.saturating_sub(before));
        factory.shutdown();
        Ok(())
    })
}

/// Creates `n` Websites and the objects each owns (a Deployment, a Service and a ConfigMap, as
/// the example operator's `desired_*` make them, owner references included: the owners exist,
/// so the garbage collector keeps them).
async fn load_owned(url: &str, n: usize) -> anyhow::Result<()> {
    use crate::chaos::website::{
        Website, WebsiteSpec, crd, desired_config_map, desired_deployment, desired_service,
    };
    let client = http_client();
    let (status, body) = request(
        &client,
        "POST",
        &format!("{url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"),
        Some(serde_json::to_vec(&crd()?)?),
        "application/json",
    )
    .await?;
    anyhow::ensure!(status == 201, "the CRD: {status}: {}", String::from_utf8_lossy(&body));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, next, url) = (client.clone(), next.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                let mut site = Website::new(
                    &format!("site-{i}"),
                    WebsiteSpec {
                        image: "nginx:1.27".into(),
                        replicas: 2,
                        content: format!("<h1>site {i}</h1>"),
                    },
                );
                site.metadata.namespace = Some("default".into());
                let (status, body) = request(
                    &client,
                    "POST",
                    &format!("{url}/apis/example.krust.dev/v1/namespaces/default/websites"),
                    Some(serde_json::to_vec(&site)?),
                    "application/json",
                )
                .await?;
                anyhow::ensure!(status == 201, "a Website: {status}: {}", String::from_utf8_lossy(&body));
                let site: Website = serde_json::from_slice(&body)?;
                let objects = [
                    ("apis/apps/v1", "deployments", serde_json::to_value(desired_deployment(&site)?)?),
                    ("api/v1", "services", serde_json::to_value(desired_service(&site)?)?),
                    ("api/v1", "configmaps", serde_json::to_value(desired_config_map(&site)?)?),
                ];
                for (prefix, plural, object) in objects {
                    let (status, body) = request(
                        &client,
                        "POST",
                        &format!("{url}/{prefix}/namespaces/default/{plural}"),
                        Some(serde_json::to_vec(&object)?),
                        "application/json",
                    )
                    .await?;
                    anyhow::ensure!(
                        status == 201,
                        "create answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// `scope owned [--websites N] [--runs R]`: the example operator's caches of what its Websites
/// own, through full informers (`owns`) and through metadata-only ones (`owns_metadata`, what
/// it uses).
pub fn owned(args: &[String]) -> anyhow::Result<()> {
    let n: usize = option(args, "--websites", 10_000)?;
    let runs: usize = option(args, "--runs", 3)?;
    let server = ServerProcess::start()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let loaded = Instant::now();
    runtime.block_on(load_owned(&server.url, n))?;
    println!(
        "loaded the objects of {n} Websites ({} objects) in {:.1} s",
        3 * n,
        loaded.elapsed().as_secs_f64()
    );
    let modes = ["owned-full", "owned-metadata"];
    let mut samples: [Vec<(f64, f64, f64)>; 2] = Default::default();
    for run in 0..runs {
        for k in 0..modes.len() {
            let which = (run + k) % modes.len();
            let text = run_child(&["scope-client", &server.url, modes[which], &(3 * n).to_string()])?;
            samples[which].push((
                field(&text, "objects")?,
                field(&text, "cache_kib")?,
                field(&text, "rss_kib")?,
            ));
        }
    }
    let [full, metadata] = samples;
    let m =
        |v: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
    println!(
        "\n{:<44} {:>10} {:>14} {:>14}",
        "the Website operator's owned objects", "objects", "cache MiB", "RSS MiB"
    );
    for (name, v) in [
        ("owns (full Deployments, Services, ConfigMaps)", &full),
        ("owns_metadata (what it uses)", &metadata),
    ] {
        println!(
            "{name:<44} {:>10.0} {:>14.1} {:>14.1}",
            m(v, |s| s.0),
            m(v, |s| s.1) / 1024.0,
            m(v, |s| s.2) / 1024.0
        );
    }
    let ratio = m(&metadata, |s| s.1) / m(&full, |s| s.1).max(1.0);
    println!("\nmetadata-only / full owned caches: {ratio:.3}");
    println!("result owned_full_cache_mib {:.1}", m(&full, |s| s.1) / 1024.0);
    println!("result owned_metadata_cache_mib {:.1}", m(&metadata, |s| s.1) / 1024.0);
    println!("result owned_metadata_cache_ratio {ratio:.4}");
    Ok(())
}
