//! vecindex: a concurrent vector index for embedding servers and RAG systems, in which writers
//! never wait for persist or search, searches see a consistent point-in-time view, and persist
//! writes a crash-safe snapshot while writers go on.
//!
//! # Architecture
//!
//! ```text
//! VectorIndex
//!   seq:    Sequencer            seq numbers + in-flight table: views and snapshots  (snapshot.rs)
//!   epochs: EpochCell<Epoch>     one pointer; readers load it, writers publish anew  (epoch.rs)
//!     Epoch { sealed: [Segment], frozen: [Head], head: Head, retired, horizon }
//!       Head          fixed-capacity rows, reserve / write / publish, no locks       (head.rs)
//!       Segment       sealed, immutable rows + contiguous vectors (+ FAISS index)    (segment/)
//!       Tombstones    per-row delete seqs, shared by a head and its segment          (tombstones.rs)
//!   maps:   DashMap doc -> chunks, chunk -> (doc, row)   caches; per-document order  (maps.rs)
//!   vocabulary: bounded concurrent term counts                                        (vocabulary.rs)
//!   worker: a sealer (full heads) and a builder (merge, vacuum, FAISS), off the write path  (worker.rs, merge.rs)
//! ```
//!
//! Every mutation takes one sequence number; its rows and tombstones carry it. A search takes a
//! [`ReadView`] (every completed operation below a seq, none in flight) without waiting, loads
//! the epoch once, and scans. A persist waits only for operations already in flight below its
//! seq, then writes exactly the operations before it, while new writers continue.
//!
//! # Persistence
//!
//! [`Index::persist`] writes an index directory of write-once files named by a `MANIFEST`
//! ([`persist`] has the layout, `docs/format.md` every byte): sealed segments once, the heads'
//! rows, the tombstones, then the manifest, committed by rename. [`Index::open_with_options`]
//! maps the files, checks each once, searches them in place, and returns an [`OpenReport`] of
//! what it healed (FAISS and ids files), quarantined (damaged rows files, with the documents
//! they held) or fell back from (a damaged `MANIFEST`).
//!
//! # Protocols
//!
//! Each lives in one file whose docs state its invariants and memory orderings:
//! [`snapshot`](crate::snapshot) (sequencer and watermark), `head` (append/publish),
//! `epoch` (publish path), `tombstones` (seq-stamped deletes), `maps` (lock order),
//! [`persist::manifest`] (the commit).
//! Loom models in `loom-tests/` drive this code through the `sync` shim
//! (`RUSTFLAGS="--cfg vecindex_loom"`).
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
//! use vecindex::{Chunk, Index, IndexConfig, SearchOptions, VectorIndex};
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

mod chunk;
mod config;
pub mod embed;
mod epoch;
mod error;
mod index;
mod maps;
mod merge;
pub mod metric;
mod mutex_index;
pub mod persist;
mod query;
mod rows;
mod segment;
pub mod seq;
pub mod storage;
mod sync;
mod vocabulary;
mod worker;

pub use chunk::{Chunk, Metadata};
pub use config::{IndexConfig, SegmentIndex};
pub use error::{Error, Result};
pub use index::{Index, SegmentStats, Stats, VectorIndex};
pub use merge::MergePolicy;
pub use metric::Metric;
pub use mutex_index::MutexIndex;
pub use persist::{Healed, LostDocument, OpenOptions, OpenReport, PersistReport, Quarantined};
pub use query::{SearchHit, SearchOptions};
pub use seq::{ReadView, SeqNo};

/// Protocol types for the loom models in `loom-tests/`; compiled only under `--cfg vecindex_loom`.
#[cfg(vecindex_loom)]
#[doc(hidden)]
pub mod internals {
    pub use crate::epoch::head::{Head, HeadRow};
    pub use crate::rows::RowMeta;
    pub use crate::rows::SegmentId;
    pub use crate::rows::Tombstones;
    pub use crate::seq::Sequencer;
}
