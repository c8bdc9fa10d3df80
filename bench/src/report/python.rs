//! Python threads on the binding against the seed's design.

use std::fmt::Write as _;

use super::*;

/// What python/bench/threads.py writes.
#[derive(serde::Deserialize)]
pub(super) struct PythonThreads {
    pub(super) dataset: String,
    pub(super) rows: usize,
    pub(super) dim: usize,
    pub(super) k: usize,
    pub(super) search_every: usize,
    pub(super) results: Vec<PythonRun>,
}

/// One design's run in [`PythonThreads`].
#[derive(serde::Deserialize)]
pub(super) struct PythonRun {
    pub(super) design: String,
    pub(super) seconds: f64,
    pub(super) preload: usize,
    pub(super) writers: usize,
    pub(super) adds: u64,
    pub(super) searches: u64,
    pub(super) persists: u64,
    pub(super) ops_per_s: f64,
    add_p50_us: f64,
    add_p99_us: f64,
    pub(super) add_max_ms: f64,
    search_p50_us: f64,
    pub(super) search_max_ms: f64,
    persist_p50_ms: f64,
}

/// Writes this section into the report.
pub(super) fn write(report: &mut Report<'_>) -> Result<(), Error> {
    let Report { out, md, .. } = report;
    if let Some(p) = read::<PythonThreads>(&out.join("python-threads.json"))? {
        let first = p.results.first();
        writeln!(md, "## Python threads (`python/bench/threads.py`)\n")?;
        writeln!(
            md,
            "{} Python threads add chunks one at a time through the binding (a search of k = {} every {}th call) while one more thread persists back to back, {:.0} s per design, with {} of the {} x {} rows of {} preloaded. `seed` is the seed's design re-created in Python: a faiss-cpu `IndexFlatIP` and dicts under one `threading.Lock`, held for each add and for the whole persist (searches take it too: a flat FAISS index is not safe to search while another thread adds to it). `vecindex Flat` is the binding with exact FAISS segments, the seed's kind of index; `vecindex HNSW32` the binding with its default segments, whose graphs are built on the index's background thread during the run. Every call of the binding releases the GIL while it is in Rust, and must take it back to return: a call that has finished may wait for the GIL behind the other Python threads (CPython makes the holder hand it over after its switch interval, 5 ms by default), so the binding's worst stall reflects Python's scheduling of five busy Python threads (and the index's own) on two cores rather than the persist.\n",
            first.map_or(0, |r| r.writers),
            p.k,
            p.search_every,
            first.map_or(0.0, |r| r.seconds),
            first.map_or(0, |r| r.preload),
            p.rows,
            p.dim,
            p.dataset
        )?;
        writeln!(
            md,
            "| design | calls/s | adds | searches | add p50 (µs) | add p99 (µs) | writers' worst stall (ms) | search p50 (µs) | slowest search (ms) | persists (p50 ms) |"
        )?;
        writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for r in &p.results {
            writeln!(
                md,
                "| {} | {:.0} | {} | {} | {:.1} | {:.1} | {:.2} | {:.1} | {:.2} | {} ({:.1}) |",
                r.design,
                r.ops_per_s,
                r.adds,
                r.searches,
                r.add_p50_us,
                r.add_p99_us,
                r.add_max_ms,
                r.search_p50_us,
                r.search_max_ms,
                r.persists,
                r.persist_p50_ms
            )?;
        }
        writeln!(md)?;
    }
    Ok(())
}
