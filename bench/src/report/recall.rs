//! Recall and QPS on each dataset against the peers, with the plots and the HNSW targets.

use std::fmt::Write as _;

use super::*;
use serde_json::Value;

use super::plots::{Curve, plot_recall};
use crate::recall;

/// The first point of a sweep at or above `recall`, as (recall, QPS).
pub(super) fn at_recall(points: &[(f64, f64)], recall: f64) -> Option<(f64, f64)> {
    points.iter().copied().filter(|p| p.0 >= recall).fold(None, |best: Option<(f64, f64)>, p| match best {
        Some(b) if b.1 >= p.1 => Some(b),
        _ => Some(p),
    })
}

/// One row of the matched-recall table.
pub(super) struct System {
    pub(super) name: String,
    pub(super) simd: String,
    pub(super) build_s: f64,
    pub(super) size_mib: f64,
    pub(super) points: Vec<(f64, f64)>,
}

pub(super) fn peer_curves(peers: &Value) -> Vec<Curve> {
    let mut curves = Vec::new();
    for result in peers["results"].as_array().into_iter().flatten() {
        let simd = result["simd"].as_str().map(|s| format!(" ({s})")).unwrap_or_default();
        let label = format!(
            "{} {}{}",
            result["library"].as_str().unwrap_or("?"),
            result["index"].as_str().unwrap_or("?"),
            simd
        );
        let points = result["sweep"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p["recall_at_10"].as_f64()?, p["single_qps"].as_f64()?)))
            .collect();
        curves.push(Curve { label, points });
    }
    curves
}

pub(super) fn own_curves(outcome: &recall::Outcome) -> Vec<Curve> {
    outcome
        .configs
        .iter()
        .map(|c| Curve {
            label: format!("{} {}", c.system, c.index),
            points: c.sweep.iter().map(|p| (p.recall_at_10, p.qps)).collect(),
        })
        .collect()
}

/// Writes this section into the report.
pub(super) fn write(report: &mut Report<'_>) -> Result<(), Error> {
    let Report { out, plots_dir, plots_rel, md, targets, .. } = report;
    for path in matching(out, "recall-") {
        let Some(outcome) = read::<recall::Outcome>(&path)? else { continue };
        let name = outcome.dataset.name.clone();
        let peers: Option<Value> = read(&out.join(format!("peers-{name}.json")))?;
        writeln!(
            md,
            "## Search on {name} ({} x {}, {} queries, k = 10)\n",
            outcome.dataset.n, outcome.dataset.dim, outcome.dataset.queries
        )?;
        writeln!(
            md,
            "Queries one at a time on one thread; recall@10 against exact inner-product search. vecindex: `vecindex-bench recall`; peers: `scripts/peers`.\n"
        )?;
        // One table, every system, QPS at matched recall.
        let mut systems: Vec<System> = outcome
            .configs
            .iter()
            .map(|c| System {
                name: format!("{} {}", c.system, c.index),
                simd: if c.system.starts_with("faiss") || c.index != "exact" {
                    format!("{} (static build)", outcome.faiss_simd)
                } else {
                    "AVX2 (runtime)".into()
                },
                build_s: c.build_s,
                size_mib: c.memory_mb,
                points: c.sweep.iter().map(|p| (p.recall_at_10, p.qps)).collect(),
            })
            .collect();
        if let Some(peers) = &peers {
            for result in peers["results"].as_array().into_iter().flatten() {
                systems.push(System {
                    name: format!(
                        "{} {}",
                        result["library"].as_str().unwrap_or("?"),
                        result["index"].as_str().unwrap_or("?")
                    ),
                    simd: result["simd"].as_str().unwrap_or("-").into(),
                    build_s: result["build_s"].as_f64().unwrap_or(f64::NAN),
                    size_mib: result["index_mb"].as_f64().unwrap_or(f64::NAN),
                    points: result["sweep"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| Some((p["recall_at_10"].as_f64()?, p["single_qps"].as_f64()?)))
                        .collect(),
                });
            }
            writeln!(
                md,
                "Peers: {} (`scripts/peers`, Python, queries one at a time from a loop).\n",
                peers["versions"]
            )?;
        }
        writeln!(
            md,
            "QPS at matched recall: the fastest setting of each system that reaches the recall (its recall in brackets).\n"
        )?;
        writeln!(
            md,
            "| system | SIMD | build (s) | size (MiB) | recall >= 0.90 | recall >= 0.95 | recall >= 0.99 | best recall |"
        )?;
        writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|")?;
        for system in &systems {
            let cell = |recall: f64| {
                at_recall(&system.points, recall).map_or("-".to_owned(), |(r, q)| format!("{q:.0} ({r:.3})"))
            };
            writeln!(
                md,
                "| {} | {} | {:.1} | {:.1} | {} | {} | {} | {:.4} |",
                system.name,
                system.simd,
                system.build_s,
                system.size_mib,
                cell(0.90),
                cell(0.95),
                cell(0.99),
                system.points.iter().map(|p| p.0).fold(0.0, f64::max)
            )?;
        }
        writeln!(
            md,
            "\nvecindex at every setting (`vecindex-bench recall`; segments: sealed segments after maintenance):\n"
        )?;
        writeln!(
            md,
            "| system | index | build (s) | size (MiB) | segments + rows in heads | ef | recall@10 | QPS | mean µs | p99 µs |"
        )?;
        writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for c in &outcome.configs {
            for p in &c.sweep {
                writeln!(
                    md,
                    "| {} | {} | {:.1} | {:.1} | {} + {} | {} | {:.4} | {:.0} | {:.1} | {:.1} |",
                    c.system,
                    c.index,
                    c.build_s,
                    c.memory_mb,
                    c.segments,
                    c.head_rows,
                    p.ef_search.map_or("-".into(), |e| e.to_string()),
                    p.recall_at_10,
                    p.qps,
                    p.mean_latency_us,
                    p.p99_latency_us
                )?;
            }
        }
        let mut curves = own_curves(&outcome);
        if let Some(peers) = &peers {
            curves.extend(peer_curves(peers));
        }
        let plot = format!("recall-{name}.svg");
        plot_recall(&curves, &format!("QPS against recall@10 on {name}"), &plots_dir.join(&plot))?;
        writeln!(md, "\n![QPS against recall on {name}]({plots_rel}/{plot})\n")?;

        let exact_config = outcome.configs.iter().find(|c| c.index == "exact");
        let exact = exact_config.and_then(|c| c.sweep.first());
        let flat = outcome
            .configs
            .iter()
            .find(|c| c.system.starts_with("faiss") && c.index == "Flat")
            .and_then(|c| c.sweep.first());
        // vecindex with FAISS flat segments: the same segments and head as `exact`, FAISS's kernel.
        let ours_flat =
            outcome.configs.iter().find(|c| c.system == "vecindex" && c.index == "Flat").and_then(|c| c.sweep.first());
        let exact_why = match (exact_config, exact, ours_flat, flat) {
            (Some(ec), Some(e), Some(of), Some(f)) => format!(
                "On {name}: both score every vector, vecindex over {} sealed segments and {} rows in heads, FAISS over one array. vecindex with FAISS flat segments in place of its own scan reaches {:.0} QPS, {:.0}% of raw FAISS: the rest is what the segments, the heads and the hits cost around the kernel. vecindex's own kernel reaches {:.0}% of FAISS's on those same segments: with {}-dimensional rows a row is a few SIMD steps, so the work per row besides its multiply-adds (the final sum, the top-k check) weighs more than at 384 dimensions.",
                ec.segments,
                ec.head_rows,
                of.qps,
                of.qps / f.qps * 100.0,
                e.qps / of.qps * 100.0,
                outcome.dataset.dim
            ),
            _ => format!("On {name}: no vecindex Flat configuration to separate the kernel from the segments."),
        };
        targets.push(Target {
            what: "exact search against raw FAISS flat (same build)",
            goal: ">= 1.0x".into(),
            measured: exact.zip(flat).map_or("-".into(), |(e, f)| {
                format!("{:.2}x ({:.0} vs {:.0} QPS, {name})", e.qps / f.qps, e.qps, f.qps)
            }),
            met: exact.zip(flat).map(|(e, f)| e.qps >= f.qps),
            why: exact_why,
        });
        // The better of vecindex's HNSW configurations at recall 0.95.
        let hnsw: Vec<&recall::Config> =
            outcome.configs.iter().filter(|c| c.system == "vecindex" && c.index.starts_with("HNSW")).collect();
        let ours = hnsw
            .iter()
            .filter_map(|c| {
                let point = at_recall(&c.sweep.iter().map(|p| (p.recall_at_10, p.qps)).collect::<Vec<_>>(), 0.95)?;
                Some((point, c.index.clone()))
            })
            .max_by(|a, b| a.0.1.total_cmp(&b.0.1));
        let hnswlib = peers.as_ref().and_then(|p| {
            peer_curves(p)
                .into_iter()
                .filter(|c| c.label.starts_with("hnswlib"))
                .filter_map(|c| at_recall(&c.points, 0.95))
                .max_by(|a, b| a.1.total_cmp(&b.1))
        });
        targets.push(Target {
            what: "recall@10 >= 0.95, QPS there against hnswlib's best",
            goal: "above".into(),
            measured: match (&ours, hnswlib) {
                (Some((o, how)), Some(h)) => {
                    format!("{:.0} vs {:.0} QPS (recall {:.3} vs {:.3}; {how}, {name})", o.1, h.1, o.0, h.0)
                }
                (Some((o, how)), None) => format!("{:.0} QPS at recall {:.3} ({how}); no hnswlib result", o.1, o.0),
                _ => "recall 0.95 not reached".into(),
            },
            met: match (&ours, hnswlib) {
                (Some((o, _)), Some(h)) => Some(o.1 > h.1),
                (None, _) if !hnsw.is_empty() => Some(false),
                _ => None,
            },
            why: {
                let qps_at = |points: &[(f64, f64)]| at_recall(points, 0.95).map(|p| p.1);
                let raw = outcome
                    .configs
                    .iter()
                    .find(|c| c.system.starts_with("faiss") && c.index.starts_with("HNSW"))
                    .and_then(|c| qps_at(&c.sweep.iter().map(|p| (p.recall_at_10, p.qps)).collect::<Vec<_>>()));
                let merged = outcome.configs.iter().find(|c| c.index.contains("force-merged"));
                // faiss-cpu at the level the crate's build was compiled for.
                let peer_level = outcome.faiss_simd.to_lowercase();
                let faiss_cpu = peers.as_ref().and_then(|p| {
                    peer_curves(p)
                        .into_iter()
                        .find(|c| c.label.starts_with("faiss-cpu HNSW") && c.label.ends_with(&format!("({peer_level})")))
                        .and_then(|c| qps_at(&c.points))
                });
                let mut why = format!(
                    "On {name}: vecindex walks its own copy of the graph (8-bit codes next to the links, compiled for AVX2); FAISS here is built at its {} SIMD level. ",
                    outcome.faiss_simd
                );
                if let Some(raw) = raw {
                    why += &format!(
                        "The same FAISS build's own HNSW32 walk (vecindex's efConstruction, nothing around it) reaches {raw:.0} QPS at recall >= 0.95"
                    );
                    if let Some(f) = faiss_cpu {
                        why += &format!(", faiss-cpu {}'s {peer_level} build {f:.0}", peers.as_ref().map_or("?", |p| p["versions"]["faiss-cpu"].as_str().unwrap_or("?")));
                    }
                    why += &format!(", hnswlib (built with -march=native) {:.0}. ", hnswlib.map_or(0.0, |h| h.1));
                    if let Some((o, _)) = &ours {
                        why += &format!(
                            "vecindex's best reaches {:.2}x the raw FAISS walk's QPS; what it does around its walk on every query: ",
                            o.1 / raw
                        );
                        why += "the view and the epoch, the k + 16 best candidates re-scored with the exact kernel and turned into hits with their ids and metadata, ";
                    }
                }
                why += &match merged {
                    Some(m) => format!(
                        "and the rows outside the graph, scanned exactly ({} force-merged).",
                        m.head_rows
                    ),
                    None => "and the rows outside the graph, scanned exactly.".into(),
                };
                why
            },
        });
    }
    Ok(())
}
