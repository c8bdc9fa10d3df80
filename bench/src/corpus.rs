//! Real text for the benchmarks that embed: Debian's Python 3.11 documentation sources
//! (python3.11-doc, installed by `scripts/setup`), as the documents of the seed's benchmark
//! (about 50 KB each) and as the chunks of the MiniLM recall dataset.

use std::path::{Path, PathBuf};

use crate::chunker::{self, ChunkSize, Format};

/// Where python3.11-doc puts its reStructuredText sources.
pub const PYDOC: &str = "/usr/share/doc/python3.11/html/_sources";

/// The `.rst.txt` files under `root`, sorted by path.
fn sources(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.to_string_lossy().ends_with(".rst.txt") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn missing(root: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e} (scripts/setup installs python3.11-doc)", root.display()))
}

/// `count` documents of about `bytes` bytes each, cut from the corpus read in order at line
/// boundaries (the seed benchmarked 100 Markdown documents of 50 KB). Fewer if the corpus ends.
pub fn documents(root: &Path, count: usize, bytes: usize) -> std::io::Result<Vec<String>> {
    let mut docs = Vec::with_capacity(count);
    let mut current = String::with_capacity(bytes + 4096);
    for path in sources(root).map_err(|e| missing(root, e))? {
        for line in std::fs::read_to_string(&path)?.lines() {
            current.push_str(line);
            current.push('\n');
            if current.len() >= bytes {
                docs.push(std::mem::replace(&mut current, String::with_capacity(bytes + 4096)));
                if docs.len() == count {
                    return Ok(docs);
                }
            }
        }
    }
    Ok(docs)
}

/// A document in chunks, as `vecindex ingest --embedder hashing` cuts it (headings, 1200
/// characters with the heading path, overlap 150), each as it is embedded (heading path, text).
/// Kept in characters for every embedder so that the benchmarks' datasets stay the same.
pub fn chunks(text: &str) -> Vec<String> {
    chunker::chunk(text, Format::Rst, ChunkSize::default()).iter().map(chunker::Piece::embedded).collect()
}

/// Every chunk of every file of the corpus, in file order, as `vecindex ingest` would embed them.
pub fn all_chunks(root: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for path in sources(root).map_err(|e| missing(root, e))? {
        out.extend(chunks(&std::fs::read_to_string(&path)?));
    }
    Ok(out)
}
