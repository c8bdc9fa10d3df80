//! One writer per index directory: an exclusive advisory lock (flock) on `WRITER` in the
//! directory, held for the life of the index that writes there and released on drop, or by the
//! kernel when the process dies. The file says who holds it, for the error another opener gets.
//!
//! `WRITER` is not `LOCK`: `LOCK` serializes persists and collections against opens for the
//! moment each runs, and read-only opens take it shared; holding it for a writer's life would
//! shut them out.

#![allow(clippy::disallowed_types)] // a lock file of the local file system

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::error::{Error, Result};

pub(crate) const WRITER: &str = "WRITER";

/// A held writer lock; dropping it releases it.
#[derive(Debug)]
pub(crate) struct WriterLock {
    _file: File,
}

impl WriterLock {
    /// Takes the writer lock of `index_dir` (which must exist), without waiting.
    ///
    /// # Errors
    /// [`Error::Locked`] naming the holder if another index (in this process or another) holds
    /// it; [`Error::Io`] if the file cannot be made.
    pub(crate) fn take(index_dir: &Path) -> Result<Self> {
        Self::take_with(index_dir, true).map(|lock| lock.expect("created"))
    }

    /// The lock shared, for a persist into a directory that is not its index's own: it fails
    /// while a writer holds the directory, and shares with other such persists (which `LOCK`
    /// serializes). Only where a writer has been (its `WRITER` file exists): a directory
    /// without one has no writer, and gets no file from this.
    pub(crate) fn share_if_present(index_dir: &Path) -> Result<Option<Self>> {
        Self::take_with(index_dir, false)
    }

    fn take_with(index_dir: &Path, exclusive: bool) -> Result<Option<Self>> {
        let create = exclusive;
        let path = index_dir.join(WRITER);
        let io = |e| Error::io(&path, e);
        let file = File::options().read(true).write(true).create(create).truncate(false).open(&path);
        let mut file = match file {
            Ok(file) => file,
            Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let locked = if exclusive { file.try_lock() } else { file.try_lock_shared() };
        match locked {
            Ok(()) if !exclusive => return Ok(Some(Self { _file: file })),
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "another writer (it has not said who yet)".to_owned()
                } else {
                    holder.to_owned()
                };
                return Err(Error::Locked { path: index_dir.to_owned(), holder });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let who = format!("process {} on {} since {since} (unix time)\n", std::process::id(), host.trim());
        // Best effort: the lock holds whether or not the note is written.
        let _ = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| file.write_all(who.as_bytes()));
        Ok(Some(Self { _file: file }))
    }
}
