//! A graph made from a FAISS HNSW graph: its nodes renumbered breadth-first from the entry
//! point, so that neighbors sit near each other in memory, each given its code.

use super::store::ALIAS;
use super::{Graph, MAX_NODES, pack};

/// Levels a graph may have: HNSW's levels grow with the log of the node count (FAISS's about
/// `ln(n) / ln(M)`), far below this for any graph that fits in memory.
const MAX_LEVEL: usize = 32;
use crate::metric::Metric;
use crate::sync::Ordering;

/// The pieces of a FAISS HNSW graph, as `faiss.rs` borrows them from the index.
pub struct Parts<'a> {
    pub dim: usize,
    pub metric: Metric,
    pub entry_point: i32,
    pub max_level: i32,
    /// Per node: its top level + 1.
    pub levels: &'a [i32],
    /// Per node and one past the last: where its links start in `neighbors`.
    pub offsets: &'a [usize],
    /// Every node's links, level 0 first; -1 marks an empty slot.
    pub neighbors: &'a [i32],
    /// Slots before each level within a node's links.
    pub cum_neighbors: &'a [i32],
    /// `levels.len()` rows of `dim` values.
    pub vectors: &'a [f32],
}

impl Graph {
    /// The copy of a FAISS graph, or `None` when its pieces do not describe a graph this walk
    /// can take (the caller then searches through FAISS). Labels are FAISS's node numbers, or
    /// with `rows` (the rows each FAISS node stands for, first the one it was built from), rows:
    /// a node's first row labels it, and each other row is an alias of it.
    pub fn from_faiss<'r>(
        parts: &Parts<'_>,
        ef_construction: usize,
        rows: Option<&dyn Fn(usize) -> &'r [u32]>,
    ) -> Option<Self> {
        let nodes = parts.levels.len();
        let dim = parts.dim;
        let level = |l: usize| usize::try_from(*parts.cum_neighbors.get(l)?).ok();
        let (start0, end0) = (level(0)?, level(1)?);
        let degree = end0.checked_sub(start0)?;
        let upper_degree = match (level(1), level(2)) {
            (Some(a), Some(b)) => b.checked_sub(a)?,
            _ => degree / 2,
        };
        let entry = u32::try_from(parts.entry_point).ok()?;
        let max_level = usize::try_from(parts.max_level).ok()?;
        if nodes == 0
            || nodes >= MAX_NODES
            || dim == 0
            || entry as usize >= nodes
            || parts.offsets.len() != nodes + 1
            || parts.vectors.len() != nodes * dim
            || parts.offsets[nodes] > parts.neighbors.len()
            || (max_level > 0 && upper_degree == 0)
            || degree != 2 * upper_degree.max(1)
            || max_level > MAX_LEVEL
            || usize::try_from(parts.levels[entry as usize]).ok() != Some(max_level + 1)
        {
            return None;
        }
        // A node's top level, within what the graph claims; a damaged file gets no link to a
        // node from a level the node is not on (see `link` below).
        let top_of = |node: usize| usize::try_from(parts.levels[node]).unwrap_or(0).saturating_sub(1).min(max_level);
        let mut graph = Self::new(dim, parts.metric, upper_degree, ef_construction, parts.vectors);
        let faiss_link = |slot: i32| u32::try_from(slot).ok().filter(|&n| (n as usize) < nodes);
        let level0 = |node: usize| -> &[i32] {
            let base = parts.offsets[node];
            base.checked_add(end0).and_then(|end| parts.neighbors.get(base + start0..end)).unwrap_or(&[])
        };
        let order = breadth_first(nodes, entry, |node| level0(node).iter().map_while(|&slot| faiss_link(slot)));
        let mut rank = vec![0u32; nodes];
        for (new, &old) in order.iter().enumerate() {
            rank[old as usize] = new as u32;
        }
        let link = |slot: i32| faiss_link(slot).map(|old| rank[old as usize]);
        let link_at =
            |l: usize, slot: i32| faiss_link(slot).filter(|&n| top_of(n as usize) >= l).map(|old| rank[old as usize]);
        let mut inserter = graph.inserter.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut code = vec![0u8; graph.nodes.code_len()];
        for (new, &old) in order.iter().enumerate() {
            let (node, new) = (old as usize, new as u32);
            let squared = graph.quantizer.encode(&parts.vectors[node * dim..(node + 1) * dim], &mut code);
            let base = parts.offsets[node];
            let links: Vec<u32> = level0(node).iter().map_while(|&slot| link(slot)).collect();
            let top = top_of(node);
            let mut upper = Vec::with_capacity(top);
            for l in 1..=top {
                let slots = parts.neighbors.get(base.checked_add(level(l)?)?..base.checked_add(level(l + 1)?)?)?;
                // A slot naming a node not on this level is skipped, not followed: `-1` ends a list.
                upper.push(
                    slots
                        .iter()
                        .take_while(|&&slot| slot >= 0)
                        .filter_map(|&slot| link_at(l, slot))
                        .collect::<Vec<u32>>(),
                );
            }
            let label = match rows {
                Some(rows) => *rows(node).first()?,
                None => old,
            };
            // SAFETY: nobody else holds the graph yet; each node is written once, in order.
            if !unsafe { graph.write_node(&mut inserter, new, label, &code, squared, &links, &upper) } {
                return None;
            }
        }
        let mut count = nodes as u32;
        for (node, &new) in rank.iter().enumerate() {
            for &row in rows.map_or(&[][..], |rows| rows(node)).iter().skip(1) {
                let squared = graph.quantizer.encode(&parts.vectors[node * dim..(node + 1) * dim], &mut code);
                // SAFETY: as above; the alias joins its node's list before anything is published.
                if !unsafe { graph.write_node(&mut inserter, count, row, &code, squared, &[], &[]) } {
                    return None;
                }
                let rest = graph.nodes.word(new, ALIAS).load(Ordering::Relaxed);
                graph.nodes.word(count, ALIAS).store(rest, Ordering::Relaxed);
                graph.nodes.word(new, ALIAS).store(count, Ordering::Relaxed);
                count = count.checked_add(1).filter(|&c| (c as usize) < MAX_NODES)?;
            }
        }
        drop(inserter);
        // Aliases share their node's code: the ranges were fitted to every row.
        graph.fitted_rows = count as usize;
        // Release: the nodes written above happen before any reader's Acquire loads.
        graph.count.store(count, Ordering::Release);
        graph.top.store(pack(rank[entry as usize], max_level), Ordering::Release);
        Some(graph)
    }
}

/// Nodes in breadth-first order from `entry` along `links`, then any it never reached.
pub(super) fn breadth_first<I: Iterator<Item = u32>>(nodes: usize, entry: u32, links: impl Fn(usize) -> I) -> Vec<u32> {
    fn visit(node: u32, seen: &mut [bool], order: &mut Vec<u32>) {
        if !std::mem::replace(&mut seen[node as usize], true) {
            order.push(node);
        }
    }
    let mut seen = vec![false; nodes];
    let mut order = Vec::with_capacity(nodes);
    visit(entry, &mut seen, &mut order);
    let (mut next, mut unreached) = (0, 0);
    while order.len() < nodes {
        if next == order.len() {
            // A part of the graph the entry does not reach: start again from its first node.
            while seen[unreached] {
                unreached += 1;
            }
            visit(unreached as u32, &mut seen, &mut order);
        }
        let node = order[next] as usize;
        next += 1;
        for neighbor in links(node) {
            visit(neighbor, &mut seen, &mut order);
        }
    }
    order
}
