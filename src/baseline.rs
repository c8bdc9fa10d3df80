//! The baseline: the design vecindex replaces, with the same API.
//!
//! One `std::sync::Mutex` around all state (rows, vectors, id maps), held for the whole of every
//! call, including a search's scan and a persist's serialization *and file I/O*, as the Python
//! system held its lock while persisting. Benchmarks and the differential tests run it side by
//! side with [`VectorIndex`](crate::VectorIndex).

#![allow(clippy::disallowed_types)] // the design we replace: one std Mutex, which no model checks

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use crate::api::{Index, OpenOptions};
use crate::chunk::{self, Chunk};
use crate::config::IndexConfig;
use crate::error::{Error, Result};
use crate::maps::update_chunk_list;
use crate::persist::reader::Loaded;
use crate::persist::writer::{SnapshotParts, SnapshotRows, SnapshotSegment};
use crate::persist::{self, OpenReport, PersistReport};
use crate::query::{SearchHit, SearchOptions, TopK};
use crate::rows::RowMeta;
use crate::rows::RowRef;
use crate::rows::SealedRows;
use crate::segment::SegmentKind;
use crate::seq::SeqNo;
use crate::stats::{SegmentState, SegmentStats, Stats};
use crate::storage::LocalDirectory;
use crate::sync::Arc;
use crate::vocabulary::Vocabulary;

/// The Mutex-based baseline index. See the module docs.
pub struct MutexIndex {
    config: IndexConfig,
    index_uid: u128,
    state: Mutex<State>,
    vocabulary: Vocabulary,
}

/// Rows in add order are not kept: deletes swap the last row into the hole (O(1), like a
/// compacting flat index), and `added` remembers the order for persist.
struct State {
    next_seq: SeqNo,
    next_ordinal: u64,
    rows: Vec<(Arc<RowMeta>, u64)>,
    vectors: Vec<f32>,
    by_chunk: HashMap<String, usize>,
    docs: HashMap<String, Vec<String>>,
}

impl State {
    fn vector(&self, dim: usize, row: usize) -> &[f32] {
        &self.vectors[row * dim..(row + 1) * dim]
    }

    fn push(&mut self, meta: RowMeta, vector: &[f32]) {
        self.by_chunk.insert(meta.chunk_id.clone(), self.rows.len());
        self.rows.push((Arc::new(meta), self.next_ordinal));
        self.next_ordinal += 1;
        self.vectors.extend_from_slice(vector);
    }

    fn remove_row(&mut self, dim: usize, chunk_id: &str) -> bool {
        let Some(row) = self.by_chunk.remove(chunk_id) else {
            return false;
        };
        let last = self.rows.len() - 1;
        if row != last {
            self.vectors.copy_within(last * dim..(last + 1) * dim, row * dim);
            self.by_chunk.insert(self.rows[last].0.chunk_id.clone(), row);
        }
        self.rows.swap_remove(row);
        self.vectors.truncate(last * dim);
        true
    }
}

impl MutexIndex {
    /// An empty index.
    pub fn new(config: IndexConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            vocabulary: Vocabulary::new(config.vocabulary_limit),
            index_uid: persist::manifest::new_index_uid(),
            config,
            state: Mutex::new(State {
                next_seq: 1,
                next_ordinal: 0,
                rows: Vec::new(),
                vectors: Vec::new(),
                by_chunk: HashMap::new(),
                docs: HashMap::new(),
            }),
        })
    }

    /// The search of one prepared query under the lock.
    fn search_locked(&self, state: &State, query: &[f32], options: &SearchOptions) -> Vec<SearchHit> {
        let mut top = TopK::for_options(options, self.config.metric);
        for (row, (meta, _)) in state.rows.iter().enumerate() {
            if options.accepts(RowRef::Owned(meta)) {
                top.offer(query, RowRef::Owned(meta), state.vector(self.config.dim, row));
            }
        }
        top.into_hits()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way later calls
        // trip over (every call re-derives what it needs), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies every document's chunks under one seq, after checking every chunk id: all or
    /// nothing, as [`VectorIndex`](crate::VectorIndex) does.
    fn write_documents(&self, docs: Vec<(String, Vec<Chunk>)>, replace: bool) -> Result<()> {
        let dim = self.config.dim;
        let texts: Vec<String> = docs.iter().flat_map(|(_, chunks)| chunks.iter().map(|c| c.text.clone())).collect();
        {
            let mut state = self.lock();
            let mut rewrites = Vec::with_capacity(docs.len());
            for (doc_id, chunks) in &docs {
                let mut rewrite = false;
                for chunk in chunks {
                    if let Some(&row) = state.by_chunk.get(&chunk.chunk_id) {
                        rewrite = true;
                        let owner = &state.rows[row].0.doc_id;
                        if owner != doc_id {
                            return Err(Error::ChunkInOtherDocument {
                                chunk_id: chunk.chunk_id.clone(),
                                owner: owner.clone(),
                                requested: doc_id.clone(),
                            });
                        }
                    }
                }
                rewrites.push(rewrite);
            }
            if docs.is_empty() {
                return Ok(());
            }
            let seq = state.next_seq;
            state.next_seq += 1;
            let mut add_index = 0u32;
            for ((doc_id, chunks), rewrites) in docs.into_iter().zip(rewrites) {
                let mut list = state.docs.remove(&doc_id).unwrap_or_default();
                if replace {
                    for id in &list {
                        state.remove_row(dim, id);
                    }
                }
                let written: Vec<String> = chunks.iter().map(|c| c.chunk_id.clone()).collect();
                for chunk in chunks {
                    state.remove_row(dim, &chunk.chunk_id);
                    let (meta, vector) = RowMeta::from_chunk(chunk, seq, add_index);
                    add_index += 1;
                    state.push(meta, &vector);
                }
                update_chunk_list(&mut list, replace, written, rewrites);
                if !list.is_empty() {
                    state.docs.insert(doc_id, list);
                }
            }
        }
        for text in texts {
            self.vocabulary.register(&text);
        }
        Ok(())
    }
}

impl Index for MutexIndex {
    fn add_chunk(&self, chunk: Chunk) -> Result<()> {
        self.add_chunks(vec![chunk])
    }

    fn add_chunks(&self, mut chunks: Vec<Chunk>) -> Result<()> {
        chunk::prepare_chunks(self.config.metric, self.config.dim, &mut chunks)?;
        self.write_documents(chunk::group_by_doc(chunks), false)
    }

    fn add_document(&self, doc_id: &str, mut chunks: Vec<Chunk>) -> Result<()> {
        chunk::validate_doc_id(doc_id)?;
        chunks.iter_mut().for_each(|c| c.doc_id = doc_id.to_owned());
        chunk::prepare_chunks(self.config.metric, self.config.dim, &mut chunks)?;
        self.write_documents(vec![(doc_id.to_owned(), chunks)], true)
    }

    fn remove_document(&self, doc_id: &str) -> Result<usize> {
        chunk::validate_doc_id(doc_id)?;
        let mut state = self.lock();
        let Some(ids) = state.docs.remove(doc_id) else {
            return Ok(0);
        };
        state.next_seq += 1;
        Ok(ids.iter().filter(|id| state.remove_row(self.config.dim, id)).count())
    }

    fn remove_where(&self, filter: &crate::metadata::Filter) -> Result<usize> {
        filter.check()?;
        // One lock for the reading, then each chunk as `remove_chunk` removes it.
        let ids: Vec<String> = {
            let state = self.lock();
            state
                .rows
                .iter()
                .filter(|(meta, _)| filter.matches(RowRef::Owned(meta)))
                .map(|(m, _)| m.chunk_id.clone())
                .collect()
        };
        let mut removed = 0;
        for chunk_id in ids {
            removed += usize::from(self.remove_chunk(&chunk_id)?);
        }
        Ok(removed)
    }

    fn remove_chunk(&self, chunk_id: &str) -> Result<bool> {
        if chunk_id.is_empty() {
            return Err(Error::EmptyId { what: "chunk_id" });
        }
        let mut state = self.lock();
        let Some(&row) = state.by_chunk.get(chunk_id) else {
            return Ok(false);
        };
        let doc_id = state.rows[row].0.doc_id.clone();
        state.next_seq += 1;
        state.remove_row(self.config.dim, chunk_id);
        if let Some(list) = state.docs.get_mut(&doc_id) {
            list.retain(|id| id != chunk_id);
            if list.is_empty() {
                state.docs.remove(&doc_id);
            }
        }
        Ok(true)
    }

    fn search(&self, query: &[f32], options: &SearchOptions) -> Result<Vec<SearchHit>> {
        options.validate()?;
        let mut query = query.to_vec();
        self.config.metric.prepare(self.config.dim, &mut query)?;
        let state = self.lock();
        Ok(self.search_locked(&state, &query, options))
    }

    fn search_batch(&self, queries: &[f32], options: &SearchOptions) -> Result<Vec<Vec<SearchHit>>> {
        options.validate()?;
        let queries = crate::index::prepare_queries(self.config.metric, self.config.dim, queries)?;
        let state = self.lock();
        Ok(queries.chunks_exact(self.config.dim.max(1)).map(|q| self.search_locked(&state, q, options)).collect())
    }

    fn chunk(&self, chunk_id: &str) -> Option<Chunk> {
        let state = self.lock();
        let row = *state.by_chunk.get(chunk_id)?;
        Some(state.rows[row].0.to_chunk(state.vector(self.config.dim, row)))
    }

    fn document_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().docs.keys().cloned().collect();
        ids.sort();
        ids
    }

    fn chunk_ids(&self, doc_id: &str) -> Vec<String> {
        self.lock().docs.get(doc_id).cloned().unwrap_or_default()
    }

    fn reconcile_mappings(&self) -> usize {
        let mut state = self.lock();
        let state = &mut *state;
        let before = state.by_chunk.len() + state.docs.values().map(Vec::len).sum::<usize>();
        let rows = &state.rows;
        state.by_chunk.retain(|id, row| rows.get(*row).is_some_and(|(m, _)| &m.chunk_id == id));
        let by_chunk = &state.by_chunk;
        for (doc_id, list) in state.docs.iter_mut() {
            list.retain(|id| by_chunk.get(id).is_some_and(|&row| &rows[row].0.doc_id == doc_id));
        }
        state.docs.retain(|_, list| !list.is_empty());
        let after = state.by_chunk.len() + state.docs.values().map(Vec::len).sum::<usize>();
        before - after
    }

    fn persist(&self, path: &Path) -> Result<PersistReport> {
        let dim = self.config.dim;
        // Held through encoding and I/O: the design we replace. Every persist encodes and
        // writes every row again, as one segment.
        let state = self.lock();
        let mut order: Vec<usize> = (0..state.rows.len()).collect();
        order.sort_by_key(|&row| state.rows[row].1);
        let rows = order.iter().map(|&row| (RowRef::Owned(&state.rows[row].0), state.vector(dim, row)));
        let head = (!order.is_empty()).then(|| SnapshotSegment {
            id: 0,
            rows: SealedRows::encode(dim, rows),
            deletes: Vec::new(),
            faiss: None,
        });
        let parts = SnapshotParts {
            index_uid: self.index_uid,
            seq: state.next_seq,
            dim,
            metric: self.config.metric,
            config: self.config.to_stored(),
            rows: SnapshotRows { segments: Vec::new(), head, live_rows: order.len() },
            graph: None,
        };
        persist::writer::write(&LocalDirectory::new(path), parts).map(|(report, _)| report)
    }

    fn stats(&self) -> Stats {
        let state = self.lock();
        let rows = state.rows.len();
        Stats {
            dim: self.config.dim,
            metric: self.config.metric,
            chunks: rows,
            documents: state.docs.len(),
            next_seq: state.next_seq,
            generation: 0,
            segments: vec![SegmentStats {
                id: 0,
                state: SegmentState::Sealed,
                kind: SegmentKind::Exact,
                rows,
                live_rows: rows,
                bytes: state.vectors.len() * std::mem::size_of::<f32>(),
                build_time: None,
                mapped: false,
                indexed_vectors: None,
                graph_rows: None,
            }],
            vocabulary_terms: self.vocabulary.len(),
            graph: None,
            // The baseline keeps no persist history: it is the benchmarks' peer, not served.
            persists: Default::default(),
        }
    }

    fn len(&self) -> usize {
        self.lock().rows.len()
    }

    fn open_with_options(path: &Path, options: &OpenOptions) -> Result<(Self, OpenReport)> {
        let loaded =
            persist::reader::load(&LocalDirectory::new(path), options.read_options(), |stored, dim, metric| {
                let config = IndexConfig::resolve(options.config.as_ref(), stored, dim, metric, path)?;
                let segment_index = config.segment_index.clone();
                Ok((config, segment_index))
            })?;
        let Loaded { index_uid, seq, config, segments, mut report, .. } = loaded;
        let mut index = Self::new(config)?;
        index.index_uid = index_uid;
        let mut rows = Vec::new();
        for segment in &segments {
            for (row, (stored, deleted)) in segment.rows.rows().iter().zip(&segment.deleted).enumerate() {
                if deleted.is_none() {
                    rows.push((stored.add_seq.to_native(), stored.add_index.to_native(), segment, row));
                }
            }
        }
        rows.sort_unstable_by_key(|&(seq, index, segment, row)| (seq, index, segment.id, row));
        {
            let mut state = index.lock();
            state.next_seq = seq.max(1);
            for (_, _, segment, row) in rows {
                let (Some(r), Some(vector)) = (RowRef::sealed(&segment.rows, row), segment.rows.vector(row)) else {
                    continue;
                };
                let meta = r.to_meta();
                index.vocabulary.register(&meta.text);
                if let Some(&older) = state.by_chunk.get(&meta.chunk_id) {
                    // A chunk id twice: never in a snapshot vecindex wrote. The newer row wins.
                    report.duplicate_rows += 1;
                    let owner = state.rows[older].0.doc_id.clone();
                    state.remove_row(index.config.dim, &meta.chunk_id);
                    if let Some(list) = state.docs.get_mut(&owner) {
                        list.retain(|id| id != &meta.chunk_id);
                    }
                }
                state.docs.entry(meta.doc_id.clone()).or_default().push(meta.chunk_id.clone());
                state.push(meta, vector);
            }
            state.docs.retain(|_, list| !list.is_empty());
            report.chunks = state.rows.len();
        }
        report.log();
        Ok((index, report))
    }
}
