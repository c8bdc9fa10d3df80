//! What users program against besides [`VectorIndex`](crate::VectorIndex): the [`Index`] trait
//! both designs implement, and how to open an index ([`OpenOptions`]).

use std::path::Path;

use crate::chunk::Chunk;
use crate::config::IndexConfig;
use crate::error::Result;
use crate::persist::reader::ReadOptions;
use crate::persist::{OpenReport, PersistReport};
use crate::query::{SearchHit, SearchOptions};
use crate::stats::Stats;

/// The operations every index offers, for code generic over [`VectorIndex`](crate::VectorIndex)
/// and the baseline [`MutexIndex`](crate::MutexIndex): tests and benchmarks run the same code on
/// both. `VectorIndex` has every one of these as an inherent method too, so its users need no
/// import of this trait.
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
    /// Removes every live chunk `filter` accepts, each as by `remove_chunk`; returns how many.
    fn remove_where(&self, filter: &crate::metadata::Filter) -> Result<usize>;
    /// The `options.k` nearest live chunks that pass the filters, best first, from one
    /// consistent point-in-time view.
    fn search(&self, query: &[f32], options: &SearchOptions) -> Result<Vec<SearchHit>>;
    /// [`search`](Index::search) of each query of `queries` (`n x dim` values, one after
    /// another), all from one point-in-time view.
    fn search_batch(&self, queries: &[f32], options: &SearchOptions) -> Result<Vec<Vec<SearchHit>>>;
    /// A copy of a live chunk (its vector as stored: normalized for cosine).
    fn chunk(&self, chunk_id: &str) -> Option<Chunk>;
    /// The ids of all documents, sorted (an owned copy).
    fn document_ids(&self) -> Vec<String>;
    /// The chunk ids of a document in the order their rows were added (an owned copy).
    fn chunk_ids(&self, doc_id: &str) -> Vec<String>;
    /// Re-derives the id maps from the stored rows, repairs them, and returns how many stale
    /// entries it removed.
    fn reconcile_mappings(&self) -> usize;
    /// Writes a snapshot of every operation that completed before this call into the index
    /// directory `path`: the files it lacks, then a new manifest, atomically. A crash at any
    /// point leaves the previous snapshot or this one.
    ///
    /// # Errors
    /// I/O errors (a full disk: [`Error::is_storage_full`](crate::Error::is_storage_full)),
    /// after which the directory still holds the previous snapshot (or, if only the final
    /// directory fsync failed, this one); [`Error::NotAnIndex`](crate::Error::NotAnIndex) for a
    /// path that is a file or a directory of other files;
    /// [`Error::ForeignIndex`](crate::Error::ForeignIndex) for a directory that holds another
    /// index.
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
    /// [`Error::Io`](crate::Error::Io) for a missing directory,
    /// [`Error::NoSnapshot`](crate::Error::NoSnapshot) for one no persist committed to,
    /// [`Error::NotAnIndex`](crate::Error::NotAnIndex), [`Error::Corrupt`](crate::Error::Corrupt)
    /// when no manifest is usable (or, in strict mode, when anything would be lost),
    /// [`Error::Incompatible`](crate::Error::Incompatible) when `options.config` has another
    /// dimension or metric.
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

/// How to open an index directory.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct OpenOptions {
    /// Settings to open with; their dimension and metric must be the snapshot's. Default: the
    /// settings the snapshot was persisted with.
    pub config: Option<IndexConfig>,
    /// Refuse to open (with [`Error::Corrupt`](crate::Error::Corrupt)) rather than lose data:
    /// a damaged rows file or a fallback to `MANIFEST.prev` is an error, and nothing is moved
    /// into quarantine. Damage that loses nothing (a FAISS or ids file, rebuilt from the rows)
    /// is healed either way.
    pub strict: bool,
    /// Change nothing in the directory: damaged files are reported (and worked around in
    /// memory) but not moved into quarantine, no `LOCK` file is created, and the writer lock
    /// is not taken, so this works while another index writes there. The write-ahead log is
    /// replayed, not changed; writes to the index return
    /// [`Error::ReadOnly`](crate::Error::ReadOnly). For inspection (`vecindex verify`,
    /// `vecindex query`), read replicas and read-only media.
    pub read_only: bool,
    /// Overrides the configuration's [`durability`](IndexConfig::durability) for this open.
    pub durability: Option<crate::Durability>,
}

impl OpenOptions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn config(mut self, config: IndexConfig) -> Self {
        self.config = Some(config);
        self
    }

    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    pub fn durability(mut self, durability: crate::Durability) -> Self {
        self.durability = Some(durability);
        self
    }
}

impl OpenOptions {
    pub(crate) fn read_options(&self) -> ReadOptions {
        ReadOptions { strict: self.strict, read_only: self.read_only }
    }
}
