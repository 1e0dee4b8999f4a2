//! A randomized, seeded and reproducible fault schedule (issue-16's chaos runs; no counterpart in
//! kube-apiserver — these are the faults a real control plane puts client-go through): server
//! restarts (objects kept, history and watches dropped), watch connections cut (some in the
//! middle of an event), compaction (a resume gets 410), bursts of 429/500/503 with
//! `Retry-After`, latency spikes, stalled watches, and slow reads (responses trickling out).
//! Each kind has a rate (per minute); [`FaultSchedule::plan`] turns the seed and the rates into
//! the same list of faults every time, and [`ApiServer::run_faults`] applies it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio_util::sync::CancellationToken;

use crate::ApiServer;

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// Objects kept, watches closed, history lost (a restarted API server before its watch
    /// cache refills).
    Restart,
    /// Every open watch connection closed: alternately at the end of an event (the stream
    /// ends) and in the middle of one (the connection breaks, the event is cut short).
    WatchCut,
    /// The event history forgotten: resumes and continued lists get 410 Expired.
    Compaction,
    /// The next requests fail with 429, 500 or 503 and `Retry-After: 1`.
    ErrorBurst,
    /// Every request slowed down for a while.
    LatencySpike,
    /// Open watches send nothing for a while, then their events as one burst.
    Stall,
    /// Responses trickle out for a while (4 KiB every 50 ms, ~80 KB/s), as over a slow link.
    SlowReads,
}

impl FaultKind {
    /// Every kind, in declaration order (`kind as usize` is its place here).
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Restart,
        FaultKind::WatchCut,
        FaultKind::Compaction,
        FaultKind::ErrorBurst,
        FaultKind::LatencySpike,
        FaultKind::Stall,
        FaultKind::SlowReads,
    ];

    /// The kind's name in reports (`result chaos_faults_<name>`).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Restart => "restart",
            FaultKind::WatchCut => "watch_cut",
            FaultKind::Compaction => "compaction",
            FaultKind::ErrorBurst => "error_burst",
            FaultKind::LatencySpike => "latency_spike",
            FaultKind::Stall => "stall",
            FaultKind::SlowReads => "slow_reads",
        }
    }
}

/// A seeded fault schedule: how often each kind happens, and how hard.
#[derive(Clone, Debug)]
pub struct FaultSchedule {
    /// The seed: one seed, one schedule.
    pub seed: u64,
    /// Faults per minute, per kind (in [`FaultKind::ALL`]'s order).
    pub per_minute: [f64; 7],
    /// How often the schedule draws (default 100 ms).
    pub tick: Duration,
    /// How many requests an error burst fails (default 5).
    pub burst: u32,
    /// How long a latency spike, a stall or slow reads last (default 2 s).
    pub spell: Duration,
    /// The added latency of a spike (default 300 ms).
    pub latency: Duration,
}

impl FaultSchedule {
    /// Every kind at `per_minute`, the other settings at their defaults.
    pub fn uniform(seed: u64, per_minute: f64) -> Self {
        FaultSchedule {
            seed,
            per_minute: [per_minute; 7],
            tick: Duration::from_millis(100),
            burst: 5,
            spell: Duration::from_secs(2),
            latency: Duration::from_millis(300),
        }
    }

    /// The faults of the first `ticks` ticks, as (tick, kind, error code for bursts): the same
    /// for the same seed and rates.
    pub fn plan(&self, ticks: u64) -> Vec<(u64, FaultKind, u16)> {
        let mut rng = SplitMix(self.seed);
        (0..ticks).flat_map(|tick| self.draw(&mut rng).into_iter().map(move |(k, c)| (tick, k, c))).collect()
    }

    /// The faults of the next tick.
    fn draw(&self, rng: &mut SplitMix) -> Vec<(FaultKind, u16)> {
        let per_tick = self.tick.as_secs_f64() / 60.0;
        let mut faults = Vec::new();
        for (i, kind) in FaultKind::ALL.iter().enumerate() {
            let draw = rng.unit();
            let code = [429, 500, 503][(rng.next() % 3) as usize];
            if draw < self.per_minute[i] * per_tick {
                faults.push((*kind, code));
            }
        }
        faults
    }
}

/// splitmix64: small, seeded, and the same on every machine.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A running fault schedule: stop it, and count what it injected.
#[derive(Clone, Debug)]
pub struct FaultRun {
    stop: CancellationToken,
    counts: Arc<[AtomicU64; 7]>,
}

impl FaultRun {
    /// Stops injecting, and ends the spells under way (latency and stalls lifted).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// How many faults of each kind were injected so far.
    pub fn counts(&self) -> Vec<(FaultKind, u64)> {
        FaultKind::ALL.iter().enumerate().map(|(i, k)| (*k, self.counts[i].load(Ordering::Relaxed))).collect()
    }
}

impl ApiServer {
    /// Applies `schedule` in the background until [`FaultRun::stop`] (or the server stops).
    pub fn run_faults(&self, schedule: FaultSchedule) -> FaultRun {
        let run = FaultRun { stop: self.stop.child_token(), counts: Arc::new(Default::default()) };
        let server = self.server.clone();
        let (stop, counts) = (run.stop.clone(), run.counts.clone());
        tokio::spawn(async move {
            let mut tick = 0u64;
            let mut rng = SplitMix(schedule.seed);
            let mut spell_ends: Option<tokio::time::Instant> = None;
            let mut interval = tokio::time::interval(schedule.tick);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = interval.tick() => {}
                }
                if spell_ends.is_some_and(|end| tokio::time::Instant::now() >= end) {
                    server.faults.set_latency(None);
                    server.faults.hold_watches(false);
                    server.faults.set_slow_reads(None);
                    spell_ends = None;
                }
                for (kind, code) in schedule.draw(&mut rng) {
                    tracing::info!(fault = kind.name(), tick, "injecting a fault");
                    match kind {
                        FaultKind::Restart => {
                            server.store.close_watches();
                            server.store.compact();
                        }
                        // Every other cut breaks the connections in the middle of an event
                        // instead of ending the streams.
                        FaultKind::WatchCut if counts[1].load(Ordering::Relaxed) % 2 == 1 => {
                            server.faults.cut_watches_mid_chunk()
                        }
                        FaultKind::WatchCut => server.store.close_watches(),
                        FaultKind::Compaction => server.store.compact(),
                        FaultKind::ErrorBurst => {
                            let code = http::StatusCode::from_u16(code)
                                .unwrap_or(http::StatusCode::SERVICE_UNAVAILABLE);
                            server.faults.fail_next(schedule.burst, code, Some(1), false);
                        }
                        FaultKind::LatencySpike => {
                            server.faults.set_latency(Some(schedule.latency));
                            spell_ends = Some(tokio::time::Instant::now() + schedule.spell);
                        }
                        FaultKind::Stall => {
                            server.faults.hold_watches(true);
                            spell_ends = Some(tokio::time::Instant::now() + schedule.spell);
                        }
                        FaultKind::SlowReads => {
                            server.faults.set_slow_reads(Some((4096, Duration::from_millis(50))));
                            spell_ends = Some(tokio::time::Instant::now() + schedule.spell);
                        }
                    }
                    counts[FaultKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)]
                        .fetch_add(1, Ordering::Relaxed);
                }
                tick += 1;
            }
            server.faults.set_latency(None);
            server.faults.hold_watches(false);
            server.faults.set_slow_reads(None);
        });
        run
    }
}
