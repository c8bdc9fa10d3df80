//! The id maps: doc_id -> chunk ids and chunk_id -> (owner, row location), in DashMap shards,
//! and the document locks that serialize the mutations of each document.
//!
//! The maps are caches: everything in them can be derived from the rows of an epoch
//! ([`Maps::rebuild`] after an open), and [`Maps::reconcile`] re-derives and repairs them.
//!
//! # Lock order
//!
//! Document locks first ([`Maps::lock`], [`Maps::lock_all`]: `doc_locks`), then a `docs` entry
//! (briefly, inside one method here), then `chunks` entries one at a time; never the reverse, and
//! never two `docs` entries at once. Every method that changes what a document owns
//! ([`Maps::claim`], [`Maps::release_claims`], [`Maps::forget`], [`Maps::set_chunk_list`],
//! [`Maps::remove_from_list`], [`Maps::remove_document`], [`Maps::move_row`]) expects its caller
//! to hold that document's lock. Nothing holds a map lock while waiting for a persist or a
//! search; no method here holds one across a call into another module.

mod doc_locks;
mod grow;
mod rebuild;
mod reconcile;

use std::collections::HashSet;

pub(crate) use doc_locks::{DocGuard, DocLocks};
pub(crate) use grow::grow_ahead;

use crate::ids::RowLoc;
use crate::sync::{Entry, ShardedMap, bug};

/// What the chunk map knows of a chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ChunkEntry {
    /// The owning document.
    doc_id: String,
    /// Where its row is; `None` while the adding call is in flight.
    loc: Option<RowLoc>,
}

/// What claiming a chunk id for a document found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The id was free; it is the document's now, with no row yet.
    New,
    /// The document already had the id; its current row, if placed, is to be replaced.
    Rewrite(Option<RowLoc>),
}

/// See the module docs.
pub(crate) struct Maps {
    docs: ShardedMap<String, Vec<String>>,
    chunks: ShardedMap<String, ChunkEntry>,
    locks: DocLocks,
}

impl Maps {
    /// Empty maps; `seed` seeds the document locks' hash.
    pub(crate) fn new(seed: u64) -> Self {
        // More shards than the default (4 x cores) makes two writers of different documents
        // rarely share a shard on small machines.
        Self {
            docs: ShardedMap::with_shard_amount(64),
            chunks: ShardedMap::with_shard_amount(64),
            locks: DocLocks::new(seed),
        }
    }

    /// Locks `doc_id`: its mutations are serialized until the guard drops.
    pub(crate) fn lock(&self, doc_id: &str) -> DocGuard<'_> {
        self.locks.lock(doc_id)
    }

    /// Locks every document of `doc_ids` at once, in the order that keeps two such calls from
    /// deadlocking.
    pub(crate) fn lock_all<'d>(&self, doc_ids: impl IntoIterator<Item = &'d str>) -> DocGuard<'_> {
        self.locks.lock_all(doc_ids)
    }

    /// Claims `chunk_id` for `doc_id`, whose lock the caller holds. `Err(owner)` if another
    /// document owns it.
    pub(crate) fn claim(&self, chunk_id: &str, doc_id: &str) -> Result<Claim, String> {
        // An injected bug for the loom models: claiming a chunk id by looking, then inserting,
        // instead of through one entry (two documents can both claim it).
        if bug!("claim_check_then_insert") && !self.chunks.contains_key(chunk_id) {
            self.chunks.insert(chunk_id.to_owned(), ChunkEntry { doc_id: doc_id.to_owned(), loc: None });
            return Ok(Claim::New);
        }
        match self.chunks.entry(chunk_id.to_owned()) {
            Entry::Occupied(o) if o.get().doc_id != doc_id => Err(o.get().doc_id.clone()),
            Entry::Occupied(o) => Ok(Claim::Rewrite(o.get().loc)),
            Entry::Vacant(v) => {
                v.insert(ChunkEntry { doc_id: doc_id.to_owned(), loc: None });
                Ok(Claim::New)
            }
        }
    }

    /// Undoes [`Claim::New`] claims of one call that is giving up.
    pub(crate) fn release_claims(&self, chunk_ids: &[&str]) {
        for id in chunk_ids {
            self.chunks.remove(*id);
        }
    }

    /// Records where a claimed chunk's row went.
    pub(crate) fn place(&self, chunk_id: &str, loc: RowLoc) {
        if let Some(mut entry) = self.chunks.get_mut(chunk_id) {
            entry.loc = Some(loc);
        }
    }

    /// Removes `chunk_id` from the chunk map; returns where its row was, if it had one.
    pub(crate) fn forget(&self, chunk_id: &str) -> Option<RowLoc> {
        self.chunks.remove(chunk_id).and_then(|(_, entry)| entry.loc)
    }

    /// The document that owns `chunk_id`.
    pub(crate) fn owner(&self, chunk_id: &str) -> Option<String> {
        self.chunks.get(chunk_id).map(|e| e.doc_id.clone())
    }

    /// Where `chunk_id`'s row is.
    pub(crate) fn location(&self, chunk_id: &str) -> Option<RowLoc> {
        self.chunks.get(chunk_id)?.loc
    }

    /// Points `chunk_id` at `to` if it still points at `from` (a merge moving a row).
    pub(crate) fn move_row(&self, chunk_id: &str, from: RowLoc, to: RowLoc) {
        if let Some(mut entry) = self.chunks.get_mut(chunk_id)
            && entry.loc == Some(from)
        {
            entry.loc = Some(to);
        }
    }

    /// After a write of `written` (chunk ids in call order) to `doc_id`: with `replace` its list
    /// becomes exactly `written`; otherwise old ids that were not rewritten keep their place and
    /// the written ids follow. Either way the list is the order in which current rows were
    /// added. `rewrites` says whether some written id was already the document's; when not (the
    /// common case of new chunks), this only appends. A document left with no chunk is removed.
    pub(crate) fn set_chunk_list(&self, doc_id: &str, replace: bool, written: Vec<String>, rewrites: bool) {
        match self.docs.entry(doc_id.to_owned()) {
            Entry::Occupied(mut o) => {
                update_chunk_list(o.get_mut(), replace, written, rewrites);
                if o.get().is_empty() {
                    o.remove();
                }
            }
            Entry::Vacant(v) if !written.is_empty() => drop(v.insert(written)),
            Entry::Vacant(_) => {}
        }
    }

    /// Takes `chunk_id` out of `doc_id`'s list (removing the document if it was the last).
    pub(crate) fn remove_from_list(&self, doc_id: &str, chunk_id: &str) {
        if let Entry::Occupied(mut doc) = self.docs.entry(doc_id.to_owned()) {
            doc.get_mut().retain(|id| id != chunk_id);
            if doc.get().is_empty() {
                doc.remove();
            }
        }
    }

    /// Removes `doc_id`'s chunk list (its chunks' entries are the caller's to forget).
    pub(crate) fn remove_document(&self, doc_id: &str) {
        self.docs.remove(doc_id);
    }

    /// Grows, off the write path, the shards of both maps that are about to fill
    /// ([`grow_ahead`]); returns how many it grew.
    pub(crate) fn grow_ahead(&self) -> usize {
        grow_ahead(&self.docs) + grow_ahead(&self.chunks)
    }

    /// Sorted document ids.
    pub(crate) fn document_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.docs.iter().map(|e| e.key().clone()).collect();
        ids.sort();
        ids
    }

    /// How many documents there are.
    pub(crate) fn documents(&self) -> usize {
        self.docs.len()
    }

    /// `doc_id`'s chunk ids, in the order their rows were added.
    pub(crate) fn chunk_ids(&self, doc_id: &str) -> Vec<String> {
        self.docs.get(doc_id).map(|e| e.clone()).unwrap_or_default()
    }
}

/// The list update of [`Maps::set_chunk_list`], also the baseline's.
pub(crate) fn update_chunk_list(list: &mut Vec<String>, replace: bool, written: Vec<String>, rewrites: bool) {
    if replace {
        list.clear();
    } else if rewrites {
        let rewritten: HashSet<&str> = written.iter().map(String::as_str).collect();
        list.retain(|id| !rewritten.contains(id.as_str()));
    }
    list.extend(written);
}
