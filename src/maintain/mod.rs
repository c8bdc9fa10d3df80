//! Maintenance, off the write path: sealing frozen heads, merging and vacuuming sealed segments
//! (the protocol in [`merge`], the choice in a [`MergePolicy`]), and building their FAISS
//! indexes; run by the background [`worker`] or inline by `maintain()` and `force_merge()`.
//!
//! Merges and builds run one at a time (a mutex only maintenance takes: writers and searches
//! never wait for it). Every long step is bounded and asks [`Maintenance::is_closing`] between
//! steps, so dropping an index never waits for work whose result nobody will use.

mod cover;
pub(crate) mod merge;
mod policy;
pub(crate) mod worker;

use std::collections::HashSet;

pub use policy::{MergePolicy, SegmentInfo, TieredMergePolicy};

use crate::ids::SegmentId;
use crate::segment::{Segment, SegmentIndex};
use crate::state::State;
use crate::sync::{Arc, AtomicBool, Mutex, Ordering, spin_wait};

/// Merges one maintenance step performs at most, so a step never runs unboundedly long.
const MERGES_PER_STEP: usize = 16;
/// Steps of the cover's inserter one maintenance step takes at most (each a few hundred rows).
const COVER_STEPS_PER_BUILD: usize = 256;

/// What maintenance needs to know of the index's configuration.
pub(crate) struct Settings {
    pub(crate) head_capacity: usize,
    #[cfg_attr(not(feature = "faiss"), allow(dead_code))]
    pub(crate) segment_index: SegmentIndex,
    /// A std `Arc`, not the shim's: a policy is configuration, shared by no protocol, and loom's
    /// `Arc` cannot hold a trait object.
    #[allow(clippy::disallowed_types)]
    pub(crate) policy: std::sync::Arc<dyn MergePolicy>,
}

/// See the module docs.
pub(crate) struct Maintenance {
    state: Arc<State>,
    settings: Settings,
    /// Set when the index is dropped: background work in progress stops at its next bounded
    /// step instead of finishing work nobody will use.
    closing: AtomicBool,
    /// Serializes merges and builds (the worker's and `maintain()` calls).
    one_at_a_time: Mutex<()>,
    /// Segments whose FAISS build failed; they stay exact.
    #[cfg_attr(not(feature = "faiss"), allow(dead_code))]
    unindexable: Mutex<HashSet<SegmentId>>,
}

impl Maintenance {
    pub(crate) fn new(state: Arc<State>, settings: Settings) -> Self {
        Self {
            state,
            settings,
            closing: AtomicBool::new(false),
            one_at_a_time: Mutex::new(()),
            unindexable: Mutex::new(HashSet::new()),
        }
    }

    /// One maintenance step: seal settled frozen heads, merge and vacuum, index sealed
    /// segments. Returns how many frozen heads remain (their last writer is still publishing).
    pub(crate) fn step(&self) -> usize {
        self.grow_maps_ahead();
        let (_, frozen) = self.seal();
        self.build().unwrap_or(frozen)
    }

    /// Seals what is settled (the current head first, closed early), then merges sealed segments
    /// into as few as the policy allows (dropping dead rows) and indexes the result, one caller
    /// at a time with the background builder. Writers and searches go on meanwhile. Returns the
    /// sealed segments left.
    pub(crate) fn force_merge(&self) -> usize {
        let epochs = &self.state.epochs;
        // The current head's rows are merged too: otherwise the last rows of a bulk load stay
        // in a head that every query scans exactly until it fills.
        if let Some(closed) = epochs.close_head() {
            // Its writers publish the rows they reserved within moments; then it seals.
            let mut round = 0;
            while epochs.load().frozen.iter().any(|head| head.id() == closed) {
                self.seal();
                spin_wait(round);
                round += 1;
            }
        }
        self.seal();
        let _one_at_a_time = self.one_at_a_time.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Bounded: deletes landing meanwhile could otherwise keep a segment worth rewriting.
        let rounds = epochs.load().sealed.len() * 2 + 8;
        for _ in 0..rounds {
            let Some(sources) = self.picked(|infos| self.settings.policy.pick_all(infos)) else { break };
            let state = &*self.state;
            let Some((mut merged, horizon)) = merge::build(&state.epochs, &state.seq, &sources, state.dim, &|| false)
            else {
                break;
            };
            merged.segment = merged.segment.map(|segment| self.indexed_merge(segment, merged.base.as_ref()));
            if !merge::publish(&state.epochs, &state.maps, &sources, merged, horizon) {
                continue; // a source changed meanwhile: pick again from the new epoch
            }
        }
        self.index_segments();
        if self.settings.segment_index.graph_links().is_some() {
            // The merge voided the cover; the next one starts from the merged segment's graph
            // (with FAISS, when it is the largest), and takes in the rest. Bounded like
            // `grow_cover`, so writers never keep this call from returning.
            let rows: usize = epochs.load().sources().map(|s| s.len()).sum();
            let mut steps = 0;
            while steps < rows / 64 + COVER_STEPS_PER_BUILD && !self.is_closing() && self.cover_step() {
                steps += 1;
            }
        }
        epochs.load().sealed.len()
    }

    /// The segments of the current epoch the policy picks, if it picks any (an answer naming a
    /// segment twice or out of range is ignored).
    fn picked(&self, pick: impl FnOnce(&[SegmentInfo]) -> Option<Vec<usize>>) -> Option<Vec<Arc<Segment>>> {
        let epoch = self.state.epochs.load_full();
        // Dead counts change under concurrent deletes: read each once, and decide on that reading.
        let infos: Vec<SegmentInfo> = epoch
            .sealed
            .iter()
            .map(|s| SegmentInfo::new(s.len(), s.tombstones().dead_count()).indexed(s.is_indexed()))
            .collect();
        let picked = pick(&infos)?;
        let mut seen = HashSet::new();
        if picked.is_empty() || !picked.iter().all(|&i| i < infos.len() && seen.insert(i)) {
            tracing::warn!(?picked, segments = infos.len(), "the merge policy picked no valid merge; ignored");
            return None;
        }
        Some(picked.into_iter().map(|i| epoch.sealed[i].clone()).collect())
    }

    /// Seals every settled frozen head. Returns how many it sealed and how many remain frozen.
    /// Needs no lock: concurrent sealers publish each head once (see `Epochs::seal_settled`).
    pub(crate) fn seal(&self) -> (usize, usize) {
        self.state.epochs.seal_settled()
    }

    /// Doubles the id maps' and the vocabulary's shards that are about to fill, so that the
    /// writer whose insert would fill one does not rehash it ([`crate::maps::grow_ahead`]).
    pub(crate) fn grow_maps_ahead(&self) -> usize {
        self.state.maps.grow_ahead() + self.state.vocabulary.grow_ahead()
    }

    /// Tells background work in progress to stop at its next bounded step (a FAISS build
    /// checks between calls of about [`BUILD_STEP`](crate::segment::faiss::BUILD_STEP), a merge
    /// between segments it copies). The index's state stays whatever the last completed step
    /// published.
    pub(crate) fn close(&self) {
        // Relaxed: a hint polled by the worker; the join that follows orders everything else.
        self.closing.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Merges, vacuums and indexes sealed segments, one caller at a time: each round merges
    /// what the policy picks, or when it picks nothing indexes the largest segment that lacks
    /// an index (so that small segments the policy is about to merge away are not indexed for
    /// nothing). Returns how many heads were frozen after its last round, if it did anything.
    pub(crate) fn build(&self) -> Option<usize> {
        let _one_at_a_time = self.one_at_a_time.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.settings.segment_index.graph_links().is_some() {
            return self.grow_cover();
        }
        let state = &*self.state;
        let mut frozen = None;
        for _ in 0..MERGES_PER_STEP {
            if self.is_closing() {
                return frozen;
            }
            let seal_rows = self.settings.head_capacity;
            let Some(sources) = self.picked(|infos| self.settings.policy.pick(infos, seal_rows)) else {
                if !self.index_largest() {
                    break;
                }
                frozen = Some(self.seal().1);
                continue;
            };
            let Some((mut merged, horizon)) =
                merge::build(&state.epochs, &state.seq, &sources, state.dim, &|| self.is_closing())
            else {
                return frozen;
            };
            // Index before publishing: until then the sources (indexed) serve searches.
            merged.segment = merged.segment.map(|segment| self.indexed_merge(segment, merged.base.as_ref()));
            let published = merge::publish(&state.epochs, &state.maps, &sources, merged, horizon);
            // A merge and its index build can take seconds: seal the heads that filled up
            // meanwhile (when the sealer thread has not), so searches scan few rows exactly and
            // a persist rewrites few head rows.
            frozen = Some(self.seal().1);
            if !published {
                break;
            }
        }
        frozen
    }

    /// A plain HNSW index's maintenance: no merges and no FAISS builds (its rows share the
    /// cover's graph), the cover grown until it waits for rows, sealing settled heads between
    /// steps. Returns how many heads were frozen at the end, if it did anything.
    fn grow_cover(&self) -> Option<usize> {
        let mut frozen = None;
        let mut steps = usize::from(self.rebuild_cover());
        // Bounded, so that a writer as fast as the inserter never keeps `maintain()` (or the
        // maintenance mutex) from returning: the builder thread comes back within a poll.
        while steps < COVER_STEPS_PER_BUILD && !self.is_closing() && self.cover_step() {
            steps += 1;
            if steps % 16 == 0 {
                frozen = Some(self.seal().1);
            }
        }
        if steps > 0 { Some(self.seal().1) } else { frozen }
    }

    /// How long the builder thread waits for work when nobody wakes it: a cover takes rows as
    /// writers publish them (nobody wakes it for each), so it looks often.
    pub(crate) fn poll_interval(&self) -> std::time::Duration {
        if self.settings.segment_index.graph_links().is_some() {
            std::time::Duration::from_millis(5)
        } else {
            std::time::Duration::from_millis(200)
        }
    }

    /// Builds the configured FAISS index for the largest sealed segment that lacks one and
    /// publishes it. Returns whether it published one.
    fn index_largest(&self) -> bool {
        let epoch = self.state.epochs.load_full();
        let mut waiting: Vec<&Arc<Segment>> = epoch.sealed.iter().filter(|s| !s.is_indexed()).collect();
        waiting.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for segment in waiting {
            if self.is_closing() {
                return false;
            }
            let indexed = self.indexed(segment.clone());
            if !Arc::ptr_eq(&indexed, segment) {
                return self.state.epochs.replace_sealed(segment, indexed);
            }
        }
        false
    }

    /// Builds the configured FAISS index for every sealed segment that lacks one, sealing
    /// settled heads after each build.
    fn index_segments(&self) {
        while !self.is_closing() && self.index_largest() {
            self.seal();
        }
    }

    /// The merged `segment` indexed: by extending a copy of `base`'s index when the merge kept
    /// `base`'s rows in place and that index is of the configured kind, else as
    /// [`Maintenance::indexed`] does.
    #[cfg(feature = "faiss")]
    fn indexed_merge(&self, segment: Arc<Segment>, base: Option<&Arc<Segment>>) -> Arc<Segment> {
        let config = &self.settings.segment_index;
        let Some((base, ann)) =
            base.and_then(|b| Some((b, b.ann()?))).filter(|(_, ann)| config.factory() == Some(ann.factory()))
        else {
            return self.indexed(segment);
        };
        match ann.extend(config, self.state.dim, segment.data().vectors(), base.len(), &|| self.is_closing()) {
            Ok(Some(extended)) => {
                tracing::debug!(
                    segment = segment.id().0,
                    base = base.id().0,
                    rows = segment.len(),
                    added = segment.len() - base.len(),
                    ms = extended.build_time().as_secs_f64() * 1e3,
                    "extended the base segment's index"
                );
                Arc::new(segment.with_ann(extended))
            }
            Ok(None) => {
                tracing::info!(
                    segment = segment.id().0,
                    base = base.id().0,
                    rows = segment.len(),
                    "FAISS build cancelled: the index is closing"
                );
                segment
            }
            Err(e) => {
                tracing::warn!(segment = segment.id().0, error = %e, "cannot extend the base's index; building one");
                self.indexed(segment)
            }
        }
    }

    #[cfg(not(feature = "faiss"))]
    fn indexed_merge(&self, segment: Arc<Segment>, _base: Option<&Arc<Segment>>) -> Arc<Segment> {
        segment
    }

    /// `segment` with the configured FAISS index attached, or `segment` itself if it stays
    /// exact: exact configured, too few rows, already indexed, or the build failed (logged, and
    /// remembered so it is not retried; the rows stay searchable by scanning, none is lost).
    #[cfg(feature = "faiss")]
    fn indexed(&self, segment: Arc<Segment>) -> Arc<Segment> {
        let config = &self.settings.segment_index;
        if config.is_exact() || segment.is_indexed() || segment.len() < config.min_rows.max(1) {
            return segment;
        }
        let mut failed = self.unindexable.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failed.contains(&segment.id()) {
            return segment;
        }
        let state = &*self.state;
        let built = crate::segment::faiss::FaissIndex::build(
            config,
            state.metric,
            state.dim,
            segment.data().vectors(),
            &|| self.is_closing(),
        );
        match built {
            Ok(Some(ann)) => {
                tracing::debug!(
                    segment = segment.id().0,
                    rows = segment.len(),
                    vectors = ann.indexed_vectors(),
                    ms = ann.build_time().as_secs_f64() * 1e3,
                    "indexed segment"
                );
                Arc::new(segment.with_ann(ann))
            }
            Ok(None) => {
                tracing::info!(
                    segment = segment.id().0,
                    rows = segment.len(),
                    "FAISS build cancelled: the index is closing"
                );
                segment
            }
            Err(e) => {
                tracing::warn!(segment = segment.id().0, rows = segment.len(), error = %e, "cannot build the FAISS index; the segment stays exact");
                failed.insert(segment.id());
                segment
            }
        }
    }

    #[cfg(not(feature = "faiss"))]
    fn indexed(&self, segment: Arc<Segment>) -> Arc<Segment> {
        segment
    }
}
