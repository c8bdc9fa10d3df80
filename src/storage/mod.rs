//! The storage seam: every byte a persist writes and an open reads goes through a
//! [`Directory`].
//!
//! A directory holds named, write-once files: a file is created whole under its name (or not at
//! all) and never changed after; `MANIFEST` is replaced only by an atomic rename over it. That
//! is what the snapshot commit needs from any storage (`persist::manifest`), and what object
//! storage can give later. [`LocalDirectory`] is a directory of the local file system, whose files
//! are mapped (memmap2) and searched in place; [`RamDirectory`] keeps them in memory, for tests.
//!
//! Every other module reaches files only through here; [`format`] defines the header and
//! checksums every file starts with.

#[cfg(any(test, feature = "testing"))]
mod faults;
pub mod format;
mod local;
#[cfg(feature = "object-store")]
pub(crate) mod object;
#[cfg(any(test, feature = "testing"))]
mod ram;

use std::fmt;
use std::path::{Path, PathBuf};

use rkyv::util::AlignedVec;

use crate::error::Result;
use crate::sync::Arc;

#[cfg(any(test, feature = "testing"))]
pub use faults::FaultyDirectory;
pub use local::LocalDirectory;
#[cfg(any(test, feature = "testing"))]
pub use ram::RamDirectory;

use format::ALIGN;

/// The current manifest of a local index directory (`persist::manifest` has the protocol).
pub const MANIFEST: &str = "MANIFEST";
/// The manifest before it, kept to fall back to.
pub const MANIFEST_PREV: &str = "MANIFEST.prev";

/// The manifest of `generation` on object storage: `MANIFEST.` and the generation in 20
/// digits, so that names sort as generations do. Each is written once, conditionally
/// (`storage::object`).
#[cfg_attr(not(feature = "object-store"), allow(dead_code))]
pub fn generation_name(generation: u64) -> String {
    format!("{MANIFEST}.{generation:020}")
}

/// The generation of a name [`generation_name`] made.
pub fn generation_of(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(MANIFEST)?.strip_prefix('.')?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

/// What a path is, for the checks before a persist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    Missing,
    Dir,
    /// Something other than a directory.
    Other,
}

/// How a file will be read, passed on to the storage (the kernel's read-ahead, for local files).
#[derive(Clone, Copy, Debug)]
pub enum Access {
    /// Read once from start to end (checksums, then loading a FAISS index).
    Sequential,
    /// Scanned by searches: read ahead now, keep it.
    Scanned,
}

/// The directory lock: persists into one directory never interleave, whichever process or
/// index runs them, and an open never reads a directory mid-collection.
#[derive(Clone, Copy, Debug)]
pub enum LockMode {
    /// A persist's (creating the lock file if needed).
    Exclusive,
    /// An open's. Without `create` (or where it may not write), a missing lock file means no
    /// lock: nobody can persist there without making one first, or the caller asked to change
    /// nothing.
    Shared { create: bool },
}

/// A held directory lock; dropping it releases it.
pub struct DirGuard(#[allow(dead_code)] Box<dyn Send>);

impl DirGuard {
    pub(crate) fn new(held: impl Send + 'static) -> Self {
        Self(Box::new(held))
    }
}

/// A file's bytes, read in place where the storage can (a read-only mapping of a local file),
/// else shared in memory. Its start is aligned to a page (mapped) or to 64 bytes (in memory).
pub struct FileBytes {
    bytes: Bytes,
    /// The storage already found the body's checksum to match the header's, for these very
    /// bytes (`format::check_file` then skips it).
    body_checked: bool,
}

enum Bytes {
    Mapped(memmap2::Mmap),
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
    Shared(Arc<AlignedVec<ALIGN>>),
}

impl FileBytes {
    pub(crate) fn mapped(map: memmap2::Mmap) -> Self {
        Self { bytes: Bytes::Mapped(map), body_checked: false }
    }

    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
    pub(crate) fn shared(bytes: Arc<AlignedVec<ALIGN>>) -> Self {
        Self { bytes: Bytes::Shared(bytes), body_checked: false }
    }

    /// Marks the body's checksum as checked against the header's (see the field).
    #[cfg_attr(not(feature = "object-store"), allow(dead_code))]
    pub(crate) fn with_body_checked(mut self) -> Self {
        self.body_checked = true;
        self
    }

    /// Whether the storage already checked the body's checksum.
    pub(crate) fn body_checked(&self) -> bool {
        self.body_checked
    }

    /// Whether these bytes are mapped from a file (rather than held in memory).
    pub(crate) fn is_mapped(&self) -> bool {
        matches!(self.bytes, Bytes::Mapped(_))
    }
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Mapped(map) => map,
            Bytes::Shared(bytes) => bytes,
        }
    }
}

impl fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileBytes({} bytes{})", self.len(), if self.is_mapped() { ", mapped" } else { "" })
    }
}

/// Where an index's files live. See the module docs for what it promises.
///
/// Errors are [`Error::Io`](crate::Error::Io) naming the file's path (the directory's path
/// joined with the file's name), except an empty file opened, which is
/// [`Error::Corrupt`](crate::Error::Corrupt).
pub trait Directory: Send + Sync + fmt::Debug {
    /// Where the directory is: for messages and errors.
    fn path(&self) -> &Path;
    /// Whether the directory exists.
    fn kind(&self) -> Result<PathKind>;
    /// Creates the directory (and whatever holds it) if needed, durably.
    fn create(&self) -> Result<()>;
    /// The files in it, with their lengths.
    fn list(&self) -> Result<Vec<(String, u64)>>;
    /// A file's bytes, read in place where possible.
    fn open(&self, name: &str, access: Access) -> Result<FileBytes>;
    /// The first `len` bytes of a file (fewer if it is shorter).
    fn read_prefix(&self, name: &str, len: usize) -> Result<Vec<u8>>;
    /// Creates `name` holding `bytes`, so that a crash at any point leaves no such file or the
    /// complete file, replacing a file of that name. Durable only after [`Directory::sync`].
    fn write(&self, name: &str, bytes: &[u8]) -> Result<()>;
    /// Makes `to` a second name of `from`, replacing `to` atomically.
    fn link(&self, from: &str, to: &str) -> Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync(&self) -> Result<()>;
    /// Removes a file; a file already gone is not an error.
    fn remove(&self, name: &str) -> Result<()>;
    /// Moves a file aside (never deleting it), for a human to look at; returns where it went.
    fn quarantine(&self, name: &str) -> Result<PathBuf>;
    /// Takes the directory lock, waiting for a conflicting holder.
    fn lock(&self, mode: LockMode) -> Result<DirGuard>;

    /// The names of the manifests an open may read, newest first: the current one, then the
    /// one to fall back to. A local directory has `MANIFEST` and `MANIFEST.prev`; object
    /// storage one manifest per generation (`persist::manifest`).
    fn manifest_names(&self) -> Result<Vec<String>> {
        Ok(vec![MANIFEST.to_owned(), MANIFEST_PREV.to_owned()])
    }

    /// Commits `bytes` as the manifest of `generation`: steps 1-3 of the protocol in
    /// `persist::manifest`. `previous_is_current` says whether `MANIFEST` is the valid manifest
    /// to keep as `MANIFEST.prev`. Storage whose commits are conditional answers
    /// [`Error::Conflict`](crate::Error::Conflict) when another writer took `generation`.
    fn commit_manifest(&self, _generation: u64, bytes: &[u8], previous_is_current: bool) -> Result<()> {
        if previous_is_current {
            self.link(MANIFEST, MANIFEST_PREV)?;
        }
        self.write(MANIFEST, bytes)?;
        self.sync()
    }

    /// For storage that several writers may share (object storage): the generation this
    /// process last opened or committed here, which the next commit must follow. `None`: the
    /// directory lock keeps writers apart instead.
    fn base_generation(&self) -> Option<u64> {
        None
    }

    /// Records the generation this process opened or committed (see
    /// [`base_generation`](Self::base_generation)).
    fn set_base_generation(&self, _generation: u64) {}

    /// The files a collection after a commit may remove, with their lengths: all of them here;
    /// on object storage only those older than a grace period, since another writer may be
    /// uploading files its next manifest will name.
    fn collectable(&self) -> Result<Vec<(String, u64)>> {
        self.list()
    }

    /// Starts one persist's or one open's work here: until the guard drops, the storage may
    /// answer [`list`](Self::list) (and what derives from it) from one listing taken at its
    /// first use, kept up to date with this process's own writes and removals. Object storage
    /// does, because each listing is a request; a local directory lists afresh each time.
    /// Sessions nest.
    fn session(&self) -> DirGuard {
        DirGuard::new(())
    }

    /// Whether a file of that name can be read.
    fn exists(&self, name: &str) -> bool {
        self.read_prefix(name, 0).is_ok()
    }

    /// A whole file, or `None` if it does not exist.
    fn read_if_exists(&self, name: &str) -> Result<Option<FileBytes>> {
        match self.open(name, Access::Sequential) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(crate::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
