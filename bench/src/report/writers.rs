//! Writer latency with and without a concurrent persist loop.

use std::fmt::Write as _;

use super::plots::plot_cdf;
use super::*;
use crate::writers;

/// Writes this section into the report.
pub(super) fn write(report: &mut Report<'_>) -> Result<(), Error> {
    let Report { out, plots_dir, plots_rel, md, targets, .. } = report;
    if let Some(runs) = read::<Vec<writers::Run>>(&out.join("writers.json"))? {
        let first = &runs[0];
        writeln!(md, "## Writer latency during persist (`vecindex-bench writers`)\n")?;
        writeln!(
            md,
            "{} writer(s) adding single 384-d chunks at {:.0}/s each for {} s after a preload of {} rows; \"with persist\": one more thread persists in a loop. Latency of each `add_chunk` call, in µs.\n",
            first.writers, first.rate_per_writer, first.seconds, first.preload
        )?;
        writeln!(
            md,
            "| design | persist | adds | p50 | p99 | p99.9 | max | calls > 1 ms (preempted) | persists (p50 ms) |"
        )?;
        writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|")?;
        for r in &runs {
            let l = &r.latency;
            writeln!(
                md,
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} ({}) | {} |",
                r.design,
                if r.persist { "yes" } else { "no" },
                r.adds,
                l.p50_us,
                l.p99_us,
                l.p999_us,
                l.max_us,
                r.slow_calls,
                r.slow_calls_preempted,
                r.persist_latency.as_ref().map_or("-".into(), |p| format!("{} ({:.1})", r.persists, p.p50_us / 1e3))
            )?;
        }
        plot_cdf(&runs, &plots_dir.join("writer-latency.svg"))?;
        writeln!(md, "\n![writer latency]({plots_rel}/writer-latency.svg)\n")?;
        let get = |design: &str, persist: bool| {
            runs.iter().find(|r| r.design == design && r.persist == persist).map(|r| &r.latency)
        };
        let (with, without, mutex) = (get("VectorIndex", true), get("VectorIndex", false), get("MutexIndex", true));
        targets.push(Target {
            what: "VectorIndex writer p99.9 with persist against without",
            goal: "<= 1.5x".into(),
            measured: with.zip(without).map_or("-".into(), |(w, o)| {
                format!("{:.2}x ({:.1} vs {:.1} µs)", w.p999_us / o.p999_us, w.p999_us, o.p999_us)
            }),
            met: with.zip(without).map(|(w, o)| w.p999_us <= 1.5 * o.p999_us),
            why: "The persister is one more busy thread on a 2-core machine that also runs the index's sealer: the writer-latency table's column of calls over 1 ms says how many of the slow calls were the writer waiting for a core.".into(),
        });
        targets.push(Target {
            what: "writer p99.9 with persist, MutexIndex against VectorIndex",
            goal: ">= 100x".into(),
            measured: with.zip(mutex).map_or("-".into(), |(w, m)| {
                format!("{:.0}x ({:.1} vs {:.1} µs)", m.p999_us / w.p999_us, m.p999_us, w.p999_us)
            }),
            met: with.zip(mutex).map(|(w, m)| m.p999_us >= 100.0 * w.p999_us),
            why: "MutexIndex holds its lock for a whole persist; with a small index on a fast disk its persists, and so its writers' waits, are short.".into(),
        });
        targets.push(Target {
            what: "longest VectorIndex writer stall during persist",
            goal: "< 1 ms".into(),
            measured: with.map_or("-".into(), |w| format!("{:.3} ms", w.max_us / 1e3)),
            met: with.map(|w| w.max_us < 1000.0),
            why: {
                let run = runs.iter().find(|r| r.design == "VectorIndex" && r.persist);
                let counted = run.map_or(String::new(), |r| {
                    format!(
                        "In this run {} of the writer's {} calls took over 1 ms, and {} of those were preempted (the thread's involuntary context switches rose during the call). ",
                        r.slow_calls, r.adds, r.slow_calls_preempted
                    )
                });
                format!(
                    "{counted}A writer that loses its core to the persister, the sealer or the builder for a scheduler slice stalls for that long whatever the index does: on 2 cores, with those three threads busy, a slice of a few ms now and then is the scheduler's, and only a machine with a core to spare for each (or a writer pinned to its own) would take it away. The slow calls that were not preempted were timed by phase in an earlier round, which found a shard of the chunk-id map doubling its hash table on the writer whose insert filled it; the sealer now grows shards that are about to fill off the write path (`grow_ahead` in src/maps/grow.rs). A burst of adds faster than the sealer polls (the growth benchmark adds back to back) can still grow a shard on the writer; a hash map that resizes incrementally would remove those."
                )
            },
        });
    }
    Ok(())
}
