//! Models of the seal hand-off: `Epochs::seal_settled` (`src/epoch.rs`) and `SegmentData::seal`
//! (`src/segment/exact.rs`), with `Head::is_settled` (`src/head.rs`) deciding when a frozen head
//! may be copied.
//!
//! Invariant checked: every row ends in exactly one of a head or a sealed segment, never lost,
//! never searched twice, whatever order writers and the sealer run in.
//!
//! Injected bug this catches: `seal_unsettled` (a frozen head is sealed without waiting for the
//! writers that reserved its slots to publish; the rows published so far are copied): a row
//! published after the copy is in a head no epoch names any more.

use loom::sync::Arc;
use vecindex::{Index, VectorIndex};

use crate::epoch::{config, searched, spawn_two_writers};

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
