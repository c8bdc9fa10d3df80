//! The README's first command: concurrent indexing while persisting, then reload and query.
//!
//! Four writer threads add, replace and remove synthetic documents while the main thread
//! persists five times. The same run is then repeated on the baseline `MutexIndex` (one lock,
//! held during persist) to show what the writers feel in each design. Finally the last snapshot
//! is reopened, checked against the live index, and queried.
//!
//! The embedding here is a toy hashing of words into 64 buckets, enough to make related text
//! land near each other; the real embedders (hashing and MiniLM) come with the CLI.
//!
//! Run: `cargo run --release --example demo [INDEX_DIR]`

#![allow(clippy::disallowed_types)] // tests drive the index from std threads; the shim rule is the library's

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use vecindex::{Chunk, Index, IndexConfig, MutexIndex, SearchOptions, VectorIndex};

const DIM: usize = 64;
const WRITERS: usize = 4;
const DOCS_PER_WRITER: usize = 4000;
const CHUNKS_PER_DOC: usize = 4;

const TOPICS: [&[&str]; 6] = [
    &["lock", "mutex", "thread", "atomic", "race", "wait", "contention", "deadlock"],
    &["vector", "embedding", "cosine", "nearest", "neighbor", "similarity", "dimension", "index"],
    &["disk", "fsync", "rename", "crash", "snapshot", "durable", "manifest", "checksum"],
    &["python", "asyncio", "coroutine", "event", "loop", "await", "task", "gather"],
    &["http", "server", "request", "route", "json", "latency", "client", "socket"],
    &["tokenizer", "model", "weights", "bert", "attention", "layer", "pooling", "normalize"],
];

/// Feature hashing of lower-cased words, L2-normalized by the index (cosine).
fn embed(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; DIM];
    for word in text.split_whitespace() {
        let mut h = DefaultHasher::new();
        word.to_lowercase().hash(&mut h);
        let x = h.finish();
        v[(x % DIM as u64) as usize] += if x & (1 << 63) == 0 { 1.0 } else { -1.0 };
    }
    if v.iter().all(|&x| x == 0.0) {
        v[0] = 1.0;
    }
    v
}

/// A chunk of text about one topic, deterministic in (doc, chunk, version).
fn chunk_text(doc: usize, chunk: usize, version: usize) -> String {
    let topic = TOPICS[(doc + chunk) % TOPICS.len()];
    let mut seed = (doc * 31 + chunk * 7 + version * 131) as u64;
    (0..12)
        .map(|_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            topic[(seed >> 33) as usize % topic.len()]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn document(writer: usize, doc: usize, version: usize) -> (String, Vec<Chunk>) {
    let doc_id = format!("w{writer}/doc{doc}");
    let chunks = (0..CHUNKS_PER_DOC)
        .map(|c| {
            let text = chunk_text(doc, c, version);
            Chunk::new(format!("{doc_id}#{c}"), &doc_id, embed(&text))
                .with_text(text)
                .with_meta("version", version.to_string())
        })
        .collect();
    (doc_id, chunks)
}

struct RunReport {
    elapsed: Duration,
    calls: usize,
    slowest_call: Duration,
    slowest_call_during_persist: Duration,
    persists: Vec<vecindex::PersistReport>,
}

/// Four writers work through their documents (every 10th is later replaced, every 25th removed)
/// while this thread persists into `dir` again and again until they are done.
fn run(index: Arc<dyn Index>, dir: &std::path::Path) -> RunReport {
    let persisting = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (index, persisting, done) = (index.clone(), persisting.clone(), done.clone());
            std::thread::spawn(move || {
                let (mut calls, mut slowest, mut slowest_in_persist) = (0, Duration::ZERO, Duration::ZERO);
                let mut timed = |f: &mut dyn FnMut()| {
                    let during = persisting.load(Ordering::Relaxed);
                    let t = Instant::now();
                    f();
                    let took = t.elapsed();
                    calls += 1;
                    slowest = slowest.max(took);
                    if during || persisting.load(Ordering::Relaxed) {
                        slowest_in_persist = slowest_in_persist.max(took);
                    }
                };
                for d in 0..DOCS_PER_WRITER {
                    let (doc_id, chunks) = document(w, d, 0);
                    timed(&mut || index.add_document(&doc_id, chunks.clone()).expect("add"));
                    if d % 10 == 9 {
                        let (old, chunks) = document(w, d - 5, 1);
                        timed(&mut || index.add_document(&old, chunks.clone()).expect("replace"));
                    }
                    if d % 25 == 24 {
                        timed(&mut || {
                            index.remove_document(&format!("w{w}/doc{}", d - 20)).expect("remove");
                        });
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                (calls, slowest, slowest_in_persist)
            })
        })
        .collect();
    let total = WRITERS * DOCS_PER_WRITER;
    let mut persists = Vec::new();
    while done.load(Ordering::Relaxed) < total {
        std::thread::sleep(Duration::from_millis(20));
        persisting.store(true, Ordering::Relaxed);
        let report = index.persist(dir).expect("persist");
        persisting.store(false, Ordering::Relaxed);
        persists.push(report);
    }
    let mut out = RunReport {
        elapsed: Duration::ZERO,
        calls: 0,
        slowest_call: Duration::ZERO,
        slowest_call_during_persist: Duration::ZERO,
        persists,
    };
    for w in writers {
        let (calls, slowest, in_persist) = w.join().expect("writer");
        out.calls += calls;
        out.slowest_call = out.slowest_call.max(slowest);
        out.slowest_call_during_persist = out.slowest_call_during_persist.max(in_persist);
    }
    out.elapsed = started.elapsed();
    out
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() -> vecindex::Result<()> {
    let dir: PathBuf = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("target/demo-index"));
    let config = IndexConfig::new(DIM).head_capacity(1024);
    println!("vecindex demo: {WRITERS} writers x {DOCS_PER_WRITER} documents x {CHUNKS_PER_DOC} chunks, dim {DIM}");
    println!("persisting into {} again and again while they write\n", dir.display());

    // Each run starts from scratch: a new index refuses to persist over another one, so the
    // previous run's snapshots (directories with a MANIFEST) are removed first.
    for sub in ["vector", "mutex"] {
        let previous = dir.join(sub);
        if previous.join("MANIFEST").exists() {
            std::fs::remove_dir_all(&previous)
                .map_err(|e| vecindex::Error::Io { path: previous.clone(), source: e })?;
        }
    }

    let index = Arc::new(VectorIndex::new(config.clone())?);
    let lockfree = run(index.clone(), &dir.join("vector"));
    let baseline = run(Arc::new(MutexIndex::new(config.clone())?), &dir.join("mutex"));

    for (name, r) in [("VectorIndex", &lockfree), ("MutexIndex (baseline)", &baseline)] {
        println!("{name}:");
        for (i, p) in r.persists.iter().enumerate() {
            println!(
                "  persist {}: snapshot at seq {:>6}, {:>6} chunks, {} files / {:.1} MB written ({} reused), {}",
                i + 1,
                p.seq,
                p.rows,
                p.files_written,
                p.bytes_written as f64 / 1e6,
                p.files_reused,
                ms(p.duration)
            );
        }
        println!(
            "  {} writer calls in {}; slowest call {}, slowest call while a persist ran {}",
            r.calls,
            ms(r.elapsed),
            ms(r.slowest_call),
            ms(r.slowest_call_during_persist)
        );
    }

    let last = index.persist(&dir.join("vector"))?;
    let reopened = VectorIndex::open(&dir.join("vector"))?;
    let stats = reopened.stats();
    println!(
        "\nreopened {}: {} chunks in {} documents (live index: {} chunks), {} segments, {} vocabulary terms",
        last.path.display(),
        stats.chunks,
        stats.documents,
        index.len(),
        stats.segments.len(),
        stats.vocabulary_terms
    );
    assert_eq!(stats.chunks, index.len(), "the final snapshot holds every chunk");
    assert_eq!(reopened.document_ids(), index.document_ids());

    for query in ["fsync rename crash durable", "mutex contention deadlock"] {
        println!("\nquery {query:?}:");
        let hits = reopened.search(&embed(query), &SearchOptions::k(3))?;
        for hit in hits {
            let text = reopened.chunk(&hit.chunk_id).map(|c| c.text).unwrap_or_default();
            println!("  {:.3}  {:<18} {}", hit.score, hit.chunk_id, text);
        }
    }
    let top: Vec<String> = reopened.top_terms(5).into_iter().map(|(t, n)| format!("{t} ({n})")).collect();
    println!("\nmost frequent terms: {}", top.join(", "));
    Ok(())
}
