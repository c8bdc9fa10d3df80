//! `vecindex ingest`: a directory tree into an index, embedded on a pool of threads, added
//! concurrently, persisted every N documents or T seconds while the adding goes on.
//!
//! A file is a document whose id is its path relative to the root. A file whose content hash
//! is the one recorded in its chunks is skipped; a changed file replaces its document in one
//! atomic step; a document whose file vanished is removed. So the index mirrors the tree.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vecindex::embed::Embedder;
use vecindex::{Chunk, VectorIndex};

use crate::chunker::{self, ChunkSize};
use crate::corpus::{self, DocumentFile};

/// Metadata keys every chunk the CLI writes carries.
pub const META_PATH: &str = "path";
pub const META_HEADING: &str = "heading";
pub const META_HASH: &str = "hash";
pub const META_EMBEDDER: &str = "embedder";

/// How to ingest.
pub struct IngestOptions {
    pub root: PathBuf,
    pub index_path: PathBuf,
    pub threads: usize,
    /// Persist after this many documents were added or replaced...
    pub persist_every_docs: usize,
    /// ...or after this long, whichever comes first.
    pub persist_every: Duration,
    /// Chunk size in the embedder's unit (`ChunkSize::for_embedder`).
    pub chunk: ChunkSize,
    /// Texts per embedder call.
    pub batch: usize,
    pub progress: bool,
}

/// What an ingest did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestSummary {
    pub files: usize,
    pub added: usize,
    pub replaced: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub failed: usize,
    pub chunks: usize,
    pub persists: usize,
    pub stopped: bool,
}

/// Shared counters of a running ingest.
#[derive(Default)]
struct Counters {
    done: AtomicUsize,
    added: AtomicUsize,
    replaced: AtomicUsize,
    unchanged: AtomicUsize,
    failed: AtomicUsize,
    chunks: AtomicUsize,
}

/// The content hash recorded for each document of the index.
fn recorded_hashes(index: &VectorIndex) -> HashMap<String, String> {
    let mut hashes = HashMap::new();
    for doc in index.document_ids() {
        let first = index.chunk_ids(&doc).into_iter().next();
        if let Some(hash) = first
            .and_then(|id| index.chunk(&id))
            .and_then(|c| c.metadata.get(META_HASH).and_then(|v| v.as_str()).map(str::to_owned))
        {
            hashes.insert(doc, hash);
        }
    }
    hashes
}

/// Chunks of one file, embedded.
fn chunks_of(
    file: &DocumentFile,
    text: &str,
    hash: &str,
    options: &IngestOptions,
    embedder: &dyn Embedder,
) -> Result<Vec<Chunk>, String> {
    let pieces = chunker::chunk_for(text, file.format, options.chunk, embedder)?;
    // What is embedded is what the chunker sized: the heading path and the text.
    let inputs: Vec<String> = pieces.iter().map(chunker::Piece::embedded).collect();
    let mut vectors = Vec::with_capacity(inputs.len());
    for batch in inputs.chunks(options.batch.max(1)) {
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        vectors.extend(embedder.embed(&refs).map_err(|e| e.to_string())?);
    }
    Ok(pieces
        .into_iter()
        .zip(vectors)
        .enumerate()
        .map(|(i, (piece, vector))| {
            Chunk::new(format!("{}#{i}", file.id), file.id.clone(), vector)
                .with_text(piece.text)
                .with_meta(META_PATH, file.id.clone())
                .with_meta(META_HEADING, piece.heading)
                .with_meta(META_HASH, hash)
                .with_meta(META_EMBEDDER, embedder.name())
        })
        .collect())
}

/// One file: skip it if unchanged, else chunk, embed and add (replacing) it.
fn ingest_file(
    file: &DocumentFile,
    index: &VectorIndex,
    recorded: &HashMap<String, String>,
    options: &IngestOptions,
    embedder: &dyn Embedder,
    counters: &Counters,
) -> Result<(), String> {
    let (bytes, hash) = corpus::read(file).map_err(|e| e.to_string())?;
    let previous = recorded.get(&file.id);
    if previous == Some(&hash) {
        counters.unchanged.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    let text = corpus::text(file, &bytes).map_err(|e| e.to_string())?;
    let chunks = chunks_of(file, &text, &hash, options, embedder)?;
    let n = chunks.len();
    if n == 0 {
        index.remove_document(&file.id).map_err(|e| e.to_string())?;
    } else {
        index.add_document(&file.id, chunks).map_err(|e| e.to_string())?;
    }
    counters.chunks.fetch_add(n, Ordering::Relaxed);
    let counter = if previous.is_some() { &counters.replaced } else { &counters.added };
    counter.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn progress_bar(files: usize, enabled: bool) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(files as u64);
    let style =
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Ingests `options.root` into `index`, persisting into `options.index_path` as it goes and once
/// at the end. Stops early (after a final persist) when `stop` is set.
pub fn ingest(
    index: &Arc<VectorIndex>,
    embedder: &Arc<dyn Embedder>,
    options: &IngestOptions,
    stop: &AtomicBool,
) -> Result<IngestSummary, String> {
    let started = Instant::now();
    if !options.root.is_dir() {
        return Err(format!("{} is not a directory", options.root.display()));
    }
    let files = corpus::walk(&options.root, |path, e| tracing::warn!(path = %path.display(), error = %e, "skipped"));
    let recorded = recorded_hashes(index);
    // Documents whose file is gone.
    let present: std::collections::HashSet<&str> = files.iter().map(|f| f.id.as_str()).collect();
    let mut summary = IngestSummary { files: files.len(), ..IngestSummary::default() };
    for doc in recorded.keys().filter(|d| !present.contains(d.as_str())) {
        summary.removed += usize::from(index.remove_document(doc).map_err(|e| e.to_string())? > 0);
    }

    let counters = Counters::default();
    let queue = Mutex::new(files.iter());
    let bar = progress_bar(files.len(), options.progress);
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let persist = || index.persist(&options.index_path).map_err(|e| format!("persist: {e}"));
    std::thread::scope(|scope| -> Result<(), String> {
        for _ in 0..options.threads.max(1) {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let Some(file) = queue.lock().unwrap_or_else(|p| p.into_inner()).next() else { break };
                    if let Err(e) = ingest_file(file, index, &recorded, options, embedder.as_ref(), &counters) {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                        errors.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{}: {e}", file.id));
                    }
                    counters.done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // This thread persists while the workers add: writers never wait for it.
        let (mut last_persist, mut changed_at_last) = (Instant::now(), 0);
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let done = counters.done.load(Ordering::Relaxed);
            let changed = counters.added.load(Ordering::Relaxed) + counters.replaced.load(Ordering::Relaxed);
            let chunks = counters.chunks.load(Ordering::Relaxed);
            bar.set_position(done as u64);
            bar.set_message(format!(
                "{chunks} chunks, {:.0} chunks/s, {} persists",
                chunks as f64 / started.elapsed().as_secs_f64().max(1e-3),
                summary.persists
            ));
            // Stopping: the workers finish the file they are on and take no other; leaving the
            // scope joins them, and the final persist below holds what they added.
            if done >= files.len() || stop.load(Ordering::Relaxed) {
                break;
            }
            let due = changed - changed_at_last >= options.persist_every_docs.max(1)
                || (changed > changed_at_last && last_persist.elapsed() >= options.persist_every);
            if due {
                persist()?;
                summary.persists += 1;
                (last_persist, changed_at_last) = (Instant::now(), changed);
            }
        }
        Ok(())
    })?;
    persist()?;
    summary.persists += 1;
    bar.finish_and_clear();
    summary.added = counters.added.load(Ordering::Relaxed);
    summary.replaced = counters.replaced.load(Ordering::Relaxed);
    summary.unchanged = counters.unchanged.load(Ordering::Relaxed);
    summary.failed = counters.failed.load(Ordering::Relaxed);
    summary.chunks = counters.chunks.load(Ordering::Relaxed);
    summary.stopped = stop.load(Ordering::Relaxed) && counters.done.load(Ordering::Relaxed) < files.len();
    for e in errors.into_inner().unwrap_or_else(|p| p.into_inner()) {
        tracing::warn!(error = %e, "a file was not ingested");
    }
    Ok(summary)
}

/// Opens the index at `path`, or makes a new one for `embedder`'s vectors if there is none.
/// An index whose chunks were embedded by another embedder is refused. `head_capacity` sets a
/// new index's rows per head (`None`: the default); an existing index keeps its own.
pub fn open_or_create(
    path: &Path,
    embedder: &dyn Embedder,
    head_capacity: Option<usize>,
    durability: vecindex::Durability,
) -> Result<VectorIndex, String> {
    let fresh = || {
        let config = vecindex::IndexConfig::new(embedder.dim()).durability(durability);
        let config = match head_capacity {
            Some(rows) => config.head_capacity(rows),
            None => config,
        };
        VectorIndex::create(path, config).map_err(|e| e.to_string())
    };
    let index = match VectorIndex::open_with_options(path, &vecindex::OpenOptions::new().durability(durability)) {
        Ok((index, report)) => {
            if !report.is_clean() {
                tracing::warn!(?report, "the index was damaged; see the report");
            }
            if let Some(rows) = head_capacity.filter(|&rows| rows != index.config().head_capacity) {
                tracing::warn!(
                    requested = rows,
                    kept = index.config().head_capacity,
                    "the index exists: it keeps the head capacity it was made with"
                );
            }
            index
        }
        // Nothing committed yet (a missing or empty directory, or the leftovers of a first run
        // killed before its first persist): create it, bound to the directory and its log.
        Err(vecindex::Error::NoSnapshot { .. }) => fresh()?,
        Err(vecindex::Error::Io { ref source, .. }) if source.kind() == std::io::ErrorKind::NotFound => fresh()?,
        Err(e) => return Err(e.to_string()),
    };
    check_embedder(&index, embedder)?;
    Ok(index)
}

/// The embedder an index's chunks were made with must be `embedder`.
pub fn check_embedder(index: &VectorIndex, embedder: &dyn Embedder) -> Result<(), String> {
    if index.config().dim != embedder.dim() {
        return Err(format!(
            "the index holds {}-dimensional vectors; {} makes {}",
            index.config().dim,
            embedder.name(),
            embedder.dim()
        ));
    }
    let sample = index.document_ids().into_iter().next().and_then(|doc| {
        let id = index.chunk_ids(&doc).into_iter().next()?;
        index.chunk(&id)?.metadata.get(META_EMBEDDER)?.as_str().map(str::to_owned)
    });
    match sample {
        Some(name) if name != embedder.name() => {
            Err(format!("the index was embedded with {name}; use --embedder accordingly, not {}", embedder.name()))
        }
        _ => Ok(()),
    }
}
