//! The library's only use of `std::fs`: atomic file creation, directory fsync, listing,
//! quarantine, the directory lock, and read-only mappings.
//!
//! Every step that changes the disk goes through [`failpoint::step`], so tests can make the
//! n-th step of a persist fail with `ENOSPC` and check that nothing acknowledged is lost.

#![allow(clippy::disallowed_types)] // this is where the library touches files

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::storage::format::HEADER_LEN;

/// Injected I/O failures for tests: the n-th disk-changing step on this thread fails.
#[doc(hidden)]
pub mod failpoint {
    use std::cell::Cell;

    thread_local! {
        /// Steps left before the injected failure; `None`: no failure armed.
        static BUDGET: Cell<Option<usize>> = const { Cell::new(None) };
        static STEPS: Cell<usize> = const { Cell::new(0) };
    }

    /// Disarms the failpoint when dropped.
    pub struct Armed(());

    impl Drop for Armed {
        fn drop(&mut self) {
            BUDGET.with(|b| b.set(None));
        }
    }

    /// Makes the disk-changing step number `n` (0-based, counted from now) on this thread fail
    /// with `ENOSPC`, as a full disk would.
    pub fn fail_step(n: usize) -> Armed {
        BUDGET.with(|b| b.set(Some(n)));
        Armed(())
    }

    /// How many disk-changing steps this thread has run (create, write, fsync, rename, link,
    /// remove): a test counts a persist's steps with it.
    pub fn steps() -> usize {
        STEPS.with(Cell::get)
    }

    /// Called before every disk-changing step.
    pub(crate) fn step() -> std::io::Result<()> {
        STEPS.with(|s| s.set(s.get() + 1));
        BUDGET.with(|b| match b.get() {
            Some(0) => {
                b.set(None);
                Err(std::io::Error::from_raw_os_error(28)) // ENOSPC
            }
            Some(n) => {
                b.set(Some(n - 1));
                Ok(())
            }
            None => Ok(()),
        })
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// Creates `dir/name` holding `bytes` so that a crash at any point leaves either no such file
/// or the complete file: write a temp file in the same directory, fsync it, rename it into
/// place. The caller fsyncs the directory once after a batch of these ([`sync_dir`]), before
/// anything refers to the new files.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let target = dir.join(name);
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        failpoint::step()?;
        let mut file = File::create(&temp)?;
        failpoint::step()?;
        file.write_all(bytes)?;
        failpoint::step()?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp); // best effort: the temp file is garbage either way
        return Err(Error::io(&temp, e));
    }
    let renamed = failpoint::step().and_then(|()| fs::rename(&temp, &target));
    if let Err(e) = renamed {
        let _ = fs::remove_file(&temp);
        return Err(Error::io(&target, e));
    }
    Ok(())
}

/// Makes `dir/to` a second name of the file `dir/from`, replacing `dir/to` atomically (a hard
/// link under a temp name, renamed over `to`). Falls back to a copy where hard links are not
/// supported.
pub fn link_replace(dir: &Path, from: &str, to: &str) -> Result<()> {
    let (source, target) = (dir.join(from), dir.join(to));
    let temp = dir.join(format!(".{to}.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&temp);
    failpoint::step().map_err(io(&temp))?;
    if fs::hard_link(&source, &temp).is_err() {
        let bytes = fs::read(&source).map_err(io(&source))?;
        return write_file(dir, to, &bytes);
    }
    let renamed = failpoint::step().and_then(|()| fs::rename(&temp, &target));
    if let Err(e) = renamed {
        let _ = fs::remove_file(&temp);
        return Err(Error::io(&target, e));
    }
    Ok(())
}

/// Makes a directory's entries (renames, creations, removals) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    failpoint::step().map_err(io(dir))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Creates `dir` (and its parents) if needed.
pub fn create_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    failpoint::step().map_err(io(dir))?;
    fs::create_dir_all(dir).map_err(io(dir))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// What a path is, for the checks before a persist.
pub enum PathKind {
    Missing,
    Dir,
    Other,
}

pub fn path_kind(path: &Path) -> Result<PathKind> {
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(PathKind::Dir),
        Ok(_) => Ok(PathKind::Other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PathKind::Missing),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The regular files in `dir`, with their lengths.
pub fn list(dir: &Path) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let Ok(meta) = entry.metadata() else { continue }; // vanished meanwhile
        if meta.is_file()
            && let Ok(name) = entry.file_name().into_string()
        {
            out.push((name, meta.len()));
        }
    }
    Ok(out)
}

/// Removes a file; a file already gone is not an error.
pub fn remove(path: &Path) -> Result<()> {
    failpoint::step().map_err(io(path))?;
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

/// Moves `dir/name` into `dir/quarantine/` (never deleting it), under a name not taken there.
/// Returns where it went.
pub fn quarantine(dir: &Path, name: &str) -> Result<PathBuf> {
    let quarantine = dir.join("quarantine");
    failpoint::step().map_err(io(&quarantine))?;
    fs::create_dir_all(&quarantine).map_err(io(&quarantine))?;
    let mut target = quarantine.join(name);
    let mut n = 1;
    while target.exists() {
        target = quarantine.join(format!("{name}.{n}"));
        n += 1;
    }
    failpoint::step().map_err(io(&target))?;
    fs::rename(dir.join(name), &target).map_err(io(&target))?;
    sync_dir(&quarantine)?;
    sync_dir(dir)?;
    Ok(target)
}

/// Reads a whole file.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(io(path))
}

/// Reads a whole file, or `None` if it does not exist.
pub fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The first [`HEADER_LEN`] bytes of a file (fewer if it is shorter).
pub fn read_header(path: &Path) -> Result<Vec<u8>> {
    let mut head = Vec::with_capacity(HEADER_LEN);
    File::open(path).and_then(|f| f.take(HEADER_LEN as u64).read_to_end(&mut head)).map_err(io(path))?;
    Ok(head)
}

/// A file mapped read-only.
pub struct Mapped(memmap2::Mmap);

impl std::ops::Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// How a mapping will be read, passed on to the kernel.
#[derive(Clone, Copy)]
pub enum Access {
    /// Read once from start to end (checksums, then loading a FAISS index).
    Sequential,
    /// Scanned by searches: read ahead now, keep it.
    Scanned,
}

/// Maps a file read-only, advising the kernel how it will be read.
///
/// FAISS's own `IO_FLAG_MMAP_IFC` maps with random-access advice, which made the first cold
/// query on a 1.5 GB flat index take 22 s against 2.1 s for a plain read: data that is scanned
/// wants read-ahead, so rows files are mapped with `WillNeed` and sequential advice.
pub fn map(path: &Path, access: Access) -> Result<Mapped> {
    let file = File::open(path).map_err(io(path))?;
    let len = file.metadata().map_err(io(path))?.len();
    if len == 0 {
        return Err(Error::corrupt(path, "empty file"));
    }
    // SAFETY: the mapping is read-only, and vecindex never writes to a file after renaming it
    // into place (files are created whole under a temp name and never rewritten: a changed
    // segment is a new file with a new name). Another process truncating or writing the file
    // while it is mapped would break that; the index directory is vecindex's own, as a
    // database's data directory is.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io(path))?;
    let advice: &[memmap2::Advice] = match access {
        Access::Sequential => &[memmap2::Advice::Sequential, memmap2::Advice::WillNeed],
        // Not `Sequential`: the kernel may then drop pages soon after they are read, and
        // searches read them again and again.
        Access::Scanned => &[memmap2::Advice::WillNeed],
    };
    for &advice in advice {
        // Advice only: a kernel that ignores it reads the same bytes, slower.
        let _ = map.advise(advice);
    }
    Ok(Mapped(map))
}

/// An advisory lock on `dir/LOCK`, held for the length of a persist (exclusive) or an open
/// (shared): persists into one directory never interleave, whichever process or index runs
/// them, and an open never reads a directory mid-collection.
pub struct DirLock {
    _held: Option<File>,
}

impl DirLock {
    /// The exclusive lock of a persist (creating `LOCK` if needed).
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join("LOCK");
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path);
        let file = file.map_err(io(&path))?;
        file.lock().map_err(io(&path))?;
        Ok(Self { _held: Some(file) })
    }

    /// The shared lock of an open. Without `create`, or in a directory it may not write, a
    /// missing `LOCK` means no lock (nobody can persist there without making one first... or
    /// the caller asked to change nothing).
    pub fn acquire_shared(dir: &Path, create: bool) -> Result<Self> {
        let path = dir.join("LOCK");
        let file = OpenOptions::new().read(true).write(create).create(create).truncate(false).open(&path);
        let file = match file {
            Ok(file) => file,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied) => {
                return Ok(Self { _held: None });
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        file.lock_shared().map_err(io(&path))?;
        Ok(Self { _held: Some(file) })
    }
}
