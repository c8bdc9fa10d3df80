//! The cover: one graph over the rows of many heads and segments, grown as rows arrive, so that
//! a query walks one graph however many containers hold the rows.
//!
//! A plain HNSW index (`SegmentIndex::graph_links`) does not give each segment a graph of its
//! own: every search would walk one graph per segment, and rows waiting for a build would be
//! scanned. Instead the background inserter gives every row a graph node as soon as the row is
//! published, in the order of the cover's *parts*: each part is a head or a sealed segment and
//! the *position* of its first row, row `r` of a part being position `first + r`. A node's label
//! is its row's position.
//!
//! # Protocol
//!
//! 1. Start a part: once every row of the last part is in the graph (the part's container is a
//!    sealed segment, or a head that is frozen and settled), the inserter publishes an epoch whose
//!    cover has one more part, for the oldest container not yet in it, starting at the graph's
//!    node count.
//! 2. Insert: the inserter inserts the last part's rows in order, a head's row only once it is
//!    published, each as the graph's next node labelled with its position (the graph's own
//!    protocol, `segment/graph`).
//! 3. Seal: sealing a head publishes its segment in the head's place in the cover too (same
//!    id, same rows), in the same epoch.
//!
//! A search loads its epoch, then the graph's node count `n` (`Acquire`). A row is searched
//! through the graph if its container is a part of that epoch's cover and its position is
//! below `n`; every other row by scanning its container from the first row not covered.
//!
//! # Invariants
//!
//! - C1: positions are dense and in part order: a part's rows are nodes
//!   `first..first + rows`, and the next part starts where it ends.
//! - C2: a search neither misses nor doubles a row: rows below [`Cover::covered_rows`] of their
//!   container are nodes below `n` (C1), which the walk may return and the scan skips; the
//!   walk's other nodes (published after `n` was read, or of a part the epoch does not have)
//!   are dropped, and their rows scanned.
//! - C3: the containers of a cover are never merged or rewritten while it lives (the merge
//!   policy leaves them alone; `force_merge` replaces the cover whole), so a position keeps
//!   naming the same row.
//!
//! # Orderings
//!
//! The epoch is published with `ArcSwap` (a reader sees a whole cover). `n` is read with
//! `Acquire` after the epoch: the nodes below it are complete (the graph's G1), and a part
//! whose rows they are is either in the epoch or dropped by C2.

use crate::epoch::head::Head;
use crate::epoch::source::Source;
use crate::ids::SegmentId;
use crate::query::{SearchOptions, TopK};
use crate::segment::Segment;
use crate::segment::graph::Graph;
use crate::segment::prepared::{Route, SegmentFilter, route};
use crate::seq::ReadView;
use crate::sync::{Arc, bug};

/// Candidates a walk hands back past the `k` asked for, to be scored again exactly: 8-bit codes
/// may rank a true neighbor a few places lower (at 50 dimensions, 16 more lost no recall against
/// re-scoring the whole pool).
const RERANK_MARGIN: usize = 16;

/// A container of a part.
#[derive(Clone)]
pub enum PartRows {
    Head(Arc<Head>),
    Sealed(Arc<Segment>),
}

impl PartRows {
    pub fn source(&self) -> Source<'_> {
        match self {
            PartRows::Head(head) => Source::Head(head),
            PartRows::Sealed(segment) => Source::Sealed(segment),
        }
    }
}

/// A container and the position of its first row.
#[derive(Clone)]
pub struct Part {
    pub first: u32,
    pub rows: PartRows,
}

/// See the module docs.
#[derive(Clone)]
pub struct Cover {
    pub graph: Arc<Graph>,
    /// In position order (C1).
    parts: Vec<Part>,
    /// Each part's first position, apart from the parts so that finding a position's part
    /// reads a few cache lines: every node a walk keeps is looked up.
    firsts: Vec<u32>,
    /// The parts' container ids, to tell a covered container in constant time: every search
    /// asks it of every container of its epoch.
    ids: IdSet,
    /// The walk's pool when a query sets none.
    ef_search: usize,
    /// Whether the inserter may start it again to fit its 8-bit ranges to more rows: a cover
    /// started empty, not one copied from a FAISS graph (whose ranges fit every row it had).
    pub refits: bool,
}

impl Cover {
    /// A cover of `graph`, whose nodes are the rows of `parts` (in order, C1).
    pub fn new(graph: Arc<Graph>, parts: Vec<Part>, ef_search: usize, refits: bool) -> Self {
        let ids = IdSet::new(parts.iter().map(|p| p.rows.source().id()));
        let firsts = parts.iter().map(|p| p.first).collect();
        Self { graph, parts, firsts, ids, ef_search: ef_search.max(1), refits }
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Whether the container `id` is a part.
    pub fn covers(&self, id: SegmentId) -> bool {
        self.ids.contains(id)
    }

    /// This cover with one more part, `rows` from position `first` (step 1).
    pub fn with_part(&self, first: u32, rows: PartRows) -> Self {
        let mut parts = self.parts.clone();
        parts.push(Part { first, rows });
        Self::new(self.graph.clone(), parts, self.ef_search, self.refits)
    }

    /// This cover with each part whose container one of `segments` replaces (same id, same
    /// rows: a head sealed, step 3, or a segment given a FAISS index) holding that one.
    pub fn with_replaced(&self, segments: &[Arc<Segment>]) -> Self {
        let mut next = self.clone();
        for part in &mut next.parts {
            let id = part.rows.source().id();
            if let Some(segment) = segments.iter().find(|s| s.id() == id) {
                part.rows = PartRows::Sealed(segment.clone());
            }
        }
        next
    }

    /// What a snapshot keeps of this cover: its parts, in order, up to the first that is a head
    /// or not wholly in the graph, less those `written` says the snapshot leaves out (no live
    /// row), each as (segment, its first position now, its first in the snapshot, rows): the
    /// kept parts' positions are renumbered from 0 without gaps (C1 again).
    pub fn persistable(&self, written: &dyn Fn(SegmentId) -> bool) -> Vec<(SegmentId, u32, u32, u32)> {
        let n = self.graph.len();
        let mut kept = Vec::new();
        let mut next = 0u32;
        for part in &self.parts {
            let PartRows::Sealed(segment) = &part.rows else { break };
            let rows = segment.len();
            if Self::covered_rows(part, n) < rows {
                break;
            }
            let Ok(rows) = u32::try_from(rows) else { break };
            if written(segment.id()) {
                kept.push((segment.id(), part.first, next, rows));
                let Some(after) = next.checked_add(rows) else { break };
                next = after;
            }
        }
        kept
    }

    /// Rows of `part` that are nodes below `n`, counted from its first (C2).
    pub fn covered_rows(part: &Part, n: usize) -> usize {
        n.saturating_sub(part.first as usize).min(part.rows.source().len())
    }

    /// The part (its index and container) and row of position `position`, if it is a covered
    /// row below `n`.
    fn locate(&self, position: usize, n: usize) -> Option<(usize, Source<'_>, usize)> {
        if position >= n {
            return None;
        }
        let at = self.firsts.partition_point(|&first| first as usize <= position).checked_sub(1)?;
        let part = &self.parts[at];
        let row = position - part.first as usize;
        let source = part.rows.source();
        (row < source.len()).then_some((at, source, row))
    }

    /// Offers to `top` the best rows for `query` of every part: the covered ones through the
    /// graph, the others (rows the inserter has not reached) by scanning. A filter that few
    /// rows pass scores the rows the segments' field columns list instead of walking
    /// ([`route`]).
    pub fn search(&self, query: &[f32], view: &ReadView, options: &SearchOptions, top: &mut TopK) {
        // One count for both sides: rows the walk left out for being past it are the ones the
        // scan takes (C2). Reading it again for the scan would lose the rows inserted between.
        let n = self.graph.len();
        let filters = PartFilters::new(&self.parts, options);
        let k = options.k.min(n);
        let ef = options.ef_search.unwrap_or(self.ef_search).max(k);
        let pool = match &filters {
            None => Route::Walk { pool: ef },
            Some(filters) => route(filters.rows, filters.listed, filters.expected, ef, self.graph.degree()),
        };
        let walked = match pool {
            Route::Walk { pool } => self.walk(query, view, options, filters.as_ref(), top, n, pool),
            Route::Score => false,
        };
        // An injected bug for the loom models: the count read again for the scan.
        let n = if bug!("cover_count_twice") { self.graph.len() } else { n };
        // The parts before the one holding position `n` are whole nodes below it: each ends
        // where the next starts (C1), and only the last part's container may still grow.
        let from = if walked { self.firsts.partition_point(|&first| first as usize <= n).saturating_sub(1) } else { 0 };
        for (at, part) in self.parts.iter().enumerate().skip(from) {
            let source = part.rows.source();
            let covered = if walked { Self::covered_rows(part, n) } else { 0 };
            if covered >= source.len() {
                continue;
            }
            match (source, filters.as_ref().and_then(|f| f.of(at))) {
                (Source::Sealed(segment), Some(filter)) => {
                    segment.data().scan_filtered(covered, query, view, Some(filter), top);
                }
                _ => source.scan_from(covered, query, view, options, top),
            }
        }
    }

    /// The graph's side of [`Cover::search`]: rows of nodes below `n`, with a pool of `pool`.
    /// False, having offered nothing, when the walk keeps coming back short (filters that keep
    /// few rows, or none near the query): the caller then scans every row, so a query never
    /// comes back short.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        query: &[f32],
        view: &ReadView,
        options: &SearchOptions,
        filters: Option<&PartFilters<'_>>,
        top: &mut TopK,
        n: usize,
        pool: usize,
    ) -> bool {
        let k = options.k.min(n);
        if k == 0 {
            return true;
        }
        // Asked of every node near enough to be kept. In a part whose rows the view all
        // includes, an unfiltered query asks only for deletes, and not even that where nothing
        // was ever deleted: the row's metadata line is never touched. Deletes are counted before
        // their operation completes and the view acquired the completed ones (`rows::tombstones`),
        // so a zero count read after taking the view means no row is dead in it. A sealed part's
        // filter is compiled: the filter first, an array read that rejects most rows when few pass.
        let wanted = |position: usize| {
            self.locate(position, n).is_some_and(|(at, source, row)| {
                let tombstones = source.tombstones();
                match (source, filters.and_then(|f| f.of(at))) {
                    (Source::Sealed(segment), Some(filter)) => {
                        filter.passes(row) && segment.data().is_visible(row, view)
                    }
                    _ if filters.is_none() && source.all_added_in(view) => {
                        tombstones.dead_count() == 0 || !tombstones.is_dead_in(row, view)
                    }
                    _ => {
                        !tombstones.is_dead_in(row, view)
                            && source.with_row(row, |meta, _| view.includes(meta.add_seq()) && options.accepts(meta))
                                == Some(true)
                    }
                }
            })
        };
        let mut ef = pool.max(k).min(n);
        let mut found = Vec::with_capacity(ef + RERANK_MARGIN);
        for _ in 0..4 {
            found.clear();
            self.graph.search(query, ef, Some(&wanted), &mut found);
            if found.len() >= k || ef >= n {
                break;
            }
            // Dead or filtered rows all around the query: widen the walk.
            ef = ef.saturating_mul(4).min(n);
        }
        if found.len() < k {
            return false;
        }
        for &(position, _) in found.iter().take(k + k.max(RERANK_MARGIN)) {
            if let Some((_, source, row)) = self.locate(position, n) {
                source.with_row(row, |meta, vector| top.offer(query, meta, vector));
            }
        }
        true
    }
}

/// A search's filters compiled against each sealed part's field columns, and what they add up
/// to across the parts (a head's rows are counted as all passing: it has no columns).
struct PartFilters<'a> {
    /// By part index; `None` for a head.
    parts: Vec<Option<SegmentFilter<'a>>>,
    rows: usize,
    listed: Option<usize>,
    expected: f64,
}

impl<'a> PartFilters<'a> {
    /// `None` if `options` accept every row.
    fn new(parts: &'a [Part], options: &'a SearchOptions) -> Option<Self> {
        if options.accepts_all() {
            return None;
        }
        let mut filters = Self { parts: Vec::with_capacity(parts.len()), rows: 0, listed: Some(0), expected: 0.0 };
        for part in parts {
            let (len, filter) = match &part.rows {
                PartRows::Sealed(segment) => (segment.len(), segment.data().filter(options)),
                PartRows::Head(head) => (head.len(), None),
            };
            filters.rows += len;
            let (listed, expected) = filter.as_ref().map_or((Some(len), len as f64), |f| (f.listed(), f.expected()));
            filters.listed = filters.listed.zip(listed).map(|(a, b)| a + b);
            filters.expected += expected;
            filters.parts.push(filter);
        }
        Some(filters)
    }

    /// The compiled filter of part `at`, if it is sealed.
    fn of(&self, at: usize) -> Option<&SegmentFilter<'a>> {
        self.parts.get(at).and_then(Option::as_ref)
    }
}

/// A set of container ids. The ids of one cover's parts come from one counter while the cover
/// lives, so their span is about as wide as the set and a bit per id is small; ids read from
/// a damaged file might not be, and are kept sorted instead.
#[derive(Clone)]
enum IdSet {
    /// Bit `id - lowest`.
    Bits {
        lowest: u64,
        words: Vec<u64>,
    },
    Sorted(Vec<u64>),
}

impl IdSet {
    fn new(ids: impl Iterator<Item = SegmentId>) -> Self {
        let mut ids: Vec<u64> = ids.map(|id| id.0).collect();
        ids.sort_unstable();
        let (Some(&lowest), Some(&highest)) = (ids.first(), ids.last()) else { return IdSet::Sorted(ids) };
        let span_words = (highest - lowest) / 64 + 1;
        if span_words > 4 * (ids.len() as u64 / 64 + 1) {
            return IdSet::Sorted(ids);
        }
        let mut words = vec![0u64; span_words as usize];
        for id in ids {
            let at = id - lowest;
            words[(at / 64) as usize] |= 1 << (at % 64);
        }
        IdSet::Bits { lowest, words }
    }

    #[inline]
    fn contains(&self, id: SegmentId) -> bool {
        match self {
            IdSet::Bits { lowest, words } => id.0.checked_sub(*lowest).is_some_and(|at| {
                usize::try_from(at / 64)
                    .ok()
                    .and_then(|word| words.get(word))
                    .is_some_and(|w| w & (1 << (at % 64)) != 0)
            }),
            IdSet::Sorted(ids) => ids.binary_search(&id.0).is_ok(),
        }
    }
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;

    #[test]
    fn id_sets_hold_exactly_their_ids_dense_or_sparse() {
        for ids in [vec![], vec![7], vec![3, 5, 64, 65, 130, 4], vec![0, 1 << 40, u64::MAX]] {
            let set = IdSet::new(ids.iter().map(|&id| SegmentId(id)));
            for probe in (0..200).chain([1 << 40, u64::MAX, u64::MAX - 1]) {
                assert_eq!(set.contains(SegmentId(probe)), ids.contains(&probe), "{probe} in {ids:?}");
            }
        }
        assert!(matches!(IdSet::new([3, 5, 64].map(SegmentId).into_iter()), IdSet::Bits { .. }));
    }
}
