//! The live index against itself force-merged: what a server that ingests all day gets.
//!
//! 1. Quiet writer: a fresh index with no background worker, nobody searching and nothing
//!    persisting; one writer adds rows one `add_chunk` at a time at `rate` for `quiet_seconds`.
//!    Its latencies are the baseline for the writer's promise.
//! 2. Preload: `preload_fraction` of the dataset goes into an index with the background worker on
//!    (the default merge policy), 1 000 rows per call, then the worker is let finish.
//! 3. Live: the same writer adds the held-out rows at `rate` (replacing them from the first again
//!    if it runs out), another thread persists every `persist_every` (as a server persists on an
//!    interval: back to back, a persister would take a core of its own from the searcher on the
//!    2-core machines here), the worker seals, merges and builds,
//!    and this thread sweeps efSearch over the queries one at a time, again and again for
//!    `live_seconds`, so that every efSearch meets seals and merges. Recall is against exact
//!    search over the rows acknowledged when the query returned: the dataset's exact top-100 of
//!    the whole base, kept to those rows, first 10 (rows the writer adds during a query may or
//!    may not be in its view; that is at most a few rows of the truth).
//! 4. Settled: the writer and the persister stop, the worker takes in what is left, and the
//!    same sweep runs on the live index as it is (its segments and dead rows), nobody else on
//!    the cores: set against the live sweep, what sharing the cores costs.
//! 5. Merged: the rest of the held-out rows are added, `force_merge` runs, and the same sweep
//!    runs on the whole set.
//!
//! The background threads' CPU (every thread named `vecindex-builder` or `vecindex-sealer`, and
//! the OpenMP threads they start, which inherit the name) from the index's creation to the end of
//! the live phase is set against the CPU of one raw FAISS HNSW32 build of the whole set.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use faiss::{Index as _, MetricType};
use serde::{Deserialize, Serialize};
use vecindex::{Chunk, IndexConfig, SearchOptions, SegmentIndex, SegmentState, VectorIndex};

use crate::data::{Dataset, Meta};
use crate::latency::{Latencies, Summary};
use crate::recall::{K, Point, faiss_simd_level, head_rows, measure_against, rows, sealed_segments, set_parameter};

pub struct Params {
    /// The share of the dataset loaded before the live phase; the writer adds the rest.
    pub preload_fraction: f64,
    /// The writer's adds per second (paced: a late call is not made up in a burst).
    pub rate: f64,
    pub quiet_seconds: f64,
    /// How often the live phase persists.
    pub persist_every: Duration,
    pub efs: Vec<usize>,
    /// The live phase sweeps efSearch again and again for at least this long.
    pub live_seconds: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Shape {
    pub segments: usize,
    pub head_rows: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub dataset: Meta,
    pub faiss_simd: String,
    pub preload: usize,
    pub rate: f64,
    /// The live sweep, and the index's shape when it began and ended.
    pub live: Vec<Point>,
    pub live_start: Shape,
    pub live_end: Shape,
    /// Rows the writer added during the live sweeps (replacements included), persists done,
    /// and how many times the live phase swept efSearch.
    pub live_adds: usize,
    #[serde(default)]
    pub live_rounds: usize,
    pub live_persists: usize,
    /// The same index once the writer and the persister stopped and the worker caught up: the
    /// live index's shape without anyone else on the cores.
    #[serde(default)]
    pub settled: Vec<Point>,
    #[serde(default)]
    pub settled_shape: Option<Shape>,
    pub merged: Vec<Point>,
    pub merged_shape: Shape,
    pub writer_quiet: Summary,
    pub writer_live: Summary,
    /// Background threads' CPU seconds over the preload and the live phase, the rows they took
    /// in, and one raw FAISS HNSW32 build of the whole set (process CPU seconds, nothing else
    /// running).
    pub worker_cpu_s: f64,
    pub worker_rows: usize,
    pub hnsw_build_cpu_s: f64,
}

fn chunk(data: &Dataset, row: usize) -> Chunk {
    Chunk::new(row.to_string(), (row / 8).to_string(), data.row(row).to_vec())
}

fn shape(index: &VectorIndex) -> Shape {
    Shape { segments: sealed_segments(index), head_rows: head_rows(index) }
}

/// CPU seconds (user + system) of this process's threads whose name starts with one of
/// `prefixes`.
fn threads_cpu_s(prefixes: &[&str]) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| prefixes.iter().any(|p| name.starts_with(p)))
        })
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .filter_map(|stat| {
            // Fields after the parenthesized name; utime and stime are the 12th and 13th.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            Some(fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?)
        })
        .sum::<f64>()
        / ticks
}

fn worker_cpu_s() -> f64 {
    // Linux truncates thread names to 15 bytes: "vecindex-builde".
    threads_cpu_s(&["vecindex-builde", "vecindex-sealer"])
}

/// This process's CPU seconds so far.
fn process_cpu_s() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is valid for writes of a `rusage`.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return 0.0;
    }
    // SAFETY: zero-initialized, and filled in by the successful call.
    let usage = unsafe { usage.assume_init() };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(usage.ru_utime) + s(usage.ru_stime)
}

/// Waits until the background worker has nothing left: no frozen head, every sealed segment
/// large enough for an index has its index (a build in progress publishes nothing until it
/// ends, so an unchanged list alone would not tell), and the same segments over two looks a
/// second apart (a merge may start between two builds).
pub(crate) fn settle(index: &VectorIndex) {
    let config = &index.config().segment_index;
    let (min_rows, shared_graph) = (config.min_rows, config.graph_links().is_some());
    let look = || -> (Vec<(u64, String)>, bool) {
        let stats = index.stats();
        let rows: usize = stats.segments.iter().map(|s| s.rows).sum();
        let pending = stats.segments.iter().any(|s| {
            s.state == SegmentState::Frozen
                || (!shared_graph
                    && s.state == SegmentState::Sealed
                    && s.indexed_vectors.is_none()
                    && s.rows >= min_rows.max(1))
        }) || (shared_graph && rows >= min_rows && stats.graph.as_ref().is_none_or(|g| g.nodes < rows));
        (stats.segments.iter().map(|s| (s.id, s.label())).collect(), pending)
    };
    let mut before = look().0;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let (now, pending) = look();
        if now == before && !pending {
            return;
        }
        before = now;
    }
}

/// Adds `rows` (cycling through them) at `rate` until `stop`, one call per row; `acked` counts
/// distinct rows added. Returns the latencies and the number of calls.
fn write_paced(
    index: &VectorIndex,
    data: &Dataset,
    rows: std::ops::Range<usize>,
    rate: f64,
    stop: &AtomicBool,
    acked: &AtomicUsize,
) -> (Latencies, usize) {
    let mut latencies = Latencies::default();
    let period = Duration::from_secs_f64(1.0 / rate);
    let started = Instant::now();
    let mut calls = 0usize;
    let held = rows.len();
    while !stop.load(Ordering::Relaxed) {
        let due = started + period * calls as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let row = rows.start + calls % held;
        let chunk = chunk(data, row);
        let call = Instant::now();
        index.add_chunk(chunk).expect("valid chunk");
        latencies.record(call.elapsed());
        calls += 1;
        acked.store(calls.min(held), Ordering::Release);
    }
    (latencies, calls)
}

/// One sweep over efSearch; `present` is the number of rows (from row 0) the truth may hold
/// when a query returns.
fn sweep(data: &Dataset, index: &VectorIndex, efs: &[usize], present: &dyn Fn() -> usize) -> Vec<Point> {
    let truth = |q| {
        let rows = present();
        data.truth(q, data.meta.gt_k).iter().copied().filter(|&r| (r as usize) < rows).take(K).collect()
    };
    efs.iter()
        .map(|&ef| {
            let options = SearchOptions::k(K).ef_search(ef);
            let search = |q: &[f32]| rows(index.search(q, &options).expect("search"));
            Point { ef_search: Some(ef), ..measure_against(data, data.meta.queries, search, truth) }
        })
        .collect()
}

/// Sweeps again and again until `min_seconds` have passed (at least once), so that every
/// efSearch sees the seals, merges and persists of a steady state rather than whichever of them
/// one short sweep happened to meet. Returns one point per efSearch over all rounds (QPS from
/// the total time, recall and mean latency averaged, p99 the median of the rounds'), and the
/// number of rounds.
fn sweep_for(
    data: &Dataset,
    index: &VectorIndex,
    efs: &[usize],
    present: &dyn Fn() -> usize,
    min_seconds: f64,
) -> (Vec<Point>, usize) {
    let started = Instant::now();
    let mut rounds: Vec<Vec<Point>> = Vec::new();
    while rounds.is_empty() || started.elapsed().as_secs_f64() < min_seconds {
        rounds.push(sweep(data, index, efs, present));
    }
    let n = rounds.len() as f64;
    let combined = (0..efs.len())
        .map(|i| {
            let points: Vec<&Point> = rounds.iter().map(|round| &round[i]).collect();
            let seconds_per_query: f64 = points.iter().map(|p| 1.0 / p.qps).sum::<f64>() / n;
            let mut p99s: Vec<f64> = points.iter().map(|p| p.p99_latency_us).collect();
            p99s.sort_by(f64::total_cmp);
            Point {
                ef_search: points[0].ef_search,
                recall_at_10: points.iter().map(|p| p.recall_at_10).sum::<f64>() / n,
                qps: 1.0 / seconds_per_query,
                mean_latency_us: points.iter().map(|p| p.mean_latency_us).sum::<f64>() / n,
                p99_latency_us: p99s[p99s.len() / 2],
            }
        })
        .collect();
    (combined, rounds.len())
}

fn print_sweep(label: &str, points: &[Point]) {
    for p in points {
        println!(
            "  {label:<14} ef {:>4}  recall@10 {:.4}  {:>8.0} QPS  mean {:>8.1} µs  p99 {:>8.1} µs",
            p.ef_search.unwrap_or(0),
            p.recall_at_10,
            p.qps,
            p.mean_latency_us,
            p.p99_latency_us
        );
    }
}

pub fn run(data: &Dataset, params: &Params, scratch: &Path) -> Outcome {
    let n = data.meta.n;
    let preload = ((n as f64 * params.preload_fraction) as usize).clamp(1, n - 1);
    let held = preload..n;
    let config = IndexConfig::new(data.dim()).segment_index(SegmentIndex::default());

    // 1. The quiet writer.
    let quiet = VectorIndex::new(config.clone().background(false)).expect("config");
    let stop = AtomicBool::new(false);
    let acked = AtomicUsize::new(0);
    let (writer_quiet, _) = std::thread::scope(|s| {
        let writer = s.spawn(|| write_paced(&quiet, data, held.clone(), params.rate, &stop, &acked));
        std::thread::sleep(Duration::from_secs_f64(params.quiet_seconds));
        stop.store(true, Ordering::Relaxed);
        writer.join().expect("writer")
    });
    drop(quiet);
    let writer_quiet = writer_quiet.summary();
    println!(
        "  quiet writer   p50 {:.1} µs  p99.9 {:.1} µs  ({} adds)",
        writer_quiet.p50_us, writer_quiet.p999_us, writer_quiet.count
    );

    // 2. Preload with the worker on.
    let cpu_before = worker_cpu_s();
    let index = VectorIndex::new(config).expect("config");
    let started = Instant::now();
    for start in (0..preload).step_by(1000) {
        index
            .add_chunks((start..(start + 1000).min(preload)).map(|row| chunk(data, row)).collect())
            .expect("valid chunks");
    }
    settle(&index);
    println!("  preload        {preload} rows in {:.1} s (worker included)", started.elapsed().as_secs_f64());

    // 3. Live.
    let live_start = shape(&index);
    let stop = AtomicBool::new(false);
    let acked = AtomicUsize::new(0);
    let persists = AtomicUsize::new(0);
    let ((live, live_rounds), (writer_live, live_adds)) = std::thread::scope(|s| {
        let writer = s.spawn(|| write_paced(&index, data, held.clone(), params.rate, &stop, &acked));
        let persister = s.spawn(|| {
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if Instant::now() < next {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                next = Instant::now() + params.persist_every;
                index.persist(scratch).expect("persist");
                persists.fetch_add(1, Ordering::Relaxed);
            }
        });
        let present = || preload + acked.load(Ordering::Acquire);
        let live = sweep_for(data, &index, &params.efs, &present, params.live_seconds);
        stop.store(true, Ordering::Relaxed);
        persister.join().expect("persister");
        (live, writer.join().expect("writer"))
    });
    let worker_cpu_s = worker_cpu_s() - cpu_before;
    let live_end = shape(&index);
    let writer_live = writer_live.summary();
    print_sweep("live", &live);
    println!(
        "  live writer    p50 {:.1} µs  p99.9 {:.1} µs  ({live_adds} adds, {} persists, {live_rounds} sweeps; segments + head rows {} + {} -> {} + {})",
        writer_live.p50_us,
        writer_live.p999_us,
        persists.load(Ordering::Relaxed),
        live_start.segments,
        live_start.head_rows,
        live_end.segments,
        live_end.head_rows
    );
    let worker_rows = preload + live_adds;

    // 4. Settled: nobody else on the cores, the live index's parts and dead rows kept.
    let added = acked.load(Ordering::Acquire);
    settle(&index);
    let settled_shape = shape(&index);
    let settled = sweep(data, &index, &params.efs, &|| preload + added);
    print_sweep("settled", &settled);

    // 5. Merged: the whole set, one graph.
    for start in (preload + added..n).step_by(1000) {
        index.add_chunks((start..(start + 1000).min(n)).map(|row| chunk(data, row)).collect()).expect("valid chunks");
    }
    index.force_merge();
    settle(&index);
    let merged_shape = shape(&index);
    let merged = sweep(data, &index, &params.efs, &|| n);
    print_sweep("force-merged", &merged);
    drop(index);

    // One raw FAISS build of the whole set, with vecindex's construction parameters.
    let cpu_before = process_cpu_s();
    let mut hnsw = faiss::index_factory(data.dim() as u32, "HNSW32", MetricType::InnerProduct).expect("FAISS");
    set_parameter(&mut hnsw, "efConstruction", SegmentIndex::default().ef_construction as f64);
    hnsw.add(&data.base).expect("add");
    let hnsw_build_cpu_s = process_cpu_s() - cpu_before;
    drop(hnsw);
    println!(
        "  merge CPU      {:.2} ms per row over {worker_rows} rows; one HNSW32 build of {n} rows {:.2} ms per row ({:.2}x)",
        worker_cpu_s * 1e3 / worker_rows as f64,
        hnsw_build_cpu_s * 1e3 / n as f64,
        (worker_cpu_s / worker_rows as f64) / (hnsw_build_cpu_s / n as f64)
    );

    Outcome {
        dataset: data.meta.clone(),
        faiss_simd: faiss_simd_level(),
        preload,
        rate: params.rate,
        live,
        live_start,
        live_end,
        live_adds,
        live_rounds,
        live_persists: persists.load(Ordering::Relaxed),
        settled,
        settled_shape: Some(settled_shape),
        merged,
        merged_shape,
        writer_quiet,
        writer_live,
        worker_cpu_s,
        worker_rows,
        hnsw_build_cpu_s,
    }
}
