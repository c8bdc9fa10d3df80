//! HNSW builds over repeated vectors, raw FAISS against vecindex.

use std::fmt::Write as _;

use super::*;
use crate::duplicates;

/// Writes this section into the report.
pub(super) fn write(report: &mut Report<'_>) -> Result<(), Error> {
    let Report { out, md, .. } = report;
    if let Some(d) = read::<Vec<duplicates::Outcome>>(&out.join("duplicates.json"))? {
        writeln!(md, "## HNSW builds over repeated vectors (`vecindex-bench duplicates`)\n")?;
        writeln!(
            md,
            "HNSW32 (efConstruction {}) over {} chunks of the python3.11-doc corpus embedded by the hashing embedder (384-d). In the repeating patterns every other row copies one of {} boilerplate chunks, exactly or with noise of 1e-5 per component (the same text embedded in another batch). Raw FAISS adds every row in one call; vecindex builds a segment with one graph node per distinct vector (`src/segment/groups.rs`). Both on the build's default OpenMP threads, in the same run.\n",
            vecindex::SegmentIndex::default().ef_construction,
            d.first().map_or(0, |o| o.rows),
            duplicates::BOILERPLATE
        )?;
        writeln!(md, "| rows | graph nodes (vecindex) | raw FAISS build (s) | vecindex build (s) | raw / vecindex |")?;
        writeln!(md, "|---|---:|---:|---:|---:|")?;
        for o in &d {
            writeln!(
                md,
                "| {} | {} | {:.2} | {:.2} | {:.1}x |",
                o.pattern,
                o.nodes,
                o.raw_faiss_s,
                o.vecindex_s,
                o.raw_faiss_s / o.vecindex_s
            )?;
        }
        writeln!(md)?;
    }
    Ok(())
}
