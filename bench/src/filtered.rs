//! Filtered search: recall@10 and QPS of queries whose filter keeps a share of the rows, beside
//! the same index unfiltered. `scripts/bench/filtered_peers.py` measures hnswlib with its filter
//! callback on the same rows, filters and queries.
//!
//! Every row gets two metadata fields drawn from its row number ([`attributes`]; the peer script
//! draws the same, and both record how many rows each filter keeps, which the report compares):
//! `color`, a keyword, and `price`, a float uniform in [0, 1). At each selectivity of
//! [`SELECTIVITIES`] one keyword filter (`color = X`, the colour that share of the rows has) and
//! one numeric range (`price < s`) keep about that share of the rows: an exact match and a range
//! are evaluated differently, and keep different rows.
//!
//! The index has vecindex's default segments (one HNSW graph over every segment); the rows go in
//! 1 000 per call with the background worker on, then `force_merge` runs and the worker is let
//! finish, so every row is in the graph. Then, for no filter and for each filter, the queries run
//! one at a time on one thread over a sweep of efSearch, with recall@10 against exact search over
//! the rows that pass (against all of them when fewer than 10 pass); the passes repeat until each
//! setting has run for `min_seconds`.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use vecindex::{Chunk, Filter, IndexConfig, SearchOptions, SegmentIndex, VectorIndex};

use crate::data::{Dataset, Meta, exact_top};
use crate::live::settle;
use crate::recall::{K, Point, faiss_simd_level, measure_against, rows};

/// The shares of rows the filters keep, each with the colour that has that share.
pub const SELECTIVITIES: [(f64, &str); 4] = [(0.5, "red"), (0.1, "green"), (0.01, "blue"), (0.001, "gray")];

/// A sweep stops at the first setting that reaches this recall: larger ones only cost more, and
/// at 0.1% selectivity a wide walk of hnswlib's visits most of the graph (a quarter of a second
/// per query at efSearch 256 on GloVe, with its Python callback).
pub const ENOUGH_RECALL: f64 = 0.99;

/// The seed of the attribute draws (scripts/bench/filtered_peers.py has the same).
const SEED: u64 = 0x5EED_F11E;

pub struct Params {
    pub efs: Vec<usize>,
    pub queries: usize,
    /// Each setting's passes over the queries repeat until they have taken this long.
    pub min_seconds: f64,
}

/// One sweep: no filter, or one filter.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Case {
    /// "none", "keyword" or "range".
    pub kind: String,
    /// The filter as the report prints it: `color = blue`, `price < 0.01` ("none" for no filter);
    /// the peer script names its cases the same way.
    pub filter: String,
    /// The share of rows the filter is meant to keep.
    pub target: f64,
    /// The rows that pass.
    pub passing: usize,
    pub sweep: Vec<Point>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub dataset: Meta,
    pub faiss_simd: String,
    /// The CPU, cores and memory the run had.
    pub machine: String,
    pub queries: usize,
    /// Adding every row, force-merging, and the worker taking them all into the graph.
    pub load_s: f64,
    pub cases: Vec<Case>,
}

/// Output `i` of splitmix64 (Steele, Lea and Flood's generator, as Java's SplittableRandom)
/// seeded with `seed`: the state advances by the golden-ratio gamma, then is mixed. A closed form
/// of the `i`-th output lets both sides draw any row's attributes without a shared file.
pub fn splitmix64(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A row's metadata.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attributes {
    pub color: &'static str,
    pub price: f64,
}

/// Row `row`'s attributes: outputs `2 row` and `2 row + 1` of splitmix64 seeded with `SEED`,
/// each taken to [0, 1) by its top 53 bits (exact in a double). The first picks the colour, the
/// colours of [`SELECTIVITIES`] taking their shares of [0, 1) in order and "other" the rest; the
/// second is the price.
pub fn attributes(row: usize) -> Attributes {
    let draw = |i: u64| (splitmix64(SEED, i) >> 11) as f64 / (1u64 << 53) as f64;
    let (pick, price) = (draw(2 * row as u64), draw(2 * row as u64 + 1));
    let mut below = 0.0;
    let color = SELECTIVITIES
        .iter()
        .find(|(share, _)| {
            below += share;
            pick < below
        })
        .map_or("other", |(_, color)| color);
    Attributes { color, price }
}

/// What a sweep filters on.
#[derive(Clone, Copy)]
enum Kind {
    None,
    /// A colour, with the share of rows that have it.
    Color(&'static str, f64),
    PriceBelow(f64),
}

impl Kind {
    fn filter(self) -> Option<Filter> {
        match self {
            Kind::None => None,
            Kind::Color(color, _) => Some(Filter::eq("color", color)),
            Kind::PriceBelow(bound) => Some(Filter::lt("price", bound)),
        }
    }

    /// The filter's own test, apart from the index's: the ground truth's rows.
    fn passes(self, row: &Attributes) -> bool {
        match self {
            Kind::None => true,
            Kind::Color(color, _) => row.color == color,
            Kind::PriceBelow(bound) => row.price < bound,
        }
    }

    /// The share of rows the filter is meant to keep.
    fn target(self) -> f64 {
        match self {
            Kind::None => 1.0,
            Kind::Color(_, share) | Kind::PriceBelow(share) => share,
        }
    }

    fn names(self) -> (&'static str, String) {
        match self {
            Kind::None => ("none", "none".into()),
            Kind::Color(color, _) => ("keyword", format!("color = {color}")),
            Kind::PriceBelow(bound) => ("range", format!("price < {bound}")),
        }
    }
}

/// The exact top [`K`] of each of the first `queries` queries among `passing` rows (fewer when
/// fewer pass), by inner product as the dataset's ground truth is.
fn filtered_truth(data: &Dataset, passing: &[u32], queries: usize) -> Vec<Vec<u32>> {
    let k = K.min(passing.len());
    if k == 0 {
        return vec![Vec::new(); queries];
    }
    let base: Vec<f32> = passing.iter().flat_map(|&row| data.row(row as usize).iter().copied()).collect();
    let top = exact_top(&base, &data.queries[..queries * data.dim()], data.dim(), k);
    top.chunks_exact(k).map(|best| best.iter().map(|&i| passing[i as usize]).collect()).collect()
}

/// [`measure_against`], its passes over the queries repeated until they have taken `min_seconds`
/// (at least one): a pass at an unselective filter takes milliseconds, which one stall of the
/// machine would skew. Recall and p99 are the first pass's (the index does not change).
fn measure_for(
    data: &Dataset,
    queries: usize,
    mut search: impl FnMut(&[f32]) -> Vec<u32>,
    truth: impl Fn(usize) -> Vec<u32>,
    min_seconds: f64,
) -> Point {
    let first = measure_against(data, queries, &mut search, &truth);
    let (mut passes, mut seconds) = (1.0, queries as f64 / first.qps);
    while seconds < min_seconds {
        seconds += queries as f64 / measure_against(data, queries, &mut search, &truth).qps;
        passes += 1.0;
    }
    let per_query = seconds / (passes * queries as f64);
    Point { qps: 1.0 / per_query, mean_latency_us: per_query * 1e6, ..first }
}

pub fn run(data: &Dataset, params: &Params) -> Outcome {
    let n = data.meta.n;
    let queries = params.queries.min(data.meta.queries);
    let attrs: Vec<Attributes> = (0..n).map(attributes).collect();

    let config = IndexConfig::new(data.dim()).segment_index(SegmentIndex::default());
    let index = VectorIndex::new(config).expect("config");
    let started = Instant::now();
    for start in (0..n).step_by(1000) {
        let chunks = (start..(start + 1000).min(n))
            .map(|row| {
                Chunk::new(row.to_string(), (row / 8).to_string(), data.row(row).to_vec())
                    .with_meta("color", attrs[row].color)
                    .with_meta("price", attrs[row].price)
            })
            .collect();
        index.add_chunks(chunks).expect("valid chunks");
    }
    settle(&index);
    index.force_merge();
    settle(&index);
    let load_s = started.elapsed().as_secs_f64();
    println!("  loaded {n} rows with metadata, force-merged, in {load_s:.1} s");

    // One pass to fault in the index's pages before anything is timed.
    for q in 0..queries {
        index.search(data.query(q), &SearchOptions::k(K)).expect("search");
    }

    let kinds = std::iter::once(Kind::None)
        .chain(SELECTIVITIES.iter().map(|&(share, color)| Kind::Color(color, share)))
        .chain(SELECTIVITIES.iter().map(|&(share, _)| Kind::PriceBelow(share)));
    let mut cases = Vec::new();
    for kind in kinds {
        let passing: Vec<u32> = (0..n).filter(|&row| kind.passes(&attrs[row])).map(|row| row as u32).collect();
        let truth = match kind {
            Kind::None => (0..queries).map(|q| data.truth(q, K).to_vec()).collect(),
            _ => filtered_truth(data, &passing, queries),
        };
        let mut sweep: Vec<Point> = Vec::new();
        for &ef in &params.efs {
            let mut options = SearchOptions::k(K).ef_search(ef);
            if let Some(filter) = kind.filter() {
                options = options.filter(filter);
            }
            let search = |q: &[f32]| rows(index.search(q, &options).expect("search"));
            let point = measure_for(data, queries, search, |q| truth[q].clone(), params.min_seconds);
            let enough = point.recall_at_10 >= ENOUGH_RECALL;
            sweep.push(Point { ef_search: Some(ef), ..point });
            if enough {
                break;
            }
        }
        let target = kind.target();
        let (kind, filter) = kind.names();
        for p in &sweep {
            println!(
                "  {filter:<14} {:>7} rows ({:>6.2}%)  ef {:>4}  recall@10 {:.4}  {:>8.0} QPS",
                passing.len(),
                passing.len() as f64 / n as f64 * 100.0,
                p.ef_search.unwrap_or(0),
                p.recall_at_10,
                p.qps
            );
        }
        cases.push(Case { kind: kind.into(), filter, target, passing: passing.len(), sweep });
    }
    Outcome {
        dataset: data.meta.clone(),
        faiss_simd: faiss_simd_level(),
        machine: crate::report::machine(),
        queries,
        load_s,
        cases,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_outputs() {
        // The first outputs of splitmix64 seeded with 0, as published with the generator.
        assert_eq!(splitmix64(0, 0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(0, 1), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(splitmix64(0, 2), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn attributes_keep_their_shares() {
        let n = 200_000;
        let rows: Vec<Attributes> = (0..n).map(attributes).collect();
        for (share, color) in SELECTIVITIES {
            let colored = rows.iter().filter(|r| r.color == color).count() as f64 / n as f64;
            let cheap = rows.iter().filter(|r| r.price < share).count() as f64 / n as f64;
            // Four standard deviations of a binomial share.
            let slack = 4.0 * (share * (1.0 - share) / n as f64).sqrt();
            assert!((colored - share).abs() < slack, "{color}: {colored}");
            assert!((cheap - share).abs() < slack, "price < {share}: {cheap}");
        }
        assert!(rows.iter().all(|r| (0.0..1.0).contains(&r.price)));
    }
}
