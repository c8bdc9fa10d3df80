//! The seed's own benchmark: index 100 documents of about 50 KB, chunk by chunk, while a
//! persist runs concurrently after every 20 documents; report the total time, the mean
//! `add_chunk` time, the persist time, and the runs that failed, over many runs.
//!
//! A run fails when any call returns an error or panics, or when the directory it leaves does not
//! open to exactly the documents and chunks that were added (strict open, every document and
//! chunk present, nothing for `reconcile_mappings` to repair). The seed's Python system failed 3
//! runs in 100 before its fix ("dictionary changed size during iteration").

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vecindex::embed::Embedder;
use vecindex::{Chunk, Index, IndexConfig, MutexIndex, OpenOptions, VectorIndex};

use crate::latency::{Latencies, Summary};
use crate::median;

pub struct Params {
    pub docs: usize,
    pub doc_bytes: usize,
    pub persist_every: usize,
    pub runs: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub design: String,
    pub embedder: String,
    pub runs: usize,
    pub failures: usize,
    pub first_failure: Option<String>,
    pub docs: usize,
    pub persist_every: usize,
    pub chunks_per_run: usize,
    pub corpus_bytes: usize,
    /// Median over runs of the wall time of a run (embedding included).
    pub total_s_median: f64,
    pub total_s_max: f64,
    /// The index call alone, every call of every run.
    pub add_chunk: Summary,
    /// Embedding, per chunk (batched per document).
    pub embed_us_per_chunk: f64,
    /// The concurrent persists (the final one excluded).
    pub persist: Summary,
}

/// What one run measured.
struct RunStats {
    total: Duration,
    add: Latencies,
    embed: Duration,
    persist: Latencies,
}

fn one_run<I: Index + 'static>(
    make: &dyn Fn() -> I,
    docs: &[Vec<String>],
    embedder: &dyn Embedder,
    params: &Params,
    dir: &Path,
) -> Result<RunStats, String> {
    let index = make();
    let started = Instant::now();
    let mut add = Latencies::default();
    let mut embed = Duration::ZERO;
    let (signal, signals) = mpsc::channel::<()>();
    let persists = std::thread::scope(|scope| -> Result<Latencies, String> {
        let index = &index;
        let persister = scope.spawn(move || -> Result<Latencies, String> {
            let mut durations = Latencies::default();
            for () in signals {
                let t = Instant::now();
                index.persist(dir).map_err(|e| format!("persist: {e}"))?;
                durations.record(t.elapsed());
            }
            Ok(durations)
        });
        for (d, chunks) in docs.iter().enumerate() {
            let texts: Vec<&str> = chunks.iter().map(String::as_str).collect();
            let t = Instant::now();
            let vectors = embedder.embed(&texts).map_err(|e| format!("embed: {e}"))?;
            embed += t.elapsed();
            for (c, (text, vector)) in chunks.iter().zip(vectors).enumerate() {
                let chunk = Chunk::new(format!("doc{d}#{c}"), format!("doc{d}"), vector).with_text(text.clone());
                let t = Instant::now();
                index.add_chunk(chunk).map_err(|e| format!("add_chunk: {e}"))?;
                add.record(t.elapsed());
            }
            if (d + 1) % params.persist_every == 0 {
                let _ = signal.send(());
            }
        }
        drop(signal);
        persister.join().map_err(|_| "persist thread panicked".to_owned())?
    })?;
    index.persist(dir).map_err(|e| format!("final persist: {e}"))?;
    let total = started.elapsed();
    drop(index);
    verify::<I>(docs, dir)?;
    Ok(RunStats { total, add, embed, persist: persists })
}

/// The directory holds exactly what was added.
fn verify<I: Index>(docs: &[Vec<String>], dir: &Path) -> Result<(), String> {
    let (index, report) =
        I::open_with_options(dir, &OpenOptions::new().strict(true)).map_err(|e| format!("open: {e}"))?;
    if !report.is_clean() {
        return Err(format!("open found damage: {report:?}"));
    }
    let chunks: usize = docs.iter().map(Vec::len).sum();
    if index.len() != chunks || index.document_ids().len() != docs.len() {
        return Err(format!(
            "reopened {} chunks of {} documents, added {chunks} of {}",
            index.len(),
            index.document_ids().len(),
            docs.len()
        ));
    }
    for (d, doc) in docs.iter().enumerate() {
        if index.chunk_ids(&format!("doc{d}")).len() != doc.len() {
            return Err(format!("doc{d} reopened with missing chunks"));
        }
    }
    match index.reconcile_mappings() {
        0 => Ok(()),
        n => Err(format!("reconcile repaired {n} entries")),
    }
}

/// Runs the benchmark for both library designs with `embedder`.
pub fn run(params: &Params, embedder: &dyn Embedder, scratch: &Path) -> std::io::Result<Vec<Outcome>> {
    let texts = crate::corpus::documents(Path::new(crate::corpus::PYDOC), params.docs, params.doc_bytes)?;
    let corpus_bytes = texts.iter().map(String::len).sum();
    let docs: Vec<Vec<String>> = texts.iter().map(|t| crate::corpus::chunks(t)).collect();
    let chunks_per_run = docs.iter().map(Vec::len).sum();
    let config = IndexConfig::new(embedder.dim());
    let mut outcomes = Vec::new();
    let vector_index = || VectorIndex::new(config.clone()).expect("config");
    let mutex_index = || MutexIndex::new(config.clone()).expect("config");
    for name in ["VectorIndex", "MutexIndex"] {
        let (mut totals, mut add, mut persist, mut embed, mut failures, mut first_failure) =
            (Vec::new(), Latencies::default(), Latencies::default(), Duration::ZERO, 0, None);
        for _ in 0..params.runs {
            let dir = tempfile::tempdir_in(scratch)?;
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match name {
                "VectorIndex" => one_run(&vector_index, &docs, embedder, params, dir.path()),
                _ => one_run(&mutex_index, &docs, embedder, params, dir.path()),
            }))
            .unwrap_or_else(|_| Err("panicked".to_owned()));
            match result {
                Ok(stats) => {
                    totals.push(stats.total.as_secs_f64());
                    add.merge(&stats.add);
                    persist.merge(&stats.persist);
                    embed += stats.embed;
                }
                Err(e) => {
                    failures += 1;
                    first_failure.get_or_insert(e);
                }
            }
        }
        let ok_runs = (params.runs - failures).max(1);
        let outcome = Outcome {
            design: name.to_owned(),
            embedder: embedder.name().to_owned(),
            runs: params.runs,
            failures,
            first_failure,
            docs: docs.len(),
            persist_every: params.persist_every,
            chunks_per_run,
            corpus_bytes,
            total_s_max: totals.iter().copied().fold(0.0, f64::max),
            total_s_median: median(totals),
            add_chunk: add.summary(),
            embed_us_per_chunk: embed.as_secs_f64() * 1e6 / (ok_runs * chunks_per_run.max(1)) as f64,
            persist: persist.summary(),
        };
        println!(
            "  {:<12} {:<14} {} runs, {} failed: total {:.2} s (median), add_chunk mean {:.1} µs p99 {:.1} µs, embed {:.1} µs/chunk, persist p50 {:.1} ms max {:.1} ms",
            outcome.design,
            outcome.embedder,
            outcome.runs,
            outcome.failures,
            outcome.total_s_median,
            outcome.add_chunk.mean_us,
            outcome.add_chunk.p99_us,
            outcome.embed_us_per_chunk,
            outcome.persist.p50_us / 1e3,
            outcome.persist.max_us / 1e3,
        );
        if let Some(e) = &outcome.first_failure {
            println!("    first failure: {e}");
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}
