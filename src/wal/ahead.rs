//! Work done ahead of the log's writers on a helper thread, so that the leader of a batch pays
//! for a copy (and its fsync) and nothing else: the active segment's next pages faulted in (a
//! first write to a page of a file mapping allocates and zeroes it in the kernel, which cost a
//! 50-chunk document more than its copy did), the next segment created before the active one
//! fills, and full segments unmapped.
//!
//! # Protocol
//!
//! The leader, holding the group's sink, posts requests under one mutex and never waits for the
//! helper; the helper takes them and does the work outside the mutex.
//!
//! - Populate: a shared mapping and a byte range in it. The helper faults the pages in writable
//!   (`MADV_POPULATE_WRITE`); that touches page tables only, never the bytes, so the leader's
//!   copies into the same mapping need no ordering against it. The request holds the mapping
//!   (`Arc`), so it is not unmapped under the helper.
//! - Next: the segment after the active one (its header and capacity). The helper creates it and
//!   leaves it ready; the leader takes it when it needs that segment. If the helper is still
//!   creating it then, the leader does not wait: it abandons that number (the helper removes what
//!   it made) and creates the one above itself.
//! - Retire: a segment the leader is done with, dropped (unmapped, cut) on the helper.
//!
//! # Invariants
//!
//! - P1: the helper never reads or writes the bytes of a segment the leader appends to, so the
//!   active segment's A1 (zeros after its length) and A2 (the commit word stored last) hold as
//!   without it.
//! - P2: only the leader installs a segment, and only one numbered above the active one, so
//!   segment numbers grow in append order (with a gap where a number was abandoned: replay reads
//!   segments in number order and needs no contiguity); a prepared segment that is never
//!   installed holds no record, and is removed.
//! - P3: a failure of the helper (a full disk, no `MADV_POPULATE_WRITE` on an old kernel) costs
//!   only the head start: the leader then creates the segment itself, with its own error
//!   handling, and faults the pages in as it copies.

#![allow(clippy::disallowed_types)] // the log is local files by nature

use std::ops::Range;
use std::path::PathBuf;

use memmap2::{Advice, MmapRaw};

use crate::sync::{Arc, Condvar, JoinHandle, Mutex, MutexGuard, bug};
use crate::wal::segment::Header;

/// How far ahead of the end the helper keeps pages faulted in.
pub(crate) const POPULATE_AHEAD: usize = 2 << 20;

/// How the leader writes batches into a segment, which decides how the helper prepares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WritePath {
    /// Copies into the segment's mapping, no system call (the levels that do not sync every
    /// batch); the helper faults the pages ahead of the end in.
    Mapping,
    /// `pwrite`, then `fdatasync` (the level that syncs every batch). Pages dirtied through a
    /// mapping are write-protected again by each writeback, so every batch after a sync would
    /// take a page fault, and the segment's pages are written back from page tables: measured
    /// with `vecindex-bench durability`, 50-chunk documents from 4 writers went 1.7-2x faster
    /// this way. Nothing is faulted in ahead: those pages would be dirty zeros that each sync
    /// writes besides.
    Syscalls,
}

/// What a next segment is to be.
pub(crate) struct Spec {
    pub(crate) dir: PathBuf,
    pub(crate) header: Header,
    pub(crate) capacity: usize,
    pub(crate) durable_entries: bool,
    pub(crate) write_path: WritePath,
}

/// A segment as the helper sees it: made to a [`Spec`], handed over, or removed unused. (The
/// active segment, which sits above this file and posts the helper's work.)
pub(crate) trait Prepared: Send + Sized + 'static {
    /// Makes the segment `spec` asks for, its first pages faulted in if it is written through
    /// its mapping and `can_populate`; `None` if it cannot (P3: the leader makes it then).
    fn prepare(spec: &Spec, can_populate: bool) -> Option<Self>;
    fn number(&self) -> u64;
    /// Bytes left for records.
    fn room(&self) -> usize;
    /// Removes a segment that never held a record.
    fn discard(self);
}

struct Work<S> {
    populate: Vec<(Arc<MmapRaw>, Range<usize>)>,
    /// The next segment asked for, not yet started.
    wanted: Option<Spec>,
    /// The number of the segment being made, and whether the leader abandoned it.
    making: Option<(u64, bool)>,
    ready: Option<S>,
    retired: Vec<S>,
    stop: bool,
}

struct Shared<S> {
    work: Mutex<Work<S>>,
    changed: Condvar,
}

/// The helper thread (see the module docs); stopped and joined when dropped.
pub(crate) struct Ahead<S> {
    shared: Arc<Shared<S>>,
    thread: Option<JoinHandle<()>>,
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Work<S>> {
        self.work.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Work<S>>) -> MutexGuard<'a, Work<S>> {
        self.changed.wait(guard).unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<S: Prepared> Ahead<S> {
    pub(crate) fn start() -> std::io::Result<Self> {
        let work =
            Work { populate: Vec::new(), wanted: None, making: None, ready: None, retired: Vec::new(), stop: false };
        let shared = Arc::new(Shared { work: Mutex::new(work), changed: Condvar::new() });
        let helper = shared.clone();
        let thread = crate::sync::spawn("vecindex-log-ahead", move || run(&helper))?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// Asks for the pages of `range` in `map` to be faulted in.
    pub(crate) fn populate(&self, map: &Arc<MmapRaw>, range: Range<usize>) {
        self.shared.lock().populate.push((map.clone(), range));
        self.shared.changed.notify_all();
    }

    /// Asks for the next segment to be made (replacing a request not yet started).
    pub(crate) fn want_next(&self, spec: Spec) {
        self.shared.lock().wanted = Some(spec);
        self.shared.changed.notify_all();
    }

    /// The prepared segment `number` if it has room for `room` bytes; else `Err` with the number
    /// the caller makes itself: `number`, or the one above if the helper is making `number` now.
    pub(crate) fn take_next(&self, number: u64, room: usize) -> Result<S, u64> {
        let mut work = self.shared.lock();
        if work.wanted.as_ref().is_some_and(|spec| spec.header.number <= number) {
            work.wanted = None;
        }
        let unfit = match work.ready.take() {
            Some(segment) if segment.number() == number && segment.room() >= room => return Ok(segment),
            other => other,
        };
        let make = match &mut work.making {
            Some((making, abandoned)) if *making == number => {
                *abandoned = true;
                // An injected bug for the loom model: the leader makes the number the helper is
                // making too.
                if bug!("ahead_make_taken_number") { number } else { number + 1 }
            }
            _ => number,
        };
        drop(work);
        // Too small for this batch, or not the one wanted: it holds no record (P2).
        if let Some(segment) = unfit {
            segment.discard();
        }
        Err(make)
    }

    /// Drops `segment` on the helper.
    pub(crate) fn retire(&self, segment: S) {
        self.shared.lock().retired.push(segment);
        self.shared.changed.notify_all();
    }
}

impl<S> Drop for Ahead<S> {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        // (Never the helper itself: no segment it drops holds this handle.)
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run<S: Prepared>(shared: &Shared<S>) {
    let mut can_populate = true;
    loop {
        let mut work = shared.lock();
        while !work.stop && work.populate.is_empty() && work.retired.is_empty() && work.wanted.is_none() {
            work = shared.wait(work);
        }
        if work.stop {
            let unused = work.ready.take();
            let retired = std::mem::take(&mut work.retired);
            drop(work);
            drop(retired);
            if let Some(segment) = unused {
                segment.discard();
            }
            return;
        }
        let populate = std::mem::take(&mut work.populate);
        let retired = std::mem::take(&mut work.retired);
        drop(work);

        // The active segment's pages first: the leader is about to write them.
        for (map, range) in populate {
            if can_populate {
                can_populate = populate_pages(&map, range);
            }
        }
        let mut work = shared.lock();
        let wanted = work.wanted.take();
        if let Some(spec) = &wanted {
            work.making = Some((spec.header.number, false));
        }
        drop(work);
        if let Some(spec) = wanted {
            let made = S::prepare(&spec, can_populate);
            let mut work = shared.lock();
            let abandoned = work.making.take().is_some_and(|(_, abandoned)| abandoned);
            let stale = if abandoned { made } else { std::mem::replace(&mut work.ready, made) };
            drop(work);
            if let Some(segment) = stale {
                segment.discard();
            }
        }
        drop(retired);
    }
}

/// Faults `range` of `map` in writable; false if the kernel cannot (then no more are asked).
pub(crate) fn populate_pages(map: &MmapRaw, range: Range<usize>) -> bool {
    let page = page_size();
    let start = range.start / page * page;
    let end = range.end.min(map.len());
    if end <= start {
        return true;
    }
    match map.advise_range(Advice::PopulateWrite, start, end - start) {
        Ok(()) => true,
        // An old kernel (before 5.14) has no MADV_POPULATE_WRITE: the leader faults them in.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            tracing::debug!("no MADV_POPULATE_WRITE; log pages fault in as they are written");
            false
        }
        Err(e) => {
            tracing::debug!(error = %e, "cannot fault log pages in ahead");
            true
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system and touches no memory of ours.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}
