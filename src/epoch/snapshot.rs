//! Snapshot assembly: what a persist at a view writes of an epoch.

use crate::epoch::Epoch;
use crate::persist::writer::{SnapshotRows, SnapshotSegment};
use crate::rows::SealedRows;
use crate::seq::ReadView;

impl Epoch {
    /// What a persist at `view` (a snapshot view: nothing in flight below its seq) writes of this
    /// epoch: every sealed segment with rows live in the view (with its deletes below the view's
    /// seq, and its FAISS index), and the heads' live rows as one more segment, encoded for
    /// vectors of `dim`.
    pub(crate) fn snapshot(&self, view: &ReadView, dim: usize) -> SnapshotRows<'_> {
        let mut live_rows = 0;
        let mut segments = Vec::with_capacity(self.sealed.len());
        for segment in &self.sealed {
            let data = segment.data();
            let mut live = 0;
            data.for_each_visible(view, |_, _, _| live += 1);
            if live == 0 {
                continue; // nothing of it is in the snapshot
            }
            live_rows += live;
            // Older segments mostly have no delete at all: nothing to look for then (a delete
            // the view includes counted itself before its operation completed).
            let deletes = match data.tombstones().dead_count() {
                0 => Vec::new(),
                _ => (0..data.len())
                    .filter_map(|row| {
                        let at = data.tombstones().deleted_at(row).filter(|&at| view.includes(at))?;
                        Some((row as u32, at))
                    })
                    .collect(),
            };
            segments.push(SnapshotSegment {
                id: segment.id().0,
                rows: data.rows().clone(),
                deletes,
                faiss: segment.ann(),
            });
        }
        let mut head_rows = Vec::new();
        for head in self.frozen.iter().chain(std::iter::once(&self.head)) {
            head.for_each_visible(view, |_, row, vector| head_rows.push((row.to_handle(), vector.to_vec())));
        }
        live_rows += head_rows.len();
        let head = (!head_rows.is_empty()).then(|| {
            let rows = head_rows.iter().map(|(row, vector)| (row.get(), vector.as_slice()));
            SnapshotSegment {
                // The current head's id: no sealed segment has it yet, and while the heads'
                // rows do not change, neither does the file (so it is not written again).
                id: self.head.id().0,
                rows: SealedRows::encode(dim, rows),
                deletes: Vec::new(),
                faiss: None,
            }
        });
        SnapshotRows { segments, head, live_rows }
    }
}
