//! Adds across a growth step after a bulk load.

use std::fmt::Write as _;

use super::*;
use crate::growth;

/// Writes this section into the report.
pub(super) fn write(report: &mut Report<'_>) -> Result<(), Error> {
    let Report { out, md, .. } = report;
    if let Some(g) = read::<Vec<growth::Outcome>>(&out.join("growth.json"))? {
        writeln!(md, "## Adds across a growth step (`vecindex-bench growth`)\n")?;
        if let Some(first) = g.first() {
            writeln!(
                md,
                "{} single adds right after a bulk load of {} x {} rows, one writer. The windows start when an add finishes, so a stall of the very first add (where a flat FAISS index reallocates) shows in the max, not in the slowest window.\n",
                first.adds, first.rows, first.dim
            )?;
        }
        writeln!(
            md,
            "| design | adds/s | slowest 10 ms window after the first add (adds/s) | p50 (µs) | p99.9 (µs) | max (ms) |"
        )?;
        writeln!(md, "|---|---:|---:|---:|---:|---:|")?;
        for o in &g {
            writeln!(
                md,
                "| {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} |",
                o.design,
                o.adds_per_s,
                o.slowest_window_adds_per_s,
                o.latency.p50_us,
                o.latency.p999_us,
                o.latency.max_us / 1e3
            )?;
        }
        writeln!(md)?;
    }
    Ok(())
}
