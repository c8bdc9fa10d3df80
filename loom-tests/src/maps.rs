//! Models of `src/maps/`: the id maps are caches of the rows, and `reconcile_mappings`
//! repairs them while writers run.
//!
//! Invariant checked: a reconcile racing a writer finds nothing stale in a consistent index (it
//! re-reads an entry under its document's entry before judging it), and afterwards the maps
//! agree with what a search sees.
//!
//! Injected bug this catches: `reconcile_stale_entry` (the chunk entry read before taking the
//! document's entry is the one judged): a replacement moves the chunk to a new row meanwhile,
//! reconcile sees the old row dead and removes the fresh entry (its last step puts it back from
//! the rows, but a reader in between misses the chunk, and the count says it was stale).

use loom::sync::Arc;
use loom::thread;
use vecindex::VectorIndex;

use crate::epoch::{chunk, config};
use crate::index::assert_maps_agree;

#[test]
fn reconcile_racing_a_replacement_leaves_the_maps_right() {
    loom::model(|| {
        let index = Arc::new(VectorIndex::new(config()).unwrap());
        index.add_document("d", vec![chunk("c", "d", 0.5).with_meta("v", "1")]).unwrap();
        let writer = {
            let index = index.clone();
            thread::spawn(move || index.add_document("d", vec![chunk("c", "d", 0.25).with_meta("v", "2")]).unwrap())
        };
        // Nothing is stale: the writer keeps the maps right under the document's entry, and
        // reconcile judges an entry only under it too.
        assert_eq!(index.reconcile_mappings(), 0, "a consistent entry was judged stale");
        writer.join().unwrap();
        assert_maps_agree(&index);
        assert_eq!(index.chunk("c").and_then(|c| c.metadata["v"].as_str().map(str::to_owned)).as_deref(), Some("2"));
        assert_eq!(index.reconcile_mappings(), 0);
    });
}
