//! The benchmark binary runs end to end on a tiny workload and prints its result lines, so that
//! the suites cannot rot between the times someone runs them for real.

use std::process::Command;

#[test]
fn decode_suite_prints_its_results() {
    let output = Command::new(env!("CARGO_BIN_EXE_krust-bench"))
        .args(["decode", "--events", "300", "--runs", "1"])
        .output()
        .expect("the benchmark binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<(&str, f64)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("result "))
        .map(|l| {
            let (k, v) = l.split_once(' ').expect("result <key> <value>");
            (k, v.parse::<f64>().expect("a number"))
        })
        .collect();
    for key in ["decode_events_per_sec", "watch_http_krust_events_per_sec", "watch_http_kube_events_per_sec"]
    {
        let value = results.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        assert!(value.is_some_and(|v| v > 0.0), "{key} missing or zero in:\n{stdout}");
    }
    let (last_key, fraction) = *results.last().expect("result lines");
    assert_eq!(last_key, "decode_fraction_of_ceiling");
    assert!(fraction > 0.0 && fraction.is_finite());
}

#[test]
fn apiserver_suite_prints_its_results() {
    let output = Command::new(env!("CARGO_BIN_EXE_krust-bench"))
        .args(["apiserver", "--pods", "200", "--runs", "1", "--watchers", "5", "--writes", "20"])
        .output()
        .expect("the benchmark binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value = |key: &str| -> f64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("result {key} ")))
            .unwrap_or_else(|| panic!("{key} missing in:\n{stdout}"))
            .parse()
            .expect("a number")
    };
    assert!(value("watch_events_per_sec") > 0.0);
    assert_eq!(value("concurrent_watchers_complete"), 5.0, "every watcher got every event");
    let last = stdout.lines().rfind(|l| l.starts_with("result ")).unwrap();
    assert!(last.starts_with("result stored_bytes_per_json_byte "), "{last}");
}

#[test]
fn informers_suite_prints_its_results() {
    let output = Command::new(env!("CARGO_BIN_EXE_krust-bench"))
        .args(["informers", "--pods", "300", "--runs", "1"])
        .output()
        .expect("the benchmark binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<&str> = stdout.lines().filter(|l| l.starts_with("result ")).collect();
    let keys: Vec<&str> = results.iter().map(|l| l.split_whitespace().nth(1).unwrap()).collect();
    assert_eq!(
        &keys[keys.len() - 3..],
        ["sync_100k_speedup", "watch_events_speedup", "rss_per_object_ratio"]
    );
    for line in results {
        let value: f64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!(value.is_finite() && value >= 0.0, "{line}");
    }
}

#[test]
fn workqueue_suite_prints_its_results() {
    let output = Command::new(env!("CARGO_BIN_EXE_krust-bench"))
        .args(["workqueue", "--items", "20000", "--deep", "20000", "--timers", "2000", "--runs", "1"])
        .output()
        .expect("the benchmark binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<&str> = stdout.lines().filter(|l| l.starts_with("result ")).collect();
    assert!(results.last().is_some_and(|l| l.starts_with("result queue_cycles_per_sec ")), "{stdout}");
    for line in results {
        let value: f64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!(value.is_finite() && value > 0.0, "{line}");
    }
}

#[test]
fn reconcile_suite_prints_its_results() {
    let output = Command::new(env!("CARGO_BIN_EXE_krust-bench"))
        .args(["reconcile", "--objects", "200", "--rate", "200", "--seconds", "1", "--runs", "1"])
        .output()
        .expect("the benchmark binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<&str> = stdout.lines().filter(|l| l.starts_with("result ")).collect();
    let keys: Vec<&str> = results.iter().map(|l| l.split_whitespace().nth(1).unwrap()).collect();
    assert_eq!(&keys[keys.len() - 2..], ["reconcile_p99_ms", "reconcile_p99_ms_kube_rs"], "{stdout}");
    for line in results {
        let value: f64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!(value.is_finite() && value > 0.0, "{line}");
    }
}

#[test]
fn leader_suite_prints_its_results() {
    let output = Command::new(env!("CARGO_BIN_EXE_krust-bench"))
        .args(["leader", "--rounds", "2"])
        .output()
        .expect("the benchmark binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value = |key: &str| -> f64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("result {key} ")))
            .unwrap_or_else(|| panic!("{key} missing in:\n{stdout}"))
            .parse()
            .expect("a number")
    };
    assert_eq!(value("overlapping_leadership_intervals"), 0.0);
    assert!(value("failover_kill_max_s") > 0.0 && value("failover_release_max_s") > 0.0);
    let last = stdout.lines().rfind(|l| l.starts_with("result ")).unwrap();
    assert!(last.starts_with("result retry_period_s "), "{last}");
}
