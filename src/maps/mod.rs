//! The id maps: doc_id -> chunk ids and chunk_id -> (owner, row location), in DashMap shards.
//!
//! They are caches: everything in them can be derived from the rows of an epoch, and
//! [`reconcile_mappings`](crate::Index::reconcile_mappings) re-derives and repairs them.
//! Mutations of one document are serialized by its lock in [`doc_locks`], not here.
//!
//! # Lock order
//!
//! Document locks first ([`doc_locks`]), then a `docs` entry, then `chunks` entries one
//! at a time; never the reverse, and never two `docs` entries at once. Nothing holds a map lock
//! while waiting for a persist or a search.

mod doc_locks;
mod grow;

pub(crate) use doc_locks::DocLocks;
pub(crate) use grow::grow_ahead;

use crate::sync::ShardedMap;

use crate::rows::RowLoc;

/// What the chunk map knows of a chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkEntry {
    /// The owning document.
    pub doc_id: String,
    /// Where its row is; `None` while the adding call is in flight.
    pub loc: Option<RowLoc>,
}

/// See the module docs.
pub struct Maps {
    pub docs: ShardedMap<String, Vec<String>>,
    pub chunks: ShardedMap<String, ChunkEntry>,
}

impl Maps {
    pub fn new() -> Self {
        // More shards than the default (4 x cores) makes two writers of different documents
        // rarely share a shard on small machines.
        Self { docs: ShardedMap::with_shard_amount(64), chunks: ShardedMap::with_shard_amount(64) }
    }

    /// Grows, off the write path, the shards of both maps that are about to fill
    /// ([`grow_ahead`]); returns how many it grew.
    pub fn grow_ahead(&self) -> usize {
        grow_ahead(&self.docs) + grow_ahead(&self.chunks)
    }

    /// Sorted document ids.
    pub fn document_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.docs.iter().map(|e| e.key().clone()).collect();
        ids.sort();
        ids
    }

    pub fn chunk_ids(&self, doc_id: &str) -> Vec<String> {
        self.docs.get(doc_id).map(|e| e.clone()).unwrap_or_default()
    }
}

impl Default for Maps {
    fn default() -> Self {
        Self::new()
    }
}

/// Updates a document's chunk list for a write of `written` (chunk ids in call order): with
/// `replace` the list becomes exactly `written`; otherwise old ids that were not rewritten keep
/// their place and the written ids follow. Either way the list is the order in which current rows
/// were added. `rewrites` says whether some written id was already the document's; when not (the
/// common case of new chunks), this only appends.
pub fn update_chunk_list(list: &mut Vec<String>, replace: bool, written: &[String], rewrites: bool) {
    if replace {
        list.clear();
    } else if rewrites {
        let rewritten: std::collections::HashSet<&str> = written.iter().map(String::as_str).collect();
        list.retain(|id| !rewritten.contains(id.as_str()));
    }
    list.extend(written.iter().cloned());
}
