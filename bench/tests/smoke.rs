//! The benchmark binary runs end to end on a tiny workload and prints its result lines, so that
//! the suites cannot rot between the times someone runs them for real.

use std::process::Command;

/// What a suite printed: its stdout and its `result <key> <value>` lines, in order.
struct Run {
    stdout: String,
    results: Vec<(String, f64)>,
}

impl Run {
    /// The value of `key`, failing the test when it is missing.
    fn value(&self, key: &str) -> f64 {
        self.results
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{key} missing in:\n{}", self.stdout))
    }

    /// The keys of the last `n` result lines.
    fn last_keys(&self, n: usize) -> Vec<&str> {
        self.results[self.results.len().saturating_sub(n)..].iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// Runs `krust-bench` with `args`, asserting that it succeeds and that every result line is
/// `result <key> <number>`.
fn suite(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_krust-bench"))
        .args(args)
        .output()
        .expect("the benchmark binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("result "))
        .map(|l| {
            let (k, v) = l.split_once(' ').expect("result <key> <value>");
            (k.to_string(), v.trim().parse::<f64>().unwrap_or_else(|_| panic!("not a number: {l}")))
        })
        .collect();
    Run { stdout, results }
}

#[test]
fn decode_suite_prints_its_results() {
    let run = suite(&["decode", "--events", "300", "--runs", "1"]);
    for key in ["decode_events_per_sec", "watch_http_krust_events_per_sec", "watch_http_kube_events_per_sec"]
    {
        assert!(run.value(key) > 0.0, "{key} is zero in:\n{}", run.stdout);
    }
    assert_eq!(run.last_keys(1), ["decode_fraction_of_ceiling"]);
    let fraction = run.value("decode_fraction_of_ceiling");
    assert!(fraction > 0.0 && fraction.is_finite());
}

#[test]
fn scope_suite_prints_its_results() {
    // The client checks that the scoped informer holds exactly the matching Secrets (20 of
    // 2,000) and the unscoped one all of them, or the suite fails.
    let run = suite(&["scope", "--secrets", "2000", "--runs", "1"]);
    assert!(run.value("scope_unscoped_cache_mib") > 0.0, "{}", run.stdout);
    assert!(run.value("scope_cache_ratio").is_finite());
    assert_eq!(run.last_keys(1), ["scope_rss_ratio"], "{}", run.stdout);
}

#[test]
fn apiserver_suite_prints_its_results() {
    let run = suite(&["apiserver", "--pods", "200", "--runs", "1", "--watchers", "5", "--writes", "20"]);
    assert!(run.value("watch_events_per_sec") > 0.0);
    assert_eq!(run.value("concurrent_watchers_complete"), 5.0, "every watcher got every event");
    assert_eq!(run.last_keys(1), ["stored_bytes_per_json_byte"], "{}", run.stdout);
}

#[test]
fn informers_suite_prints_its_results() {
    let run = suite(&["informers", "--pods", "400", "--runs", "1"]);
    assert_eq!(run.value("pods"), 400.0);
    for key in [
        "sync_krust_seconds",
        "sync_kube_seconds",
        "rss_per_object_typed_krust",
        "watch_events_krust_per_sec",
        "watch_events_kube_per_sec",
        "watch_events_stripped_krust_per_sec",
        "relist_krust_seconds",
        "relist_kube_seconds",
        "relist_peak_rss_ratio_krust",
        "lister_get_cold_p50_us",
        "apiserver_sync_krust_seconds",
    ] {
        assert!(run.value(key) > 0.0, "{key} is zero in:\n{}", run.stdout);
    }
    assert_eq!(run.last_keys(1), ["apiserver_watch_events_kube_per_sec"], "{}", run.stdout);
    for (key, value) in &run.results {
        assert!(value.is_finite() && *value >= 0.0, "{key} {value}");
    }
}

#[test]
fn workqueue_suite_prints_its_results() {
    let run = suite(&["workqueue", "--items", "20000", "--deep", "20000", "--timers", "2000", "--runs", "1"]);
    assert_eq!(run.last_keys(1), ["queue_cycles_per_sec"], "{}", run.stdout);
    for (key, value) in &run.results {
        assert!(value.is_finite() && *value > 0.0, "{key} {value}");
    }
}

#[test]
fn reconcile_suite_prints_its_results() {
    let run = suite(&["reconcile", "--objects", "200", "--rate", "200", "--seconds", "1", "--runs", "1"]);
    assert_eq!(run.last_keys(2), ["reconcile_p99_ms", "reconcile_p99_ms_kube_rs"], "{}", run.stdout);
    for (key, value) in &run.results {
        assert!(value.is_finite() && *value > 0.0, "{key} {value}");
    }
}

#[test]
fn leader_suite_prints_its_results() {
    let run = suite(&["leader", "--rounds", "2"]);
    assert_eq!(run.value("overlapping_leadership_intervals"), 0.0);
    assert!(run.value("failover_kill_max_s") > 0.0 && run.value("failover_release_max_s") > 0.0);
    assert_eq!(run.last_keys(1), ["retry_period_s"], "{}", run.stdout);
}

#[test]
fn testenv_suite_prints_its_results() {
    let run = suite(&["testenv", "--runs", "2"]);
    // Each step takes time (the context, microseconds, may print as 0.000 ms).
    for key in ["testenv_server_start_ms", "testenv_seed_ms", "testenv_reconcile_ms"] {
        assert!(run.value(key) > 0.0 && run.value(key).is_finite(), "{key}: {}", run.stdout);
    }
    assert!(run.value("testenv_context_ms") >= 0.0);
    assert_eq!(
        run.last_keys(5),
        [
            "testenv_server_start_ms",
            "testenv_context_ms",
            "testenv_seed_ms",
            "testenv_reconcile_ms",
            "testenv_after_server_ms"
        ]
    );
}

/// The chaos suite's short run (issue 16): 60 s of every fault kind at 20 a minute each, the
/// leader replaced every 20 s; nothing may diverge, stay unreconciled, overlap or panic, and
/// the operator must be quiet once everything is in place.
#[test]
fn chaos_for_a_minute_loses_nothing() {
    let run =
        suite(&["chaos", "--seconds", "60", "--faults-per-minute", "20", "--replace-leader-every", "20"]);
    for key in [
        "chaos_cache_divergence",
        "chaos_unreconciled",
        "chaos_overlapping_reconciles",
        "chaos_overlapping_leaders",
        "chaos_panics",
        "chaos_quiet_writes",
    ] {
        assert_eq!(run.value(key), 0.0, "{key}:\n{}", run.stdout);
    }
    assert!(run.value("chaos_leaders_replaced") >= 1.0, "{}", run.stdout);
    assert!(run.value("chaos_writer_writes") >= 100.0, "{}", run.stdout);
    for kind in ["restart", "watch_cut", "compaction", "error_burst", "latency_spike", "stall", "slow_reads"]
    {
        assert!(run.value(&format!("chaos_faults_{kind}")) > 0.0, "{kind} never injected:\n{}", run.stdout);
    }
}
