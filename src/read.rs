//! The read path: a search sees one consistent point in time, and never waits.
//!
//! A search takes a [`ReadView`](crate::seq::ReadView) (every operation complete at that moment,
//! none in flight; `seq::sequencer`), loads the epoch once (`Epochs::view_and_epoch`, which
//! retries only if a merge raised the horizon past the view), and offers the best rows of every
//! head and segment of that epoch to one top-k. Writers that run meanwhile append to heads this
//! epoch may name; the view leaves their rows out.

use crate::chunk::Chunk;
use crate::epoch::Epochs;
use crate::query::{SearchHit, SearchOptions, TopK};
use crate::seq::Sequencer;
use crate::state::State;

impl State {
    /// The `options.k` nearest live chunks to `query` (prepared: checked, normalized for
    /// cosine) that pass the filters, best first.
    pub(crate) fn search(&self, query: &[f32], options: &SearchOptions) -> Vec<SearchHit> {
        let (view, epoch) = self.epochs.view_and_epoch(&self.seq, Sequencer::view, Epochs::load);
        let mut top = TopK::new(options.k, self.metric);
        if let Some(cover) = &epoch.cover {
            cover.search(query, &view, options, &mut top);
        }
        for source in epoch.sources() {
            if !epoch.cover.as_ref().is_some_and(|cover| cover.covers(source.id())) {
                source.search(query, &view, options, &mut top);
            }
        }
        top.into_hits()
    }

    /// A copy of a live chunk (its vector as stored: normalized for cosine).
    pub(crate) fn chunk(&self, chunk_id: &str) -> Option<Chunk> {
        let mut previous = None;
        loop {
            let loc = self.maps.location(chunk_id)?;
            let epoch = self.epochs.load();
            let Some(source) = epoch.find(loc.segment) else {
                // Merged and retired between reading the map and loading the epoch: the map
                // entry has moved on (E5 in `epoch`); read it again. An entry that did not move
                // points nowhere (a stale cache entry reconcile_mappings() would remove).
                if previous == Some(loc) {
                    return None;
                }
                previous = Some(loc);
                continue;
            };
            let row = loc.row as usize;
            if source.tombstones().deleted_at(row).is_some() {
                return None;
            }
            return source.with_row(row, |r, vector| r.to_chunk(vector));
        }
    }
}
