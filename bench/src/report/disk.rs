//! Persist against dd, incremental persist, and opens.

use std::fmt::Write as _;

use super::*;
use crate::disk;

/// Persist bandwidth as a share of dd's, from the fastest run of each: a run that copies into
/// memory the virtual machine has not touched lately is several times slower, for dd as for a
/// persist, and which runs do varies from one invocation to the next; the fastest runs are the
/// ones it spared. (Older result files without ranges: the medians.)
pub(super) fn bandwidth_share(d: &disk::Outcome) -> f64 {
    if d.persist_range.min_ms > 0.0 && d.dd_range.min_ms > 0.0 {
        d.dd_range.min_ms / d.persist_range.min_ms
    } else {
        d.dd_ms / d.persist_ms
    }
}

/// Writes this section into the report.
pub(super) fn write(report: &mut Report<'_>) -> Result<(), Error> {
    let Report { out, md, targets, .. } = report;
    if let Some(d) = read::<disk::Outcome>(&out.join("disk.json"))? {
        writeln!(md, "## Persist and open (`vecindex-bench disk`)\n")?;
        let mb = d.persist_bytes as f64 / 1e6;
        writeln!(
            md,
            "Full persists into new directories and `dd` runs alternate, {} of each; the table gives the median and the fastest and slowest run. A run that copies into page-cache pages the virtual machine has not touched lately costs several times more, for dd as for a persist, and how many runs that hits varies from one invocation to the next; the bandwidth target compares the fastest run of each.\n",
            d.runs
        )?;
        writeln!(md, "| measure | median | runs |\n|---|---:|---:|")?;
        writeln!(
            md,
            "| full persist, {} x {} ({mb:.1} MB in {} files) | {:.1} ms ({:.0} MB/s) | {} |",
            d.rows,
            d.dim,
            d.persist_files,
            d.persist_ms,
            mb / d.persist_ms * 1e3,
            d.persist_range
        )?;
        writeln!(
            md,
            "| `dd bs=1M conv=fsync` of as many bytes (from a file in the page cache) | {:.1} ms ({:.0} MB/s) | {} |",
            d.dd_ms,
            mb / d.dd_ms * 1e3,
            d.dd_range
        )?;
        writeln!(md, "| MutexIndex full persist (re-encodes everything) | {:.1} ms | |", d.mutex_persist_ms)?;
        writeln!(
            md,
            "| incremental persist after +{} rows (1%) | {} bytes in {} files ({:.2}% of the full persist), {:.1} ms | |\n",
            d.incremental_rows,
            d.incremental_bytes,
            d.incremental_files,
            d.incremental_bytes as f64 * 100.0 / d.persist_bytes as f64,
            d.incremental_ms
        )?;
        writeln!(
            md,
            "Opens, median of {} runs; cold = the directory's files evicted from the page cache first.\n",
            d.runs
        )?;
        writeln!(
            md,
            "| what | MB | cold read of the files (ms) | cold open (ms) | first query (ms) | warm open (ms) | first query (ms) |"
        )?;
        writeln!(md, "|---|---:|---:|---:|---:|---:|---:|")?;
        for o in &d.opens {
            writeln!(
                md,
                "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |",
                o.what,
                o.bytes as f64 / 1e6,
                o.cold_read_ms,
                o.cold_open_ms,
                o.cold_first_query_ms,
                o.warm_open_ms,
                o.warm_first_query_ms
            )?;
        }
        writeln!(md)?;
        targets.push(Target {
            what: "persist bandwidth against dd with fsync",
            goal: ">= 70%".into(),
            measured: format!(
                "{:.0}% (fastest of {} runs each: {:.1} ms against dd's {:.1} ms; medians {:.1} and {:.1} ms)",
                bandwidth_share(&d) * 100.0,
                d.runs,
                d.persist_range.min_ms,
                d.dd_range.min_ms,
                d.persist_ms,
                d.dd_ms
            ),
            met: Some(bandwidth_share(&d) >= 0.7),
            why: "Not the number of fsyncs: the full persist writes few files (the count is in the persist table), each to a temporary file that is fsynced and renamed, as dd's one file is fsynced once. Compare the ranges in the persist table: a run that copies into memory the guest has not touched lately is several times slower, for dd as for a persist.".into(),
        });
        let share = d.incremental_bytes as f64 / d.persist_bytes as f64;
        targets.push(Target {
            what: "incremental persist after +1%, bytes against a full persist",
            goal: "<= 3%".into(),
            measured: format!("{:.2}%", share * 100.0),
            met: Some(share <= 0.03),
            why: "An incremental persist rewrites the head's rows whole (up to head_capacity rows): the smaller the index, the larger that share.".into(),
        });
    }
    Ok(())
}
