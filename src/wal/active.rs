//! The active log segment: a file allocated ahead on the disk and mapped into memory, into which
//! the group commit's leader copies each batch. A copy into a shared mapping is in the kernel's
//! page cache as it is made, so a batch survives the process dying without a system call per
//! batch. At the level that syncs every batch, the leader writes with `pwrite` instead (see
//! [`WritePath`]), and `fdatasync` makes the batch survive a power loss.
//!
//! # Protocol (crash consistency of one batch)
//!
//! Only the leader writes (the group's G1), at the segment's end `len`, which is 8-byte aligned
//! (the header is 48 bytes and every record a multiple of 8):
//!
//! 1. copy the batch except its first 8 bytes (the first record's length and length check);
//! 2. a release fence, then store those 8 bytes as one aligned `u64`: the batch's commit word
//!    (with `pwrite`: one call for step 1, then one for these 8 bytes);
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
//! - A4: a batch whose sync fails (EIO: the disk lost it, or may have), or whose `pwrite`
//!   fails, fails whole too, so it is erased before the group reports the failure: its members apply nothing, and a later open
//!   must not replay it. (Whether its pages reached the disk is unknown after such an error;
//!   the zeros written over them are, with the next batch's sync.)
//!
//! With a helper ([`ahead`](super::ahead)), the leader asks it to fault in the pages ahead of
//! `len` and to make the next segment once half of this one is used, and hands it full segments
//! to unmap; the helper never touches the bytes (its P1), so A1-A3 hold as above.

#![allow(clippy::disallowed_types)] // the log is local files by nature

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::MmapRaw;

use crate::error::{Error, Result};
use crate::sync::{Arc, bug};
use crate::wal::ahead::{self, Ahead, POPULATE_AHEAD, Prepared, Spec, WritePath};
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
    /// `None` only while dropping. Shared with the helper while it faults pages in.
    map: Option<Arc<MmapRaw>>,
    pub(crate) path: PathBuf,
    dir: PathBuf,
    pub(crate) header: Header,
    /// Bytes in use: the header and the committed batches.
    len: usize,
    /// Where the last batch starts (erased if its sync fails: A4).
    last_batch: usize,
    capacity: usize,
    /// Whether segments' directory entries are made durable as they are created.
    durable_entries: bool,
    /// Cut the file to `len` when dropped (not for a full segment: freeing its few spare bytes
    /// would cost the writer waiting on the next batch a truncation of the file's extents).
    cut_on_drop: bool,
    /// The helper, if any.
    ahead: Option<Arc<Ahead<Self>>>,
    write_path: WritePath,
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
            last_batch: HEADER,
            capacity: capacity.max(HEADER),
            durable_entries,
            cut_on_drop: true,
            ahead: None,
            write_path: WritePath::Mapping,
            populated: 0,
            asked_next: false,
        })
    }

    /// Writes batches by `write_path` from now on (this segment and the ones after it).
    pub(crate) fn writing_by(mut self, write_path: WritePath) -> Self {
        self.write_path = write_path;
        self
    }

    /// Works with `ahead` from now on (see the module docs).
    pub(crate) fn with_helper(mut self, ahead: Arc<Ahead<Self>>) -> Self {
        self.ahead = Some(ahead);
        self.look_ahead();
        self
    }

    /// Takes the last batch back (A4): its commit word first, so that from then on replay ends
    /// where it starts, then the rest of its bytes, restoring A1 for the batches after it.
    fn erase_last_batch(&mut self) {
        let at = self.last_batch;
        if at >= self.len {
            return;
        }
        match self.write_path {
            WritePath::Mapping => {
                let base = self.map().as_mut_ptr();
                // SAFETY: `at..len` is the last batch, within the mapping; only this thread (the
                // group's leader, which holds the sink) writes the mapping, and nothing holds a
                // reference into it (as in `append`). `at` is 8-byte aligned (as in `append`).
                unsafe {
                    base.add(at).cast::<u64>().write_volatile(0);
                    std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
                    std::ptr::write_bytes(base.add(at + 8), 0, self.len - at - 8);
                }
            }
            WritePath::Syscalls => {
                let erased = self
                    .file
                    .write_all_at(&[0; 8], at as u64)
                    .and_then(|()| self.file.write_all_at(&vec![0; self.len - at - 8], at as u64 + 8));
                if let Err(e) = erased {
                    // Replay then reports the batch as damage rather than replaying it.
                    tracing::warn!(error = %e, path = %self.path.display(), "cannot erase a failed log batch");
                }
            }
        }
        self.len = at;
    }

    fn map(&self) -> &Arc<MmapRaw> {
        self.map.as_ref().expect("mapped until dropped")
    }

    /// Steps 1 and 2 of the protocol through the mapping.
    fn copy_in(&self, at: usize, batch: &[u8]) {
        let base = self.map().as_mut_ptr();
        // 1.
        // SAFETY: `at + batch.len()` is within the mapping (checked against `capacity`, its
        // length, by `append`); only this thread (the group's leader) writes the mapping, and
        // nothing holds a reference into it (the helper only advises the kernel on its pages, P1).
        unsafe { std::ptr::copy_nonoverlapping(batch[8..].as_ptr(), base.add(at + 8), batch.len() - 8) };
        // 2. (A2)
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        let word = u64::from_ne_bytes(batch[..8].try_into().expect("8 bytes"));
        // SAFETY: as above, and `at` is 8-byte aligned (the mapping is page aligned; the header
        // and every record are multiples of 8 bytes): one aligned u64 store.
        unsafe { base.add(at).cast::<u64>().write_volatile(word) };
    }

    /// The next segment's capacity: twice this one's, up to `MAX_CAPACITY`.
    fn next_capacity(&self) -> usize {
        (self.capacity * 2).min(MAX_CAPACITY)
    }

    /// Posts the helper's next work, if any is due: pages ahead of `len`, and the next segment
    /// once half of this one is used.
    fn look_ahead(&mut self) {
        let Some(ahead) = &self.ahead else { return };
        if self.write_path == WritePath::Mapping
            && self.populated < self.capacity
            && self.len + POPULATE_AHEAD / 2 > self.populated
        {
            let end = (self.len + POPULATE_AHEAD).min(self.capacity);
            ahead.populate(self.map(), self.populated..end);
            self.populated = end;
        }
        if !self.asked_next && self.len * 2 >= self.capacity {
            self.asked_next = true;
            ahead.want_next(Spec {
                dir: self.dir.clone(),
                header: Header { number: self.header.number + 1, ..self.header },
                capacity: self.next_capacity(),
                durable_entries: self.durable_entries,
                write_path: self.write_path,
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
        next.write_path = self.write_path;
        let mut old = std::mem::replace(self, next);
        // Not the helper's handle: the helper drops `old`, and the handle's last drop joins it.
        // (An injected bug for the loom model keeps it.)
        if !bug!("ahead_retire_with_handle") {
            old.ahead = None;
        }
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

impl Prepared for ActiveSegment {
    fn prepare(spec: &Spec, can_populate: bool) -> Option<Self> {
        let segment = match Self::create(&spec.dir, spec.header, spec.capacity, 0, spec.durable_entries) {
            Ok(segment) => segment,
            Err(e) => {
                tracing::debug!(error = %e, "cannot prepare the next log segment; the writer will make it");
                return None;
            }
        };
        let mut segment = segment.writing_by(spec.write_path);
        if spec.write_path == WritePath::Mapping && can_populate {
            let end = POPULATE_AHEAD.min(segment.capacity);
            if ahead::populate_pages(segment.map(), 0..end) {
                segment.populated = end;
            }
        }
        Some(segment)
    }

    fn number(&self) -> u64 {
        self.header.number
    }

    fn room(&self) -> usize {
        self.capacity - self.len
    }

    fn discard(self) {
        let path = self.path.clone();
        drop(self);
        // (A persist may have removed it already, as older than the segment it started.)
        if let Err(e) =
            std::fs::remove_file(&path).or_else(|e| if e.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
        {
            tracing::warn!(error = %e, path = %path.display(), "cannot remove an unused log segment");
        }
    }
}

impl Sink for ActiveSegment {
    fn append(&mut self, batch: &[u8]) -> io::Result<()> {
        debug_assert!(batch.len() >= 16 && batch.len().is_multiple_of(8), "whole records, each a multiple of 8 bytes");
        if self.len + batch.len() > self.capacity {
            self.next(batch.len())?;
        }
        let at = self.len;
        match self.write_path {
            WritePath::Mapping => self.copy_in(at, batch),
            WritePath::Syscalls => {
                // 1. and 2. (A2): the kernel copies each call's bytes into the page cache
                // before the next call starts.
                let written = self
                    .file
                    .write_all_at(&batch[8..], at as u64 + 8)
                    .and_then(|()| self.file.write_all_at(&batch[..8], at as u64));
                if let Err(e) = written {
                    // Some of its bytes may be in the file past `len`, against A1.
                    self.last_batch = at;
                    self.len = at + batch.len();
                    self.erase_last_batch();
                    return Err(e);
                }
            }
        }
        // 3.
        self.last_batch = at;
        self.len += batch.len();
        self.look_ahead();
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        // fdatasync writes back the pages the mapping dirtied, as it does those write(2) did.
        let synced = self.file.sync_data();
        if synced.is_err() {
            self.erase_last_batch();
        }
        synced
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

#[cfg(all(test, not(any(vecindex_loom, vecindex_shuttle))))]
mod tests {
    use super::*;
    use crate::wal::record::{self, Op, Record};
    use crate::wal::replay;

    const DIM: usize = 2;
    const UID: u128 = 7;

    fn remove(seq: u64, chunk: &str) -> Vec<u8> {
        let mut bytes = Vec::new();
        record::encode(seq, Op::RemoveChunk(chunk), &mut bytes);
        bytes
    }

    fn replayed(index_dir: &Path) -> (Vec<(u64, Record)>, replay::LogReport) {
        let replay = replay::read(index_dir, UID, DIM, 0).unwrap();
        (replay.records, replay.report)
    }

    const WRITE_PATHS: [WritePath; 2] = [WritePath::Mapping, WritePath::Syscalls];

    fn segment(index_dir: &Path, capacity: usize, write_path: WritePath, helper: bool) -> ActiveSegment {
        let header = Header { dim: DIM as u32, index_uid: UID, number: 0 };
        let segment = ActiveSegment::create(&segment::log_dir(index_dir), header, capacity, 0, false)
            .unwrap()
            .writing_by(write_path);
        if helper { segment.with_helper(Arc::new(Ahead::start().unwrap())) } else { segment }
    }

    #[test]
    fn a_batch_whose_sync_failed_is_erased_and_the_log_goes_on() {
        for write_path in WRITE_PATHS {
            a_failed_batch_is_erased(write_path);
        }
    }

    fn a_failed_batch_is_erased(write_path: WritePath) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = segment(dir.path(), 4096, write_path, false);
        log.append(&remove(1, "a")).unwrap();
        let failed = [remove(2, "b"), remove(3, "long-enough-to-outlast-the-next-one")].concat();
        log.append(&failed).unwrap();
        log.erase_last_batch(); // as `sync` does when fdatasync fails
        log.append(&remove(4, "c")).unwrap();
        drop(log);
        let (records, report) = replayed(dir.path());
        let seqs: Vec<u64> = records.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, [1, 4], "{write_path:?}: the failed batch is gone, what came after it is there");
        assert_eq!(report.torn_bytes, 0, "{write_path:?}: and nothing of it is left behind: {report:?}");
        assert!(report.damage.is_none(), "{write_path:?}: {report:?}");
    }

    #[test]
    fn records_keep_their_order_across_segments_the_helper_makes() {
        for write_path in WRITE_PATHS {
            let dir = tempfile::tempdir().unwrap();
            let mut log = segment(dir.path(), 4096, write_path, true);
            let ids: Vec<String> = (0..2000).map(|i| format!("chunk-{i}-{}", "x".repeat(i % 50))).collect();
            for (seq, id) in ids.iter().enumerate() {
                log.append(&remove(seq as u64, id)).unwrap();
                if seq % 500 == 0 {
                    log.rotate().unwrap(); // as a persist does
                }
            }
            drop(log); // stops the helper; an unused segment it made is removed
            let (records, report) = replayed(dir.path());
            assert!(report.damage.is_none() && report.torn_bytes == 0, "{write_path:?}: {report:?}");
            let read: Vec<&str> = records
                .iter()
                .map(|(_, r)| match r {
                    Record::RemoveChunk(id) => id.as_str(),
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(read, ids, "{write_path:?}: every record once, in order");
            assert!(report.segments > 4, "{write_path:?}: {} segments", report.segments);
        }
    }
}
