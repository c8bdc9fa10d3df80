//! Models of `src/maintain/merge.rs` and the forwarding of deletes in `src/rows/tombstones.rs`: a delete that
//! races a vacuum (a segment rewritten without its dead rows) or a merge that keeps its base's
//! rows in place is never lost.
//!
//! Invariant checked: M1 (when a delete operation completes, its mark is on the rewritten row
//! too: either the merge's last copy of deletes saw it, or the deleter saw the forward).
//!
//! Injected bugs this catches: `merge_no_recheck` (the merge does not copy the sources' deletes
//! again after setting the forwards) and `forward_no_fence` (no `SeqCst` fences between a
//! deleter's mark and its read of the forward, nor between the merge's forward and its copy: a
//! store-buffering race in which each side misses the other).

use loom::sync::Arc;
use loom::thread;
use vecindex::{IndexConfig, SegmentIndex, TieredMergePolicy, VectorIndex};

use crate::epoch::{chunk, searched};

/// Heads of two rows; a segment with a dead row is vacuumed (50% > 20%).
fn config() -> IndexConfig {
    IndexConfig::new(2)
        .writer_slots(2)
        .head_capacity(2)
        .background(false)
        .segment_index(SegmentIndex::exact())
        .merge_policy(TieredMergePolicy::default().merge_factor(8))
}

#[test]
fn a_delete_racing_a_vacuum_is_never_lost() {
    loom::model(|| {
        let index = Arc::new(VectorIndex::new(config()).unwrap());
        for (id, x) in [("a", 0.5), ("x", 0.25), ("y", 0.125)] {
            index.add_chunk(chunk(id, id, x)).unwrap();
        }
        index.maintain(); // seals [a, x]; nothing to vacuum yet
        assert!(index.remove_chunk("x").unwrap()); // now half of that segment is dead
        let deleter = {
            let index = index.clone();
            thread::spawn(move || assert!(index.remove_chunk("a").unwrap()))
        };
        index.maintain(); // vacuums [a, x] into [a] (or [] if the delete of a is already in)
        deleter.join().unwrap();
        assert_eq!(searched(&index), ["y"], "a completed delete was lost by the vacuum");
        index.maintain();
        assert_eq!(searched(&index), ["y"], "a completed delete was lost by the vacuum");
        assert!(index.chunk("a").is_none());
        assert_eq!(index.reconcile_mappings(), 0);
    });
}

/// Two sealed segments of two rows merge (a tier of two); the first keeps its rows in place in
/// the merged segment when none of them is dead in the merge's view, and is rewritten without
/// the dead one when the delete came first. Either way, the delete racing it is never lost.
#[test]
fn a_delete_racing_an_in_place_merge_is_never_lost() {
    loom::model(|| {
        let config = config().merge_policy(TieredMergePolicy::default().merge_factor(2));
        let index = Arc::new(VectorIndex::new(config).unwrap());
        for (id, x) in [("a", 0.5), ("x", 0.25), ("b", 0.75), ("y", 0.125), ("z", 0.0625)] {
            index.add_chunk(chunk(id, id, x)).unwrap();
        }
        let deleter = {
            let index = index.clone();
            thread::spawn(move || assert!(index.remove_chunk("a").unwrap()))
        };
        index.maintain(); // seals [a, x] and [b, y], and merges them into [a, x, b, y]
        deleter.join().unwrap();
        assert_eq!(searched(&index), ["b", "x", "y", "z"], "a completed delete was lost by the merge");
        index.maintain();
        assert_eq!(searched(&index), ["b", "x", "y", "z"], "a completed delete was lost by the merge");
        assert!(index.chunk("a").is_none());
        assert_eq!(index.reconcile_mappings(), 0);
    });
}
