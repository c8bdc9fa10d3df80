//! The designs side by side under criterion: `VectorIndex`, the `MutexIndex` baseline and the
//! old design (raw FAISS behind a mutex, `FaissMutex`), on the same 384-d vectors.
//!
//! - `add_chunk`: 1, 2 and 4 writer threads adding 4000 single-chunk documents each; with one
//!   writer also `RawAppend`, the floor: appending to plain vectors and a hash map, no
//!   synchronization, no index.
//! - `ingest`: one thread adding 4000 chunks as 80 documents of 50 with `add_document` (the bulk
//!   path an ingest takes), against `RawAppend` of the same chunks (vectors copied into one
//!   growing array, as a flat index stores them) and `RawMove` (each vector moved in whole).
//! - `search_idle` / `search_with_writer`: k = 10 over 20 000 rows, without and with one thread
//!   adding a chunk every 500 µs meanwhile. The writer's adds grow the index while criterion
//!   measures (which slows every search that scans it), and how many it manages differs by
//!   design, so each writer's count and the rows at the end are printed and written to
//!   `$CRITERION_HOME/search_with_writer/writer.json` for the report.
//! - `search_head`: k = 10 over 8 000 rows of one `VectorIndex`, all in its head (a head holds
//!   every row added since the last seal, and every query scans it exactly) against the same rows
//!   sealed into an exact segment by `force_merge`: what scanning the head costs against a
//!   segment's contiguous rows.
//! - `persist_full`: 20 000 rows into an empty directory.
//!
//! `cargo bench -p vecindex-bench --bench core` (add `-- --quick` for a fast pass). Segments are
//! exact: this compares the concurrency designs, not FAISS's index types.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vecindex::{Chunk, IndexConfig, SearchOptions, SegmentIndex, VectorIndex};
use vecindex_bench::data::vector;
use vecindex_bench::design::Design;
use vecindex_bench::designs;
use vecindex_bench::recall;

const DIM: usize = 384;
const PER_THREAD: usize = 4000;
const ROWS: usize = 20_000;

fn config() -> IndexConfig {
    IndexConfig::new(DIM).segment_index(SegmentIndex::exact())
}

fn chunks(round: u64, thread: usize, count: usize) -> Vec<Chunk> {
    (0..count)
        .map(|i| {
            let id = format!("r{round}-t{thread}-{i}");
            Chunk::new(id.clone(), id, vector((round << 32) ^ ((thread as u64) << 24) ^ i as u64, DIM))
        })
        .collect()
}

/// `threads` writers each add their chunks one call at a time; returns the wall time.
fn add_concurrently(design: &Arc<dyn Design>, batches: Vec<Vec<Chunk>>) -> Duration {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for batch in batches {
            let design = design.clone();
            scope.spawn(move || batch.into_iter().for_each(|chunk| design.add_chunk(chunk)));
        }
    });
    started.elapsed()
}

/// The floor for one writer: what storing chunks costs with no index and no synchronization,
/// and no allocation the data does not need (ids are moved, a document's id is copied once).
fn raw_append(batch: Vec<Chunk>) -> Duration {
    raw_store(batch, |vectors: &mut Vec<f32>, vector: Vec<f32>| vectors.extend_from_slice(&vector))
}

/// The same, each chunk's vector moved in whole (as the index moves it into its head) rather
/// than copied into one array: what storing alone costs, without growing megabytes of array.
fn raw_move(batch: Vec<Chunk>) -> Duration {
    raw_store(batch, |vectors: &mut Vec<Vec<f32>>, vector: Vec<f32>| vectors.push(vector))
}

/// Appends `batch` to plain vectors and hash maps (no synchronization, no index), storing each
/// vector with `store`; returns the time it took.
fn raw_store<V: Default>(batch: Vec<Chunk>, store: impl Fn(&mut V, Vec<f32>)) -> Duration {
    let started = Instant::now();
    let mut vectors = V::default();
    let mut row_docs: Vec<usize> = Vec::new();
    let mut by_chunk: HashMap<String, usize> = HashMap::new();
    let mut docs: HashMap<String, usize> = HashMap::new();
    let mut doc_rows: Vec<Vec<usize>> = Vec::new();
    for chunk in batch {
        let row = row_docs.len();
        store(&mut vectors, chunk.vector);
        let doc = match docs.get(&chunk.doc_id) {
            Some(&doc) => doc,
            None => {
                docs.insert(chunk.doc_id, doc_rows.len());
                doc_rows.push(Vec::new());
                doc_rows.len() - 1
            }
        };
        doc_rows[doc].push(row);
        row_docs.push(doc);
        by_chunk.insert(chunk.chunk_id, row);
    }
    black_box((vectors, row_docs, by_chunk, docs, doc_rows));
    started.elapsed()
}

fn add_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("add_chunk");
    for threads in [1, 2, 4] {
        group.throughput(Throughput::Elements((threads * PER_THREAD) as u64));
        for name in ["VectorIndex", "MutexIndex", "FaissMutex"] {
            group.bench_function(BenchmarkId::new(name, format!("{threads} writers")), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|round| {
                            let batches = (0..threads).map(|t| chunks(round, t, PER_THREAD)).collect();
                            add_concurrently(&designs::by_name(name, &config()), batches)
                        })
                        .sum()
                });
            });
        }
        if threads == 1 {
            group.bench_function(BenchmarkId::new("RawAppend", "1 writers"), |b| {
                b.iter_custom(|iters| (0..iters).map(|round| raw_append(chunks(round, 0, PER_THREAD))).sum());
            });
        }
    }
    group.finish();
}

/// Documents of 50 chunks.
fn documents(round: u64) -> Vec<(String, Vec<Chunk>)> {
    let chunks = chunks(round, 0, PER_THREAD);
    let mut docs: Vec<(String, Vec<Chunk>)> = Vec::new();
    for (i, mut chunk) in chunks.into_iter().enumerate() {
        if i % 50 == 0 {
            docs.push((format!("r{round}-doc{}", i / 50), Vec::with_capacity(50)));
        }
        let doc = docs.last_mut().expect("a document");
        chunk.doc_id = doc.0.clone();
        doc.1.push(chunk);
    }
    docs
}

fn ingest(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(PER_THREAD as u64));
    for name in ["VectorIndex", "MutexIndex", "FaissMutex"] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|round| {
                        let design = designs::by_name(name, &config());
                        let docs = documents(round);
                        let started = Instant::now();
                        for (doc_id, chunks) in docs {
                            design.add_document(&doc_id, chunks);
                        }
                        started.elapsed()
                    })
                    .sum()
            });
        });
    }
    group.bench_function("RawAppend", |b| {
        b.iter_custom(|iters| {
            (0..iters).map(|round| raw_append(documents(round).into_iter().flat_map(|(_, c)| c).collect())).sum()
        });
    });
    group.bench_function("RawMove", |b| {
        b.iter_custom(|iters| {
            (0..iters).map(|round| raw_move(documents(round).into_iter().flat_map(|(_, c)| c).collect())).sum()
        });
    });
    group.finish();
}

fn loaded(name: &str) -> Arc<dyn Design> {
    let design = designs::by_name(name, &config());
    for start in (0..ROWS).step_by(1000) {
        design.add_bulk(
            (start..start + 1000)
                .map(|i| Chunk::new(format!("c{i}"), format!("d{}", i / 8), vector(i as u64, DIM)))
                .collect(),
        );
    }
    design
}

fn search(c: &mut Criterion) {
    let query = vector(u64::MAX / 7, DIM);
    let mut writers = Vec::new();
    for (group_name, with_writer) in [("search_idle", false), ("search_with_writer", true)] {
        let mut group = c.benchmark_group(group_name);
        for name in ["VectorIndex", "MutexIndex", "FaissMutex"] {
            let design = loaded(name);
            let stop = AtomicBool::new(false);
            let started = Instant::now();
            let adds = std::thread::scope(|scope| {
                let writer = with_writer.then(|| {
                    let design = design.clone();
                    let stop = &stop;
                    scope.spawn(move || {
                        let mut i = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            let id = format!("w{i}");
                            design.add_chunk(Chunk::new(id.clone(), id, vector((i + 1) << 40, DIM)));
                            i += 1;
                            std::thread::sleep(Duration::from_micros(500));
                        }
                        i
                    })
                });
                group.bench_function(name, |b| b.iter(|| black_box(design.search(black_box(&query), 10))));
                stop.store(true, Ordering::Relaxed);
                writer.map(|w| w.join().expect("writer"))
            });
            if let Some(adds) = adds {
                let seconds = started.elapsed().as_secs_f64();
                eprintln!(
                    "{group_name}/{name}: the writer added {adds} chunks in {seconds:.1} s ({:.0}/s); {} rows at the end",
                    adds as f64 / seconds,
                    design.len()
                );
                writers.push(serde_json::json!({
                    "design": name, "adds": adds, "seconds": seconds, "rows_before": ROWS, "rows_after": design.len(),
                }));
            }
        }
        group.finish();
    }
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        let dir = std::path::Path::new(&home).join("search_with_writer");
        std::fs::create_dir_all(&dir).expect("criterion dir");
        std::fs::write(dir.join("writer.json"), serde_json::to_vec_pretty(&writers).expect("json")).expect("write");
    }
}

fn persist(c: &mut Criterion) {
    let mut group = c.benchmark_group("persist_full");
    group.sample_size(10);
    let scratch = tempfile::tempdir().expect("scratch");
    for name in ["VectorIndex", "MutexIndex", "FaissMutex"] {
        let design = loaded(name);
        let bytes = design.persist(&scratch.path().join(format!("{name}-probe")));
        group.throughput(Throughput::Bytes(bytes));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let dir = tempfile::tempdir_in(scratch.path()).expect("dir");
                        let started = Instant::now();
                        design.persist(dir.path());
                        started.elapsed()
                    })
                    .sum()
            });
        });
    }
    group.finish();
}

fn search_head(c: &mut Criterion) {
    const HEAD_ROWS: usize = 8000;
    let query = vector(u64::MAX / 7, DIM);
    let options = SearchOptions::k(10);
    let mut group = c.benchmark_group("search_head");
    for (name, seal) in [("in the head", false), ("sealed", true)] {
        let index = VectorIndex::new(config().head_capacity(HEAD_ROWS + 1).background(false)).expect("config");
        let chunks = (0..HEAD_ROWS).map(|i| Chunk::new(format!("c{i}"), format!("d{}", i / 8), vector(i as u64, DIM)));
        index.add_chunks(chunks.collect()).expect("add");
        if seal {
            index.force_merge();
        }
        let head_rows = recall::head_rows(&index);
        assert_eq!(head_rows == HEAD_ROWS, !seal, "{name}: {head_rows} rows in the head");
        group
            .bench_function(name, |b| b.iter(|| black_box(index.search(black_box(&query), &options).expect("search"))));
    }
    group.finish();
}

criterion_group!(benches, add_throughput, ingest, search, search_head, persist);
criterion_main!(benches);
