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

#![allow(clippy::disallowed_types)] // the log is local files by nature

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use crate::error::{Error, Result};
use crate::sync::Arc;
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

/// See the module docs.
pub(crate) struct ActiveSegment {
    pub(crate) file: Arc<File>,
    /// `None` only while dropping.
    map: Option<MmapMut>,
    pub(crate) path: PathBuf,
    dir: PathBuf,
    header: Header,
    /// Bytes in use: the header and the committed batches.
    len: usize,
    capacity: usize,
    /// Whether segments' directory entries are made durable as they are created.
    durable_entries: bool,
    /// Cut the file to `len` when dropped (not for a full segment: freeing its few spare bytes
    /// would cost the writer waiting on the next batch a truncation of the file's extents).
    cut_on_drop: bool,
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
        // SAFETY: the file was just created by this process under a name only the index that
        // holds the directory's writer lock writes; nothing truncates it while it is mapped (a
        // segment is cut to its length only after it is unmapped, in `drop`).
        let map = unsafe { MmapMut::map_mut(&file) }.map_err(|e| Error::io(&path, e))?;
        Ok(Self {
            file: Arc::new(file),
            map: Some(map),
            path,
            dir: dir.to_owned(),
            header,
            len: HEADER,
            capacity: capacity.max(HEADER),
            durable_entries,
            cut_on_drop: true,
        })
    }

    /// Starts the next segment (a persist's rotation); returns its number and the log directory.
    pub(crate) fn rotate(&mut self) -> Result<(u64, PathBuf)> {
        let header = Header { number: self.header.number + 1, ..self.header };
        *self = Self::create(&self.dir, header, self.capacity, MIN_CAPACITY, self.durable_entries)?;
        Ok((self.header.number, self.dir.clone()))
    }

    /// Starts the next segment, with room for `batch` bytes at least (A3).
    fn next(&mut self, batch: usize) -> io::Result<()> {
        let capacity = (self.capacity * 2).min(MAX_CAPACITY).max((HEADER + batch).next_power_of_two());
        let header = Header { number: self.header.number + 1, ..self.header };
        let next =
            Self::create(&self.dir, header, capacity, HEADER + batch, self.durable_entries).map_err(|e| match e {
                Error::Io { source, .. } => source,
                other => io::Error::other(other.to_string()),
            })?;
        self.cut_on_drop = false;
        *self = next; // the full one is unmapped as it drops
        Ok(())
    }
}

impl Sink for ActiveSegment {
    fn append(&mut self, batch: &[u8]) -> io::Result<()> {
        debug_assert!(batch.len() >= 16 && batch.len().is_multiple_of(8), "whole records, each a multiple of 8 bytes");
        if self.len + batch.len() > self.capacity {
            self.next(batch.len())?;
        }
        let at = self.len;
        let map = self.map.as_mut().expect("mapped until dropped");
        // 1.
        map[at + 8..at + batch.len()].copy_from_slice(&batch[8..]);
        // 2. (A2)
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        let word = u64::from_ne_bytes(batch[..8].try_into().expect("8 bytes"));
        // SAFETY: `at` is within the mapping (checked against `capacity`, the mapping's length,
        // above) and 8-byte aligned (the mapping is page aligned; the header and every record
        // are multiples of 8 bytes), so this is one aligned u64 store into memory the map owns
        // and only this thread (the group's leader) writes.
        unsafe { map.as_mut_ptr().add(at).cast::<u64>().write_volatile(word) };
        // 3.
        self.len += batch.len();
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
