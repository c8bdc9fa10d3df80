//! The active log segment: a file allocated ahead on the disk and mapped into memory, into which
//! the group commit's leader copies each batch. A copy into a shared mapping is in the kernel's
//! page cache as it is made, so a batch survives the process dying without a system call per
//! batch; `fdatasync` makes it survive a power loss.
//!
//! # Protocol (crash consistency of one batch)
//!
//! Only the leader writes (the group's G1), at the segment's end `len`, which is 8-byte aligned
//! (the header is 48 bytes and every record a multiple of 8):
//!
//! 1. copy the batch except its first 8 bytes (the first record's length and length check);
//! 2. a release fence, then store those 8 bytes as one aligned `u64`: the batch's commit word;
//! 3. advance `len`.
//!
//! - A1: the bytes at `len` and after are zeros until a batch is committed there (the file is
//!   allocated zeroed, and nothing else writes it).
//! - A2: a process that dies before step 2 leaves a zero length word at the batch's start, which
//!   replay reads as the end of the segment (`record::decode`): none of the batch's members had
//!   been acknowledged. One that dies after it leaves the batch whole, since step 1 came first in
//!   program order and the fence keeps the compiler and the CPU from moving the commit above it.
//! - A3: a batch that does not fit starts the next segment first (twice as large, up to
//!   `MAX_CAPACITY`); if the disk is full that fails before anything is copied, and the batch
//!   fails whole.
//!
//! With a helper ([`ahead`](super::ahead)), the leader asks it to fault in the pages ahead of
//! `len` and to make the next segment once half of this one is used, and hands it full segments
//! to unmap; the helper never touches the bytes (its P1), so A1-A3 hold as above.

#![allow(clippy::disallowed_types)] // the log is local files by nature

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use memmap2::MmapRaw;

use crate::error::{Error, Result};
use crate::sync::Arc;
use crate::wal::ahead::{Ahead, Spec};
use crate::wal::group::Sink;
use crate::wal::segment::{self, HEADER, Header};

/// The first segment's size; each next one doubles, up to [`MAX_CAPACITY`]. (Small under the
/// model checkers, whose executions each create segments.)
#[cfg(not(any(vecindex_loom, vecindex_shuttle)))]
pub(crate) const FIRST_CAPACITY: usize = 1 << 20;
#[cfg(any(vecindex_loom, vecindex_shuttle))]
pub(crate) const FIRST_CAPACITY: usize = 16 << 10;
pub(crate) const MAX_CAPACITY: usize = 64 << 20;
/// The smallest segment made when the disk has no room for a larger one.
const MIN_CAPACITY: usize = 4 << 10;
/// How far ahead of the end the helper keeps pages faulted in.
const POPULATE_AHEAD: usize = 2 << 20;

/// See the module docs.
pub(crate) struct ActiveSegment {
    pub(crate) file: Arc<File>,
    /// `None` only while dropping. Shared with the helper while it faults pages in.
    map: Option<Arc<MmapRaw>>,
    pub(crate) path: PathBuf,
    dir: PathBuf,
    pub(crate) header: Header,
    /// Bytes in use: the header and the committed batches.
    len: usize,
    capacity: usize,
    /// Whether segments' directory entries are made durable as they are created.
    durable_entries: bool,
    /// Cut the file to `len` when dropped (not for a full segment: freeing its few spare bytes
    /// would cost the writer waiting on the next batch a truncation of the file's extents).
    cut_on_drop: bool,
    /// The helper, if any, and whether it faults pages in ahead (not for a log that syncs every
    /// batch: pages faulted in writable are dirty, and each fsync would write them too).
    ahead: Option<Arc<Ahead>>,
    populate_ahead: bool,
    /// Bytes from the start whose pages were asked to be faulted in.
    populated: usize,
    /// Whether the next segment was asked of the helper.
    asked_next: bool,
}

impl ActiveSegment {
    /// Creates segment `header.number` of `capacity` bytes in the log directory `dir`.
    ///
    /// On a disk too full for `capacity`, it takes what it can get down to `at_least` bytes (an
    /// index on a nearly full disk still opens, and its writes fail one by one, with a typed
    /// error, when they do not fit).
    pub(crate) fn create(
        dir: &Path,
        header: Header,
        capacity: usize,
        at_least: usize,
        durable_entries: bool,
    ) -> Result<Self> {
        let mut capacity = capacity.max(at_least);
        loop {
            match Self::create_exactly(dir, header, capacity, durable_entries) {
                Err(e) if e.is_storage_full() && capacity / 2 >= at_least.max(MIN_CAPACITY) => capacity /= 2,
                made => return made,
            }
        }
    }

    fn create_exactly(dir: &Path, header: Header, capacity: usize, durable_entries: bool) -> Result<Self> {
        let file = segment::create(dir, &header, capacity, durable_entries)?;
        let path = dir.join(segment::file_name(header.number));
        // Only the index holding the directory's writer lock writes this file, and it is cut to
        // its length only in `drop`, past which nothing reads or writes the mapping.
        let map = MmapRaw::map_raw(&file).map_err(|e| Error::io(&path, e))?;
        Ok(Self {
            file: Arc::new(file),
            map: Some(Arc::new(map)),
            path,
            dir: dir.to_owned(),
            header,
            len: HEADER,
            capacity: capacity.max(HEADER),
            durable_entries,
            cut_on_drop: true,
            ahead: None,
            populate_ahead: false,
            populated: 0,
            asked_next: false,
        })
    }

    /// Works with `ahead` from now on (see the module docs); `populate` says whether it faults
    /// pages in.
    pub(crate) fn with_helper(mut self, ahead: Arc<Ahead>, populate: bool) -> Self {
        self.ahead = Some(ahead);
        self.populate_ahead = populate;
        self.look_ahead();
        self
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes left for records.
    pub(crate) fn room(&self) -> usize {
        self.capacity - self.len
    }

    pub(crate) fn map(&self) -> &Arc<MmapRaw> {
        self.map.as_ref().expect("mapped until dropped")
    }

    pub(crate) fn set_populated(&mut self, bytes: usize) {
        self.populated = bytes;
    }

    /// Removes a segment that never held a record (one the helper made and nobody used).
    pub(crate) fn discard(self) {
        let path = self.path.clone();
        drop(self);
        // (A persist may have removed it already, as older than the segment it started.)
        if let Err(e) =
            std::fs::remove_file(&path).or_else(|e| if e.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
        {
            tracing::warn!(error = %e, path = %path.display(), "cannot remove an unused log segment");
        }
    }

    /// The next segment's capacity: twice this one's, up to `MAX_CAPACITY`.
    fn next_capacity(&self) -> usize {
        (self.capacity * 2).min(MAX_CAPACITY)
    }

    /// Posts the helper's next work, if any is due: pages ahead of `len`, and the next segment
    /// once half of this one is used.
    fn look_ahead(&mut self) {
        let Some(ahead) = &self.ahead else { return };
        if self.populate_ahead && self.populated < self.capacity && self.len + POPULATE_AHEAD / 2 > self.populated {
            let end = (self.len + POPULATE_AHEAD).min(self.capacity);
            ahead.populate(self.map.as_ref().expect("mapped until dropped"), self.populated..end);
            self.populated = end;
        }
        if !self.asked_next && self.len * 2 >= self.capacity {
            self.asked_next = true;
            ahead.want_next(Spec {
                dir: self.dir.clone(),
                header: Header { number: self.header.number + 1, ..self.header },
                capacity: self.next_capacity(),
                durable_entries: self.durable_entries,
                populate: if self.populate_ahead { POPULATE_AHEAD } else { 0 },
            });
        }
    }

    /// Installs the next segment: the helper's if it made that one with room for `room` bytes,
    /// else one `make` creates with the header given; hands the old one to the helper to drop.
    fn install(&mut self, room: usize, make: impl FnOnce(&Self, Header) -> Result<Self>) -> Result<()> {
        let prepared = match &self.ahead {
            Some(ahead) => ahead.take_next(self.header.number + 1, room),
            None => Err(self.header.number + 1),
        };
        let mut next = match prepared {
            Ok(next) => next,
            Err(number) => make(self, Header { number, ..self.header })?,
        };
        next.ahead = self.ahead.clone();
        next.populate_ahead = self.populate_ahead;
        let old = std::mem::replace(self, next);
        match &self.ahead {
            Some(ahead) => ahead.retire(old),
            None => drop(old),
        }
        self.look_ahead();
        Ok(())
    }

    /// Starts the next segment (a persist's rotation); returns its number and the log directory.
    pub(crate) fn rotate(&mut self) -> Result<(u64, PathBuf)> {
        self.install(0, |old, header| Self::create(&old.dir, header, old.capacity, MIN_CAPACITY, old.durable_entries))?;
        Ok((self.header.number, self.dir.clone()))
    }

    /// Starts the next segment, with room for `batch` bytes at least (A3).
    fn next(&mut self, batch: usize) -> io::Result<()> {
        self.cut_on_drop = false;
        let made = self.install(batch, |old, header| {
            let capacity = old.next_capacity().max((HEADER + batch).next_power_of_two());
            Self::create(&old.dir, header, capacity, HEADER + batch, old.durable_entries)
        });
        made.map_err(|e| {
            self.cut_on_drop = true;
            match e {
                Error::Io { source, .. } => source,
                other => io::Error::other(other.to_string()),
            }
        })
    }
}

impl Sink for ActiveSegment {
    fn append(&mut self, batch: &[u8]) -> io::Result<()> {
        debug_assert!(batch.len() >= 16 && batch.len().is_multiple_of(8), "whole records, each a multiple of 8 bytes");
        if self.len + batch.len() > self.capacity {
            self.next(batch.len())?;
        }
        let at = self.len;
        let base = self.map.as_ref().expect("mapped until dropped").as_mut_ptr();
        // 1.
        // SAFETY: `at + batch.len()` is within the mapping (checked against `capacity`, its
        // length, above); only this thread (the group's leader) writes the mapping, and nothing
        // holds a reference into it (the helper only advises the kernel on its pages, P1).
        unsafe { std::ptr::copy_nonoverlapping(batch[8..].as_ptr(), base.add(at + 8), batch.len() - 8) };
        // 2. (A2)
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        let word = u64::from_ne_bytes(batch[..8].try_into().expect("8 bytes"));
        // SAFETY: as above, and `at` is 8-byte aligned (the mapping is page aligned; the header
        // and every record are multiples of 8 bytes): one aligned u64 store.
        unsafe { base.add(at).cast::<u64>().write_volatile(word) };
        // 3.
        self.len += batch.len();
        self.look_ahead();
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        // fdatasync writes back the pages the mapping dirtied, as it does those write(2) did.
        self.file.sync_data()
    }
}

impl Drop for ActiveSegment {
    fn drop(&mut self) {
        drop(self.map.take());
        // Give the allocated space past the end back: a closed segment is as long as its data.
        if !self.cut_on_drop {
            return;
        }
        if let Err(e) = self.file.set_len(self.len as u64) {
            tracing::warn!(error = %e, path = %self.path.display(), "cannot cut a log segment to its length");
        }
    }
}
