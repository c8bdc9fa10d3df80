//! [`RamDirectory`]: an index directory in memory, for tests.
//!
//! It keeps the promises [`Directory`] makes the way a file system does after every `sync`
//! (nothing here is lost: there is no crash to survive), and its locks behave as the local
//! directory's advisory locks do across processes: any number of shared holders, or one
//! exclusive.

#![allow(clippy::disallowed_types)] // a test double, not a protocol: std's Mutex and Condvar

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use crate::sync::Arc as SharedBytes;

use rkyv::util::AlignedVec;

use crate::error::{Error, Result};
use crate::storage::format::ALIGN;
use crate::storage::{Access, DirGuard, Directory, FileBytes, LockMode, PathKind};

/// An index directory in memory. Clones share the same files.
#[derive(Clone, Debug, Default)]
pub struct RamDirectory {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// For error messages only: nothing is on disk.
    path: PathBuf,
    files: Mutex<Files>,
    lock: Arc<LockState>,
}

#[derive(Debug, Default)]
struct Files {
    created: bool,
    files: BTreeMap<String, SharedBytes<AlignedVec<ALIGN>>>,
    quarantined: Vec<String>,
}

/// Holders of the directory lock: shared holders, or one exclusive.
#[derive(Debug, Default)]
struct LockState {
    held: Mutex<(usize, bool)>,
    released: Condvar,
}

/// Releases its hold on the lock when dropped.
struct Hold {
    state: Arc<LockState>,
    exclusive: bool,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut held = self.state.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.exclusive {
            held.1 = false;
        } else {
            held.0 -= 1;
        }
        self.state.released.notify_all();
    }
}

impl RamDirectory {
    /// An empty directory that does not exist yet (a persist creates it); `path` names it in
    /// errors.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { inner: Arc::new(Inner { path: path.into(), ..Inner::default() }) }
    }

    fn files(&self) -> std::sync::MutexGuard<'_, Files> {
        self.inner.files.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn missing(&self, name: &str) -> Error {
        let path = self.inner.path.join(name);
        Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    }

    /// Replaces the bytes of file `name` (for tests that damage files).
    pub fn overwrite(&self, name: &str, bytes: &[u8]) {
        let mut aligned = AlignedVec::<ALIGN>::new();
        aligned.extend_from_slice(bytes);
        self.files().files.insert(name.to_owned(), SharedBytes::new(aligned));
    }

    /// The names of the files moved aside by an open.
    pub fn quarantined(&self) -> Vec<String> {
        self.files().quarantined.clone()
    }
}

impl Directory for RamDirectory {
    fn path(&self) -> &Path {
        &self.inner.path
    }

    fn kind(&self) -> Result<PathKind> {
        Ok(if self.files().created { PathKind::Dir } else { PathKind::Missing })
    }

    fn create(&self) -> Result<()> {
        self.files().created = true;
        Ok(())
    }

    fn list(&self) -> Result<Vec<(String, u64)>> {
        Ok(self.files().files.iter().map(|(name, bytes)| (name.clone(), bytes.len() as u64)).collect())
    }

    fn open(&self, name: &str, _access: Access) -> Result<FileBytes> {
        let bytes = self.files().files.get(name).cloned().ok_or_else(|| self.missing(name))?;
        if bytes.is_empty() {
            return Err(Error::corrupt(self.inner.path.join(name), "empty file"));
        }
        Ok(FileBytes::shared(bytes))
    }

    fn read_prefix(&self, name: &str, len: usize) -> Result<Vec<u8>> {
        let bytes = self.files().files.get(name).cloned().ok_or_else(|| self.missing(name))?;
        Ok(bytes[..len.min(bytes.len())].to_vec())
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.overwrite(name, bytes);
        Ok(())
    }

    fn link(&self, from: &str, to: &str) -> Result<()> {
        let mut files = self.files();
        let bytes = files.files.get(from).cloned().ok_or_else(|| self.missing(from))?;
        files.files.insert(to.to_owned(), bytes);
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<()> {
        self.files().files.remove(name);
        Ok(())
    }

    fn quarantine(&self, name: &str) -> Result<PathBuf> {
        let mut files = self.files();
        files.files.remove(name).ok_or_else(|| self.missing(name))?;
        files.quarantined.push(name.to_owned());
        Ok(self.inner.path.join("quarantine").join(name))
    }

    fn lock(&self, mode: LockMode) -> Result<DirGuard> {
        let state = self.inner.lock.clone();
        let exclusive = matches!(mode, LockMode::Exclusive);
        let mut held = state.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while held.1 || (exclusive && held.0 > 0) {
            held = state.released.wait(held).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if exclusive {
            held.1 = true;
        } else {
            held.0 += 1;
        }
        drop(held);
        Ok(DirGuard::new(Hold { state, exclusive }))
    }
}
