//! The read path: a search sees one consistent point in time, and never waits.
//!
//! A search takes a [`ReadView`](crate::seq::ReadView) (every operation complete at that moment,
//! none in flight; `seq::sequencer`), loads the epoch once (`Epochs::view_and_epoch`, which
//! retries only if a merge raised the horizon past the view), and offers the best rows of every
//! head and segment of that epoch to one top-k. Writers that run meanwhile append to heads this
//! epoch may name; the view leaves their rows out.

use crate::chunk::Chunk;
use crate::epoch::Epochs;
use crate::metadata::Filter;
use crate::query::{SearchHit, SearchOptions, TopK};
use crate::seq::Sequencer;
use crate::state::State;

impl State {
    /// The `options.k` nearest live chunks to `query` (prepared: checked, normalized for
    /// cosine) that pass the filters, best first.
    pub(crate) fn search(&self, query: &[f32], options: &SearchOptions) -> Vec<SearchHit> {
        self.search_batch(std::iter::once(query), options).pop().unwrap_or_default()
    }

    /// [`State::search`] of each of `queries`, all in one view: a batch sees one point in time.
    pub(crate) fn search_batch<'q>(
        &self,
        queries: impl IntoIterator<Item = &'q [f32]>,
        options: &SearchOptions,
    ) -> Vec<Vec<SearchHit>> {
        let (view, epoch) = self.epochs.view_and_epoch(&self.seq, Sequencer::view, Epochs::load);
        let search = |query: &[f32]| {
            let mut top = TopK::for_options(options, self.metric);
            if let Some(cover) = &epoch.cover {
                cover.search(query, &view, options, &mut top);
            }
            for source in epoch.sources() {
                if !epoch.cover.as_ref().is_some_and(|cover| cover.covers(source.id())) {
                    source.search(query, &view, options, &mut top);
                }
            }
            top.into_hits()
        };
        queries.into_iter().map(search).collect()
    }

    /// The ids of the live chunks `filter` accepts, in one view.
    pub(crate) fn chunk_ids_where(&self, filter: &Filter) -> Vec<String> {
        let (view, epoch) = self.epochs.view_and_epoch(&self.seq, Sequencer::view, Epochs::load);
        let mut ids = Vec::new();
        for source in epoch.sources() {
            source.for_each_visible(&view, |_, row, _| {
                if filter.matches(row) {
                    ids.push(row.chunk_id().to_owned());
                }
            });
        }
        ids
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
