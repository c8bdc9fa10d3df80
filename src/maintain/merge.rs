//! The merge protocol: merging and vacuuming the sealed segments a [`MergePolicy`] picked.
//!
//! [`MergePolicy`]: crate::maintain::MergePolicy
//!
//! # Protocol
//!
//! A merge runs in the maintenance step (the background worker, or `maintain()`), one at a time.
//!
//! 1. Take a snapshot view `M` (waits only for operations in flight).
//! 2. Copy every row of the sources except those deleted by an operation `M` includes; a copied
//!    row keeps its add seq, and its delete seq if it has one (a delete `M` does not include).
//!    When the first source (the base) has few rows dead in `M` and others join it, every row
//!    of the base is copied, dead ones with their delete seq, so each keeps its row number and
//!    the base's FAISS index, copied and extended with the other rows, indexes the merged rows
//!    ([`Merged::base`]). No published index is changed: the copy is private until step 4.
//! 3. Set a forward on each source's tombstones (new tombstones + row mapping), fence, and copy
//!    every source delete to the merged rows again (Forwarding in [`crate::tombstones`]).
//! 4. Publish an epoch in which the merged segment replaces the sources; the sources move to
//!    `retired` and the epoch's horizon rises to `M.upper()` (E4 and E5 in [`crate::epoch`]).
//! 5. For each document with copied rows, holding that document's lock (which every mutation
//!    of the document holds for its whole critical section, `Maps::lock`): move the chunk's map
//!    entry to the merged row if it still points at the source row.
//! 6. Publish an epoch without the retired sources.
//!
//! # Invariants
//!
//! - M1 (no lost delete): when a delete operation completes, its mark is on the merged row too:
//!   either step 3's copy saw the source mark, or the deleter saw the forward and followed it
//!   before completing. So no view that includes the delete sees the merged row live.
//! - M1b: after step 5 for a document, its deletes find the merged row through the map; before
//!   it, they find the source (still in `retired`, E5), and the forward carries them over.
//! - M2: a row is searched in exactly one place in any epoch: the sources leave the searched list
//!   in the same publish that adds the merged segment.
//! - M3: rows dropped in step 2 are dead in every view that covers the new horizon.
//! - M4: a base kept in place is row `r` of the merged segment for every row `r` of it, so an
//!   index over the base's rows is an index over those of the merged segment.
//!
use std::collections::BTreeMap;

use crate::epoch::Epochs;
use crate::ids::RowLoc;
use crate::maps::Maps;
use crate::rows::SealedRows;
use crate::rows::tombstones::{DROPPED, Forward, Tombstones};
use crate::segment::{Segment, SegmentData};
use crate::seq::Sequencer;
use crate::sync::{Arc, bug};

/// A base may keep its rows in place when at most this fraction of them is dead: more, and
/// the merge drops them and indexes from scratch, as dead rows cost every search of a graph.
const IN_PLACE_MAX_DEAD: f64 = 0.1;

/// What a merge produced.
pub struct Merged {
    /// The merged segment (exact; the caller may index it), or `None` if no row survived.
    pub segment: Option<Arc<Segment>>,
    /// (source index, source row, merged row) of every copied row.
    moves: Vec<(usize, u32, u32)>,
    /// The base whose rows are the merged segment's first rows, at the same numbers, when it
    /// kept them in place: its index (if any) indexes those rows of the merged segment.
    pub base: Option<Arc<Segment>>,
}

/// Steps 1-2: copies the rows of `sources` that are not dead in a fresh snapshot view.
/// Returns the merge and the horizon to publish it with, or `None` if `cancelled` said so
/// (asked before each source is copied).
pub fn build(
    epochs: &Epochs,
    seq: &Sequencer,
    sources: &[Arc<Segment>],
    dim: usize,
    cancelled: &dyn Fn() -> bool,
) -> Option<(Merged, u64)> {
    let view = seq.snapshot();
    let mut rows = Vec::new();
    let mut deletes = Vec::new();
    let mut moves = Vec::new();
    let base = sources.first().filter(|base| {
        let dead = (0..base.len()).filter(|&row| base.tombstones().deleted_at(row).is_some_and(|d| view.includes(d)));
        sources.len() >= 2 && dead.count() as f64 <= IN_PLACE_MAX_DEAD * base.len() as f64
    });
    for (s, source) in sources.iter().enumerate() {
        if cancelled() {
            return None;
        }
        let data = source.data();
        let in_place = s == 0 && base.is_some();
        for row in 0..data.len() {
            let deleted = data.tombstones().deleted_at(row);
            if !in_place && deleted.is_some_and(|d| view.includes(d)) {
                continue; // dead for every view that covers the new horizon (M3)
            }
            let Some(copied) = data.row(row) else { continue }; // row < len: always there
            moves.push((s, row as u32, rows.len() as u32));
            rows.push(copied);
            deletes.push(deleted);
        }
    }
    let segment = (!rows.is_empty()).then(|| {
        let encoded = SealedRows::encode(dim, rows);
        let tombstones = Arc::new(Tombstones::from_seqs(deletes));
        Arc::new(Segment::exact(SegmentData::with_fields(epochs.allocate_id(), encoded, tombstones)))
    });
    Some((Merged { segment, moves, base: base.cloned() }, view.upper()))
}

/// Steps 3-5: publishes the merge, carries late deletes over and moves map entries.
/// Returns false (nothing published) if a source was merged away meanwhile.
pub fn publish(epochs: &Epochs, maps: &Maps, sources: &[Arc<Segment>], merged: Merged, horizon: u64) -> bool {
    if let Some(segment) = &merged.segment {
        // Forward deletes from the sources, then copy every delete so far (M1, Forwarding in
        // `tombstones`): a delete completes only once it is on the merged segment too. (An
        // injected bug for the loom models forwards them but skips the copy.)
        for (s, source) in sources.iter().enumerate() {
            let mut rows = vec![DROPPED; source.len()].into_boxed_slice();
            for &(_, from, to) in merged.moves.iter().filter(|m| m.0 == s) {
                rows[from as usize] = to;
            }
            let forward = Forward { target: segment.tombstones().clone(), rows };
            if !source.tombstones().forward_to(forward) {
                tracing::error!(segment = source.id().0, "segment merged twice; merge abandoned");
                return false;
            }
        }
        if !bug!("merge_no_recheck") {
            for &(s, from, to) in &merged.moves {
                if let Some(deleted) = sources[s].tombstones().deleted_at(from as usize) {
                    segment.tombstones().delete(to as usize, deleted);
                }
            }
        }
    }
    if !epochs.publish_merge(sources, merged.segment.clone(), horizon) {
        // Cannot happen while merges run under the maintenance lock; the forwards set above
        // then point at a segment nobody searches, which costs only the writes.
        tracing::error!("merge sources changed under the maintenance lock; merge abandoned");
        return false;
    }
    if let Some(segment) = &merged.segment {
        let mut by_doc: BTreeMap<&str, Vec<(usize, u32, u32)>> = BTreeMap::new();
        for &(s, from, to) in &merged.moves {
            let Some((row, _)) = sources[s].data().row(from as usize) else { continue };
            by_doc.entry(row.doc_id()).or_default().push((s, from, to));
        }
        for (doc_id, moves) in by_doc {
            // Held for this document's moves: no mutation of the document runs meanwhile (M1).
            let doc_lock = maps.lock(doc_id);
            for (s, from, to) in moves {
                let source = &sources[s];
                let Some((row, _)) = source.data().row(from as usize) else { continue };
                let old = RowLoc { segment: source.id(), row: from };
                maps.move_row(row.chunk_id(), old, RowLoc { segment: segment.id(), row: to });
            }
            drop(doc_lock);
        }
    }
    epochs.drop_retired(sources);
    true
}
