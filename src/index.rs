//! [`VectorIndex`], and the [`Index`] trait it shares with the baseline
//! [`MutexIndex`](crate::MutexIndex).
//!
//! # How a mutation runs
//!
//! 1. Validate and prepare every vector (normalize for cosine). Bad input returns here, with
//!    nothing changed.
//! 2. Take the document's entry in the `docs` map (serializes mutations of one document), claim
//!    new chunk ids in the `chunks` map (a conflict with another document returns here, undone).
//! 3. Take one seq from the [`Sequencer`]; tombstone replaced rows and append new rows to the
//!    head with that seq; point the chunk map at the new rows.
//! 4. Drop the in-flight guard (the operation is complete), update the document's chunk list,
//!    release the entry, then register terms in the vocabulary and wake the sealer if a head
//!    filled up.
//!
//! Nothing in 1-4 waits for a search or a persist. A search takes a [`ReadView`] without waiting
//! and loads the epoch once; a persist waits only for operations already in flight.

use std::collections::HashSet;
use std::path::Path;

use crate::chunk::{self, Chunk};
use crate::config::IndexConfig;
use crate::epoch::Source;
use crate::epoch::{Epoch, Epochs};
use crate::error::{Error, Result};
use crate::maps::{self, ChunkEntry, DocLocks, Maps};
use crate::merge;
use crate::metric::Metric;
use crate::persist::reader::Loaded;
use crate::persist::writer::{SnapshotParts, SnapshotSegment};
use crate::persist::{self, OpenOptions, OpenReport, PersistReport};
use crate::query::{SearchHit, SearchOptions, TopK};
use crate::rows::RowMeta;
use crate::rows::SealedRows;
use crate::rows::Tombstones;
use crate::rows::{RowLoc, SegmentId};
use crate::segment::{Segment, SegmentData};
use crate::seq::Sequencer;
use crate::seq::{ReadView, SeqNo};
use crate::sync::{Arc, AtomicBool, AtomicUsize, Entry, Mutex, Ordering, spin_wait};
use crate::vocabulary::Vocabulary;
use crate::worker::Worker;

/// The operations every index offers. Implemented by [`VectorIndex`] and by the baseline
/// [`MutexIndex`](crate::MutexIndex), so tests and benchmarks run the same code on both.
pub trait Index: Send + Sync {
    /// Adds one chunk. A chunk id that already exists in the same document is replaced.
    ///
    /// # Errors
    /// Bad vectors or ids, or a chunk id owned by another document; the index is then unchanged.
    fn add_chunk(&self, chunk: Chunk) -> Result<()>;
    /// Adds chunks of any documents as one atomic step: every chunk is checked first (bad
    /// vectors or ids, a chunk id owned by another document), and one bad chunk rejects the whole
    /// call with the index unchanged; otherwise all of them are applied under one seq.
    fn add_chunks(&self, chunks: Vec<Chunk>) -> Result<()>;
    /// Replaces all chunks of `doc_id` with `chunks` in one atomic step (their `doc_id` fields
    /// are set to `doc_id`). A snapshot or search sees the old document or the new one, never a mix.
    fn add_document(&self, doc_id: &str, chunks: Vec<Chunk>) -> Result<()>;
    /// Removes every chunk of `doc_id` in one atomic step; returns how many there were.
    fn remove_document(&self, doc_id: &str) -> Result<usize>;
    /// Removes one chunk; returns whether it existed.
    fn remove_chunk(&self, chunk_id: &str) -> Result<bool>;
    /// The `options.k` nearest live chunks that pass the filters, best first, from one
    /// consistent point-in-time view.
    fn search(&self, query: &[f32], options: &SearchOptions) -> Result<Vec<SearchHit>>;
    /// A copy of a live chunk (its vector as stored: normalized for cosine).
    fn get_chunk(&self, chunk_id: &str) -> Option<Chunk>;
    /// The ids of all documents, sorted (an owned copy).
    fn get_document_ids(&self) -> Vec<String>;
    /// The chunk ids of a document in the order their rows were added (an owned copy).
    fn get_chunk_ids_for_document(&self, doc_id: &str) -> Vec<String>;
    /// Re-derives the id maps from the stored rows, repairs them, and returns how many stale
    /// entries it removed.
    fn reconcile_mappings(&self) -> usize;
    /// Writes a snapshot of every operation that completed before this call into the index
    /// directory `path`: the files it lacks, then a new manifest, atomically. A crash at any
    /// point leaves the previous snapshot or this one.
    ///
    /// # Errors
    /// I/O errors (a full disk: [`Error::is_storage_full`]), after which the directory still
    /// holds the previous snapshot (or, if only the final directory fsync failed, this one);
    /// [`Error::NotAnIndex`] for a path that is a file or a directory of other files;
    /// [`Error::ForeignIndex`] for a directory that holds another index.
    fn persist(&self, path: &Path) -> Result<PersistReport>;
    fn stats(&self) -> Stats;
    /// Live chunks.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Opens the index directory `path` with `options`, and reports what it found: files healed,
    /// rows files quarantined and the documents they held, a fallback to the previous manifest.
    ///
    /// # Errors
    /// [`Error::Io`] for a missing directory, [`Error::NotAnIndex`], [`Error::Corrupt`] when no
    /// manifest is usable (or, in strict mode, when anything would be lost),
    /// [`Error::Incompatible`] when `options.config` has another dimension or metric.
    fn open_with_options(path: &Path, options: &OpenOptions) -> Result<(Self, OpenReport)>
    where
        Self: Sized;
    /// Opens the index persisted in `path` with the settings it was persisted with. Damage is
    /// healed or quarantined and logged (see [`Index::open_with_options`] for the report).
    fn open(path: &Path) -> Result<Self>
    where
        Self: Sized,
    {
        Self::open_with_options(path, &OpenOptions::new()).map(|(index, _)| index)
    }
    /// Opens the index persisted in `path` with `config`'s settings; `config.dim` and
    /// `config.metric` must match the snapshot's.
    fn open_with(path: &Path, config: IndexConfig) -> Result<Self>
    where
        Self: Sized,
    {
        Self::open_with_options(path, &OpenOptions::new().config(config)).map(|(index, _)| index)
    }
}

/// Logs what an open found.
pub(crate) fn log_open(report: &OpenReport) {
    tracing::info!(
        path = %report.path.display(),
        seq = report.seq,
        generation = report.generation,
        segments = report.segments,
        chunks = report.chunks,
        bytes_mapped = report.bytes_mapped,
        ms = report.duration.as_secs_f64() * 1e3,
        "opened index"
    );
    for doc in &report.lost_documents {
        tracing::warn!(doc_id = %doc.doc_id, lost = doc.chunks_lost, kept = doc.chunks_kept, "document lost chunks");
    }
}

/// A point-in-time summary of an index.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub dim: usize,
    pub metric: Metric,
    /// Live chunks.
    pub chunks: usize,
    pub documents: usize,
    /// The seq the next mutation will get.
    pub next_seq: SeqNo,
    /// How many epochs have been published since open.
    pub generation: u64,
    pub segments: Vec<SegmentStats>,
    /// Distinct terms in the concept vocabulary.
    pub vocabulary_terms: usize,
}

/// One head or segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentStats {
    pub id: u64,
    /// "head" (receiving rows), "frozen" (full, waiting to be sealed), "exact" (sealed, scanned)
    /// or the FAISS factory string of a sealed, indexed segment.
    pub kind: String,
    /// Rows stored, live or deleted.
    pub rows: usize,
    pub live_rows: usize,
    /// Vectors, row metadata and FAISS index (approximate for strings).
    pub bytes: usize,
    /// How long building its FAISS index took (or loading it from disk).
    pub build_time: Option<std::time::Duration>,
    /// Whether its rows are read in place from a mapped file (a segment opened from disk).
    pub mapped: bool,
    /// Vectors in its FAISS index, if it has one: `rows`, or fewer when rows repeat a vector
    /// (an HNSW graph holds one node per distinct vector).
    pub indexed_vectors: Option<usize>,
}

/// The lock-free concurrent vector index. Share it with `Arc`; every method takes `&self`.
///
/// # Closing
///
/// Dropping the last handle stops the background threads and returns within about one
/// bounded step of their work (about 100 ms of FAISS work): a merge or FAISS
/// build in progress is abandoned, not finished, since nobody would use its result; what it had
/// published stays. Dropping never persists: what is not in a snapshot is gone with the index,
/// so call [`Index::persist`] first if you need it (a segment's FAISS index that was not built
/// yet is built again after the next open).
///
/// ```
/// use vecindex::{Chunk, Index, IndexConfig, SearchOptions, VectorIndex};
///
/// let index = VectorIndex::new(IndexConfig::new(3))?;
/// index.add_document("guide", vec![
///     Chunk::new("guide#0", "guide", vec![1.0, 0.0, 0.0]).with_text("install"),
///     Chunk::new("guide#1", "guide", vec![0.0, 1.0, 0.0]).with_text("usage"),
/// ])?;
/// let hits = index.search(&[0.9, 0.1, 0.0], &SearchOptions::k(1))?;
/// assert_eq!(hits[0].chunk_id, "guide#0");
///
/// let dir = tempfile::tempdir().unwrap();
/// index.persist(dir.path())?;
/// let reopened = VectorIndex::open(dir.path())?;
/// assert_eq!(reopened.get_chunk_ids_for_document("guide"), ["guide#0", "guide#1"]);
/// # Ok::<(), vecindex::Error>(())
/// ```
pub struct VectorIndex {
    shared: Arc<Shared>,
    worker: Option<Worker>,
}

/// Everything the background worker shares with the index.
pub(crate) struct Shared {
    config: IndexConfig,
    /// Identifies this index (its lineage) in the directories it persists into.
    index_uid: u128,
    seq: Sequencer,
    epochs: Epochs,
    maps: Maps,
    /// Serializes the mutations of each document (`doc_locks`).
    doc_locks: DocLocks,
    vocabulary: Vocabulary,
    live: AtomicUsize,
    /// Set when the index is dropped: background work in progress stops at its next bounded
    /// step instead of finishing work nobody will use.
    closing: AtomicBool,
    /// Serializes persists (only persists: writers never touch it).
    persist_lock: Mutex<()>,
    /// Serializes maintenance steps (the worker's and `maintain()` calls).
    maintenance_lock: Mutex<()>,
    /// Segments whose FAISS build failed; they stay exact.
    #[cfg(feature = "faiss")]
    unindexable: Mutex<std::collections::HashSet<SegmentId>>,
}

/// Merges one maintenance step performs at most, so a step never runs unboundedly long.
const MERGES_PER_STEP: usize = 16;

/// What one document of a write replaces, found while claiming its chunk ids.
#[derive(Default)]
struct WritePlan {
    /// Rows to delete: the rewritten chunks' rows, then those of `dropped`.
    replaced: Vec<RowLoc>,
    /// The document's chunks that the write leaves out (`add_document` only).
    dropped: Vec<String>,
    /// Whether some written chunk id was already the document's.
    rewrites: bool,
}

impl Shared {
    /// A view and an epoch it may read: the view first (every operation it includes put its
    /// rows into a head reachable from this epoch or a later one, E1 in `epoch`), then the epoch,
    /// again if a merge published meanwhile raised the horizon past the view (E4). Searches take
    /// `Sequencer::view` and a short-lived `Epochs::load`; persists `Sequencer::snapshot` and
    /// `Epochs::load_full`, which may be held across I/O.
    fn view_and_epoch<E: std::ops::Deref<Target = Epoch>>(
        &self,
        take_view: impl Fn(&Sequencer) -> ReadView,
        load: impl Fn(&Epochs) -> E,
    ) -> (ReadView, E) {
        loop {
            #[cfg(not(vecindex_bug = "epoch_before_view"))]
            let (view, epoch) = (take_view(&self.seq), load(&self.epochs));
            #[cfg(vecindex_bug = "epoch_before_view")]
            let (epoch, view) = (load(&self.epochs), take_view(&self.seq));
            if view.covers(epoch.horizon) {
                return (view, epoch);
            }
        }
    }

    /// One maintenance step: seal settled frozen heads, merge and vacuum, index sealed
    /// segments. Returns how many frozen heads remain (their last writer is still publishing).
    pub(crate) fn maintain(&self) -> usize {
        self.grow_maps_ahead();
        let (_, frozen) = self.seal();
        self.build().unwrap_or(frozen)
    }

    /// Seals what is settled, then merges sealed segments into as few as `max_segment_rows`
    /// allows (dropping dead rows) and indexes the result, one caller at a time with the
    /// background builder. Writers and searches go on meanwhile. Returns the sealed segments
    /// left.
    pub(crate) fn force_merge(&self) -> usize {
        // The current head's rows are merged too: otherwise the last rows of a bulk load stay
        // in a head that every query scans exactly until it fills.
        if let Some(closed) = self.epochs.close_head() {
            // Its writers publish the rows they reserved within moments; then it seals.
            let mut round = 0;
            while self.epochs.load().frozen.iter().any(|head| head.id() == closed) {
                self.seal();
                spin_wait(round);
                round += 1;
            }
        }
        self.seal();
        let _one_at_a_time = self.maintenance_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Bounded: deletes landing meanwhile could otherwise keep a segment worth rewriting.
        let rounds = self.epochs.load().sealed.len() * 2 + 8;
        for _ in 0..rounds {
            let epoch = self.epochs.load_full();
            let Some(sources) = self.config.merge.pick_all(&epoch.sealed) else { break };
            drop(epoch);
            let Some((mut merged, horizon)) =
                merge::build(&self.epochs, &self.seq, &sources, self.config.dim, &|| false)
            else {
                break;
            };
            merged.segment = merged.segment.map(|segment| self.indexed(segment));
            if !merge::publish(&self.epochs, &self.maps, &self.doc_locks, &sources, merged, horizon) {
                continue; // a source changed meanwhile: pick again from the new epoch
            }
        }
        self.index_segments();
        self.epochs.load().sealed.len()
    }

    /// Seals every settled frozen head. Returns how many it sealed and how many remain frozen.
    /// Needs no lock: concurrent sealers publish each head once (see `Epochs::seal_settled`).
    pub(crate) fn seal(&self) -> (usize, usize) {
        self.epochs.seal_settled()
    }

    /// Doubles the id maps' and the vocabulary's shards that are about to fill, so that the
    /// writer whose insert would fill one does not rehash it ([`crate::maps::grow_ahead`]).
    pub(crate) fn grow_maps_ahead(&self) -> usize {
        self.maps.grow_ahead() + self.vocabulary.grow_ahead()
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

    /// Merges, vacuums and indexes sealed segments, one caller at a time. Returns how many
    /// heads were frozen after its last step, if it did anything.
    pub(crate) fn build(&self) -> Option<usize> {
        let _one_at_a_time = self.maintenance_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut frozen = None;
        for _ in 0..MERGES_PER_STEP {
            if self.is_closing() {
                return frozen;
            }
            let epoch = self.epochs.load_full();
            let Some(sources) = self.config.merge.pick(&epoch.sealed, self.config.head_capacity) else { break };
            drop(epoch);
            let Some((mut merged, horizon)) =
                merge::build(&self.epochs, &self.seq, &sources, self.config.dim, &|| self.is_closing())
            else {
                return frozen;
            };
            // Index before publishing: until then the sources (indexed) serve searches.
            merged.segment = merged.segment.map(|segment| self.indexed(segment));
            let published = merge::publish(&self.epochs, &self.maps, &self.doc_locks, &sources, merged, horizon);
            // A merge and its index build can take seconds: seal the heads that filled up
            // meanwhile (when the sealer thread has not), so searches scan few rows exactly and
            // a persist rewrites few head rows.
            frozen = Some(self.seal().1);
            if !published {
                break;
            }
        }
        // After merging, so that segments about to be merged are not indexed for nothing.
        self.index_segments().or(frozen)
    }

    /// Builds the configured FAISS index for every sealed segment that lacks one, sealing
    /// settled heads after each build. Returns the frozen heads left after the last build, if
    /// it built any.
    fn index_segments(&self) -> Option<usize> {
        let epoch = self.epochs.load_full();
        let mut frozen = None;
        for segment in epoch.sealed.iter() {
            if self.is_closing() {
                break;
            }
            let indexed = self.indexed(segment.clone());
            if !Arc::ptr_eq(&indexed, segment) {
                self.epochs.replace_sealed(segment, indexed);
                frozen = Some(self.seal().1);
            }
        }
        frozen
    }

    /// `segment` with the configured FAISS index attached, or `segment` itself if it stays
    /// exact: exact configured, too few rows, already indexed, or the build failed (logged, and
    /// remembered so it is not retried; the rows stay searchable by scanning, none is lost).
    #[cfg(feature = "faiss")]
    fn indexed(&self, segment: Arc<Segment>) -> Arc<Segment> {
        let config = &self.config.segment_index;
        if config.is_exact() || segment.is_indexed() || segment.len() < config.min_rows.max(1) {
            return segment;
        }
        let mut failed = self.unindexable.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failed.contains(&segment.id()) {
            return segment;
        }
        let built = crate::segment::faiss::FaissIndex::build(
            config,
            self.config.metric,
            self.config.dim,
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

impl VectorIndex {
    /// An empty index.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero dimension or capacity.
    pub fn new(config: IndexConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self::assemble(config, 1, persist::manifest::new_index_uid(), Vec::new()).start_worker())
    }

    fn assemble(config: IndexConfig, first_seq: SeqNo, index_uid: u128, sealed: Vec<Arc<Segment>>) -> Self {
        let seq = Sequencer::new(first_seq, config.writer_slots);
        let shared = Arc::new(Shared {
            epochs: Epochs::new(config.dim, config.head_capacity, sealed),
            vocabulary: Vocabulary::new(config.vocabulary_limit),
            maps: Maps::new(),
            doc_locks: DocLocks::new(index_uid as u64),
            live: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            persist_lock: Mutex::new(()),
            maintenance_lock: Mutex::new(()),
            #[cfg(feature = "faiss")]
            unindexable: Mutex::new(std::collections::HashSet::new()),
            seq,
            index_uid,
            config,
        });
        Self { shared, worker: None }
    }

    /// Starts the background worker (if configured). Called once the index is fully built:
    /// a merge must never run before the id maps describe the rows it moves.
    fn start_worker(mut self) -> Self {
        if self.shared.config.background {
            self.worker = Worker::start(self.shared.clone());
            if let Some(worker) = &self.worker {
                worker.wake(); // segments loaded from disk may want indexing or merging
            }
        }
        self
    }

    pub fn config(&self) -> &IndexConfig {
        &self.shared.config
    }

    /// Runs the background step inline: seals every settled frozen head. Returns how many frozen
    /// heads remain (a head whose last writer is still publishing is sealed on a later call).
    pub fn maintain(&self) -> usize {
        self.shared.maintain()
    }

    /// Merges the sealed segments into as few as [`MergePolicy::max_segment_rows`] allows, drops
    /// deleted rows, and builds the configured index over the result, on the calling thread
    /// (the background merge policy instead merges a tier at a time as the index grows). Call it
    /// after a bulk load of an index that will mostly be searched: each query then walks one
    /// graph instead of one per segment. The current head is closed first, so its rows are
    /// merged too (rows added meanwhile go to a fresh head). Writers and searches go on
    /// meanwhile; returns the number of sealed segments left.
    ///
    /// ```
    /// use vecindex::{Chunk, Index, IndexConfig, VectorIndex};
    ///
    /// let index = VectorIndex::new(IndexConfig::new(2).head_capacity(4).background(false))?;
    /// for i in 0..20 {
    ///     index.add_chunk(Chunk::new(format!("c{i}"), "doc", vec![1.0, i as f32]))?;
    /// }
    /// assert_eq!(index.force_merge(), 1);
    /// assert_eq!(index.len(), 20);
    /// # Ok::<(), vecindex::Error>(())
    /// ```
    ///
    /// [`MergePolicy::max_segment_rows`]: crate::MergePolicy::max_segment_rows
    pub fn force_merge(&self) -> usize {
        self.shared.force_merge()
    }

    /// The most frequent terms of indexed text.
    pub fn top_terms(&self, n: usize) -> Vec<(String, u64)> {
        self.shared.vocabulary.top(n)
    }

    /// Applies every document's chunks under one seq, all or nothing. `replace`: each
    /// document's other chunks are removed in the same step (add_document); otherwise they stay
    /// (add_chunk/add_chunks). The chunks must already be prepared (`chunk::prepare_chunks`).
    fn write_documents(&self, docs: Vec<(String, Vec<Chunk>)>, replace: bool) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let s = &*self.shared;
        let documents = s.doc_locks.lock_all(docs.iter().map(|(doc_id, _)| doc_id.as_str()));
        // 1. Claim every chunk id of every document; a conflict undoes the claims made so far.
        let mut claimed: Vec<&str> = Vec::new();
        let mut plans: Vec<WritePlan> = Vec::with_capacity(docs.len());
        for (doc_id, chunks) in &docs {
            let mut plan = WritePlan::default();
            for chunk in chunks {
                // An injected bug for the loom models: claiming a chunk id by looking, then
                // inserting, instead of through one entry (two documents can both claim it).
                #[cfg(vecindex_bug = "claim_check_then_insert")]
                if !s.maps.chunks.contains_key(&chunk.chunk_id) {
                    s.maps.chunks.insert(chunk.chunk_id.clone(), ChunkEntry { doc_id: doc_id.clone(), loc: None });
                    claimed.push(&chunk.chunk_id);
                    continue;
                }
                match s.maps.chunks.entry(chunk.chunk_id.clone()) {
                    Entry::Occupied(o) if o.get().doc_id != *doc_id => {
                        let owner = o.get().doc_id.clone();
                        drop(o);
                        for id in claimed {
                            s.maps.chunks.remove(id);
                        }
                        return Err(Error::ChunkInOtherDocument {
                            chunk_id: chunk.chunk_id.clone(),
                            owner,
                            requested: doc_id.clone(),
                        });
                    }
                    Entry::Occupied(o) => {
                        plan.rewrites = true;
                        plan.replaced.extend(o.get().loc);
                    }
                    Entry::Vacant(v) => {
                        v.insert(ChunkEntry { doc_id: doc_id.clone(), loc: None });
                        claimed.push(&chunk.chunk_id);
                    }
                }
            }
            if replace {
                let new_ids: HashSet<&str> = chunks.iter().map(|c| c.chunk_id.as_str()).collect();
                plan.dropped = s
                    .maps
                    .docs
                    .get(doc_id)
                    .map(|list| list.iter().filter(|id| !new_ids.contains(id.as_str())).cloned().collect())
                    .unwrap_or_default();
            }
            plans.push(plan);
        }

        // 2. One seq for the whole call: its rows and tombstones appear to every reader at once.
        let op = s.seq.begin();
        let seq = op.seq();
        let epoch = s.epochs.load();
        let mut removed = 0;
        for plan in &mut plans {
            for id in &plan.dropped {
                if let Some((_, entry)) = s.maps.chunks.remove(id.as_str()) {
                    plan.replaced.extend(entry.loc);
                }
            }
            for loc in &plan.replaced {
                removed += usize::from(tombstone(&epoch, *loc, seq));
            }
        }
        drop(epoch);
        let mut added = 0;
        let mut froze = false;
        let mut add_index = 0u32;
        let mut written: Vec<(String, Vec<Arc<RowMeta>>)> = Vec::with_capacity(docs.len());
        for (doc_id, chunks) in docs {
            let mut rows = Vec::with_capacity(chunks.len());
            for chunk in chunks {
                let (meta, vector) = RowMeta::from_chunk(chunk, seq, add_index);
                add_index += 1;
                let meta = Arc::new(meta);
                let (loc, froze_head) = s.epochs.append(meta.clone(), vector.into_boxed_slice());
                froze |= froze_head;
                if let Some(mut entry) = s.maps.chunks.get_mut(&meta.chunk_id) {
                    entry.loc = Some(loc);
                }
                rows.push(meta);
            }
            added += rows.len();
            written.push((doc_id, rows));
        }
        // Relaxed: a counter for len(); exact whenever writers are quiescent.
        s.live.fetch_add(added, Ordering::Relaxed);
        s.live.fetch_sub(removed, Ordering::Relaxed);
        drop(op); // the operation is complete: views from now on include it

        // 3. The documents' chunk lists, still under their locks.
        for ((doc_id, rows), plan) in written.iter().zip(&plans) {
            let ids: Vec<String> = rows.iter().map(|m| m.chunk_id.clone()).collect();
            match s.maps.docs.entry(doc_id.clone()) {
                Entry::Occupied(mut o) => {
                    maps::update_chunk_list(o.get_mut(), replace, &ids, plan.rewrites);
                    if o.get().is_empty() {
                        o.remove();
                    }
                }
                Entry::Vacant(v) if !ids.is_empty() => drop(v.insert(ids)),
                Entry::Vacant(_) => {}
            }
        }
        drop(documents);
        for meta in written.iter().flat_map(|(_, rows)| rows) {
            s.vocabulary.register(&meta.text);
        }
        if froze {
            self.wake_sealer();
        }
        Ok(())
    }

    fn wake_sealer(&self) {
        if let Some(worker) = &self.worker {
            worker.wake();
        }
    }

    /// An injected bug for the loom models: `remove_document` releasing the document's lock
    /// before it removes the chunks (a writer of the same document can then run in between).
    #[cfg(vecindex_bug = "remove_unlocks_early")]
    fn remove_document_unlocked(&self, doc_id: &str, ids: &[String]) -> usize {
        let s = &*self.shared;
        let op = s.seq.begin();
        let mut removed = 0;
        for id in ids {
            if let Some((_, ChunkEntry { loc: Some(loc), .. })) = s.maps.chunks.remove(id) {
                removed += usize::from(tombstone(&s.epochs.load(), loc, op.seq()));
            }
        }
        s.live.fetch_sub(removed, Ordering::Relaxed);
        drop(op);
        s.maps.docs.remove(doc_id);
        removed
    }

    /// What a persist at `view` writes: every sealed segment with rows live in the view (with
    /// its deletes below the view's seq, and its FAISS index), and the heads' live rows as one
    /// more segment.
    fn snapshot_parts<'a>(&'a self, epoch: &'a Epoch, view: &ReadView) -> SnapshotParts<'a> {
        let s = &*self.shared;
        let mut live_rows = 0;
        let mut segments = Vec::with_capacity(epoch.sealed.len());
        for segment in &epoch.sealed {
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
        for head in epoch.frozen.iter().chain(std::iter::once(&epoch.head)) {
            head.for_each_visible(view, |_, row, vector| head_rows.push((row.to_handle(), vector.to_vec())));
        }
        live_rows += head_rows.len();
        let head = (!head_rows.is_empty()).then(|| {
            let rows = head_rows.iter().map(|(row, vector)| (row.get(), vector.as_slice()));
            SnapshotSegment {
                // The current head's id: no sealed segment has it yet, and while the heads'
                // rows do not change, neither does the file (so it is not written again).
                id: epoch.head.id().0,
                rows: SealedRows::encode(s.config.dim, rows),
                deletes: Vec::new(),
                faiss: None,
            }
        });
        SnapshotParts { index_uid: s.index_uid, seq: view.upper(), config: &s.config, segments, head, live_rows }
    }

    /// The index a snapshot read back describes.
    fn from_loaded(loaded: Loaded) -> Result<(Self, OpenReport)> {
        let Loaded { index_uid, seq, config, segments, mut report } = loaded;
        let mut sealed = Vec::with_capacity(segments.len());
        for loaded in segments {
            let tombstones = Arc::new(Tombstones::from_seqs(loaded.deleted));
            let segment = Segment::exact(SegmentData::new(SegmentId(loaded.id), loaded.rows, tombstones));
            #[cfg(feature = "faiss")]
            let segment = match loaded.faiss {
                Some(ann) => segment.with_ann(ann),
                None => segment,
            };
            sealed.push(Arc::new(segment));
        }
        sealed.sort_by_key(|s| s.id());
        let index = Self::assemble(config, seq.max(1), index_uid, sealed);
        let s = &*index.shared;
        let epoch = s.epochs.load_full();
        // Every live row, in the order rows were added: that is each document's chunk order.
        let mut rows: Vec<(SeqNo, u32, RowLoc, String, String)> = Vec::new();
        for source in epoch.sources() {
            source.for_each_visible(&ReadView::up_to(SeqNo::MAX), |row, r, _| {
                s.vocabulary.register(r.text());
                let loc = RowLoc { segment: source.id(), row: row as u32 };
                rows.push((r.add_seq(), r.add_index(), loc, r.chunk_id().to_owned(), r.doc_id().to_owned()));
            });
        }
        rows.sort_unstable_by_key(|&(seq, index, loc, ..)| (seq, index, loc.segment, loc.row));
        let mut count = 0;
        for (_, _, loc, chunk_id, doc_id) in rows {
            let entry = ChunkEntry { doc_id: doc_id.clone(), loc: Some(loc) };
            if let Some(older) = s.maps.chunks.insert(chunk_id.clone(), entry) {
                // A chunk id twice: never in a snapshot vecindex wrote. The newer row wins; the
                // older one is deleted before everything, and leaves its document's list.
                report.duplicate_rows += 1;
                count -= 1;
                if let Some(loc) = older.loc {
                    tombstone(&epoch, loc, 0);
                }
                if let Some(mut list) = s.maps.docs.get_mut(&older.doc_id) {
                    list.retain(|id| id != &chunk_id);
                }
                s.maps.docs.remove_if(&older.doc_id, |_, list| list.is_empty());
            }
            s.maps.docs.entry(doc_id).or_default().push(chunk_id);
            count += 1;
        }
        s.live.store(count, Ordering::Relaxed);
        drop(epoch);
        report.chunks = count;
        log_open(&report);
        Ok((index.start_worker(), report))
    }
}

/// Marks the row at `loc` deleted by `seq`. False if it was already deleted or is unknown.
fn tombstone(epoch: &Epoch, loc: RowLoc, seq: SeqNo) -> bool {
    epoch.find(loc.segment).is_some_and(|source| source.tombstones().delete_and_forward(loc.row as usize, seq))
}

/// Whether `loc` holds a live row of chunk `chunk_id` in document `doc_id`.
fn row_matches(epoch: &Epoch, loc: RowLoc, chunk_id: &str, doc_id: &str) -> bool {
    let Some(source) = epoch.find(loc.segment) else {
        return false;
    };
    let row = loc.row as usize;
    source.tombstones().deleted_at(row).is_none()
        && source.with_row(row, |r, _| r.chunk_id() == chunk_id && r.doc_id() == doc_id).unwrap_or(false)
}

impl Index for VectorIndex {
    fn add_chunk(&self, chunk: Chunk) -> Result<()> {
        let mut chunks = [chunk];
        chunk::prepare_chunks(self.shared.config.metric, self.shared.config.dim, &mut chunks)?;
        let [chunk] = chunks;
        let doc_id = chunk.doc_id.clone();
        self.write_documents(vec![(doc_id, vec![chunk])], false)
    }

    fn add_chunks(&self, mut chunks: Vec<Chunk>) -> Result<()> {
        chunk::prepare_chunks(self.shared.config.metric, self.shared.config.dim, &mut chunks)?;
        // An injected bug for the loom models: each document applied as a write of its own
        // (one seq and one conflict check per document), as add_chunks once did.
        #[cfg(vecindex_bug = "add_chunks_per_document")]
        {
            for group in chunk::group_by_doc(chunks) {
                self.write_documents(vec![group], false)?;
            }
            return Ok(());
        }
        #[allow(unreachable_code)]
        self.write_documents(chunk::group_by_doc(chunks), false)
    }

    fn add_document(&self, doc_id: &str, mut chunks: Vec<Chunk>) -> Result<()> {
        chunk::validate_doc_id(doc_id)?;
        chunks.iter_mut().for_each(|c| c.doc_id = doc_id.to_owned());
        chunk::prepare_chunks(self.shared.config.metric, self.shared.config.dim, &mut chunks)?;
        self.write_documents(vec![(doc_id.to_owned(), chunks)], true)
    }

    fn remove_document(&self, doc_id: &str) -> Result<usize> {
        chunk::validate_doc_id(doc_id)?;
        let s = &*self.shared;
        let document = s.doc_locks.lock(doc_id);
        let Some(ids) = s.maps.docs.get(doc_id).map(|list| list.clone()) else {
            return Ok(0);
        };
        #[cfg(vecindex_bug = "remove_unlocks_early")]
        {
            drop(document);
            return Ok(self.remove_document_unlocked(doc_id, &ids));
        }
        let op = s.seq.begin();
        let epoch = s.epochs.load();
        let mut removed = 0;
        for id in &ids {
            if let Some((_, ChunkEntry { loc: Some(loc), .. })) = s.maps.chunks.remove(id) {
                removed += usize::from(tombstone(&epoch, loc, op.seq()));
            }
        }
        s.live.fetch_sub(removed, Ordering::Relaxed);
        drop(op);
        s.maps.docs.remove(doc_id);
        drop(document);
        Ok(removed)
    }

    fn remove_chunk(&self, chunk_id: &str) -> Result<bool> {
        if chunk_id.is_empty() {
            return Err(Error::EmptyId { what: "chunk_id" });
        }
        let s = &*self.shared;
        loop {
            let Some(owner) = s.maps.chunks.get(chunk_id).map(|e| e.doc_id.clone()) else {
                return Ok(false);
            };
            let _document = s.doc_locks.lock(&owner);
            // Under the owner's lock nothing else changes this chunk: check it is still owner's.
            match s.maps.chunks.get(chunk_id).map(|e| e.doc_id.clone()) {
                None => return Ok(false),
                Some(now) if now != owner => continue, // re-owned meanwhile: lock the new owner
                Some(_) => {}
            }
            let op = s.seq.begin();
            let removed = match s.maps.chunks.remove(chunk_id) {
                Some((_, ChunkEntry { loc: Some(loc), .. })) => tombstone(&s.epochs.load(), loc, op.seq()),
                _ => false,
            };
            s.live.fetch_sub(usize::from(removed), Ordering::Relaxed);
            drop(op);
            if let Entry::Occupied(mut doc) = s.maps.docs.entry(owner) {
                doc.get_mut().retain(|id| id != chunk_id);
                if doc.get().is_empty() {
                    doc.remove();
                }
            }
            return Ok(removed);
        }
    }

    fn search(&self, query: &[f32], options: &SearchOptions) -> Result<Vec<SearchHit>> {
        options.validate()?;
        let config = &self.shared.config;
        let mut query = query.to_vec();
        config.metric.prepare(config.dim, &mut query)?;
        let (view, epoch) = self.shared.view_and_epoch(Sequencer::view, Epochs::load);
        let mut top = TopK::new(options.k, config.metric);
        for source in epoch.sources() {
            source.search(&query, &view, options, &mut top);
        }
        Ok(top.into_hits())
    }

    fn get_chunk(&self, chunk_id: &str) -> Option<Chunk> {
        let mut previous = None;
        loop {
            let loc = self.shared.maps.chunks.get(chunk_id)?.loc?;
            let epoch = self.shared.epochs.load();
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

    fn get_document_ids(&self) -> Vec<String> {
        self.shared.maps.document_ids()
    }

    fn get_chunk_ids_for_document(&self, doc_id: &str) -> Vec<String> {
        self.shared.maps.chunk_ids(doc_id)
    }

    fn reconcile_mappings(&self) -> usize {
        let s = &*self.shared;
        let mut removed = 0;
        // 1. Chunk entries whose row is gone, dead, or not theirs.
        let ids: Vec<String> = s.maps.chunks.iter().map(|e| e.key().clone()).collect();
        for id in ids {
            let Some(owner) = s.maps.chunks.get(&id).map(|e| e.doc_id.clone()) else {
                continue;
            };
            #[cfg(vecindex_bug = "reconcile_stale_entry")]
            let early = s.maps.chunks.get(&id).map(|e| e.clone());
            let _document = s.doc_locks.lock(&owner);
            let mut doc = s.maps.docs.entry(owner.clone());
            // Read again under the owner's lock: a writer of the document may have moved it.
            #[cfg(not(vecindex_bug = "reconcile_stale_entry"))]
            let Some(entry) = s.maps.chunks.get(&id).map(|e| e.clone()) else {
                continue;
            };
            #[cfg(vecindex_bug = "reconcile_stale_entry")]
            let Some(entry) = early else { continue };
            if entry.doc_id != owner {
                continue; // changed hands meanwhile; that writer kept it consistent
            }
            let listed = match &doc {
                Entry::Occupied(o) => o.get().contains(&id),
                Entry::Vacant(_) => false,
            };
            if entry.loc.is_some_and(|loc| row_matches(&s.epochs.load(), loc, &id, &owner)) {
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
                s.maps.chunks.remove(&id);
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
        for doc_id in s.maps.document_ids() {
            let _document = s.doc_locks.lock(&doc_id);
            if let Entry::Occupied(mut doc) = s.maps.docs.entry(doc_id.clone()) {
                let before = doc.get().len();
                doc.get_mut().retain(|id| s.maps.chunks.get(id).is_some_and(|e| e.doc_id == doc_id));
                removed += before - doc.get().len();
                if doc.get().is_empty() {
                    doc.remove();
                }
            }
        }
        // 3. Live rows the chunk map lost: put them back.
        let epoch = s.epochs.load_full();
        let view = s.seq.view();
        for source in epoch.sources() {
            let mut lost: Vec<(usize, String, String)> = Vec::new();
            source.for_each_visible(&view, |row, r, _| {
                if !s.maps.chunks.contains_key(r.chunk_id()) {
                    lost.push((row, r.chunk_id().to_owned(), r.doc_id().to_owned()));
                }
            });
            for (row, chunk_id, doc_id) in lost {
                let _document = s.doc_locks.lock(&doc_id);
                let mut doc = s.maps.docs.entry(doc_id.clone()).or_default();
                let still_lost = !s.maps.chunks.contains_key(&chunk_id);
                if still_lost && source.tombstones().deleted_at(row).is_none() {
                    let loc = RowLoc { segment: source.id(), row: row as u32 };
                    s.maps.chunks.insert(chunk_id.clone(), ChunkEntry { doc_id: doc_id.clone(), loc: Some(loc) });
                    doc.push(chunk_id);
                }
                let empty = doc.is_empty();
                drop(doc);
                if empty {
                    s.maps.docs.remove_if(&doc_id, |_, list| list.is_empty());
                }
            }
        }
        removed
    }

    fn persist(&self, path: &Path) -> Result<PersistReport> {
        let s = &*self.shared;
        let _one_at_a_time = s.persist_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // A snapshot view: waits for the operations in flight below its seq, so the files hold
        // exactly the operations below it. (The injected bug takes a search's view instead,
        // which leaves them out while the manifest's seq claims them.)
        #[cfg(not(vecindex_bug = "persist_with_view"))]
        let (view, epoch) = s.view_and_epoch(Sequencer::snapshot, Epochs::load_full);
        #[cfg(vecindex_bug = "persist_with_view")]
        let (view, epoch) = s.view_and_epoch(Sequencer::view, Epochs::load_full);
        let parts = self.snapshot_parts(&epoch, &view);
        persist::writer::write(path, parts)
    }

    fn stats(&self) -> Stats {
        let s = &*self.shared;
        let epoch = s.epochs.load_full();
        let dim = s.config.dim;
        let segments = epoch
            .sources()
            .map(|source| {
                let (kind, bytes, build_time, mapped, indexed_vectors) = match source {
                    Source::Sealed(seg) => (
                        seg.kind(),
                        seg.bytes(),
                        seg.build_time(),
                        seg.data().rows().is_mapped(),
                        seg.indexed_vectors(),
                    ),
                    Source::Head(h) if std::ptr::eq(h, &*epoch.head) => {
                        ("head".into(), h.len() * dim * 4, None, false, None)
                    }
                    Source::Head(h) => ("frozen".to_owned(), h.len() * dim * 4, None, false, None),
                };
                let rows = source.len();
                let live_rows = rows.saturating_sub(source.tombstones().dead_count());
                SegmentStats { id: source.id().0, kind, rows, live_rows, bytes, build_time, mapped, indexed_vectors }
            })
            .collect();
        Stats {
            dim,
            metric: s.config.metric,
            chunks: self.len(),
            documents: s.maps.docs.len(),
            next_seq: s.seq.next_seq(),
            generation: epoch.generation,
            segments,
            vocabulary_terms: s.vocabulary.len(),
        }
    }

    fn len(&self) -> usize {
        self.shared.live.load(Ordering::Relaxed)
    }

    fn open_with_options(path: &Path, options: &OpenOptions) -> Result<(Self, OpenReport)> {
        Self::from_loaded(persist::reader::load(path, options)?)
    }
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;

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
        let maps = &index.shared.maps;
        // A stale entry pointing nowhere, a listed id nobody has, and a lost real entry.
        let nowhere = RowLoc { segment: SegmentId(999), row: 0 };
        maps.chunks.insert("ghost".into(), ChunkEntry { doc_id: "a".into(), loc: Some(nowhere) });
        maps.docs.get_mut("b").unwrap().push("phantom".into());
        maps.chunks.remove("a1");
        assert!(index.get_chunk("a1").is_none(), "lost from the map");

        // ghost, phantom, and a1's list entry (re-added from its live row at the end).
        assert_eq!(index.reconcile_mappings(), 3);
        assert!(index.get_chunk("ghost").is_none());
        assert_eq!(index.get_chunk("a1").unwrap().doc_id, "a");
        assert_eq!(index.get_chunk_ids_for_document("a"), ["a0", "a2", "a1"]);
        assert_eq!(index.get_chunk_ids_for_document("b"), ["b0", "b1", "b2"]);
        assert_eq!(index.reconcile_mappings(), 0, "a second pass finds nothing");
    }

    #[test]
    fn background_worker_seals_full_heads() {
        let index = VectorIndex::new(IndexConfig::new(2).head_capacity(4)).unwrap();
        for i in 0..40 {
            index.add_chunk(Chunk::new(format!("c{i}"), "d", v(i as f32))).unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let stats = index.stats();
            // The 10th head is full but stays current until an 11th append needs room; the
            // nine sealed heads may have been merged meanwhile.
            let sealed_rows: usize = stats.segments.iter().filter(|s| s.kind != "head").map(|s| s.rows).sum();
            if sealed_rows == 36 && stats.segments.iter().all(|s| s.kind != "frozen") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "not sealed: {:?}", stats.segments);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let hits = index.search(&v(39.0), &SearchOptions::k(40)).unwrap();
        assert_eq!(hits.len(), 40, "sealing neither lost nor duplicated rows");
        drop(index); // joins the worker
    }

    #[test]
    fn deletes_survive_sealing() {
        let index = VectorIndex::new(IndexConfig::new(2).head_capacity(4).background(false)).unwrap();
        for i in 0..8 {
            index.add_chunk(Chunk::new(format!("c{i}"), "d", v(i as f32))).unwrap();
        }
        assert!(index.remove_chunk("c1").unwrap()); // in a frozen head
        assert_eq!(index.maintain(), 0);
        assert!(index.remove_chunk("c2").unwrap()); // in the sealed segment
        let hits = index.search(&v(1.0), &SearchOptions::k(10)).unwrap();
        let ids: HashSet<String> = hits.into_iter().map(|h| h.chunk_id).collect();
        assert_eq!(ids.len(), 6);
        assert!(!ids.contains("c1") && !ids.contains("c2"));
        assert_eq!(index.stats().segments.iter().map(|s| s.live_rows).sum::<usize>(), 6);
    }

    #[test]
    fn two_documents_racing_for_one_chunk_id_leave_one_owner() {
        let index = Arc::new(VectorIndex::new(IndexConfig::new(2).head_capacity(8)).unwrap());
        let racers: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|doc| {
                let index = index.clone();
                std::thread::spawn(move || {
                    let mut owned = 0;
                    for i in 0..2000 {
                        match index.add_chunk(Chunk::new("shared", doc, v(i as f32))) {
                            Ok(()) => owned += 1,
                            Err(Error::ChunkInOtherDocument { .. }) => {}
                            Err(e) => panic!("{e}"),
                        }
                        if i % 3 == 0 {
                            index.remove_chunk("shared").unwrap();
                        }
                    }
                    owned
                })
            })
            .collect();
        let owned: usize = racers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(owned > 0);
        assert_eq!(index.reconcile_mappings(), 0);
        let hits = index.search(&v(0.0), &SearchOptions::k(10)).unwrap();
        assert!(hits.len() <= 1, "one live row at most: {hits:?}");
        assert_eq!(hits.len(), index.len());
        let owners: Vec<String> = index.get_document_ids();
        assert_eq!(owners.len(), hits.len());
        if let Some(hit) = hits.first() {
            assert_eq!(owners[0], hit.doc_id);
            assert_eq!(index.get_chunk("shared").unwrap().doc_id, hit.doc_id);
        }
    }
}
