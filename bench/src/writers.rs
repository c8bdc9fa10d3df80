//! Writer latency with and without a persist running back to back, for each design.
//!
//! Each design is bulk-loaded with `preload` rows and persisted once (so the persists measured
//! are the steady state: incremental for `VectorIndex`, a full rewrite for the others). Then
//! `writers` threads call `add_chunk` at a fixed rate each for `seconds`, recording every call's
//! latency, while (in the "with persist" run) one more thread persists in a loop. Vectors and ids
//! are made before the clock starts. The rate is paced (a writer that falls behind does not catch
//! up in a burst); a call blocked behind a lock shows as one long latency.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vecindex::{Chunk, IndexConfig, SegmentIndex};

use crate::data::vector;
use crate::design::Design;
use crate::designs;
use crate::latency::{Latencies, Summary};

pub struct Params {
    pub dim: usize,
    pub preload: usize,
    pub seconds: f64,
    pub writers: usize,
    /// Adds per second per writer.
    pub rate: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Run {
    pub design: String,
    pub persist: bool,
    pub writers: usize,
    pub rate_per_writer: f64,
    pub preload: usize,
    pub seconds: f64,
    pub adds: u64,
    pub persists: u64,
    /// Persist durations (µs), in the runs with persist.
    pub persist_latency: Option<Summary>,
    pub latency: Summary,
    pub cdf: Vec<(f64, f64)>,
    /// Calls that took over 1 ms, and how many of those the scheduler preempted (the writer
    /// thread's involuntary context switches rose during the call): a stall of the index, or
    /// the thread waiting for a core.
    pub slow_calls: u64,
    pub slow_calls_preempted: u64,
}

/// The calling thread's involuntary context switches so far.
fn preemptions() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is valid for writes of a `rusage`; RUSAGE_THREAD reports the calling thread.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    // SAFETY: zero-initialized, and filled in by a successful call.
    if rc == 0 { unsafe { usage.assume_init() }.ru_nivcsw } else { 0 }
}

/// Distinct vectors a writer cycles through (distinct ids make every add a new row).
const POOL: usize = 4096;

fn one(make: &dyn Fn() -> Arc<dyn Design>, params: &Params, persist: bool, dir: &Path) -> Run {
    let design = make();
    for batch in 0..params.preload.div_ceil(1000) {
        let chunks = (batch * 1000..((batch + 1) * 1000).min(params.preload))
            .map(|i| Chunk::new(format!("pre{i}"), format!("pre{}", i / 16), vector(i as u64, params.dim)))
            .collect();
        design.add_bulk(chunks);
    }
    design.persist(dir);
    let stop = AtomicBool::new(false);
    let interval = Duration::from_secs_f64(1.0 / params.rate);
    let deadline = Duration::from_secs_f64(params.seconds);
    let ((latencies, slow_calls, slow_calls_preempted), persists) = std::thread::scope(|scope| {
        let persister = persist.then(|| {
            scope.spawn(|| {
                let mut durations = Latencies::default();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    design.persist(dir);
                    durations.record(started.elapsed());
                }
                durations
            })
        });
        let writers: Vec<_> = (0..params.writers)
            .map(|w| {
                let design = &design;
                scope.spawn(move || {
                    let pool: Vec<Vec<f32>> =
                        (0..POOL).map(|i| vector(((w as u64) << 40) ^ (i as u64 + 1_000_000), params.dim)).collect();
                    let mut latencies = Latencies::default();
                    let (mut slow, mut slow_preempted) = (0u64, 0u64);
                    let started = Instant::now();
                    let mut due = started;
                    let mut i = 0usize;
                    while started.elapsed() < deadline {
                        let id = format!("w{w}-{i}");
                        let chunk = Chunk::new(id.clone(), id, pool[i % POOL].clone());
                        let switches = preemptions();
                        let call = Instant::now();
                        design.add_chunk(chunk);
                        let took = call.elapsed();
                        latencies.record(took);
                        if took > Duration::from_millis(1) {
                            slow += 1;
                            slow_preempted += u64::from(preemptions() > switches);
                        }
                        i += 1;
                        due += interval;
                        let now = Instant::now();
                        if due > now {
                            std::thread::sleep(due - now);
                        } else if now - due > Duration::from_millis(100) {
                            due = now; // far behind (blocked): do not burst to catch up
                        }
                    }
                    (latencies, slow, slow_preempted)
                })
            })
            .collect();
        let mut all = (Latencies::default(), 0, 0);
        for writer in writers {
            let (latencies, slow, preempted) = writer.join().expect("writer");
            all.0.merge(&latencies);
            all.1 += slow;
            all.2 += preempted;
        }
        stop.store(true, Ordering::Relaxed);
        (all, persister.map(|p| p.join().expect("persister")))
    });
    let summary = latencies.summary();
    Run {
        design: design.name().to_owned(),
        persist,
        writers: params.writers,
        rate_per_writer: params.rate,
        preload: params.preload,
        seconds: params.seconds,
        adds: summary.count,
        persists: persists.as_ref().map_or(0, |p| p.summary().count),
        persist_latency: persists.map(|p| p.summary()),
        latency: summary,
        cdf: latencies.cdf(),
        slow_calls,
        slow_calls_preempted,
    }
}

/// Every design, without and then with persist.
pub fn run(params: &Params, scratch: &Path) -> Vec<Run> {
    // Exact segments: FAISS builds on the background thread would take a core of the two this
    // machine has and blur what is measured here, the write path.
    let config = IndexConfig::new(params.dim).segment_index(SegmentIndex::exact());
    let mut runs = Vec::new();
    for name in ["VectorIndex", "MutexIndex", "FaissMutex"] {
        for persist in [false, true] {
            let dir = tempfile::tempdir_in(scratch).expect("scratch dir");
            let make = || designs::by_name(name, &config);
            let run = one(&make, params, persist, dir.path());
            let l = &run.latency;
            println!(
                "  {:<12} {:<15} {:>8} adds  p50 {:>8.1} µs  p99 {:>9.1} µs  p99.9 {:>9.1} µs  max {:>10.1} µs  >1 ms: {} ({} preempted){}",
                run.design,
                if persist { "with persist" } else { "without persist" },
                run.adds,
                l.p50_us,
                l.p99_us,
                l.p999_us,
                l.max_us,
                run.slow_calls,
                run.slow_calls_preempted,
                run.persist_latency.as_ref().map_or(String::new(), |p| format!(
                    "  ({} persists, p50 {:.1} ms)",
                    run.persists,
                    p.p50_us / 1e3
                )),
            );
            runs.push(run);
        }
    }
    runs
}
