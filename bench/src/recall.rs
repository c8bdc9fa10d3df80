//! Search latency and recall@10 against exact search on a real dataset (see [`crate::data`]):
//! raw FAISS flat and HNSW32 (the crate's own build, AVX2 by default; HNSW32 with vecindex's
//! efConstruction, over the same sweep of efSearch), vecindex with exact segments, and vecindex
//! with its default HNSW segments over a sweep of efSearch. Queries run one at a time on one
//! thread, as a server answers them.

use std::time::{Duration, Instant};

use faiss::{Index as _, MetricType};
use serde::{Deserialize, Serialize};
use vecindex::{Chunk, IndexConfig, SearchOptions, SegmentIndex, VectorIndex};

use crate::data::{Dataset, Meta, recall};

pub const K: usize = 10;

pub struct Params {
    pub efs: Vec<usize>,
    /// Queries for the exact (scanning) configurations, which are slow.
    pub exact_queries: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Point {
    pub ef_search: Option<usize>,
    pub recall_at_10: f64,
    pub qps: f64,
    pub mean_latency_us: f64,
    pub p99_latency_us: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    pub system: String,
    pub index: String,
    pub build_s: f64,
    pub segments: usize,
    /// Rows not in a sealed segment (the head, and frozen heads), which every query scans.
    #[serde(default)]
    pub head_rows: usize,
    /// The index's own accounting (MiB): vectors, row metadata, FAISS indexes.
    pub memory_mb: f64,
    pub sweep: Vec<Point>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub dataset: Meta,
    pub configs: Vec<Config>,
    /// The SIMD level the crate's FAISS was compiled for (results from before it was recorded
    /// came from the generic build).
    #[serde(default = "generic_build")]
    pub faiss_simd: String,
}

fn generic_build() -> String {
    "generic".into()
}

/// The SIMD level of this binary's FAISS: "AVX2" when it was compiled to assume AVX2 and FMA
/// (the workspace default), else "generic".
pub fn faiss_simd_level() -> String {
    let assumed = vecindex::faiss_simd();
    if assumed.contains(&"avx2") && assumed.contains(&"fma") { "AVX2" } else { "generic" }.into()
}

/// Times `queries` single queries; `search` returns base rows.
fn measure(data: &Dataset, queries: usize, search: impl FnMut(&[f32]) -> Vec<u32>) -> Point {
    measure_against(data, queries, search, |q| data.truth(q, K).to_vec())
}

/// As [`measure`], with recall against `truth(q)`, which is asked after query `q` returns.
pub(crate) fn measure_against(
    data: &Dataset,
    queries: usize,
    mut search: impl FnMut(&[f32]) -> Vec<u32>,
    truth: impl Fn(usize) -> Vec<u32>,
) -> Point {
    let queries = queries.min(data.meta.queries);
    let mut latencies = Vec::with_capacity(queries);
    let mut total_recall = 0.0;
    for q in 0..queries {
        let started = Instant::now();
        let found = search(data.query(q));
        latencies.push(started.elapsed());
        total_recall += recall(&found, &truth(q));
    }
    let total: Duration = latencies.iter().sum();
    latencies.sort();
    Point {
        ef_search: None,
        recall_at_10: total_recall / queries as f64,
        qps: queries as f64 / total.as_secs_f64(),
        mean_latency_us: total.as_secs_f64() * 1e6 / queries as f64,
        p99_latency_us: latencies[(queries * 99 / 100).min(queries - 1)].as_secs_f64() * 1e6,
    }
}

/// Sets a FAISS index parameter ("efSearch", "efConstruction") through FAISS's ParameterSpace.
pub(crate) fn set_parameter(index: &mut faiss::index::IndexImpl, name: &str, value: f64) {
    let name = std::ffi::CString::new(name).expect("no NUL");
    let mut space = std::ptr::null_mut();
    // SAFETY: FFI calls of FAISS's C API: `space` is created, used once with a live index
    // pointer and a NUL-terminated name, and freed; every return code is checked.
    unsafe {
        assert_eq!(faiss_sys::faiss_ParameterSpace_new(&mut space), 0, "ParameterSpace");
        let rc = faiss_sys::faiss_ParameterSpace_set_index_parameter(space, index.inner_ptr(), name.as_ptr(), value);
        faiss_sys::faiss_ParameterSpace_free(space);
        assert_eq!(rc, 0, "set {name:?}");
    }
}

/// The size of FAISS's serialization of `index` (vectors and graph), in MiB.
fn serialized_mb(index: &faiss::index::IndexImpl) -> f64 {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    faiss::write_index(index, file.path().to_str().expect("UTF-8 path")).expect("FAISS write");
    std::fs::metadata(file.path()).expect("metadata").len() as f64 / (1 << 20) as f64
}

unsafe extern "C" {
    fn omp_get_max_threads() -> std::os::raw::c_int;
    fn omp_set_num_threads(threads: std::os::raw::c_int);
}

/// Runs `f` with this thread's OpenMP team size at one, as vecindex runs each query
/// (`SegmentIndex::search_threads`), then restores it.
fn one_search_thread<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: plain OpenMP runtime calls (libgomp, which FAISS links); they change only this
    // thread's nthreads-var.
    let before = unsafe { omp_get_max_threads() };
    // SAFETY: as above.
    unsafe { omp_set_num_threads(1) };
    let result = f();
    // SAFETY: as above.
    unsafe { omp_set_num_threads(before) };
    result
}

pub(crate) fn rows(hits: Vec<vecindex::SearchHit>) -> Vec<u32> {
    hits.iter().map(|h| h.chunk_id.parse().expect("row ids")).collect()
}

/// Loads the dataset into a vecindex index with `segments`, and returns it with the time that
/// took. `force_merge`: add everything, then merge it into one segment and index that once (a bulk
/// load); otherwise maintain as the rows arrive (merges and index builds tier by tier, as a
/// growing index does) and run maintenance to the end.
fn load(data: &Dataset, segments: SegmentIndex, force_merge: bool) -> (VectorIndex, Duration) {
    let config = IndexConfig::new(data.dim()).segment_index(segments).background(false);
    let index = VectorIndex::new(config).expect("config");
    let started = Instant::now();
    for start in (0..data.meta.n).step_by(1000) {
        let chunks = (start..(start + 1000).min(data.meta.n))
            .map(|i| Chunk::new(i.to_string(), (i / 8).to_string(), data.row(i).to_vec()))
            .collect();
        index.add_chunks(chunks).expect("valid chunks");
        if !force_merge {
            index.maintain();
        }
    }
    if force_merge {
        index.force_merge();
    }
    loop {
        let before: Vec<(u64, String)> = index.stats().segments.iter().map(|s| (s.id, s.label())).collect();
        index.maintain();
        let after: Vec<(u64, String)> = index.stats().segments.iter().map(|s| (s.id, s.label())).collect();
        if before == after {
            break;
        }
    }
    (index, started.elapsed())
}

fn memory_mb(index: &VectorIndex) -> f64 {
    let stats = index.stats();
    let graph = stats.graph.as_ref().map_or(0, |g| g.bytes);
    (stats.segments.iter().map(|s| s.bytes).sum::<usize>() + graph) as f64 / (1 << 20) as f64
}

/// Rows every query scans exactly: those in heads, and with a shared graph every row it has
/// not taken in yet.
pub fn head_rows(index: &VectorIndex) -> usize {
    let stats = index.stats();
    let shared = stats.graph.is_some();
    stats
        .segments
        .iter()
        .map(|s| match s.graph_rows {
            Some(in_graph) => s.rows - in_graph,
            None if shared || s.label() == "head" || s.label() == "frozen" => s.rows,
            None => 0,
        })
        .sum()
}

pub(crate) fn sealed_segments(index: &VectorIndex) -> usize {
    index.stats().segments.iter().filter(|s| s.label() != "head").count()
}

pub fn run(data: &Dataset, params: &Params) -> Outcome {
    let mut configs = Vec::new();
    let print = |c: &Config| {
        for p in &c.sweep {
            println!(
                "  {:<10} {:<8} ef {:>4}  recall@10 {:.4}  {:>8.0} QPS  mean {:>8.1} µs  p99 {:>8.1} µs  (build {:.1} s, {} segments + {} rows in heads, {:.0} MB)",
                c.system,
                c.index,
                p.ef_search.map_or("-".to_owned(), |e| e.to_string()),
                p.recall_at_10,
                p.qps,
                p.mean_latency_us,
                p.p99_latency_us,
                c.build_s,
                c.segments,
                c.head_rows,
                c.memory_mb
            );
        }
    };

    // Raw FAISS: one flat index, no locking, no ids.
    let started = Instant::now();
    let mut flat = faiss::index_factory(data.dim() as u32, "Flat", MetricType::InnerProduct).expect("FAISS");
    flat.add(&data.base).expect("add");
    let build_s = started.elapsed().as_secs_f64();
    let point = measure(data, params.exact_queries, |q| {
        let result = flat.search(q, K).expect("search");
        result.labels.iter().filter_map(|l| l.get()).map(|r| r as u32).collect()
    });
    drop(flat);
    let c = Config {
        system: "faiss (Rust crate)".into(),
        index: "Flat".into(),
        build_s,
        segments: 1,
        head_rows: 0,
        memory_mb: data.base.len() as f64 * 4.0 / (1 << 20) as f64,
        sweep: vec![point],
    };
    print(&c);
    configs.push(c);

    // Raw FAISS HNSW32 of the same build, with vecindex's construction parameters: what the
    // walk itself costs here, apart from everything vecindex does around it.
    let started = Instant::now();
    let mut hnsw = faiss::index_factory(data.dim() as u32, "HNSW32", MetricType::InnerProduct).expect("FAISS");
    set_parameter(&mut hnsw, "efConstruction", SegmentIndex::default().ef_construction as f64);
    hnsw.add(&data.base).expect("add");
    let build_s = started.elapsed().as_secs_f64();
    let hnsw_mb = serialized_mb(&hnsw);
    let sweep = one_search_thread(|| {
        params
            .efs
            .iter()
            .map(|&ef| {
                set_parameter(&mut hnsw, "efSearch", ef as f64);
                let point = measure(data, data.meta.queries, |q| {
                    let result = hnsw.search(q, K).expect("search");
                    result.labels.iter().filter_map(|l| l.get()).map(|r| r as u32).collect()
                });
                Point { ef_search: Some(ef), ..point }
            })
            .collect()
    });
    drop(hnsw);
    let c = Config {
        system: "faiss (Rust crate)".into(),
        index: "HNSW32".into(),
        build_s,
        segments: 1,
        head_rows: 0,
        memory_mb: hnsw_mb,
        sweep,
    };
    print(&c);
    configs.push(c);

    for (name, segments) in [("exact", SegmentIndex::exact()), ("Flat", SegmentIndex::faiss("Flat").min_rows(0))] {
        let (index, took) = load(data, segments, false);
        let point =
            measure(data, params.exact_queries, |q| rows(index.search(q, &SearchOptions::k(K)).expect("search")));
        let c = Config {
            system: "vecindex".into(),
            index: name.into(),
            build_s: took.as_secs_f64(),
            segments: sealed_segments(&index),
            head_rows: head_rows(&index),
            memory_mb: memory_mb(&index),
            sweep: vec![point],
        };
        print(&c);
        configs.push(c);
    }

    for (force_merge, how) in [(false, "grown"), (true, "force-merged")] {
        let (index, took) = load(data, SegmentIndex::default(), force_merge);
        let sweep = params
            .efs
            .iter()
            .map(|&ef| {
                let options = SearchOptions::k(K).ef_search(ef);
                let point = measure(data, data.meta.queries, |q| rows(index.search(q, &options).expect("search")));
                Point { ef_search: Some(ef), ..point }
            })
            .collect();
        let c = Config {
            system: "vecindex".into(),
            index: format!("{} ({how})", SegmentIndex::default().kind),
            build_s: took.as_secs_f64(),
            segments: sealed_segments(&index),
            head_rows: head_rows(&index),
            memory_mb: memory_mb(&index),
            sweep,
        };
        print(&c);
        configs.push(c);
    }
    Outcome { dataset: data.meta.clone(), configs, faiss_simd: faiss_simd_level() }
}
