//! A short chaos run (issue 16's test-sized version; the bench will run the long one): an
//! informer follows ConfigMaps while a writer creates, updates and deletes them and
//! krust-apiserver injects a seeded fault schedule — restarts, cut watches, compaction, bursts
//! of 429/500/503 with Retry-After, latency spikes, stalled watches. Once the faults stop, the
//! cache must equal the server (same keys, same resourceVersions).

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::core::v1::ConfigMap;
use krust_apiserver::{FaultKind, FaultSchedule};
use krust_client::{
    Clientset, CreateOptions, DeleteOptions, GetOptions, ListOptions, PatchOptions, PatchType, RestClient,
};
use krust_runtime::cache::SharedInformerFactory;
use kube_core::GroupVersion;
use serde_json::json;

/// A seed whose schedule, at 120 faults per minute per kind, injects every kind in its first
/// 60 ticks (checked by `the_fault_schedule_is_reproducible`).
const SEED: u64 = 7;

#[test]
fn the_fault_schedule_is_reproducible() {
    let schedule = FaultSchedule::uniform(SEED, 120.0);
    let plan = schedule.plan(60);
    assert_eq!(plan, FaultSchedule::uniform(SEED, 120.0).plan(60), "one seed, one schedule");
    assert_ne!(plan, FaultSchedule::uniform(SEED + 1, 120.0).plan(60), "another seed, another schedule");
    for kind in FaultKind::ALL {
        assert!(plan.iter().any(|(_, k, _)| *k == kind), "{kind:?} missing from the first 60 ticks");
    }
    assert!(FaultSchedule::uniform(SEED, 0.0).plan(600).is_empty(), "rate 0: no fault");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_informer_converges_to_the_server_through_every_fault() {
    let server = krust_apiserver::ApiServer::builder().start().await.unwrap();
    let config = server.kubeconfig().config;
    let clientset = Clientset::new(&config).unwrap();
    let rest = RestClient::new(&config.clone().with_group_version(GroupVersion::gv("", "v1"))).unwrap();
    let factory = SharedInformerFactory::new(&rest);
    let informer = factory.informer::<ConfigMap>();
    factory.start();
    assert!(factory.wait_for_cache_sync(Duration::from_secs(10)).await);

    let faults = server.run_faults(FaultSchedule::uniform(SEED, 120.0));
    // The writer: creates, updates and deletes for as long as the faults run; failures (the
    // injected errors) are ignored, as a real writer would retry later.
    let config_maps = clientset.core_v1().config_maps("default");
    let writer = {
        let config_maps = config_maps.clone();
        tokio::spawn(async move {
            for i in 0u32.. {
                let name = format!("cm-{}", i % 40);
                let _ = match i % 3 {
                    0 => {
                        let cm: ConfigMap = serde_json::from_value(
                            json!({"metadata": {"name": name}, "data": {"i": i.to_string()}}),
                        )
                        .unwrap();
                        config_maps.create(&cm, &CreateOptions::default()).await.map(|_| ())
                    }
                    1 => config_maps
                        .patch(
                            &name,
                            PatchType::Merge,
                            &json!({"data": {"i": i.to_string()}}),
                            &PatchOptions::default(),
                        )
                        .await
                        .map(|_| ()),
                    _ => config_maps.delete(&name, &DeleteOptions::default()).await.map(|_| ()),
                };
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // Until every kind of fault has been injected at least once.
    for _ in 0..300 {
        if faults.counts().iter().all(|(_, n)| *n > 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts = faults.counts();
    faults.stop();
    writer.abort();
    for (kind, n) in &counts {
        assert!(*n > 0, "{kind:?} was never injected: {counts:?}");
    }

    // After the faults: the cache converges to the server's state.
    let mut last = (BTreeMap::new(), BTreeMap::new());
    for _ in 0..600 {
        let Ok(list) = config_maps.list(&ListOptions::default()).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let on_server: BTreeMap<String, String> = list
            .items
            .iter()
            .map(|c| {
                (
                    c.metadata.name.clone().unwrap_or_default(),
                    c.metadata.resource_version.clone().unwrap_or_default(),
                )
            })
            .collect();
        let cached: BTreeMap<String, String> = informer
            .indexer()
            .list()
            .iter()
            .filter(|o| o.namespace() == "default")
            .map(|o| (o.name().to_string(), o.resource_version().to_string()))
            .collect();
        if on_server == cached {
            let _ = config_maps.get("cm-0", &GetOptions::default()).await;
            return;
        }
        last = (on_server, cached);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the cache never converged after the faults ({counts:?}):\nserver {:?}\ncache  {:?}",
        last.0, last.1
    );
}
