//! The exact-scan kernels with AVX2 and FMA intrinsics, for CPUs that have them (checked by the
//! caller, once per block of rows).
//!
//! One row at a time, eight fused multiply-adds a step; the `dim % 8` floats after the last
//! whole step are read with one masked load rather than a scalar loop. Scoring several rows at
//! once (one load of the query for all of them) measured slower here: the scan is bound by
//! streaming rows from memory, and one row after another streams best. A row alone ([`dot`],
//! [`l2_squared`]) and a row of a block take the same steps, so a score never depends on which
//! path computed it.

use std::arch::x86_64::*;

use super::Metric;

const LANES: usize = 8;

/// Scores `query` against each row of `query.len()` floats in `rows`, one per slot of `scores`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn score_rows(metric: Metric, query: &[f32], rows: &[f32], scores: &mut [f32]) {
    let dim = query.len();
    if dim == 0 {
        scores.fill(0.0);
        return;
    }
    let tail = tail_mask(dim);
    let rows = rows.chunks_exact(dim).zip(scores.iter_mut());
    match metric {
        Metric::Cosine | Metric::InnerProduct => {
            for (row, score) in rows {
                *score = reduce(accumulate::<false>(query, row, tail));
            }
        }
        Metric::L2 => {
            for (row, score) in rows {
                *score = reduce(accumulate::<true>(query, row, tail));
            }
        }
    }
}

/// Inner product of two slices (their common length).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    reduce(accumulate::<false>(&a[..n], &b[..n], tail_mask(n)))
}

/// Squared Euclidean distance of two slices (their common length).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    reduce(accumulate::<true>(&a[..n], &b[..n], tail_mask(n)))
}

/// The mask selecting the `dim % 8` floats after the last whole group of eight.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn tail_mask(dim: usize) -> __m256i {
    let left = (dim % LANES) as i32;
    _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

/// Eight floats of `values` from `start` (`start + 8 <= len`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn load(values: &[f32], start: usize) -> __m256 {
    let eight = &values[start..start + LANES];
    // SAFETY: `eight` is eight floats, the width of an unaligned 256-bit load.
    unsafe { _mm256_loadu_ps(eight.as_ptr()) }
}

/// The floats of `values` after its last whole group of eight, zeros in the other lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn load_tail(values: &[f32], mask: __m256i) -> __m256 {
    let start = values.len() - values.len() % LANES;
    // SAFETY: a masked load reads only the lanes its mask selects and does not fault on the
    // others; `mask` (from `tail_mask(values.len())`) selects `len % 8` lanes, the floats from
    // `start` to the end of `values`, and `start <= len` keeps the pointer in (or one past) it.
    unsafe { _mm256_maskload_ps(values.as_ptr().add(start), mask) }
}

/// `acc + q * r` for inner product, `acc + (q - r)^2` for squared L2.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn step<const L2: bool>(acc: __m256, q: __m256, r: __m256) -> __m256 {
    if L2 {
        let d = _mm256_sub_ps(q, r);
        _mm256_fmadd_ps(d, d, acc)
    } else {
        _mm256_fmadd_ps(q, r, acc)
    }
}

/// Eight partial sums of `query` against `row` (equal lengths; `tail` from `tail_mask`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn accumulate<const L2: bool>(query: &[f32], row: &[f32], tail: __m256i) -> __m256 {
    let full = query.len() - query.len() % LANES;
    let mut acc = _mm256_setzero_ps();
    let mut start = 0;
    while start < full {
        acc = step::<L2>(acc, load(query, start), load(row, start));
        start += LANES;
    }
    if full < query.len() {
        acc = step::<L2>(acc, load_tail(query, tail), load_tail(row, tail));
    }
    acc
}

/// `((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn reduce(a: __m256) -> f32 {
    let quads = _mm256_hadd_ps(_mm256_hadd_ps(a, a), _mm256_hadd_ps(a, a));
    _mm_cvtss_f32(_mm_add_ps(_mm256_castps256_ps128(quads), _mm256_extractf128_ps::<1>(quads)))
}
