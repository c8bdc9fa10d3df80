//! The seed's benchmark, and the seed's published figures beside it.

use std::fmt::Write as _;

use super::*;
use crate::seed;

/// Writes this section into the report.
pub(super) fn write(report: &mut Report<'_>) -> Result<(), Error> {
    let Report { out, md, .. } = report;
    let seeds: Vec<seed::Outcome> =
        matching(out, "seed-").iter().filter_map(|p| read::<Vec<seed::Outcome>>(p).ok().flatten()).flatten().collect();
    if !seeds.is_empty() {
        writeln!(md, "## The seed's benchmark (`vecindex-bench seed`)\n")?;
        writeln!(
            md,
            "Documents of about 50 KB cut from the python3.11-doc sources, chunked as `vecindex ingest` does, embedded per document, added chunk by chunk with `add_chunk` while a persist runs concurrently after every N documents; then a final persist, and a strict reopen that must find every chunk. The seed's Python system: 32.1 s total, 48.2 ms mean add_chunk (embedding included), 120 ms persist, 3 crashes in 100 runs.\n"
        )?;
        writeln!(
            md,
            "| design | embedder | docs | persist every | chunks | runs | failed | total (median) | add_chunk mean / p99 (µs) | embedding per chunk (µs) | persist p50 / max (ms) |"
        )?;
        writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for s in &seeds {
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {:.2} s | {:.1} / {:.1} | {:.0} | {:.1} / {:.1} |",
                s.design,
                s.embedder,
                s.docs,
                s.persist_every,
                s.chunks_per_run,
                s.runs,
                s.failures,
                s.total_s_median,
                s.add_chunk.mean_us,
                s.add_chunk.p99_us,
                s.embed_us_per_chunk,
                s.persist.p50_us / 1e3,
                s.persist.max_us / 1e3
            )?;
        }
        writeln!(md)?;
    }
    Ok(())
}
