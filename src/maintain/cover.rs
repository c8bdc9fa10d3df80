//! The inserter: grows the cover's graph with each row as soon as it is published (steps 1 and 2
//! of the protocol in `epoch/cover.rs`), for plain HNSW indexes.
//!
//! It runs on the builder thread (or in `maintain()`), under the maintenance mutex, a bounded
//! number of rows per step. A cover starts once the index holds `min_rows` rows: from the FAISS
//! graph of its largest segment when that has one (an index opened from disk, or just
//! force-merged), else empty, with the graph's 8-bit ranges fitted to the rows so far; then every
//! container not covered yet becomes a part, oldest first, and its rows are inserted in order.

use crate::epoch::Epoch;
use crate::epoch::cover::{Cover, PartRows};
use crate::maintain::{Maintenance, merge};
use crate::segment::Segment;
use crate::segment::graph::Graph;
use crate::sync::Arc;

/// Rows one step inserts at most: about 10-50 ms of work, so a closing index stops soon.
const STEP_ROWS: usize = 256;
/// Rows whose vectors fit the 8-bit ranges of a new graph, at most. A graph fitted to fewer
/// starts again when it has twice the rows (see `cover_step`).
const SAMPLE_ROWS: usize = 20_000;

impl Maintenance {
    /// Inserts up to [`STEP_ROWS`] rows into the cover, or starts a part or the cover itself.
    /// Returns whether it did anything (call again), false when it waits for rows or for a head
    /// to settle. The caller holds the maintenance mutex.
    pub(crate) fn cover_step(&self) -> bool {
        let Some(links) = self.settings.segment_index.graph_links() else { return false };
        let epochs = &self.state.epochs;
        let epoch = epochs.load_full();
        let Some(cover) = epoch.cover.clone() else { return self.start_cover(&epoch, links) };
        let n = cover.graph.len();
        if cover.refits && n >= 2 * cover.graph.fitted_rows() && cover.graph.fitted_rows() < SAMPLE_ROWS {
            // Young and doubled since its ranges were fitted: start again with ranges fitted to
            // every row so far (at most about twice the rows up to SAMPLE_ROWS are inserted again).
            return epochs.replace_cover(Some(&cover), None);
        }
        if let Some(part) = cover.parts().last() {
            let source = part.rows.source();
            let mut row = n.saturating_sub(part.first as usize);
            let mut inserted = 0;
            while inserted < STEP_ROWS && row < source.len() && !self.is_closing() {
                let Ok(position) = u32::try_from(part.first as usize + row) else { return false };
                match source.with_row(row, |_, vector| cover.graph.insert(position, vector)) {
                    None => break, // not published yet
                    Some(false) => {
                        tracing::warn!(rows = n, "the graph cannot grow; later rows are scanned");
                        return false;
                    }
                    Some(true) => {
                        row += 1;
                        inserted += 1;
                    }
                }
            }
            if self.is_closing() && row < source.len() {
                tracing::info!(rows = n, "graph insertion stopped: the index is closing");
                return false;
            }
            if inserted > 0 {
                return true;
            }
            let complete = row >= source.len()
                && match &part.rows {
                    PartRows::Sealed(_) => true,
                    PartRows::Head(head) => !Arc::ptr_eq(head, &epoch.head) && head.is_settled(),
                };
            if !complete {
                return false;
            }
        }
        // Step 1: the oldest container not covered yet, from the node count on.
        let next =
            epoch.sealed.iter().find(|s| !cover.covers(s.id())).map(|s| PartRows::Sealed(s.clone())).or_else(|| {
                epoch
                    .frozen
                    .iter()
                    .chain([&epoch.head])
                    .find(|h| !cover.covers(h.id()))
                    .map(|h| PartRows::Head(h.clone()))
            });
        let (Some(next), Ok(first)) = (next, u32::try_from(n)) else { return false };
        epochs.replace_cover(Some(&cover), Some(Arc::new(cover.with_part(first, next))))
    }

    /// Merges the cover's sealed segments into one when their dead rows pass the policy's share
    /// (dropping them, but for a base segment with few dead rows, which the merge keeps in
    /// place), and indexes it with FAISS (whose graph the next cover starts from, when it is
    /// the largest segment). The merge voids the cover (C3); until it publishes, the old one serves searches.
    /// Returns whether it published.
    pub(crate) fn rebuild_cover(&self) -> bool {
        let state = &*self.state;
        let epoch = state.epochs.load_full();
        let Some(cover) = &epoch.cover else { return false };
        let sources: Vec<Arc<Segment>> = cover
            .parts()
            .iter()
            .filter_map(|p| match &p.rows {
                PartRows::Sealed(segment) => Some(segment.clone()),
                PartRows::Head(_) => None,
            })
            .collect();
        let rows: usize = sources.iter().map(|s| s.len()).sum();
        let dead: usize = sources.iter().map(|s| s.tombstones().dead_count()).sum();
        if rows == 0 || (dead as f64) <= self.settings.policy.graph_rebuild_dead_fraction() * rows as f64 {
            return false;
        }
        let Some((mut merged, horizon)) =
            merge::build(&state.epochs, &state.seq, &sources, state.dim, &|| self.is_closing())
        else {
            return false;
        };
        merged.segment = merged.segment.map(|segment| self.indexed(segment));
        tracing::debug!(rows, dead, "rebuilding the graph without its dead rows");
        merge::publish(&state.epochs, &state.maps, &sources, merged, horizon)
    }

    /// Starts a cover once the index holds enough rows. Returns whether it published one.
    fn start_cover(&self, epoch: &Epoch, links: usize) -> bool {
        let config = &self.settings.segment_index;
        let rows: usize = epoch.sources().map(|s| s.len()).sum();
        if rows < config.min_rows.max(1) {
            return false;
        }
        let seeded = self.seed_from_faiss(epoch);
        let cover = seeded.unwrap_or_else(|| {
            let mut sample = Vec::new();
            'sources: for source in epoch.sources() {
                for row in 0..source.len() {
                    if sample.len() >= SAMPLE_ROWS * self.state.dim {
                        break 'sources;
                    }
                    source.with_row(row, |_, vector| sample.extend_from_slice(vector));
                }
            }
            let graph = Graph::new(self.state.dim, self.state.metric, links, config.ef_construction, &sample);
            Cover::new(Arc::new(graph), Vec::new(), config.ef_search, true)
        });
        if cover.refits && cover.graph.fitted_rows() == 0 {
            return false; // no row published yet to fit the ranges to
        }
        self.state.epochs.replace_cover(None, Some(Arc::new(cover)))
    }

    /// A cover whose first part is the largest sealed segment, its graph copied from that
    /// segment's FAISS graph, if it has a plain HNSW one.
    #[cfg(feature = "faiss")]
    fn seed_from_faiss(&self, epoch: &Epoch) -> Option<Cover> {
        use crate::epoch::cover::Part;
        let largest = epoch.sealed.iter().max_by_key(|s| s.len())?;
        let graph = largest.ann()?.graph_of_rows().filter(|g| g.len() == largest.len())?;
        let part = Part { first: 0, rows: PartRows::Sealed(largest.clone()) };
        Some(Cover::new(Arc::new(graph), vec![part], self.settings.segment_index.ef_search, false))
    }

    #[cfg(not(feature = "faiss"))]
    fn seed_from_faiss(&self, _epoch: &Epoch) -> Option<Cover> {
        None
    }
}
