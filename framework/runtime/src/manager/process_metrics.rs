//! The process metrics every Prometheus client exports (client_golang's process collector, as
//! controller-runtime's registry carries them): `process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
//! `process_start_time_seconds`, `process_open_fds`, `process_max_fds` — read from `/proc` on
//! each scrape (Linux; elsewhere, and for any file that cannot be read, the metric is left
//! out).

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{TypedMetric, counter::ConstCounter, gauge::ConstGauge},
    registry::Unit,
};

/// Clock ticks per second of `/proc/<pid>/stat` (Linux's USER_HZ, 100 on every architecture
/// it supports).
const TICKS_PER_SECOND: f64 = 100.0;

/// Reads this process's figures from `/proc` on each scrape.
#[derive(Debug, Default)]
pub(crate) struct ProcessCollector;

/// What one scrape read.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<i64>,
    virtual_bytes: Option<i64>,
    start_time_seconds: Option<f64>,
    open_fds: Option<i64>,
    max_fds: Option<i64>,
}

/// `stat`'s fields after the command name (which may hold spaces and parentheses).
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default()
}

/// A `kB` line of `/proc/<pid>/status`, in bytes.
fn status_kib(status: &str, key: &str) -> Option<i64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn read(stat: Option<&str>, status: Option<&str>, boot: Option<&str>, limits: Option<&str>) -> Figures {
    let fields = stat.map(stat_fields).unwrap_or_default();
    // After the command: state is field 3 of stat(5), so utime (14) is index 11 here.
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    let boot_time = boot.and_then(|b| {
        b.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse::<f64>().ok())
    });
    Figures {
        cpu_seconds: number(11).zip(number(12)).map(|(u, s)| (u + s) / TICKS_PER_SECOND),
        resident_bytes: status.and_then(|s| status_kib(s, "VmRSS:")),
        virtual_bytes: status.and_then(|s| status_kib(s, "VmSize:")),
        start_time_seconds: boot_time.zip(number(19)).map(|(b, ticks)| b + ticks / TICKS_PER_SECOND),
        open_fds: std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as i64),
        max_fds: limits.and_then(|l| {
            let line = l.lines().find(|l| l.starts_with("Max open files"))?;
            line.trim_start_matches("Max open files").split_whitespace().next()?.parse().ok()
        }),
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let file = |path: &str| std::fs::read_to_string(path).ok();
        let (stat, status) = (file("/proc/self/stat"), file("/proc/self/status"));
        let (boot, limits) = (file("/proc/stat"), file("/proc/self/limits"));
        let f = read(stat.as_deref(), status.as_deref(), boot.as_deref(), limits.as_deref());
        fn put(
            encoder: &mut DescriptorEncoder,
            name: &str,
            help: &str,
            unit: Option<&Unit>,
            metric: &(impl EncodeMetric + TypedMetric),
        ) -> Result<(), std::fmt::Error> {
            let metric_encoder = encoder.encode_descriptor(name, help, unit, metric.metric_type())?;
            metric.encode(metric_encoder)
        }
        if let Some(v) = f.cpu_seconds {
            let help = "Total user and system CPU time spent in seconds";
            put(&mut encoder, "process_cpu", help, Some(&Unit::Seconds), &ConstCounter::new(v))?;
        }
        if let Some(v) = f.resident_bytes {
            let help = "Resident memory size in bytes";
            put(&mut encoder, "process_resident_memory", help, Some(&Unit::Bytes), &ConstGauge::new(v))?;
        }
        if let Some(v) = f.virtual_bytes {
            let help = "Virtual memory size in bytes";
            put(&mut encoder, "process_virtual_memory", help, Some(&Unit::Bytes), &ConstGauge::new(v))?;
        }
        if let Some(v) = f.start_time_seconds {
            let help = "Start time of the process since unix epoch in seconds";
            put(&mut encoder, "process_start_time", help, Some(&Unit::Seconds), &ConstGauge::new(v))?;
        }
        if let Some(v) = f.open_fds {
            put(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors",
                None,
                &ConstGauge::new(v),
            )?;
        }
        if let Some(v) = f.max_fds {
            let help = "Maximum number of open file descriptors";
            put(&mut encoder, "process_max_fds", help, None, &ConstGauge::new(v))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proc_files_are_read_as_client_golang_reads_them() {
        // A command name with a space and a parenthesis, as stat(5) allows.
        let stat = "4242 (my op) x) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 130 0 0 20 0 9 0 \
                    5000 123456789 2048 18446744073709551615";
        let status = "Name:\tmy op\nVmSize:\t  120000 kB\nVmRSS:\t   20480 kB\n";
        let boot = "cpu  1 2 3\nbtime 1764500000\nprocesses 10\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1048576              1048576              files\n";
        let f = read(Some(stat), Some(status), Some(boot), Some(limits));
        assert_eq!(f.cpu_seconds, Some(3.8));
        assert_eq!(f.resident_bytes, Some(20480 * 1024));
        assert_eq!(f.virtual_bytes, Some(120000 * 1024));
        assert_eq!(f.start_time_seconds, Some(1764500050.0));
        assert_eq!(f.max_fds, Some(1048576));
        // Nothing readable: nothing made up.
        let none = read(None, None, None, None);
        assert_eq!((none.cpu_seconds, none.resident_bytes, none.start_time_seconds), (None, None, None));
    }
}
