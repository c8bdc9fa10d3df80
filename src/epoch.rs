//! The epoch: the one pointer through which readers find every row, and its one publish path.
//!
//! # Protocol
//!
//! An [`Epoch`] is immutable: a list of sealed segments, a list of frozen heads (full, waiting to
//! be sealed) and the current head. Readers load the current epoch once per search or persist and
//! use only it. Writers never modify an epoch; they append rows to its head (a lock-free protocol
//! of its own, [`crate::head`]) and, when the head is full, publish a *new* epoch with
//! [`EpochCell::rcu`](crate::sync): the full head moves to `frozen` and a fresh head takes its
//! place. Sealing publishes an epoch in which a settled frozen head is replaced by the segment
//! built from it. Publishing copies only the lists of `Arc`s, never rows or vectors.
//!
//! # Invariants
//!
//! - E1: every row ever appended is reachable from every epoch published after the append
//!   (rotation keeps the full head in `frozen`; sealing swaps a head for a segment holding the same
//!   rows under the same id).
//! - E2: no id is in two lists of one epoch, so no row is searched twice.
//! - E3: an epoch, and every head and segment it names, lives as long as any reader holds it
//!   (`Arc`); old segments are freed when the last reader drops the last epoch naming them.
//!
//! # Orderings
//!
//! Loads and stores of the epoch pointer are those of `ArcSwap` (a load sees a fully built epoch).
//! A writer that appends to a head it found in epoch `E` may be racing a rotation; that is fine,
//! because the full head stays reachable (E1) and a head only accepts rows while it has room.

use crate::chunk::RowMeta;
use crate::head::{Head, HeadRow};
use crate::segment::{ExactSegment, RowLoc, SegmentId, Source};
use crate::sync::{Arc, AtomicU64, EpochCell, EpochGuard, Ordering};

/// One published state of the index's storage. See the module docs.
pub struct Epoch {
    /// Bumped by every publish; for stats and debugging.
    pub generation: u64,
    pub sealed: Vec<Arc<ExactSegment>>,
    pub frozen: Vec<Arc<Head>>,
    pub head: Arc<Head>,
}

impl Epoch {
    /// Every head and segment of this epoch, oldest first.
    pub fn sources(&self) -> impl Iterator<Item = Source<'_>> {
        let sealed = self.sealed.iter().map(|s| Source::Sealed(s));
        let heads = self
            .frozen
            .iter()
            .chain(std::iter::once(&self.head))
            .map(|h| Source::Head(h));
        sealed.chain(heads)
    }

    /// The head or segment with this id.
    pub fn find(&self, id: SegmentId) -> Option<Source<'_>> {
        self.sources().find(|s| s.id() == id)
    }
}

/// Owns the current epoch and the publish path.
pub struct Epochs {
    current: EpochCell<Epoch>,
    next_segment: AtomicU64,
    head_capacity: usize,
    dim: usize,
}

impl Epochs {
    /// Starts with `sealed` (for example, loaded from disk) and an empty head.
    pub fn new(dim: usize, head_capacity: usize, sealed: Vec<Arc<ExactSegment>>) -> Self {
        let first_free = sealed.iter().map(|s| s.id().0 + 1).max().unwrap_or(0);
        let head = Arc::new(Head::new(SegmentId(first_free), head_capacity));
        let epoch = Epoch {
            generation: 0,
            sealed,
            frozen: Vec::new(),
            head,
        };
        Self {
            current: EpochCell::new(Arc::new(epoch)),
            next_segment: AtomicU64::new(first_free + 1),
            head_capacity,
            dim,
        }
    }

    /// The current epoch, for a short read (a search). Use [`Epochs::load_full`] across I/O.
    pub fn load(&self) -> EpochGuard<Epoch> {
        self.current.load()
    }

    pub fn load_full(&self) -> Arc<Epoch> {
        self.current.load_full()
    }

    /// Appends a row to the current head, rotating to a fresh head when it is full.
    /// Returns where the row went and whether this call froze a head (so sealing has work).
    pub fn append(&self, meta: Arc<RowMeta>, vector: Box<[f32]>) -> (RowLoc, bool) {
        let mut row = HeadRow { meta, vector };
        let mut froze = false;
        loop {
            let head = self.current.load().head.clone();
            match head.try_append(row) {
                Ok(index) => {
                    let loc = RowLoc {
                        segment: head.id(),
                        row: index as u32,
                    };
                    return (loc, froze);
                }
                Err(back) => {
                    row = back;
                    froze |= self.rotate(&head);
                }
            }
        }
    }

    /// Publishes an epoch in which `full` is frozen and a fresh head takes its place, unless
    /// another writer already did. Returns whether this call did it.
    fn rotate(&self, full: &Arc<Head>) -> bool {
        if !Arc::ptr_eq(&self.current.load().head, full) {
            return false; // somebody rotated already; don't allocate a head for nothing
        }
        // Relaxed: ids only need to be unique.
        let id = SegmentId(self.next_segment.fetch_add(1, Ordering::Relaxed));
        let fresh = Arc::new(Head::new(id, self.head_capacity));
        let mut rotated = false;
        self.current.rcu(|cur| {
            rotated = Arc::ptr_eq(&cur.head, full);
            if !rotated {
                return cur.clone();
            }
            let mut frozen = cur.frozen.clone();
            frozen.push(cur.head.clone());
            Arc::new(Epoch {
                generation: cur.generation + 1,
                sealed: cur.sealed.clone(),
                frozen,
                head: fresh.clone(),
            })
        });
        rotated
    }

    /// Seals every settled frozen head into an exact segment and publishes the result.
    /// Returns how many heads are still frozen (not settled yet) afterwards.
    pub fn seal_settled(&self) -> usize {
        let epoch = self.load_full();
        // Build outside `rcu`: its closure may run more than once.
        let built: Vec<Arc<ExactSegment>> = epoch
            .frozen
            .iter()
            .filter_map(|h| ExactSegment::seal(h, self.dim))
            .map(Arc::new)
            .collect();
        if built.is_empty() {
            return epoch.frozen.len();
        }
        let published = self.current.rcu(|cur| {
            let (done, still): (Vec<_>, Vec<_>) = cur
                .frozen
                .iter()
                .cloned()
                .partition(|h| built.iter().any(|s| s.id() == h.id()));
            if done.is_empty() {
                return cur.clone(); // another sealer got there first
            }
            let mut sealed = cur.sealed.clone();
            sealed.extend(
                built
                    .iter()
                    .filter(|s| done.iter().any(|h| h.id() == s.id()))
                    .cloned(),
            );
            sealed.sort_by_key(|s| s.id());
            Arc::new(Epoch {
                generation: cur.generation + 1,
                sealed,
                frozen: still,
                head: cur.head.clone(),
            })
        });
        drop(published);
        self.load().frozen.len()
    }
}
