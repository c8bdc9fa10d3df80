//! The write path: how a mutation runs.
//!
//! # Protocol
//!
//! The facade first validates and prepares every vector (normalized for cosine), so bad input
//! returns before anything here runs. Then, for the documents a call touches:
//!
//! 1. Lock the documents ([`Maps::lock_all`](crate::maps::Maps::lock_all)): every mutation of a
//!    document holds its lock until step 4, so mutations of one document are serialized.
//! 2. Claim every chunk id in the chunk map. A chunk id another document owns rejects the whole
//!    call here, its claims undone: nothing has changed.
//! 3. Take one seq from the [`Sequencer`](crate::seq::Sequencer) for the whole call; delete the
//!    replaced rows and append the new rows to the head, all stamped with that seq; point the
//!    chunk map at the new rows. Drop the in-flight guard: from now on views include the call.
//! 4. Update the documents' chunk lists, release the locks, then register the text in the
//!    vocabulary. The caller wakes the sealer if a head filled up.
//!
//! # Invariants
//!
//! - W1: a call is all or nothing to every reader: its rows and deletes share one seq, which a
//!   view includes whole or not at all (I3 in `seq::sequencer`).
//! - W2: a call is all or nothing to other writers: everything it could conflict on is checked
//!   in step 2, under the locks of every document it touches, before anything is applied.
//! - W3: a chunk id has one owner: claims go through one entry of the chunk map.
//!
//! # Lock order
//!
//! Document locks (all of a call's, in the order `Maps::lock_all` takes them), then map entries
//! one at a time (`maps`). Nothing in 1-4 waits for a search or a persist, and neither takes a
//! document lock.

use std::collections::HashSet;

use crate::chunk::Chunk;
use crate::error::{Error, Result};
use crate::ids::RowLoc;
use crate::maps::Claim;
use crate::rows::RowMeta;
use crate::state::State;
use crate::sync::{Arc, bug};
use crate::wal::record::Op;

/// What one document of a write replaces, found while claiming its chunk ids.
#[derive(Default)]
struct Plan {
    /// Rows to delete: the rewritten chunks' rows, then those of `dropped`.
    replaced: Vec<RowLoc>,
    /// The document's chunks that the write leaves out (`add_document` only).
    dropped: Vec<String>,
    /// Whether some written chunk id was already the document's.
    rewrites: bool,
}

impl State {
    /// Applies every document's chunks under one seq, all or nothing (the protocol above).
    /// `replace`: each document's other chunks are removed in the same step (add_document);
    /// otherwise they stay (add_chunk, add_chunks). The chunks must already be prepared
    /// (`chunk::prepare_chunks`). Returns whether a head filled up.
    pub(crate) fn write_documents(&self, docs: Vec<(String, Vec<Chunk>)>, replace: bool) -> Result<bool> {
        if docs.is_empty() {
            return Ok(false);
        }
        // 1.
        let documents = self.maps.lock_all(docs.iter().map(|(doc_id, _)| doc_id.as_str()));
        // 2.
        let mut claimed: Vec<&str> = Vec::new();
        let mut plans: Vec<Plan> = Vec::with_capacity(docs.len());
        for (doc_id, chunks) in &docs {
            let mut plan = Plan::default();
            for chunk in chunks {
                match self.maps.claim(&chunk.chunk_id, doc_id) {
                    Ok(Claim::New) => claimed.push(&chunk.chunk_id),
                    Ok(Claim::Rewrite(loc)) => {
                        plan.rewrites = true;
                        plan.replaced.extend(loc);
                    }
                    Err(owner) => {
                        self.maps.release_claims(&claimed);
                        return Err(Error::ChunkInOtherDocument {
                            chunk_id: chunk.chunk_id.clone(),
                            owner,
                            requested: doc_id.clone(),
                        });
                    }
                }
            }
            if replace {
                let new_ids: HashSet<&str> = chunks.iter().map(|c| c.chunk_id.as_str()).collect();
                plan.dropped =
                    self.maps.chunk_ids(doc_id).into_iter().filter(|id| !new_ids.contains(id.as_str())).collect();
            }
            plans.push(plan);
        }

        // 3.
        let op = self.seq.begin();
        let seq = op.seq();
        if let Err(e) = self.log_op(seq, Op::Write { replace, docs: &docs }) {
            self.maps.release_claims(&claimed);
            return Err(e); // nothing applied: the seq completes empty
        }
        let epoch = self.epochs.load();
        let mut removed = 0;
        for plan in &mut plans {
            for id in &plan.dropped {
                plan.replaced.extend(self.maps.forget(id));
            }
            for loc in &plan.replaced {
                removed += usize::from(epoch.delete(*loc, seq));
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
                let (loc, froze_head) = self.epochs.append(meta.clone(), vector.into_boxed_slice());
                froze |= froze_head;
                self.maps.place(&meta.chunk_id, loc);
                rows.push(meta);
            }
            added += rows.len();
            written.push((doc_id, rows));
        }
        self.count(added, removed);
        drop(op); // the operation is complete: views from now on include it

        // 4.
        for ((doc_id, rows), plan) in written.iter().zip(&plans) {
            let ids: Vec<String> = rows.iter().map(|m| m.chunk_id.clone()).collect();
            self.maps.set_chunk_list(doc_id, replace, ids, plan.rewrites);
        }
        drop(documents);
        for meta in written.iter().flat_map(|(_, rows)| rows) {
            self.vocabulary.register(&meta.text);
        }
        Ok(froze)
    }

    /// Removes every chunk of `doc_id` in one step; returns how many there were.
    pub(crate) fn remove_document(&self, doc_id: &str) -> Result<usize> {
        let document = self.maps.lock(doc_id);
        let ids = self.maps.chunk_ids(doc_id);
        if ids.is_empty() {
            return Ok(0);
        }
        // An injected bug for the loom models: releasing the document's lock before removing
        // its chunks, so a writer of the same document can run in between.
        let document = if bug!("remove_unlocks_early") {
            drop(document);
            None
        } else {
            Some(document)
        };
        let op = self.seq.begin();
        self.log_op(op.seq(), Op::RemoveDocument(doc_id))?;
        let epoch = self.epochs.load();
        let mut removed = 0;
        for id in &ids {
            if let Some(loc) = self.maps.forget(id) {
                removed += usize::from(epoch.delete(loc, op.seq()));
            }
        }
        drop(epoch);
        self.count(0, removed);
        drop(op);
        self.maps.remove_document(doc_id);
        drop(document);
        Ok(removed)
    }

    /// Appends an operation's record to the log, if the index has one (L1 in `wal`: after
    /// the seq is taken, before anything is applied).
    fn log_op(&self, seq: crate::seq::SeqNo, op: Op<'_>) -> Result<()> {
        match self.log.get() {
            Some(log) => log.append(seq, op),
            None => Ok(()),
        }
    }

    /// Removes one chunk; returns whether it existed.
    pub(crate) fn remove_chunk(&self, chunk_id: &str) -> Result<bool> {
        loop {
            let Some(owner) = self.maps.owner(chunk_id) else {
                return Ok(false);
            };
            let _document = self.maps.lock(&owner);
            // Under the owner's lock nothing else changes this chunk: check it is still owner's.
            match self.maps.owner(chunk_id) {
                None => return Ok(false),
                Some(now) if now != owner => continue, // re-owned meanwhile: lock the new owner
                Some(_) => {}
            }
            let op = self.seq.begin();
            self.log_op(op.seq(), Op::RemoveChunk(chunk_id))?;
            let removed = self.maps.forget(chunk_id).is_some_and(|loc| self.epochs.load().delete(loc, op.seq()));
            self.count(0, usize::from(removed));
            drop(op);
            self.maps.remove_from_list(&owner, chunk_id);
            return Ok(removed);
        }
    }
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use std::collections::HashSet;

    use crate::chunk::Chunk;
    use crate::config::IndexConfig;
    use crate::error::Error;
    use crate::index::VectorIndex;
    use crate::query::SearchOptions;
    use crate::sync::Arc;

    fn v(x: f32) -> Vec<f32> {
        vec![1.0, x]
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
        let owners: Vec<String> = index.document_ids();
        assert_eq!(owners.len(), hits.len());
        if let Some(hit) = hits.first() {
            assert_eq!(owners[0], hit.doc_id);
            assert_eq!(index.chunk("shared").unwrap().doc_id, hit.doc_id);
        }
    }
}
