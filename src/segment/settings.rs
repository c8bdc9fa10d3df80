//! How each sealed segment is indexed: its kind, and the FAISS build and search settings.

use std::fmt;

use crate::error::{Error, Result};
use crate::metric::Metric;

/// How a segment is searched.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SegmentKind {
    /// Scanned row by row: exact, nothing to build. Heads are always searched this way.
    Exact,
    /// Through a FAISS index made from this factory string: `"Flat"`, `"HNSW32"`,
    /// `"HNSW32,SQ8"`, `"IVF1024,Flat"`, ...
    Faiss(String),
}

impl fmt::Display for SegmentKind {
    /// `exact`, or the factory string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentKind::Exact => f.write_str("exact"),
            SegmentKind::Faiss(factory) => f.write_str(factory),
        }
    }
}

/// The index each sealed segment gets, built in the background off the write path.
///
/// Defaults, for 10k-10M chunks of 384-d embeddings: `"HNSW32"` with efConstruction 80 and
/// efSearch 64. HNSW answers a query in roughly logarithmic time with recall near 0.95-0.99 at
/// these settings and needs no training (an IVF index needs a training set per segment, and small
/// segments train badly); M=32 costs 256 bytes of graph per vector, small beside a 1.5 KB 384-d
/// vector. Segments below `min_rows` rows stay exact: scanning a few thousand rows is as fast as
/// walking a graph, and skips the build. Raise `ef_search` (or pass `SearchOptions::ef_search`)
/// for recall, lower it for speed.
///
/// ```
/// use vecindex::{SegmentIndex, SegmentKind};
///
/// let hnsw = SegmentIndex::faiss("HNSW32").ef_search(128).min_rows(0);
/// assert_eq!(hnsw.kind, SegmentKind::Faiss("HNSW32".into()));
/// assert!(SegmentIndex::exact().is_exact());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SegmentIndex {
    /// Exact, or a FAISS factory string. The default is `"HNSW32"` with the `faiss` feature and
    /// exact without it.
    pub kind: SegmentKind,
    /// HNSW graph quality at build time (default 80).
    pub ef_construction: usize,
    /// HNSW candidate list at query time (default 64); per query: `SearchOptions::ef_search`.
    pub ef_search: usize,
    /// IVF lists probed at query time (default 16); per query: `SearchOptions::nprobe`.
    pub nprobe: usize,
    /// Segments with fewer rows stay exact (default 2048).
    pub min_rows: usize,
    /// OpenMP threads for building an index (default 0: half the cores, at least one). Builds
    /// run on the background worker, off every caller's path; with every core, a build would
    /// take the searches' cores for as long as it runs.
    pub build_threads: usize,
    /// OpenMP threads per query (default 1). Many threads search at once; giving each query a
    /// team of threads would oversubscribe the cores. Raise it only for few, large queries.
    pub search_threads: usize,
}

impl Default for SegmentIndex {
    fn default() -> Self {
        Self {
            kind: if cfg!(feature = "faiss") { SegmentKind::Faiss("HNSW32".to_owned()) } else { SegmentKind::Exact },
            ef_construction: 80,
            ef_search: 64,
            nprobe: 16,
            min_rows: 2048,
            build_threads: 0,
            search_threads: 1,
        }
    }
}

impl SegmentIndex {
    /// Exact (scanned) segments, other settings at their defaults.
    pub fn exact() -> Self {
        Self { kind: SegmentKind::Exact, ..Self::default() }
    }

    /// A FAISS factory string, other settings at their defaults.
    pub fn faiss(factory: impl Into<String>) -> Self {
        Self { kind: SegmentKind::Faiss(factory.into()), ..Self::default() }
    }

    pub fn is_exact(&self) -> bool {
        self.kind == SegmentKind::Exact
    }

    /// The FAISS factory string, unless segments are exact.
    pub fn factory(&self) -> Option<&str> {
        match &self.kind {
            SegmentKind::Exact => None,
            SegmentKind::Faiss(factory) => Some(factory),
        }
    }

    /// HNSW's M for a plain HNSW factory string (`"HNSW32"`: 32), `None` for any other kind.
    /// Such an index does not give each segment a FAISS graph: all its rows share one graph,
    /// which grows as rows are added and is searched once per query (`epoch/cover.rs`).
    pub fn graph_links(&self) -> Option<usize> {
        let digits = self.factory()?.strip_prefix("HNSW")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().filter(|&m: &usize| (2..=256).contains(&m))
    }

    pub fn ef_construction(mut self, ef: usize) -> Self {
        self.ef_construction = ef;
        self
    }

    pub fn ef_search(mut self, ef: usize) -> Self {
        self.ef_search = ef;
        self
    }

    pub fn nprobe(mut self, nprobe: usize) -> Self {
        self.nprobe = nprobe;
        self
    }

    pub fn min_rows(mut self, rows: usize) -> Self {
        self.min_rows = rows;
        self
    }

    /// The OpenMP threads a build uses: [`SegmentIndex::build_threads`], or for 0 half the
    /// cores, at least one.
    pub fn effective_build_threads(&self) -> usize {
        match self.build_threads {
            0 => std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1)),
            threads => threads,
        }
    }

    pub fn build_threads(mut self, threads: usize) -> Self {
        self.build_threads = threads;
        self
    }

    pub fn search_threads(mut self, threads: usize) -> Self {
        self.search_threads = threads;
        self
    }

    /// Checks that segments of this kind can be built for `metric` and `dim`: a FAISS factory
    /// string must be one FAISS accepts, in a build that has FAISS.
    pub(crate) fn check(&self, metric: Metric, dim: usize) -> Result<()> {
        let Some(factory) = self.factory() else { return Ok(()) };
        if factory.eq_ignore_ascii_case("exact") {
            return Err(Error::InvalidConfig {
                reason: "\"exact\" is not a FAISS factory string: use SegmentIndex::exact()".into(),
            });
        }
        #[cfg(feature = "faiss")]
        return crate::segment::faiss::FaissIndex::check_factory(factory, metric, dim);
        #[cfg(not(feature = "faiss"))]
        {
            // Plain HNSW needs no FAISS: the index's rows share the crate's own graph.
            if self.graph_links().is_some() {
                return Ok(());
            }
            let _ = (metric, dim);
            Err(Error::InvalidConfig {
                reason: format!("FAISS segments ({factory:?}) need the `faiss` feature; use SegmentIndex::exact()"),
            })
        }
    }
}
