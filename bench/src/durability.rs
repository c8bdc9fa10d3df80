//! What each durability level costs writers: single adds and 50-chunk documents, with 1 and 4
//! writer threads, on an index bound to a directory on this machine's disk, in one run; and the
//! disk's own fsync latency (an append and `fdatasync` in the same directory: of 4 KiB, and of
//! each workload's batch from 4 writers), measured in the same run, for the power-loss level to
//! be judged against.

#![allow(clippy::disallowed_types)] // a benchmark: std threads and files

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vecindex::{Chunk, Durability, IndexConfig, SegmentIndex, VectorIndex};

use crate::data::vector;
use crate::latency::{Latencies, Summary};

pub struct Params {
    /// How long each cell (level x workload x writers) runs.
    pub seconds: f64,
    pub dim: usize,
    /// At least this many `fdatasync` calls are timed for the disk's latency, for as long as a
    /// cell runs (the disk's rarer stalls come every few seconds, not every thousand calls).
    pub fsyncs: usize,
}

/// Levels measured, by the names `Durability` parses.
pub const LEVELS: [&str; 4] = ["none", "process-crash", "power-loss", "interval:0.1"];
pub const WORKLOADS: [(&str, usize); 2] = [("single adds", 1), ("50-chunk documents", 50)];
pub const WRITERS: [usize; 2] = [1, 4];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cell {
    pub durability: String,
    pub workload: String,
    pub chunks_per_call: usize,
    pub writers: usize,
    pub calls: u64,
    pub calls_per_s: f64,
    /// Latency of each call, every writer's merged.
    pub latency: Summary,
}

/// `fdatasync` after each append of `bytes` to a file in the index's directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FsyncProbe {
    pub bytes: usize,
    /// The workload whose batch from 4 writers is about this size, if any.
    pub workload: Option<String>,
    pub latency: Summary,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub dim: usize,
    pub seconds: f64,
    /// A 4 KiB append and `fdatasync` in the index's directory.
    pub fsync: Summary,
    /// The same at each workload's batch size with 4 writers (older runs have none).
    #[serde(default)]
    pub fsync_batches: Vec<FsyncProbe>,
    pub cells: Vec<Cell>,
}

impl Outcome {
    /// The fsync probe for `workload`'s batch, or the 4 KiB one.
    pub fn fsync_for(&self, workload: &str) -> (usize, &Summary) {
        self.fsync_batches
            .iter()
            .find(|p| p.workload.as_deref() == Some(workload))
            .map_or((4096, &self.fsync), |p| (p.bytes, &p.latency))
    }
}

/// About the bytes of a batch of 4 writers' records of `chunks` chunks each: their vectors (the
/// bulk of a record; ids and framing add a little), rounded up to whole pages.
fn batch_bytes(chunks: usize, dim: usize) -> usize {
    (4 * chunks * dim * std::mem::size_of::<f32>()).next_multiple_of(4096)
}

pub fn run(params: &Params, scratch: &Path) -> Outcome {
    let pool: Arc<Vec<Vec<f32>>> = Arc::new((0..4096).map(|i| vector(i as u64 + 9_000_000, params.dim)).collect());
    let fsync = fsync_latency(scratch, 4096, params.fsyncs, params.seconds);
    println!("durability: fdatasync of a 4 KiB append: p50 {:.0} µs, p99.9 {:.0} µs", fsync.p50_us, fsync.p999_us);
    let fsync_batches: Vec<FsyncProbe> = WORKLOADS
        .iter()
        .map(|&(workload, chunks)| {
            let bytes = batch_bytes(chunks, params.dim);
            let latency = fsync_latency(scratch, bytes, params.fsyncs, params.seconds);
            println!(
                "durability: fdatasync of a {} KiB append (4 writers' {workload}): p50 {:.0} µs, p99.9 {:.0} µs",
                bytes / 1024,
                latency.p50_us,
                latency.p999_us
            );
            FsyncProbe { bytes, workload: Some(workload.to_owned()), latency }
        })
        .collect();
    let mut cells = Vec::new();
    for (workload, chunks_per_call) in WORKLOADS {
        for writers in WRITERS {
            for level in LEVELS {
                let cell = run_cell(params, scratch, &pool, level, workload, chunks_per_call, writers);
                println!(
                    "durability: {level:>14} {workload:>18} x {writers}: {:>8.0} calls/s  p50 {:>7.1} µs  p99.9 {:>8.1} µs  max {:>8.1} µs",
                    cell.calls_per_s, cell.latency.p50_us, cell.latency.p999_us, cell.latency.max_us
                );
                cells.push(cell);
            }
        }
    }
    Outcome { dim: params.dim, seconds: params.seconds, fsync, fsync_batches, cells }
}

fn run_cell(
    params: &Params,
    scratch: &Path,
    pool: &Arc<Vec<Vec<f32>>>,
    level: &str,
    workload: &str,
    chunks_per_call: usize,
    writers: usize,
) -> Cell {
    let durability: Durability = level.parse().expect("a level this benchmark knows");
    let dir = tempfile::tempdir_in(scratch).expect("scratch directory");
    // Exact segments: this measures the write path and its log, not FAISS builds.
    let config = IndexConfig::new(params.dim).segment_index(SegmentIndex::exact()).durability(durability);
    let index = Arc::new(VectorIndex::create(dir.path(), config).expect("create"));
    let deadline = Instant::now() + Duration::from_secs_f64(params.seconds);
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let (index, pool) = (index.clone(), pool.clone());
            std::thread::spawn(move || {
                let mut latencies = Latencies::default();
                let mut calls = 0u64;
                while Instant::now() < deadline {
                    let doc = format!("w{w}-d{calls}");
                    let chunks: Vec<Chunk> = (0..chunks_per_call)
                        .map(|c| {
                            let v = pool[(calls as usize * chunks_per_call + c + w * 977) % pool.len()].clone();
                            Chunk::new(format!("{doc}-c{c}"), doc.clone(), v)
                        })
                        .collect();
                    let call = Instant::now();
                    if chunks_per_call == 1 {
                        index.add_chunks(chunks).expect("add");
                    } else {
                        index.add_document(&doc, chunks).expect("add");
                    }
                    latencies.record(call.elapsed());
                    calls += 1;
                }
                (latencies, calls)
            })
        })
        .collect();
    let mut latencies = Latencies::default();
    let mut calls = 0;
    for thread in threads {
        let (l, c) = thread.join().expect("writer");
        latencies.merge(&l);
        calls += c;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Cell {
        durability: level.to_owned(),
        workload: workload.to_owned(),
        chunks_per_call,
        writers,
        calls,
        calls_per_s: calls as f64 / elapsed,
        latency: latencies.summary(),
    }
}

/// `fdatasync` after each append of `bytes` to a file in `dir`, at least `n` times and for at
/// least `seconds`.
fn fsync_latency(dir: &Path, bytes: usize, n: usize, seconds: f64) -> Summary {
    // Started over at a log segment's largest size, so that the probe's file stays as small.
    const RESTART_AT: usize = 64 << 20;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).expect("probe file");
    let mut len = 0;
    let block = vec![0x5au8; bytes];
    let mut latencies = Latencies::default();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut calls = 0;
    while calls < n || Instant::now() < deadline {
        if len + bytes > RESTART_AT {
            file = std::fs::File::create(&path).expect("probe file");
            len = 0;
        }
        let call = Instant::now();
        file.write_all(&block).expect("write");
        file.sync_data().expect("fdatasync");
        latencies.record(call.elapsed());
        len += bytes;
        calls += 1;
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    latencies.summary()
}
