//! `vecindex`: ingest a documentation tree into an index, query it, check it, serve it.
//!
//! ```text
//! vecindex ingest DIR --index PATH     walk, chunk, embed, add, persist as it goes (progress bar)
//! vecindex query PATH "text" -k 5      ranked hits: score, document, heading, snippet
//! vecindex stats PATH                  documents, chunks, segments
//! vecindex verify PATH                 checksums, mappings; exit 2 on damage, 3 if never persisted
//! vecindex serve PATH --addr A [--ingest DIR]   the HTTP API (see `server.rs`)
//! ```
//!
//! `query`, `stats` and `verify` print JSON with `--json` (`output.rs`); `--config FILE` gives
//! any flag a default from a TOML file (`config.rs`).

mod chunker;
mod config;
mod corpus;
mod ingest;
mod output;
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
use crate::ingest::{IngestOptions, check_embedder};

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
        /// One line of JSON: {index, query, k, hits: [{rank, score, chunk_id, doc_id, heading,
        /// text, metadata}]}.
        #[arg(long)]
        json: bool,
    },
    /// Prints what the index holds.
    Stats {
        index: PathBuf,
        /// One line of JSON: {index, documents, chunks, dim, metric, next_seq, generation,
        /// vocabulary_terms, segments: [{id, kind, rows, live_rows, bytes, mapped}]}.
        #[arg(long)]
        json: bool,
    },
    /// Uploads the index's snapshot to object storage (feature `object-store`): the files the
    /// storage lacks, then the manifest of the next generation, committed only if no other
    /// writer took it (exit 4 if one did). Replicas (`serve --replica-of URL`) follow it. The
    /// store's settings come from the environment (AWS_ENDPOINT, AWS_ACCESS_KEY_ID, ...).
    Push {
        index: PathBuf,
        /// s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or file:///path.
        url: String,
        /// Print the report as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Checks every file of the index (checksums, archives) and its id maps, changing nothing.
    /// Exits with 2 if anything is damaged or inconsistent, 3 if no snapshot was ever committed
    /// there (nothing, or only what a first run killed before its first persist left), 1 if it
    /// is not an index directory at all.
    Verify {
        index: PathBuf,
        /// One line of JSON, whatever the outcome (same exit codes): {index, status (ok, damaged,
        /// no_snapshot, not_an_index, error), ok, error, report: {manifest, generation, seq,
        /// segments, chunks, bytes_checked, log, fell_back, healed, quarantined, lost_documents,
        /// lost_rows_unknown, duplicate_rows, stale_mappings}}.
        #[arg(long)]
        json: bool,
    },
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
        #[command(flatten)]
        limits: server::LimitOptions,
        /// Serve a read-only replica of the index at this URL (s3://bucket/prefix, gs://, az://,
        /// file:///path; feature `object-store`), following its writer; INDEX is then the
        /// local cache its files are fetched into. The store's settings come from the
        /// environment (AWS_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_REGION, ...).
        #[arg(long, value_name = "URL")]
        replica_of: Option<String>,
        /// (replica) how often to look for a newer generation, in seconds.
        #[arg(long, default_value_t = 5.0)]
        poll_secs: f64,
        /// (replica) how long it may serve an older generation than the newest it has seen and
        /// still answer /readyz with 200, in seconds.
        #[arg(long, default_value_t = 60.0)]
        replica_max_lag_secs: f64,
        /// (writer) push the index to object storage at this URL for its replicas (feature
        /// `object-store`): at start, then every --push-every-secs when it took writes, and
        /// once more at shutdown. Settings as for --replica-of.
        #[arg(long, value_name = "URL", conflicts_with = "replica_of")]
        push_to: Option<String>,
        /// (writer) how often to push, in seconds.
        #[arg(long, default_value_t = 30.0)]
        push_every_secs: f64,
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

/// `push`: exit code when another writer committed first.
#[cfg(feature = "object-store")]
const EXIT_CONFLICT: u8 = 4;

#[cfg(feature = "object-store")]
fn push(index: &std::path::Path, url: &str, json: bool) -> Result<ExitCode, String> {
    let opened = open_read_only(index)?;
    // The files just uploaded need no local copy: a scratch cache for the manifests, removed
    // after.
    let cache = std::env::temp_dir().join(format!("vecindex-push-{}", std::process::id()));
    let options = vecindex::ObjectStorageOptions { cache_writes: false, ..vecindex::ObjectStorageOptions::new(&cache) };
    let storage = vecindex::ObjectStorage::open(url, options);
    let pushed = storage.and_then(|storage| opened.persist_to(&storage));
    let _ = std::fs::remove_dir_all(&cache);
    match pushed {
        Ok(report) => {
            output::print(&output::Pushed::new(url, &report), json)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ vecindex::Error::Conflict { .. }) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(EXIT_CONFLICT))
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(not(feature = "object-store"))]
fn push(_: &std::path::Path, _: &str, _: bool) -> Result<ExitCode, String> {
    Err("push needs object storage: build vecindex with --features object-store".into())
}

/// A replica of the index at `url`, its files cached in `cache`.
#[cfg(feature = "object-store")]
fn replica(
    url: &str,
    cache: &std::path::Path,
    (poll_secs, max_lag_secs): (f64, f64),
    embedder: &dyn Embedder,
) -> Result<server::IndexSource, String> {
    let options = vecindex::ReplicaOptions {
        poll_interval: Duration::from_secs_f64(poll_secs.max(0.01)),
        ..vecindex::ReplicaOptions::default()
    };
    // A replica started before its writer's first push (the two deployed together) waits for
    // it, polling, instead of exiting.
    let mut waiting = false;
    let replica = loop {
        let storage = vecindex::ObjectStorage::open(url, vecindex::ObjectStorageOptions::new(cache))
            .map_err(|e| e.to_string())?;
        match vecindex::Replica::open(storage, options.clone()) {
            Ok(replica) => break replica,
            Err(vecindex::Error::NoSnapshot { .. }) => {
                if !waiting {
                    eprintln!("nothing was pushed to {url} yet: waiting for the writer's first push");
                    waiting = true;
                }
                std::thread::sleep(options.poll_interval);
            }
            Err(e) => return Err(format!("replica of {url}: {e}")),
        }
    };
    check_embedder(&replica.index(), embedder)?;
    let max_lag = Duration::from_secs_f64(max_lag_secs.max(0.0));
    Ok(server::IndexSource::Replica { replica: Arc::new(replica), url: url.to_owned(), max_lag })
}

#[cfg(not(feature = "object-store"))]
fn replica(_: &str, _: &std::path::Path, _: (f64, f64), _: &dyn Embedder) -> Result<server::IndexSource, String> {
    Err("--replica-of needs object storage: build vecindex with --features object-store".into())
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
        Command::Query { index, text, k, embedder, json } => {
            let embedder = embedder.build()?;
            let opened = open_read_only(&index)?;
            check_embedder(&opened, embedder.as_ref())?;
            let query = embedder.embed_query(&text).map_err(|e| e.to_string())?;
            let hits = opened.search(&query, &SearchOptions::k(k)).map_err(|e| e.to_string())?;
            let report = output::Query::new(&index, &text, k, hits, |id| opened.chunk(id).map(|c| c.text));
            output::print(&report, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats { index, json } => {
            let opened = open_read_only(&index)?;
            output::print(&output::Stats::new(&index, &opened.stats()), json)?;
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
            limits,
            replica_of,
            poll_secs,
            replica_max_lag_secs,
            push_to,
            push_every_secs,
        } => {
            let embedder = embedder.build()?;
            let source = match replica_of {
                Some(url) => replica(&url, &index, (poll_secs, replica_max_lag_secs), embedder.as_ref())?,
                None => server::IndexSource::Writer(Arc::new(ingest::open_or_create(
                    &index,
                    embedder.as_ref(),
                    None,
                    durability,
                )?)),
            };
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
            let options = server::ServeOptions {
                addr,
                index_path: index,
                token,
                max_body_bytes,
                chunk,
                ingest,
                batching,
                limits,
                push_to: push_to.map(|url| (url, Duration::from_secs_f64(push_every_secs.max(0.01)))),
            };
            server::serve(source, embedder, options)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { index, json } => verify(&index, json),
        Command::Push { index, url, json } => push(&index, &url, json),
    }
}

/// `vecindex verify`: the report goes to stdout (as JSON too) whatever the outcome; the exit
/// code says which outcome it was.
fn verify(index: &std::path::Path, json: bool) -> Result<ExitCode, String> {
    use output::Status;
    let options = OpenOptions::new().read_only(true);
    let (opened, report) = match VectorIndex::open_with_options(index, &options) {
        Ok(opened) => opened,
        Err(e) => {
            let (status, code) = match e {
                vecindex::Error::NoSnapshot { .. } => (Status::NoSnapshot, EXIT_NO_SNAPSHOT),
                vecindex::Error::NotAnIndex { .. } => (Status::NotAnIndex, 1),
                vecindex::Error::Io { .. } => (Status::Error, 1),
                _ => (Status::Damaged, EXIT_DAMAGED),
            };
            output::print(&output::Verify::failed(index, status, &e), json)?;
            // Not an index, or unreadable: an error (on stderr, exit 1) as for every command.
            return if code == 1 { Err(e.to_string()) } else { Ok(ExitCode::from(code)) };
        }
    };
    let stale = opened.reconcile_mappings();
    let verdict = output::Verify::checked(index, &report, stale);
    output::print(&verdict, json)?;
    Ok(if verdict.ok { ExitCode::SUCCESS } else { ExitCode::from(EXIT_DAMAGED) })
}

/// `config::Failure::Config`: a configuration file clap never saw is a usage error all the same.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match config::parse::<Cli>(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(config::Failure::Clap(e)) => e.exit(),
        Err(config::Failure::Config(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let default = match (cli.verbose, &cli.command) {
        // A server logs one line per request (`server::layers`) unless told otherwise.
        (0, Command::Serve { .. }) => "warn,vecindex::request=info,tower_http::trace::on_response=info",
        (0, _) => "warn",
        (1, _) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(colour).with_writer(std::io::stderr).init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
