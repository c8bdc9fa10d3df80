//! [`Replica`]: a read-only copy of an index on object storage that follows its writer.
//!
//! # Protocol
//!
//! The replica holds the index of one generation behind an `ArcSwap`. A poller thread lists
//! the storage's manifests every interval; when a newer generation is there, it opens it (the
//! files it already fetched stay in the cache: only the new ones are downloaded, checked and
//! mapped), then swaps the pointer, and drops from the cache every file the new generation
//! does not name (an older index still searching keeps its mappings). Searches load the pointer
//! once and keep that index for the whole call: a swap never pauses one, and the old index is
//! dropped when its last search ends.
//!
//! # Invariants
//!
//! - R1: the poller is the only writer of the pointer, and it only ever moves forward in
//!   generations, so a reader never sees the replica go back in time.
//! - R2: what a reader loads is a complete snapshot: an index is swapped in only once its open
//!   finished (every file fetched and checked).
//! - R3: a generation that fails to open whole (a rows file collected under it or missing, a
//!   transient error, its manifest unreadable) leaves the current index in place; the next poll
//!   tries again, and the failure is reported in [`ReplicaStatus::last_error`]. A replica never
//!   serves a generation that lost documents: where a writer's open would quarantine a rows file
//!   and go on without it, a replica's open fails.
//! - R4: one poll at a time (the poller's, or a [`Replica::refresh`] call's): a poll prunes the
//!   cache to the files of the generation it swapped in, which would pull files out from under
//!   another poll's open of a newer one.
//!
//! Orderings: `ArcSwap`'s loads and stores are linearizable; the status is behind a mutex taken
//! only to copy or update it.

#![allow(clippy::disallowed_types)] // whole indexes swapped by one poller: std threads and ArcSwap

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::error::Result;
use crate::persist::manifest::Manifest;
use crate::storage::{Access, Directory, generation_of};
use crate::{ObjectStorage, OpenOptions, OpenReport, VectorIndex};

/// How a [`Replica`] follows its writer.
#[derive(Clone, Debug)]
pub struct ReplicaOptions {
    /// How often the storage is listed for a newer generation (default 5 s).
    pub poll_interval: Duration,
    /// How each generation is opened (always read-only; a generation that lacks a rows file
    /// is never served, whatever `strict` says).
    pub open: OpenOptions,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        Self { poll_interval: Duration::from_secs(5), open: OpenOptions::new() }
    }
}

/// Where a replica stands.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ReplicaStatus {
    /// The generation it serves.
    pub generation: u64,
    /// The newest generation the last poll saw in the storage.
    pub newest: u64,
    /// How long the generation it serves has been behind the newest one seen (zero when
    /// caught up).
    pub behind_for: Duration,
    /// Polls made, and when the last one ended.
    pub polls: u64,
    /// Why the last poll failed to catch up, if it did.
    pub last_error: Option<String>,
}

impl ReplicaStatus {
    /// Generations between the one served and the newest seen.
    pub fn lag_generations(&self) -> u64 {
        self.newest.saturating_sub(self.generation)
    }

    /// Whether it serves the newest generation the last poll saw.
    pub fn caught_up(&self) -> bool {
        self.lag_generations() == 0
    }
}

struct Shared {
    storage: ObjectStorage,
    options: ReplicaOptions,
    current: ArcSwap<VectorIndex>,
    status: Mutex<Tracking>,
    /// Held for a whole poll (R4).
    one_poll_at_a_time: Mutex<()>,
    stop: AtomicBool,
    wake: Condvar,
}

#[derive(Default)]
struct Tracking {
    status: ReplicaStatus,
    /// When the served generation was first seen to be behind.
    behind_since: Option<Instant>,
}

/// A read-only index on object storage that follows its writer (see the module docs).
pub struct Replica {
    shared: Arc<Shared>,
    poller: Option<JoinHandle<()>>,
}

impl Replica {
    /// Opens the newest generation in `storage`, then follows it on a thread of its own.
    ///
    /// # Errors
    /// As [`VectorIndex::open_from`] ([`Error::NoSnapshot`](crate::Error::NoSnapshot) if
    /// nothing was pushed there yet); [`Error::Corrupt`](crate::Error::Corrupt) if the newest
    /// generation names a rows file that cannot be read (R3).
    pub fn open(storage: ObjectStorage, options: ReplicaOptions) -> Result<Self> {
        let (index, report) = open_whole(&storage, &options.open)?;
        prune_cache(&storage, &report.manifest);
        let tracking = Tracking {
            status: ReplicaStatus { generation: report.generation, newest: report.generation, ..Default::default() },
            behind_since: None,
        };
        let shared = Arc::new(Shared {
            storage,
            options,
            current: ArcSwap::from_pointee(index),
            status: Mutex::new(tracking),
            one_poll_at_a_time: Mutex::new(()),
            stop: AtomicBool::new(false),
            wake: Condvar::new(),
        });
        let poller_shared = shared.clone();
        let poller = std::thread::Builder::new()
            .name("vecindex-replica".into())
            .spawn(move || poll_until_stopped(&poller_shared))
            .map_err(|e| crate::Error::io(shared.storage.path(), e))?;
        Ok(Self { shared, poller: Some(poller) })
    }

    /// The index of the generation it serves now: search it as long as needed; a newer
    /// generation swapped in meanwhile does not change it.
    pub fn index(&self) -> Arc<VectorIndex> {
        self.shared.current.load_full()
    }

    /// Where it stands.
    pub fn status(&self) -> ReplicaStatus {
        self.shared.status()
    }

    /// Polls now (as the poller does every interval), returning whether a newer generation was
    /// swapped in.
    ///
    /// # Errors
    /// Listing the storage or opening the newer generation failed; the current one stays.
    pub fn refresh(&self) -> Result<bool> {
        self.shared.refresh()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_all();
        if let Some(poller) = self.poller.take() {
            let _ = poller.join();
        }
    }
}

impl Shared {
    fn tracking(&self) -> std::sync::MutexGuard<'_, Tracking> {
        self.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn status(&self) -> ReplicaStatus {
        let tracking = self.tracking();
        let mut status = tracking.status.clone();
        status.behind_for = tracking.behind_since.map_or(Duration::ZERO, |since| since.elapsed());
        status
    }

    fn refresh(&self) -> Result<bool> {
        let one_poll = self.one_poll_at_a_time.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let outcome = self.catch_up();
        drop(one_poll);
        let mut tracking = self.tracking();
        tracking.status.polls += 1;
        tracking.status.last_error = outcome.as_ref().err().map(ToString::to_string);
        outcome
    }

    /// One poll: lists the manifests; opens and swaps in the newest generation if it is newer.
    fn catch_up(&self) -> Result<bool> {
        let _one_listing = self.storage.session(); // for the poll and the open
        let newest = self.storage.manifest_names()?.first().and_then(|name| generation_of(name)).unwrap_or(0);
        let serving = {
            let mut tracking = self.tracking();
            tracking.status.newest = tracking.status.newest.max(newest);
            if newest > tracking.status.generation && tracking.behind_since.is_none() {
                tracking.behind_since = Some(Instant::now());
            }
            tracking.status.generation
        };
        if newest <= serving {
            return Ok(false);
        }
        let (index, report) = open_whole(&self.storage, &self.options.open)?;
        // R3: an open that fell back to an older manifest (the newest was unreadable) is a
        // failure to catch up, not a generation to serve.
        if let Some(reason) = &report.fell_back {
            return Err(crate::Error::corrupt(self.storage.path().join(&report.manifest), reason.clone()));
        }
        // R1: only forward (the open read the newest manifest there is, which may be newer still).
        let mut tracking = self.tracking();
        if report.generation <= tracking.status.generation {
            return Ok(false);
        }
        self.current.store(Arc::new(index));
        tracking.status.generation = report.generation;
        tracking.status.newest = tracking.status.newest.max(report.generation);
        if tracking.status.generation >= tracking.status.newest {
            tracking.behind_since = None;
        }
        drop(tracking);
        prune_cache(&self.storage, &report.manifest);
        tracing::info!(url = self.storage.url(), generation = report.generation, "replica caught up");
        Ok(true)
    }
}

/// The newest generation there, opened read-only, refused if a rows file it names could not
/// be read (R3): the open would go on without that file's documents.
fn open_whole(storage: &ObjectStorage, options: &OpenOptions) -> Result<(VectorIndex, OpenReport)> {
    let (index, report) = VectorIndex::open_from(storage, options)?;
    match report.quarantined.as_slice() {
        [] => Ok((index, report)),
        [lost, rest @ ..] => {
            let more = match rest.len() {
                0 => String::new(),
                n => format!(" (and {n} more)"),
            };
            let reason = format!("a replica serves no generation without its documents: {}{more}", lost.reason);
            Err(crate::Error::corrupt(storage.path().join(&report.manifest), reason))
        }
    }
}

/// Keeps in the cache only what the manifest `manifest_name` names (and the manifest): the
/// files of older generations would otherwise pile up on the replica's disk. A failure is
/// logged, not returned: the generation is served either way, and the next swap tries again.
fn prune_cache(storage: &ObjectStorage, manifest_name: &str) {
    let pruned = (|| {
        let bytes = storage.open(manifest_name, Access::Sequential)?;
        let manifest = Manifest::decode(&storage.path().join(manifest_name), &bytes)?;
        let mut keep: std::collections::HashSet<String> = manifest.files().into_iter().collect();
        keep.insert(manifest_name.to_owned());
        storage.keep_cached(&keep)
    })();
    match pruned {
        Ok(removed) => tracing::debug!(url = storage.url(), removed, "replica cache pruned"),
        Err(e) => tracing::warn!(url = storage.url(), error = %e, "cannot prune the replica's cache"),
    }
}

fn poll_until_stopped(shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        if let Err(e) = shared.refresh() {
            tracing::warn!(url = shared.storage.url(), error = %e, "replica poll failed; serving the generation it has");
        }
        let guard = shared.tracking();
        let _ = shared
            .wake
            .wait_timeout_while(guard, shared.options.poll_interval, |_| !shared.stop.load(Ordering::Relaxed));
    }
}
