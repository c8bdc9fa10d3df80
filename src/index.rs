//! [`VectorIndex`]: the facade. It validates input, then hands each call to its layer: the
//! write path (`write`), the read path (`read`), maintenance (`maintain`, with the background
//! worker), persistence (`persist`) and the id maps (`maps`).

use std::path::{Path, PathBuf};

use crate::api::{Index, OpenOptions};
use crate::chunk::{self, Chunk};
use crate::config::IndexConfig;
use crate::epoch::cover::{Cover, Part, PartRows};
use crate::epoch::{Epochs, GraphWritten};
use crate::error::{Error, Result};
use crate::maintain::worker::Worker;
use crate::maintain::{self, Maintenance};
use crate::metadata::Filter;
use crate::persist::reader::Loaded;
use crate::persist::writer::SnapshotParts;
use crate::persist::{self, OpenReport, PersistReport};
use crate::query::{SearchHit, SearchOptions};
use crate::segment::Segment;
use crate::seq::{SeqNo, Sequencer};
use crate::state::{self, State};
use crate::stats::{LastPersist, PersistStats, Stats};
use crate::storage::{Directory, LocalDirectory, PathKind};
use crate::sync::{Arc, Mutex, bug};
use crate::wal::lock::WriterLock;
use crate::wal::record::Record;
use crate::wal::{self, Durability, Log};

/// The lock-free concurrent vector index. Share it with `Arc`; every method takes `&self`.
///
/// ```
/// use vecindex::{Chunk, IndexConfig, SearchOptions, VectorIndex};
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
/// assert_eq!(reopened.chunk_ids("guide"), ["guide#0", "guide#1"]);
/// # Ok::<(), vecindex::Error>(())
/// ```
///
/// # Closing
///
/// Dropping the last handle stops the background threads and returns within about one
/// bounded step of their work (about 100 ms of FAISS work): a merge or FAISS
/// build in progress is abandoned, not finished, since nobody would use its result; what it had
/// published stays. Dropping never persists. An index bound to a directory
/// ([`create`](Self::create), a writable [`open`](Self::open)) loses nothing by it: its log holds
/// every write since the last snapshot, and the next open replays them (a persist first makes
/// that open faster and the log shorter). An index made with [`new`](Self::new) loses what is not
/// in a snapshot, so call [`persist`](Self::persist) first if you need it. (A segment's FAISS
/// index that was not built yet is built again after the next open.)
pub struct VectorIndex {
    state: Arc<State>,
    maintenance: Arc<Maintenance>,
    worker: Option<Worker>,
    config: IndexConfig,
    /// Identifies this index (its lineage) in the directories it persists into.
    index_uid: u128,
    /// Serializes persists (only persists: writers never touch it), and holds the graph file
    /// the last one into each directory wrote, newest last (a writer that also pushes to object
    /// storage alternates two).
    persist_lock: Mutex<Vec<GraphWritten>>,
    /// What [`Stats::persists`] reports; taken only to copy or update it, never across a persist.
    persists: Mutex<PersistStats>,
    /// The directory the index writes its log to, or was opened read-only from.
    binding: Binding,
}

/// How an index relates to a directory.
enum Binding {
    /// Made with [`VectorIndex::new`]: persists go wherever asked.
    Memory,
    /// Created in or opened writable from `dir`: holds its writer lock; writes go to its log.
    Writer { dir: PathBuf, _lock: WriterLock },
    /// Opened read-only from `dir`: writes are refused.
    ReadOnly { dir: PathBuf },
}

impl VectorIndex {
    /// An empty index.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for a zero dimension or capacity,
    /// or a segment index this build cannot make.
    pub fn new(config: IndexConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self::assemble(config, 1, persist::manifest::new_index_uid(), Vec::new()).start_worker())
    }

    /// An empty index bound to the directory `path` (created if needed; it must not hold an
    /// index): it holds the directory's writer lock until dropped, and appends every write to
    /// the write-ahead log there before the call returns, at `config.durability`, so that
    /// [`open`](Self::open) finds every acknowledged write after a crash. An empty snapshot is
    /// persisted first (the lineage, dimension and settings that replay needs).
    ///
    /// ```
    /// use vecindex::{Chunk, IndexConfig, VectorIndex};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let index = VectorIndex::create(dir.path(), IndexConfig::new(2))?;
    /// index.add_chunk(Chunk::new("c1", "doc", vec![1.0, 0.0]))?;
    /// drop(index); // no persist: the log has the write
    /// let reopened = VectorIndex::open(dir.path())?;
    /// assert_eq!(reopened.chunk_ids("doc"), ["c1"]);
    /// # Ok::<(), vecindex::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Exists`](crate::Error::Exists) if `path` holds an index,
    /// [`Error::Locked`](crate::Error::Locked) if another index writes there, invalid settings,
    /// or I/O errors.
    pub fn create(path: &Path, config: IndexConfig) -> Result<Self> {
        config.validate()?;
        let dir = LocalDirectory::new(path);
        dir.create()?;
        let lock = WriterLock::take(path)?;
        if persist::manifest::load(&dir)?.is_some() {
            return Err(crate::Error::Exists { path: path.to_owned() });
        }
        let mut index = Self::assemble(config, 1, persist::manifest::new_index_uid(), Vec::new());
        index.persist_in(&dir)?;
        let first_segment = wal::segment::list(&wal::segment::log_dir(path))?.last().map_or(1, |(n, _)| n + 1);
        index.bind_writer(path, lock, first_segment)?;
        Ok(index.start_worker())
    }

    /// Opens the index persisted in `path` with the settings it was persisted with. Damage is
    /// healed or quarantined and logged (see [`open_with_options`](Self::open_with_options)).
    ///
    /// # Errors
    /// As [`open_with_options`](Self::open_with_options).
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_options(path, &OpenOptions::new()).map(|(index, _)| index)
    }

    /// Opens the index persisted in `path` with `config`'s settings; `config.dim` and
    /// `config.metric` must match the snapshot's.
    ///
    /// # Errors
    /// As [`open_with_options`](Self::open_with_options).
    pub fn open_with(path: &Path, config: IndexConfig) -> Result<Self> {
        Self::open_with_options(path, &OpenOptions::new().config(config)).map(|(index, _)| index)
    }

    /// Opens the index directory `path` with `options`, and reports what it found: files healed,
    /// rows files quarantined and the documents they held, a fallback to the previous manifest.
    ///
    /// # Errors
    /// See [`Index::open_with_options`].
    ///
    /// A writable open (the default) takes the directory's writer lock for the life of the
    /// index, replays the write-ahead log on top of the snapshot (what it applied, and any
    /// damage, is in `OpenReport::log`), and logs every later write at the configured
    /// durability. After damage in the log (not strict), the replayed state is persisted at
    /// once and the damaged log files moved into `quarantine/`.
    ///
    /// # Errors
    /// See [`Index::open_with_options`]; [`Error::Locked`](crate::Error::Locked) if another
    /// index writes there (open read-only instead); with `strict`, damage in the log is
    /// [`Error::Corrupt`](crate::Error::Corrupt).
    pub fn open_with_options(path: &Path, options: &OpenOptions) -> Result<(Self, OpenReport)> {
        let lock = match options.read_only {
            false if path.is_dir() => Some(WriterLock::take(path)?),
            _ => None,
        };
        let (mut index, mut report) = Self::load_from(&LocalDirectory::new(path), options)?;
        index.persist_stats().snapshot_seq = Some(report.seq);
        let replay = wal::replay::read(path, index.index_uid, index.config.dim, report.seq)?;
        if let (true, Some(damage)) = (options.strict, &replay.report.damage) {
            return Err(crate::Error::corrupt(&damage.file, format!("at byte {}: {}", damage.offset, damage.reason)));
        }
        index.config.durability =
            options.durability.or(options.config.as_ref().map(|c| c.durability)).unwrap_or_default();
        let last_segment = replay.last_number;
        let damaged = index.replay(replay, &mut report);
        match lock {
            Some(lock) => {
                index.bind_writer(path, lock, last_segment + 1)?;
                if !damaged.is_empty() {
                    index.persist_own(path, &damaged)?;
                }
            }
            None => index.binding = Binding::ReadOnly { dir: path.to_owned() },
        }
        report.log();
        Ok((index.start_worker(), report))
    }

    /// [`open_with_options`](Self::open_with_options) from any storage, without a log.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn open_in(dir: &dyn Directory, options: &OpenOptions) -> Result<(Self, OpenReport)> {
        let (index, report) = Self::load_from(dir, options)?;
        report.log();
        Ok((index.start_worker(), report))
    }

    /// The index a snapshot describes, its worker not started.
    fn load_from(dir: &dyn Directory, options: &OpenOptions) -> Result<(Self, OpenReport)> {
        let loaded = persist::reader::load(dir, options.read_options(), |stored, dim, metric| {
            let config = IndexConfig::resolve(options.config.as_ref(), stored, dim, metric, dir.path())?;
            let segment_index = config.segment_index.clone();
            Ok((config, segment_index))
        })?;
        Ok(Self::from_loaded(loaded))
    }

    /// Applies the log's records with their own seqs (L3 in `wal`), before any other write and
    /// before the worker starts. Returns the log files holding damage or following it, which a
    /// writable open moves aside once the replayed state is persisted.
    fn replay(&self, replay: wal::replay::Replay, report: &mut OpenReport) -> Vec<PathBuf> {
        let state = &*self.state;
        for (seq, record) in replay.records {
            state.seq.skip_to(seq);
            let applied = match record {
                Record::Write { replace, docs } => state.write_documents(docs, replace).map(drop),
                Record::RemoveDocument(doc_id) => state.remove_document(&doc_id).map(drop),
                Record::RemoveChunk(chunk_id) => state.remove_chunk(&chunk_id).map(drop),
            };
            // A logged operation was applied once; it applies again on the same state.
            if let Err(e) = applied {
                tracing::error!(seq, error = %e, "a logged operation did not apply on replay");
            }
        }
        report.chunks = state.len();
        let damaged = match &replay.report.damage {
            Some(damage) => replay.files.iter().skip_while(|f| **f != damage.file).cloned().collect(),
            None => Vec::new(),
        };
        report.log = replay.report;
        damaged
    }

    /// Starts the log (unless durability is `None`) and holds `lock` for the index's life.
    fn bind_writer(&mut self, path: &Path, lock: WriterLock, segment: u64) -> Result<()> {
        if self.config.durability != Durability::None {
            let log = Log::start(path, self.config.dim, self.index_uid, segment, self.config.durability)?;
            let _ = self.state.log.set(Arc::new(log));
        }
        self.binding = Binding::Writer { dir: path.to_owned(), _lock: lock };
        Ok(())
    }

    fn assemble(config: IndexConfig, first_seq: SeqNo, index_uid: u128, sealed: Vec<Arc<Segment>>) -> Self {
        let state = Arc::new(State::new(state::Parts {
            dim: config.dim,
            metric: config.metric,
            first_seq,
            writer_slots: config.writer_slots,
            head_capacity: config.head_capacity,
            vocabulary_limit: config.vocabulary_limit,
            seed: index_uid as u64,
            sealed,
        }));
        let settings = maintain::Settings {
            head_capacity: config.head_capacity,
            segment_index: config.segment_index.clone(),
            policy: config.merge_policy.clone(),
        };
        let maintenance = Arc::new(Maintenance::new(state.clone(), settings));
        Self {
            state,
            maintenance,
            worker: None,
            config,
            index_uid,
            persist_lock: Mutex::new(Vec::new()),
            persists: Mutex::new(PersistStats::default()),
            binding: Binding::Memory,
        }
    }

    /// Starts the background worker (if configured). Called once the index is fully built:
    /// a merge must never run before the id maps describe the rows it moves.
    fn start_worker(mut self) -> Self {
        if self.config.background {
            self.worker = Worker::start(self.maintenance.clone());
            if let Some(worker) = &self.worker {
                worker.wake(); // segments loaded from disk may want indexing or merging
            }
        }
        self
    }

    /// The index a snapshot read back describes (its worker not started).
    fn from_loaded(loaded: Loaded<IndexConfig>) -> (Self, OpenReport) {
        let Loaded { index_uid, seq, config, segments, graph, mut report } = loaded;
        let mut sealed: Vec<Arc<Segment>> = segments.into_iter().map(|s| Arc::new(s.into_segment())).collect();
        sealed.sort_by_key(|s| s.id());
        let ef_search = config.segment_index.ef_search;
        let index = Self::assemble(config, seq.max(1), index_uid, sealed);
        let state = &*index.state;
        if let Some(loaded) = graph {
            // The shared graph over the segments it was written with (the reader checked that
            // each is in the snapshot, with its rows).
            let epoch = state.epochs.load_full();
            let parts: Option<Vec<Part>> = loaded
                .parts
                .iter()
                .map(|&(id, first)| {
                    let segment = epoch.sealed.iter().find(|s| s.id().0 == id)?.clone();
                    Some(Part { first, rows: PartRows::Sealed(segment) })
                })
                .collect();
            if let Some(parts) = parts {
                let cover = Cover::new(Arc::new(loaded.graph), parts, ef_search, loaded.refits);
                state.epochs.replace_cover(None, Some(Arc::new(cover)));
            }
        }
        let rebuilt = state.maps.rebuild(&state.epochs.load_full(), |text| state.vocabulary.register(text));
        state.set_len(rebuilt.chunks);
        report.chunks = rebuilt.chunks;
        report.duplicate_rows = rebuilt.duplicates;
        (index, report)
    }

    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// Adds one chunk. A chunk id that already exists in the same document is replaced.
    ///
    /// # Errors
    /// Bad vectors or ids, or a chunk id owned by another document; for an index bound to a
    /// directory, an [`Error::Io`](crate::Error::Io) appending to its log (a full disk:
    /// [`is_storage_full`](crate::Error::is_storage_full)), or
    /// [`Error::ReadOnly`](crate::Error::ReadOnly). The index is then unchanged.
    pub fn add_chunk(&self, chunk: Chunk) -> Result<()> {
        self.add_chunks(vec![chunk])
    }

    /// Adds chunks of any documents as one atomic step (see [`Index::add_chunks`]).
    ///
    /// # Errors
    /// As [`add_chunk`](Self::add_chunk), for any of the chunks; the index is then unchanged.
    pub fn add_chunks(&self, mut chunks: Vec<Chunk>) -> Result<()> {
        self.writable()?;
        chunk::prepare_chunks(self.config.metric, self.config.dim, &mut chunks)?;
        // An injected bug for the loom models: each document applied as a write of its own
        // (one seq and one conflict check per document), as add_chunks once did.
        if bug!("add_chunks_per_document") {
            for group in chunk::group_by_doc(chunks) {
                self.written(self.state.write_documents(vec![group], false))?;
            }
            return Ok(());
        }
        self.written(self.state.write_documents(chunk::group_by_doc(chunks), false))
    }

    /// Replaces all chunks of `doc_id` with `chunks` in one atomic step (their `doc_id` fields
    /// are set to `doc_id`). A snapshot or search sees the old document or the new one, never a mix.
    ///
    /// # Errors
    /// As [`add_chunk`](Self::add_chunk), or an empty `doc_id`; the index is then unchanged.
    pub fn add_document(&self, doc_id: &str, mut chunks: Vec<Chunk>) -> Result<()> {
        self.writable()?;
        chunk::validate_doc_id(doc_id)?;
        chunks.iter_mut().for_each(|c| c.doc_id = doc_id.to_owned());
        chunk::prepare_chunks(self.config.metric, self.config.dim, &mut chunks)?;
        self.written(self.state.write_documents(vec![(doc_id.to_owned(), chunks)], true))
    }

    /// Refuses writes to an index opened read-only.
    fn writable(&self) -> Result<()> {
        match &self.binding {
            Binding::ReadOnly { dir } => Err(crate::Error::ReadOnly { path: dir.clone() }),
            _ => Ok(()),
        }
    }

    /// Wakes the sealer after a write that filled a head.
    fn written(&self, froze: Result<bool>) -> Result<()> {
        if froze? && let Some(worker) = &self.worker {
            worker.wake();
        }
        Ok(())
    }

    /// Removes every chunk of `doc_id` in one atomic step; returns how many there were.
    ///
    /// # Errors
    /// An empty `doc_id`, or as [`add_chunk`](Self::add_chunk) for the log; nothing is removed then.
    pub fn remove_document(&self, doc_id: &str) -> Result<usize> {
        self.writable()?;
        chunk::validate_doc_id(doc_id)?;
        self.state.remove_document(doc_id)
    }

    /// Removes one chunk; returns whether it existed.
    ///
    /// # Errors
    /// An empty `chunk_id`, or as [`add_chunk`](Self::add_chunk) for the log; nothing is removed then.
    pub fn remove_chunk(&self, chunk_id: &str) -> Result<bool> {
        self.writable()?;
        chunk::validate_chunk_id(chunk_id)?;
        self.state.remove_chunk(chunk_id)
    }

    /// Removes every live chunk `filter` accepts (as of when the call begins); returns how many
    /// it removed. Each is removed as by [`remove_chunk`](Self::remove_chunk), in turn: a search
    /// meanwhile may see some gone and others not, and chunks added meanwhile are left alone.
    ///
    /// ```
    /// use vecindex::{Chunk, Filter, IndexConfig, VectorIndex};
    ///
    /// let index = VectorIndex::new(IndexConfig::new(2))?;
    /// index.add_chunks(vec![
    ///     Chunk::new("a", "d", vec![1.0, 0.0]).with_meta("draft", true),
    ///     Chunk::new("b", "d", vec![0.0, 1.0]).with_meta("draft", false),
    /// ])?;
    /// assert_eq!(index.remove_where(&Filter::eq("draft", true))?, 1);
    /// assert!(index.chunk("a").is_none() && index.chunk("b").is_some());
    /// # Ok::<(), vecindex::Error>(())
    /// ```
    ///
    /// # Errors
    /// An invalid filter, before anything is removed; a failed write of the log, after the
    /// chunks removed before it.
    pub fn remove_where(&self, filter: &Filter) -> Result<usize> {
        filter.check()?;
        self.writable()?;
        let mut removed = 0;
        for chunk_id in self.state.chunk_ids_where(filter) {
            removed += usize::from(self.remove_chunk(&chunk_id)?);
        }
        Ok(removed)
    }

    /// The `options.k` nearest live chunks that pass the filters, best first, from one
    /// consistent point-in-time view; never waits for writers.
    ///
    /// # Errors
    /// A query of the wrong dimension or with non-finite values, or `k` = 0.
    pub fn search(&self, query: &[f32], options: &SearchOptions) -> Result<Vec<SearchHit>> {
        options.validate()?;
        let mut query = query.to_vec();
        self.config.metric.prepare(self.config.dim, &mut query)?;
        Ok(self.state.search(&query, options))
    }

    /// [`VectorIndex::search`] of many queries, `queries` holding them one after another
    /// (`n x dim` values), all from one point-in-time view: the hits of query `i` are item `i`.
    ///
    /// ```
    /// use vecindex::{Chunk, IndexConfig, SearchOptions, VectorIndex};
    ///
    /// let index = VectorIndex::new(IndexConfig::new(2))?;
    /// index.add_chunks(vec![Chunk::new("a", "d", vec![1.0, 0.0]), Chunk::new("b", "d", vec![0.0, 1.0])])?;
    /// let hits = index.search_batch(&[1.0, 0.1, 0.1, 1.0], &SearchOptions::k(1))?;
    /// assert_eq!((hits[0][0].chunk_id.as_str(), hits[1][0].chunk_id.as_str()), ("a", "b"));
    /// # Ok::<(), vecindex::Error>(())
    /// ```
    ///
    /// # Errors
    /// As `search`, for the first bad query; a length that is not a multiple of the dimension
    /// is a dimension mismatch. Nothing is searched then.
    pub fn search_batch(&self, queries: &[f32], options: &SearchOptions) -> Result<Vec<Vec<SearchHit>>> {
        options.validate()?;
        let queries = prepare_queries(self.config.metric, self.config.dim, queries)?;
        let dim = self.config.dim.max(1);
        Ok(self.state.search_batch(queries.chunks_exact(dim), options))
    }

    /// A copy of a live chunk (its vector as stored: normalized for cosine).
    pub fn chunk(&self, chunk_id: &str) -> Option<Chunk> {
        self.state.chunk(chunk_id)
    }

    /// The ids of all documents, sorted (an owned copy).
    pub fn document_ids(&self) -> Vec<String> {
        self.state.maps.document_ids()
    }

    /// The chunk ids of a document in the order their rows were added (an owned copy).
    pub fn chunk_ids(&self, doc_id: &str) -> Vec<String> {
        self.state.maps.chunk_ids(doc_id)
    }

    /// Re-derives the id maps from the stored rows, repairs them, and returns how many stale
    /// entries it removed. Writers go on meanwhile.
    pub fn reconcile_mappings(&self) -> usize {
        self.state.maps.reconcile(&self.state.epochs, &self.state.seq)
    }

    /// Writes a snapshot of every operation that completed before this call into the index
    /// directory `path`, while writers go on (see [`Index::persist`]).
    ///
    /// # Errors
    /// See [`Index::persist`].
    ///
    /// Into the directory the index writes its log to, the persist also retires the log
    /// segments the snapshot covers. Into any other directory it takes that directory's writer
    /// lock while it runs, so it never overwrites an index another one is writing.
    pub fn persist(&self, path: &Path) -> Result<PersistReport> {
        match &self.binding {
            Binding::Writer { dir, .. } if same_dir(dir, path) => self.persist_own(dir, &[]),
            Binding::ReadOnly { dir } if same_dir(dir, path) => Err(crate::Error::ReadOnly { path: dir.clone() }),
            _ => {
                let dir = LocalDirectory::new(path);
                // A path that is something else than a directory gets persist's own error.
                if dir.kind()? == PathKind::Missing {
                    dir.create()?;
                }
                let _no_writer_meanwhile = if path.is_dir() { WriterLock::share_if_present(path)? } else { None };
                self.persist_in(&dir)
            }
        }
    }

    /// A persist into the index's own directory: a new log segment first, then the snapshot,
    /// then the older segments go (L2 in `wal`); `quarantine` (damaged log files replay left
    /// behind) are moved aside instead.
    fn persist_own(&self, path: &Path, quarantine: &[PathBuf]) -> Result<PersistReport> {
        let log_dir = wal::segment::log_dir(path);
        let rotate = || match self.state.log.get() {
            Some(log) => log.rotate(),
            // No log: nothing is appended, so every segment there now is older than the view.
            None => Ok(wal::segment::list(&log_dir)?.into_iter().map(|(_, p)| p).collect()),
        };
        let dir = LocalDirectory::new(path);
        let (report, older) = if bug!("wal_rotate_after_view") {
            // An injected bug for the loom models: the new segment started after the view.
            let (report, ()) = self.persist_with(&dir, || Ok(()))?;
            (report, rotate()?)
        } else {
            self.persist_with(&dir, rotate)?
        };
        for file in quarantine {
            wal::segment::quarantine(path, file)?;
        }
        let retired: Vec<PathBuf> = older.into_iter().filter(|f| !quarantine.contains(f)).collect();
        if let Err(e) = wal::segment::remove(&retired) {
            tracing::warn!(error = %e, "cannot remove log segments the snapshot covers; the next persist will");
        }
        Ok(report)
    }

    /// [`persist`](Self::persist) into object storage (see [`ObjectStorage`](crate::ObjectStorage)):
    /// the files the storage lacks are uploaded, then the manifest of the next generation is
    /// put only if no other writer has taken it.
    ///
    /// # Errors
    /// [`Error::Conflict`](crate::Error::Conflict) if another writer committed first (since
    /// this index last opened or persisted there): nothing of this persist is committed and
    /// the index is unchanged. [`Error::ForeignIndex`](crate::Error::ForeignIndex) if the
    /// prefix holds another index; I/O errors naming the object.
    #[cfg(feature = "object-store")]
    pub fn persist_to(&self, storage: &crate::ObjectStorage) -> Result<PersistReport> {
        self.persist_in(storage)
    }

    /// Opens the index persisted in object storage, read-only: files are fetched into the
    /// storage's cache directory once, checked and mapped. It can be searched, and written to
    /// in memory and persisted with [`persist_to`](Self::persist_to) (a write-ahead log is
    /// local: there is none here).
    ///
    /// # Errors
    /// As [`open_with_options`](Self::open_with_options);
    /// [`Error::NoSnapshot`](crate::Error::NoSnapshot) if nothing was ever committed there.
    #[cfg(feature = "object-store")]
    pub fn open_from(storage: &crate::ObjectStorage, options: &OpenOptions) -> Result<(Self, OpenReport)> {
        // Never quarantine or heal remote files from here: other readers share them.
        let options = options.clone().read_only(true);
        let (index, report) = Self::load_from(storage, &options)?;
        report.log();
        Ok((index.start_worker(), report))
    }

    /// [`persist`](Self::persist) into any storage.
    pub(crate) fn persist_in(&self, dir: &dyn Directory) -> Result<PersistReport> {
        self.persist_with(dir, || Ok(())).map(|(report, ())| report)
    }

    /// A persist that runs `before_view` under the persist lock, right before its view.
    fn persist_with<T>(
        &self,
        dir: &dyn Directory,
        before_view: impl FnOnce() -> Result<T>,
    ) -> Result<(PersistReport, T)> {
        let dir_path = dir.path().to_owned();
        let result = self.persist_unrecorded(dir, before_view);
        let mut stats = self.persist_stats();
        match &result {
            Ok((report, _)) => {
                // A writer's snapshot is the one in its own directory (its log is trimmed only
                // by those); a copy elsewhere, a push to object storage say, leaves its log's
                // lag as it was.
                let elsewhere = matches!(&self.binding, Binding::Writer { dir, .. } if !same_dir(dir, &dir_path));
                if !elsewhere {
                    stats.snapshot_seq = Some(report.seq);
                }
                stats.last = Some(LastPersist {
                    at: std::time::SystemTime::now(),
                    duration: report.duration,
                    generation: report.generation,
                    bytes_total: report.bytes_total,
                });
                stats.succeeded += 1;
            }
            Err(_) => stats.failed += 1,
        }
        drop(stats);
        result
    }

    fn persist_stats(&self) -> crate::sync::MutexGuard<'_, PersistStats> {
        self.persists.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn persist_unrecorded<T>(
        &self,
        dir: &dyn Directory,
        before_view: impl FnOnce() -> Result<T>,
    ) -> Result<(PersistReport, T)> {
        let mut one_at_a_time = self.persist_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = before_view()?;
        let state = &*self.state;
        // A snapshot view: waits for the operations in flight below its seq, so the files hold
        // exactly the operations below it. (The injected bug takes a search's view instead,
        // which leaves them out while the manifest's seq claims them.)
        let take_view = |seq: &Sequencer| if bug!("persist_with_view") { seq.view() } else { seq.snapshot() };
        let (view, epoch) = state.epochs.view_and_epoch(&state.seq, take_view, Epochs::load_full);
        let parts = SnapshotParts {
            index_uid: self.index_uid,
            seq: view.upper(),
            dim: self.config.dim,
            metric: self.config.metric,
            config: self.config.to_stored(),
            rows: epoch.snapshot(&view, self.config.dim),
            graph: None,
        };
        let last_here = one_at_a_time.iter().find(|written| written.dir == dir.path());
        let parts = SnapshotParts { graph: epoch.snapshot_graph(&parts.rows, dir.path(), last_here), ..parts };
        let (report, graph) = persist::writer::write(dir, parts)?;
        one_at_a_time.retain(|written| written.dir != dir.path());
        one_at_a_time.extend(graph.zip(epoch.cover.as_ref()).map(|(stored, cover)| GraphWritten {
            graph: std::ptr::from_ref::<crate::segment::graph::Graph>(&cover.graph) as usize,
            dir: dir.path().to_owned(),
            stored,
        }));
        // A few directories are remembered: the index's own and a push target, say.
        const REMEMBERED_DIRS: usize = 4;
        let forget = one_at_a_time.len().saturating_sub(REMEMBERED_DIRS);
        one_at_a_time.drain(..forget);
        Ok((report, before))
    }

    /// What the index holds now: counts, and every head and segment.
    pub fn stats(&self) -> Stats {
        Stats { persists: self.persist_stats().clone(), ..self.state.stats() }
    }

    /// Live chunks.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs the background step inline: seals every settled frozen head, then merges and indexes
    /// what the merge policy picks. Returns how many frozen heads remain (a head whose last
    /// writer is still publishing is sealed on a later call).
    pub fn maintain(&self) -> usize {
        self.maintenance.step()
    }

    /// Merges the sealed segments into as few as the merge policy allows, drops deleted rows,
    /// and builds the configured index over the result, on the calling thread (the background
    /// merge policy instead merges a tier at a time as the index grows). Call it after a bulk
    /// load of an index that will mostly be searched: each query then walks one graph instead
    /// of one per segment. The current head is closed first, so its rows are merged too (rows
    /// added meanwhile go to a fresh head). Writers and searches go on meanwhile; returns the
    /// number of sealed segments left.
    ///
    /// ```
    /// use vecindex::{Chunk, IndexConfig, VectorIndex};
    ///
    /// let index = VectorIndex::new(IndexConfig::new(2).head_capacity(4).background(false))?;
    /// for i in 0..20 {
    ///     index.add_chunk(Chunk::new(format!("c{i}"), "doc", vec![1.0, i as f32]))?;
    /// }
    /// assert_eq!(index.force_merge(), 1);
    /// assert_eq!(index.len(), 20);
    /// # Ok::<(), vecindex::Error>(())
    /// ```
    pub fn force_merge(&self) -> usize {
        self.maintenance.force_merge()
    }

    /// The most frequent terms of indexed text.
    pub fn top_terms(&self, n: usize) -> Vec<(String, u64)> {
        self.state.vocabulary.top(n)
    }

    #[cfg(all(test, not(vecindex_loom)))]
    pub(crate) fn state(&self) -> &State {
        &self.state
    }
}

/// Whether two paths name one directory (a path that does not exist names none).
fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// Each method of the trait is the inherent method of the same name.
macro_rules! inherent {
    ($(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        $(fn $name(&self $(, $arg: $ty)*) -> $ret {
            VectorIndex::$name(self $(, $arg)*)
        })*
    };
}

impl Index for VectorIndex {
    inherent! {
        fn add_chunk(&self, chunk: Chunk) -> Result<()>;
        fn add_chunks(&self, chunks: Vec<Chunk>) -> Result<()>;
        fn add_document(&self, doc_id: &str, chunks: Vec<Chunk>) -> Result<()>;
        fn remove_document(&self, doc_id: &str) -> Result<usize>;
        fn remove_chunk(&self, chunk_id: &str) -> Result<bool>;
        fn search(&self, query: &[f32], options: &SearchOptions) -> Result<Vec<SearchHit>>;
        fn search_batch(&self, queries: &[f32], options: &SearchOptions) -> Result<Vec<Vec<SearchHit>>>;
        fn remove_where(&self, filter: &Filter) -> Result<usize>;
        fn chunk(&self, chunk_id: &str) -> Option<Chunk>;
        fn document_ids(&self) -> Vec<String>;
        fn chunk_ids(&self, doc_id: &str) -> Vec<String>;
        fn reconcile_mappings(&self) -> usize;
        fn persist(&self, path: &Path) -> Result<PersistReport>;
        fn stats(&self) -> Stats;
        fn len(&self) -> usize;
    }

    fn open_with_options(path: &Path, options: &OpenOptions) -> Result<(Self, OpenReport)> {
        VectorIndex::open_with_options(path, options)
    }
}

/// `queries` (`n x dim` values) checked and prepared for `metric`, one copy of them all.
pub(crate) fn prepare_queries(metric: crate::Metric, dim: usize, queries: &[f32]) -> Result<Vec<f32>> {
    if dim == 0 || !queries.len().is_multiple_of(dim) {
        return Err(Error::DimensionMismatch { expected: dim, got: queries.len() % dim.max(1) });
    }
    let mut prepared = queries.to_vec();
    for query in prepared.chunks_exact_mut(dim) {
        metric.prepare(dim, query)?;
    }
    Ok(prepared)
}
