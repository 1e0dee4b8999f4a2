//! Small helpers shared by the suites: medians, option parsing, RSS, the server process.

/// The median of some samples (the mean of the middle two for an even count).
pub fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
}

/// The `p` quantile (0..=1) of already sorted samples, nearest rank; NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The value of `--name V` in `args`, parsed, or `default`.
pub fn option<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> anyhow::Result<T> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => {
            let value = args.get(i + 1).ok_or_else(|| anyhow::anyhow!("{name} needs a value"))?;
            value.parse().map_err(|_| anyhow::anyhow!("{name}: cannot parse {value:?}"))
        }
    }
}

/// This process's peak resident set size in KiB (`VmHWM`), 0 where /proc is unavailable.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The resident set size of process `pid` in KiB (`VmRSS`), 0 where /proc is unavailable.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs this benchmark binary with `args` (a client in its own process) and returns its stdout.
pub fn run_child(args: &[&str]) -> anyhow::Result<String> {
    let output = std::process::Command::new(std::env::current_exe()?).args(args).output()?;
    anyhow::ensure!(
        output.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The number after `key` in a child's `key value key value ...` line.
pub fn field(text: &str, key: &str) -> anyhow::Result<f64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let i = words.iter().position(|w| *w == key).ok_or_else(|| anyhow::anyhow!("no {key} in {text:?}"))?;
    Ok(words.get(i + 1).ok_or_else(|| anyhow::anyhow!("no value for {key}"))?.parse()?)
}

/// A krust-apiserver in a process of its own (`krust-bench apiserver-serve`), so that its CPU
/// and memory are not the measured client's; killed when dropped.
pub struct ServerProcess {
    child: std::process::Child,
    /// Its URL.
    pub url: String,
}

impl ServerProcess {
    /// Starts it and waits for the line giving its URL.
    pub fn start() -> anyhow::Result<ServerProcess> {
        Self::start_with(&["apiserver-serve"])
    }

    /// Starts `krust-bench <args>` (a server printing its URL first) and waits for the URL.
    pub fn start_with(args: &[&str]) -> anyhow::Result<ServerProcess> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no server stdout"))?;
        let mut url = String::new();
        std::io::BufReader::new(stdout).read_line(&mut url)?;
        anyhow::ensure!(url.starts_with("http"), "{} printed no URL", args.join(" "));
        Ok(ServerProcess { child, url: url.trim().to_string() })
    }

    /// Its process id (to read its RSS).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) this process has used, in seconds (0 where /proc is unavailable).
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // After the command name (which may hold spaces) in parentheses: fields 14 and 15 (utime,
    // stime) are the 12th and 13th after it.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Clock ticks are 100 per second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}
