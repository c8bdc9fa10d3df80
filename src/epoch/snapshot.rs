//! Snapshot assembly: what a persist at a view writes of an epoch.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::epoch::Epoch;
use crate::ids::SegmentId;
use crate::persist::manifest::{StoredGraph, StoredPart};
use crate::persist::writer::{SnapshotGraph, SnapshotRows, SnapshotSegment};
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

    /// The shared graph a persist into `dir` writes beside `rows`: the graph over the parts the
    /// snapshot keeps ([`Cover::persistable`](crate::epoch::cover::Cover::persistable)), or the
    /// graph file `last` recorded, when it is of this same graph, in this directory, over
    /// segments the snapshot still writes, and the graph has not grown by a tenth since. A graph
    /// is rewritten whole, so writing it only as it grows keeps persists incremental; open
    /// inserts the rows a graph file does not cover.
    pub(crate) fn snapshot_graph(
        &self,
        rows: &SnapshotRows<'_>,
        dir: &Path,
        last: Option<&GraphWritten>,
    ) -> Option<SnapshotGraph> {
        let cover = self.cover.as_ref()?;
        let written: HashSet<u64> = rows.segments.iter().map(|s| s.id).collect();
        let kept = cover.persistable(&|id: SegmentId| written.contains(&id.0));
        let nodes: u64 = kept.iter().map(|&(_, _, _, rows)| u64::from(rows)).sum();
        if nodes == 0 {
            return None;
        }
        if let Some(last) = last.filter(|last| {
            last.graph == std::ptr::from_ref::<crate::segment::graph::Graph>(&cover.graph) as usize
                && last.dir == dir
                && nodes * 10 < last.stored.nodes * 11
                && last.stored.parts.iter().all(|p| written.contains(&p.segment))
        }) {
            return Some(SnapshotGraph::Reuse(last.stored.clone()));
        }
        let relabel = |position: u32| {
            let at = kept.partition_point(|&(_, first, _, _)| first <= position).checked_sub(1)?;
            let (_, first, snapshot_first, rows) = kept[at];
            let row = position - first;
            (row < rows).then_some(snapshot_first + row)
        };
        let (body, encoded) = cover.graph.encode(&relabel, cover.refits);
        let parts = kept
            .iter()
            .map(|&(id, _, first, rows)| StoredPart { segment: id.0, first: u64::from(first), rows: u64::from(rows) })
            .collect();
        Some(SnapshotGraph::Write { body, nodes: encoded as u64, parts })
    }
}

/// The graph file a persist wrote last, for the next one to reuse.
pub(crate) struct GraphWritten {
    /// The graph it was written from (its address, to tell it apart from a later one).
    pub graph: usize,
    pub dir: PathBuf,
    pub stored: StoredGraph,
}
