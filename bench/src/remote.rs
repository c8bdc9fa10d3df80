//! Snapshots on object storage against the local directory, in one run (`vecindex-bench
//! remote`, feature `object-store`), against an S3-compatible server the caller started (the
//! `remote` section of scripts/bench-report starts moto's on 127.0.0.1):
//!
//! - full persist into a new local directory against `persist_to` a new prefix of the bucket,
//!   alternating, `runs` of each (all kept);
//! - a replica opened on each prefix, its cache empty (the first open fetches the whole
//!   snapshot), polling only when told to;
//! - +1% rows, then an incremental persist into each directory and each prefix, and after each
//!   `persist_to` the time of that prefix's replica's `refresh()` until it swaps in the new
//!   generation;
//! - search QPS, single queries one at a time, on a replica's index against the same snapshot
//!   opened from the local directory.
//!
//! The segments are exact (scanned), so no HNSW build dominates a persist or an open.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vecindex::{
    Chunk, IndexConfig, ObjectStorage, ObjectStorageOptions, OpenOptions, PersistReport, Replica, ReplicaOptions,
    SearchOptions, SegmentIndex, VectorIndex,
};

use crate::data::vector;
use crate::median;

/// Chunks per document.
pub const CHUNKS_PER_DOCUMENT: usize = 10;

pub struct Params {
    /// The server, e.g. `http://127.0.0.1:9000`.
    pub endpoint: String,
    pub bucket: String,
    /// What the server is, for the report (e.g. "moto 5.2.6 on 127.0.0.1").
    pub server: String,
    pub rows: usize,
    pub dim: usize,
    /// Full persists of each kind, and incremental rounds.
    pub runs: usize,
    /// Single queries on each index.
    pub queries: usize,
}

/// One kind of persist, `runs` times: medians, and the fastest and slowest run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Persist {
    pub seconds: f64,
    pub seconds_min: f64,
    pub seconds_max: f64,
    /// Bytes this persist wrote (the median run's count), and the whole snapshot's.
    pub bytes_written: u64,
    pub bytes_total: u64,
    pub files_written: usize,
    /// `bytes_written` over `seconds`.
    pub mb_per_s: f64,
}

/// A local persist against the same persist into the bucket.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pair {
    pub local: Persist,
    pub remote: Persist,
    /// Remote seconds over local seconds (medians).
    pub ratio: f64,
}

/// `ObjectStorage::open` on a prefix holding a full snapshot: it lists the prefix once (and
/// starts the storage's I/O threads), the unit of a persist's and a poll's fixed cost.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Listing {
    pub objects: usize,
    /// Median, and every run.
    pub seconds: f64,
    pub runs: Vec<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Catchup {
    /// `Replica::open` with an empty cache (list, fetch every file, check, map): the median,
    /// and every run (one per prefix).
    pub cold_open_s: f64,
    pub cold_open_runs: Vec<f64>,
    pub cold_open_bytes: u64,
    /// The same snapshot opened (read-only) from the local directory, its files in the page
    /// cache: the reference for the open after the fetch.
    pub local_open_s: f64,
    /// Per prefix: `refresh()` calls until one swapped in the new generation, timed together.
    pub refresh_s: Vec<f64>,
    pub refresh_s_median: f64,
    pub refresh_calls: Vec<usize>,
    /// Bytes each replica's cache grew by (what it fetched).
    pub fetched_bytes: Vec<u64>,
    /// The generation the replica serves at the end, and its rows (the writer's).
    pub generation: u64,
    pub rows: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Search {
    pub queries: usize,
    pub k: usize,
    /// Queries per block; blocks alternate between the two, which goes first alternating too.
    pub block: usize,
    /// The median block's QPS, and the slowest and fastest block's.
    pub replica_qps: f64,
    pub replica_qps_range: [f64; 2],
    pub local_qps: f64,
    pub local_qps_range: [f64; 2],
    /// Replica QPS over local QPS (medians).
    pub ratio: f64,
    /// Every query's hits were the same on both.
    pub same_answers: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub rows: usize,
    pub dim: usize,
    pub chunks_per_document: usize,
    /// "exact": sealed segments are scanned, no graph is built.
    pub segments: String,
    pub server: String,
    pub endpoint: String,
    pub cpu: String,
    pub machine: String,
    pub runs: usize,
    pub full: Pair,
    pub listing: Listing,
    /// Rows added before the incremental persists (1% of `rows`).
    pub incremental_rows: usize,
    pub incremental: Pair,
    pub replica: Catchup,
    pub search: Search,
}

/// The CPU model from /proc/cpuinfo.
pub fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info.lines().find_map(|l| l.strip_prefix("model name")).and_then(|l| l.split_once(':'));
    model.map_or_else(|| "unknown".into(), |(_, m)| m.trim().to_owned())
}

type Error = Box<dyn std::error::Error>;

/// Rows `range` as chunks of documents of [`CHUNKS_PER_DOCUMENT`], with random vectors
/// (`data::vector`, seeded by the row), added 1 000 at a time.
fn add_rows(index: &VectorIndex, range: std::ops::Range<usize>, dim: usize) -> Result<(), Error> {
    let mut start = range.start;
    while start < range.end {
        let end = (start + 1000).min(range.end);
        let chunks = (start..end)
            .map(|n| {
                Chunk::new(format!("c{n}"), format!("d{}", n / CHUNKS_PER_DOCUMENT), vector(n as u64, dim))
                    .with_text(format!("chunk {n}"))
            })
            .collect();
        index.add_chunks(chunks)?;
        start = end;
    }
    Ok(())
}

/// `persist`, with its report's duration the wall time of the whole call.
fn timed(persist: impl FnOnce() -> vecindex::Result<PersistReport>) -> Result<PersistReport, Error> {
    let started = Instant::now();
    let mut report = persist()?;
    report.duration = started.elapsed();
    Ok(report)
}

fn persist_of(reports: &[PersistReport]) -> Persist {
    let seconds: Vec<f64> = reports.iter().map(|r| r.duration.as_secs_f64()).collect();
    let median_s = median(seconds.clone());
    // The run whose time is the median, for its byte and file counts.
    let at = reports.iter().position(|r| r.duration.as_secs_f64() == median_s).unwrap_or(0);
    let report = &reports[at];
    Persist {
        seconds: median_s,
        seconds_min: seconds.iter().copied().fold(f64::INFINITY, f64::min),
        seconds_max: seconds.iter().copied().fold(0.0, f64::max),
        bytes_written: report.bytes_written,
        bytes_total: report.bytes_total,
        files_written: report.files_written,
        mb_per_s: report.bytes_written as f64 / 1e6 / median_s.max(1e-9),
    }
}

fn pair(local: &[PersistReport], remote: &[PersistReport]) -> Pair {
    let (local, remote) = (persist_of(local), persist_of(remote));
    let ratio = remote.seconds / local.seconds.max(1e-9);
    Pair { local, remote, ratio }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn line(what: &str, p: &Persist) {
    println!(
        "  {what:<34} {:>8.3} s (runs {:.3}-{:.3}), {:>8.1} MB written of {:.1} MB in {} files, {:>6.0} MB/s",
        p.seconds,
        p.seconds_min,
        p.seconds_max,
        p.bytes_written as f64 / 1e6,
        p.bytes_total as f64 / 1e6,
        p.files_written,
        p.mb_per_s
    );
}

/// The hits' chunk ids of every query, and the time the searches took.
fn search_block(index: &VectorIndex, queries: &[Vec<f32>], k: usize) -> Result<(Duration, Vec<Vec<String>>), Error> {
    let options = SearchOptions::k(k);
    let mut answers = Vec::with_capacity(queries.len());
    let started = Instant::now();
    for q in queries {
        answers.push(index.search(q, &options)?);
    }
    let took = started.elapsed();
    Ok((took, answers.into_iter().map(|hits| hits.into_iter().map(|h| h.chunk_id).collect()).collect()))
}

pub fn run(params: &Params, scratch: &Path) -> Result<Outcome, Error> {
    let (rows, dim, runs) = (params.rows, params.dim, params.runs.max(1));
    let root = tempfile::tempdir_in(scratch)?;
    let bucket_url = |prefix: &str| format!("s3://{}/{prefix}", params.bucket);
    // A fresh prefix per run, so that reruns against a server that kept its objects never meet
    // an older index there.
    let tag = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
    let env = |key: &str, default: &str| std::env::var(key).unwrap_or_else(|_| default.to_owned());
    // moto takes any credentials; a real server's come from AWS_* when they are set.
    let options = |cache: &Path| {
        ObjectStorageOptions::new(cache)
            .setting("aws_endpoint", &params.endpoint)
            .setting("aws_allow_http", "true")
            .setting("aws_access_key_id", env("AWS_ACCESS_KEY_ID", "test"))
            .setting("aws_secret_access_key", env("AWS_SECRET_ACCESS_KEY", "test"))
            .setting("aws_region", env("AWS_REGION", "us-east-1"))
    };
    let storage = |prefix: &str| -> Result<ObjectStorage, Error> {
        let options = options(&root.path().join("cache").join(prefix));
        Ok(ObjectStorage::open(&bucket_url(&format!("bench-{tag}/{prefix}")), options)?)
    };

    let config = IndexConfig::new(dim).segment_index(SegmentIndex::exact()).background(false);
    let started = Instant::now();
    let index = VectorIndex::new(config)?;
    add_rows(&index, 0..rows, dim)?;
    index.maintain();
    println!(
        "remote: {rows} x {dim} in documents of {CHUNKS_PER_DOCUMENT} chunks, exact segments ({} sealed), built in {:.1} s; server {} at {}",
        index.stats().segments.len(),
        started.elapsed().as_secs_f64(),
        params.server,
        params.endpoint
    );

    // Full persists, alternating local and remote, each into a new directory or prefix; all
    // are kept, each to take one incremental persist.
    let (mut local_full, mut remote_full) = (Vec::new(), Vec::new());
    let (mut local_dirs, mut storages) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let dir = root.path().join(format!("local-{run}"));
        local_full.push(timed(|| index.persist(&dir))?);
        local_dirs.push(dir);
        let remote = storage(&format!("full-{run}"))?;
        remote_full.push(timed(|| index.persist_to(&remote))?);
        storages.push(remote);
    }
    let full = pair(&local_full, &remote_full);
    println!("  full persist, median of {runs}:");
    line("local directory (fsync)", &full.local);
    line(&format!("{} (persist_to)", params.server), &full.remote);
    println!("  ratio S3/local: {:.2}x", full.ratio);

    // One listing of a full prefix, through ObjectStorage::open (which lists once).
    let mut listing_runs = Vec::new();
    for run in 0..runs {
        let cache = root.path().join("cache").join(format!("list-{run}"));
        let started = Instant::now();
        let opened = ObjectStorage::open(storages[0].url(), options(&cache))?;
        listing_runs.push(started.elapsed().as_secs_f64());
        drop(opened);
    }
    let listing =
        Listing { objects: full.remote.files_written, seconds: median(listing_runs.clone()), runs: listing_runs };
    println!(
        "  ObjectStorage::open on a prefix of {} objects (one listing), median of {runs}: {:.3} s",
        listing.objects, listing.seconds
    );

    // A replica on each prefix, each with an empty cache; they poll only when told.
    let (mut replicas, mut caches, mut cold_open_runs) = (Vec::new(), Vec::new(), Vec::new());
    for (run, writer) in storages.iter().enumerate() {
        let cache = root.path().join("cache").join(format!("replica-{run}"));
        let replica_options = ReplicaOptions { poll_interval: Duration::from_secs(3600), open: OpenOptions::new() };
        let replica_storage = ObjectStorage::open(writer.url(), options(&cache))?;
        let started = Instant::now();
        let replica = Replica::open(replica_storage, replica_options)?;
        cold_open_runs.push(started.elapsed().as_secs_f64());
        if replica.index().len() != index.len() {
            return Err(
                format!("the replica opened {} rows of the writer's {}", replica.index().len(), index.len()).into()
            );
        }
        // Its poller polls once on start: wait for that poll, so that the swap below is the
        // explicit refresh's.
        let deadline = Instant::now() + Duration::from_secs(60);
        while replica.status().polls == 0 {
            if Instant::now() > deadline {
                return Err("the replica's first poll did not end within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        replicas.push(replica);
        caches.push(cache);
    }
    let cold_open_bytes = dir_bytes(&caches[0]);
    let mut local_open_runs = Vec::new();
    for dir in &local_dirs {
        let started = Instant::now();
        let (opened, _) = VectorIndex::open_with_options(dir, &OpenOptions::new().read_only(true))?;
        local_open_runs.push(started.elapsed().as_secs_f64());
        drop(opened);
    }
    let (cold_open_s, local_open_s) = (median(cold_open_runs.clone()), median(local_open_runs));
    println!(
        "  a replica's first open (empty cache), median of {runs}: {cold_open_s:.3} s for {:.1} MB ({:.0} MB/s); the local directory's open: {local_open_s:.3} s",
        cold_open_bytes as f64 / 1e6,
        cold_open_bytes as f64 / 1e6 / cold_open_s.max(1e-9)
    );

    // +1% rows, persisted as the writer left them (as the disk benchmark does: no sealing or
    // merge in between), then an incremental persist into each directory and each prefix,
    // and each prefix's replica catches up.
    let extra = rows.div_ceil(100);
    add_rows(&index, rows..rows + extra, dim)?;
    let (mut local_inc, mut remote_inc) = (Vec::new(), Vec::new());
    let (mut refresh_s, mut refresh_calls, mut fetched_bytes) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        local_inc.push(timed(|| index.persist(&local_dirs[run]))?);
        remote_inc.push(timed(|| index.persist_to(&storages[run]))?);
        let (replica, cache) = (&replicas[run], &caches[run]);
        let cached = dir_bytes(cache);
        let started = Instant::now();
        let mut calls = 0;
        loop {
            calls += 1;
            if replica.refresh()? {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!("run {run}: the replica did not see the new generation within 60 s").into());
            }
        }
        refresh_s.push(started.elapsed().as_secs_f64());
        refresh_calls.push(calls);
        fetched_bytes.push(dir_bytes(cache).saturating_sub(cached));
        let served = replica.index();
        if served.len() != index.len() {
            return Err(format!("run {run}: the replica has {} rows, the writer {}", served.len(), index.len()).into());
        }
    }
    let incremental = pair(&local_inc, &remote_inc);
    println!("  incremental persist after +{extra} rows (1%), median of {runs}:");
    line("local directory (fsync)", &incremental.local);
    line(&format!("{} (persist_to)", params.server), &incremental.remote);
    println!("  ratio S3/local: {:.2}x", incremental.ratio);
    let replica = replicas.swap_remove(0);
    drop(replicas);
    let status = replica.status();
    let catchup = Catchup {
        cold_open_s,
        cold_open_runs,
        cold_open_bytes,
        local_open_s,
        refresh_s_median: median(refresh_s.clone()),
        refresh_s,
        refresh_calls,
        fetched_bytes,
        generation: status.generation,
        rows: replica.index().len(),
    };
    println!(
        "  replica catch-up (refresh until swapped), median of {runs}: {:.3} s (runs {:?} s, {:?} calls, fetched {:?} bytes); serves generation {} with {} rows, as the writer",
        catchup.refresh_s_median,
        catchup.refresh_s.iter().map(|s| (s * 1e3).round() / 1e3).collect::<Vec<_>>(),
        catchup.refresh_calls,
        catchup.fetched_bytes,
        catchup.generation,
        catchup.rows
    );
    drop(index);

    // Search: the replica's index against the same snapshot opened from the local directory,
    // in blocks of queries that alternate between the two (which goes first alternating too),
    // after a block to warm both; QPS is the median block's, so that a stall of the machine
    // during one block does not decide the ratio.
    let (local, _) = VectorIndex::open_with_options(&local_dirs[0], &OpenOptions::new().read_only(true))?;
    let served = replica.index();
    let (k, block) = (10, 50);
    let queries: Vec<Vec<f32>> = (0..params.queries).map(|i| vector(u64::MAX / 3 + i as u64, dim)).collect();
    let warm: Vec<Vec<f32>> = (0..block).map(|i| vector(u64::MAX / 5 + i as u64, dim)).collect();
    search_block(&served, &warm, k)?;
    search_block(&local, &warm, k)?;
    let (mut replica_blocks, mut local_blocks) = (Vec::new(), Vec::new());
    let mut same_answers = true;
    for (b, queries) in queries.chunks(block).enumerate() {
        let qps = |took: Duration| queries.len() as f64 / took.as_secs_f64().max(1e-9);
        let ((on_replica_took, on_replica), (on_local_took, on_local)) = if b % 2 == 0 {
            let on_replica = search_block(&served, queries, k)?;
            (on_replica, search_block(&local, queries, k)?)
        } else {
            let on_local = search_block(&local, queries, k)?;
            (search_block(&served, queries, k)?, on_local)
        };
        replica_blocks.push(qps(on_replica_took));
        local_blocks.push(qps(on_local_took));
        same_answers &= on_replica == on_local;
    }
    let spread = |v: &[f64]| [v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(0.0, f64::max)];
    let (replica_qps_range, local_qps_range) = (spread(&replica_blocks), spread(&local_blocks));
    let (replica_qps, local_qps) = (median(replica_blocks), median(local_blocks));
    let search = Search {
        queries: queries.len(),
        k,
        block,
        replica_qps,
        replica_qps_range,
        local_qps,
        local_qps_range,
        ratio: replica_qps / local_qps,
        same_answers,
    };
    println!(
        "  search, {} single queries in blocks of {block}, k = {k}, median block: replica {:.1} QPS (blocks {:.1}-{:.1}), local {:.1} QPS (blocks {:.1}-{:.1}), ratio {:.3}; same answers: {}",
        search.queries,
        search.replica_qps,
        replica_qps_range[0],
        replica_qps_range[1],
        search.local_qps,
        local_qps_range[0],
        local_qps_range[1],
        search.ratio,
        search.same_answers
    );
    if !same_answers {
        return Err("the replica and the local directory answered differently".into());
    }
    drop((served, replica, local, storages));

    Ok(Outcome {
        rows,
        dim,
        chunks_per_document: CHUNKS_PER_DOCUMENT,
        segments: "exact".into(),
        server: params.server.clone(),
        endpoint: params.endpoint.clone(),
        cpu: cpu_model(),
        machine: crate::report::machine(),
        runs,
        full,
        listing,
        incremental_rows: extra,
        incremental,
        replica: catchup,
        search,
    })
}
