//! The two designs side by side: add throughput with 1, 2 and 4 writer threads, and search
//! latency, for `VectorIndex` and the `MutexIndex` baseline on the same data.
//!
//! `cargo bench --bench core` (add `-- --quick` for a fast pass). The full benchmark harness
//! (latency percentiles during persist, real embeddings, peers) is a separate, later piece.

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vecindex::{Chunk, Index, IndexConfig, MutexIndex, SearchOptions, SegmentIndex, VectorIndex};

const DIM: usize = 64;

fn vector(seed: u64) -> Vec<f32> {
    common::vector(seed, DIM)
}

fn config() -> IndexConfig {
    // Exact segments: this compares the concurrency designs, not FAISS.
    IndexConfig::new(DIM).segment_index(SegmentIndex::exact())
}

/// Makes a fresh, empty index of one design.
type MakeIndex = fn() -> Arc<dyn Index>;

fn designs() -> Vec<(&'static str, MakeIndex)> {
    vec![
        ("VectorIndex", || Arc::new(VectorIndex::new(config()).expect("config"))),
        ("MutexIndex", || Arc::new(MutexIndex::new(config()).expect("config"))),
    ]
}

/// `threads` writers each add `per_thread` single-chunk documents; returns the wall time.
fn add_concurrently(index: &Arc<dyn Index>, threads: usize, per_thread: usize, round: u64) -> Duration {
    let chunks: Vec<Vec<Chunk>> = (0..threads)
        .map(|t| {
            (0..per_thread)
                .map(|i| {
                    let id = format!("r{round}-t{t}-{i}");
                    Chunk::new(id.clone(), id, vector((round << 32) ^ ((t as u64) << 24) ^ i as u64))
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for batch in chunks {
            let index = index.clone();
            scope.spawn(move || {
                for chunk in batch {
                    index.add_chunk(chunk).expect("valid chunk");
                }
            });
        }
    });
    started.elapsed()
}

fn add_throughput(c: &mut Criterion) {
    const PER_THREAD: usize = 2000;
    let mut group = c.benchmark_group("add_chunk");
    for threads in [1, 2, 4] {
        group.throughput(Throughput::Elements((threads * PER_THREAD) as u64));
        for (name, make) in designs() {
            group.bench_with_input(BenchmarkId::new(name, format!("{threads} writers")), &threads, |b, &threads| {
                b.iter_custom(|iters| {
                    (0..iters).map(|round| add_concurrently(&make(), threads, PER_THREAD, round)).sum()
                });
            });
        }
    }
    group.finish();
}

fn search_latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("search_k10_20k_rows");
    for (name, make) in designs() {
        let index = make();
        let chunks = (0..20_000).map(|i| Chunk::new(format!("c{i}"), format!("d{}", i / 8), vector(i))).collect();
        index.add_chunks(chunks).expect("valid chunks");
        let query = vector(7);
        group.bench_function(name, |b| {
            b.iter(|| black_box(index.search(black_box(&query), &SearchOptions::k(10)).expect("valid query")))
        });
    }
    group.finish();
}

criterion_group!(benches, add_throughput, search_latency);
criterion_main!(benches);
