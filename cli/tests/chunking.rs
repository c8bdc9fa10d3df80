//! Chunking for MiniLM with the real tokenizer: every chunk of the Python documentation
//! (python3.11-doc's reStructuredText sources) and of this repository's Markdown, as `ingest`
//! embeds it (heading path, newline, text: `Piece::embedded`), fits the window of 256 word pieces,
//! and the chunks hold every word of their document. `src/chunker.rs` is compiled in here, as the
//! bench crate does (so its unit tests run here too). Needs the model files
//! (`scripts/fetch-minilm`); skipped, saying so, without them.
//!
//! `cargo test --release -p vecindex-cli --features minilm --test chunking -- --nocapture`
//! (`VECINDEX_CHUNK_ALL=1`: all 497 Python files rather than every eighth).
#![cfg(feature = "minilm")]

#[path = "../src/chunker.rs"]
#[allow(dead_code)]
mod chunker;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use vecindex::embed::{Embedder, MiniLmEmbedder};

use chunker::{ChunkSize, Format, Piece, chunk_for};

fn model() -> Option<MiniLmEmbedder> {
    let default = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/models/all-MiniLM-L6-v2");
    let dir = std::env::var("VECINDEX_MINILM_DIR").unwrap_or_else(|_| default.to_owned());
    if !["tokenizer.json", "model.safetensors"].iter().all(|f| Path::new(&dir).join(f).exists()) {
        eprintln!("skipped: no MiniLM model in {dir} (scripts/fetch-minilm)");
        return None;
    }
    Some(MiniLmEmbedder::new(dir))
}

/// Files under `root` whose name ends with `suffix`, sorted.
fn files(root: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
}

/// Chunks `docs` for MiniLM at `size` and checks every chunk and the cover; the seconds spent
/// chunking.
fn check(embedder: &MiniLmEmbedder, docs: &[(PathBuf, Format, String)], size: ChunkSize) -> (f64, usize) {
    let started = Instant::now();
    let chunked: Vec<Vec<Piece>> =
        docs.iter().map(|(_, format, text)| chunk_for(text, *format, size, embedder).unwrap()).collect();
    let secs = started.elapsed().as_secs_f64();
    let mut largest = 0;
    for ((path, format, text), pieces) in docs.iter().zip(&chunked) {
        for piece in pieces {
            let n = embedder.count_tokens(&piece.embedded()).unwrap();
            largest = largest.max(n);
            assert!(n <= size.max, "{}: {n} word pieces > {}: {piece:?}", path.display(), size.max);
        }
        let kept: HashSet<&str> = pieces.iter().flat_map(|p| words(&p.text)).collect();
        let lost: Vec<&str> = words(text).filter(|w| !kept.contains(w)).collect();
        assert!(lost.is_empty(), "{} ({format:?}): words in no chunk: {lost:?}", path.display());
    }
    let n: usize = chunked.iter().map(Vec::len).sum();
    eprintln!(
        "{} documents, {n} chunks of at most {} word pieces (largest {largest}) in {secs:.2} s",
        docs.len(),
        size.max
    );
    (secs, n)
}

#[test]
fn minilm_chunks_fit_the_window_and_cover_the_documents() {
    let Some(embedder) = model() else { return };
    let pydoc = Path::new("/usr/share/doc/python3.11/html/_sources");
    let all = files(pydoc, ".rst.txt");
    // Every eighth file (about 60) unless VECINDEX_CHUNK_ALL is set.
    let step = if std::env::var_os("VECINDEX_CHUNK_ALL").is_some() { 1 } else { 8 };
    let mut docs: Vec<(PathBuf, Format, String)> =
        all.iter().step_by(step).map(|p| (p.clone(), Format::Rst, std::fs::read_to_string(p).unwrap())).collect();
    if docs.is_empty() {
        eprintln!("no Python documentation in {} (python3.11-doc): Markdown only", pydoc.display());
    }
    let repo = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let markdown: Vec<PathBuf> =
        files(&repo.join("docs"), ".md").into_iter().chain([repo.join("README.md")]).filter(|p| p.exists()).collect();
    assert!(!markdown.is_empty(), "the repository's Markdown");
    docs.extend(markdown.iter().map(|p| (p.clone(), Format::Markdown, std::fs::read_to_string(p).unwrap())));
    embedder.count_tokens("").unwrap(); // load the model before timing
    let (_, n) = check(&embedder, &docs, ChunkSize { max: 256, overlap: 32 });
    assert!(n > docs.len(), "documents are cut");
    // Smaller windows cut more, and still fit.
    check(&embedder, &docs[..docs.len().min(12)], ChunkSize { max: 64, overlap: 8 });
}

/// `vecindex ingest --embedder minilm-candle`: `--max-tokens` above the window, or `--max-chars`,
/// is refused before anything is created; within the window it ingests.
#[test]
fn ingest_refuses_chunks_larger_than_the_window() {
    let Some(embedder) = model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (docs, index) = (dir.path().join("docs"), dir.path().join("index"));
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("a.md"), "# A\n\nsome text about mutexes and locks\n").unwrap();
    let (d, i) = (docs.to_str().unwrap(), index.to_str().unwrap());
    let vecindex = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vecindex"))
            .args(["ingest", d, "--index", i, "--quiet", "--embedder", "minilm-candle"])
            .args(args)
            .env("VECINDEX_MINILM_DIR", embedder.dir())
            .output()
            .unwrap()
    };
    for (args, message) in [
        (&["--max-tokens", "257"][..], "--max-tokens 257 is more than the window of minilm-l6-v2: 256 word pieces"),
        (&["--max-tokens", "16"][..], "--max-tokens 16 is too small"),
        (&["--max-chars", "1000"][..], "--max-chars is for embedders without a window"),
        (&["--overlap", "129"][..], "--overlap 129 is more than half of --max-tokens 256"),
    ] {
        let out = vecindex(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(message), "{args:?}: {out:?}");
        assert!(!index.exists(), "nothing created");
    }
    let out = vecindex(&["--max-tokens", "64", "--overlap", "8"]);
    assert!(out.status.success(), "{out:?}");
}
