//! A graph as bytes, for the index directory's graph file (`docs/format.md`): its settings, its
//! 8-bit ranges, and per node its label, alias and links; not its codes, which open computes
//! again from the vectors (so the same ranges give the same codes).
//!
//! A graph is written while the inserter may grow it: the nodes written are those below the
//! count read at the start whose labels the caller keeps, each list read as it is at that moment
//! (a list being rewritten reads as a mix of two valid lists, G2), links to nodes not written
//! left out.

use super::sq8::Sq8;
use super::store::{ALIAS, LABEL, NONE, UPPER, load};
use super::{Graph, MAX_NODES, pack};
use crate::metric::Metric;
use crate::sync::Ordering;

/// The layout of the body, in its first word.
const LAYOUT: u32 = 1;
/// Levels a graph may have (as `from_faiss` accepts).
const MAX_LEVEL: usize = 32;

fn put(out: &mut Vec<u8>, word: u32) {
    out.extend_from_slice(&word.to_le_bytes());
}

/// Reads a body word by word, every read checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn u32(&mut self) -> Result<u32, String> {
        let word = self.bytes.get(self.at..self.at + 4).ok_or("the graph ends early")?;
        self.at += 4;
        Ok(u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from(self.u32()?) | u64::from(self.u32()?) << 32)
    }

    fn f32(&mut self) -> Result<f32, String> {
        self.u32().map(f32::from_bits)
    }

    /// `count` node numbers, each below `nodes`.
    fn links(&mut self, count: usize, nodes: usize) -> Result<Vec<u32>, String> {
        (0..count)
            .map(|_| {
                let link = self.u32()?;
                if (link as usize) < nodes { Ok(link) } else { Err(format!("a link to node {link} of {nodes}")) }
            })
            .collect()
    }
}

impl Graph {
    /// The body of a graph file: the nodes whose labels `relabel` maps to `Some`, labelled so
    /// and numbered in the order met, and a flag of the caller's (`refits`) kept beside them.
    /// Returns it and how many nodes it holds.
    pub fn encode(&self, relabel: &dyn Fn(u32) -> Option<u32>, refits: bool) -> (Vec<u8>, usize) {
        self.encode_below(self.len(), relabel, refits)
    }

    /// [`Graph::encode`] of the nodes below `count`, a count read earlier: the inserter may have
    /// published more since, and aliases of the nodes written may be among them.
    fn encode_below(&self, count: usize, relabel: &dyn Fn(u32) -> Option<u32>, refits: bool) -> (Vec<u8>, usize) {
        // The next alias after `node` below `count`: a chain runs from the newest alias to the
        // oldest, so nodes published after the count may come first and older ones after them.
        let next_alias = |node: u32| {
            let mut alias = load(self.nodes.word(node, ALIAS));
            while alias != NONE && alias as usize >= count {
                alias = load(self.nodes.word(alias, ALIAS));
            }
            alias
        };
        let mut number = vec![NONE; count];
        let mut kept = Vec::new();
        for node in 0..count as u32 {
            if let Some(label) = relabel(load(self.nodes.word(node, LABEL))) {
                number[node as usize] = kept.len() as u32;
                kept.push((node, label));
            }
        }
        let kept_number = |node: u32| number.get(node as usize).copied().filter(|&n| n != NONE);
        // A node left out whose code a kept node repeats (an alias: a row re-added unchanged)
        // hands its place, links and levels to the first such alias.
        let mut heir = std::collections::HashMap::new();
        let mut inherits = std::collections::HashMap::new();
        for node in (0..count as u32).filter(|&node| kept_number(node).is_none()) {
            let mut alias = next_alias(node);
            while alias != NONE && kept_number(alias).is_none() {
                alias = next_alias(alias);
            }
            if alias != NONE && !inherits.contains_key(&alias) {
                heir.insert(node, alias);
                inherits.insert(alias, node);
            }
        }
        let renumber = |node: u32| kept_number(node).or_else(|| heir.get(&node).and_then(|&h| kept_number(h)));
        let levels = |node: u32| {
            let at = load(self.nodes.word(node, UPPER));
            if at == NONE { 0 } else { (load(self.upper.word(at as usize)) as usize).min(MAX_LEVEL) }
        };
        // The entry point: the old one if kept (or its heir), else the kept node on the most
        // levels.
        let top = self.top.load(Ordering::Acquire);
        // Aliases have no links of their own: never an entry point, unless an heir.
        let mut alias_of_another = vec![false; count];
        for node in 0..count as u32 {
            let mut alias = next_alias(node);
            while alias != NONE && !alias_of_another[alias as usize] {
                alias_of_another[alias as usize] = true;
                alias = next_alias(alias);
            }
        }
        let entry = renumber(top as u32).map(|n| (n, levels(top as u32))).or_else(|| {
            kept.iter()
                .filter(|&&(node, _)| !alias_of_another[node as usize] || inherits.contains_key(&node))
                .map(|&(node, _)| (number[node as usize], levels(inherits.get(&node).copied().unwrap_or(node))))
                .min_by_key(|&(n, l)| (std::cmp::Reverse(l), n))
        });
        let (lo, step) = self.quantizer.ranges();
        let mut out = Vec::with_capacity(64 + kept.len() * (16 + 4 * self.nodes.degree()));
        for word in [LAYOUT, self.upper_degree as u32, self.nodes.degree() as u32, self.ef_construction as u32] {
            put(&mut out, word);
        }
        out.extend_from_slice(&(self.fitted_rows as u64).to_le_bytes());
        put(&mut out, u32::from(refits));
        out.extend_from_slice(&(kept.len() as u64).to_le_bytes());
        let (entry, max_level) = entry.unwrap_or((NONE, 0));
        put(&mut out, entry);
        put(&mut out, max_level as u32);
        put(&mut out, lo.len() as u32);
        lo.iter().chain(step).for_each(|x| put(&mut out, x.to_bits()));
        let mut links = Vec::new();
        for &(node, label) in &kept {
            put(&mut out, label);
            // The next alias this file keeps.
            let mut alias = next_alias(node);
            while alias != NONE && renumber(alias).is_none() {
                alias = next_alias(alias);
            }
            put(&mut out, renumber(alias).unwrap_or(NONE));
            // An heir's links and levels are those of the node it replaces.
            let linked = inherits.get(&node).copied().unwrap_or(node);
            let node_levels = levels(linked);
            put(&mut out, node_levels as u32);
            for level in 0..=node_levels {
                let written = self.kept_links(linked, level, &renumber, &mut links);
                put(&mut out, written.len() as u32);
                written.iter().for_each(|&n| put(&mut out, n));
            }
        }
        (out, kept.len())
    }

    /// `node`'s links at `level` as the file numbers them (`renumber`), a link to a node the
    /// file leaves out replaced by that node's own links, and theirs in turn, up to the level's
    /// capacity: paths through left-out nodes stay paths, so every kept node stays reachable.
    fn kept_links(
        &self,
        node: u32,
        level: usize,
        renumber: &dyn Fn(u32) -> Option<u32>,
        scratch: &mut Vec<u32>,
    ) -> Vec<u32> {
        let capacity = if level == 0 { self.nodes.degree() } else { self.upper_degree };
        let mut written = Vec::new();
        let mut seen = std::collections::HashSet::from([node]);
        let mut queue = std::collections::VecDeque::from([node]);
        while let Some(from) = queue.pop_front() {
            self.links_into::<false>(from, level, scratch);
            for &n in scratch.iter() {
                if !seen.insert(n) {
                    continue;
                }
                match renumber(n) {
                    Some(kept) if written.len() < capacity && !written.contains(&kept) => written.push(kept),
                    Some(_) => {}
                    None => queue.push_back(n),
                }
            }
            if written.len() >= capacity {
                break;
            }
        }
        written
    }

    /// A graph read back from `body` ([`Graph::encode`]'s) for vectors under `metric`, each
    /// node's code computed from `vector(label)`, and the caller's flag. `Err` says what is
    /// wrong with the bytes, or which label has no vector.
    pub fn decode<'v>(
        body: &[u8],
        metric: Metric,
        vector: &dyn Fn(u32) -> Option<&'v [f32]>,
    ) -> Result<(Self, bool), String> {
        let mut r = Reader { bytes: body, at: 0 };
        let layout = r.u32()?;
        if layout != LAYOUT {
            return Err(format!("graph layout {layout}, this build reads {LAYOUT}"));
        }
        let (upper_degree, degree, ef_construction) = (r.u32()? as usize, r.u32()? as usize, r.u32()? as usize);
        if ef_construction == 0 || ef_construction > 1 << 16 {
            return Err(format!("efConstruction {ef_construction}"));
        }
        let fitted_rows = usize::try_from(r.u64()?).map_err(|e| e.to_string())?;
        let refits = match r.u32()? {
            0 => false,
            1 => true,
            other => return Err(format!("flag {other}")),
        };
        let nodes = usize::try_from(r.u64()?).map_err(|e| e.to_string())?;
        let (entry, max_level) = (r.u32()?, r.u32()? as usize);
        let dim = r.u32()? as usize;
        if !(2..=512).contains(&upper_degree)
            || degree != 2 * upper_degree
            || nodes >= MAX_NODES
            || max_level > MAX_LEVEL
        {
            return Err(format!("a graph of {nodes} nodes, {upper_degree} links, {max_level} levels"));
        }
        if dim == 0 || dim > body.len() / 8 {
            return Err(format!("{dim} dimensions"));
        }
        let lo = (0..dim).map(|_| r.f32()).collect::<Result<Vec<_>, _>>()?;
        let step = (0..dim).map(|_| r.f32()).collect::<Result<Vec<_>, _>>()?;
        let quantizer = Sq8::from_ranges(lo, step).ok_or("invalid ranges")?;
        let graph = Self::with_quantizer(quantizer, fitted_rows, metric, upper_degree, ef_construction);
        if nodes == 0 {
            return Ok((graph, refits));
        }
        if entry as usize >= nodes {
            return Err(format!("entry point {entry} of {nodes} nodes"));
        }
        let mut parsed = Vec::with_capacity(nodes);
        for node in 0..nodes as u32 {
            let label = r.u32()?;
            let alias = r.u32()?;
            if alias != NONE && alias as usize >= nodes {
                return Err(format!("node {node}: alias {alias} of {nodes}"));
            }
            let levels = r.u32()? as usize;
            if levels > max_level {
                return Err(format!("node {node} on {levels} levels, the graph has {max_level}"));
            }
            let mut lists = Vec::with_capacity(levels + 1);
            for level in 0..=levels {
                let count = r.u32()? as usize;
                if count > if level == 0 { degree } else { upper_degree } {
                    return Err(format!("node {node}: {count} links at level {level}"));
                }
                lists.push(r.links(count, nodes)?);
            }
            parsed.push((label, alias, lists));
        }
        if r.at != body.len() {
            return Err(format!("{} bytes after the last node", body.len() - r.at));
        }
        if parsed[entry as usize].2.len() != max_level + 1 {
            return Err(format!("entry point {entry} is not on the top level {max_level}"));
        }
        // A link at a level leads to a node on that level (the inserter relies on it).
        for (node, (_, _, lists)) in parsed.iter().enumerate() {
            for (level, list) in lists.iter().enumerate().skip(1) {
                if let Some(&bad) = list.iter().find(|&&n| parsed[n as usize].2.len() <= level) {
                    return Err(format!("node {node} links node {bad} at level {level}, which it is not on"));
                }
            }
        }
        let mut inserter = graph.inserter.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut code = vec![0u8; graph.nodes.code_len()];
        let mut aliases = Vec::with_capacity(nodes);
        for (node, (label, alias, lists)) in parsed.into_iter().enumerate() {
            let vector = vector(label).filter(|v| v.len() == dim).ok_or(format!("no vector for label {label}"))?;
            let squared = graph.quantizer.encode(vector, &mut code);
            // SAFETY: nobody else holds the graph yet; each node is written once, in order.
            if !unsafe { graph.write_node(&mut inserter, node as u32, label, &code, squared, &lists[0], &lists[1..]) } {
                return Err("no memory for the graph".into());
            }
            aliases.push(alias);
        }
        for (node, alias) in aliases.into_iter().enumerate() {
            graph.nodes.word(node as u32, ALIAS).store(alias, Ordering::Relaxed);
        }
        drop(inserter);
        // Release: the nodes written above happen before any reader's Acquire loads.
        graph.count.store(nodes as u32, Ordering::Release);
        graph.top.store(pack(entry, max_level), Ordering::Release);
        Ok((graph, refits))
    }
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;

    fn rows(n: usize, dim: usize) -> Vec<f32> {
        (0..n * dim).map(|i| ((i as f32) * 0.618).sin() + (i / dim % 7) as f32).collect()
    }

    #[test]
    fn aliases_published_after_the_count_are_left_out_and_older_ones_kept() {
        let dim = 4;
        let vectors = rows(50, dim);
        let graph = Graph::new(dim, Metric::L2, 8, 40, &vectors);
        for (i, v) in vectors.chunks_exact(dim).enumerate() {
            assert!(graph.insert(i as u32, v));
        }
        // Row 0 again, twice: node 0's chain is then 51 -> 50, the newest first.
        assert!(graph.insert(50, &vectors[..dim]));
        assert!(graph.insert(51, &vectors[..dim]));
        // As a persist that read the count before node 51 was published, keeping every label
        // but row 0's own (so that node 50 inherits its place).
        let (body, kept) = graph.encode_below(51, &|label| (label != 0).then_some(label), false);
        assert_eq!(kept, 50);
        let vector = |label: u32| vectors.get((label as usize % 50) * dim..(label as usize % 50 + 1) * dim);
        let (back, _) = Graph::decode(&body, Metric::L2, &vector).unwrap();
        let mut found = Vec::new();
        back.search(&vectors[..dim], 4, None, &mut found);
        assert_eq!(found[0].0, 50, "the alias below the count answers for row 0");
        for query in vectors.chunks_exact(dim).skip(1) {
            back.search(query, 8, None, &mut found);
            assert!(!found.is_empty());
        }
    }

    #[test]
    fn a_graph_read_back_answers_as_the_one_written_and_damage_is_refused() {
        let dim = 8;
        let vectors = rows(600, dim);
        let graph = Graph::new(dim, Metric::L2, 8, 40, &vectors);
        for (i, v) in vectors.chunks_exact(dim).enumerate() {
            assert!(graph.insert(i as u32, v));
        }
        for copy in 0..20u32 {
            assert!(graph.insert(600 + copy, &vectors[..dim])); // aliases of row 0
        }
        let vector = |label: u32| {
            let row = if label >= 600 { 0 } else { label as usize };
            vectors.get(row * dim..(row + 1) * dim)
        };
        let (body, nodes) = graph.encode(&|label| Some(label), true);
        assert_eq!(nodes, 620);
        let (back, refits) = Graph::decode(&body, Metric::L2, &vector).unwrap();
        assert!(refits);
        assert_eq!(back.len(), 620);
        for query in vectors.chunks_exact(dim).step_by(37) {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            graph.search(query, 16, None, &mut a);
            back.search(query, 16, None, &mut b);
            assert_eq!(a, b);
        }
        // Keeping half the labels, renumbered: the rest is a graph of its own.
        let (half, kept) = graph.encode(&|label| (label % 2 == 0).then_some(label / 2), false);
        assert_eq!(kept, 310);
        let half_vector = |label: u32| vector(label * 2);
        let (half, _) = Graph::decode(&half, Metric::L2, &half_vector).unwrap();
        let mut found = Vec::new();
        half.search(&vectors[4 * dim..5 * dim], 8, None, &mut found);
        assert_eq!(found[0].0, 2, "row 4 is label 2 now");
        // Every truncation and a flipped byte in each region: an error, never a panic.
        for cut in (0..body.len()).step_by(97) {
            assert!(Graph::decode(&body[..cut], Metric::L2, &vector).is_err(), "cut at {cut}");
        }
        for at in (0..body.len()).step_by(53) {
            let mut bad = body.clone();
            bad[at] ^= 0xff;
            let _ = Graph::decode(&bad, Metric::L2, &vector); // may read as another valid graph
        }
    }
}
