//! Models of `src/epoch/mod.rs`: publishing a new epoch (a full head frozen, a fresh head in its
//! place) against writers and readers, driven through `VectorIndex` itself.
//!
//! Invariants checked: E1 (every row appended is reachable from every later epoch), E2 (no row is
//! searched twice), E3 (an epoch a reader loaded stays valid while it reads; loom reports any
//! `Arc` still alive at the end of an execution, so every epoch, head and segment is freed after
//! its last reader).
//!
//! Injected bug this catches: `rotate_drops_full_head` (the rotation publishes the fresh head
//! without moving the full one to `frozen`): a row appended to the full head is lost.

use loom::sync::Arc;
use loom::thread;
use vecindex::{Chunk, IndexConfig, SearchOptions, SegmentIndex, VectorIndex};

/// Heads of one row, so the second append rotates; exact segments; no background threads.
pub(crate) fn config() -> IndexConfig {
    IndexConfig::new(2).writer_slots(2).head_capacity(1).background(false).segment_index(SegmentIndex::exact())
}

pub(crate) fn chunk(id: &str, doc: &str, x: f32) -> Chunk {
    Chunk::new(id, doc, vec![1.0, x])
}

/// The chunk ids one search returns, checking none is returned twice (E2).
pub(crate) fn searched(index: &VectorIndex) -> Vec<String> {
    let mut ids: Vec<String> =
        index.search(&[1.0, 0.0], &SearchOptions::k(10)).unwrap().into_iter().map(|h| h.chunk_id).collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "a row was searched twice");
    ids
}

/// Two writer threads, each adding one chunk (`a` and `b`, in documents of those names).
pub(crate) fn spawn_two_writers(index: &Arc<VectorIndex>) -> Vec<thread::JoinHandle<()>> {
    [("a", 0.5), ("b", 0.25)]
        .into_iter()
        .map(|(id, x)| {
            let index = index.clone();
            thread::spawn(move || index.add_chunk(chunk(id, id, x)).unwrap())
        })
        .collect()
}

/// Two writers fill a one-row head and rotate while a reader searches: the reader sees a subset
/// of the rows, each once; afterwards every row is there.
#[test]
fn rotation_keeps_every_row_reachable() {
    loom::model(|| {
        let index = Arc::new(VectorIndex::new(config()).unwrap());
        let writers = spawn_two_writers(&index);
        let seen = searched(&index);
        assert!(seen.iter().all(|id| id == "a" || id == "b"));
        for writer in writers {
            writer.join().unwrap();
        }
        assert_eq!(searched(&index), ["a", "b"], "a row was lost");
        assert_eq!(index.stats().segments.iter().map(|s| s.rows).sum::<usize>(), 2);
    });
}

/// Replacing a document whose only row fills the head tombstones that row and appends the new
/// one to a fresh head, in one operation: a reader sees the old version or the new one, never
/// neither (E1: the view is taken before the epoch is loaded, so every operation it includes put
/// its rows into a head that epoch reaches).
///
/// Injected bug this catches: `epoch_before_view` (the epoch loaded before the view is taken):
/// the view includes the replacement, whose tombstone it sees, but the epoch predates the fresh
/// head holding the new row, so the document vanishes.
#[test]
fn a_replacement_across_a_rotation_is_atomic_to_readers() {
    loom::model(|| {
        let index = Arc::new(VectorIndex::new(config()).unwrap());
        index.add_document("d", vec![chunk("x", "d", 0.5).with_meta("v", "1")]).unwrap();
        let writer = {
            let index = index.clone();
            thread::spawn(move || index.add_document("d", vec![chunk("x", "d", 0.25).with_meta("v", "2")]).unwrap())
        };
        let hits = index.search(&[1.0, 0.0], &SearchOptions::k(10)).unwrap();
        assert_eq!(hits.len(), 1, "the document vanished or doubled during its replacement: {hits:?}");
        writer.join().unwrap();
        let hits = index.search(&[1.0, 0.0], &SearchOptions::k(10)).unwrap();
        assert_eq!((hits.len(), hits[0].metadata["v"].as_str()), (1, Some("2")));
    });
}
