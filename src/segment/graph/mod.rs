//! An HNSW graph laid out for walking, that grows in place while it is walked.
//!
//! Each node is one 64-byte-aligned block: an 8-bit code of its vector ([`sq8`]) next to its
//! header and level-0 links ([`store`]), in memory that asks for huge pages. At level 0, where
//! a walk spends nearly all its time, a neighbor then costs one or a few cache lines, which
//! the walk prefetches as soon as it knows it will score them; FAISS keeps links and float
//! vectors apart and scores each neighbor through a virtual call. The caller scores the walk's
//! candidates again with the exact vectors, so only the walk is approximate.
//!
//! A graph is made from a FAISS HNSW graph ([`Graph::from_faiss`], nodes renumbered
//! breadth-first from the entry point so that neighbors sit near each other), and grows by
//! [`Graph::insert`], HNSW's insertion on the codes. Every node carries a label, the caller's
//! number for it (FAISS's node number, for one made from FAISS); walks return labels.
//!
//! # Protocol
//!
//! One inserter at a time (a mutex readers never take); any number of readers, who never wait.
//!
//! 1. Write: the inserter writes the new node `n` (the node count, read by itself alone): its
//!    code, its header, its own links at every level. Nobody can reach `n` yet.
//! 2. Publish: `count.store(n + 1, Release)`.
//! 3. Link: the inserter adds `n` to each chosen neighbor's links (a free slot, then that
//!    list's count; or, in a full list, the list chosen again among its links and `n`, written
//!    over the old one slot by slot, then its count), each store `Release`. A node whose code
//!    equals its nearest neighbor's gets no links: it joins that neighbor's list of aliases
//!    (`ALIAS`, one `Release` store), which walks follow when they return the neighbor.
//! 4. Raise: if `n` is above every other node, `top.store(n and its level, Release)`.
//!
//! Readers start from `top` (`Acquire`) and follow link slots (`Acquire`).
//!
//! # Invariants
//!
//! - G1: a node number stored in `top`, a link slot or an `ALIAS` word is of a published node,
//!   whose code and header are complete and never written again (links excepted).
//! - G2: every link slot below a list's count, at any moment, holds a published node or
//!   `NONE`; a reader sees each slot's old or new value, so a list being rewritten is a mix of
//!   two valid lists, never a dangling number. Walks skip `NONE`.
//! - G3: nodes are never removed or moved: chunks are made as the graph grows and freed with it.
//!
//! # Orderings
//!
//! - Every store of a node number (`count`, `top`, link slots, `ALIAS`) is `Release`, after the
//!   node's writes in the inserter's program order; every load of one is `Acquire`. A reader
//!   that loads the number therefore sees the node's code and header (G1).
//! - A list's count is written `Release` after its slots and read `Acquire` before them, so a
//!   reader never reads a slot past what it was filled to.

#[cfg(any(feature = "faiss", test))]
mod from_faiss;
mod insert;
mod persist;
mod sq8;
mod store;
mod walk;

use crate::metric::Metric;
use crate::sync::{AtomicU32, AtomicU64, Mutex, Ordering};

use sq8::{Kernel, PreparedQuery, Sq8};
use store::{ALIAS, COUNT, LABEL, NONE, NodeStore, SQUARED, UPPER, UpperStore, load, read};
use walk::{Pool, Scratch};

#[cfg(any(feature = "faiss", test))]
pub use from_faiss::Parts;

/// See the module docs.
pub struct Graph {
    metric: Metric,
    dim: usize,
    quantizer: Sq8,
    /// Links per node at each level above 0 (HNSW's M); level 0 has `nodes.degree()`.
    upper_degree: usize,
    ef_construction: usize,
    nodes: NodeStore,
    upper: UpperStore,
    /// Rows the 8-bit ranges were fitted to.
    fitted_rows: usize,
    /// Published nodes: `0..count`.
    count: AtomicU32,
    /// The entry point and its level ([`pack`]), or [`NO_TOP`] while the graph is empty.
    top: AtomicU64,
    inserter: Mutex<insert::Inserter>,
}

const NO_TOP: u64 = u64::MAX;
/// Nodes a graph may hold: node numbers and [`NONE`] fit a `u32`, and the pool's top bit.
pub const MAX_NODES: usize = walk::MAX_NODES;

fn pack(node: u32, level: usize) -> u64 {
    (level as u64) << 32 | u64::from(node)
}

fn unpack(top: u64) -> (u32, usize) {
    (top as u32, (top >> 32) as usize)
}

impl Graph {
    /// An empty graph for `dim`-value vectors under `metric`, with HNSW's `m` links per node
    /// (`2 m` at level 0), coding vectors with ranges fitted to `sample` (rows of `dim`).
    pub fn new(dim: usize, metric: Metric, m: usize, ef_construction: usize, sample: &[f32]) -> Self {
        Self::with_quantizer(Sq8::fit(sample, dim), sample.len() / dim.max(1), metric, m, ef_construction)
    }

    /// An empty graph coding vectors with `quantizer`, fitted to `fitted_rows` rows.
    fn with_quantizer(quantizer: Sq8, fitted_rows: usize, metric: Metric, m: usize, ef_construction: usize) -> Self {
        let dim = quantizer.ranges().0.len();
        let metric = match metric {
            Metric::L2 => Metric::L2,
            Metric::Cosine | Metric::InnerProduct => Metric::InnerProduct,
        };
        let m = m.max(2);
        Self {
            metric,
            dim,
            nodes: NodeStore::new(quantizer.code_len(), 2 * m),
            quantizer,
            upper_degree: m,
            ef_construction: ef_construction.max(1),
            upper: UpperStore::default(),
            fitted_rows,
            count: AtomicU32::new(0),
            top: AtomicU64::new(NO_TOP),
            inserter: Mutex::new(insert::Inserter::default()),
        }
    }

    /// Writes node `node` (the next one, not yet published): its code, header and links.
    /// False if memory for it could not be had.
    ///
    /// # Safety
    /// The caller holds the inserter (`inserter` is its guarded state), and `node` is the node
    /// count: nobody reads it before it is published.
    #[allow(clippy::too_many_arguments)]
    unsafe fn write_node(
        &self,
        inserter: &mut insert::Inserter,
        node: u32,
        label: u32,
        code: &[u8],
        squared: f32,
        links: &[u32],
        upper: &[Vec<u32>],
    ) -> bool {
        if !self.nodes.reserve(node as usize) {
            return false;
        }
        let at = if upper.is_empty() {
            NONE
        } else {
            let len = 1 + upper.len() * self.upper_degree;
            let at = UpperStore::place(inserter.upper_next, len);
            if !self.upper.reserve(at, len) {
                return false;
            }
            inserter.upper_next = at + len;
            self.upper.word(at).store(upper.len() as u32, Ordering::Relaxed);
            for (l, list) in upper.iter().enumerate() {
                let run = at + 1 + l * self.upper_degree;
                for (i, &n) in list.iter().take(self.upper_degree).enumerate() {
                    self.upper.word(run + i).store(n, Ordering::Relaxed);
                }
            }
            at as u32
        };
        // Inner product scores ignore the length (see `PreparedQuery::distance`).
        let squared = if self.metric == Metric::L2 { squared } else { 0.0 };
        // SAFETY: the caller's contract: `node` is unpublished and ours alone.
        unsafe { self.nodes.write_code(node, code) };
        // Relaxed: nobody can reach the node before its number is stored with Release.
        let header = [(SQUARED, squared.to_bits()), (LABEL, label), (UPPER, at), (ALIAS, NONE)];
        for (word, value) in header {
            self.nodes.word(node, word).store(value, Ordering::Relaxed);
        }
        let slots = self.nodes.links(node);
        for (slot, &n) in slots.iter().zip(links) {
            slot.store(n, Ordering::Relaxed);
        }
        self.nodes.word(node, COUNT).store(links.len().min(slots.len()) as u32, Ordering::Relaxed);
        true
    }

    /// Rows the graph's 8-bit ranges were fitted to: a graph that has grown far past them may
    /// code its newer rows coarsely, or clamp them.
    pub fn fitted_rows(&self) -> usize {
        self.fitted_rows
    }

    /// Links per node at level 0, where a walk spends its time.
    pub fn degree(&self) -> usize {
        self.nodes.degree()
    }

    /// Published nodes.
    pub fn len(&self) -> usize {
        load(&self.count) as usize
    }

    /// Bytes held: the node and upper-level chunks made so far.
    pub fn bytes(&self) -> usize {
        self.nodes.bytes() + self.upper.bytes()
    }

    #[inline(always)]
    fn distance<K: Kernel>(&self, kernel: K, query: &PreparedQuery, node: u32) -> f32 {
        let squared = f32::from_bits(load(self.nodes.word(node, SQUARED)));
        // SAFETY: every node number a walk holds came from an Acquire load of `top`, a link slot
        // or the node count (G1).
        query.distance(kernel, &unsafe { self.nodes.code(node) }, squared)
    }

    /// The links of `node` at `level`, into `out` (cleared first). A buffer rather than a
    /// closure per link: code called from a closure is not compiled for the walk's instruction
    /// set, and the distance kernel would not inline there.
    /// `OWN`: the inserter reads ([`store::read`]).
    #[inline(always)]
    fn links_into<const OWN: bool>(&self, node: u32, level: usize, out: &mut Vec<u32>) {
        out.clear();
        if level == 0 {
            let slots = self.nodes.links(node);
            let count = (read::<OWN>(self.nodes.word(node, COUNT)) as usize).min(slots.len());
            out.extend(slots[..count].iter().map(read::<OWN>).filter(|&n| n != NONE));
            return;
        }
        let at = load(self.nodes.word(node, UPPER));
        if at == NONE || level > load(self.upper.word(at as usize)) as usize {
            return;
        }
        let run = at as usize + 1 + (level - 1) * self.upper_degree;
        out.extend((0..self.upper_degree).map(|i| read::<OWN>(self.upper.word(run + i))).take_while(|&n| n != NONE));
    }

    /// Greedy descent from the entry point through the levels above `floor`: the nearest node
    /// found, its distance and the top level, or `None` for an empty graph.
    #[inline(always)]
    fn descend<K: Kernel, const OWN: bool>(
        &self,
        kernel: K,
        query: &PreparedQuery,
        floor: usize,
        scratch: &mut Scratch,
    ) -> Option<(f32, u32, usize)> {
        #[cfg(vecindex_loom)]
        let top = if OWN { self.top.fetch_add(0, Ordering::AcqRel) } else { self.top.load(Ordering::Acquire) };
        #[cfg(not(vecindex_loom))]
        let top = self.top.load(Ordering::Acquire);
        if top == NO_TOP {
            return None;
        }
        let (mut current, max_level) = unpack(top);
        let mut nearest = self.distance(kernel, query, current);
        for level in (floor + 1..=max_level).rev() {
            loop {
                let mut moved = false;
                self.links_into::<OWN>(current, level, &mut scratch.links);
                for &neighbor in &scratch.links {
                    let d = self.distance(kernel, query, neighbor);
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
        Some((nearest, current, max_level))
    }

    /// HNSW's search of one level from `entry`: the `ef` nearest nodes found, in `pool`. With
    /// `found`, nodes `allowed` accepts are also kept there, as they are met.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn walk_level<K: Kernel, const OWN: bool>(
        &self,
        kernel: K,
        query: &PreparedQuery,
        entry: (f32, u32),
        level: usize,
        scratch: &mut Scratch,
        pool: &mut Pool,
        mut found: Option<(&mut Pool, &dyn Fn(u32) -> bool)>,
    ) {
        scratch.visited.begin((read::<OWN>(&self.count) as usize).max(entry.1 as usize + 1));
        scratch.visited.insert(entry.1);
        pool.insert(entry.0, entry.1);
        if let Some((found, allowed)) = found.as_mut()
            && allowed(entry.1)
        {
            found.insert(entry.0, entry.1);
        }
        while let Some(node) = pool.next_to_expand() {
            if level == 0
                && let Some(next) = pool.peek_next()
            {
                self.nodes.prefetch_links(next);
            }
            scratch.fresh.clear();
            self.links_into::<OWN>(node, level, &mut scratch.links);
            for &neighbor in &scratch.links {
                // A node published after this walk began its table is past its end.
                if scratch.visited.insert_or_grow(neighbor) {
                    self.nodes.prefetch_code(neighbor);
                    scratch.fresh.push(neighbor);
                }
            }
            for &neighbor in &scratch.fresh {
                let d = self.distance(kernel, query, neighbor);
                pool.insert(d, neighbor);
                if let Some((found, allowed)) = found.as_mut()
                    && found.admits(d)
                    && allowed(neighbor)
                {
                    found.insert(d, neighbor);
                }
            }
        }
    }

    /// Walks the graph for `query` (`dim` values) with a pool of `ef` nodes and appends the
    /// labels found to `out`, nearest first, with their approximate distances (lower is
    /// nearer); a node's aliases follow it, at its distance. With `allowed` (asked of labels,
    /// and only for nodes near enough to be kept), only allowed labels are appended.
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

    /// [`Graph::search`] compiled for AVX2, so that the kernel inlines into the walk.
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
        let mut scratch = Scratch::take();
        let Some((nearest, entry, _)) = self.descend::<K, false>(kernel, &query, 0, &mut scratch) else {
            scratch.give_back();
            return;
        };
        let label = |node: u32| load(self.nodes.word(node, LABEL)) as usize;
        let label_allowed = |node: u32| allowed.is_none_or(|allowed| allowed(label(node)));
        // A node is worth keeping if it or one of its aliases is allowed.
        let node_allowed = |node: u32| label_allowed(node) || self.aliases(node).any(&label_allowed);
        let mut pool = Pool::new(ef);
        let mut found = allowed.map(|_| Pool::new(ef));
        let filter = found.as_mut().map(|found| (found, &node_allowed as &dyn Fn(u32) -> bool));
        self.walk_level::<K, false>(kernel, &query, (nearest, entry), 0, &mut scratch, &mut pool, filter);
        scratch.nodes.clear();
        found.as_mut().unwrap_or(&mut pool).drain_into(&mut scratch.nodes);
        for &(node, d) in &scratch.nodes {
            let node = node as u32;
            for member in std::iter::once(node).chain(self.aliases(node)) {
                if label_allowed(member) {
                    out.push((label(member), d));
                }
            }
        }
        scratch.give_back();
    }

    /// The nodes that repeat `node`'s code, newest first.
    fn aliases(&self, node: u32) -> impl Iterator<Item = u32> + '_ {
        let mut next = load(self.nodes.word(node, ALIAS));
        std::iter::from_fn(move || {
            let alias = (next != NONE).then_some(next)?;
            next = load(self.nodes.word(alias, ALIAS));
            Some(alias)
        })
    }
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests;
