//! The live index against itself force-merged (`vecindex-bench live`).

use std::fmt::Write as _;

use super::recall::at_recall;
use super::*;
use crate::live;
use crate::recall::Point;

fn curve(points: &[Point]) -> Vec<(f64, f64)> {
    points.iter().map(|p| (p.recall_at_10, p.qps)).collect()
}

/// Writes this section into the report, with its three targets per dataset.
pub(super) fn write(report: &mut Report<'_>) -> Result<(), Error> {
    let Report { out, md, targets, .. } = report;
    let outcomes: Vec<live::Outcome> = matching(out, "live-")
        .iter()
        .filter_map(|path| read::<live::Outcome>(path).transpose())
        .collect::<Result<_, _>>()?;
    if outcomes.is_empty() {
        return Ok(());
    }
    writeln!(md, "## The live index (`vecindex-bench live`)\n")?;
    writeln!(
        md,
        "{} of the set is loaded with the background worker on; then one writer adds the rest one `add_chunk` at a time at a paced rate, another thread persists once a second, the worker seals, merges and builds, and queries run one at a time over a sweep of efSearch, swept again and again (the sweeps column; for 30 seconds or more in a full run) so that every efSearch meets seals and merges; each point is over all sweeps. Recall is against exact search over the rows acknowledged when each query returned (the dataset's exact top-100 kept to those rows). Then the writer stops, the rest is added, `force_merge` runs and the same sweep runs on one graph. The quiet writer is the same writer alone (no worker, searches or persists). Merge CPU: the background threads' CPU seconds per row they took in, against one raw FAISS HNSW32 build of the whole set.\n",
        outcomes.first().map_or(String::new(), |o| format!("{:.0}%", o.preload as f64 / o.dataset.n as f64 * 100.0))
    )?;
    writeln!(
        md,
        "| data | FAISS | live QPS at recall >= 0.95 | sweeps | shape (segments + head rows) | force-merged QPS | live / merged | writer p99.9 quiet / live (µs) | merge CPU per row / one build's (ms) |"
    )?;
    writeln!(md, "|---|---|---:|---:|---|---:|---:|---:|---:|")?;
    for o in &outcomes {
        let name = &o.dataset.name;
        let live = at_recall(&curve(&o.live), 0.95);
        let merged = at_recall(&curve(&o.merged), 0.95);
        let ratio = live.zip(merged).map(|(l, m)| l.1 / m.1);
        let show = |p: Option<(f64, f64)>| p.map_or("not reached".to_owned(), |p| format!("{:.0} ({:.3})", p.1, p.0));
        let merge_per_row = o.worker_cpu_s * 1e3 / o.worker_rows.max(1) as f64;
        let build_per_row = o.hnsw_build_cpu_s * 1e3 / o.dataset.n.max(1) as f64;
        writeln!(
            md,
            "| {name} ({} x {}) | {} | {} | {} | {} + {} -> {} + {} | {} | {} | {:.0} / {:.0} | {merge_per_row:.3} / {build_per_row:.3} |",
            o.dataset.n,
            o.dataset.dim,
            o.faiss_simd,
            show(live),
            o.live_rounds.max(1),
            o.live_start.segments,
            o.live_start.head_rows,
            o.live_end.segments,
            o.live_end.head_rows,
            show(merged),
            ratio.map_or("-".to_owned(), |r| format!("{r:.2}x")),
            o.writer_quiet.p999_us,
            o.writer_live.p999_us,
        )?;
        targets.push(Target {
            what: "live search QPS at recall >= 0.95 against force-merged",
            goal: ">= 0.9x".into(),
            measured: format!("{name}: {}", ratio.map_or("not reached".to_owned(), |r| format!("{r:.2}x"))),
            met: ratio.map(|r| r >= 0.9),
            why: format!(
                "On {name}: a live query walks the big graph and one per segment sealed since the last absorb, and scans the rows not yet sealed exactly (the shape column); force-merged it walks one graph."
            ),
        });
        let stall = o.writer_live.p999_us / o.writer_quiet.p999_us.max(1e-9);
        targets.push(Target {
            what: "writer p99.9 during search + merge + persist against alone",
            goal: "<= 1.5x".into(),
            measured: format!("{name}: {stall:.2}x"),
            met: Some(stall <= 1.5),
            why: format!(
                "On {name}: the writer shares the cores with the searcher, the persister and the worker's builds; this benchmark does not yet tell a stall of the index from a wait for a core."
            ),
        });
        let cpu = merge_per_row / build_per_row.max(1e-12);
        targets.push(Target {
            what: "background CPU per ingested row against one HNSW build of the final set",
            goal: "<= 2x".into(),
            measured: format!("{name}: {cpu:.2}x"),
            met: Some(cpu <= 2.0),
            why: format!(
                "On {name}: absorbing extends the big graph with each row once; small segments waiting to be absorbed get graphs of their own, and each absorb copies the big graph."
            ),
        });
    }
    writeln!(md)?;
    Ok(())
}
