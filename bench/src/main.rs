//! The benchmark harness: what criterion does not measure. Each command prints a table and
//! writes its results as JSON into `--out` (default `target/bench-results`); `report` turns those
//! files, criterion's estimates and the peers' results into `docs/benchmarks.md` and its plots.
//! `scripts/bench-report` runs everything in order; `--quick` makes every command take seconds.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use serde::Serialize;
use vecindex::embed::Embedder;
use vecindex_bench::data::Dataset;
use vecindex_bench::{disk, duplicates, durability, filtered, growth, live, recall, report, scaling, seed, writers};

/// efSearch settings a full run sweeps, fine enough that where a curve crosses a recall is not
/// decided by a coarse step (scripts/bench/peers.py sweeps the same).
const FULL_EFS: [usize; 17] = [10, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 256, 384, 512];

#[derive(Parser)]
#[command(about = "vecindex's benchmark harness (see docs/benchmarks.md)")]
struct Cli {
    /// A few seconds per benchmark (what CI runs), instead of the full sizes.
    #[arg(long, global = true)]
    quick: bool,
    /// Where results go, one JSON file per benchmark.
    #[arg(long, global = true, default_value = "target/bench-results")]
    out: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writer latency with and without a concurrent persist loop, every design.
    Writers,
    /// What each durability level of the write-ahead log costs writers (1 and 4 threads, single
    /// adds and 50-chunk documents), beside the disk's fsync latency.
    Durability,
    /// The seed's benchmark: 100 documents of 50 KB, a concurrent persist every 20.
    Seed {
        /// `hashing` (384 dimensions); `minilm` (ONNX Runtime, feature `onnx`: the library from
        /// ORT_DYLIB_PATH, scripts/fetch-onnxruntime; the graph from scripts/make-minilm-onnx),
        /// `minilm-int8` (its int8 graph), or `minilm-candle` (candle, feature `minilm`).
        #[arg(long, default_value = "hashing")]
        embedder: String,
        #[arg(long, default_value = "target/models/all-MiniLM-L6-v2")]
        model: PathBuf,
        /// Runs per design (default 100; 2 with --quick).
        #[arg(long)]
        runs: Option<usize>,
        /// Documents (default 100 of 50 KB; 10 with --quick).
        #[arg(long)]
        docs: Option<usize>,
        /// Persist concurrently after every N documents (default 20; 2 with --quick).
        #[arg(long)]
        persist_every: Option<usize>,
    },
    /// Recall@10 and single-query latency on a dataset directory (scripts/fetch-glove).
    Recall {
        dataset: PathBuf,
        /// Use only the first N base vectors (ground truth recomputed).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// The live index (a writer adding, the worker merging, a persist loop) against the same
    /// data force-merged: QPS against recall, writer latency, merge CPU.
    Live {
        dataset: PathBuf,
        /// Use only the first N base vectors (ground truth recomputed).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Search cost against rows ingested: QPS against recall at sizes from 10 000 rows to the
    /// whole set, in one index that grows through them.
    Scaling {
        dataset: PathBuf,
        /// Use only the first N base vectors.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Filtered search: recall@10 and QPS with a keyword filter and a numeric range at
    /// selectivities from 50% to 0.1%, beside the same index unfiltered.
    Filtered {
        dataset: PathBuf,
        /// Use only the first N base vectors.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Embeds the chunks of the python3.11-doc corpus (as `vecindex ingest` cuts them) into a
    /// raw float32 file, for `scripts/bench/dataset.py from-f32` to make a recall dataset of.
    Embed {
        /// As `seed --embedder`; the default is candle, which made the MiniLM recall dataset
        /// (the same vectors as ONNX Runtime's within 1e-4).
        #[arg(long, default_value = "minilm-candle")]
        embedder: String,
        #[arg(long, default_value = "target/models/all-MiniLM-L6-v2")]
        model: PathBuf,
        /// Embed only the first N chunks.
        #[arg(long)]
        limit: Option<usize>,
        /// The float32 file to write (n x dim, little-endian).
        #[arg(long)]
        to: PathBuf,
    },
    /// MiniLM's speed on every backend (1 and 2 threads; batches of 1, 16 and 32), each
    /// backend's vectors against sentence-transformers', and int8 against fp32 (feature `onnx`).
    Embedders {
        #[arg(long, default_value = "target/models/all-MiniLM-L6-v2")]
        model: PathBuf,
        /// The ONNX Runtime library (scripts/fetch-onnxruntime).
        #[arg(long, default_value = "target/onnxruntime/libonnxruntime.so.1.31.1")]
        runtime: PathBuf,
        /// Internal: measure this thread count only, in this process.
        #[arg(long, hide = true)]
        only_threads: Option<usize>,
    },
    /// Persist bandwidth against dd, incremental persist, open cold and warm against FAISS.
    Disk,
    /// Snapshots on an S3-compatible server against the local directory: full and incremental
    /// persist, a replica's catch-up after +1% rows, search QPS on the replica (feature
    /// `object-store`; scripts/bench-report's `remote` section starts moto's server for it).
    Remote {
        /// The server, e.g. http://127.0.0.1:9000 (credentials: AWS_ACCESS_KEY_ID and
        /// AWS_SECRET_ACCESS_KEY if set, else moto's "test").
        #[arg(long)]
        endpoint: String,
        /// An existing bucket.
        #[arg(long)]
        bucket: String,
        /// What the server is, for the report (default: "an S3-compatible server").
        #[arg(long)]
        server: Option<String>,
        /// Rows (default 200 000; 20 000 with --quick).
        #[arg(long)]
        rows: Option<usize>,
        /// Dimensions (default 384; 128 with --quick).
        #[arg(long)]
        dim: Option<usize>,
    },
    /// Writer throughput across a growth step after a bulk load.
    Growth,
    /// HNSW builds over repeated vectors: raw FAISS against vecindex's segment build.
    Duplicates,
    /// Writes docs/benchmarks.md (or `--to`) and its plots from the results.
    Report {
        #[arg(long, default_value = "docs/benchmarks.md")]
        to: PathBuf,
        /// Criterion's output directory.
        #[arg(long, default_value = "target/criterion")]
        criterion: PathBuf,
    },
}

/// The dataset in `dir` (its first `limit` rows; 20 000 rows and 100 queries with `--quick`),
/// announced; exits with a message if it cannot be read.
fn load_dataset(command: &str, dir: &Path, limit: Option<usize>, quick: bool) -> Dataset {
    let limit = limit.or(quick.then_some(20_000));
    let data = Dataset::load(dir, limit, quick.then_some(100)).unwrap_or_else(|e| {
        eprintln!("{command}: {}: {e} (scripts/fetch-glove makes it)", dir.display());
        std::process::exit(1)
    });
    println!("{command}: {} ({} x {}, {} queries)", data.meta.name, data.meta.n, data.meta.dim, data.meta.queries);
    data
}

fn save<T: Serialize>(out: &Path, name: &str, value: &T) {
    std::fs::create_dir_all(out).expect("create the results directory");
    let path = out.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(value).expect("serializable")).expect("write results");
    println!("wrote {}", path.display());
}

fn scratch(out: &Path) -> PathBuf {
    let dir = out.join("scratch");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The embedder `name` selects (`vecindex::embed::by_name`, hashing at 384 dimensions), or an
/// exit with the reason it cannot be had.
fn embedder(command: &str, name: &str, model: &Path) -> Box<dyn Embedder> {
    vecindex::embed::by_name(name, model, 384).unwrap_or_else(|e| {
        eprintln!("{command}: {e}");
        std::process::exit(1)
    })
}

fn main() {
    let cli = Cli::parse();
    let quick = cli.quick;
    let out = &cli.out;
    match cli.command {
        Command::Writers => {
            let params = writers::Params {
                dim: 384,
                preload: if quick { 5_000 } else { 100_000 },
                seconds: if quick { 0.5 } else { 10.0 },
                writers: 1,
                rate: 5_000.0,
            };
            println!(
                "writers: {} writer(s) at {}/s each for {} s, {} x {} preloaded",
                params.writers, params.rate, params.seconds, params.preload, params.dim
            );
            let runs = writers::run(&params, &scratch(out));
            save(out, "writers", &runs);
        }
        Command::Seed { embedder: name, model, runs, docs, persist_every } => {
            let embedder = embedder("seed", &name, &model);
            let params = seed::Params {
                docs: docs.unwrap_or(if quick { 10 } else { 100 }),
                doc_bytes: 50_000,
                persist_every: persist_every.unwrap_or(if quick { 2 } else { 20 }).max(1),
                runs: runs.unwrap_or(if quick { 2 } else { 100 }),
                backend: name.clone(),
            };
            println!(
                "seed: {} documents of {} bytes, persist every {}, {} runs, embedder {} ({name})",
                params.docs,
                params.doc_bytes,
                params.persist_every,
                params.runs,
                embedder.name()
            );
            let outcomes = seed::run(&params, embedder.as_ref(), &scratch(out)).unwrap_or_else(|e| {
                eprintln!("seed: {e}");
                std::process::exit(1)
            });
            save(out, &format!("seed-{name}"), &outcomes);
        }
        Command::Recall { dataset, limit } => {
            let data = load_dataset("recall", &dataset, limit, quick);
            let params = recall::Params {
                efs: if quick { vec![16, 64] } else { FULL_EFS.to_vec() },
                exact_queries: if quick { 50 } else { 200 },
            };
            let outcome = recall::run(&data, &params);
            save(out, &format!("recall-{}", data.meta.name), &outcome);
        }
        Command::Live { dataset, limit } => {
            let data = load_dataset("live", &dataset, limit, quick);
            let params = live::Params {
                preload_fraction: 0.9,
                rate: if quick { 500.0 } else { 1000.0 },
                quiet_seconds: if quick { 1.0 } else { 10.0 },
                persist_every: std::time::Duration::from_secs(1),
                efs: if quick { vec![16, 64] } else { FULL_EFS.iter().copied().filter(|&ef| ef <= 256).collect() },
                live_seconds: if quick { 0.0 } else { 30.0 },
            };
            let scratch = tempfile::tempdir().expect("scratch directory");
            let outcome = live::run(&data, &params, scratch.path());
            save(out, &format!("live-{}", data.meta.name), &outcome);
        }
        Command::Scaling { dataset, limit } => {
            let data = load_dataset("scaling", &dataset, limit, quick);
            let params = scaling::Params {
                sizes: scaling::sizes(data.meta.n),
                queries: if quick { 50 } else { 200 },
                efs: if quick { vec![16, 64] } else { FULL_EFS.to_vec() },
            };
            let outcome = scaling::run(&data, &params);
            save(out, &format!("scaling-{}", data.meta.name), &outcome);
        }
        Command::Filtered { dataset, limit } => {
            let data = load_dataset("filtered", &dataset, limit, quick);
            let params = filtered::Params {
                efs: if quick { vec![16, 64] } else { FULL_EFS.to_vec() },
                queries: if quick { 100 } else { 200 },
                min_seconds: if quick { 0.1 } else { 0.3 },
            };
            let outcome = filtered::run(&data, &params);
            save(out, &format!("filtered-{}", data.meta.name), &outcome);
        }
        Command::Embed { embedder: name, model, limit, to } => {
            let embedder = embedder("embed", &name, &model);
            let mut chunks = vecindex_bench::corpus::all_chunks(Path::new(vecindex_bench::corpus::PYDOC))
                .unwrap_or_else(|e| {
                    eprintln!("embed: {e}");
                    std::process::exit(1)
                });
            chunks.truncate(limit.unwrap_or(usize::MAX));
            let started = std::time::Instant::now();
            let mut bytes = Vec::with_capacity(chunks.len() * embedder.dim() * 4);
            for (i, batch) in chunks.chunks(32).enumerate() {
                let texts: Vec<&str> = batch.iter().map(String::as_str).collect();
                let vectors = embedder.embed(&texts).unwrap_or_else(|e| {
                    eprintln!("embed: {e}");
                    std::process::exit(1)
                });
                bytes.extend(vectors.iter().flatten().flat_map(|x| x.to_le_bytes()));
                let done = (i + 1) * 32;
                if i % 10 == 9 {
                    let rate = done as f64 / started.elapsed().as_secs_f64();
                    println!("embed: {done} of {} chunks, {rate:.1}/s", chunks.len());
                }
            }
            std::fs::write(&to, bytes).expect("write vectors");
            println!(
                "embed: {} chunks with {} in {:.1} s into {}",
                chunks.len(),
                embedder.name(),
                started.elapsed().as_secs_f64(),
                to.display()
            );
        }
        Command::Embedders { model, runtime, only_threads } => embedders(quick, out, model, runtime, only_threads),
        Command::Disk => {
            let params =
                disk::Params { rows: if quick { 20_000 } else { 200_000 }, dim: 384, runs: if quick { 2 } else { 5 } };
            println!("disk: {} x {}, {} runs (median)", params.rows, params.dim, params.runs);
            let outcome = disk::run(&params, &scratch(out));
            save(out, "disk", &outcome);
        }
        Command::Remote { endpoint, bucket, server, rows, dim } => {
            remote(quick, out, endpoint, bucket, server, rows, dim)
        }
        Command::Durability => {
            let params = durability::Params {
                seconds: if quick { 0.3 } else { 3.0 },
                dim: 384,
                fsyncs: if quick { 50 } else { 1000 },
            };
            println!("durability: {} s per cell, {} dimensions", params.seconds, params.dim);
            let outcome = durability::run(&params, &scratch(out));
            save(out, "durability", &outcome);
        }
        Command::Growth => {
            let params = growth::Params {
                rows: if quick { 50_000 } else { 1_000_000 },
                dim: 384,
                adds: if quick { 5_000 } else { 50_000 },
            };
            println!("growth: {} x {} bulk-loaded, then {} single adds", params.rows, params.dim, params.adds);
            let outcomes = growth::run(&params);
            save(out, "growth", &outcomes);
        }
        Command::Duplicates => {
            let params = duplicates::Params { rows: if quick { 2_048 } else { 16_384 } };
            println!("duplicates: HNSW32 builds over {} rows x 384, three ways of repeating", params.rows);
            let outcomes = duplicates::run(&params);
            save(out, "duplicates", &outcomes);
        }
        Command::Report { to, criterion } => {
            if let Err(e) = report::write(out, &to, &criterion) {
                eprintln!("report: {e}");
                std::process::exit(1);
            }
        }
    }
}

#[cfg(not(feature = "object-store"))]
fn remote(_: bool, _: &Path, _: String, _: String, _: Option<String>, _: Option<usize>, _: Option<usize>) {
    eprintln!("remote: this build has no object storage (--features object-store)");
    std::process::exit(1)
}

/// Snapshots on object storage against the local directory (see `vecindex_bench::remote`).
#[cfg(feature = "object-store")]
fn remote(
    quick: bool,
    out: &Path,
    endpoint: String,
    bucket: String,
    server: Option<String>,
    rows: Option<usize>,
    dim: Option<usize>,
) {
    use vecindex_bench::remote;
    let params = remote::Params {
        server: server.unwrap_or_else(|| "an S3-compatible server".into()),
        endpoint,
        bucket,
        rows: rows.unwrap_or(if quick { 20_000 } else { 200_000 }),
        dim: dim.unwrap_or(if quick { 128 } else { 384 }),
        runs: 3,
        queries: if quick { 200 } else { 1000 },
    };
    println!(
        "remote: {} x {}, {} runs (median), {} queries, s3://{} at {} ({})",
        params.rows, params.dim, params.runs, params.queries, params.bucket, params.endpoint, params.server
    );
    let outcome = remote::run(&params, &scratch(out)).unwrap_or_else(|e| {
        eprintln!("remote: {e}");
        std::process::exit(1)
    });
    save(out, "remote", &outcome);
}

#[cfg(not(feature = "onnx"))]
fn embedders(_: bool, _: &Path, _: PathBuf, _: PathBuf, _: Option<usize>) {
    eprintln!("embedders: this build has no ONNX Runtime (--features onnx)");
    std::process::exit(1)
}

/// The embedder benchmark: the parent measures accuracy and int8's quality, and runs one child
/// process per thread count for the speed cells (see `vecindex_bench::embedders`).
#[cfg(feature = "onnx")]
fn embedders(quick: bool, out: &Path, model: PathBuf, runtime: PathBuf, only_threads: Option<usize>) {
    use vecindex_bench::embedders::{self, Cell, Outcome, Params, Paths};
    let params = Params {
        texts: if quick { 8 } else { 128 },
        batches: vec![1, 16, 32],
        threads: vec![1, 2],
        min_seconds: if quick { 0.0 } else { 5.0 },
        quality_corpus: if quick { 64 } else { 2_000 },
        quality_queries: if quick { 16 } else { 200 },
    };
    let paths = Paths { model, runtime, reference: PathBuf::from("tests/data/minilm-reference.json") };
    let fail = |e: String| -> ! {
        eprintln!("embedders: {e}");
        std::process::exit(1)
    };
    let texts = embedders::texts(params.texts).unwrap_or_else(|e| fail(e.to_string()));
    let cells_file = |threads: usize| out.join(format!("embedders-threads-{threads}.json"));
    if let Some(threads) = only_threads {
        let cells = embedders::speed(&params, &paths, threads, &texts).unwrap_or_else(|e| fail(e));
        save(out, &format!("embedders-threads-{threads}"), &cells);
        return;
    }
    save(out, "embedders-texts", &texts); // for scripts/bench/embed_peers.py
    let mean_tokens = embedders::mean_tokens(&paths, &texts).unwrap_or_else(|e| fail(e));
    println!("embedders: {} chunks of the corpus, {mean_tokens:.0} word pieces on average", texts.len());
    let accuracy = embedders::accuracy(&paths).unwrap_or_else(|e| fail(e));
    let int8 = Some(embedders::int8_quality(&params, &paths).unwrap_or_else(|e| fail(e)));
    let mut cells: Vec<Cell> = Vec::new();
    for &threads in &params.threads {
        let status = std::process::Command::new(std::env::current_exe().expect("this binary"))
            .args(quick.then_some("--quick"))
            .arg("--out")
            .arg(out)
            .args(["embedders", "--model"])
            .arg(&paths.model)
            .arg("--runtime")
            .arg(&paths.runtime)
            .args(["--only-threads", &threads.to_string()])
            .env("RAYON_NUM_THREADS", threads.to_string())
            // candle at its best: its per-pass tensors stay in the heap instead of each being a
            // fresh mapping that page-faults in (docs/guide.md, "Embedders").
            .env("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967295")
            .status()
            .unwrap_or_else(|e| fail(e.to_string()));
        if !status.success() {
            fail(format!("the run with {threads} threads failed ({status})"));
        }
        let file = cells_file(threads);
        let read = std::fs::read(&file).unwrap_or_else(|e| fail(format!("{}: {e}", file.display())));
        cells.extend(serde_json::from_slice::<Vec<Cell>>(&read).unwrap_or_else(|e| fail(e.to_string())));
    }
    let outcome =
        Outcome { machine: vecindex_bench::report::machine(), texts: texts.len(), mean_tokens, cells, accuracy, int8 };
    save(out, "embedders", &outcome);
}
