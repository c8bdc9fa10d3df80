//! Writer throughput across a growth step: after a bulk load of `rows` rows, one writer adds
//! single chunks as fast as it can. A FAISS flat index stores its vectors in one growing array, so
//! the first add after a bulk load reallocates and copies all of them while the writer (and, in
//! the old design, everyone behind its lock) waits; vecindex's heads are fixed-size and sealed
//! off the write path, so no add ever copies what came before.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vecindex::{Chunk, IndexConfig, SegmentIndex};

use crate::data::vector;
use crate::designs;
use crate::latency::{Latencies, Summary};

pub struct Params {
    pub rows: usize,
    pub dim: usize,
    pub adds: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub design: String,
    pub rows: usize,
    pub dim: usize,
    pub adds: usize,
    pub latency: Summary,
    /// Adds per second over the whole run, and in its slowest 10 ms window (windows start when an
    /// add finishes: a stall of the first add shows in the latency's max only).
    pub adds_per_s: f64,
    pub slowest_window_adds_per_s: f64,
}

pub fn run(params: &Params) -> Vec<Outcome> {
    // Exact segments: this measures the write path, not FAISS builds of sealed segments.
    let config = IndexConfig::new(params.dim).segment_index(SegmentIndex::exact());
    let pool: Vec<Vec<f32>> = (0..4096).map(|i| vector(i as u64 + 7_000_000, params.dim)).collect();
    let mut outcomes = Vec::new();
    for name in ["VectorIndex", "FaissMutex", "MutexIndex"] {
        let design = designs::by_name(name, &config);
        let bulk: Vec<Chunk> = (0..params.rows)
            .map(|i| Chunk::new(format!("b{i}"), format!("b{}", i / 16), vector(i as u64, params.dim)))
            .collect();
        design.add_bulk(bulk);
        let chunks: Vec<Chunk> = (0..params.adds)
            .map(|i| Chunk::new(format!("g{i}"), format!("g{i}"), pool[i % pool.len()].clone()))
            .collect();
        let mut latencies = Latencies::default();
        let mut finished = Vec::with_capacity(params.adds);
        let started = Instant::now();
        for chunk in chunks {
            let call = Instant::now();
            design.add_chunk(chunk);
            let now = Instant::now();
            latencies.record(now - call);
            finished.push(now - started);
        }
        let elapsed = started.elapsed();
        // The slowest window: the fewest adds finishing in any 10 ms span that starts at an add.
        let window = Duration::from_millis(10);
        let mut slowest = usize::MAX;
        let mut end = 0;
        for start in 0..finished.len() {
            while end < finished.len() && finished[end] < finished[start] + window {
                end += 1;
            }
            if finished[start] + window <= elapsed {
                slowest = slowest.min(end - start);
            }
        }
        let outcome = Outcome {
            design: name.to_owned(),
            rows: params.rows,
            dim: params.dim,
            adds: params.adds,
            latency: latencies.summary(),
            adds_per_s: params.adds as f64 / elapsed.as_secs_f64(),
            slowest_window_adds_per_s: if slowest == usize::MAX { 0.0 } else { slowest as f64 / window.as_secs_f64() },
        };
        println!(
            "  {:<12} after {} rows: {} adds at {:.0}/s, slowest 10 ms window {:.0}/s; p50 {:.1} µs, p99.9 {:.1} µs, max {:.1} ms",
            name,
            params.rows,
            params.adds,
            outcome.adds_per_s,
            outcome.slowest_window_adds_per_s,
            outcome.latency.p50_us,
            outcome.latency.p999_us,
            outcome.latency.max_us / 1e3
        );
        outcomes.push(outcome);
        drop(design);
    }
    outcomes
}
