//! `vecindex`: ingest a documentation tree into an index, query it, check it, serve it.
//!
//! ```text
//! vecindex ingest DIR --index PATH     walk, chunk, embed, add, persist as it goes (progress bar)
//! vecindex query PATH "text" -k 5      ranked hits: score, document, heading, snippet
//! vecindex stats PATH                  documents, chunks, segments
//! vecindex verify PATH                 checksums, mappings; exit 2 on damage, 3 if never persisted
//! vecindex serve PATH --addr A [--ingest DIR]   the HTTP API (see `server.rs`)
//! ```

mod chunker;
mod corpus;
mod ingest;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use vecindex::embed::{Embedder, HashingEmbedder};
use vecindex::{OpenOptions, SearchOptions, VectorIndex};

use crate::chunker::ChunkSize;
use crate::ingest::{IngestOptions, META_HEADING, check_embedder};

#[derive(Parser)]
#[command(name = "vecindex", version, about = "A concurrent vector index for documentation: ingest, query, verify")]
struct Cli {
    /// More log output (repeat for more); or set RUST_LOG.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingests the Markdown, reStructuredText and text files (also .gz) under DIR.
    Ingest {
        dir: PathBuf,
        /// The index directory (created if missing).
        #[arg(long)]
        index: PathBuf,
        #[command(flatten)]
        embedder: EmbedderArgs,
        /// Threads that read, chunk and embed files (default: the cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Persist after this many documents added or replaced...
        #[arg(long, default_value_t = 200)]
        persist_every_docs: usize,
        /// ...or after this many seconds, whichever comes first.
        #[arg(long, default_value_t = 10.0)]
        persist_every_secs: f64,
        /// Largest chunk in word pieces, `[CLS]`, `[SEP]` and its heading path included, for an
        /// embedder with a window (minilm); default and at most: the window (256).
        #[arg(long)]
        max_tokens: Option<usize>,
        /// Largest chunk in characters, its heading path included, for an embedder without a
        /// window (hashing); default 1200, at least 64.
        #[arg(long)]
        max_chars: Option<usize>,
        /// Word pieces (or characters) a chunk repeats from the one before; default an eighth of
        /// the largest chunk, at most half of it.
        #[arg(long)]
        overlap: Option<usize>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Rows a new index keeps in its head before sealing them into a segment (default: sized
        /// by the dimension, see `IndexConfig::default_head_capacity`). Fewer rows make each
        /// search's exact scan cheaper and leave more, smaller segments to merge. An existing
        /// index keeps the capacity it was made with.
        #[arg(long)]
        head_capacity: Option<usize>,
        /// What a document's acknowledgement promises: none, process-crash (the write-ahead
        /// log has it when the call returns), power-loss (fsynced first) or interval:SECONDS.
        #[arg(long, default_value = "process-crash")]
        durability: vecindex::Durability,
    },
    /// Prints the chunks nearest to TEXT.
    Query {
        index: PathBuf,
        text: String,
        #[arg(short, default_value_t = 5)]
        k: usize,
        #[command(flatten)]
        embedder: EmbedderArgs,
    },
    /// Prints what the index holds.
    Stats { index: PathBuf },
    /// Checks every file of the index (checksums, archives) and its id maps, changing nothing.
    /// Exits with 2 if anything is damaged or inconsistent, 3 if no snapshot was ever committed
    /// there (nothing, or only what a first run killed before its first persist left), 1 if it
    /// is not an index directory at all.
    Verify { index: PathBuf },
    /// Serves the index over HTTP until SIGTERM or SIGINT, then persists and exits.
    Serve {
        index: PathBuf,
        /// Address to listen on (port 0: any free port; the one chosen is printed).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Ingest this directory in the background while serving.
        #[arg(long)]
        ingest: Option<PathBuf>,
        /// Bearer token required on mutating routes (POST /documents, DELETE, POST /persist) and
        /// on the OpenAI-compatible /v1 routes (whose clients always send their API key).
        #[arg(long, env = "VECINDEX_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Largest request body, in bytes.
        #[arg(long, default_value_t = 8 << 20)]
        max_body_bytes: usize,
        #[command(flatten)]
        embedder: EmbedderArgs,
        /// (background ingest) persist after this many documents...
        #[arg(long, default_value_t = 200)]
        persist_every_docs: usize,
        /// ...or this many seconds.
        #[arg(long, default_value_t = 10.0)]
        persist_every_secs: f64,
        /// What a 200 for a write promises: none, process-crash (the write-ahead log has it),
        /// power-loss (fsynced first) or interval:SECONDS.
        #[arg(long, default_value = "process-crash")]
        durability: vecindex::Durability,
        #[command(flatten)]
        batching: server::BatchOptions,
    },
}

#[derive(clap::Args)]
struct EmbedderArgs {
    /// `hashing` (lexical, no model), `minilm` (semantic: all-MiniLM-L6-v2 on ONNX Runtime,
    /// feature `onnx`), `minilm-int8` (its int8 graph: faster, an index of its own) or
    /// `minilm-candle` (the same vectors as `minilm` on candle, feature `minilm`).
    #[arg(long, default_value = "hashing")]
    embedder: String,
    /// The MiniLM model directory (tokenizer.json and the weights from scripts/fetch-minilm,
    /// the ONNX graphs from scripts/make-minilm-onnx).
    #[arg(long, env = "VECINDEX_MINILM_DIR", default_value = "target/models/all-MiniLM-L6-v2")]
    model_dir: PathBuf,
}

impl EmbedderArgs {
    fn build(&self) -> Result<Arc<dyn Embedder>, String> {
        let embedder = vecindex::embed::by_name(&self.embedder, &self.model_dir, HashingEmbedder::default().dim())
            .map_err(|e| e.to_string())?;
        Ok(Arc::from(embedder))
    }
}

/// `verify`: some file is damaged or the id maps are inconsistent.
const EXIT_DAMAGED: u8 = 2;
/// `verify`: the directory holds no committed snapshot.
const EXIT_NO_SNAPSHOT: u8 = 3;

fn open_read_only(path: &std::path::Path) -> Result<VectorIndex, String> {
    let options = OpenOptions::new().read_only(true);
    let (index, report) = VectorIndex::open_with_options(path, &options).map_err(|e| e.to_string())?;
    if !report.is_clean() {
        eprintln!("warning: the index is damaged; run `vecindex verify {}`", path.display());
    }
    Ok(index)
}

/// One line of a chunk's text, at most `width` characters.
fn snippet(text: &str, width: usize) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(width) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line,
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Ingest {
            dir,
            index,
            embedder,
            threads,
            persist_every_docs,
            persist_every_secs,
            max_tokens,
            max_chars,
            overlap,
            quiet,
            head_capacity,
            durability,
        } => {
            let embedder = embedder.build()?;
            let chunk = ChunkSize::for_embedder(embedder.as_ref(), max_tokens, max_chars, overlap)
                .unwrap_or_else(|e| clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{e}\n")).exit());
            let started = Instant::now();
            let opened = Arc::new(ingest::open_or_create(&index, embedder.as_ref(), head_capacity, durability)?);
            let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
            let options = IngestOptions {
                root: dir,
                index_path: index.clone(),
                threads,
                persist_every_docs,
                persist_every: Duration::from_secs_f64(persist_every_secs.max(0.0)),
                chunk,
                batch: 64,
                progress: !quiet,
            };
            let s = ingest::ingest(&opened, &embedder, &options, &AtomicBool::new(false))?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "ingested {} files in {secs:.1} s: {} added, {} replaced, {} unchanged, {} removed, {} failed; \
                 {} chunks ({:.0}/s), {} persists into {}",
                s.files,
                s.added,
                s.replaced,
                s.unchanged,
                s.removed,
                s.failed,
                s.chunks,
                s.chunks as f64 / secs.max(1e-3),
                s.persists,
                index.display()
            );
            Ok(if s.failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::Query { index, text, k, embedder } => {
            let embedder = embedder.build()?;
            let opened = open_read_only(&index)?;
            check_embedder(&opened, embedder.as_ref())?;
            let query = embedder.embed_query(&text).map_err(|e| e.to_string())?;
            let hits = opened.search(&query, &SearchOptions::k(k)).map_err(|e| e.to_string())?;
            for (rank, hit) in hits.iter().enumerate() {
                let chunk = opened.chunk(&hit.chunk_id);
                let heading = hit.metadata.get(META_HEADING).and_then(vecindex::Value::as_str).unwrap_or("");
                let text = chunk.map(|c| snippet(&c.text, 160)).unwrap_or_default();
                println!("{:>2}. {:.3}  {}  [{}]", rank + 1, hit.score, hit.doc_id, heading);
                println!("      {text}");
            }
            if hits.is_empty() {
                println!("no hits (the index is empty)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats { index } => {
            let opened = open_read_only(&index)?;
            let s = opened.stats();
            println!(
                "{}: {} documents, {} chunks, dimension {}, {:?}",
                index.display(),
                s.documents,
                s.chunks,
                s.dim,
                s.metric
            );
            println!("next seq {}, {} vocabulary terms", s.next_seq, s.vocabulary_terms);
            for g in &s.segments {
                println!(
                    "  segment {:>4}: {:<10} {:>8} rows {:>8} live {:>12} bytes{}",
                    g.id,
                    g.label(),
                    g.rows,
                    g.live_rows,
                    g.bytes,
                    if g.mapped { "  (mapped)" } else { "" }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            index,
            addr,
            ingest: ingest_dir,
            token,
            max_body_bytes,
            embedder,
            persist_every_docs,
            persist_every_secs,
            durability,
            batching,
        } => {
            let embedder = embedder.build()?;
            let opened = Arc::new(ingest::open_or_create(&index, embedder.as_ref(), None, durability)?);
            // POST /documents and the background ingest cut chunks to the embedder's window, as
            // `vecindex ingest` does by default.
            let chunk = ChunkSize::for_embedder(embedder.as_ref(), None, None, None)?;
            let ingest = ingest_dir.map(|root| IngestOptions {
                root,
                index_path: index.clone(),
                threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
                persist_every_docs,
                persist_every: Duration::from_secs_f64(persist_every_secs.max(0.0)),
                chunk,
                batch: 64,
                progress: false,
            });
            let options =
                server::ServeOptions { addr, index_path: index, token, max_body_bytes, chunk, ingest, batching };
            server::serve(opened, embedder, options)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { index } => {
            let options = OpenOptions::new().read_only(true);
            let (opened, report) = match VectorIndex::open_with_options(&index, &options) {
                Ok(opened) => opened,
                Err(vecindex::Error::NoSnapshot { .. }) => {
                    println!(
                        "NO SNAPSHOT: {} holds no committed snapshot (a first persist never finished)",
                        index.display()
                    );
                    return Ok(ExitCode::from(EXIT_NO_SNAPSHOT));
                }
                Err(e @ (vecindex::Error::Io { .. } | vecindex::Error::NotAnIndex { .. })) => return Err(e.to_string()),
                Err(e) => {
                    println!("DAMAGED: {e}");
                    return Ok(ExitCode::from(EXIT_DAMAGED));
                }
            };
            let stale = opened.reconcile_mappings();
            println!(
                "{}: manifest {} (generation {}, seq {}), {} segments, {} chunks, {:.1} MB checked",
                index.display(),
                report.manifest,
                report.generation,
                report.seq,
                report.segments,
                report.chunks,
                report.bytes_mapped as f64 / 1e6
            );
            if report.log.segments > 0 {
                println!(
                    "write-ahead log: {} segments, {} operations after the snapshot{}",
                    report.log.segments,
                    report.log.replayed,
                    match report.log.torn_bytes {
                        0 => String::new(),
                        torn => format!(", {torn} bytes a crash cut mid-write (never acknowledged)"),
                    }
                );
            }
            if let Some(d) = &report.log.damage {
                let seqs = d.seqs_not_replayed.map_or(String::new(), |(lo, hi)| format!(", seqs {lo} to {hi}"));
                println!(
                    "DAMAGED: {} at byte {}: {}; replay stops there: {} operations after it{seqs}",
                    d.file.display(),
                    d.offset,
                    d.reason,
                    d.records_not_replayed
                );
            }
            if let Some(reason) = &report.fell_back {
                println!("DAMAGED: MANIFEST unusable, the previous snapshot would be used: {reason}");
            }
            for h in &report.healed {
                println!("DAMAGED (recoverable): {}: {} ({})", h.file.display(), h.reason, h.action);
            }
            for q in &report.quarantined {
                println!("DAMAGED: {}: {} ({} rows)", q.file.display(), q.reason, q.rows);
            }
            for d in &report.lost_documents {
                println!(
                    "  document {} would lose {} of {} chunks",
                    d.doc_id,
                    d.chunks_lost,
                    d.chunks_lost + d.chunks_kept
                );
            }
            if stale > 0 {
                println!("INCONSISTENT: {stale} stale id-map entries");
            }
            let clean = report.is_clean() && stale == 0;
            println!("{}", if clean { "OK" } else { "NOT OK" });
            Ok(if clean { ExitCode::SUCCESS } else { ExitCode::from(EXIT_DAMAGED) })
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
