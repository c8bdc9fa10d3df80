//! Models of the seal hand-off: `Epochs::seal_settled` (`src/epoch/mod.rs`) and `Head::seal`,
//! with `Head::is_settled` (both `src/epoch/head.rs`) deciding when a frozen head may be copied.
//!
//! Invariant checked: every row ends in exactly one of a head or a sealed segment, never lost,
//! never searched twice, whatever order writers and the sealer run in.
//!
//! Injected bugs these catch: `seal_unsettled` (a frozen head is sealed without waiting for the
//! writers that reserved its slots to publish; the rows published so far are copied): a row
//! published after the copy is in a head no epoch names any more.

use loom::sync::Arc;
use vecindex::VectorIndex;

use crate::epoch::{chunk, config, searched, spawn_two_writers};

#[test]
fn sealing_races_writers_without_losing_or_doubling_a_row() {
    loom::model(|| {
        let index = Arc::new(VectorIndex::new(config()).unwrap());
        let writers = spawn_two_writers(&index);
        index.maintain(); // the sealer, racing the writers
        for writer in writers {
            writer.join().unwrap();
        }
        index.maintain();
        assert_eq!(searched(&index), ["a", "b"], "a row was lost or doubled");
        let stats = index.stats();
        assert_eq!(stats.segments.iter().map(|s| s.rows).sum::<usize>(), 2, "{:?}", stats.segments);
    });
}

/// A head closed before it fills (`Head::close`, `Epochs::close_head`: what `force_merge` does
/// first) while two writers append to it: each row lands in the closed head (and so in its
/// sealed segment) or in the fresh head, exactly once (H4).
///
/// Injected bug this catches: `close_check_then_act` (the close reads the reservation count,
/// then bumps it, instead of both in one fetch_add): a writer that reserves a slot in between
/// publishes a row the closed length leaves out, and the row is lost when the head is sealed.
#[test]
fn closing_a_head_races_writers_without_losing_or_doubling_a_row() {
    loom::model(|| {
        let index = Arc::new(VectorIndex::new(config().head_capacity(3)).unwrap());
        index.add_chunk(chunk("c", "c", 0.75)).unwrap(); // a head with a row, so the close runs
        let writers = spawn_two_writers(&index);
        index.force_merge(); // closes the head, seals it, merges, racing the writers
        for writer in writers {
            writer.join().unwrap();
        }
        index.force_merge();
        assert_eq!(searched(&index), ["a", "b", "c"], "a row was lost or doubled");
        let stats = index.stats();
        assert_eq!(stats.segments.iter().map(|s| s.rows).sum::<usize>(), 3, "{:?}", stats.segments);
    });
}
