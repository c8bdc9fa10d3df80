//! The library's only use of `std::fs`: atomic replacement of a file, and reading one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Replaces `dir/name` with `bytes` so that a crash at any point leaves either the old file or
/// the new one, complete: write a temp file in the same directory, fsync it, rename it over the
/// target, fsync the directory (so the rename itself is durable).
pub fn atomic_write(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let target = dir.join(name);
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp); // best effort: the temp file is garbage either way
        return Err(Error::io(&temp, e));
    }
    fs::rename(&temp, &target).map_err(|e| Error::io(&target, e))?;
    sync_dir(dir)?;
    Ok(target)
}

/// Makes a directory's entries (renames, creations) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

/// Reads a whole file.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| Error::io(path, e))
}
