//! Models of `src/epoch/head.rs`: reserve, write, publish.
//!
//! Injected bugs this catches: `publish_relaxed` (the ready flag stored `Relaxed`) and
//! `publish_before_write` (the ready flag set before the row is written). In both, a reader can
//! read a slot concurrently with its write, which loom reports as a causality violation.

use loom::sync::Arc;
use loom::thread;
use vecindex::internals::{Head, HeadRow, RowMeta, SegmentId};

fn row(id: &str, x: f32) -> HeadRow {
    let meta = RowMeta {
        chunk_id: id.into(),
        doc_id: "d".into(),
        text: String::new(),
        metadata: Default::default(),
        add_seq: 1,
        add_index: 0,
    };
    HeadRow { meta: Arc::new(meta), vector: vec![x, x].into_boxed_slice() }
}

/// A reader scanning while a writer appends sees either no row or the complete row.
#[test]
fn reader_never_sees_an_unpublished_or_torn_row() {
    loom::model(|| {
        let head = Arc::new(Head::new(SegmentId(0), 2, 2));
        let writer = {
            let head = head.clone();
            thread::spawn(move || head.try_append(row("a", 1.0)).ok().expect("room for one row"))
        };
        let mut seen = 0;
        head.for_each(|index, meta, vector| {
            assert_eq!(index, 0);
            assert_eq!(meta.chunk_id, "a");
            assert_eq!(vector, &[1.0, 1.0]);
            seen += 1;
        });
        assert!(seen <= 1);
        assert_eq!(writer.join().unwrap(), 0);
        assert!(head.is_settled());
    });
}

/// Two writers race for the last slot: one gets it, the other gets its row back (head full),
/// and a reader sees each published row exactly once.
#[test]
fn two_writers_one_slot_exactly_one_wins() {
    loom::model(|| {
        let head = Arc::new(Head::new(SegmentId(0), 1, 2));
        let writers: Vec<_> = [("a", 1.0), ("b", 2.0)]
            .into_iter()
            .map(|(id, x)| {
                let head = head.clone();
                thread::spawn(move || head.try_append(row(id, x)).is_ok())
            })
            .collect();
        let mut seen = Vec::new();
        head.for_each(|_, meta, vector| {
            assert_eq!(vector[0], if meta.chunk_id == "a" { 1.0 } else { 2.0 });
            seen.push(meta.chunk_id.clone());
        });
        assert!(seen.len() <= 1);
        let won: usize = writers.into_iter().map(|w| usize::from(w.join().unwrap())).sum();
        assert_eq!(won, 1);
        assert!(head.is_settled());
        let mut after = 0;
        head.for_each(|_, _, _| after += 1);
        assert_eq!(after, 1);
    });
}

/// A search racing two writers of one head scans it from the arena: the rows published from the
/// first are scored as one block and a row published out of order (the second writer finishing
/// first) on its own. It returns only rows whose add completed or was in flight, each whole
/// (its score is the one its vector gives) and once.
#[test]
fn a_search_racing_two_writers_scores_only_whole_rows() {
    use vecindex::{IndexConfig, SegmentIndex, VectorIndex};

    use crate::epoch::{chunk, searched};
    loom::model(|| {
        let config = IndexConfig::new(2).writer_slots(2).head_capacity(4).background(false);
        let index = Arc::new(VectorIndex::new(config.segment_index(SegmentIndex::exact())).unwrap());
        let writers: Vec<_> = [("a", 0.5), ("b", 0.25)]
            .into_iter()
            .map(|(id, x)| {
                let index = index.clone();
                thread::spawn(move || index.add_chunk(chunk(id, id, x)).unwrap())
            })
            .collect();
        let hits = index.search(&[1.0, 0.0], &vecindex::SearchOptions::k(4)).unwrap();
        for hit in &hits {
            let x = if hit.chunk_id == "a" { 0.5f32 } else { 0.25 };
            let expected = 1.0 / (1.0 + x * x).sqrt(); // cosine of (1, 0) and (1, x)
            assert!((hit.score - expected).abs() < 1e-6, "{} scored {} not {expected}", hit.chunk_id, hit.score);
        }
        assert!(hits.len() <= 2);
        for writer in writers {
            writer.join().unwrap();
        }
        assert_eq!(searched(&index), ["a", "b"]);
    });
}
