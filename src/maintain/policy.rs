//! Which sealed segments to merge: the [`MergePolicy`] trait and its default implementation,
//! [`TieredMergePolicy`]. The merge protocol (`maintain::merge`) asks a policy and carries out
//! what it picks; a policy only decides, from a description of the segments, never touching one.

use std::collections::BTreeMap;
use std::fmt;

/// What a policy sees of a sealed segment: a count read once, so that deletes landing while it
/// decides cannot make its decision inconsistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// Rows stored, live or deleted.
    pub rows: usize,
    /// Rows deleted so far.
    pub dead_rows: usize,
}

impl SegmentInfo {
    pub fn new(rows: usize, dead_rows: usize) -> Self {
        Self { rows, dead_rows }
    }

    pub fn live_rows(&self) -> usize {
        self.rows.saturating_sub(self.dead_rows)
    }
}

/// Decides which sealed segments are merged (and vacuumed: a merge of one segment rewrites it
/// without its dead rows). Implement it to change how an index trades merge work for query cost;
/// the protocol that carries a merge out (copies, forwarded deletes, the publish) stays the same.
///
/// A policy answers with indices into the `segments` it was given; an answer naming an index
/// twice or out of range is ignored.
pub trait MergePolicy: Send + Sync + fmt::Debug {
    /// The next merge of a maintenance step, if any: segments to merge into one. `seal_rows` is
    /// the size of a freshly sealed segment (the head capacity).
    fn pick(&self, segments: &[SegmentInfo], seal_rows: usize) -> Option<Vec<usize>>;

    /// The next merge of `force_merge`, which merges until this says `None`: what it answers
    /// should shrink the number of segments, or drop dead rows.
    fn pick_all(&self, segments: &[SegmentInfo]) -> Option<Vec<usize>>;

    /// The tiered policy's settings, if this is one: what a persisted index records (a custom
    /// policy is not persisted; open with it again through `OpenOptions::config`).
    fn as_tiered(&self) -> Option<&TieredMergePolicy> {
        None
    }
}

/// Tiered, like tantivy's log merge policy: a segment's tier is `log_f(live rows / seal rows)`;
/// when a tier holds `merge_factor` segments, the smallest of them are merged, up to
/// `max_segment_rows`. A segment whose dead fraction exceeds `vacuum_dead_fraction` is rewritten
/// alone without its dead rows.
///
/// ```
/// use vecindex::{IndexConfig, TieredMergePolicy};
///
/// let config = IndexConfig::new(384).merge_policy(TieredMergePolicy::default().merge_factor(4));
/// # let _ = config;
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TieredMergePolicy {
    /// How many segments of one tier are merged together (default 8).
    pub merge_factor: usize,
    /// No merge produces a segment with more live rows than this (default 1 048 576).
    pub max_segment_rows: usize,
    /// A segment with more than this fraction of dead rows is rewritten (default 0.2).
    pub vacuum_dead_fraction: f64,
}

impl Default for TieredMergePolicy {
    fn default() -> Self {
        Self { merge_factor: 8, max_segment_rows: 1 << 20, vacuum_dead_fraction: 0.2 }
    }
}

impl TieredMergePolicy {
    pub fn merge_factor(mut self, factor: usize) -> Self {
        self.merge_factor = factor;
        self
    }

    pub fn max_segment_rows(mut self, rows: usize) -> Self {
        self.max_segment_rows = rows;
        self
    }

    pub fn vacuum_dead_fraction(mut self, fraction: f64) -> Self {
        self.vacuum_dead_fraction = fraction;
        self
    }
}

impl MergePolicy for TieredMergePolicy {
    /// A vacuum candidate first, then a full tier.
    fn pick(&self, segments: &[SegmentInfo], seal_rows: usize) -> Option<Vec<usize>> {
        if let Some((worst, _)) = segments
            .iter()
            .enumerate()
            .filter(|(_, s)| s.rows > 0)
            .map(|(i, s)| (i, s.dead_rows as f64 / s.rows as f64))
            .filter(|(_, dead)| *dead > self.vacuum_dead_fraction)
            .max_by(|a, b| a.1.total_cmp(&b.1))
        {
            return Some(vec![worst]);
        }
        let factor = self.merge_factor.max(2);
        let tier = |rows: usize| -> u32 {
            let mut tier = 0;
            let mut bound = seal_rows.max(1) * factor;
            while rows >= bound && tier < 32 {
                tier += 1;
                bound = bound.saturating_mul(factor);
            }
            tier
        };
        let mut tiers: BTreeMap<u32, Vec<(usize, usize)>> = BTreeMap::new();
        for (i, segment) in segments.iter().enumerate() {
            tiers.entry(tier(segment.live_rows())).or_default().push((i, segment.live_rows()));
        }
        for (_, mut members) in tiers {
            if members.len() < factor {
                continue;
            }
            members.sort_by_key(|&(_, live)| live);
            let mut picked = Vec::new();
            let mut rows = 0;
            for (i, live) in members.into_iter().take(factor) {
                if rows + live > self.max_segment_rows && picked.len() >= 2 {
                    break;
                }
                rows += live;
                picked.push(i);
            }
            if picked.len() >= 2 {
                return Some(picked);
            }
        }
        None
    }

    /// The next group of segments that together fit in `max_segment_rows` live rows, smallest
    /// first, or, when no two fit together, a segment with dead rows to rewrite alone.
    fn pick_all(&self, segments: &[SegmentInfo]) -> Option<Vec<usize>> {
        let mut order: Vec<usize> = (0..segments.len()).collect();
        order.sort_by_key(|&i| segments[i].live_rows());
        let mut picked = Vec::new();
        let mut rows = 0;
        for &i in &order {
            let live = segments[i].live_rows();
            if rows + live > self.max_segment_rows {
                break;
            }
            rows += live;
            picked.push(i);
        }
        if picked.len() >= 2 {
            return Some(picked);
        }
        order.into_iter().find(|&i| segments[i].dead_rows > 0 && segments[i].rows > 0).map(|i| vec![i])
    }

    fn as_tiered(&self) -> Option<&TieredMergePolicy> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(rows: usize, dead: usize) -> SegmentInfo {
        SegmentInfo::new(rows, dead)
    }

    #[test]
    fn tiered_vacuums_first_then_merges_a_full_tier_smallest_first() {
        let policy = TieredMergePolicy::default().merge_factor(3);
        let same_tier = [info(100, 0), info(90, 0), info(120, 0), info(110, 0)];
        assert_eq!(policy.pick(&same_tier, 100), Some(vec![1, 0, 3]), "the three smallest of the tier");
        assert_eq!(policy.pick(&same_tier[..2], 100), None, "a tier of two waits");
        let with_dead = [info(100, 0), info(100, 30), info(100, 50)];
        assert_eq!(policy.pick(&with_dead, 100), Some(vec![2]), "the deadest above 20%");
        assert_eq!(policy.pick_all(&[info(10, 0), info(5, 0), info(7, 1)]), Some(vec![1, 2, 0]));
        let big = TieredMergePolicy::default().max_segment_rows(10);
        assert_eq!(big.pick_all(&[info(8, 0), info(9, 1)]), Some(vec![1]), "none fit together: rewrite the dead");
        assert_eq!(big.pick_all(&[info(8, 0), info(9, 0)]), None);
    }
}
