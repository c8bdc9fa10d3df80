//! Similarity metrics and the exact-scan kernels.
//!
//! The kernels are plain loops with eight independent accumulators, which LLVM vectorizes. The
//! portable build targets baseline x86-64 (SSE2); on x86-64 the same loop is also compiled with
//! AVX2+FMA enabled and picked at run time when the CPU has it, so one binary is both portable
//! and fast.

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
/// block and inlined into its loop, where a call of [`Metric::score`] per row dispatches each time.
pub fn score_rows(metric: Metric, query: &[f32], rows: &[f32], scores: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { score_rows_avx2(metric, query, rows, scores) };
    }
    score_rows_portable(metric, query, rows, scores)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn score_rows_avx2(metric: Metric, query: &[f32], rows: &[f32], scores: &mut [f32]) {
    score_rows_portable(metric, query, rows, scores)
}

#[inline(always)]
fn score_rows_portable(metric: Metric, query: &[f32], rows: &[f32], scores: &mut [f32]) {
    let dim = query.len().max(1);
    let rows = rows.chunks_exact(dim);
    match metric {
        Metric::Cosine | Metric::InnerProduct => {
            scores.iter_mut().zip(rows).for_each(|(score, row)| *score = dot_portable(query, row))
        }
        Metric::L2 => scores.iter_mut().zip(rows).for_each(|(score, row)| *score = l2_portable(query, row)),
    }
}

/// Inner product of two equal-length slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { dot_avx2(a, b) };
    }
    dot_portable(a, b)
}

/// Squared Euclidean distance of two equal-length slices.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { l2_avx2(a, b) };
    }
    l2_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn l2_avx2(a: &[f32], b: &[f32]) -> f32 {
    l2_portable(a, b)
}

const LANES: usize = 8;

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn l2_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| (x - y) * (x - y)).sum();
    acc.iter().sum::<f32>() + tail
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
        assert_eq!(dot(&a, &b), dot_portable(&a, &b), "dispatch must not change results");
        // A block of rows scores each row exactly as a call per row does.
        let rows: Vec<f32> = (0..37 * 5).map(|i| (i as f32 * 0.07).sin()).collect();
        for metric in [Metric::InnerProduct, Metric::L2] {
            let mut scores = [0.0; 5];
            score_rows(metric, &a, &rows, &mut scores);
            for (score, row) in scores.iter().zip(rows.chunks_exact(37)) {
                assert_eq!(*score, metric.score(&a, row));
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
