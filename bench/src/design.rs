//! The designs under test behind one small trait, so every benchmark runs the same code on each:
//! `VectorIndex` (this crate's design), `MutexIndex` (the same library with one lock) and
//! [`FaissMutex`](crate::old_design::FaissMutex) (the design vecindex replaces).

use std::path::Path;

use vecindex::{Chunk, Index, SearchOptions};

/// What a benchmark needs of an index.
pub trait Design: Send + Sync {
    fn name(&self) -> &'static str;
    fn add_chunk(&self, chunk: Chunk);
    /// Adds many chunks at once (bulk loading before a measurement).
    fn add_bulk(&self, chunks: Vec<Chunk>);
    /// Adds (or replaces) a document's chunks in one call.
    fn add_document(&self, doc_id: &str, chunks: Vec<Chunk>);
    /// The ids of the `k` nearest chunks.
    fn search(&self, query: &[f32], k: usize) -> Vec<String>;
    /// Persists into `dir`; returns the bytes written.
    fn persist(&self, dir: &Path) -> u64;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A vecindex index (either design of the library).
pub struct Library<I> {
    pub name: &'static str,
    pub index: I,
}

impl<I: Index> Design for Library<I> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn add_chunk(&self, chunk: Chunk) {
        self.index.add_chunk(chunk).expect("valid chunk");
    }

    fn add_bulk(&self, chunks: Vec<Chunk>) {
        self.index.add_chunks(chunks).expect("valid chunks");
    }

    fn add_document(&self, doc_id: &str, chunks: Vec<Chunk>) {
        self.index.add_document(doc_id, chunks).expect("valid chunks");
    }

    fn search(&self, query: &[f32], k: usize) -> Vec<String> {
        let hits = self.index.search(query, &SearchOptions::k(k)).expect("valid query");
        hits.into_iter().map(|hit| hit.chunk_id).collect()
    }

    fn persist(&self, dir: &Path) -> u64 {
        self.index.persist(dir).expect("persist").bytes_written
    }

    fn len(&self) -> usize {
        self.index.len()
    }
}
