//! A search copy of an HNSW graph: each node's links stored next to an 8-bit code of its vector.
//!
//! FAISS builds the graph; queries walk this copy instead of FAISS's own structures. At level 0
//! (where a walk spends nearly all its time) FAISS keeps links in one array and vectors in
//! another, and scores each neighbor through a virtual call on 4-byte floats: every neighbor
//! costs a cache miss for its vector, at 50 dimensions more than the scoring. Here a node is one
//! 64-byte-aligned block, `[code][|x'|^2][link count][links]`, in memory that asks for huge
//! pages (a walk touches pages all over the graph), and a neighbor's code is one or a few cache
//! lines ([`sq8`]), prefetched as soon as the walk knows it will score it. The caller scores
//! the walk's candidates again with the exact vectors, so only the walk is approximate.
//!
//! The copy is immutable and built from an immutable FAISS index, so any number of threads
//! walk it at once; each thread keeps its own visited table ([`walk::Scratch`]).
//!
//! The walk is HNSW's: greedy descent through the upper levels, then at level 0 a best-first
//! search that keeps the `ef` nearest nodes found ([`walk::Pool`]) and stops when all of them
//! have been expanded. With an `allowed` predicate, every node still guides the walk, but only
//! allowed nodes are returned, as FAISS does with an ID selector.

mod sq8;
mod walk;

use crate::metric::Metric;

use sq8::{Kernel, PreparedQuery, Sq8};
use walk::Pool;

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

/// An HNSW graph laid out for walking. See the module docs.
pub struct SearchGraph {
    nodes: usize,
    metric: Metric,
    quantizer: Sq8,
    code_len: usize,
    /// Level 0: `nodes` blocks of `stride` bytes, `[code][|x'|^2: f32][count: u32][links: u32]`.
    blocks: memmap2::MmapMut,
    stride: usize,
    /// Per node and one past the last: where its links above level 0 start in `upper`, one
    /// run of `upper_degree` slots per level (`u32::MAX` marks an empty slot).
    upper_start: Vec<u32>,
    upper: Vec<u32>,
    upper_degree: usize,
    entry: u32,
    max_level: usize,
    /// The FAISS node of each node here: nodes are renumbered in breadth-first order from the
    /// entry point, so that neighbors sit near each other in memory.
    order: Vec<u32>,
}

const LINE: usize = 64;
const EMPTY: u32 = u32::MAX;

impl SearchGraph {
    /// The copy of a FAISS graph, or `None` when its pieces do not describe a graph this walk
    /// can take (the caller then searches through FAISS).
    pub fn new(parts: &Parts<'_>) -> Option<Self> {
        let nodes = parts.levels.len();
        let dim = parts.dim;
        let level = |l: usize| usize::try_from(*parts.cum_neighbors.get(l)?).ok();
        let (start0, end0) = (level(0)?, level(1)?);
        let degree = end0.checked_sub(start0)?;
        let upper_degree = match (level(1), level(2)) {
            (Some(a), Some(b)) => b.checked_sub(a)?,
            _ => 0,
        };
        let entry = u32::try_from(parts.entry_point).ok()?;
        let max_level = usize::try_from(parts.max_level).ok()?;
        if nodes == 0
            || nodes >= walk::MAX_NODES
            || dim == 0
            || entry as usize >= nodes
            || parts.offsets.len() != nodes + 1
            || parts.vectors.len() != nodes * dim
            || parts.offsets[nodes] > parts.neighbors.len()
            || (max_level > 0 && upper_degree == 0)
        {
            return None;
        }
        let quantizer = Sq8::fit(parts.vectors, dim);
        let code_len = quantizer.code_len();
        let links_at = code_len + 8;
        let stride = (links_at + 4 * degree).div_ceil(LINE) * LINE;
        let mut blocks = memmap2::MmapMut::map_anon(nodes * stride).ok()?;
        #[cfg(target_os = "linux")]
        {
            // Advice only: without huge pages the walk is the same, with more TLB misses.
            let _ = blocks.advise(memmap2::Advice::HugePage);
        }
        let metric = match parts.metric {
            Metric::L2 => Metric::L2,
            Metric::Cosine | Metric::InnerProduct => Metric::InnerProduct,
        };
        let faiss_link = |slot: i32| u32::try_from(slot).ok().filter(|&n| (n as usize) < nodes);
        let level0 = |node: usize| -> &[i32] {
            let base = parts.offsets[node];
            parts.neighbors.get(base + start0..base + end0).unwrap_or(&[])
        };
        let order = breadth_first(nodes, entry, |node| level0(node).iter().map_while(|&slot| faiss_link(slot)));
        let mut rank = vec![0u32; nodes];
        for (new, &old) in order.iter().enumerate() {
            rank[old as usize] = new as u32;
        }
        let link = |slot: i32| faiss_link(slot).map(|old| rank[old as usize]);
        let mut upper_start = Vec::with_capacity(nodes + 1);
        let mut upper = Vec::new();
        for (new, &old) in order.iter().enumerate() {
            let (node, block) = (old as usize, &mut blocks[new * stride..(new + 1) * stride]);
            let squared = quantizer.encode(&parts.vectors[node * dim..(node + 1) * dim], &mut block[..code_len]);
            let squared = if metric == Metric::L2 { squared } else { 0.0 };
            block[code_len..code_len + 4].copy_from_slice(&squared.to_ne_bytes());
            let base = parts.offsets[node];
            let mut count = 0usize;
            for &slot in parts.neighbors.get(base + start0..base + end0)? {
                let Some(neighbor) = link(slot) else { break };
                let at = links_at + 4 * count;
                block[at..at + 4].copy_from_slice(&neighbor.to_ne_bytes());
                count += 1;
            }
            block[code_len + 4..links_at].copy_from_slice(&(count as u32).to_ne_bytes());
            upper_start.push(u32::try_from(upper.len()).ok()?);
            let top = usize::try_from(parts.levels[node]).ok()?.saturating_sub(1).min(max_level);
            for l in 1..=top {
                let (from, to) = (level(l)?, level(l + 1)?);
                let slots = parts.neighbors.get(base + from..base + to)?;
                upper.extend(slots.iter().map(|&slot| link(slot).unwrap_or(EMPTY)));
                upper.resize(upper.len() + upper_degree.saturating_sub(slots.len()), EMPTY);
            }
        }
        upper_start.push(u32::try_from(upper.len()).ok()?);
        Some(Self {
            nodes,
            metric,
            quantizer,
            code_len,
            blocks,
            stride,
            upper_start,
            upper,
            upper_degree,
            entry: rank[entry as usize],
            max_level,
            order,
        })
    }

    /// Bytes held: the blocks, the upper levels and the quantizer's ranges.
    pub fn bytes(&self) -> usize {
        self.blocks.len() + 4 * (self.upper_start.len() + self.upper.len()) + self.quantizer.bytes()
    }

    #[inline]
    fn block(&self, node: u32) -> &[u8] {
        let start = node as usize * self.stride;
        &self.blocks[start..start + self.stride]
    }

    #[inline(always)]
    fn distance<K: Kernel>(&self, kernel: K, query: &PreparedQuery, node: u32) -> f32 {
        let block = self.block(node);
        let squared = f32::from_ne_bytes([
            block[self.code_len],
            block[self.code_len + 1],
            block[self.code_len + 2],
            block[self.code_len + 3],
        ]);
        query.distance(kernel, &block[..self.code_len], squared)
    }

    /// The level-0 links of `node`.
    #[inline]
    fn links(&self, node: u32) -> &[u32] {
        let block = self.block(node);
        let count = u32::from_ne_bytes([
            block[self.code_len + 4],
            block[self.code_len + 5],
            block[self.code_len + 6],
            block[self.code_len + 7],
        ]) as usize;
        let links = &block[self.code_len + 8..];
        // Blocks start 64-byte aligned (the mapping is page aligned, the stride a multiple of
        // 64) and `code_len + 8` is a multiple of 8, so the links are u32-aligned.
        &bytemuck::cast_slice::<u8, u32>(&links[..links.len() - links.len() % 4])[..count]
    }

    /// The links of `node` at `level` (1 and up), empty slots included.
    #[inline]
    fn upper_links(&self, node: u32, level: usize) -> &[u32] {
        let start = self.upper_start[node as usize] as usize + (level - 1) * self.upper_degree;
        let end = self.upper_start[node as usize + 1] as usize;
        &self.upper[start.min(end)..(start + self.upper_degree).min(end)]
    }

    /// Asks the CPU to start fetching `node`'s code.
    #[inline]
    fn prefetch_code(&self, node: u32) {
        let start = node as usize * self.stride;
        let mut line = 0;
        while line < self.code_len + 8 {
            prefetch(self.blocks[start + line..].as_ptr());
            line += LINE;
        }
    }

    /// Asks the CPU to start fetching `node`'s links.
    #[inline]
    fn prefetch_links(&self, node: u32) {
        prefetch(self.blocks[node as usize * self.stride + self.code_len..].as_ptr());
    }

    /// Walks the graph for `query` (`dim` values) with a pool of `ef` nodes and appends the
    /// nodes found to `out`, nearest first, with their approximate distances (lower is nearer).
    /// With `allowed` (asked of FAISS's node numbers, and only for nodes near enough to be
    /// kept), only allowed nodes are appended, at most `ef` of them.
    pub fn search(
        &self,
        query: &[f32],
        ef: usize,
        allowed: Option<&dyn Fn(usize) -> bool>,
        out: &mut Vec<(usize, f32)>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if let Some(kernel) = sq8::Avx2::detect() {
            // SAFETY: `detect` found AVX2 and FMA on this CPU.
            return unsafe { self.search_avx2(kernel, query, ef, allowed, out) };
        }
        self.search_with(sq8::Portable, query, ef, allowed, out)
    }

    /// [`SearchGraph::search`] compiled for AVX2, so that the kernel inlines into the walk.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn search_avx2(
        &self,
        kernel: sq8::Avx2,
        query: &[f32],
        ef: usize,
        allowed: Option<&dyn Fn(usize) -> bool>,
        out: &mut Vec<(usize, f32)>,
    ) {
        self.search_with(kernel, query, ef, allowed, out)
    }

    #[inline(always)]
    fn search_with<K: Kernel>(
        &self,
        kernel: K,
        query: &[f32],
        ef: usize,
        allowed: Option<&dyn Fn(usize) -> bool>,
        out: &mut Vec<(usize, f32)>,
    ) {
        let query = self.quantizer.prepare(query, self.metric);
        let is_allowed = |node: u32| allowed.is_none_or(|allowed| allowed(self.order[node as usize] as usize));
        let mut scratch = walk::Scratch::take(self.nodes);
        {
            let mut current = self.entry;
            let mut nearest = self.distance(kernel, &query, current);
            for level in (1..=self.max_level).rev() {
                loop {
                    let mut moved = false;
                    for &neighbor in self.upper_links(current, level) {
                        if neighbor == EMPTY {
                            break;
                        }
                        let d = self.distance(kernel, &query, neighbor);
                        if d < nearest {
                            (current, nearest) = (neighbor, d);
                            moved = true;
                        }
                    }
                    if !moved {
                        break;
                    }
                }
            }
            let mut pool = Pool::new(ef);
            let mut found = allowed.map(|_| Pool::new(ef));
            scratch.visited.insert(current);
            pool.insert(nearest, current);
            if let Some(found) = found.as_mut().filter(|_| is_allowed(current)) {
                found.insert(nearest, current);
            }
            while let Some(node) = pool.next_to_expand() {
                if let Some(next) = pool.peek_next() {
                    self.prefetch_links(next);
                }
                scratch.fresh.clear();
                for &neighbor in self.links(node) {
                    if scratch.visited.insert(neighbor) {
                        self.prefetch_code(neighbor);
                        scratch.fresh.push(neighbor);
                    }
                }
                for &neighbor in &scratch.fresh {
                    let d = self.distance(kernel, &query, neighbor);
                    pool.insert(d, neighbor);
                    if let Some(found) = found.as_mut().filter(|found| found.admits(d) && is_allowed(neighbor)) {
                        found.insert(d, neighbor);
                    }
                }
            }
            let start = out.len();
            found.as_mut().unwrap_or(&mut pool).drain_into(out);
            for (node, _) in &mut out[start..] {
                *node = self.order[*node] as usize;
            }
        }
        scratch.give_back();
    }
}

/// Nodes in breadth-first order from `entry` along `links`, then any it never reached.
fn breadth_first<I: Iterator<Item = u32>>(nodes: usize, entry: u32, links: impl Fn(usize) -> I) -> Vec<u32> {
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

#[inline(always)]
fn prefetch(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and reads nothing the program sees.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breadth_first_order_reaches_every_node_once_entry_first() {
        // 0 -> 2 -> 4, 2 -> 1; 3 and 5 link only to each other.
        let links: Vec<Vec<u32>> = vec![vec![2], vec![], vec![4, 1], vec![5], vec![], vec![3]];
        let order = breadth_first(6, 0, |node| links[node].iter().copied());
        assert_eq!(order, [0, 2, 4, 1, 3, 5]);
    }

    /// A hand-made two-level graph: the walk finds the nearest node through the upper level,
    /// returns FAISS's node numbers, and honours an allowed bitmap.
    #[test]
    fn a_walk_returns_faiss_nodes_nearest_first() {
        // Five points on a line, x = node; level 0 is a chain, node 4 alone is on level 1.
        let vectors: Vec<f32> = (0..5).map(|x| x as f32).collect();
        let chain = |node: i32| [node - 1, node + 1].map(|n| if (0..5).contains(&n) { n } else { -1 });
        let mut neighbors = Vec::new();
        let mut offsets = vec![0];
        let levels = [1, 1, 1, 1, 2];
        for node in 0..5 {
            let [a, b] = chain(node);
            neighbors.extend([a, b].iter().filter(|&&n| n >= 0).chain([-1, -1].iter()).take(2));
            if node == 4 {
                neighbors.push(-1); // level 1: no one else up there
            }
            offsets.push(neighbors.len());
        }
        let parts = Parts {
            dim: 1,
            metric: Metric::L2,
            entry_point: 4,
            max_level: 1,
            levels: &levels,
            offsets: &offsets,
            neighbors: &neighbors,
            cum_neighbors: &[0, 2, 3],
            vectors: &vectors,
        };
        let graph = SearchGraph::new(&parts).expect("a valid graph");
        let mut found = Vec::new();
        graph.search(&[0.2], 3, None, &mut found);
        let nodes: Vec<usize> = found.iter().map(|&(node, _)| node).collect();
        assert_eq!(nodes, [0, 1, 2]);
        assert!(found.windows(2).all(|pair| pair[0].1 <= pair[1].1));
        found.clear();
        graph.search(&[0.2], 3, Some(&|node| [1, 2, 4].contains(&node)), &mut found);
        let nodes: Vec<usize> = found.iter().map(|&(node, _)| node).collect();
        assert_eq!(nodes, [1, 2, 4], "only allowed nodes, nearest first");
    }

    #[test]
    fn pieces_that_do_not_describe_a_graph_are_refused() {
        let parts = |entry_point, vectors: &'static [f32]| Parts {
            dim: 1,
            metric: Metric::InnerProduct,
            entry_point,
            max_level: 0,
            levels: &[1, 1],
            offsets: &[0, 1, 2],
            neighbors: &[1, 0],
            cum_neighbors: &[0, 1],
            vectors,
        };
        assert!(SearchGraph::new(&parts(0, &[1.0, 2.0])).is_some());
        assert!(SearchGraph::new(&parts(2, &[1.0, 2.0])).is_none(), "entry point out of range");
        assert!(SearchGraph::new(&parts(-1, &[1.0, 2.0])).is_none(), "no entry point");
        assert!(SearchGraph::new(&parts(0, &[1.0])).is_none(), "too few vectors");
    }
}
