//! Search cost against rows ingested: one index grows through the dataset (rows added 1 000 per
//! call, the background worker on, never force-merged); at each size, once the worker has taken
//! every row into the graph, queries sweep efSearch. Recall is against exact search over the rows
//! added so far (computed here for each size). `scripts/bench/scaling_peers.py` measures hnswlib
//! (M=16, efConstruction 80, built on the same first rows) at the same sizes.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vecindex::{Chunk, IndexConfig, SearchOptions, SegmentIndex, VectorIndex};

use crate::data::{Dataset, Meta, exact_top};
use crate::recall::{K, Point, measure_against, rows};

pub struct Params {
    pub sizes: Vec<usize>,
    pub queries: usize,
    /// Swept in order; settings above [`ALWAYS_SWEPT_UP_TO`] only while recall 0.95 is unreached.
    pub efs: Vec<usize>,
}

/// Every size sweeps efSearch up to here; larger settings (slow at large sizes) run only when the
/// smaller ones missed recall 0.95, so that every size has a point at the target to compare.
pub const ALWAYS_SWEPT_UP_TO: usize = 256;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Size {
    pub rows: usize,
    /// Rows the index scanned exactly when the sweep ran (none once the graph holds all).
    pub scanned_rows: usize,
    pub sweep: Vec<Point>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub dataset: Meta,
    pub queries: usize,
    pub sizes: Vec<Size>,
}

/// Sizes from 10 000 up, about three times apart, and the whole set.
pub fn sizes(n: usize) -> Vec<usize> {
    let mut sizes: Vec<usize> =
        [10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000].into_iter().filter(|&s| s < n).collect();
    sizes.push(n);
    sizes
}

/// Waits until the graph holds every row (the worker inserts in the background).
fn settle(index: &VectorIndex, rows: usize) {
    let deadline = Instant::now() + Duration::from_secs(3600);
    while index.stats().graph.as_ref().is_none_or(|g| g.nodes < rows) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn run(data: &Dataset, params: &Params) -> Outcome {
    let config = IndexConfig::new(data.dim()).segment_index(SegmentIndex::default());
    let index = VectorIndex::new(config).expect("config");
    let queries = params.queries.min(data.meta.queries);
    let query_rows = &data.queries[..queries * data.dim()];
    let mut added = 0;
    let mut sizes = Vec::new();
    for &size in &params.sizes {
        for start in (added..size).step_by(1000) {
            let chunks = (start..(start + 1000).min(size))
                .map(|i| Chunk::new(i.to_string(), (i / 8).to_string(), data.row(i).to_vec()))
                .collect();
            index.add_chunks(chunks).expect("valid chunks");
        }
        added = size;
        settle(&index, size);
        let truth = exact_top(&data.base[..size * data.dim()], query_rows, data.dim(), K);
        let mut sweep: Vec<Point> = Vec::new();
        for &ef in &params.efs {
            if ef > ALWAYS_SWEPT_UP_TO && sweep.iter().any(|p| p.recall_at_10 >= 0.95) {
                break;
            }
            let options = SearchOptions::k(K).ef_search(ef);
            let search = |q: &[f32]| rows(index.search(q, &options).expect("search"));
            let point = measure_against(data, queries, search, |q| truth[q * K..(q + 1) * K].to_vec());
            sweep.push(Point { ef_search: Some(ef), ..point });
        }
        let scanned_rows = crate::recall::head_rows(&index);
        for p in &sweep {
            println!(
                "  {size:>8} rows  ef {:>4}  recall@10 {:.4}  {:>8.0} QPS",
                p.ef_search.unwrap_or(0),
                p.recall_at_10,
                p.qps
            );
        }
        sizes.push(Size { rows: size, scanned_rows, sweep });
    }
    Outcome { dataset: data.meta.clone(), queries, sizes }
}
