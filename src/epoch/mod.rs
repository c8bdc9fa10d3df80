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
//! - E4: a merge drops only rows deleted by operations below its `horizon`, and every epoch
//!   carries the highest horizon of the merges it contains. A reader uses an epoch only with a
//!   view that covers its horizon ([`ReadView::covers`](crate::seq::ReadView::covers)), so no
//!   reader misses a row its view still considers live.
//! - E5: segments merged away stay in `retired` (found by id, never searched) until every id-map
//!   entry has moved to the merged segment, so a delete that read an old location still lands.
//!
//! # Orderings
//!
//! Loads and stores of the epoch pointer are those of `ArcSwap` (a load sees a fully built epoch).
//! A writer that appends to a head it found in epoch `E` may be racing a rotation; that is fine,
//! because the full head stays reachable (E1) and a head only accepts rows while it has room.

pub(crate) mod cover;
pub(crate) mod head;
mod snapshot;
mod source;

pub(crate) use snapshot::GraphWritten;
pub(crate) use source::Source;

use crate::epoch::cover::Cover;
use crate::epoch::head::{Head, HeadRow};
use crate::ids::{RowLoc, SegmentId};
use crate::rows::RowMeta;
use crate::segment::Segment;
use crate::seq::{ReadView, SeqNo, Sequencer};
use crate::sync::{Arc, AtomicU64, EpochCell, EpochGuard, Ordering, bug};

/// One published state of the index's storage. See the module docs.
pub struct Epoch {
    /// Bumped by every publish; for stats and debugging.
    pub generation: u64,
    pub sealed: Vec<Arc<Segment>>,
    pub frozen: Vec<Arc<Head>>,
    pub head: Arc<Head>,
    /// Merged away; reachable by id for deletes in flight, never searched (E5).
    pub retired: Vec<Arc<Segment>>,
    /// Views must cover this seq to read this epoch (E4).
    pub horizon: SeqNo,
    /// One graph over the rows of several heads and segments ([`cover`]), for plain HNSW
    /// indexes; the containers it covers are searched through it.
    pub cover: Option<Arc<Cover>>,
}

impl Epoch {
    /// Every head and segment of this epoch, oldest first.
    pub fn sources(&self) -> impl Iterator<Item = Source<'_>> {
        let sealed = self.sealed.iter().map(|s| Source::Sealed(s));
        let heads = self.frozen.iter().chain(std::iter::once(&self.head)).map(|h| Source::Head(h));
        sealed.chain(heads)
    }

    /// The head or segment with this id, including retired segments.
    pub fn find(&self, id: SegmentId) -> Option<Source<'_>> {
        self.sources().chain(self.retired.iter().map(|s| Source::Sealed(s))).find(|s| s.id() == id)
    }

    /// Marks the row at `loc` deleted by `seq`, forwarding the delete to the segment a merge
    /// moved the row to. False if it was already deleted or is unknown.
    pub fn delete(&self, loc: RowLoc, seq: SeqNo) -> bool {
        self.find(loc.segment).is_some_and(|source| source.tombstones().delete_and_forward(loc.row as usize, seq))
    }

    /// Whether `loc` holds a live row of chunk `chunk_id` in document `doc_id`.
    pub fn holds_live(&self, loc: RowLoc, chunk_id: &str, doc_id: &str) -> bool {
        let Some(source) = self.find(loc.segment) else {
            return false;
        };
        let row = loc.row as usize;
        source.tombstones().deleted_at(row).is_none()
            && source.with_row(row, |r, _| r.chunk_id() == chunk_id && r.doc_id() == doc_id).unwrap_or(false)
    }

    /// A copy with a new generation, for the publish path to modify.
    fn next(&self) -> Epoch {
        Epoch {
            generation: self.generation + 1,
            sealed: self.sealed.clone(),
            frozen: self.frozen.clone(),
            head: self.head.clone(),
            retired: self.retired.clone(),
            horizon: self.horizon,
            cover: self.cover.clone(),
        }
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
    pub fn new(dim: usize, head_capacity: usize, sealed: Vec<Arc<Segment>>) -> Self {
        let first_free = sealed.iter().map(|s| s.id().0 + 1).max().unwrap_or(0);
        let head = Arc::new(Head::new(SegmentId(first_free), head_capacity, dim));
        let epoch =
            Epoch { generation: 0, sealed, frozen: Vec::new(), head, retired: Vec::new(), horizon: 0, cover: None };
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

    /// A view and an epoch it may read: the view first (every operation it includes put its
    /// rows into a head reachable from this epoch or a later one, E1), then the epoch, again if a
    /// merge published meanwhile raised the horizon past the view (E4). Searches take
    /// `Sequencer::view` and a short-lived `Epochs::load`; persists `Sequencer::snapshot` and
    /// `Epochs::load_full`, which may be held across I/O.
    pub fn view_and_epoch<E: std::ops::Deref<Target = Epoch>>(
        &self,
        seq: &Sequencer,
        take_view: impl Fn(&Sequencer) -> ReadView,
        load: impl Fn(&Self) -> E,
    ) -> (ReadView, E) {
        loop {
            let (view, epoch) = if bug!("epoch_before_view") {
                // An injected bug for the loom models: the epoch first.
                let epoch = load(self);
                (take_view(seq), epoch)
            } else {
                (take_view(seq), load(self))
            };
            if view.covers(epoch.horizon) {
                return (view, epoch);
            }
        }
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
                    let loc = RowLoc { segment: head.id(), row: index as u32 };
                    return (loc, froze);
                }
                Err(back) => {
                    row = back;
                    froze |= self.rotate(&head);
                }
            }
        }
    }

    /// Closes the current head if it holds rows ([`Head::close`]) and rotates to a fresh one, so
    /// its rows are sealed now rather than when it fills. Writers racing it move to the fresh
    /// head as they would from a full one. Returns the id of the head it froze.
    pub fn close_head(&self) -> Option<SegmentId> {
        let head = self.current.load().head.clone();
        if head.len() == 0 {
            return None; // nothing to seal: an empty segment would be of no use
        }
        head.close();
        // Whether this call or a writer that found the head closed publishes the rotation, the
        // closed head ends in `frozen` (E1).
        self.rotate(&head);
        Some(head.id())
    }

    /// Publishes an epoch in which `full` is frozen and a fresh head takes its place, unless
    /// another writer already did. Returns whether this call did it.
    fn rotate(&self, full: &Arc<Head>) -> bool {
        if !Arc::ptr_eq(&self.current.load().head, full) {
            return false; // somebody rotated already; don't allocate a head for nothing
        }
        let fresh = Arc::new(Head::new(self.allocate_id(), self.head_capacity, self.dim));
        let mut rotated = false;
        self.current.rcu(|cur| {
            rotated = Arc::ptr_eq(&cur.head, full);
            if !rotated {
                return cur.clone();
            }
            let mut next = cur.next();
            // An injected bug for the loom models leaves the full head out, and its rows with it.
            if !bug!("rotate_drops_full_head") {
                next.frozen.push(cur.head.clone());
            }
            next.head = fresh.clone();
            Arc::new(next)
        });
        rotated
    }

    /// A fresh segment id.
    pub fn allocate_id(&self) -> SegmentId {
        // Relaxed: ids only need to be unique.
        SegmentId(self.next_segment.fetch_add(1, Ordering::Relaxed))
    }

    /// Seals every settled frozen head into an exact segment and publishes the result.
    /// Returns how many heads it sealed, and how many are still frozen (not settled yet).
    pub fn seal_settled(&self) -> (usize, usize) {
        let epoch = self.load_full();
        // Build outside `rcu`: its closure may run more than once.
        let built: Vec<Arc<Segment>> =
            epoch.frozen.iter().filter_map(|h| h.seal(self.dim)).map(|data| Arc::new(Segment::exact(data))).collect();
        let mut sealed = 0;
        if !built.is_empty() {
            self.current.rcu(|cur| {
                let (done, still): (Vec<_>, Vec<_>) =
                    cur.frozen.iter().cloned().partition(|h| built.iter().any(|s| s.id() == h.id()));
                sealed = done.len();
                if done.is_empty() {
                    return cur.clone(); // another sealer got there first
                }
                let mut next = cur.next();
                let sealed: Vec<Arc<Segment>> =
                    built.iter().filter(|s| done.iter().any(|h| h.id() == s.id())).cloned().collect();
                next.cover = cur.cover.as_ref().map(|cover| Arc::new(cover.with_replaced(&sealed)));
                next.sealed.extend(sealed);
                next.sealed.sort_by_key(|s| s.id());
                next.frozen = still;
                Arc::new(next)
            });
        }
        (sealed, self.load().frozen.len())
    }

    /// Replaces the sealed segment `old` by `new` (the same rows, now indexed). Returns false,
    /// publishing nothing, if `old` is no longer in the current epoch (it was merged away).
    pub fn replace_sealed(&self, old: &Arc<Segment>, new: Arc<Segment>) -> bool {
        let mut replaced = false;
        self.current.rcu(|cur| {
            let Some(at) = cur.sealed.iter().position(|s| Arc::ptr_eq(s, old)) else {
                replaced = false;
                return cur.clone();
            };
            replaced = true;
            let mut next = cur.next();
            next.sealed[at] = new.clone();
            // A part of the cover holds the container itself: the new version, same rows.
            next.cover = cur.cover.as_ref().map(|cover| Arc::new(cover.with_replaced(std::slice::from_ref(&new))));
            Arc::new(next)
        });
        replaced
    }

    /// Publishes the result of a merge: `sources` leave the searched list for `retired`, and
    /// `merged` (if any row survived) joins it; the horizon rises to `horizon`. Returns false,
    /// publishing nothing, if some source is no longer in the current epoch.
    pub fn publish_merge(&self, sources: &[Arc<Segment>], merged: Option<Arc<Segment>>, horizon: SeqNo) -> bool {
        let mut published = false;
        self.current.rcu(|cur| {
            published = sources.iter().all(|src| cur.sealed.iter().any(|s| Arc::ptr_eq(s, src)));
            if !published {
                return cur.clone();
            }
            let mut next = cur.next();
            // A merge renumbers its sources' rows: a cover of any of them is void (C3); the
            // inserter starts a new one.
            if next.cover.as_ref().is_some_and(|cover| sources.iter().any(|src| cover.covers(src.id()))) {
                next.cover = None;
            }
            next.sealed.retain(|s| !sources.iter().any(|src| Arc::ptr_eq(s, src)));
            next.sealed.extend(merged.clone());
            next.sealed.sort_by_key(|s| s.id());
            next.retired.extend(sources.iter().cloned());
            next.horizon = next.horizon.max(horizon);
            Arc::new(next)
        });
        published
    }

    /// Replaces the cover `current` (`None`: no cover) by `next`. Returns false, publishing
    /// nothing, if the epoch's cover is no longer `current`.
    pub fn replace_cover(&self, current: Option<&Arc<Cover>>, next: Option<Arc<Cover>>) -> bool {
        let mut replaced = false;
        self.current.rcu(|cur| {
            replaced = match (&cur.cover, current) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if !replaced {
                return cur.clone();
            }
            let mut next_epoch = cur.next();
            next_epoch.cover = next.clone();
            Arc::new(next_epoch)
        });
        replaced
    }

    /// Forgets retired segments once no id-map entry points at them (E5).
    pub fn drop_retired(&self, sources: &[Arc<Segment>]) {
        self.current.rcu(|cur| {
            let mut next = cur.next();
            next.retired.retain(|s| !sources.iter().any(|src| Arc::ptr_eq(s, src)));
            Arc::new(next)
        });
    }
}
