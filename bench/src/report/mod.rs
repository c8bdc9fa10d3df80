//! `docs/benchmarks.md` and its plots, from the results the harness, criterion and the peers
//! script wrote. Every number in the report is read from those files; nothing is typed in.
//!
//! One file per section of the report; each writes its section and the targets it measures.

mod disk;
mod duplicates;
mod durability;
mod embed_load;
mod embedders;
mod filtered;
mod growth;
mod live;
mod plots;
mod python;
mod recall;
mod remote;
mod scaling;
mod seed;
mod throughput;
mod writers;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

type Error = Box<dyn std::error::Error>;

/// How the numbers are taken; the same for every run of the script.
const METHOD: &str = "\
## Method

- The designs: `VectorIndex` (this crate), `MutexIndex` (the same library behind one lock held for
  every call, persist included: the design the seed settled on) and `FaissMutex` (the old design
  itself: a FAISS flat index and hash maps behind one mutex, persist writing FAISS's file and the
  maps under it). Same vectors, same calls, through one small trait (`bench/src/design.rs`).
- Latencies are taken per call with `Instant` around the call alone (ids and vectors are made
  before) and kept in HdrHistogram (3 significant digits). A call over 1 ms is checked against the
  thread's involuntary context switches (`getrusage(RUSAGE_THREAD)`), to tell a stall of the index
  from the writer waiting for a core: the machine has 2 cores and the index's sealer and builder
  threads, the persister and the writer share them.
- Search throughput is single queries, one at a time, on one thread (a server's case), k = 10;
  recall@10 is against exact inner-product search over the same vectors (ground truth from
  numpy, `scripts/bench/dataset.py`). FAISS builds (vecindex's segments and the peers) use every core.
- Criterion benchmarks use exact segments, so they compare the concurrency designs rather than
  index types; the recall benchmark uses vecindex's defaults (HNSW32 segments, efConstruction 80).
- Persist numbers are on this machine's disk (ext4 on a virtio disk); `dd` writes the same number
  of bytes (incompressible, from a file in the page cache) with `conv=fsync` right before, as the
  reference. Cold opens evict the files from the page
  cache with `posix_fadvise(DONTNEED)` after an fsync.
";

pub(super) fn read<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display()).into()),
    }
}

/// Files in `dir` named `prefix*.json`, sorted.
pub(super) fn matching(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix) && n.ends_with(".json"))
        })
        .collect();
    out.sort();
    out
}

/// Criterion's mean estimate (ns) of `group/id` under `criterion_dir`.
pub(super) fn criterion_mean_ns(criterion_dir: &Path, group: &str, id: &str) -> Option<f64> {
    let path = criterion_dir.join(group).join(id).join("new/estimates.json");
    let value: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    value["mean"]["point_estimate"].as_f64()
}

/// The CPU model, cores and memory of this machine.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("unknown CPU", |m| m.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!("{model}, {cores} cores, {memory:.0} GiB")
}

/// One line of the targets table.
pub(super) struct Target {
    pub(super) what: &'static str,
    pub(super) goal: String,
    pub(super) measured: String,
    pub(super) met: Option<bool>,
    /// Why it can miss: printed under the table when it did (no numbers: those are above).
    pub(super) why: String,
}

pub(super) fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "missed",
        None => "not measured",
    }
}

/// What every section writes into: the report so far, its targets, and where things are.
pub(super) struct Report<'a> {
    /// The results directory.
    out: &'a Path,
    criterion_dir: &'a Path,
    plots_dir: PathBuf,
    /// The plots directory as the report links it.
    plots_rel: String,
    md: String,
    targets: Vec<Target>,
}

/// Writes the report to `to` and its plots beside it (in `<stem>/`), from the results in `out`
/// and criterion's estimates in `criterion_dir`.
pub fn write(out: &Path, to: &Path, criterion_dir: &Path) -> Result<(), Error> {
    let plots_dir = to.with_extension("");
    std::fs::create_dir_all(&plots_dir)?;
    let plots_rel = plots_dir.file_name().and_then(|n| n.to_str()).unwrap_or("benchmarks").to_owned();
    let mut md = String::new();
    writeln!(md, "# Benchmarks\n")?;
    writeln!(
        md,
        "Generated by `scripts/bench-report` from the files it ran the benchmarks into; every number below is one"
    )?;
    writeln!(md, "those benchmarks printed. Do not edit by hand: rerun the script.\n")?;
    writeln!(md, "- Machine: {}", machine())?;
    writeln!(
        md,
        "- FAISS: the `faiss` crate's static build at the SIMD level `.cargo/config.toml` sets (AVX2, FMA, F16C, POPCNT; the recall tables say which level each run had); the peers' faiss-cpu"
    )?;
    writeln!(
        md,
        "  from PyPI is measured at each SIMD level it dispatches to on this CPU (`FAISS_SIMD_LEVEL`; NONE is its generic code), to show what that difference is worth."
    )?;
    writeln!(md, "- Raw results: `{}` (JSON, criterion's estimates under `criterion/`).\n", out.display())?;
    writeln!(md, "{METHOD}")?;
    let mut report = Report { out, criterion_dir, plots_dir, plots_rel, md, targets: Vec::new() };
    throughput::write(&mut report)?;
    writers::write(&mut report)?;
    durability::write(&mut report)?;
    seed::write(&mut report)?;
    recall::write(&mut report)?;
    live::write(&mut report)?;
    scaling::write(&mut report)?;
    filtered::write(&mut report)?;
    disk::write(&mut report)?;
    remote::write(&mut report)?;
    growth::write(&mut report)?;
    duplicates::write(&mut report)?;
    python::write(&mut report)?;
    embedders::write(&mut report)?;
    embed_load::write(&mut report)?;
    let Report { plots_dir, mut md, targets, .. } = report;

    // Targets first in the file, after the header.
    let mut table = String::from(
        "## Targets\n\nFrom the issue that set them; \"missed\" rows say by how much, and the list under the table says why.\n\n| target | goal | measured | |\n|---|---|---|---|\n",
    );
    for t in &targets {
        writeln!(table, "| {} | {} | {} | {} |", t.what, t.goal, t.measured, verdict(t.met))?;
    }
    let missed: Vec<&Target> = targets.iter().filter(|t| t.met == Some(false)).collect();
    if !missed.is_empty() {
        table.push_str("\nWhy the missed ones missed:\n\n");
        let mut explained = Vec::new();
        for t in missed {
            // The same reason given for two targets (one per dataset) is written once.
            if !explained.contains(&&t.why) {
                explained.push(&t.why);
                writeln!(table, "- {}: {}", t.what, t.why)?;
            }
        }
    }
    table.push('\n');
    let at = md.find("## Throughput").unwrap_or(md.len());
    md.insert_str(at, &table);
    std::fs::write(to, md)?;
    println!("wrote {} and its plots in {}", to.display(), plots_dir.display());
    Ok(())
}
