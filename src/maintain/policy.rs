//! Which sealed segments to merge: the [`MergePolicy`] trait and its default implementation,
//! [`TieredMergePolicy`]. The merge protocol (`maintain::merge`) asks a policy and carries out
//! what it picks; a policy only decides, from a description of the segments, never touching one.

use std::cmp::Reverse;
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
    /// Whether it has a FAISS index: merging others into it then extends a copy of that index
    /// with their rows instead of building one from scratch.
    pub indexed: bool,
}

impl SegmentInfo {
    /// A segment without an index.
    pub fn new(rows: usize, dead_rows: usize) -> Self {
        Self { rows, dead_rows, indexed: false }
    }

    /// The same segment, with or without an index.
    pub fn indexed(mut self, indexed: bool) -> Self {
        self.indexed = indexed;
        self
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

    /// For a plain HNSW index, whose rows share one graph and are not merged: the share of
    /// dead rows in the graph's sealed segments past which they are merged into one (dropping
    /// the dead rows) and the graph is built again. Searches walk through dead rows without
    /// returning them, so they cost little; each rebuild costs an HNSW build of the live rows.
    /// With rows replaced as fast as they come, a share `f` rebuilds every `f / (1 - f)` of
    /// the live rows: 0.5 keeps that to one build per replaced row (0.2 made it four, and
    /// searched no faster in `vecindex-bench live`).
    fn graph_rebuild_dead_fraction(&self) -> f64 {
        0.5
    }

    /// The tiered policy's settings, if this is one: what a persisted index records (a custom
    /// policy is not persisted; open with it again through `OpenOptions::config`).
    fn as_tiered(&self) -> Option<&TieredMergePolicy> {
        None
    }
}

/// One big graph fed by small segments, then tiers.
///
/// 1. Vacuum: a segment whose dead fraction exceeds `vacuum_dead_fraction` is rewritten alone
///    without its dead rows.
/// 2. Tiers, like tantivy's log merge policy, so that many small segments never wait behind a
///    big merge: a segment's tier is `log_f(live rows / seal rows)`; when a tier holds
///    `merge_factor` segments, the smallest of them are merged, up to `max_segment_rows`.
/// 3. Absorb (`absorb`, on by default): the largest segment below `max_segment_rows`, once it
///    has an index, takes in every other segment below that size (up to it) as soon as they
///    hold `absorb_fraction` of its live rows (and at least a sealed head's worth). Its index
///    is extended, not rebuilt, so each row is indexed about once, and a query walks one big
///    graph plus what was sealed since the last absorb, instead of one graph per tier (the
///    search cost of a graph hardly depends on its size). The fraction bounds what absorbing
///    rewrites: the big segment's rows and index, about `1 / absorb_fraction` times over.
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
    /// Whether the largest indexed segment absorbs the smaller ones (default true).
    pub absorb: bool,
    /// How many rows, relative to the largest segment's live rows, the others must hold before
    /// it absorbs them (default 1/32). Neither absorb setting is recorded by a persist yet: an
    /// index opened from disk uses the defaults unless the configuration it is opened with
    /// says otherwise.
    pub absorb_fraction: f64,
}

impl Default for TieredMergePolicy {
    fn default() -> Self {
        Self {
            merge_factor: 8,
            max_segment_rows: 1 << 20,
            vacuum_dead_fraction: 0.2,
            absorb: true,
            absorb_fraction: 1.0 / 32.0,
        }
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

    pub fn absorb(mut self, absorb: bool) -> Self {
        self.absorb = absorb;
        self
    }

    pub fn absorb_fraction(mut self, fraction: f64) -> Self {
        self.absorb_fraction = fraction;
        self
    }

    /// Appends `candidates` to `picked`, smallest first, while the live rows of all of `picked`
    /// stay within `max_segment_rows`. Returns those live rows.
    fn add_smallest_that_fit(
        &self,
        segments: &[SegmentInfo],
        candidates: impl Iterator<Item = usize>,
        picked: &mut Vec<usize>,
    ) -> usize {
        let mut candidates: Vec<usize> = candidates.collect();
        candidates.sort_by_key(|&i| segments[i].live_rows());
        let mut rows: usize = picked.iter().map(|&i| segments[i].live_rows()).sum();
        for i in candidates {
            let live = segments[i].live_rows();
            if rows + live > self.max_segment_rows {
                break;
            }
            rows += live;
            picked.push(i);
        }
        rows
    }

    /// Step 3 of the type docs: the absorbing segment first, then the others, smallest first.
    /// The largest segment below the size limit absorbs, if it has an index; if it has none,
    /// the tiers merge until the index is built (the maintenance step builds it when the
    /// policy picks nothing).
    fn pick_absorb(&self, segments: &[SegmentInfo], seal_rows: usize) -> Option<Vec<usize>> {
        let below_limit = |i: &usize| segments[*i].live_rows() < self.max_segment_rows;
        let base = (0..segments.len()).filter(below_limit).max_by_key(|&i| (segments[i].live_rows(), Reverse(i)))?;
        if !segments[base].indexed {
            return None;
        }
        let others = (0..segments.len()).filter(below_limit).filter(|&i| i != base);
        let mut picked = vec![base];
        let rows = self.add_smallest_that_fit(segments, others, &mut picked);
        let wanted = (segments[base].live_rows() as f64 * self.absorb_fraction).max(seal_rows as f64);
        (picked.len() >= 2 && (rows - segments[base].live_rows()) as f64 >= wanted).then_some(picked)
    }
}

impl MergePolicy for TieredMergePolicy {
    /// A vacuum candidate first, then a full tier, then an absorb.
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
        if self.absorb { self.pick_absorb(segments, seal_rows) } else { None }
    }

    /// The next group of segments that together fit in `max_segment_rows` live rows, taken
    /// smallest first, the largest of them (the base) first in the answer; or, when no two fit
    /// together, a segment with dead rows to rewrite alone.
    fn pick_all(&self, segments: &[SegmentInfo]) -> Option<Vec<usize>> {
        let mut order: Vec<usize> = (0..segments.len()).collect();
        order.sort_by_key(|&i| segments[i].live_rows());
        let mut picked = Vec::new();
        self.add_smallest_that_fit(segments, order.iter().copied(), &mut picked);
        if picked.len() >= 2 {
            picked.rotate_right(1);
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
        assert_eq!(policy.pick_all(&[info(10, 0), info(5, 0), info(7, 1)]), Some(vec![0, 1, 2]), "the largest first");
        let big = TieredMergePolicy::default().max_segment_rows(10);
        assert_eq!(big.pick_all(&[info(8, 0), info(9, 1)]), Some(vec![1]), "none fit together: rewrite the dead");
        assert_eq!(big.pick_all(&[info(8, 0), info(9, 0)]), None);
    }

    #[test]
    fn the_largest_indexed_segment_absorbs_the_smaller_ones() {
        let policy = TieredMergePolicy::default().max_segment_rows(1000).absorb_fraction(0.25);
        let indexed = |rows| info(rows, 0).indexed(true);
        assert_eq!(policy.pick(&[info(50, 0), indexed(400), info(30, 0)], 10), None, "80 < 25% of 400");
        assert_eq!(policy.pick(&[info(50, 0), indexed(400), info(30, 0)], 100), None, "80 < a sealed head");
        assert_eq!(policy.pick(&[info(50, 0), indexed(400), info(60, 0)], 10), Some(vec![1, 0, 2]));
        assert_eq!(policy.pick(&[indexed(400)], 10), None, "nothing to absorb");
        assert_eq!(policy.pick(&[info(500, 0), indexed(400)], 10), None, "the largest has no index yet");
        assert_eq!(
            policy.pick(&[indexed(1000), indexed(300), info(200, 0)], 10),
            Some(vec![1, 2]),
            "a full segment absorbs nothing and is not absorbed; the next one absorbs"
        );
        assert_eq!(policy.pick(&[indexed(700), info(280, 0), info(200, 0)], 10), Some(vec![0, 2]), "up to the limit");
        assert_eq!(policy.pick(&[indexed(400), info(150, 90)], 10), Some(vec![1]), "a vacuum comes first");
        let tiered = policy.clone().absorb(false);
        assert_eq!(tiered.pick(&[info(50, 0), indexed(400), info(60, 0)], 10), None, "a tier of three waits");
    }
}
