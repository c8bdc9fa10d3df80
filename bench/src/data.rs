//! Vectors to benchmark with: deterministic synthetic ones, and real datasets prepared by
//! `scripts/fetch-glove` / `scripts/bench/dataset.py` in this layout (all little-endian):
//!
//! - `base.f32`: n x dim float32, row-major, L2-normalized;
//! - `queries.f32`: q x dim, held out of the base;
//! - `gt.u32`: q x gt_k uint32, each query's exact nearest base rows by inner product, best first;
//! - `meta.json`: `{"name", "n", "dim", "queries", "gt_k", ...}`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A deterministic pseudo-random vector of `dim` values in [-0.5, 0.5) (xorshift), never all
/// zeros.
pub fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// `v` scaled to unit length (as the cosine metric stores it).
pub fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct Meta {
    pub name: String,
    pub n: usize,
    pub dim: usize,
    pub queries: usize,
    pub gt_k: usize,
}

/// A dataset in memory.
pub struct Dataset {
    pub meta: Meta,
    pub dir: PathBuf,
    pub base: Vec<f32>,
    pub queries: Vec<f32>,
    pub gt: Vec<u32>,
}

fn read_f32(path: &Path) -> std::io::Result<Vec<f32>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

impl Dataset {
    /// Loads the dataset in `dir`; `limit` keeps the first rows of the base and the queries
    /// (with the ground truth recomputed exactly when the base is cut).
    pub fn load(dir: &Path, base_limit: Option<usize>, query_limit: Option<usize>) -> std::io::Result<Dataset> {
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let meta: Meta =
            serde_json::from_slice(&std::fs::read(dir.join("meta.json"))?).map_err(|e| invalid(e.to_string()))?;
        let mut base = read_f32(&dir.join("base.f32"))?;
        let mut queries = read_f32(&dir.join("queries.f32"))?;
        let gt_bytes = std::fs::read(dir.join("gt.u32"))?;
        let mut gt: Vec<u32> = gt_bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let dim = meta.dim;
        if base.len() != meta.n * dim || queries.len() != meta.queries * dim || gt.len() != meta.queries * meta.gt_k {
            return Err(invalid(format!("{}: file sizes do not match meta.json", dir.display())));
        }
        let mut meta = meta;
        if let Some(q) = query_limit.filter(|&q| q < meta.queries) {
            queries.truncate(q * dim);
            gt.truncate(q * meta.gt_k);
            meta.queries = q;
        }
        if let Some(n) = base_limit.filter(|&n| n < meta.n) {
            base.truncate(n * dim);
            meta.n = n;
            meta.gt_k = meta.gt_k.min(100);
            gt = exact_top(&base, &queries, dim, meta.gt_k);
        }
        Ok(Dataset { meta, dir: dir.to_owned(), base, queries, gt })
    }

    pub fn dim(&self) -> usize {
        self.meta.dim
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.base[i * self.dim()..(i + 1) * self.dim()]
    }

    pub fn query(&self, i: usize) -> &[f32] {
        &self.queries[i * self.dim()..(i + 1) * self.dim()]
    }

    /// The first `k` true neighbours of query `i`.
    pub fn truth(&self, i: usize, k: usize) -> &[u32] {
        &self.gt[i * self.meta.gt_k..i * self.meta.gt_k + k]
    }
}

/// Each query's `k` best rows of `base` by inner product (ties: lower row first).
pub fn exact_top(base: &[f32], queries: &[f32], dim: usize, k: usize) -> Vec<u32> {
    let rows = base.len() / dim;
    let mut out = Vec::with_capacity(queries.len() / dim * k);
    for q in queries.chunks_exact(dim) {
        let mut scored: Vec<(f32, u32)> =
            base.chunks_exact(dim).enumerate().map(|(i, r)| (dot(r, q), i as u32)).collect();
        let k = k.min(rows);
        scored.select_nth_unstable_by(k.saturating_sub(1), |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.truncate(k);
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        out.extend(scored.iter().map(|s| s.1));
    }
    out
}

/// Inner product with eight running sums, which the compiler vectorizes (one sum in order
/// would keep it scalar): ground truth over a million rows takes seconds, not minutes.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Recall@k of `found` (row numbers) against the truth.
pub fn recall(found: &[u32], truth: &[u32]) -> f64 {
    let hits = found.iter().filter(|f| truth.contains(f)).count();
    hits as f64 / truth.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_top_orders_by_inner_product_and_breaks_ties_by_row() {
        let base = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8, 1.0, 0.0];
        let top = exact_top(&base, &[1.0, 0.0], 2, 3);
        assert_eq!(top, vec![0, 3, 2]);
        assert_eq!(exact_top(&base, &[0.0, 1.0, 1.0, 0.0], 2, 1), vec![1, 0]);
    }

    #[test]
    fn recall_counts_true_neighbours_found() {
        assert_eq!(recall(&[1, 2, 3, 4], &[4, 3, 9, 8]), 0.5);
        assert_eq!(recall(&[], &[1]), 0.0);
    }

    #[test]
    fn load_cuts_the_base_and_recomputes_the_truth() {
        let dir = tempfile::tempdir().unwrap();
        let dim = 4;
        let base: Vec<f32> = (0..50).flat_map(|i| normalized(vector(i, dim))).collect();
        let queries: Vec<f32> = (100..105).flat_map(|i| normalized(vector(i, dim))).collect();
        let gt = exact_top(&base, &queries, dim, 10);
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        std::fs::write(dir.path().join("base.f32"), bytes(&base)).unwrap();
        std::fs::write(dir.path().join("queries.f32"), bytes(&queries)).unwrap();
        std::fs::write(dir.path().join("gt.u32"), gt.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
            .unwrap();
        let meta = r#"{"name": "t", "n": 50, "dim": 4, "queries": 5, "gt_k": 10}"#;
        std::fs::write(dir.path().join("meta.json"), meta).unwrap();

        let whole = Dataset::load(dir.path(), None, Some(3)).unwrap();
        assert_eq!((whole.meta.n, whole.meta.queries), (50, 3));
        assert_eq!(whole.truth(2, 10), &gt[20..30]);

        let cut = Dataset::load(dir.path(), Some(20), None).unwrap();
        assert_eq!(cut.meta.n, 20);
        for q in 0..5 {
            assert!(cut.truth(q, 10).iter().all(|&row| row < 20));
            assert_eq!(cut.truth(q, 10), &exact_top(&base[..20 * dim], cut.query(q), dim, 10)[..]);
        }

        std::fs::write(dir.path().join("gt.u32"), [0u8; 12]).unwrap();
        assert!(Dataset::load(dir.path(), None, None).is_err());
    }
}
