//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in vecindex. Bad input never panics: it returns one of these and
/// leaves the index unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A vector's length is not the index's dimension.
    #[error("vector has dimension {got}, the index has dimension {expected}")]
    DimensionMismatch { expected: usize, got: usize },
    /// A vector holds NaN or an infinity.
    #[error("vector component {position} is {value}, not a finite number")]
    NonFiniteValue { position: usize, value: f32 },
    /// A zero vector cannot be normalized for the cosine metric.
    #[error("vector is all zeros, which has no direction for the cosine metric")]
    ZeroVector,
    /// Under L2 or inner product, a vector so long that its scores would overflow single
    /// precision: its squared length exceeds `limit` (`f32::MAX / 4`, about 8.5e37).
    #[error(
        "vector is too long to score: its squared length is {squared_norm:e}, at most {limit:e} is allowed under L2 and inner product (scale it down, or use cosine)"
    )]
    VectorTooLong { squared_norm: f64, limit: f64 },
    /// An id (chunk or document) is empty.
    #[error("{what} must not be empty")]
    EmptyId { what: &'static str },
    /// A text query with nothing to search for: empty, blank, or only common function words.
    #[error("query {query:?} has no word to search for (it is empty, blank, or only words such as \"the\" or \"how\")")]
    EmptyQuery { query: String },
    /// `k` must be at least 1.
    #[error("k must be at least 1")]
    ZeroK,
    /// One call names the same chunk id twice.
    #[error("chunk id {chunk_id:?} appears more than once in one call")]
    DuplicateChunkId { chunk_id: String },
    /// A chunk id already belongs to another document; chunk ids are unique across documents.
    #[error("chunk id {chunk_id:?} belongs to document {owner:?}, not {requested:?}")]
    ChunkInOtherDocument { chunk_id: String, owner: String, requested: String },
    /// A dimension of zero, or another unusable configuration.
    #[error("invalid configuration: {reason}")]
    InvalidConfig { reason: String },
    /// FAISS rejected a factory string or failed to build or search an index.
    #[error("FAISS: {reason}")]
    Faiss { reason: String },
    /// An embedder could not load its model or embed.
    #[error("embedder {name}: {reason}")]
    Embedder { name: String, reason: String },
    /// An I/O operation on `path` failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is not a valid vecindex file or fails its checksum.
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// A path that does not hold a vecindex index directory: a file, a directory with other
    /// files in it, or one without a manifest (to open).
    #[error("{path} is not a vecindex index directory: {reason}")]
    NotAnIndex { path: PathBuf, reason: String },
    /// The directory holds no committed snapshot, only what an interrupted first persist left
    /// (its lock file, temporary files, segment files no manifest names), or nothing at all.
    /// Persisting into it is fine; there is nothing to open.
    #[error(
        "{path} holds no snapshot yet: no persist into it ever committed (only a lock or temporary files, if anything)"
    )]
    NoSnapshot { path: PathBuf },
    /// Another index holds the directory for writing (in this process or another): one writer
    /// per directory. Open it read-only, or wait for the holder to close.
    #[error("{path} is held for writing by {holder}")]
    Locked { path: PathBuf, holder: String },
    /// [`VectorIndex::create`](crate::VectorIndex::create) into a directory that holds an index.
    #[error("{path} already holds an index: open it, or remove it first")]
    Exists { path: PathBuf },
    /// A write to an index opened read-only.
    #[error("the index was opened read-only from {path}")]
    ReadOnly { path: PathBuf },
    /// The directory holds another index (a different lineage): persisting would overwrite it.
    #[error("{path} holds another index; persist into an empty or new directory, or remove it first")]
    ForeignIndex { path: PathBuf },
    /// This CPU lacks an instruction set that the FAISS build assumed (it was compiled for
    /// AVX2 by default); running it would crash. Rebuild with the portable flags (see the README).
    #[error("this CPU lacks {missing}, which this build of FAISS assumes ({assumed}); rebuild it portable")]
    UnsupportedCpu { assumed: String, missing: String },
    /// A search filter that cannot be evaluated (see [`FilterError`](crate::FilterError)).
    #[error("invalid filter: {0}")]
    InvalidFilter(#[from] crate::metadata::FilterError),
    /// A metadata value a chunk cannot hold (a float that is NaN).
    #[error("chunk {chunk_id:?}: metadata {key:?} {reason}")]
    InvalidMetadata { chunk_id: String, key: String, reason: String },
    /// Another writer committed a snapshot into this storage first: `generation` is taken, or
    /// the storage holds a newer generation than the one this index last opened or persisted
    /// there. Nothing of this persist was committed and the index is unchanged; open the storage
    /// again to see the other writer's snapshot, or persist somewhere else.
    #[error(
        "{path}: another writer committed generation {generation} first; this persist committed nothing (open it again to continue from there)"
    )]
    Conflict { path: PathBuf, generation: u64 },
    /// Object storage that cannot be used as given: a URL it does not know, missing or wrong
    /// credentials, a bucket that does not exist. `reason` says what to fix.
    #[error("storage {url}: {reason}")]
    Storage { url: String, reason: String },
    /// A snapshot's dimension or metric differs from what the caller asked for.
    #[error("snapshot at {path} has {found}, expected {expected}")]
    Incompatible { path: PathBuf, expected: String, found: String },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether this is an I/O error because the disk (or a quota) is full.
    pub fn is_storage_full(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull || source.raw_os_error() == Some(28))
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt { path: path.into(), reason: reason.into() }
    }
}
