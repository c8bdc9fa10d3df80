//! Index configuration.

use crate::error::{Error, Result};
use crate::metric::Metric;

/// How an index is built. `dim` is required; everything else has a default.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexConfig {
    /// Vector dimension; every vector added or searched must have it.
    pub dim: usize,
    /// Default: [`Metric::Cosine`].
    pub metric: Metric,
    /// Rows per head. A full head is frozen at once (writers move to a fresh head) and sealed
    /// into a segment off the write path. Default 4096: a head is scanned exactly on every
    /// search, so it should stay small; sealing it costs one copy of its vectors.
    pub head_capacity: usize,
    /// Seal frozen heads on a background thread owned by the index (default). When false, call
    /// [`VectorIndex::maintain`](crate::VectorIndex::maintain) yourself; until then frozen heads
    /// are searched exactly, so nothing is ever invisible.
    pub background: bool,
    /// How many writers may be inside a mutation at once (default 64); more wait for a slot.
    pub writer_slots: usize,
    /// Most distinct terms the concept vocabulary keeps (default 50 000).
    pub vocabulary_limit: usize,
}

impl IndexConfig {
    /// Defaults for vectors of dimension `dim`.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            metric: Metric::Cosine,
            head_capacity: 4096,
            background: true,
            writer_slots: 64,
            vocabulary_limit: 50_000,
        }
    }

    pub fn metric(mut self, metric: Metric) -> Self {
        self.metric = metric;
        self
    }

    pub fn head_capacity(mut self, rows: usize) -> Self {
        self.head_capacity = rows;
        self
    }

    pub fn background(mut self, on: bool) -> Self {
        self.background = on;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |reason: &str| {
            Err(Error::InvalidConfig {
                reason: reason.to_owned(),
            })
        };
        if self.dim == 0 {
            return bad("dim must be at least 1");
        }
        if self.head_capacity == 0 || self.head_capacity > u32::MAX as usize {
            return bad("head_capacity must be between 1 and 2^32-1");
        }
        if self.writer_slots == 0 {
            return bad("writer_slots must be at least 1");
        }
        Ok(())
    }
}
