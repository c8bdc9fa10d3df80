//! Log segment files: `wal/<number>.log` in the index directory, a header and then records
//! ([`record`](super::record)), appended and never rewritten.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "VXWALOG1"
//!      8     4  format version (u32, 2; 1 is read too: its writes have string metadata)
//!     12     4  the index's dimension (u32)
//!     16    16  the index's uid (u128): its lineage, as in the MANIFEST
//!     32     8  the segment's number (u64; segments are replayed in this order)
//!     40     8  xxh3-64 of bytes 0..40
//!     48        records
//! ```
//!
//! The number is 16 lowercase hex digits in the name too. A new segment is started when a
//! writable index opens (never appending after a tail a crash may have cut) and when a persist
//! into the index's own directory begins; a segment all of whose records a committed snapshot
//! holds is removed.

#![allow(clippy::disallowed_types)] // the log is local files by nature: appended, never mapped

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::storage::format::checksum;

const MAGIC: &[u8; 8] = b"VXWALOG1";
const VERSION: u32 = 2;
/// The oldest version read (its records differ only in their write kind: `record`).
const OLDEST_READ: u32 = 1;
pub(crate) const HEADER: usize = 48;
/// The log's directory inside the index directory.
pub(crate) const DIR: &str = "wal";

/// What a segment's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) dim: u32,
    pub(crate) index_uid: u128,
    pub(crate) number: u64,
}

impl Header {
    pub(crate) fn encode(&self) -> [u8; HEADER] {
        let mut out = [0u8; HEADER];
        out[0..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&self.dim.to_le_bytes());
        out[16..32].copy_from_slice(&self.index_uid.to_le_bytes());
        out[32..40].copy_from_slice(&self.number.to_le_bytes());
        let sum = checksum(&out[..40]);
        out[40..48].copy_from_slice(&sum.to_le_bytes());
        out
    }

    /// The header at the start of `bytes`; `Ok(None)` for a header a crash cut short (the
    /// segment was being created), an error naming what is wrong otherwise.
    pub(crate) fn decode(bytes: &[u8]) -> std::result::Result<Option<Self>, String> {
        let Some(head) = bytes.get(..HEADER) else {
            return if MAGIC.starts_with(&bytes[..bytes.len().min(8)]) || bytes.iter().all(|&b| b == 0) {
                Ok(None)
            } else {
                Err("a header cut short that does not start as a log segment's".into())
            };
        };
        if head.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        if &head[0..8] != MAGIC {
            return Err("not a log segment (bad magic)".into());
        }
        let u64_at = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().expect("8 bytes"));
        if checksum(&head[..40]) != u64_at(40) {
            return Err("the header fails its checksum".into());
        }
        let version = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
        if !(OLDEST_READ..=VERSION).contains(&version) {
            return Err(format!("log format version {version}; this build reads versions {OLDEST_READ} to {VERSION}"));
        }
        Ok(Some(Self {
            dim: u32::from_le_bytes(head[12..16].try_into().expect("4 bytes")),
            index_uid: u128::from_le_bytes(head[16..32].try_into().expect("16 bytes")),
            number: u64_at(32),
        }))
    }
}

/// The log directory of the index directory `index_dir`.
pub(crate) fn log_dir(index_dir: &Path) -> PathBuf {
    index_dir.join(DIR)
}

pub(crate) fn file_name(number: u64) -> String {
    format!("{number:016x}.log")
}

/// The segments in `log_dir`, by number; a missing directory has none. Other files are left
/// alone (and not read).
pub(crate) fn list(log_dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries = match fs::read_dir(log_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(log_dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(log_dir, e))?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        let number =
            name.strip_suffix(".log").filter(|hex| hex.len() == 16).and_then(|hex| u64::from_str_radix(hex, 16).ok());
        if let Some(number) = number {
            out.push((number, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Creates segment `header.number` in `log_dir` (and the directory), with `capacity` bytes
/// allocated on the disk (zeros after the header), so that appends into them cannot run out of
/// space. With `durable_entry` its directory entry is made durable (the levels that sync need
/// it; one that does not survives the process dying without it); its header and size become
/// durable with the first `fdatasync` of a record (a segment a power loss cut short of its
/// header reads as empty, and holds no acknowledged record then).
pub(crate) fn create(log_dir: &Path, header: &Header, capacity: usize, durable_entry: bool) -> Result<File> {
    if !log_dir.is_dir() {
        fs::create_dir_all(log_dir).map_err(|e| Error::io(log_dir, e))?;
        if let Some(parent) = log_dir.parent() {
            sync_dir(parent)?;
        }
    }
    let path = log_dir.join(file_name(header.number));
    let mut file =
        File::options().create_new(true).read(true).write(true).open(&path).map_err(|e| Error::io(&path, e))?;
    let made = allocate(&file, capacity.max(HEADER))
        .and_then(|()| file.write_all(&header.encode()))
        .map_err(|e| Error::io(&path, e))
        .and_then(|()| if durable_entry { sync_dir(log_dir) } else { Ok(()) });
    if let Err(e) = made {
        drop(file);
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    Ok(file)
}

/// Allocates the file's first `len` bytes on the disk (`posix_fallocate`): a full disk fails
/// here, not when a mapped page is first written.
fn allocate(file: &File, len: usize) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(len).map_err(|_| std::io::Error::other("log segment too large"))?;
    // SAFETY: posix_fallocate on a file descriptor this `File` owns and keeps open for the call;
    // it reads no memory of ours.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
        0 => Ok(()),
        errno => Err(std::io::Error::from_raw_os_error(errno)),
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

/// Removes segments (after a committed snapshot holds all their records).
pub(crate) fn remove(paths: &[PathBuf]) -> Result<()> {
    let mut dir = None;
    for path in paths {
        match fs::remove_file(path) {
            Ok(()) => dir = path.parent(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    dir.map_or(Ok(()), sync_dir)
}

/// Moves a damaged log file into the index directory's `quarantine/` (never deleting it).
pub(crate) fn quarantine(index_dir: &Path, file: &Path) -> Result<PathBuf> {
    let target_dir = index_dir.join("quarantine");
    fs::create_dir_all(&target_dir).map_err(|e| Error::io(&target_dir, e))?;
    let name = file.file_name().map_or_else(|| "log".into(), |n| n.to_string_lossy().into_owned());
    let mut target = target_dir.join(format!("wal-{name}"));
    let mut n = 1;
    while target.exists() {
        target = target_dir.join(format!("wal-{name}.{n}"));
        n += 1;
    }
    fs::rename(file, &target).map_err(|e| Error::io(file, e))?;
    sync_dir(&target_dir)?;
    if let Some(parent) = file.parent() {
        sync_dir(parent)?;
    }
    Ok(target)
}
