//! [`FaultyDirectory`]: a directory whose n-th change fails with `ENOSPC`, as a full disk would,
//! for tests that check nothing acknowledged is lost (feature `testing`).

#![allow(clippy::disallowed_types)] // a test double, not a protocol: std's atomics

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};
use crate::storage::{Access, DirGuard, Directory, FileBytes, LockMode, PathKind};

/// Wraps a directory; every call that changes it (create, write, link, sync, remove,
/// quarantine) is a step, and the armed step fails instead of running.
#[derive(Debug)]
pub struct FaultyDirectory<D> {
    inner: D,
    steps: AtomicUsize,
    /// The step that fails (`usize::MAX`: none).
    fail_at: AtomicUsize,
}

impl<D: Directory> FaultyDirectory<D> {
    pub fn new(inner: D) -> Self {
        Self { inner, steps: AtomicUsize::new(0), fail_at: AtomicUsize::new(usize::MAX) }
    }

    /// Makes step `n` (0-based, counted from now) fail with `ENOSPC`.
    pub fn fail_step(&self, n: usize) {
        self.fail_at.store(self.steps.load(Ordering::SeqCst) + n, Ordering::SeqCst);
    }

    /// The steps run so far.
    pub fn steps(&self) -> usize {
        self.steps.load(Ordering::SeqCst)
    }

    fn step(&self, name: &str) -> Result<()> {
        let step = self.steps.fetch_add(1, Ordering::SeqCst);
        if step == self.fail_at.load(Ordering::SeqCst) {
            return Err(Error::io(self.inner.path().join(name), std::io::Error::from_raw_os_error(28)));
        }
        Ok(())
    }
}

impl<D: Directory> Directory for FaultyDirectory<D> {
    fn path(&self) -> &Path {
        self.inner.path()
    }

    fn kind(&self) -> Result<PathKind> {
        self.inner.kind()
    }

    fn create(&self) -> Result<()> {
        self.step("")?;
        self.inner.create()
    }

    fn list(&self) -> Result<Vec<(String, u64)>> {
        self.inner.list()
    }

    fn open(&self, name: &str, access: Access) -> Result<FileBytes> {
        self.inner.open(name, access)
    }

    fn read_prefix(&self, name: &str, len: usize) -> Result<Vec<u8>> {
        self.inner.read_prefix(name, len)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.step(name)?;
        self.inner.write(name, bytes)
    }

    fn link(&self, from: &str, to: &str) -> Result<()> {
        self.step(to)?;
        self.inner.link(from, to)
    }

    fn sync(&self) -> Result<()> {
        self.step("")?;
        self.inner.sync()
    }

    fn remove(&self, name: &str) -> Result<()> {
        self.step(name)?;
        self.inner.remove(name)
    }

    fn quarantine(&self, name: &str) -> Result<PathBuf> {
        self.step(name)?;
        self.inner.quarantine(name)
    }

    fn lock(&self, mode: LockMode) -> Result<DirGuard> {
        self.inner.lock(mode)
    }

    fn session(&self) -> DirGuard {
        self.inner.session()
    }
}
