//! Similarity metrics and the exact-scan kernels.
//!
//! Two kernels: a portable one (plain loops with eight independent accumulators, which LLVM
//! vectorizes for baseline x86-64, SSE2) and, on x86-64 CPUs with AVX2 and FMA, one written with
//! their intrinsics ([`avx2`]), picked at run time, so one binary is both portable and fast.
//! Within a process every score comes from one kernel: a row scored alone and the same row
//! scored in a block agree exactly.

#[cfg(target_arch = "x86_64")]
mod avx2;

use crate::error::{Error, Result};

/// The largest squared length a vector may have under L2 and inner product: a quarter of the
/// largest `f32`, so that a squared distance (at most `2|a|^2 + 2|b|^2`) and an inner product
/// (at most `|a| |b|`) stay finite.
pub const MAX_SQUARED_NORM: f32 = f32::MAX / 4.0;

/// How a query is compared with stored vectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Cosine similarity: vectors are L2-normalized on the way in, then compared by inner product.
    /// Scores are in [-1, 1], higher is closer.
    #[default]
    Cosine,
    /// Raw inner product; higher is closer.
    InnerProduct,
    /// Squared Euclidean distance; lower is closer.
    L2,
}

impl Metric {
    /// Stable numeric code used in file headers.
    pub(crate) fn code(self) -> u32 {
        match self {
            Metric::Cosine => 0,
            Metric::InnerProduct => 1,
            Metric::L2 => 2,
        }
    }

    pub(crate) fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Metric::Cosine),
            1 => Some(Metric::InnerProduct),
            2 => Some(Metric::L2),
            _ => None,
        }
    }

    /// Checks `vector` against `dim` and, for cosine, normalizes it in place.
    ///
    /// Under cosine any finite vector but zero is accepted (its length is computed in double
    /// precision when its squares overflow single precision). Under L2 and inner product the
    /// vector is stored as given, so its squared length must stay below `f32::MAX / 4`:
    /// scores of longer vectors would overflow to infinity.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`], [`Error::NonFiniteValue`], [`Error::ZeroVector`] (cosine),
    /// or [`Error::VectorTooLong`] (L2, inner product).
    pub fn prepare(self, dim: usize, vector: &mut [f32]) -> Result<()> {
        if vector.len() != dim {
            return Err(Error::DimensionMismatch { expected: dim, got: vector.len() });
        }
        // One SIMD pass answers both questions in the common case: a NaN or an infinity makes the
        // sum of squares non-finite. Only then is the vector scanned for the culprit (a sum can
        // also overflow on finite values, which the scan tells apart).
        let squares = dot(vector, vector);
        if !squares.is_finite()
            && let Some((position, &value)) = vector.iter().enumerate().find(|(_, v)| !v.is_finite())
        {
            return Err(Error::NonFiniteValue { position, value });
        }
        // Finite values whose squares overflow (or all underflow): measure again in double
        // precision.
        let squares = if squares.is_finite() && squares > 0.0 {
            f64::from(squares)
        } else {
            vector.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
        };
        if self == Metric::Cosine {
            if squares == 0.0 {
                return Err(Error::ZeroVector);
            }
            let scale = 1.0 / squares.sqrt();
            vector.iter_mut().for_each(|v| *v = (f64::from(*v) * scale) as f32);
        } else if squares > f64::from(MAX_SQUARED_NORM) {
            return Err(Error::VectorTooLong { squared_norm: squares, limit: f64::from(MAX_SQUARED_NORM) });
        }
        Ok(())
    }

    /// The score reported to users: similarity for cosine and inner product, squared distance
    /// for L2.
    #[inline]
    pub fn score(self, query: &[f32], stored: &[f32]) -> f32 {
        match self {
            Metric::Cosine | Metric::InnerProduct => dot(query, stored),
            Metric::L2 => l2_squared(query, stored),
        }
    }

    /// Maps a score to a key where higher is always better.
    #[inline]
    pub fn rank_key(self, score: f32) -> f32 {
        match self {
            Metric::L2 => -score,
            _ => score,
        }
    }
}

/// Scores `query` against consecutive rows of `query.len()` floats in `rows`, one per slot of
/// `scores` (which must hold `rows.len() / query.len()`): the kernel is chosen once for the
/// block, where a call of [`Metric::score`] per row dispatches each time.
pub fn score_rows(metric: Metric, query: &[f32], rows: &[f32], scores: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { avx2::score_rows(metric, query, rows, scores) };
    }
    score_rows_portable(metric, query, rows, scores)
}

/// Whether the AVX2 kernels can run here (the answer is cached by the standard library).
#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// Plain `for` loops on purpose: an iterator's `for_each` or `fold` is a generic function of its
/// own that LLVM may leave out of line, where it would not be inlined into a caller compiled
/// for more SIMD.
#[inline(always)]
fn score_rows_portable(metric: Metric, query: &[f32], rows: &[f32], scores: &mut [f32]) {
    let dim = query.len().max(1);
    let count = scores.len().min(rows.len() / dim);
    match metric {
        Metric::Cosine | Metric::InnerProduct => {
            for (index, score) in scores[..count].iter_mut().enumerate() {
                *score = dot_portable(query, &rows[index * dim..(index + 1) * dim]);
            }
        }
        Metric::L2 => {
            for (index, score) in scores[..count].iter_mut().enumerate() {
                *score = l2_portable(query, &rows[index * dim..(index + 1) * dim]);
            }
        }
    }
}

/// Inner product of two equal-length slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { avx2::dot(a, b) };
    }
    dot_portable(a, b)
}

/// Squared Euclidean distance of two equal-length slices.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { avx2::l2_squared(a, b) };
    }
    l2_portable(a, b)
}

const LANES: usize = 8;

// Index loops rather than iterator adapters, for the reason given at `score_rows_portable`.

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    accumulate_portable::<false>(a, b)
}

#[inline(always)]
fn l2_portable(a: &[f32], b: &[f32]) -> f32 {
    accumulate_portable::<true>(a, b)
}

/// `sum(a * b)`, or `sum((a - b)^2)` when `L2`, over the slices' common length.
#[inline(always)]
fn accumulate_portable<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
    let term = |x: f32, y: f32| if L2 { (x - y) * (x - y) } else { x * y };
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let full = n - n % LANES;
    let mut acc = [0.0f32; LANES];
    let mut start = 0;
    while start < full {
        let (x, y) = (&a[start..start + LANES], &b[start..start + LANES]);
        for i in 0..LANES {
            acc[i] += term(x[i], y[i]);
        }
        start += LANES;
    }
    let mut tail = 0.0f32;
    for i in full..n {
        tail += term(a[i], b[i]);
    }
    horizontal_sum(&acc) + tail
}

#[inline(always)]
fn horizontal_sum(acc: &[f32; LANES]) -> f32 {
    let mut sum = 0.0f32;
    for &lane in acc {
        sum += lane;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_naive_sums() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let naive_dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let naive_l2: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        assert!((dot(&a, &b) - naive_dot).abs() < 1e-4);
        assert!((l2_squared(&a, &b) - naive_l2).abs() < 1e-4);
        assert!((dot_portable(&a, &b) - naive_dot).abs() < 1e-4);
        assert!((l2_portable(&a, &b) - naive_l2).abs() < 1e-4);
    }

    /// Every dimension class (below one SIMD group, whole groups, groups and a tail) and blocks
    /// from empty to a few rows.
    #[test]
    fn blocks_score_each_row_as_a_row_alone_and_as_the_naive_sum() {
        for dim in [1, 2, 7, 8, 9, 16, 50, 64, 100, 384] {
            let query: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin()).collect();
            for count in [0, 1, 3, 4, 5, 11] {
                let rows: Vec<f32> = (0..dim * count).map(|i| (i as f32 * 0.07).cos()).collect();
                for metric in [Metric::InnerProduct, Metric::L2] {
                    let mut scores = vec![f32::NAN; count];
                    score_rows(metric, &query, &rows, &mut scores);
                    let mut portable = vec![f32::NAN; count];
                    score_rows_portable(metric, &query, &rows, &mut portable);
                    for (row_index, row) in rows.chunks_exact(dim).enumerate() {
                        let naive: f64 = match metric {
                            Metric::L2 => row.iter().zip(&query).map(|(r, q)| f64::from(r - q).powi(2)).sum(),
                            _ => row.iter().zip(&query).map(|(r, q)| f64::from(r * q)).sum(),
                        };
                        let got = scores[row_index];
                        assert_eq!(got, metric.score(&query, row), "dim {dim}, row {row_index} of {count}");
                        let tolerance = 1e-5 * (1.0 + naive.abs());
                        assert!((f64::from(got) - naive).abs() < tolerance, "dim {dim}: {got} vs {naive}");
                        assert!((f64::from(portable[row_index]) - naive).abs() < tolerance, "portable, dim {dim}");
                    }
                }
            }
        }
    }

    #[test]
    fn prepare_rejects_bad_vectors() {
        let m = Metric::Cosine;
        assert!(matches!(m.prepare(3, &mut [1.0, 2.0]), Err(Error::DimensionMismatch { expected: 3, got: 2 })));
        assert!(matches!(m.prepare(2, &mut [1.0, f32::NAN]), Err(Error::NonFiniteValue { position: 1, .. })));
        assert!(matches!(m.prepare(2, &mut [0.0, 0.0]), Err(Error::ZeroVector)));
        let mut v = [3.0, 4.0];
        m.prepare(2, &mut v).unwrap();
        assert_eq!(v, [0.6, 0.8]);
        assert!(Metric::L2.prepare(2, &mut [0.0, 0.0]).is_ok());
    }

    #[test]
    fn huge_values_are_normalized_under_cosine_and_refused_where_scores_would_overflow() {
        // Each square overflows f32 (1e40), yet the direction is well defined.
        let mut v = vec![1e20f32; 4];
        Metric::Cosine.prepare(4, &mut v).unwrap();
        assert!(v.iter().all(|x| (x - 0.5).abs() < 1e-6), "{v:?}");
        let mut tiny = vec![1e-30f32, 0.0];
        Metric::Cosine.prepare(2, &mut tiny).unwrap();
        assert_eq!(tiny, [1.0, 0.0], "a tiny vector's squares underflow no more than they must");
        for metric in [Metric::L2, Metric::InnerProduct] {
            let err = metric.prepare(4, &mut [1e20f32; 4]).unwrap_err();
            assert!(matches!(err, Error::VectorTooLong { squared_norm, .. } if squared_norm > 3.9e40), "{err}");
            assert!(err.to_string().contains("too long"), "{err}");
            let mut fine = [1e18f32; 4];
            metric.prepare(4, &mut fine).unwrap();
            assert!(metric.score(&fine, &fine).is_finite());
        }
    }
}
