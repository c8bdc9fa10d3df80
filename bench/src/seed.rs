//! The seed's own benchmark: index 100 documents of about 50 KB, chunk by chunk, while a
//! persist runs concurrently after every 20 documents; report the total time, the mean
//! `add_chunk` time, the persist time, and the runs that failed, over many runs; and where a
//! run's wall time went (embedding, indexing, persisting, the rest).
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
    /// The name that selected the embedder (`vecindex::embed::by_name`: `hashing`, `minilm` for
    /// ONNX Runtime, `minilm-int8`, `minilm-candle`), which its own name does not tell apart.
    pub backend: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub design: String,
    pub embedder: String,
    /// The name that selected the embedder (see [`Params::backend`]); empty in older results.
    #[serde(default)]
    pub backend: String,
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
    /// Where a run's wall time went (none in older results).
    #[serde(default)]
    pub shares: Option<Shares>,
    /// The machine's load average over 1, 5 and 15 minutes when the design's last run ended
    /// (none in older results): above the cores the benchmark keeps busy, other processes were
    /// taking time from it.
    #[serde(default)]
    pub loadavg: Option<[f64; 3]>,
}

impl Outcome {
    /// The mean `add_chunk` with the chunk's embedding included, as the seed measured it (it
    /// embedded inside its `add_chunk`): embedding per chunk plus the mean index call.
    pub fn add_with_embed_us(&self) -> f64 {
        self.embed_us_per_chunk + self.add_chunk.mean_us
    }
}

/// Where a run's wall time went: means over the runs that succeeded, in seconds. The writer's
/// path is embedding, indexing, waiting for the last concurrent persist, the final persist and
/// the rest; the concurrent persists run on their own thread, overlapping the writing, so they
/// are reported beside that sum rather than in it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Shares {
    /// The run: from the first embedding to the end of the final persist (the reopen that
    /// checks it excluded).
    pub wall_s: f64,
    /// Every `embed` call (one per document).
    pub embed_s: f64,
    /// Every `add_chunk` call.
    pub index_s: f64,
    /// After the last document: waiting for the concurrent persists still queued or running.
    pub persist_wait_s: f64,
    /// The final persist, on the writer's path.
    pub final_persist_s: f64,
    /// Every concurrent persist, on the persister's thread (overlaps the writing).
    pub concurrent_persist_s: f64,
}

impl Shares {
    /// The rest of the writer's path: making the chunks, the documents' signals, the scope.
    pub fn other_s(&self) -> f64 {
        (self.wall_s - self.embed_s - self.index_s - self.persist_wait_s - self.final_persist_s).max(0.0)
    }

    /// `seconds` as a fraction of the run's wall time.
    pub fn share(&self, seconds: f64) -> f64 {
        if self.wall_s > 0.0 { seconds / self.wall_s } else { 0.0 }
    }

    /// Persisting on the writer's path: the wait for the concurrent persists, then the final one.
    pub fn writer_persist_s(&self) -> f64 {
        self.persist_wait_s + self.final_persist_s
    }
}

/// What one run measured.
struct RunStats {
    total: Duration,
    add: Latencies,
    add_total: Duration,
    embed: Duration,
    persist: Latencies,
    persist_total: Duration,
    persist_wait: Duration,
    final_persist: Duration,
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
    let mut add_total = Duration::ZERO;
    let mut embed = Duration::ZERO;
    let mut persist_wait = Duration::ZERO;
    let (signal, signals) = mpsc::channel::<()>();
    let (persist, persist_total) = std::thread::scope(|scope| -> Result<(Latencies, Duration), String> {
        let index = &index;
        let persister = scope.spawn(move || -> Result<(Latencies, Duration), String> {
            let (mut durations, mut sum) = (Latencies::default(), Duration::ZERO);
            for () in signals {
                let t = Instant::now();
                index.persist(dir).map_err(|e| format!("persist: {e}"))?;
                let took = t.elapsed();
                durations.record(took);
                sum += took;
            }
            Ok((durations, sum))
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
                let took = t.elapsed();
                add.record(took);
                add_total += took;
            }
            if (d + 1) % params.persist_every == 0 {
                let _ = signal.send(());
            }
        }
        drop(signal);
        let t = Instant::now();
        let persists = persister.join().map_err(|_| "persist thread panicked".to_owned())?;
        persist_wait = t.elapsed();
        persists
    })?;
    let t = Instant::now();
    index.persist(dir).map_err(|e| format!("final persist: {e}"))?;
    let final_persist = t.elapsed();
    let total = started.elapsed();
    drop(index);
    verify::<I>(docs, dir)?;
    Ok(RunStats { total, add, add_total, embed, persist, persist_total, persist_wait, final_persist })
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
    // A model loads on its first call: load it before any run is timed, so that the first
    // design's first run does not pay for it.
    embedder.embed(&["warm up"]).map_err(|e| std::io::Error::other(format!("embed: {e}")))?;
    let config = IndexConfig::new(embedder.dim());
    let mut outcomes = Vec::new();
    let vector_index = || VectorIndex::new(config.clone()).expect("config");
    let mutex_index = || MutexIndex::new(config.clone()).expect("config");
    for name in ["VectorIndex", "MutexIndex"] {
        let (mut totals, mut add, mut persist, mut failures, mut first_failure) =
            (Vec::new(), Latencies::default(), Latencies::default(), 0, None);
        let mut sums = Shares::default();
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
                    sums.wall_s += stats.total.as_secs_f64();
                    sums.embed_s += stats.embed.as_secs_f64();
                    sums.index_s += stats.add_total.as_secs_f64();
                    sums.persist_wait_s += stats.persist_wait.as_secs_f64();
                    sums.final_persist_s += stats.final_persist.as_secs_f64();
                    sums.concurrent_persist_s += stats.persist_total.as_secs_f64();
                }
                Err(e) => {
                    failures += 1;
                    first_failure.get_or_insert(e);
                }
            }
        }
        let loadavg = loadavg();
        let ok_runs = (params.runs - failures).max(1);
        let mean = |sum: f64| sum / ok_runs as f64;
        let shares = Shares {
            wall_s: mean(sums.wall_s),
            embed_s: mean(sums.embed_s),
            index_s: mean(sums.index_s),
            persist_wait_s: mean(sums.persist_wait_s),
            final_persist_s: mean(sums.final_persist_s),
            concurrent_persist_s: mean(sums.concurrent_persist_s),
        };
        let outcome = Outcome {
            design: name.to_owned(),
            embedder: embedder.name().to_owned(),
            backend: params.backend.clone(),
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
            embed_us_per_chunk: sums.embed_s * 1e6 / (ok_runs * chunks_per_run.max(1)) as f64,
            persist: persist.summary(),
            shares: Some(shares),
            loadavg,
        };
        print(&outcome);
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// The load average over 1, 5 and 15 minutes (/proc/loadavg).
fn loadavg() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    Some([fields.next()?.ok()?, fields.next()?.ok()?, fields.next()?.ok()?])
}

/// The lines a design's outcome prints.
fn print(outcome: &Outcome) {
    println!(
        "  {:<12} {:<14} {} runs, {} failed: total {:.2} s (median), add_chunk mean {:.1} µs p99 {:.1} µs, embed {:.1} µs/chunk, persist mean {:.1} ms p50 {:.1} ms max {:.1} ms",
        outcome.design,
        outcome.embedder,
        outcome.runs,
        outcome.failures,
        outcome.total_s_median,
        outcome.add_chunk.mean_us,
        outcome.add_chunk.p99_us,
        outcome.embed_us_per_chunk,
        outcome.persist.mean_us / 1e3,
        outcome.persist.p50_us / 1e3,
        outcome.persist.max_us / 1e3,
    );
    println!(
        "    per chunk: embedding {:.3} ms + add_chunk {:.3} ms = {:.3} ms, add_chunk with embedding included (the seed: 48.2 ms)",
        outcome.embed_us_per_chunk / 1e3,
        outcome.add_chunk.mean_us / 1e3,
        outcome.add_with_embed_us() / 1e3,
    );
    if let Some(s) = &outcome.shares {
        let part = |seconds: f64| format!("{seconds:.3} s ({:.1}%)", 100.0 * s.share(seconds));
        println!(
            "    run of {:.2} s (mean): embedding {}, indexing {}, persisting on the writer's path {} (waiting for the concurrent persists {}, final persist {}), other {}; concurrent persists {} in all, overlapping the writing",
            s.wall_s,
            part(s.embed_s),
            part(s.index_s),
            part(s.writer_persist_s()),
            part(s.persist_wait_s),
            part(s.final_persist_s),
            part(s.other_s()),
            part(s.concurrent_persist_s),
        );
    }
    if let Some([one, five, fifteen]) = outcome.loadavg {
        println!("    load average at the end: {one:.2} {five:.2} {fifteen:.2}");
    }
    if let Some(e) = &outcome.first_failure {
        println!("    first failure: {e}");
    }
}
