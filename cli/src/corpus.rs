//! The documents of a directory tree: which files count, their ids, their text.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::chunker::Format;

/// A document file found under the ingest root.
#[derive(Clone, Debug)]
pub struct DocumentFile {
    /// Its path relative to the root, with `/` separators: the document id in the index.
    pub id: String,
    pub path: PathBuf,
    pub format: Format,
}

/// Every Markdown, reStructuredText and text file under `root` (also gzipped), sorted by id.
/// Hidden files and directories are skipped; unreadable entries are reported to `skipped`.
pub fn walk(root: &Path, mut skipped: impl FnMut(&Path, String)) -> Vec<DocumentFile> {
    let mut files = Vec::new();
    let entries = walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                skipped(e.path().unwrap_or(root), e.to_string());
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let Some(format) = Format::of(&entry.file_name().to_string_lossy()) else { continue };
        let Ok(relative) = entry.path().strip_prefix(root) else { continue };
        let id = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        files.push(DocumentFile { id, path: entry.path().to_owned(), format });
    }
    files.sort_by(|a, b| a.id.cmp(&b.id));
    files
}

/// A file's bytes and their content hash (hex xxh3-128 of the bytes as stored).
pub fn read(file: &DocumentFile) -> std::io::Result<(Vec<u8>, String)> {
    let bytes = std::fs::read(&file.path)?;
    let hash = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes));
    Ok((bytes, hash))
}

/// A file's text: gunzipped if its name ends in `.gz`, invalid UTF-8 replaced.
pub fn text(file: &DocumentFile, bytes: &[u8]) -> std::io::Result<String> {
    if file.path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
        return Ok(String::from_utf8_lossy(&out).into_owned());
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}
