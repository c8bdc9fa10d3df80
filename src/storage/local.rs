//! [`LocalDirectory`]: a directory of the local file system, the library's only use of
//! `std::fs`. Files are created under a temp name, fsynced and renamed into place; they are read
//! through read-only mappings.

#![allow(clippy::disallowed_types)] // this is where the library touches files

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::storage::{Access, DirGuard, Directory, FileBytes, LockMode, PathKind};

/// A directory of the local file system (see the module docs).
#[derive(Clone, Debug)]
pub struct LocalDirectory {
    path: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

impl LocalDirectory {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The name of a temp file for `name` in this directory (its process's own).
    fn temp(&self, name: &str) -> PathBuf {
        self.path.join(format!(".{name}.tmp-{}", std::process::id()))
    }
}

/// Makes a directory's entries durable.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl Directory for LocalDirectory {
    fn path(&self) -> &Path {
        &self.path
    }

    fn kind(&self) -> Result<PathKind> {
        match fs::metadata(&self.path) {
            Ok(m) if m.is_dir() => Ok(PathKind::Dir),
            Ok(_) => Ok(PathKind::Other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PathKind::Missing),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }

    fn create(&self) -> Result<()> {
        if self.path.is_dir() {
            return Ok(());
        }
        fs::create_dir_all(&self.path).map_err(io(&self.path))?;
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.path).map_err(io(&self.path))? {
            let entry = entry.map_err(io(&self.path))?;
            let Ok(meta) = entry.metadata() else { continue }; // vanished meanwhile
            if meta.is_file()
                && let Ok(name) = entry.file_name().into_string()
            {
                out.push((name, meta.len()));
            }
        }
        Ok(out)
    }

    /// Maps the file read-only, advising the kernel how it will be read.
    ///
    /// FAISS's own `IO_FLAG_MMAP_IFC` maps with random-access advice, which made the first cold
    /// query on a 1.5 GB flat index take 22 s against 2.1 s for a plain read: data that is scanned
    /// wants read-ahead, so rows files are mapped with `WillNeed` and sequential advice.
    fn open(&self, name: &str, access: Access) -> Result<FileBytes> {
        let path = self.path.join(name);
        let file = File::open(&path).map_err(io(&path))?;
        let len = file.metadata().map_err(io(&path))?.len();
        if len == 0 {
            return Err(Error::corrupt(&path, "empty file"));
        }
        // SAFETY: the mapping is read-only, and vecindex never writes to a file after renaming
        // it into place (files are created whole under a temp name and never rewritten: a
        // changed segment is a new file with a new name). Another process truncating or writing
        // the file while it is mapped would break that; the index directory is vecindex's own,
        // as a database's data directory is.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io(&path))?;
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
        Ok(FileBytes::mapped(map))
    }

    fn read_prefix(&self, name: &str, len: usize) -> Result<Vec<u8>> {
        let path = self.path.join(name);
        let mut head = Vec::with_capacity(len);
        File::open(&path).and_then(|f| f.take(len as u64).read_to_end(&mut head)).map_err(io(&path))?;
        Ok(head)
    }

    /// A temp file in the same directory, fsynced, renamed into place. The caller fsyncs the
    /// directory once after a batch of these ([`Directory::sync`]), before anything refers to
    /// the new files.
    fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let target = self.path.join(name);
        let temp = self.temp(name);
        let written = File::create(&temp).and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
        if let Err(e) = written {
            let _ = fs::remove_file(&temp); // best effort: the temp file is garbage either way
            return Err(Error::io(&temp, e));
        }
        if let Err(e) = fs::rename(&temp, &target) {
            let _ = fs::remove_file(&temp);
            return Err(Error::io(&target, e));
        }
        Ok(())
    }

    /// A hard link under a temp name, renamed over `to`; a copy where hard links are not
    /// supported.
    fn link(&self, from: &str, to: &str) -> Result<()> {
        let (source, target) = (self.path.join(from), self.path.join(to));
        let temp = self.temp(to);
        let _ = fs::remove_file(&temp);
        if fs::hard_link(&source, &temp).is_err() {
            let bytes = fs::read(&source).map_err(io(&source))?;
            return self.write(to, &bytes);
        }
        if let Err(e) = fs::rename(&temp, &target) {
            let _ = fs::remove_file(&temp);
            return Err(Error::io(&target, e));
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        sync_dir(&self.path)
    }

    fn remove(&self, name: &str) -> Result<()> {
        let path = self.path.join(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&path, e)),
            _ => Ok(()),
        }
    }

    /// Into `quarantine/` beside the files, under a name not taken there.
    fn quarantine(&self, name: &str) -> Result<PathBuf> {
        let quarantine = self.path.join("quarantine");
        fs::create_dir_all(&quarantine).map_err(io(&quarantine))?;
        let mut target = quarantine.join(name);
        let mut n = 1;
        while target.exists() {
            target = quarantine.join(format!("{name}.{n}"));
            n += 1;
        }
        fs::rename(self.path.join(name), &target).map_err(io(&target))?;
        sync_dir(&quarantine)?;
        sync_dir(&self.path)?;
        Ok(target)
    }

    /// An advisory lock (flock) on `LOCK`, so it also holds between processes.
    fn lock(&self, mode: LockMode) -> Result<DirGuard> {
        let path = self.path.join("LOCK");
        match mode {
            LockMode::Exclusive => {
                let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path);
                let file = file.map_err(io(&path))?;
                file.lock().map_err(io(&path))?;
                Ok(DirGuard::new(file))
            }
            LockMode::Shared { create } => {
                let file = OpenOptions::new().read(true).write(create).create(create).truncate(false).open(&path);
                let file = match file {
                    Ok(file) => file,
                    Err(e)
                        if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied) =>
                    {
                        return Ok(DirGuard::new(()));
                    }
                    Err(e) => return Err(Error::io(&path, e)),
                };
                file.lock_shared().map_err(io(&path))?;
                Ok(DirGuard::new(file))
            }
        }
    }
}
