//! Re-deriving the id maps from the rows, and repairing what disagrees.
//!
//! Each entry is judged only under its document's lock (which every mutation of the document
//! holds for its whole critical section), after reading it again there: an entry a writer moved
//! meanwhile is the writer's to keep right, never this pass's to remove.

use crate::epoch::Epochs;
use crate::ids::RowLoc;
use crate::maps::{ChunkEntry, Maps};
use crate::seq::Sequencer;
use crate::sync::{Entry, bug};

impl Maps {
    /// Removes entries whose row is gone, dead or not theirs, drops listed ids the chunk map
    /// does not give their document, and puts back live rows the chunk map lost. Returns how
    /// many stale entries it removed. Writers go on meanwhile.
    pub(crate) fn reconcile(&self, epochs: &Epochs, seq: &Sequencer) -> usize {
        let mut removed = 0;
        // 1. Chunk entries whose row is gone, dead, or not theirs.
        let ids: Vec<String> = self.chunks.iter().map(|e| e.key().clone()).collect();
        for id in ids {
            let Some(owner) = self.owner(&id) else {
                continue;
            };
            let read_entry = || self.chunks.get(&id).map(|e| e.clone());
            // An injected bug for the loom models reads it here only, before the lock.
            let early = if bug!("reconcile_stale_entry") { Some(read_entry()) } else { None };
            let _document = self.lock(&owner);
            let mut doc = self.docs.entry(owner.clone());
            // Read again under the owner's lock: a writer of the document may have moved it.
            let Some(entry) = early.unwrap_or_else(read_entry) else {
                continue;
            };
            if entry.doc_id != owner {
                continue; // changed hands meanwhile; that writer kept it consistent
            }
            let listed = match &doc {
                Entry::Occupied(o) => o.get().contains(&id),
                Entry::Vacant(_) => false,
            };
            if entry.loc.is_some_and(|loc| epochs.load().holds_live(loc, &id, &owner)) {
                if !listed {
                    doc = match doc {
                        Entry::Occupied(mut o) => {
                            o.get_mut().push(id.clone());
                            Entry::Occupied(o)
                        }
                        Entry::Vacant(v) => Entry::Occupied(v.insert_entry(vec![id.clone()])),
                    };
                }
            } else {
                self.chunks.remove(&id);
                removed += 1;
                if let Entry::Occupied(o) = &mut doc {
                    o.get_mut().retain(|c| c != &id);
                }
            }
            if let Entry::Occupied(o) = doc
                && o.get().is_empty()
            {
                o.remove();
            }
        }
        // 2. Document lists naming chunks the chunk map does not give them.
        for doc_id in self.document_ids() {
            let _document = self.lock(&doc_id);
            if let Entry::Occupied(mut doc) = self.docs.entry(doc_id.clone()) {
                let before = doc.get().len();
                doc.get_mut().retain(|id| self.chunks.get(id).is_some_and(|e| e.doc_id == doc_id));
                removed += before - doc.get().len();
                if doc.get().is_empty() {
                    doc.remove();
                }
            }
        }
        // 3. Live rows the chunk map lost: put them back.
        let epoch = epochs.load_full();
        let view = seq.view();
        for source in epoch.sources() {
            let mut lost: Vec<(usize, String, String)> = Vec::new();
            source.for_each_visible(&view, |row, r, _| {
                if !self.chunks.contains_key(r.chunk_id()) {
                    lost.push((row, r.chunk_id().to_owned(), r.doc_id().to_owned()));
                }
            });
            for (row, chunk_id, doc_id) in lost {
                let _document = self.lock(&doc_id);
                let mut doc = self.docs.entry(doc_id.clone()).or_default();
                let still_lost = !self.chunks.contains_key(&chunk_id);
                if still_lost && source.tombstones().deleted_at(row).is_none() {
                    let loc = RowLoc { segment: source.id(), row: row as u32 };
                    self.chunks.insert(chunk_id.clone(), ChunkEntry { doc_id: doc_id.clone(), loc: Some(loc) });
                    doc.push(chunk_id);
                }
                let empty = doc.is_empty();
                drop(doc);
                if empty {
                    self.docs.remove_if(&doc_id, |_, list| list.is_empty());
                }
            }
        }
        removed
    }
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;
    use crate::chunk::Chunk;
    use crate::config::IndexConfig;
    use crate::ids::SegmentId;
    use crate::index::VectorIndex;

    fn v(x: f32) -> Vec<f32> {
        vec![1.0, x]
    }

    #[test]
    fn reconcile_repairs_stale_and_lost_entries() {
        let index = VectorIndex::new(IndexConfig::new(2).head_capacity(2).background(false)).unwrap();
        for d in ["a", "b"] {
            let chunks = (0..3).map(|i| Chunk::new(format!("{d}{i}"), d, v(i as f32))).collect();
            index.add_document(d, chunks).unwrap();
        }
        let maps = &index.state().maps;
        // A stale entry pointing nowhere, a listed id nobody has, and a lost real entry.
        let nowhere = RowLoc { segment: SegmentId(999), row: 0 };
        maps.chunks.insert("ghost".into(), ChunkEntry { doc_id: "a".into(), loc: Some(nowhere) });
        maps.docs.get_mut("b").unwrap().push("phantom".into());
        maps.chunks.remove("a1");
        assert!(index.chunk("a1").is_none(), "lost from the map");

        // ghost, phantom, and a1's list entry (re-added from its live row at the end).
        assert_eq!(index.reconcile_mappings(), 3);
        assert!(index.chunk("ghost").is_none());
        assert_eq!(index.chunk("a1").unwrap().doc_id, "a");
        assert_eq!(index.chunk_ids("a"), ["a0", "a2", "a1"]);
        assert_eq!(index.chunk_ids("b"), ["b0", "b1", "b2"]);
        assert_eq!(index.reconcile_mappings(), 0, "a second pass finds nothing");
    }
}
