//! The live index against itself force-merged (`vecindex-bench live`).

use std::fmt::Write as _;

use super::plots::{Curve, plot_recall};
use super::recall::{at_recall, peer_curves};
use super::*;
use crate::live;
use crate::recall::Point;

fn curve(points: &[Point]) -> Vec<(f64, f64)> {
    points.iter().map(|p| (p.recall_at_10, p.qps)).collect()
}

/// Writes this section into the report, with its three targets per dataset.
pub(super) fn write(report: &mut Report<'_>) -> Result<(), Error> {
    let Report { out, md, targets, plots_dir, plots_rel, .. } = report;
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
        "{} of the set is loaded with the background worker on; then one writer adds the rest one `add_chunk` at a time at a paced rate, another thread persists once a second, the worker seals and inserts the new rows into the graph (and rebuilds it when half its rows are dead), and queries run one at a time over a sweep of efSearch, swept again and again (the sweeps column; for 30 seconds or more in a full run) so that every efSearch meets seals and merges; each point is over all sweeps. Recall is against exact search over the rows acknowledged when each query returned (the dataset's exact top-100 kept to those rows). Then the writer and the persister stop, the worker catches up, and the same sweep runs on the index as it is (settled: its segments and dead rows, nobody else on the cores). Then the rest is added, `force_merge` runs (one segment, one FAISS-built graph) and the same sweep runs. The peers are `scripts/peers` on the same data (static, no writer). The shape column: sealed segments + rows scanned exactly (outside the graph), at the start and end of the live phase. The quiet writer is the same writer alone (no worker, searches or persists). Merge CPU: the background threads' CPU seconds per row they took in, against one raw FAISS HNSW32 build of the whole set.\n",
        outcomes.first().map_or(String::new(), |o| format!("{:.0}%", o.preload as f64 / o.dataset.n as f64 * 100.0))
    )?;
    writeln!(
        md,
        "| data | FAISS | live QPS at recall >= 0.95 | sweeps | shape | settled / merged | force-merged QPS | live / merged | hnswlib M16 | hnswlib M32 | faiss-cpu HNSW32 (avx2) | live / hnswlib M16 | merged / hnswlib M16 | writer p99.9 quiet / live (µs) | merge CPU per row / one build's (ms) |"
    )?;
    writeln!(md, "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    let mut plots = Vec::new();
    for o in &outcomes {
        let name = &o.dataset.name;
        let live = at_recall(&curve(&o.live), 0.95);
        let merged = at_recall(&curve(&o.merged), 0.95);
        let settled = at_recall(&curve(&o.settled), 0.95);
        let settled_ratio = settled.zip(merged).map(|(s, m)| s.1 / m.1);
        let peers: Option<Value> = read(&out.join(format!("peers-{name}.json")))?;
        let peer = |prefix: &str| {
            peers.as_ref().and_then(|p| {
                peer_curves(p)
                    .into_iter()
                    .find(|c| c.label.starts_with(prefix))
                    .and_then(|c| at_recall(&c.points, 0.95))
            })
        };
        let (m16, m32, faiss_avx2) =
            (peer("hnswlib HNSW M=16"), peer("hnswlib HNSW M=32"), peer("faiss-cpu HNSW32 (avx2)"));
        let against = |ours: Option<(f64, f64)>| ours.zip(m16).map(|(a, b)| a.1 / b.1);
        let (live_vs_hnswlib, merged_vs_hnswlib) = (against(live), against(merged));
        let mut curves = vec![
            Curve { label: "vecindex live".into(), points: curve(&o.live) },
            Curve { label: "vecindex force-merged".into(), points: curve(&o.merged) },
        ];
        if let Some(p) = &peers {
            curves.extend(
                peer_curves(p)
                    .into_iter()
                    .filter(|c| c.label.starts_with("hnswlib") || c.label.starts_with("faiss-cpu HNSW32 (avx2)")),
            );
        }
        let plot = format!("live-{name}.svg");
        plot_recall(&curves, &format!("Live and force-merged against the peers on {name}"), &plots_dir.join(&plot))?;
        plots.push(format!("![live QPS against recall on {name}]({plots_rel}/{plot})"));
        let ratio = live.zip(merged).map(|(l, m)| l.1 / m.1);
        let show = |p: Option<(f64, f64)>| p.map_or("not reached".to_owned(), |p| format!("{:.0} ({:.3})", p.1, p.0));
        let merge_per_row = o.worker_cpu_s * 1e3 / o.worker_rows.max(1) as f64;
        let build_per_row = o.hnsw_build_cpu_s * 1e3 / o.dataset.n.max(1) as f64;
        writeln!(
            md,
            "| {name} ({} x {}) | {} | {} | {} | {} + {} -> {} + {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} / {:.0} | {merge_per_row:.3} / {build_per_row:.3} |",
            o.dataset.n,
            o.dataset.dim,
            o.faiss_simd,
            show(live),
            o.live_rounds.max(1),
            o.live_start.segments,
            o.live_start.head_rows,
            o.live_end.segments,
            o.live_end.head_rows,
            settled_ratio.map_or("-".to_owned(), |r| format!("{r:.2}x")),
            show(merged),
            ratio.map_or("-".to_owned(), |r| format!("{r:.2}x")),
            show(m16),
            show(m32),
            show(faiss_avx2),
            live_vs_hnswlib.map_or("-".to_owned(), |r| format!("{r:.2}x")),
            merged_vs_hnswlib.map_or("-".to_owned(), |r| format!("{r:.2}x")),
            o.writer_quiet.p999_us,
            o.writer_live.p999_us,
        )?;
        targets.push(Target {
            what: "live search QPS at recall >= 0.95 against force-merged",
            goal: ">= 0.9x".into(),
            measured: format!("{name}: {}", ratio.map_or("not reached".to_owned(), |r| format!("{r:.2}x"))),
            met: ratio.map(|r| r >= 0.9),
            why: format!(
                "On {name}: both walk one graph; live, a query also scans the rows the inserter has not reached yet ({} at the end of the live phase), visits every part of the graph for them ({} segments), checks candidates in segments with deletes against its view, and shares the 2 cores with the writer, the persister and the worker (whose CPU per row is in the table). The same index settled (nobody else on the cores, every row in the graph) gives {} of merged: {}.",
                o.live_end.head_rows,
                o.live_end.segments,
                settled_ratio.map_or("-".to_owned(), |r| format!("{r:.2}x")),
                match settled_ratio {
                    Some(r) if r >= 0.9 => "the shortfall is the work that shares the cores",
                    Some(_) => "the index's shape (segments, dead rows) costs too, not only the shared cores",
                    None => "not measured",
                }
            ),
        });
        for (what, ratio) in [
            ("live search QPS at recall >= 0.95 against hnswlib M16", live_vs_hnswlib),
            ("force-merged search QPS at recall >= 0.95 against hnswlib M16", merged_vs_hnswlib),
        ] {
            targets.push(Target {
                what,
                goal: ">= 1.0x (aim 1.5x)".into(),
                measured: format!("{name}: {}", ratio.map_or("-".to_owned(), |r| format!("{r:.2}x"))),
                met: ratio.map(|r| r >= 1.0),
                why: format!(
                    "On {name}: at this size a query's fixed work (the view, the epoch, re-scoring the k + 16 best candidates exactly and turning them into hits with their ids and metadata) weighs against a short walk, where hnswlib returns bare labels; and hnswlib here is built with -march=native, vecindex for AVX2 only."
                ),
            });
        }
        let stall = o.writer_live.p999_us / o.writer_quiet.p999_us.max(1e-9);
        targets.push(Target {
            what: "writer p99.9 during search + merge + persist against alone",
            goal: "<= 1.5x".into(),
            measured: format!("{name}: {stall:.2}x"),
            met: Some(stall <= 1.5),
            why: format!(
                "On {name}: the writer shares the cores with the searcher, the persister and the worker; this benchmark does not yet tell a stall of the index from a wait for a core."
            ),
        });
        let cpu = merge_per_row / build_per_row.max(1e-12);
        targets.push(Target {
            what: "background CPU per ingested row against one HNSW build of the final set",
            goal: "<= 2x".into(),
            measured: format!("{name}: {cpu:.2}x"),
            met: Some(cpu <= 2.0),
            why: format!(
                "On {name}: the inserter takes each row into the graph once, but once the writer has replaced half the graph's rows (it re-adds rows it added before) the graph is rebuilt whole with FAISS, and while the graph is young it starts again each time it doubles so its 8-bit ranges fit its rows."
            ),
        });
    }
    writeln!(md)?;
    for plot in plots {
        writeln!(md, "{plot}\n")?;
    }
    Ok(())
}
