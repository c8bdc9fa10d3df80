//! vecindex: a concurrent vector index for embedding servers and RAG systems, in which writers
//! never wait for persist or search, searches see a consistent point-in-time view, and persist
//! writes a crash-safe snapshot while writers go on.
//!
//! # Architecture
//!
//! The modules are layers; each imports only from the layers below it.
//!
//! ```text
//! index (VectorIndex: the facade)   api (Index, OpenOptions)   config   stats   baseline (MutexIndex)
//!   write      the write path: locks, claims, one seq per call, rows and deletes    (write.rs)
//!   read       the read path: a view, one epoch, a top-k                           (read.rs)
//!   maintain   sealing, merges (protocol + MergePolicy), FAISS builds, the worker  (maintain/)
//!   maps       doc -> chunks, chunk -> (doc, row), document locks, reconcile       (maps/)
//!   state      what the three paths share                                           (state.rs)
//!   epoch      Epoch { sealed, frozen, head, retired, horizon }: the one pointer   (epoch/)
//!              to every row, its publish path, the head, snapshot assembly
//!   persist    the index directory: manifest, snapshot writer and reader           (persist/)
//!   segment    sealed segments: exact scan, FAISS index, settings                  (segment/)
//!   query      search options, hits, top-k                                          (query.rs)
//!   rows       row metadata, the rows file format, tombstones, ids                 (rows/)
//!   wal        the write-ahead log: records, segments, group commit, replay, lock  (wal/)
//!   seq        SeqNo, ReadView, the sequencer                                       (seq/)
//!   storage    file header and checksums, the file system                          (storage/)
//!   sync       the shim: std, or loom / shuttle with stand-ins                      (sync/)
//! ```
//!
//! Every mutation takes one sequence number; its rows and tombstones carry it. A search takes a
//! view (every completed operation below a seq, none in flight) without waiting, loads the epoch
//! once, and scans. A persist waits only for operations already in flight below its seq, then
//! writes exactly the operations before it, while new writers continue.
//!
//! # Persistence
//!
//! [`VectorIndex::persist`] writes an index directory of write-once files named by a
//! `MANIFEST` (`docs/format.md` has every byte): sealed segments once, the heads' rows, the
//! tombstones, then the manifest, committed by rename. [`VectorIndex::open_with_options`] maps
//! the files, checks each once, searches them in place, and returns an [`OpenReport`] of what it
//! healed (FAISS and ids files), quarantined (damaged rows files, with the documents they held)
//! or fell back from (a damaged `MANIFEST`).
//!
//! # Protocols
//!
//! Each lives in one file whose docs state its invariants and memory orderings: the sequencer
//! (`seq/sequencer.rs`), the head (`epoch/head.rs`), the epoch's publish path (`epoch/mod.rs`),
//! deletes (`rows/tombstones.rs`), the write path (`write.rs`), the id maps and their lock order
//! (`maps/`), merges (`maintain/merge.rs`), the manifest commit (`persist/manifest.rs`). Loom
//! models in `loom-tests/` drive this code through the `sync` shim
//! (`RUSTFLAGS="--cfg vecindex_loom"`); `docs/concurrency.md` maps each protocol to its models.
//!
//! # Baseline
//!
//! [`MutexIndex`] implements the same [`Index`] trait with one Mutex held for every call,
//! persist included: the design this crate replaces, kept for tests and benchmarks.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use vecindex::{Chunk, IndexConfig, SearchOptions, VectorIndex};
//!
//! let index = Arc::new(VectorIndex::new(IndexConfig::new(2))?);
//! let writer = {
//!     let index = index.clone();
//!     std::thread::spawn(move || {
//!         for i in 0..100 {
//!             let v = vec![1.0, i as f32];
//!             index.add_chunk(Chunk::new(format!("c{i}"), format!("d{}", i % 10), v)).unwrap();
//!         }
//!     })
//! };
//! let dir = tempfile::tempdir().unwrap();
//! index.persist(dir.path())?; // the writer keeps going meanwhile
//! writer.join().unwrap();
//! assert_eq!(index.len(), 100);
//! let hits = index.search(&[1.0, 0.0], &SearchOptions::k(3).exclude_doc("d0"))?;
//! assert!(hits.iter().all(|h| h.doc_id != "d0"));
//! # Ok::<(), vecindex::Error>(())
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

// Files are little endian and read in place (vectors are cast from the mapped bytes).
#[cfg(target_endian = "big")]
compile_error!("vecindex reads its little-endian files in place; big-endian targets are not supported");

mod api;
mod baseline;
mod chunk;
mod config;
pub mod embed;
mod epoch;
mod error;
mod ids;
mod index;
mod maintain;
mod maps;
pub mod metadata;
mod metric;
mod persist;
mod query;
mod read;
#[cfg(feature = "object-store")]
mod replica;
mod rows;
mod segment;
mod seq;
mod state;
mod stats;
mod storage;
mod sync;
mod vocabulary;
mod wal;
mod write;

pub use api::{Index, OpenOptions};
pub use baseline::MutexIndex;
pub use chunk::{Chunk, Metadata};
pub use config::IndexConfig;
pub use error::{Error, Result};
pub use index::VectorIndex;
pub use maintain::{MergePolicy, SegmentInfo, TieredMergePolicy};
pub use metadata::{Filter, FilterError, Value};
pub use metric::Metric;
pub use persist::{Healed, LostDocument, OpenReport, PersistReport, Quarantined};
pub use query::{Include, SearchHit, SearchOptions};
#[cfg(feature = "object-store")]
pub use replica::{Replica, ReplicaOptions, ReplicaStatus};
pub use segment::{SegmentIndex, SegmentKind};
pub use seq::SeqNo;
pub use stats::{GraphStats, LastPersist, PersistStats, SegmentState, SegmentStats, Stats};
#[cfg(feature = "object-store")]
pub use storage::object::{ObjectStorage, ObjectStorageOptions};
pub use wal::Durability;
pub use wal::replay::{LogDamage, LogReport};

/// The x86 instruction sets this build of FAISS was compiled to assume: `["avx2", "fma",
/// "f16c", "popcnt"]` by default, none for a portable build (see the README, "FAISS and
/// OpenMP"). Opening or building an index with FAISS segments on a CPU that lacks one fails
/// with [`Error::UnsupportedCpu`].
///
/// ```
/// let assumed = vecindex::faiss_simd();
/// assert!(assumed.iter().all(|name| ["avx2", "fma", "f16c", "popcnt"].contains(name)));
/// ```
#[cfg(feature = "faiss")]
pub fn faiss_simd() -> Vec<&'static str> {
    segment::cpu::assumed()
}

/// Test support (feature `testing`, which the crate's own tests turn on): the storage seam and
/// the persistence internals, for tests that damage files or fail the disk on purpose. Not part
/// of the stable API.
#[cfg(feature = "testing")]
pub mod testing {
    pub use crate::persist::{ids, manifest, tombstones};
    pub use crate::storage::format::FileRef;
    pub use crate::storage::{
        Access, DirGuard, Directory, FaultyDirectory, FileBytes, LocalDirectory, LockMode, PathKind, RamDirectory,
    };
    use crate::{OpenOptions, OpenReport, PersistReport, Result, VectorIndex};

    /// [`VectorIndex::persist`] into any directory.
    ///
    /// # Errors
    /// As [`VectorIndex::persist`].
    pub fn persist_in(index: &VectorIndex, dir: &dyn Directory) -> Result<PersistReport> {
        index.persist_in(dir)
    }

    /// [`VectorIndex::open_with_options`] from any directory.
    ///
    /// # Errors
    /// As [`VectorIndex::open_with_options`].
    pub fn open_in(dir: &dyn Directory, options: &OpenOptions) -> Result<(VectorIndex, OpenReport)> {
        VectorIndex::open_in(dir, options)
    }
}

/// Protocol types for the loom models in `loom-tests/`; compiled only under `--cfg vecindex_loom`.
#[cfg(vecindex_loom)]
#[doc(hidden)]
pub mod internals {
    pub use crate::epoch::head::{Head, HeadRow};
    pub use crate::ids::SegmentId;
    pub use crate::rows::RowMeta;
    pub use crate::rows::Tombstones;
    pub use crate::segment::graph::Graph;
    pub use crate::seq::Sequencer;
    pub use crate::wal::group::{Group, Sink};

    /// A log segment of `capacity` bytes in `dir`, and its helper (`wal::ahead`), as an index's
    /// log runs them, minus the group: appends go straight to it. Each next segment doubles.
    pub fn log_segment_with_helper(dir: &std::path::Path, capacity: usize) -> crate::Result<impl Sink> {
        use crate::wal::active::ActiveSegment;
        use crate::wal::ahead::Ahead;
        use crate::wal::segment::Header;
        let ahead = Ahead::start().map_err(|e| crate::Error::io("vecindex-log-ahead thread", e))?;
        let header = Header { dim: 1, index_uid: 0, number: 0 };
        Ok(ActiveSegment::create(dir, header, capacity, 0, false)?.with_helper(crate::sync::Arc::new(ahead)))
    }

    /// The head's block scan, as a search runs it, with a view that sees every row: the best
    /// `k` rows for `query` by inner product, best first.
    pub fn scan_head(head: &Head, query: &[f32], k: usize) -> Vec<crate::SearchHit> {
        let mut top = crate::query::TopK::new(k, crate::Metric::InnerProduct);
        head.scan(query, &crate::seq::ReadView::up_to(crate::seq::SeqNo::MAX), &crate::SearchOptions::k(k), &mut top);
        top.into_hits()
    }
}
