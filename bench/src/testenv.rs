//! `testenv`: what a reconciler unit test with `krust::testing` costs. Each run starts an
//! in-process krust-apiserver, builds the test context over it (`TestEnv::over`: the one call a
//! test makes once the server is up), seeds a ConfigMap (its informer started and synced, the
//! object in the cache) and calls a reconciler that reads it from the lister and applies a copy.
//! kube-rs has no counterpart (no in-process API server), so nothing is compared.

use std::time::Instant;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::ConfigMap;
use krust::{Action, Context, Reconciler, Request, client::PatchOptions, testing::TestEnv};
use krust_apiserver::ApiServer;

use crate::stats::{median, option, percentile};

struct Copier;

#[async_trait]
impl Reconciler for Copier {
    type Error = krust::Error;

    async fn reconcile(&self, req: Request, ctx: &Context) -> Result<Action, krust::Error> {
        let Some(source) = ctx.lister::<ConfigMap>().namespace(&req.namespace).get(&req.name)? else {
            return Ok(Action::done());
        };
        let mut copy = ConfigMap::default();
        copy.metadata.name = Some(format!("{}-copy", req.name));
        copy.data = source.data.clone();
        ctx.clientset()
            .core_v1()
            .config_maps(&req.namespace)
            .apply(&copy, &PatchOptions::apply("bench").force())
            .await?;
        Ok(Action::done())
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let runs: usize = option(args, "--runs", 30)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (mut server, mut context, mut seed, mut reconcile) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    rt.block_on(async {
        for _ in 0..runs {
            let t = Instant::now();
            let api = ApiServer::builder().start().await?;
            server.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let env = TestEnv::over(api)?;
            context.push(t.elapsed().as_secs_f64() * 1e3);
            let mut cm = ConfigMap::default();
            cm.metadata.name = Some("settings".into());
            cm.metadata.namespace = Some("default".into());
            cm.data = Some([("a".to_string(), "1".to_string())].into());
            let t = Instant::now();
            env.create(&cm).await?;
            seed.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            env.reconcile(&Copier, Request::new("default", "settings")).await?;
            reconcile.push(t.elapsed().as_secs_f64() * 1e3);
            env.shutdown().await;
        }
        anyhow::Ok(())
    })?;
    let report = |name: &str, samples: &mut Vec<f64>| {
        samples.sort_by(f64::total_cmp);
        println!("{name:<58} p50 {:>8.3} ms   p99 {:>8.3} ms", median(samples), percentile(samples, 0.99));
    };
    println!(
        "testenv: krust::testing, {runs} runs (kube-rs has no in-process API server: nothing compared)\n"
    );
    report("krust-apiserver start (in process)", &mut server);
    report("TestEnv::over(server): the test's context", &mut context);
    report("env.create(ConfigMap): seeded, informer synced, in cache", &mut seed);
    report("env.reconcile(..): lister read + server-side apply", &mut reconcile);
    let total: Vec<f64> = (0..runs).map(|i| context[i] + seed[i] + reconcile[i]).collect();
    println!();
    println!("result testenv_server_start_ms {:.3}", median(&server));
    println!("result testenv_context_ms {:.3}", median(&context));
    println!("result testenv_seed_ms {:.3}", median(&seed));
    println!("result testenv_reconcile_ms {:.3}", median(&reconcile));
    println!("result testenv_after_server_ms {:.3}", median(&total));
    Ok(())
}
