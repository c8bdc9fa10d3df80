//! What an index reports of itself: [`Stats`], with one [`SegmentStats`] per head and segment.

use std::time::{Duration, SystemTime};

use crate::epoch::Source;
use crate::epoch::cover::Cover;
use crate::metric::Metric;
use crate::segment::SegmentKind;
use crate::seq::SeqNo;
use crate::state::State;

/// A point-in-time summary of an index.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    pub dim: usize,
    pub metric: Metric,
    /// Live chunks.
    pub chunks: usize,
    pub documents: usize,
    /// The seq the next mutation will get.
    pub next_seq: SeqNo,
    /// How many epochs have been published since open.
    pub generation: u64,
    pub segments: Vec<SegmentStats>,
    /// Distinct terms in the concept vocabulary.
    pub vocabulary_terms: usize,
    /// The graph a plain HNSW index's rows share (its cover), once it has one.
    pub graph: Option<GraphStats>,
    /// The persists of this index since it was made or opened.
    pub persists: PersistStats,
}

/// The persists of an index since it was made or opened.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct PersistStats {
    /// The snapshot holds the operations below this seq: of the last persist, or of the
    /// snapshot the index was opened from; `None` before either. `next_seq` minus this is what a
    /// crash would leave to the write-ahead log (or lose, without one).
    pub snapshot_seq: Option<SeqNo>,
    /// The last persist that committed, if any since the index was made or opened.
    pub last: Option<LastPersist>,
    /// Persists that committed.
    pub succeeded: u64,
    /// Persists that returned an error (the previous snapshot stayed in place).
    pub failed: u64,
}

/// The last persist that committed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LastPersist {
    /// When it committed.
    pub at: SystemTime,
    pub duration: Duration,
    /// The manifest's generation.
    pub generation: u64,
    /// Bytes of the whole snapshot in its directory.
    pub bytes_total: u64,
}

/// The graph a plain HNSW index's rows share.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GraphStats {
    /// Rows in the graph (each row is a node).
    pub nodes: usize,
    /// Memory of its nodes: codes and links.
    pub bytes: usize,
}

/// Where a head or segment is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SegmentState {
    /// The current head: receiving rows.
    Head,
    /// A full head, waiting for its last writers to publish, then to be sealed.
    Frozen,
    /// Sealed: immutable rows.
    Sealed,
}

impl std::fmt::Display for SegmentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SegmentState::Head => "head",
            SegmentState::Frozen => "frozen",
            SegmentState::Sealed => "sealed",
        })
    }
}

/// One head or segment.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentStats {
    pub id: u64,
    pub state: SegmentState,
    /// How it is searched: [`SegmentKind::Exact`] (heads, and sealed segments without a FAISS
    /// index yet or at all), or through the FAISS index of that factory string.
    pub kind: SegmentKind,
    /// Rows stored, live or deleted.
    pub rows: usize,
    pub live_rows: usize,
    /// Vectors, row metadata and FAISS index (approximate for strings).
    pub bytes: usize,
    /// How long building its FAISS index took (or loading it from disk).
    pub build_time: Option<Duration>,
    /// Whether its rows are read in place from a mapped file (a segment opened from disk).
    pub mapped: bool,
    /// Vectors in its FAISS index, if it has one: `rows`, or fewer when rows repeat a vector
    /// (an HNSW graph holds one node per distinct vector).
    pub indexed_vectors: Option<usize>,
    /// Of a plain HNSW index: its rows in the shared graph (the others are scanned until the
    /// background inserter reaches them); `None` if it is not part of the graph yet.
    pub graph_rows: Option<usize>,
}

impl SegmentStats {
    /// "head", "frozen", or for a sealed segment its kind ("exact", or the factory string).
    pub fn label(&self) -> String {
        match self.state {
            SegmentState::Sealed => self.kind.to_string(),
            state => state.to_string(),
        }
    }
}

impl State {
    /// The index's stats now.
    pub(crate) fn stats(&self) -> Stats {
        let epoch = self.epochs.load_full();
        let nodes = epoch.cover.as_ref().map_or(0, |cover| cover.graph.len());
        let graph_rows = |id| {
            let part = epoch.cover.as_ref()?.parts().iter().find(|p| p.rows.source().id() == id)?;
            Some(Cover::covered_rows(part, nodes))
        };
        let head_bytes = |rows: usize| rows * self.dim * 4;
        let segments = epoch
            .sources()
            .map(|source| {
                let rows = source.len();
                let (state, kind, bytes, build_time, mapped, indexed_vectors) = match source {
                    Source::Sealed(segment) => (
                        SegmentState::Sealed,
                        segment.kind(),
                        segment.bytes(),
                        segment.build_time(),
                        segment.data().rows().is_mapped(),
                        segment.indexed_vectors(),
                    ),
                    Source::Head(head) => {
                        let state = match std::ptr::eq(head, &*epoch.head) {
                            true => SegmentState::Head,
                            false => SegmentState::Frozen,
                        };
                        (state, SegmentKind::Exact, head_bytes(rows), None, false, None)
                    }
                };
                let live_rows = rows.saturating_sub(source.tombstones().dead_count());
                SegmentStats {
                    id: source.id().0,
                    state,
                    kind,
                    rows,
                    live_rows,
                    bytes,
                    build_time,
                    mapped,
                    indexed_vectors,
                    graph_rows: graph_rows(source.id()),
                }
            })
            .collect();
        Stats {
            dim: self.dim,
            metric: self.metric,
            chunks: self.len(),
            documents: self.maps.documents(),
            next_seq: self.seq.next_seq(),
            generation: epoch.generation,
            segments,
            vocabulary_terms: self.vocabulary.len(),
            graph: epoch.cover.as_ref().map(|cover| GraphStats { nodes, bytes: cover.graph.bytes() }),
            persists: PersistStats::default(),
        }
    }
}
