//! Models of the write path (`src/write.rs`, `src/maps/`): mutations racing each other, through
//! the documents' locks (which serialize the mutations of each document) and the chunk map (which
//! gives a chunk id one owner).
//!
//! Injected bugs these catch: `remove_unlocks_early` (`remove_document` releases the document's
//! lock before removing its chunks, so a replacement can run in between and its chunk list is
//! then removed under it) and `claim_check_then_insert` (a chunk id claimed by looking, then
//! inserting, so two documents can both own it), and `add_chunks_per_document` (below).

use loom::sync::Arc;
use loom::thread;
use vecindex::{Error, VectorIndex};

use crate::epoch::{chunk, config, searched};

/// The id maps agree with what a search sees: every hit's chunk is found under its document,
/// and every listed chunk is a hit.
pub(crate) fn assert_maps_agree(index: &VectorIndex) {
    let mut listed: Vec<String> = Vec::new();
    for doc in index.document_ids() {
        for id in index.chunk_ids(&doc) {
            let found = index.chunk(&id).unwrap_or_else(|| panic!("{id} is listed in {doc} but not found"));
            assert_eq!(found.doc_id, doc);
            listed.push(id);
        }
    }
    listed.sort();
    assert_eq!(listed, searched(index), "the maps and the rows disagree");
}

#[test]
fn replacing_and_removing_one_document_serialize() {
    loom::model(|| {
        let index = Arc::new(VectorIndex::new(config()).unwrap());
        index.add_document("d", vec![chunk("c1", "d", 0.5)]).unwrap();
        let replacer = {
            let index = index.clone();
            thread::spawn(move || index.add_document("d", vec![chunk("c2", "d", 0.25)]).unwrap())
        };
        let removed = index.remove_document("d").unwrap();
        replacer.join().unwrap();
        // Either order, as if one ran after the other: removed first (then d holds c2), or
        // replaced first (then nothing is left).
        let expected: &[&str] = if removed == 1 && index.document_ids() == ["d"] { &["c2"] } else { &[] };
        assert_eq!(searched(&index), expected, "removed {removed}");
        assert_maps_agree(&index);
        assert_eq!(index.reconcile_mappings(), 0, "the maps were left stale");
    });
}

#[test]
fn two_documents_claiming_one_chunk_id_leave_one_owner() {
    loom::model(|| {
        let index = Arc::new(VectorIndex::new(config()).unwrap());
        let other = {
            let index = index.clone();
            thread::spawn(move || index.add_chunk(chunk("shared", "d2", 0.25)))
        };
        let mine = index.add_chunk(chunk("shared", "d1", 0.5));
        let other = other.join().unwrap();
        let (won, lost) = match (&mine, &other) {
            (Ok(()), Err(e)) | (Err(e), Ok(())) => (if mine.is_ok() { "d1" } else { "d2" }, e),
            _ => panic!("both or neither owned the chunk: {mine:?} {other:?}"),
        };
        assert!(matches!(lost, Error::ChunkInOtherDocument { .. }), "{lost}");
        assert_eq!(searched(&index), ["shared"]);
        assert_eq!(index.document_ids(), [won]);
        assert_maps_agree(&index);
    });
}

/// One `add_chunks` over two documents races a writer that claims one of its chunk ids, and a
/// reader: the call lands whole or not at all, for the rival and for the reader (one seq for the
/// whole call; the documents' locks taken before any chunk id is checked).
///
/// Injected bug this catches: `add_chunks_per_document` (each document applied as its own write,
/// with its own seq and conflict check): the reader can see `x` without `y`, and when the rival
/// claims `y` in between, the call fails having added `x`.
#[test]
fn a_multi_document_add_is_all_or_nothing() {
    loom::model(|| {
        let index = Arc::new(VectorIndex::new(config().head_capacity(4)).unwrap());
        let rival = {
            let index = index.clone();
            thread::spawn(move || index.add_chunk(chunk("y", "d3", 0.25)))
        };
        let reader = {
            let index = index.clone();
            thread::spawn(move || {
                let seen = searched(&index);
                assert!(!seen.contains(&"x".to_owned()) || seen.contains(&"y".to_owned()), "x without y: {seen:?}");
            })
        };
        let mine = index.add_chunks(vec![chunk("x", "d1", 0.5), chunk("y", "d2", 0.75)]);
        let rival = rival.join().unwrap();
        reader.join().unwrap();
        match (&mine, &rival) {
            (Ok(()), Err(Error::ChunkInOtherDocument { .. })) => {
                assert_eq!(searched(&index), ["x", "y"]);
                assert_eq!(index.document_ids(), ["d1", "d2"]);
            }
            (Err(Error::ChunkInOtherDocument { .. }), Ok(())) => {
                assert_eq!(searched(&index), ["y"], "the failed call added nothing");
                assert_eq!(index.document_ids(), ["d3"]);
            }
            _ => panic!("exactly one call owns y: {mine:?} {rival:?}"),
        }
        assert_maps_agree(&index);
    });
}
