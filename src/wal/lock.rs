//! One writer per index directory: an exclusive advisory lock (flock) on `WRITER` in the
//! directory, held for the life of the index that writes there and released on drop, or by the
//! kernel when the process dies. The file says who holds it, for the error another opener gets.
//!
//! `WRITER` is not `LOCK`: `LOCK` serializes persists and collections against opens for the
//! moment each runs, and read-only opens take it shared; holding it for a writer's life would
//! shut them out.
//!
//! A flock belongs to the open file, and a child process this one forks holds a copy of every
//! open file until it execs (or exits), so for that moment a lock this process released is still
//! held. An opener that finds the lock held while the file names this process as its last
//! holder, and no index of this process holds it, waits for that moment to pass (at most
//! [`FORK_GRACE`]) instead of failing at once.

#![allow(clippy::disallowed_types)] // a lock file of the local file system

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

pub(crate) const WRITER: &str = "WRITER";

/// How long an opener waits for a lock this process released but a forked child still holds.
const FORK_GRACE: Duration = Duration::from_secs(2);

/// The lock files (device, inode) an index of this process holds exclusively.
static HELD: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<(u64, u64)>> {
    HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A held writer lock; dropping it releases it.
#[derive(Debug)]
pub(crate) struct WriterLock {
    _file: File,
    /// The file's (device, inode), if held exclusively.
    exclusive: Option<(u64, u64)>,
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        if let Some(id) = self.exclusive {
            held().retain(|&h| h != id);
        }
        // `_file` closes after this, and the kernel releases the lock.
    }
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
        let meta = file.metadata().map_err(io)?;
        let id = (meta.dev(), meta.ino());
        let started = Instant::now();
        loop {
            let locked = if exclusive { file.try_lock() } else { file.try_lock_shared() };
            match locked {
                Ok(()) if !exclusive => return Ok(Some(Self { _file: file, exclusive: None })),
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.rewind().and_then(|()| file.read_to_string(&mut holder));
                    let holder = holder.trim();
                    let ours = holder.starts_with(&format!("process {} ", std::process::id()));
                    if ours && !held().contains(&id) && started.elapsed() < FORK_GRACE {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    let holder = if holder.is_empty() {
                        "another writer (it has not said who yet)".to_owned()
                    } else {
                        holder.to_owned()
                    };
                    return Err(Error::Locked { path: index_dir.to_owned(), holder });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        held().push(id);
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let who = format!("process {} on {} since {since} (unix time)\n", std::process::id(), host.trim());
        // Best effort: the lock holds whether or not the note is written.
        let _ = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| file.write_all(who.as_bytes()));
        Ok(Some(Self { _file: file, exclusive: Some(id) }))
    }
}
