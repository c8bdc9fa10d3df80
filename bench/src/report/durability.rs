//! What each durability level of the write-ahead log costs writers (`vecindex-bench durability`).

use std::fmt::Write as _;

use super::*;
use crate::durability;

/// Writes this section into the report, with its targets.
pub(super) fn write(report: &mut Report<'_>) -> Result<(), Error> {
    let Report { out, md, targets, .. } = report;
    let Some(o) = read::<durability::Outcome>(&out.join("durability.json"))? else { return Ok(()) };
    writeln!(md, "## Durability levels (`vecindex-bench durability`)\n")?;
    write!(
        md,
        "Writers add to an index bound to a directory on this machine's disk (`VectorIndex::create`, exact segments, {}-d vectors), each level for {} s per row, one after another in the same run: single chunks (`add_chunks` of one) or documents of 50 chunks (`add_document`), from 1 or 4 threads. Latency of each call; \"against none\" compares with the row of the same workload and threads without a log. The disk's own `fdatasync` after a 4 KiB append, in the same directory and the same run: p50 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs.",
        o.dim, o.seconds, o.fsync.p50_us, o.fsync.p999_us, o.fsync.max_us
    )?;
    for probe in &o.fsync_batches {
        let workload = probe.workload.as_deref().unwrap_or("-");
        write!(
            md,
            " After a {} KiB append (about a batch of 4 writers' {workload}): p50 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs.",
            probe.bytes / 1024,
            probe.latency.p50_us,
            probe.latency.p999_us,
            probe.latency.max_us
        )?;
    }
    writeln!(md, "\n")?;
    writeln!(
        md,
        "| workload | writers | durability | calls/s | chunks/s | against none | p50 (µs) | p99.9 (µs) | p99.9 against none | max (µs) |"
    )?;
    writeln!(md, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")?;
    let none = |c: &durability::Cell| {
        o.cells.iter().find(|n| n.durability == "none" && n.workload == c.workload && n.writers == c.writers)
    };
    for c in &o.cells {
        let base = none(c);
        let ratio = |a: f64, b: Option<f64>| b.map_or("-".to_owned(), |b| format!("{:.2}x", a / b));
        writeln!(
            md,
            "| {} | {} | {} | {:.0} | {:.0} | {} | {:.1} | {:.1} | {} | {:.0} |",
            c.workload,
            c.writers,
            c.durability,
            c.calls_per_s,
            c.calls_per_s * c.chunks_per_call as f64,
            ratio(c.calls_per_s, base.map(|b| b.calls_per_s)),
            c.latency.p50_us,
            c.latency.p999_us,
            ratio(c.latency.p999_us, base.map(|b| b.latency.p999_us)),
            c.latency.max_us
        )?;
    }
    writeln!(md)?;
    for c in &o.cells {
        let Some(base) = none(c) else { continue };
        let what = format!("{}, {} writer(s)", c.workload, c.writers);
        let throughput = c.calls_per_s / base.calls_per_s;
        let tail = c.latency.p999_us / base.latency.p999_us;
        match c.durability.as_str() {
            "process-crash" => targets.push(Target {
                what: "process-crash durability against none: throughput, and writer p99.9",
                goal: ">= 0.7x, <= 2x".into(),
                measured: format!("{what}: {throughput:.2}x, p99.9 {tail:.2}x ({:.1} vs {:.1} µs)", c.latency.p999_us, base.latency.p999_us),
                met: Some(throughput >= 0.7 && tail <= 2.0),
                why: "a call also encodes its record (its vectors' bytes, 1.5 KiB per 384-d chunk, its ids and a checksum) and copies it into the mapped log segment: work in proportion to its bytes, which a call that takes a few microseconds without a log (the p50s above) cannot hide. The pages it copies into are faulted in, and the next segment made, on a helper thread, which on 2 cores competes with the writers and the index's background work for a core; with a core to spare that work leaves the writers' path.".into(),
            }),
            "power-loss" if c.writers == 4 => {
                let (fsync_bytes, fsync) = o.fsync_for(&c.workload);
                let vs_fsync = c.latency.p999_us / fsync.p999_us;
                targets.push(Target {
                    what: "power-loss durability with 4 writers against none (group commit)",
                    goal: ">= 0.3x".into(),
                    measured: format!("{what}: {throughput:.2}x ({:.0} vs {:.0} calls/s)", c.calls_per_s, base.calls_per_s),
                    met: Some(throughput >= 0.3),
                    why: "a call returns only after an fdatasync that began after its record was written. The 4 writers share each one, so at most 4 calls complete per fsync: at this disk's fsync p50 (above) that bounds 4 writers to about 4 / p50 calls per second, where a write path without a log completes a call in microseconds. More writers per fsync raise the bound in proportion; a disk whose fsync returns in tens of microseconds would lift it further.".into(),
                });
                targets.push(Target {
                    what: "power-loss writer p99.9 against the disk's fsync p99.9 at the batch's size (same run)",
                    goal: "<= 3x".into(),
                    measured: format!(
                        "{what}: {vs_fsync:.2}x ({:.0} vs {:.0} µs for {} KiB)",
                        c.latency.p999_us,
                        fsync.p999_us,
                        fsync_bytes / 1024
                    ),
                    met: Some(vs_fsync <= 3.0),
                    why: "a writer that arrives while a batch is being synced waits for that fsync and then for its own: two fsyncs of the batch's size at best. With 4 writers on 2 cores a writer also waits for a core, and the index's background work competes with them: without any log, the none row of the same workload and writers shows that wait alone, against the fsync tail here.".into(),
                });
            }
            _ => {}
        }
    }
    Ok(())
}
