//! Index configuration: [`IndexConfig`], and how it is persisted and opened again.

// The merge policy is held in std's `Arc`, not the shim's: it is configuration, shared by no
// protocol, and loom's `Arc` cannot hold a trait object.
#![allow(clippy::disallowed_types)]

use crate::wal::Durability;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::maintain::{MergePolicy, TieredMergePolicy};
use crate::metric::Metric;
use crate::persist::manifest::StoredConfig;
use crate::segment::{SegmentIndex, SegmentKind};

/// How an index is built. `dim` is required; everything else has a default and a setter.
///
/// ```
/// use vecindex::{IndexConfig, Metric, SegmentIndex, TieredMergePolicy};
///
/// let config = IndexConfig::new(384)
///     .metric(Metric::L2)
///     .head_capacity(1024)
///     .segment_index(SegmentIndex::faiss("HNSW32").ef_search(128))
///     .merge_policy(TieredMergePolicy::default().merge_factor(4));
/// assert_eq!(config.head_capacity, 1024);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct IndexConfig {
    /// Vector dimension; every vector added or searched must have it.
    pub dim: usize,
    /// Default: [`Metric::Cosine`].
    pub metric: Metric,
    /// Rows per head. A full head is frozen at once (writers move to a fresh head) and sealed
    /// into a segment off the write path. A head is scanned exactly on every search, so it
    /// should stay small; sealing it costs one copy of its vectors. Default:
    /// [`IndexConfig::default_head_capacity`], sized by the floats a scan reads.
    pub head_capacity: usize,
    /// Seal frozen heads on a background thread owned by the index (default). When false, call
    /// [`VectorIndex::maintain`](crate::VectorIndex::maintain) yourself; until then frozen heads
    /// are searched exactly, so nothing is ever invisible.
    pub background: bool,
    /// How many writers may be inside a mutation at once (default 64); more wait for a slot.
    pub writer_slots: usize,
    /// Most distinct terms the concept vocabulary keeps (default 50 000).
    pub vocabulary_limit: usize,
    /// When sealed segments are merged and vacuumed (default: [`TieredMergePolicy`]).
    pub merge_policy: Arc<dyn MergePolicy>,
    /// The index built over each sealed segment.
    pub segment_index: SegmentIndex,
    /// What a write's return promises once the index is bound to a directory
    /// ([`VectorIndex::create`](crate::VectorIndex::create) or a writable open); an index made
    /// with [`VectorIndex::new`](crate::VectorIndex::new) has no log. Not persisted: each open
    /// chooses (default [`Durability::ProcessCrash`]).
    pub durability: Durability,
}

/// Two configurations are equal when every setting is, the merge policies compared by what
/// they print (their `Debug` form), which for the built-in policy is all of its settings.
impl PartialEq for IndexConfig {
    fn eq(&self, other: &Self) -> bool {
        self.dim == other.dim
            && self.metric == other.metric
            && self.head_capacity == other.head_capacity
            && self.background == other.background
            && self.writer_slots == other.writer_slots
            && self.vocabulary_limit == other.vocabulary_limit
            && self.segment_index == other.segment_index
            && self.durability == other.durability
            && format!("{:?}", self.merge_policy) == format!("{:?}", other.merge_policy)
    }
}

impl IndexConfig {
    /// Defaults for vectors of dimension `dim`.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            metric: Metric::Cosine,
            head_capacity: Self::default_head_capacity(dim),
            background: true,
            writer_slots: 64,
            vocabulary_limit: 50_000,
            merge_policy: Arc::new(TieredMergePolicy::default()),
            segment_index: SegmentIndex::default(),
            durability: Durability::default(),
        }
    }

    /// The default rows per head for vectors of `dim` floats: as many as make 128 Ki floats
    /// (512 KiB, which a core's L2 cache holds), between 256 and 4096 rows. Every search scans
    /// the head row by row, so its cost should stay below one graph walk's at every dimension:
    /// 4096 rows at 32 dimensions or fewer, 2621 at 50, 341 at 384, 256 from 512 on.
    ///
    /// ```
    /// use vecindex::IndexConfig;
    ///
    /// assert_eq!(IndexConfig::default_head_capacity(50), 2621);
    /// assert_eq!(IndexConfig::new(384).head_capacity, 341);
    /// ```
    pub fn default_head_capacity(dim: usize) -> usize {
        const HEAD_SCAN_FLOATS: usize = 128 * 1024;
        (HEAD_SCAN_FLOATS / dim.max(1)).clamp(256, 4096)
    }

    pub fn metric(mut self, metric: Metric) -> Self {
        self.metric = metric;
        self
    }

    pub fn head_capacity(mut self, rows: usize) -> Self {
        self.head_capacity = rows;
        self
    }

    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    pub fn background(mut self, on: bool) -> Self {
        self.background = on;
        self
    }

    pub fn writer_slots(mut self, slots: usize) -> Self {
        self.writer_slots = slots;
        self
    }

    pub fn vocabulary_limit(mut self, terms: usize) -> Self {
        self.vocabulary_limit = terms;
        self
    }

    pub fn segment_index(mut self, segment_index: SegmentIndex) -> Self {
        self.segment_index = segment_index;
        self
    }

    pub fn merge_policy(mut self, policy: impl MergePolicy + 'static) -> Self {
        self.merge_policy = Arc::new(policy);
        self
    }

    /// Checks every setting; the segment index's kind is checked by the segment builder.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero dimension, capacity or writer count, or a segment
    /// index this build cannot make.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |reason: &str| Err(Error::InvalidConfig { reason: reason.to_owned() });
        if self.dim == 0 {
            return bad("dim must be at least 1");
        }
        if self.head_capacity == 0 || self.head_capacity > u32::MAX as usize {
            return bad("head_capacity must be between 1 and 2^32-1");
        }
        if self.writer_slots == 0 {
            return bad("writer_slots must be at least 1");
        }
        self.segment_index.check(self.metric, self.dim)
    }

    /// The settings a persist records (all but `background`). A merge policy other than the
    /// tiered one is recorded as the tiered default: it is code, not settings.
    pub(crate) fn to_stored(&self) -> StoredConfig {
        let n = |v: usize| v as u64;
        let default_tiered = TieredMergePolicy::default();
        let tiered = self.merge_policy.as_tiered().unwrap_or(&default_tiered);
        let s = &self.segment_index;
        StoredConfig {
            head_capacity: n(self.head_capacity),
            writer_slots: n(self.writer_slots),
            vocabulary_limit: n(self.vocabulary_limit),
            merge_factor: n(tiered.merge_factor),
            max_segment_rows: n(tiered.max_segment_rows),
            vacuum_dead_fraction: tiered.vacuum_dead_fraction,
            factory: s.kind.to_string(),
            ef_construction: n(s.ef_construction),
            ef_search: n(s.ef_search),
            nprobe: n(s.nprobe),
            min_rows: n(s.min_rows),
            build_threads: n(s.build_threads),
            search_threads: n(s.search_threads),
        }
    }

    /// The settings `stored` records, for an index of `dim` and `metric`. Values too large for
    /// this platform saturate.
    pub(crate) fn from_stored(stored: &StoredConfig, dim: usize, metric: Metric) -> Self {
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        let kind = match stored.factory.as_str() {
            "exact" => SegmentKind::Exact,
            factory => SegmentKind::Faiss(factory.to_owned()),
        };
        Self {
            head_capacity: n(stored.head_capacity),
            writer_slots: n(stored.writer_slots),
            vocabulary_limit: n(stored.vocabulary_limit),
            merge_policy: Arc::new(
                TieredMergePolicy::default()
                    .merge_factor(n(stored.merge_factor))
                    .max_segment_rows(n(stored.max_segment_rows))
                    .vacuum_dead_fraction(stored.vacuum_dead_fraction),
            ),
            segment_index: SegmentIndex {
                kind,
                ef_construction: n(stored.ef_construction),
                ef_search: n(stored.ef_search),
                nprobe: n(stored.nprobe),
                min_rows: n(stored.min_rows),
                build_threads: n(stored.build_threads),
                search_threads: n(stored.search_threads),
            },
            ..Self::new(dim).metric(metric)
        }
    }

    /// The configuration to open a snapshot of `dim` and `metric` (persisted with `stored`)
    /// with: `requested` if given (which must have that dimension and metric), else the stored
    /// one (with this build's default segment index if the stored one cannot be built here, for
    /// example a FAISS factory string in a build without the `faiss` feature).
    pub(crate) fn resolve(
        requested: Option<&IndexConfig>,
        stored: &StoredConfig,
        dim: usize,
        metric: Metric,
        path: &std::path::Path,
    ) -> Result<Self> {
        if let Some(config) = requested {
            config.validate()?;
            if (config.dim, config.metric) != (dim, metric) {
                return Err(Error::Incompatible {
                    path: path.to_owned(),
                    expected: format!("dim {} {:?}", config.dim, config.metric),
                    found: format!("dim {dim} {metric:?}"),
                });
            }
            return Ok(config.clone());
        }
        let stored = Self::from_stored(stored, dim, metric);
        match stored.validate() {
            Ok(()) => Ok(stored),
            Err(e) => {
                tracing::warn!(error = %e, "the stored segment index cannot be used; using this build's default");
                let config = Self { segment_index: SegmentIndex::default(), ..stored };
                config.validate()?;
                Ok(config)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_settings_come_back() {
        let config = IndexConfig::new(4)
            .head_capacity(100)
            .writer_slots(3)
            .vocabulary_limit(7)
            .merge_policy(TieredMergePolicy::default().merge_factor(3).vacuum_dead_fraction(0.5))
            .segment_index(SegmentIndex::faiss("HNSW16").ef_search(9).min_rows(1));
        let back = IndexConfig::from_stored(&config.to_stored(), 4, Metric::Cosine);
        assert_eq!(back, config);
        let exact = IndexConfig::new(4).segment_index(SegmentIndex::exact());
        assert_eq!(exact.to_stored().factory, "exact", "the file format's word for it");
        assert_eq!(IndexConfig::from_stored(&exact.to_stored(), 4, Metric::Cosine), exact);
        assert_ne!(config, IndexConfig::new(4).head_capacity(100));
    }
}
