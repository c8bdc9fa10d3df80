//! The index's shared state: what the write path (`write`), the read path (`read`) and
//! maintenance (`maintain`) all work on, each through its own protocol.

use crate::epoch::Epochs;
use crate::maps::Maps;
use crate::metric::Metric;
use crate::segment::Segment;
use crate::seq::{SeqNo, Sequencer};
use crate::sync::{Arc, AtomicUsize, OnceLock, Ordering};
use crate::vocabulary::Vocabulary;
use crate::wal::Log;

/// See the module docs.
pub(crate) struct State {
    pub(crate) dim: usize,
    pub(crate) metric: Metric,
    /// Seq numbers and the in-flight table: views and snapshots.
    pub(crate) seq: Sequencer,
    /// The one pointer to every row.
    pub(crate) epochs: Epochs,
    /// The id maps and the document locks.
    pub(crate) maps: Maps,
    pub(crate) vocabulary: Vocabulary,
    /// The write-ahead log, once the index is bound to a directory (after replay).
    pub(crate) log: OnceLock<Arc<Log>>,
    /// Live chunks.
    live: AtomicUsize,
}

/// What a new [`State`] is made of.
pub(crate) struct Parts {
    pub(crate) dim: usize,
    pub(crate) metric: Metric,
    pub(crate) first_seq: SeqNo,
    pub(crate) writer_slots: usize,
    pub(crate) head_capacity: usize,
    pub(crate) vocabulary_limit: usize,
    /// Seeds the document locks' hash.
    pub(crate) seed: u64,
    /// Segments opened from disk, if any.
    pub(crate) sealed: Vec<Arc<Segment>>,
}

impl State {
    pub(crate) fn new(parts: Parts) -> Self {
        Self {
            dim: parts.dim,
            metric: parts.metric,
            seq: Sequencer::new(parts.first_seq, parts.writer_slots),
            epochs: Epochs::new(parts.dim, parts.head_capacity, parts.sealed),
            maps: Maps::new(parts.seed),
            vocabulary: Vocabulary::new(parts.vocabulary_limit),
            log: OnceLock::new(),
            live: AtomicUsize::new(0),
        }
    }

    /// Live chunks.
    pub(crate) fn len(&self) -> usize {
        // Relaxed, as every access: a counter for len(), exact whenever writers are quiescent.
        self.live.load(Ordering::Relaxed)
    }

    /// Counts `added` new live chunks and `removed` gone.
    pub(crate) fn count(&self, added: usize, removed: usize) {
        self.live.fetch_add(added, Ordering::Relaxed);
        self.live.fetch_sub(removed, Ordering::Relaxed);
    }

    /// Sets the count (after an open).
    pub(crate) fn set_len(&self, live: usize) {
        self.live.store(live, Ordering::Relaxed);
    }
}
