//! Search options, hits, and the top-k selection shared by every index.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashSet};

use crate::chunk::Metadata;
use crate::error::{Error, Result};
use crate::metadata::Filter;
use crate::metric::Metric;
use crate::rows::{RowHandle, RowRef};

/// What a search returns and which chunks it may return.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchOptions {
    /// How many hits to return (at most). Must be at least 1.
    pub k: usize,
    /// Chunks of these documents are skipped.
    pub exclude_docs: HashSet<String>,
    /// Only chunks this filter accepts are returned (applied before the top k is chosen).
    pub filter: Option<Filter>,
    /// HNSW segments: the candidate list size for this query (default: the index's setting).
    pub ef_search: Option<usize>,
    /// IVF segments: how many lists this query probes (default: the index's setting).
    pub nprobe: Option<usize>,
    /// What each hit carries besides its ids and score.
    pub include: Include,
}

/// What a search hit carries besides its chunk id, document id and score: the metadata (by
/// default), the text and the vector (on request).
///
/// ```
/// use vecindex::{Include, SearchOptions};
///
/// let options = SearchOptions::k(3).include(Include::default().text(true).vector(true));
/// assert!(options.include.metadata && options.include.text && options.include.vector);
/// assert_eq!(Include::none(), Include { metadata: false, text: false, vector: false });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Include {
    pub metadata: bool,
    pub text: bool,
    /// The vector as stored (normalized for cosine).
    pub vector: bool,
}

impl Default for Include {
    fn default() -> Self {
        Self { metadata: true, text: false, vector: false }
    }
}

impl Include {
    /// Ids and scores only.
    pub fn none() -> Self {
        Self { metadata: false, text: false, vector: false }
    }

    /// Metadata, text and vector.
    pub fn all() -> Self {
        Self { metadata: true, text: true, vector: true }
    }

    pub fn metadata(mut self, on: bool) -> Self {
        self.metadata = on;
        self
    }

    pub fn text(mut self, on: bool) -> Self {
        self.text = on;
        self
    }

    pub fn vector(mut self, on: bool) -> Self {
        self.vector = on;
        self
    }
}

impl SearchOptions {
    /// The `k` nearest chunks, unfiltered.
    pub fn k(k: usize) -> Self {
        Self {
            k,
            exclude_docs: HashSet::new(),
            filter: None,
            ef_search: None,
            nprobe: None,
            include: Include::default(),
        }
    }

    /// Sets what each hit carries ([`Include`]).
    pub fn include(mut self, include: Include) -> Self {
        self.include = include;
        self
    }

    /// Skips the chunks of `doc_id`.
    pub fn exclude_doc(mut self, doc_id: impl Into<String>) -> Self {
        self.exclude_docs.insert(doc_id.into());
        self
    }

    /// Only returns chunks `filter` accepts (and those of any filter set before).
    ///
    /// ```
    /// use vecindex::{Filter, SearchOptions};
    ///
    /// let options = SearchOptions::k(5).filter(Filter::eq("lang", "fr")).filter(Filter::gte("year", 2020));
    /// assert_eq!(options.filter, Some(Filter::eq("lang", "fr").and(Filter::gte("year", 2020))));
    /// ```
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(match self.filter.take() {
            Some(before) => before.and(filter),
            None => filter,
        });
        self
    }

    /// Sets the HNSW candidate list size for this query.
    pub fn ef_search(mut self, ef: usize) -> Self {
        self.ef_search = Some(ef);
        self
    }

    /// Sets how many IVF lists this query probes.
    pub fn nprobe(mut self, nprobe: usize) -> Self {
        self.nprobe = Some(nprobe);
        self
    }

    /// Whether some rows may be rejected by document or metadata.
    #[cfg_attr(not(feature = "faiss"), allow(dead_code))]
    pub(crate) fn has_filters(&self) -> bool {
        !self.exclude_docs.is_empty() || self.filter.is_some()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.k == 0 {
            return Err(Error::ZeroK);
        }
        if let Some(filter) = &self.filter {
            filter.check()?;
        }
        Ok(())
    }

    /// Whether every row passes: no document is excluded and no metadata is filtered on.
    #[inline]
    pub(crate) fn accepts_all(&self) -> bool {
        self.exclude_docs.is_empty() && self.filter.is_none()
    }

    /// Whether a row passes the document exclusion and the metadata filter.
    #[inline]
    pub(crate) fn accepts(&self, row: RowRef<'_>) -> bool {
        (self.exclude_docs.is_empty() || !self.exclude_docs.contains(row.doc_id()))
            && self.filter.as_ref().is_none_or(|filter| filter.matches(row))
    }
}

/// One search result.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchHit {
    pub chunk_id: String,
    pub doc_id: String,
    /// Similarity for cosine and inner product (higher is closer), squared distance for L2
    /// (lower is closer). Hits are always ordered best first.
    pub score: f32,
    /// Empty unless [`Include::metadata`] (the default).
    pub metadata: Metadata,
    /// With [`Include::text`].
    pub text: Option<String>,
    /// With [`Include::vector`]: the vector as stored (normalized for cosine).
    pub vector: Option<Vec<f32>>,
}

struct Candidate {
    key: f32,
    score: f32,
    row: RowHandle,
    /// Copied when offered, only if hits carry vectors: a head row's handle does not reach it.
    vector: Option<Box<[f32]>>,
}

impl Candidate {
    /// `Greater` means worse: a lower key, or an equal key and a larger chunk id. Ties are
    /// broken by chunk id so that every index returns the same hits in the same order.
    fn worse_cmp(&self, other: &Self) -> CmpOrdering {
        other.key.total_cmp(&self.key).then_with(|| self.row.get().chunk_id().cmp(other.row.get().chunk_id()))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.worse_cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.worse_cmp(other)
    }
}

/// Keeps the `k` best rows offered to it; the heap's top is the worst one kept.
pub struct TopK {
    k: usize,
    metric: Metric,
    include: Include,
    heap: BinaryHeap<Candidate>,
}

impl TopK {
    pub(crate) fn new(k: usize, metric: Metric) -> Self {
        Self { k, metric, include: Include::default(), heap: BinaryHeap::with_capacity(k.min(4096) + 1) }
    }

    /// The top `options.k` with hits carrying what `options.include` asks.
    pub(crate) fn for_options(options: &SearchOptions, metric: Metric) -> Self {
        Self { include: options.include, ..Self::new(options.k, metric) }
    }

    pub(crate) fn metric(&self) -> Metric {
        self.metric
    }

    /// Whether a row of this score could be kept: false only when `k` rows are kept and the
    /// worst of them is strictly better (a tie may still win on its chunk id, in `offer_scored`).
    /// Lets a scan skip everything else about a row, visibility included, for most rows.
    #[inline]
    pub(crate) fn may_keep(&self, score: f32) -> bool {
        let key = self.metric.rank_key(score);
        self.heap.len() < self.k || self.heap.peek().is_some_and(|worst| key >= worst.key)
    }

    /// Scores `vector` against `query` and keeps the row if it is among the best so far.
    #[inline]
    pub(crate) fn offer(&mut self, query: &[f32], row: RowRef<'_>, vector: &[f32]) {
        self.offer_scored(row, vector, self.metric.score(query, vector));
    }

    /// Keeps the row (and its vector), whose score is `score`, if it is among the best so far.
    #[inline]
    pub(crate) fn offer_scored(&mut self, row: RowRef<'_>, vector: &[f32], score: f32) {
        let key = self.metric.rank_key(score);
        if self.heap.len() == self.k {
            let Some(worst) = self.heap.peek() else { return }; // k = 0 keeps nothing
            let beats = key > worst.key || (key == worst.key && row.chunk_id() < worst.row.get().chunk_id());
            if !beats {
                return;
            }
            self.heap.pop();
        }
        let vector = self.include.vector.then(|| vector.into());
        self.heap.push(Candidate { key, score, row: row.to_handle(), vector });
    }

    /// The kept rows, best first.
    pub(crate) fn into_hits(self) -> Vec<SearchHit> {
        let include = self.include;
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|c| {
                let row = c.row.get();
                SearchHit {
                    chunk_id: row.chunk_id().to_owned(),
                    doc_id: row.doc_id().to_owned(),
                    score: c.score,
                    metadata: if include.metadata { row.metadata() } else { Metadata::new() },
                    text: include.text.then(|| row.text().to_owned()),
                    vector: c.vector.map(Vec::from),
                }
            })
            .collect()
    }
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;
    use crate::chunk::Chunk;
    use crate::rows::RowMeta;
    use crate::sync::Arc;

    fn row(id: &str) -> Arc<RowMeta> {
        Arc::new(RowMeta::from_chunk(Chunk::new(id, "d", vec![1.0]), 1, 0).0)
    }

    #[test]
    fn keeps_best_k_with_deterministic_ties() {
        let mut top = TopK::new(2, Metric::InnerProduct);
        let q = [1.0];
        top.offer(&q, RowRef::Owned(&row("c")), &[0.5]);
        top.offer(&q, RowRef::Owned(&row("b")), &[0.5]);
        top.offer(&q, RowRef::Owned(&row("a")), &[0.1]);
        top.offer(&q, RowRef::Owned(&row("z")), &[0.9]);
        let ids: Vec<_> = top.into_hits().into_iter().map(|h| h.chunk_id).collect();
        assert_eq!(ids, ["z", "b"]);
    }

    #[test]
    fn l2_ranks_smallest_distance_first() {
        let mut top = TopK::new(2, Metric::L2);
        let q = [0.0];
        top.offer(&q, RowRef::Owned(&row("far")), &[3.0]);
        top.offer(&q, RowRef::Owned(&row("near")), &[1.0]);
        top.offer(&q, RowRef::Owned(&row("mid")), &[2.0]);
        let hits = top.into_hits();
        assert_eq!(hits[0].chunk_id, "near");
        assert_eq!(hits[0].score, 1.0);
        assert_eq!(hits[1].chunk_id, "mid");
    }
}
