//! krust-bench: side-by-side benchmarks of krust and kube-rs.
//!
//! `cargo run --release -p krust-bench -- <suite> [options]`. Each suite prints a table, then
//! machine-readable lines `result <key> <value>`. Suites: `decode`, `apiserver`, `informers`, `workqueue`, `reconcile`, `leader`, `testenv`,
//! `chaos`, `scope`.

mod apiserver;
mod bytesource;
mod chaos;
mod decode;
mod fixtures;
mod informers;
mod leader;
mod reconcile;
mod scope;
mod stats;
mod testenv;
mod workqueue;

fn usage() -> ! {
    eprintln!(
        "usage: krust-bench <suite> [options]\n\nsuites:\n  decode [--events N] [--runs R]   watch-event decoding: \
         krust vs the serde_json ceiling, and krust vs kube-rs over loopback HTTP\n  \
         apiserver [--pods N] [--runs R] [--watchers W] [--writes N]   krust-apiserver throughput and memory\n  \
         informers [1m] [--pods N] [--runs R]   krust informer vs kube-rs reflector on a byte-pushing source: \
         sync, RSS (typed reads), watch events, relist; 1m: a million Pods\n  \
         workqueue [--items N] [--deep N] [--timers N] [--runs R]   work queue cycles and timers vs kube-rs' scheduler\n  \
         reconcile [--objects N] [--rate R] [--seconds S] [--runs R]   write-to-reconcile latency, krust vs kube-rs Controller\n  \
         leader [--rounds N]   leader election failover after kills and graceful stops\n  \
         testenv [--runs R]   krust::testing: server start, test context, seeding, one reconcile\n  \
         chaos [--seconds S] [--seed N] [--faults-per-minute R] [--websites N] [--replace-leader-every S]   \
         the example operator in 3 replicas under a random fault schedule: convergence, overlaps, panics, RSS\n  \
         scope [--secrets N] [--runs R]   a cache scoped by a label selector vs every object: memory"
    );
    std::process::exit(2)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("decode") => decode::run(&args[1..]),
        Some("apiserver") => apiserver::run(&args[1..]),
        Some("informers") => informers::run(&args[1..]),
        Some("workqueue") => workqueue::run(&args[1..]),
        Some("reconcile") => reconcile::run(&args[1..]),
        Some("leader") => leader::run(&args[1..]),
        Some("testenv") => testenv::run(&args[1..]),
        Some("chaos") => chaos::run(&args[1..]),
        Some("scope") if args.get(1).map(String::as_str) == Some("owned") => scope::owned(&args[2..]),
        Some("scope") => scope::run(&args[1..]),
        // Internal: one informer of Secrets, scoped or not, in its own process.
        Some("scope-client") => scope::client(&args[1..]),
        // Internal: one leader election replica in its own process.
        Some("leader-replica") => leader::replica(&args[1..]),
        // Internal: one framework's controller in its own process.
        Some("reconcile-client") => reconcile::client(&args[1..]),
        // Internal: one framework's informer in its own process.
        Some("informers-client") => informers::client(&args[1..]),
        // Internal: one framework's informer against krust-apiserver.
        Some("informers-apiserver-client") => informers::apiserver_client(&args[1..]),
        // Internal: the byte-pushing source of the informers suite.
        Some("bytes-serve") => bytesource::serve(&args[1..]),
        // Internal: the server process of the apiserver suite.
        Some("apiserver-serve") => apiserver::serve(&args[1..]),
        // Internal: one watch client in its own process (so its RSS is its own).
        Some("decode-client") => decode::client(&args[1..]),
        // For profiling: serve the decode suite's watch stream until killed.
        Some("decode-serve") => decode::serve_forever(&args[1..]),
        // For profiling: the informer's list decoder alone.
        Some("scan-lists") => decode::scan_lists(&args[1..]),
        // For profiling: the informer's decode-and-store path alone.
        Some("decode-cached") => decode::cached_only(&args[1..]),
        _ => usage(),
    }
}
