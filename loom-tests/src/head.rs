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

/// A scan racing two writers of one head reads it from the arena: the rows published from the
/// first are scored as one block, and a row published out of order (the second writer finishing
/// first) on its own. It returns only published rows, each whole (the score its vector gives)
/// and once.
#[test]
fn a_search_racing_two_writers_scores_only_whole_rows() {
    use vecindex::internals::scan_head;
    loom::model(|| {
        let head = Arc::new(Head::new(SegmentId(0), 2, 2));
        let writers: Vec<_> = [("a", 1.0), ("b", 2.0)]
            .into_iter()
            .map(|(id, x)| {
                let head = head.clone();
                thread::spawn(move || head.try_append(row(id, x)).ok().expect("room for two rows"))
            })
            .collect();
        let hits = scan_head(&head, &[1.0, 0.0], 2);
        assert!(hits.len() <= 2);
        for hit in &hits {
            let expected = if hit.chunk_id == "a" { 1.0 } else { 2.0 };
            assert_eq!(hit.score, expected, "{} read torn", hit.chunk_id);
        }
        for writer in writers {
            writer.join().unwrap();
        }
        let ids: Vec<String> = scan_head(&head, &[1.0, 0.0], 2).into_iter().map(|h| h.chunk_id).collect();
        assert_eq!(ids, ["b", "a"]);
    });
}
