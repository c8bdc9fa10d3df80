//! Models of `src/seq/sequencer.rs`: the sequencer's views and snapshots, with an operation whose
//! write is a tombstone (`src/rows/tombstones.rs`, stored `Relaxed`: it relies on the sequencer).
//!
//! Injected bugs this catches: `seq_relaxed` (the seq `fetch_add` made `Relaxed`, so a reader can
//! see the new counter without the writer's in-flight claim) and `snapshot_no_wait` (a snapshot
//! that does not wait for operations in flight below its seq).

use loom::sync::Arc;
use loom::thread;
use vecindex::internals::{Sequencer, Tombstones};

/// A view includes an operation only once all its writes are visible, and never part of one.
#[test]
fn view_includes_only_complete_operations() {
    loom::model(|| {
        let seq = Arc::new(Sequencer::new(1, 1));
        let tombstones = Arc::new(Tombstones::new(2));
        let writer = {
            let (seq, tombstones) = (seq.clone(), tombstones.clone());
            thread::spawn(move || {
                let op = seq.begin();
                tombstones.delete(0, op.seq());
                tombstones.delete(1, op.seq());
            })
        };
        let view = seq.view();
        if view.includes(1) {
            assert!(tombstones.is_dead_in(0, &view) && tombstones.is_dead_in(1, &view), "included but not visible");
        } else {
            // Left out as a whole: even if some writes are visible, the view ignores them.
            assert!(!tombstones.is_dead_in(0, &view) && !tombstones.is_dead_in(1, &view));
        }
        writer.join().unwrap();
        let view = seq.view();
        assert!(view.includes(1) && tombstones.is_dead_in(1, &view));
    });
}

/// A snapshot holds every operation below its seq, complete, and none at or above it; it waits
/// only for operations in flight below its seq. `writers` writers race the snapshot.
fn snapshot_model(writers: usize) {
    let seq = Arc::new(Sequencer::new(1, writers));
    let tombstones = Arc::new(Tombstones::new(writers));
    let handles: Vec<_> = (0..writers)
        .map(|row| {
            let (seq, tombstones) = (seq.clone(), tombstones.clone());
            thread::spawn(move || {
                let op = seq.begin();
                tombstones.delete(row, op.seq());
                op.seq()
            })
        })
        .collect();
    let snapshot = seq.snapshot();
    // What the snapshot can see when it returns, before any writer is joined.
    let seen: Vec<bool> = (0..writers).map(|row| tombstones.is_dead_in(row, &snapshot)).collect();
    for (row, writer) in handles.into_iter().enumerate() {
        let op = writer.join().unwrap();
        assert_eq!(seen[row], op < snapshot.upper(), "row {row}, op {op}, upper {}", snapshot.upper());
    }
}

#[test]
fn snapshot_waits_for_operations_in_flight_below_it() {
    loom::model(|| snapshot_model(1));
}

/// Two writers: exactly the operations below the snapshot's seq, whatever order they finish in.
/// Bounded to 2 preemptions to keep it to seconds.
#[test]
fn snapshot_with_two_writers() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| snapshot_model(2));
}
