//! Search cost against rows ingested (`vecindex-bench scaling`, `scripts/bench/scaling_peers.py`).

use std::fmt::Write as _;

use super::plots::{Curve, plot_scaling};
use super::recall::at_recall;
use super::*;
use crate::scaling;

/// hnswlib's sweep at each size, from `scaling-peers-<name>.json`: (rows, [(recall, QPS)]).
fn peer_sizes(peers: &Value) -> Vec<(usize, Vec<(f64, f64)>)> {
    peers["sizes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let rows = s["rows"].as_u64()? as usize;
            let points = s["sweep"]
                .as_array()?
                .iter()
                .filter_map(|p| Some((p["recall_at_10"].as_f64()?, p["single_qps"].as_f64()?)))
                .collect();
            Some((rows, points))
        })
        .collect()
}

/// Writes this section into the report, with its target per dataset.
pub(super) fn write(report: &mut Report<'_>) -> Result<(), Error> {
    let Report { out, md, targets, plots_dir, plots_rel, .. } = report;
    let outcomes: Vec<scaling::Outcome> = matching(out, "scaling-")
        .iter()
        .filter(|p| !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("scaling-peers-")))
        .filter_map(|path| read::<scaling::Outcome>(path).transpose())
        .collect::<Result<_, _>>()?;
    if outcomes.is_empty() {
        return Ok(());
    }
    writeln!(md, "## Search cost against rows (`vecindex-bench scaling`)\n")?;
    writeln!(
        md,
        "One index grows through the dataset (1 000 rows per call, the background worker on, never force-merged); at each size, once the worker has taken every row into the graph, the first queries sweep efSearch, with recall against exact search over the rows added so far. hnswlib (M=16, efConstruction 80) is built over the same first rows and queried the same way (`scripts/bench/scaling_peers.py`). Each cell: QPS at the fastest setting reaching recall@10 >= 0.95 (its recall in brackets).\n"
    )?;
    for o in &outcomes {
        let name = &o.dataset.name;
        let peers: Option<Value> = read(&out.join(format!("scaling-peers-{name}.json")))?;
        let theirs = peers.as_ref().map(peer_sizes).unwrap_or_default();
        writeln!(md, "### {name} ({} queries)\n", o.queries)?;
        writeln!(md, "| rows | vecindex | rows scanned | hnswlib M16 | vecindex / hnswlib |")?;
        writeln!(md, "|---:|---:|---:|---:|---:|")?;
        let show = |p: Option<(f64, f64)>| p.map_or("not reached".to_owned(), |p| format!("{:.0} ({:.3})", p.1, p.0));
        let (mut ours_curve, mut theirs_curve) = (Vec::new(), Vec::new());
        for size in &o.sizes {
            let ours = at_recall(&size.sweep.iter().map(|p| (p.recall_at_10, p.qps)).collect::<Vec<_>>(), 0.95);
            let peer = theirs.iter().find(|(rows, _)| *rows == size.rows).and_then(|(_, pts)| at_recall(pts, 0.95));
            let ratio = ours.zip(peer).map_or("-".to_owned(), |(a, b)| format!("{:.2}x", a.1 / b.1));
            writeln!(md, "| {} | {} | {} | {} | {ratio} |", size.rows, show(ours), size.scanned_rows, show(peer))?;
            ours_curve.extend(ours.map(|p| (size.rows as f64, p.1)));
            theirs_curve.extend(peer.map(|p| (size.rows as f64, p.1)));
        }
        let plot = format!("scaling-{name}.svg");
        let curves = [
            Curve { label: "vecindex (grown, never merged)".into(), points: ours_curve.clone() },
            Curve { label: "hnswlib M16".into(), points: theirs_curve.clone() },
        ];
        plot_scaling(&curves, &format!("QPS at recall 0.95 against rows on {name}"), &plots_dir.join(&plot))?;
        writeln!(md, "\n![QPS against rows on {name}]({plots_rel}/{plot})\n")?;
        // How much slower the largest size is than the smallest, against hnswlib's, whose HNSW
        // search cost grows logarithmically; over the sizes where both reached the recall, so
        // that both slowdowns span the same rows.
        let common: Vec<(f64, f64, f64)> = ours_curve
            .iter()
            .filter_map(|&(rows, qps)| theirs_curve.iter().find(|p| p.0 == rows).map(|p| (rows, qps, p.1)))
            .collect();
        let span = common.first().zip(common.last()).filter(|(a, b)| a.0 < b.0);
        let (ours, peer) = (span.map(|(a, b)| a.1 / b.1), span.map(|(a, b)| a.2 / b.2));
        let measured = match span {
            Some((first, last)) => {
                let beyond = ours_curve.last().filter(|p| p.0 > last.0).map_or(String::new(), |p| {
                    format!(" (hnswlib did not reach recall 0.95 beyond; vecindex {:.2}x to {:.0})", first.1 / p.1, p.0)
                });
                format!(
                    "{name}: {:.2}x slower from {:.0} to {:.0} rows; hnswlib {:.2}x{beyond}",
                    first.1 / last.1,
                    first.0,
                    last.0,
                    first.2 / last.2
                )
            }
            None => format!("{name}: recall 0.95 not reached by both at two sizes"),
        };
        targets.push(Target {
            what: "search cost against rows ingested grows at most logarithmically (as hnswlib's)",
            goal: "slowdown <= 1.25x hnswlib's".into(),
            measured,
            met: ours.zip(peer).map(|(a, b)| a <= 1.25 * b),
            why: format!(
                "On {name}: every row of the index is in one graph (the rows-scanned column is what the inserter had not reached), so what grows faster than the graph's walk is the work per query around it, which the live section itemizes."
            ),
        });
    }
    Ok(())
}
