//! The seed's benchmark, and the seed's published figures beside it.

use std::fmt::Write as _;

use super::*;
use crate::seed;

/// The seed's published figures (Python, FAISS and dicts under one lock, MiniLM embedded inside
/// its `add_chunk`): total, mean add_chunk with embedding included, persist, crashes in 100 runs.
const SEED_TOTAL_S: f64 = 32.1;
const SEED_ADD_MS: f64 = 48.2;
const SEED_PERSIST_MS: f64 = 120.0;
const SEED_CRASHES: usize = 3;
const SEED_RUNS: usize = 100;
const SEED_DOCS: usize = 100;

/// The embedder and the backend that ran it (the name alone does not tell ONNX Runtime from
/// candle; older results have no backend).
fn embedder(s: &seed::Outcome) -> String {
    match s.backend.as_str() {
        "minilm" | "minilm-int8" => format!("{} (ONNX Runtime)", s.embedder),
        "minilm-candle" => format!("{} (candle)", s.embedder),
        _ => s.embedder.clone(),
    }
}

/// `seconds` of a run and its share of the run's wall time ("321.3 s (99.9%)", "20 ms (0.01%)").
fn part(t: &seed::Shares, seconds: f64) -> String {
    let share = 100.0 * t.share(seconds);
    let time = if seconds >= 1.0 { format!("{seconds:.1} s") } else { format!("{:.0} ms", seconds * 1e3) };
    if share >= 1.0 { format!("{time} ({share:.1}%)") } else { format!("{time} ({share:.2}%)") }
}

/// Writes this section into the report.
pub(super) fn write(report: &mut Report<'_>) -> Result<(), Error> {
    let Report { out, md, .. } = report;
    let seeds: Vec<seed::Outcome> =
        matching(out, "seed-").iter().filter_map(|p| read::<Vec<seed::Outcome>>(p).ok().flatten()).flatten().collect();
    if seeds.is_empty() {
        return Ok(());
    }
    writeln!(md, "## The seed's benchmark (`vecindex-bench seed`)\n")?;
    writeln!(
        md,
        "Documents of about 50 KB cut from the python3.11-doc sources, chunked at headings into pieces of at most 1 200 characters (`bench/src/corpus.rs`), embedded per document, added chunk by chunk with `add_chunk` while a persist runs concurrently after every N documents; then a final persist, and a strict reopen that must find every chunk. The seed's Python system published {SEED_TOTAL_S} s total, {SEED_ADD_MS} ms mean add_chunk (embedding included), {SEED_PERSIST_MS:.0} ms persist, {SEED_CRASHES} crashes in {SEED_RUNS} runs: its row is the last, beside these. Its add_chunk embedded the chunk, so its {SEED_ADD_MS} ms compares with \"add_chunk with embedding\" (embedding per chunk plus the mean add_chunk), not with add_chunk alone. MiniLM on ONNX Runtime runs with ONNX Runtime's default threads (one per core); the model is loaded before the first run."
    )?;
    // The totals compare different amounts of embedding when the chunk counts differ: the seed's
    // figures imply its number of add_chunk calls.
    let seed_calls = SEED_TOTAL_S * 1e3 / SEED_ADD_MS;
    if let Some(s) = seeds.iter().find(|s| s.embedder.starts_with("minilm") && s.docs == SEED_DOCS) {
        writeln!(
            md,
            "\n{SEED_TOTAL_S} s at {SEED_ADD_MS} ms a call leaves room for at most {seed_calls:.0} add_chunk calls in the seed's run, about {:.0} chunks a document; the benchmark cuts the 100 documents here into {} chunks ({:.0} a document, at most 1 200 characters each), so a total here embeds about {:.0} times as many chunks: the per-chunk column is the like-for-like one.",
            seed_calls / SEED_DOCS as f64,
            s.chunks_per_run,
            s.chunks_per_run as f64 / s.docs.max(1) as f64,
            s.chunks_per_run as f64 / seed_calls
        )?;
    }
    writeln!(md)?;
    writeln!(
        md,
        "| design | embedder | docs | persist every | chunks | runs | failed | total (median) | add_chunk mean / p99 (µs) | embedding per chunk (ms) | add_chunk with embedding, mean (ms) | concurrent persist mean / max (ms) | final persist, mean (ms) |"
    )?;
    writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for s in &seeds {
        let final_persist = s.shares.as_ref().map_or("–".to_owned(), |t| format!("{:.1}", t.final_persist_s * 1e3));
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} s | {:.1} / {:.1} | {:.3} | {:.3} | {:.1} / {:.1} | {final_persist} |",
            s.design,
            embedder(s),
            s.docs,
            s.persist_every,
            s.chunks_per_run,
            s.runs,
            s.failures,
            s.total_s_median,
            s.add_chunk.mean_us,
            s.add_chunk.p99_us,
            s.embed_us_per_chunk / 1e3,
            s.add_with_embed_us() / 1e3,
            s.persist.mean_us / 1e3,
            s.persist.max_us / 1e3
        )?;
    }
    writeln!(
        md,
        "| the seed (published) | MiniLM | {SEED_DOCS} | 20 | – | {SEED_RUNS} | {SEED_CRASHES} | {SEED_TOTAL_S:.2} s | – | – | {SEED_ADD_MS:.1} | {SEED_PERSIST_MS:.0} | – |\n"
    )?;
    for s in seeds.iter().filter(|s| s.first_failure.is_some()) {
        writeln!(
            md,
            "- {} with {}: first failure: {}",
            s.design,
            embedder(s),
            s.first_failure.as_deref().unwrap_or("")
        )?;
    }
    if seeds.iter().any(|s| s.first_failure.is_some()) {
        writeln!(md)?;
    }

    let minilm: Vec<(&seed::Outcome, &seed::Shares)> = seeds
        .iter()
        .filter(|s| s.embedder.starts_with("minilm"))
        .filter_map(|s| s.shares.as_ref().map(|t| (s, t)))
        .collect();
    if minilm.is_empty() {
        return Ok(());
    }
    writeln!(
        md,
        "Where the time of a MiniLM run went: means over a design's runs that succeeded, as time and as a share of the run's wall time (first embedding to the end of the final persist). Embedding (every `embed` call), add_chunk (every call), the final persist, the wait after the last document for the concurrent persists still queued or running, and the rest (making the chunks, the loop) add up to the run: they are the writer's path. The concurrent persists run on their own thread while the writer embeds and adds, so they overlap it and are not part of that sum. The index's background thread (sealing, HNSW builds) shares the cores with ONNX Runtime's threads; ONNX Runtime's threads alone keep the load average near the machine's cores, so a load well above them means other processes took time from the run too, mostly from the embedding.\n"
    )?;
    writeln!(
        md,
        "| design | embedder | docs | run (s) | embedding | add_chunk | final persist | waiting for the concurrent persists | other | concurrent persists (overlapping) | load average, 1 / 5 min, at the end |"
    )?;
    writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for (s, t) in minilm {
        let load = s.loadavg.map_or("–".to_owned(), |[one, five, _]| format!("{one:.1} / {five:.1}"));
        writeln!(
            md,
            "| {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {load} |",
            s.design,
            embedder(s),
            s.docs,
            t.wall_s,
            part(t, t.embed_s),
            part(t, t.index_s),
            part(t, t.final_persist_s),
            part(t, t.persist_wait_s),
            part(t, t.other_s()),
            part(t, t.concurrent_persist_s)
        )?;
    }
    writeln!(md)?;
    Ok(())
}
