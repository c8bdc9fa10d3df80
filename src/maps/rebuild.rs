//! Building the id maps of an index opened from disk, from its rows.

use crate::epoch::Epoch;
use crate::ids::RowLoc;
use crate::maps::{ChunkEntry, Maps};
use crate::seq::{ReadView, SeqNo};

/// What a rebuild found.
pub(crate) struct Rebuilt {
    /// Live chunks.
    pub(crate) chunks: usize,
    /// Rows dropped because a later row had the same chunk id.
    pub(crate) duplicates: usize,
}

impl Maps {
    /// Fills these (empty) maps from every live row of `epoch`, calling `each_text` with each
    /// row's text. Rows are taken in the order they were added, which is each document's chunk
    /// order. A chunk id found twice (never in a snapshot vecindex wrote) keeps its newer row;
    /// the older one is deleted before everything and leaves its document's list.
    pub(crate) fn rebuild(&self, epoch: &Epoch, mut each_text: impl FnMut(&str)) -> Rebuilt {
        let mut rows: Vec<(SeqNo, u32, RowLoc, String, String)> = Vec::new();
        for source in epoch.sources() {
            source.for_each_visible(&ReadView::up_to(SeqNo::MAX), |row, r, _| {
                each_text(r.text());
                let loc = RowLoc { segment: source.id(), row: row as u32 };
                rows.push((r.add_seq(), r.add_index(), loc, r.chunk_id().to_owned(), r.doc_id().to_owned()));
            });
        }
        rows.sort_unstable_by_key(|&(seq, index, loc, ..)| (seq, index, loc.segment, loc.row));
        let mut rebuilt = Rebuilt { chunks: 0, duplicates: 0 };
        for (_, _, loc, chunk_id, doc_id) in rows {
            let entry = ChunkEntry { doc_id: doc_id.clone(), loc: Some(loc) };
            if let Some(older) = self.chunks.insert(chunk_id.clone(), entry) {
                rebuilt.duplicates += 1;
                rebuilt.chunks -= 1;
                if let Some(loc) = older.loc {
                    epoch.delete(loc, 0);
                }
                if let Some(mut list) = self.docs.get_mut(&older.doc_id) {
                    list.retain(|id| id != &chunk_id);
                }
                self.docs.remove_if(&older.doc_id, |_, list| list.is_empty());
            }
            self.docs.entry(doc_id).or_default().push(chunk_id);
            rebuilt.chunks += 1;
        }
        rebuilt
    }
}
