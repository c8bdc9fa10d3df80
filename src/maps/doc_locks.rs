//! Document locks: what serializes the mutations of one document, and lets one call mutate
//! several documents as one atomic step.
//!
//! A fixed table of mutexes (stripes); document `d` maps to stripe `hash(d) % stripes`. Every
//! mutation of a document holds its stripe for its whole critical section (claims, seq, rows,
//! tombstones, map updates); a call over several documents (`add_chunks`) takes the stripes of
//! all of them, in increasing stripe order, before it checks or changes anything, so it is
//! all-or-nothing against every other writer and two such calls cannot deadlock.
//!
//! # Lock order
//!
//! Document stripes (increasing order, each once) -> a `docs` map entry (one at a time, briefly)
//! -> `chunks` map entries (one at a time). Nothing holds a stripe while waiting for a persist
//! or a search, and neither takes one.
//!
//! Two documents that share a stripe serialize their writers, as two keys of one DashMap shard
//! do; the table is sized so that this is rare, and the hash is seeded per index. Under the model
//! checkers every document has a lock of its own instead (a key of the `ShardedMap` stand-in,
//! which has a mutex per key), so that two documents never serialize each other there and the
//! checker sees every interleaving of their writers.

#[cfg(not(any(vecindex_loom, vecindex_shuttle)))]
pub(crate) use striped::{DocGuard, DocLocks};

#[cfg(any(vecindex_loom, vecindex_shuttle))]
pub(crate) use per_document::{DocGuard, DocLocks};

#[cfg(not(any(vecindex_loom, vecindex_shuttle)))]
mod striped {
    use crate::sync::{Mutex, MutexGuard};

    /// Stripes per index: 256 cache lines (16 KiB).
    const STRIPES: usize = 256;

    /// One stripe on its own cache line, so writers of neighbouring stripes do not share one.
    #[repr(align(64))]
    struct Stripe(Mutex<()>);

    /// See the module docs.
    pub(crate) struct DocLocks {
        stripes: Box<[Stripe]>,
        seed: u64,
    }

    /// Held stripes; dropping it releases them.
    pub(crate) enum DocGuard<'a> {
        One(#[allow(dead_code)] MutexGuard<'a, ()>),
        Many(#[allow(dead_code)] Vec<MutexGuard<'a, ()>>),
    }

    impl DocLocks {
        pub(crate) fn new(seed: u64) -> Self {
            Self { stripes: (0..STRIPES).map(|_| Stripe(Mutex::new(()))).collect(), seed }
        }

        fn stripe(&self, doc_id: &str) -> usize {
            (xxhash_rust::xxh3::xxh3_64_with_seed(doc_id.as_bytes(), self.seed) % STRIPES as u64) as usize
        }

        fn acquire(&self, stripe: usize) -> MutexGuard<'_, ()> {
            // A poisoned stripe guards no data of its own: the panicking writer's partial work
            // is what reconcile_mappings() repairs.
            self.stripes[stripe].0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        /// Locks `doc_id`'s stripe.
        pub(crate) fn lock(&self, doc_id: &str) -> DocGuard<'_> {
            DocGuard::One(self.acquire(self.stripe(doc_id)))
        }

        /// Locks the stripes of all of `doc_ids`, in increasing stripe order, each once.
        pub(crate) fn lock_all<'d>(&self, doc_ids: impl IntoIterator<Item = &'d str>) -> DocGuard<'_> {
            let mut stripes: Vec<usize> = doc_ids.into_iter().map(|d| self.stripe(d)).collect();
            stripes.sort_unstable();
            stripes.dedup();
            match stripes.as_slice() {
                [one] => DocGuard::One(self.acquire(*one)),
                _ => DocGuard::Many(stripes.into_iter().map(|s| self.acquire(s)).collect()),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn several_documents_sharing_a_stripe_lock_once_and_others_wait() {
            let locks = DocLocks::new(7);
            let names: Vec<String> = (0..1000).map(|i| format!("doc{i}")).collect();
            let first = &names[0];
            let same = names.iter().skip(1).find(|n| locks.stripe(n) == locks.stripe(first)).unwrap();
            let other = names.iter().find(|n| locks.stripe(n) != locks.stripe(first)).unwrap();
            let held = locks.lock_all([first.as_str(), same.as_str(), other.as_str()]);
            assert!(matches!(&held, DocGuard::Many(g) if g.len() == 2), "one guard per distinct stripe");
            assert!(locks.stripes[locks.stripe(same)].0.try_lock().is_err(), "held");
            drop(held);
            assert!(locks.stripes[locks.stripe(same)].0.try_lock().is_ok(), "released");
        }
    }
}

#[cfg(any(vecindex_loom, vecindex_shuttle))]
mod per_document {
    use crate::sync::{Entry, ShardedMap};

    /// See the module docs: one lock per document, a key of the stand-in map.
    pub(crate) struct DocLocks {
        locks: ShardedMap<String, ()>,
    }

    /// Held documents' locks (their entries); dropping it releases them.
    pub(crate) struct DocGuard<'a>(#[allow(dead_code)] Vec<Entry<'a, ()>>);

    impl DocLocks {
        pub(crate) fn new(_seed: u64) -> Self {
            Self { locks: ShardedMap::new() }
        }

        pub(crate) fn lock(&self, doc_id: &str) -> DocGuard<'_> {
            DocGuard(vec![self.locks.entry(doc_id.to_owned())])
        }

        /// In increasing order of document id, each once.
        pub(crate) fn lock_all<'d>(&self, doc_ids: impl IntoIterator<Item = &'d str>) -> DocGuard<'_> {
            let mut ids: Vec<&str> = doc_ids.into_iter().collect();
            ids.sort_unstable();
            ids.dedup();
            DocGuard(ids.into_iter().map(|id| self.locks.entry(id.to_owned())).collect())
        }
    }
}
