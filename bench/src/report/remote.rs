//! Snapshots on object storage against the local directory (`vecindex-bench remote`).

use std::fmt::Write as _;

use super::*;

/// What `bench/src/remote.rs` writes (the parts the report reads; that module is built only
/// with the feature `object-store`, the report always).
#[derive(serde::Deserialize)]
struct Remote {
    rows: usize,
    dim: usize,
    chunks_per_document: usize,
    server: String,
    cpu: String,
    runs: usize,
    full: Pair,
    listing: Option<Listing>,
    incremental_rows: usize,
    incremental: Pair,
    replica: Catchup,
    search: Search,
}

#[derive(serde::Deserialize)]
struct Pair {
    local: Persist,
    remote: Persist,
    ratio: f64,
}

#[derive(serde::Deserialize)]
struct Listing {
    objects: usize,
    seconds: f64,
    runs: Vec<f64>,
}

#[derive(serde::Deserialize)]
struct Persist {
    seconds: f64,
    seconds_min: f64,
    seconds_max: f64,
    bytes_written: u64,
    bytes_total: u64,
    files_written: usize,
    mb_per_s: f64,
}

#[derive(serde::Deserialize)]
struct Catchup {
    cold_open_s: f64,
    #[serde(default)]
    cold_open_runs: Vec<f64>,
    cold_open_bytes: u64,
    local_open_s: f64,
    refresh_s: Vec<f64>,
    refresh_s_median: f64,
    fetched_bytes: Vec<u64>,
    generation: u64,
    rows: usize,
}

#[derive(serde::Deserialize)]
struct Search {
    queries: usize,
    k: usize,
    #[serde(default)]
    block: usize,
    replica_qps: f64,
    #[serde(default)]
    replica_qps_range: [f64; 2],
    local_qps: f64,
    #[serde(default)]
    local_qps_range: [f64; 2],
    ratio: f64,
    same_answers: bool,
}

/// "1.23 s (runs 1.10-1.40)" or "45.6 ms (runs 40.1-50.2)".
fn time(p: &Persist) -> String {
    if p.seconds >= 1.0 {
        format!("{:.2} s (runs {:.2}-{:.2})", p.seconds, p.seconds_min, p.seconds_max)
    } else {
        format!("{:.1} ms (runs {:.1}-{:.1})", p.seconds * 1e3, p.seconds_min * 1e3, p.seconds_max * 1e3)
    }
}

/// The fastest and slowest of `runs` ("1.1-1.4 s"), or nothing for none.
fn range(runs: &[f64]) -> String {
    let min = runs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = runs.iter().copied().fold(0.0, f64::max);
    if runs.is_empty() {
        String::new()
    } else if max >= 1.0 {
        format!(" (runs {min:.2}-{max:.2})")
    } else {
        format!(" (runs {:.1}-{:.1})", min * 1e3, max * 1e3)
    }
}

fn seconds(s: f64) -> String {
    if s >= 1.0 { format!("{s:.2} s") } else { format!("{:.1} ms", s * 1e3) }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Writes this section into the report.
pub(super) fn write(report: &mut Report<'_>) -> Result<(), Error> {
    let Report { out, md, .. } = report;
    let Some(r) = read::<Remote>(&out.join("remote.json"))? else { return Ok(()) };
    writeln!(md, "## Snapshots on object storage (`vecindex-bench remote`)\n")?;
    writeln!(
        md,
        "{} x {} random unit vectors in documents of {} chunks, with exact segments (scanned: no HNSW graph is built, so building one does not dominate a persist or an open). The S3 side is {}, started by the script on loopback: the numbers measure the protocol's overhead (a request per file, listings of the prefix, the conditional put of the manifest) and that server's throughput on this machine ({}, which it shares with the benchmark), not a cloud's network. The local side persists into a directory on this machine's disk, fsyncing every file; `persist_to` keeps a copy of what it uploads in its local cache (not fsynced). Full persists alternate, {} of each, each into a new directory or prefix; a replica is opened on each prefix with an empty cache, polling only when told. Then {} rows (1%) are added and persisted as the writer left them (no sealing or merge in between, as in the disk section) into each directory and each prefix, and after each `persist_to` that prefix's replica is refreshed until it swaps in the new generation. Times are medians with the fastest and slowest run.\n",
        r.rows, r.dim, r.chunks_per_document, r.server, r.cpu, r.runs, r.incremental_rows
    )?;
    let (f, i) = (&r.full, &r.incremental);
    writeln!(md, "| measure | local directory | S3 ({}) | S3 / local |", r.server)?;
    writeln!(md, "|---|---:|---:|---:|")?;
    writeln!(
        md,
        "| full persist, {:.1} MB in {} files | {}, {:.0} MB/s | {}, {:.0} MB/s | {:.2}x |",
        mb(f.local.bytes_total),
        f.local.files_written,
        time(&f.local),
        f.local.mb_per_s,
        time(&f.remote),
        f.remote.mb_per_s,
        f.ratio
    )?;
    writeln!(
        md,
        "| incremental persist after +{} rows (1%): bytes written (files) | {:.2} MB ({}) | {:.2} MB ({}) | |",
        r.incremental_rows,
        mb(i.local.bytes_written),
        i.local.files_written,
        mb(i.remote.bytes_written),
        i.remote.files_written
    )?;
    writeln!(
        md,
        "| incremental persist after +{} rows (1%): time | {} | {} | {:.2}x |",
        r.incremental_rows,
        time(&i.local),
        time(&i.remote),
        i.ratio
    )?;
    let c = &r.replica;
    writeln!(
        md,
        "| open: from the directory (files in the page cache) / a replica's first open, cache empty ({:.1} MB fetched) | {} | {}{}, {:.0} MB/s | {:.1}x |",
        mb(c.cold_open_bytes),
        seconds(c.local_open_s),
        seconds(c.cold_open_s),
        range(&c.cold_open_runs),
        mb(c.cold_open_bytes) / c.cold_open_s.max(1e-9),
        c.cold_open_s / c.local_open_s.max(1e-9)
    )?;
    let fetched: Vec<String> = c.fetched_bytes.iter().map(|&b| format!("{:.2}", mb(b))).collect();
    writeln!(
        md,
        "| replica catch-up after the incremental persist: `refresh()` until it swaps in the new generation (MB each replica fetched: {}) | | {}{} | |",
        fetched.join(", "),
        seconds(c.refresh_s_median),
        range(&c.refresh_s)
    )?;
    if let Some(l) = &r.listing {
        writeln!(
            md,
            "| `ObjectStorage::open` on a prefix of {} objects: one listing of it (and the storage's I/O threads started) | | {}{} | |",
            l.objects,
            seconds(l.seconds),
            range(&l.runs)
        )?;
    }
    let s = &r.search;
    writeln!(
        md,
        "| search, {} single queries one at a time, k = {}: QPS of the median block of {} (the replica against the same snapshot opened from the directory, blocks alternating) | {:.1} (blocks {:.1}-{:.1}) | {:.1} (blocks {:.1}-{:.1}) | {:.2}x |\n",
        s.queries,
        s.k,
        s.block,
        s.local_qps,
        s.local_qps_range[0],
        s.local_qps_range[1],
        s.replica_qps,
        s.replica_qps_range[0],
        s.replica_qps_range[1],
        s.ratio
    )?;
    writeln!(
        md,
        "After catching up, each replica served generation {} with {} rows, the writer's count; {} of the {} queries had the same hits on the replica as on the local directory. A replica's files are fetched once into its cache and mapped from there, as the directory's are: searches read local memory either way. A persist into object storage lists the prefix once (for the newest manifest, the files it can reuse and those it may collect), and a replica's poll lists it once for itself and its open: with a snapshot of many files, that listing (the `ObjectStorage::open` row) weighs more in an incremental persist and a catch-up than the bytes they move. A catch-up also opens the whole new generation again: it maps every file and checks every rows file's archive, but hashes only the files it had not checked before.\n",
        c.generation,
        c.rows,
        if s.same_answers { "each" } else { "not each" },
        s.queries
    )?;
    Ok(())
}
