//! HNSW's insertion, on the codes: the inserter's side of the protocol in the module docs of
//! [`super`] (write, publish, link, raise).
//!
//! A new node's neighbors are found by walking each of its levels from the top down with a
//! pool of `ef_construction`, comparing its exact vector with the codes, and chosen among them
//! with HNSW's heuristic (a candidate is kept unless a node already kept is nearer to it than
//! the new node is), comparing codes with decoded codes. The same heuristic chooses a full
//! list again when a link is added to it. A node whose code equals the code of the nearest node
//! found is that node's alias instead: linking many equal points to each other is what makes
//! HNSW construction crawl over repeated vectors.

use super::sq8::{Kernel, PreparedQuery};
use super::store::{ALIAS, COUNT, NONE, UPPER, read};
use super::walk::{Pool, Scratch};
use super::{Graph, MAX_NODES, pack};
use crate::sync::{Ordering, bug};

/// The order of every store of a link slot or a list's count. Release: the number stored is of
/// a published node (G1), and a reader that loads the slot, or the count stored after it, sees
/// that node. (Relaxed is a bug injected for the loom models.)
#[inline(always)]
fn link_order() -> Ordering {
    if bug!("graph_link_relaxed") { Ordering::Relaxed } else { Ordering::Release }
}

/// The inserter's own state, behind the graph's inserter mutex.
#[derive(Default)]
pub struct Inserter {
    /// The next free word of the upper-level store.
    pub upper_next: usize,
}

/// Levels above 0 of node `node`: HNSW's geometric draw (a node reaches level `l` with
/// probability `m^-l`), from a hash of the node number so that the same insertions always
/// build the same graph.
fn random_level(node: u32, m: usize) -> usize {
    let mut x = u64::from(node).wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let uniform = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64; // in (0, 1]
    ((-uniform.ln()) / (m.max(2) as f64).ln()).floor().min(16.0) as usize
}

impl Graph {
    /// Inserts a node labelled `label` for `vector` (`dim` values); false, inserting nothing,
    /// if the graph holds `MAX_NODES - 1` nodes or memory for the node could not be had.
    pub fn insert(&self, label: u32, vector: &[f32]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if let Some(kernel) = super::sq8::Avx2::detect() {
            // SAFETY: `detect` found AVX2 and FMA on this CPU.
            return unsafe { self.insert_avx2(kernel, label, vector) };
        }
        self.insert_with(super::sq8::Portable, label, vector)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn insert_avx2(&self, kernel: super::sq8::Avx2, label: u32, vector: &[f32]) -> bool {
        self.insert_with(kernel, label, vector)
    }

    #[inline(always)]
    fn insert_with<K: Kernel>(&self, kernel: K, label: u32, vector: &[f32]) -> bool {
        let mut inserter = self.inserter.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Only the inserter stores the count, and it holds the mutex.
        let node = read::<true>(&self.count);
        if node as usize + 1 >= MAX_NODES || vector.len() != self.dim {
            return false;
        }
        let mut code = vec![0u8; self.nodes.code_len()];
        let squared = self.quantizer.encode(vector, &mut code);
        let query = self.quantizer.prepare(vector, self.metric);
        let level = random_level(node, self.upper_degree);
        let mut scratch = Scratch::take();
        let Some((mut nearest, mut entry, max_level)) = self.descend::<K, true>(kernel, &query, level, &mut scratch)
        else {
            scratch.give_back();
            // The first node: the entry point.
            let upper = vec![Vec::new(); level];
            // SAFETY: we hold the inserter and `node` is the count.
            if !unsafe { self.write_node(&mut inserter, node, label, &code, squared, &[], &upper) } {
                return false;
            }
            self.publish(node);
            self.top.store(pack(node, level), Ordering::Release);
            return true;
        };
        let linked = level.min(max_level);
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); level + 1];
        for l in (0..=linked).rev() {
            let mut pool = Pool::new(self.ef_construction);
            self.walk_level::<K, true>(kernel, &query, (nearest, entry), l, &mut scratch, &mut pool, None);
            scratch.nodes.clear();
            pool.drain_into(&mut scratch.nodes);
            let Some(&(first, d)) = scratch.nodes.first() else { break };
            // Under inner product the node nearest to a vector need not be its copy: look at
            // every candidate.
            let twin = scratch.nodes.iter().map(|&(n, _)| n as u32).find(|&n| l == 0 && self.same_code(n, &code));
            if let Some(twin) = twin {
                scratch.give_back();
                return self.insert_alias(&mut inserter, node, twin, label, &code, squared);
            }
            lists[l] = self.select(kernel, &scratch.nodes, self.capacity(l));
            (nearest, entry) = (d, first as u32);
        }
        scratch.give_back();
        if bug!("graph_link_before_write") {
            // An injected bug for the loom models: linked before it is written and published.
            self.link_all(kernel, &lists, linked, node);
        }
        // SAFETY: we hold the inserter and `node` is the count.
        if !unsafe { self.write_node(&mut inserter, node, label, &code, squared, &lists[0], &lists[1..]) } {
            return false;
        }
        self.publish(node);
        if !bug!("graph_link_before_write") {
            self.link_all(kernel, &lists, linked, node);
        }
        if level > max_level {
            self.top.store(pack(node, level), Ordering::Release);
        }
        true
    }

    /// Step 3 of the protocol for every level up to `linked`: `node` joins the links of each
    /// neighbor it chose. A method, not a closure: a closure is a function of its own, compiled
    /// without the caller's AVX2, where the kernel's intrinsics become calls.
    #[inline(always)]
    fn link_all<K: Kernel>(&self, kernel: K, lists: &[Vec<u32>], linked: usize, node: u32) {
        for (l, list) in lists.iter().enumerate().take(linked + 1) {
            for &neighbor in list {
                self.link(kernel, neighbor, node, l);
            }
        }
    }

    /// Step 2 of the protocol: node `node`, written, becomes readable.
    #[inline(always)]
    fn publish(&self, node: u32) {
        self.count.store(node + 1, Ordering::Release);
    }

    /// Links per node at `level`.
    #[inline(always)]
    fn capacity(&self, level: usize) -> usize {
        if level == 0 { self.nodes.degree() } else { self.upper_degree }
    }

    #[inline(always)]
    fn same_code(&self, node: u32, code: &[u8]) -> bool {
        // SAFETY: `node` came from a walk: an Acquire load of its number (G1).
        *unsafe { self.nodes.code(node) } == *code
    }

    /// Writes `node` as an alias of `twin` (no links) and adds it to `twin`'s aliases.
    fn insert_alias(
        &self,
        inserter: &mut Inserter,
        node: u32,
        twin: u32,
        label: u32,
        code: &[u8],
        squared: f32,
    ) -> bool {
        // SAFETY: the caller holds the inserter and `node` is the count.
        if !unsafe { self.write_node(inserter, node, label, code, squared, &[], &[]) } {
            return false;
        }
        // The twin's aliases follow this one. Relaxed: `node` is unpublished.
        let rest = read::<true>(self.nodes.word(twin, ALIAS));
        self.nodes.word(node, ALIAS).store(rest, Ordering::Relaxed);
        self.publish(node);
        self.nodes.word(twin, ALIAS).store(node, Ordering::Release);
        true
    }

    /// HNSW's heuristic: of `candidates` (nearest first, with their distances to the node
    /// being linked), at most `capacity`, each kept unless a node kept before it is nearer to
    /// it than the node being linked is.
    #[inline(always)]
    fn select<K: Kernel>(&self, kernel: K, candidates: &[(usize, f32)], capacity: usize) -> Vec<u32> {
        let mut kept: Vec<u32> = Vec::with_capacity(capacity);
        let mut decoded = vec![0.0f32; self.dim];
        let mut as_query: Option<PreparedQuery> = None;
        for &(candidate, d) in candidates {
            if kept.len() >= capacity {
                break;
            }
            let candidate = candidate as u32;
            if kept.is_empty() {
                kept.push(candidate);
                continue;
            }
            // SAFETY: `candidate` came from a walk (G1).
            self.quantizer.decode(&unsafe { self.nodes.code(candidate) }, &mut decoded);
            let query = as_query.get_or_insert_with(|| self.quantizer.prepare(&decoded, self.metric));
            self.quantizer.prepare_into(&decoded, self.metric, query);
            // A loop, not `all` with a closure: see `Graph::links_into`.
            let mut diverse = true;
            for &other in &kept {
                if self.distance(kernel, query, other) < d {
                    diverse = false;
                    break;
                }
            }
            if diverse {
                kept.push(candidate);
            }
        }
        kept
    }

    /// Step 3 of the protocol: adds `node` to `neighbor`'s links at `level`.
    #[inline(always)]
    fn link<K: Kernel>(&self, kernel: K, neighbor: u32, node: u32, level: usize) {
        let capacity = self.capacity(level);
        let mut list = Vec::with_capacity(capacity + 1);
        self.links_into::<true>(neighbor, level, &mut list);
        if list.contains(&node) {
            return;
        }
        if list.len() < capacity {
            self.store_link(neighbor, level, list.len(), node);
            if level == 0 {
                self.nodes.word(neighbor, COUNT).store(list.len() as u32 + 1, link_order());
            }
            return;
        }
        // Full: choose again among its links and the new node, by distance to `neighbor`.
        let mut decoded = vec![0.0f32; self.dim];
        // SAFETY: `neighbor` came from a walk (G1).
        self.quantizer.decode(&unsafe { self.nodes.code(neighbor) }, &mut decoded);
        let query = self.quantizer.prepare(&decoded, self.metric);
        list.push(node);
        let mut candidates: Vec<(usize, f32)> = Vec::with_capacity(list.len());
        for &n in &list {
            candidates.push((n as usize, self.distance(kernel, &query, n)));
        }
        candidates.sort_by(|a, b| a.1.total_cmp(&b.1));
        let chosen = self.select(kernel, &candidates, capacity);
        for (i, &n) in chosen.iter().enumerate() {
            self.store_link(neighbor, level, i, n);
        }
        if level == 0 {
            self.nodes.word(neighbor, COUNT).store(chosen.len() as u32, link_order());
        } else if chosen.len() < capacity {
            self.store_link(neighbor, level, chosen.len(), NONE);
        }
    }

    /// Stores `value` in slot `slot` of `node`'s links at `level`.
    #[inline(always)]
    fn store_link(&self, node: u32, level: usize, slot: usize, value: u32) {
        let order = link_order();
        if level == 0 {
            self.nodes.links(node)[slot].store(value, order);
            return;
        }
        let at = self.nodes.word(node, UPPER).load(Ordering::Acquire);
        if at == NONE
            || slot >= self.upper_degree
            || level > self.upper.word(at as usize).load(Ordering::Acquire) as usize
        {
            return; // not a node of this level (a damaged graph could link one there)
        }
        self.upper.word(at as usize + 1 + (level - 1) * self.upper_degree + slot).store(value, order);
    }

    #[cfg(test)]
    /// Inserts rows `vectors` (rows of `dim`), labelled `first_label` on, a step at a time,
    /// asking `cancelled` between steps; how many it inserted.
    pub fn insert_all(&self, first_label: u32, vectors: &[f32], cancelled: &dyn Fn() -> bool) -> usize {
        let mut inserted = 0;
        for (i, vector) in vectors.chunks_exact(self.dim.max(1)).enumerate() {
            if i % 64 == 0 && cancelled() {
                break;
            }
            let Some(label) = first_label.checked_add(i as u32) else { break };
            if !self.insert(label, vector) {
                break;
            }
            inserted += 1;
        }
        inserted
    }
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;

    #[test]
    fn levels_thin_out_geometrically() {
        let m = 16;
        let levels: Vec<usize> = (0..100_000).map(|n| random_level(n, m)).collect();
        let above = |l: usize| levels.iter().filter(|&&x| x >= l).count() as f64 / levels.len() as f64;
        assert!((above(1) - 1.0 / 16.0).abs() < 0.01, "{}", above(1));
        assert!((above(2) - 1.0 / 256.0).abs() < 0.002, "{}", above(2));
        assert_eq!(random_level(7, m), random_level(7, m));
    }
}
