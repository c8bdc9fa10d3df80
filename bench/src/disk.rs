//! Persist and open against the disk's own speed:
//!
//! - persist bandwidth: a full persist of `rows` x `dim`, against `dd` writing the same number of
//!   bytes with `conv=fsync` (the real `dd`, as a process);
//! - incremental persist: the bytes a persist writes after 1% more rows, against the full one;
//! - open, cold (the directory's files evicted from the page cache with
//!   `posix_fadvise(DONTNEED)` after an fsync: no root needed) and warm, and the first query after
//!   it, against FAISS's `read_index` of a flat index of the same vectors.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faiss::{Index as _, MetricType};
use serde::{Deserialize, Serialize};
use vecindex::{Chunk, Index, IndexConfig, MutexIndex, OpenOptions, SearchOptions, SegmentIndex, VectorIndex};

use crate::data::{normalized, vector};
use crate::{median, ms};

pub struct Params {
    pub rows: usize,
    pub dim: usize,
    pub runs: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub rows: usize,
    pub dim: usize,
    pub runs: usize,
    pub persist_bytes: u64,
    /// Files the full persist wrote (each fsynced before the manifest names it).
    #[serde(default)]
    pub persist_files: usize,
    /// Medians over `runs`, and the fastest and slowest run.
    pub persist_ms: f64,
    #[serde(default)]
    pub persist_range: Range,
    pub mutex_persist_ms: f64,
    pub dd_ms: f64,
    #[serde(default)]
    pub dd_range: Range,
    pub incremental_rows: usize,
    pub incremental_bytes: u64,
    pub incremental_ms: f64,
    pub incremental_files: usize,
    pub opens: Vec<Open>,
}

/// The fastest and the slowest of a set of runs, in ms.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Range {
    pub min_ms: f64,
    pub max_ms: f64,
}

impl Range {
    fn of(values: &[f64]) -> Self {
        let min_ms = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max_ms = values.iter().copied().fold(0.0, f64::max);
        Range { min_ms, max_ms }
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1}-{:.1} ms", self.min_ms, self.max_ms)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Open {
    pub what: String,
    pub bytes: u64,
    pub cold_read_ms: f64,
    pub cold_open_ms: f64,
    pub cold_first_query_ms: f64,
    pub warm_open_ms: f64,
    pub warm_first_query_ms: f64,
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("read dir").map(|e| e.expect("entry").path()).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

/// Drops the directory's files from the page cache.
pub fn evict(dir: &Path) {
    for path in files(dir) {
        let file = std::fs::File::open(&path).expect("open");
        file.sync_all().expect("fsync");
        // SAFETY: a valid open file descriptor; the call only gives advice about its pages.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0, "posix_fadvise");
    }
}

fn chunks(range: std::ops::Range<usize>, dim: usize) -> Vec<Chunk> {
    range
        .map(|n| {
            Chunk::new(format!("c{n}"), format!("d{}", n / 8), vector(n as u64, dim)).with_text(format!("chunk {n}"))
        })
        .collect()
}

fn load<I: Index>(index: &I, rows: usize, dim: usize) {
    for start in (0..rows).step_by(1000) {
        index.add_chunks(chunks(start..(start + 1000).min(rows), dim)).expect("valid chunks");
    }
}

/// A file of `bytes` (whole MiB, at least one) of incompressible data for [`dd`] to copy: not
/// `/dev/zero`, since a virtual disk may store zeros for less.
struct DdSource {
    path: PathBuf,
    bytes: u64,
}

impl DdSource {
    fn new(dir: &Path, bytes: u64) -> Self {
        let mib = bytes.div_ceil(1 << 20).max(1);
        let path = dir.join("dd-source.bin");
        // xorshift64, one word at a time: no zero runs, nothing a disk could store for less.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..(mib << 17))
            .flat_map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()
            })
            .collect();
        std::fs::write(&path, noise).expect("dd source");
        DdSource { path, bytes }
    }

    /// `dd bs=1M conv=fsync` copying the source (in the page cache) to a new file; its wall time,
    /// scaled to exactly `bytes`.
    fn dd(&self) -> Duration {
        let target = self.path.with_file_name("dd.bin");
        let started = Instant::now();
        let status = std::process::Command::new("dd")
            .args([
                &format!("if={}", self.path.display()),
                &format!("of={}", target.display()),
                "bs=1M",
                "conv=fsync",
                "status=none",
            ])
            .status()
            .expect("dd runs");
        let took = started.elapsed();
        assert!(status.success(), "dd failed");
        std::fs::remove_file(target).expect("remove");
        let copied = self.bytes.div_ceil(1 << 20).max(1) << 20;
        took.mul_f64(self.bytes as f64 / copied as f64)
    }
}

impl Drop for DdSource {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Opens an index directory and returns a search that answers how many hits it found.
type Opener<'a> = &'a dyn Fn(&Path) -> Box<dyn FnMut(&[f32]) -> usize>;

/// Cold and warm opens of `dir` by `open`, which returns a searcher for the first query.
fn time_opens(what: &str, dir: &Path, runs: usize, query: &[f32], open: Opener) -> Open {
    let bytes: u64 = files(dir).iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).sum();
    let (mut read, mut cold, mut cold_q, mut warm, mut warm_q) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        evict(dir);
        let started = Instant::now();
        let total: usize = files(dir).iter().map(|p| std::fs::read(p).expect("read").len()).sum();
        read.push(ms(started.elapsed()));
        assert_eq!(total as u64, bytes);
        let timed = |cold: bool| {
            if cold {
                evict(dir);
            }
            let started = Instant::now();
            let mut search = open(dir);
            let open_ms = ms(started.elapsed());
            let started = Instant::now();
            assert_eq!(search(query), 10);
            (open_ms, ms(started.elapsed()))
        };
        let (open_ms, query_ms) = timed(true);
        cold.push(open_ms);
        cold_q.push(query_ms);
        let (open_ms, query_ms) = timed(false);
        warm.push(open_ms);
        warm_q.push(query_ms);
    }
    let open = Open {
        what: what.to_owned(),
        bytes,
        cold_read_ms: median(read),
        cold_open_ms: median(cold),
        cold_first_query_ms: median(cold_q),
        warm_open_ms: median(warm),
        warm_first_query_ms: median(warm_q),
    };
    println!(
        "  open {:<28} {:>7.1} MB: cold read {:>7.1} ms, cold open {:>7.1} ms + first query {:>6.1} ms, warm open {:>6.1} ms + first query {:>5.1} ms",
        open.what,
        bytes as f64 / 1e6,
        open.cold_read_ms,
        open.cold_open_ms,
        open.cold_first_query_ms,
        open.warm_open_ms,
        open.warm_first_query_ms
    );
    open
}

pub fn run(params: &Params, scratch: &Path) -> Outcome {
    let (rows, dim) = (params.rows, params.dim);
    let root = tempfile::tempdir_in(scratch).expect("scratch");
    let config = IndexConfig::new(dim).segment_index(SegmentIndex::exact()).background(false);

    // Full persist against dd, `runs` times each, alternating: the time to copy into the page
    // cache varies between runs here (it depends on how recently the guest's memory was used),
    // so one sample of each would compare luck.
    let index = VectorIndex::new(config.clone()).expect("config");
    load(&index, rows, dim);
    index.maintain();
    let mutex = MutexIndex::new(config.clone()).expect("config");
    load(&mutex, rows, dim);
    let dir = root.path().join("vecindex");
    let (mut persists, mut dds, mut mutex_persists) = (vec![], vec![], vec![]);
    let mut full: Option<vecindex::PersistReport> = None;
    let mut source = None;
    for run in 0..params.runs {
        let run_dir = if run == 0 { dir.clone() } else { root.path().join(format!("vecindex-{run}")) };
        let written = index.persist(&run_dir).expect("persist");
        persists.push(ms(written.duration));
        let source = source.get_or_insert_with(|| DdSource::new(root.path(), written.bytes_written));
        dds.push(ms(source.dd()));
        let mutex_dir = root.path().join("mutex");
        mutex_persists.push(ms(mutex.persist(&mutex_dir).expect("persist").duration));
        std::fs::remove_dir_all(&mutex_dir).expect("remove");
        if run > 0 {
            std::fs::remove_dir_all(&run_dir).expect("remove");
        }
        full.get_or_insert(written);
    }
    drop((mutex, source));
    let full = full.expect("at least one run");
    let (persist_range, dd_range) = (Range::of(&persists), Range::of(&dds));
    let (persist_ms, dd_ms, mutex_persist_ms) = (median(persists), median(dds), median(mutex_persists));
    println!(
        "  full persist of {rows} x {dim}: {:.1} MB in {} files, median of {} runs {persist_ms:.1} ms ({:.0} MB/s, runs {persist_range}); dd of the same bytes with fsync {dd_ms:.1} ms ({:.0} MB/s, runs {dd_range}); MutexIndex {mutex_persist_ms:.1} ms",
        full.bytes_written as f64 / 1e6,
        full.files_written,
        params.runs,
        full.bytes_written as f64 / 1e3 / persist_ms,
        full.bytes_written as f64 / 1e3 / dd_ms
    );

    // +1% rows, then an incremental persist.
    let extra = rows.div_ceil(100);
    index.add_chunks(chunks(rows..rows + extra, dim)).expect("valid chunks");
    let incremental = index.persist(&dir).expect("persist");
    println!(
        "  incremental persist after +{extra} rows (1%): {} bytes in {} files = {:.2}% of the full persist's {} bytes, {:.1} ms",
        incremental.bytes_written,
        incremental.files_written,
        incremental.bytes_written as f64 * 100.0 / full.bytes_written as f64,
        full.bytes_written,
        ms(incremental.duration)
    );
    drop(index);

    // Opens: vecindex (exact and FAISS Flat segments) against FAISS read_index of a flat index,
    // read-only as FAISS reads (a writable open also starts a log segment and takes the lock).
    let query = vector(u64::MAX / 3, dim);
    let mut opens = Vec::new();
    let open_config = config.clone();
    opens.push(time_opens("vecindex, exact segments", &dir, params.runs, &query, &|dir: &Path| {
        let (index, _) =
            VectorIndex::open_with_options(dir, &OpenOptions::new().config(open_config.clone()).read_only(true))
                .expect("open");
        Box::new(move |q: &[f32]| index.search(q, &SearchOptions::k(10)).expect("search").len())
    }));
    let flat_config = IndexConfig::new(dim).segment_index(SegmentIndex::faiss("Flat").min_rows(0)).background(false);
    let flat_dir = root.path().join("vecindex-flat");
    {
        let index = VectorIndex::new(flat_config.clone()).expect("config");
        load(&index, rows, dim);
        index.maintain();
        index.persist(&flat_dir).expect("persist");
    }
    opens.push(time_opens("vecindex, FAISS Flat segments", &flat_dir, params.runs, &query, &|dir: &Path| {
        let (index, _) =
            VectorIndex::open_with_options(dir, &OpenOptions::new().config(flat_config.clone()).read_only(true))
                .expect("open");
        Box::new(move |q: &[f32]| index.search(q, &SearchOptions::k(10)).expect("search").len())
    }));
    std::fs::remove_dir_all(&flat_dir).expect("remove");
    let faiss_dir = root.path().join("faiss");
    std::fs::create_dir_all(&faiss_dir).expect("mkdir");
    {
        let mut flat = faiss::index_factory(dim as u32, "Flat", MetricType::InnerProduct).expect("FAISS");
        let vectors: Vec<f32> = (0..rows).flat_map(|n| normalized(vector(n as u64, dim))).collect();
        flat.add(&vectors).expect("add");
        faiss::write_index(&flat, faiss_dir.join("index.faiss").to_str().expect("UTF-8")).expect("write");
    }
    opens.push(time_opens("FAISS read_index (Flat)", &faiss_dir, params.runs, &query, &|dir: &Path| {
        let mut index = faiss::read_index(dir.join("index.faiss").to_str().expect("UTF-8")).expect("read_index");
        Box::new(move |q: &[f32]| index.search(&normalized(q.to_vec()), 10).expect("search").labels.len())
    }));
    Outcome {
        rows,
        dim,
        runs: params.runs,
        persist_bytes: full.bytes_written,
        persist_files: full.files_written,
        persist_ms,
        persist_range,
        mutex_persist_ms,
        dd_ms,
        dd_range,
        incremental_rows: extra,
        incremental_bytes: incremental.bytes_written,
        incremental_ms: ms(incremental.duration),
        incremental_files: incremental.files_written,
        opens,
    }
}
