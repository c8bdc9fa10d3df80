//! Differential property test: random sequences of operations on [`VectorIndex`] (with a tiny
//! head, so rotation and sealing happen constantly), [`MutexIndex`] and a plain sequential model
//! must give the same results, errors, search hits and mappings after every step, also across
//! persist and reopen.

#![allow(clippy::disallowed_types)] // tests drive the index from std threads; the shim rule is the library's

use std::collections::BTreeMap;

use proptest::prelude::*;
use vecindex::{
    Chunk, Filter, Index, IndexConfig, Metric, MutexIndex, OpenOptions, SearchHit, SearchOptions, SegmentIndex,
    TieredMergePolicy, VectorIndex,
};

const DIM: usize = 3;

/// The model's own reading of the filters this test makes (equality, and conjunctions of it).
fn model_accepts(filter: &Filter, chunk: &Chunk) -> bool {
    match filter {
        Filter::Eq(key, value) => chunk.metadata.get(key) == Some(value),
        Filter::And(all) => all.iter().all(|f| model_accepts(f, chunk)),
        other => unimplemented!("the model reads eq and and, not {other:?}"),
    }
}

/// The obviously-correct model: ordered maps, brute force, no concurrency.
struct Model {
    metric: Metric,
    /// chunk id -> (doc id, stored chunk with prepared vector)
    chunks: BTreeMap<String, Chunk>,
    /// doc id -> chunk ids in the order their rows were added
    docs: BTreeMap<String, Vec<String>>,
}

impl Model {
    fn new(metric: Metric) -> Self {
        Self { metric, chunks: BTreeMap::new(), docs: BTreeMap::new() }
    }

    fn prepare(&self, chunks: &mut [Chunk]) -> vecindex::Result<()> {
        let mut seen = std::collections::HashSet::new();
        for c in chunks.iter_mut() {
            if c.chunk_id.is_empty() {
                return Err(vecindex::Error::EmptyId { what: "chunk_id" });
            }
            if c.doc_id.is_empty() {
                return Err(vecindex::Error::EmptyId { what: "doc_id" });
            }
            if !seen.insert(c.chunk_id.clone()) {
                return Err(vecindex::Error::DuplicateChunkId { chunk_id: c.chunk_id.clone() });
            }
            self.metric.prepare(DIM, &mut c.vector)?;
        }
        Ok(())
    }

    /// A chunk id of `chunks` that another document owns.
    fn conflict(&self, doc: &str, chunks: &[Chunk]) -> vecindex::Result<()> {
        for c in chunks {
            if let Some(owner) = self.chunks.get(&c.chunk_id).map(|o| &o.doc_id)
                && owner != doc
            {
                return Err(vecindex::Error::ChunkInOtherDocument {
                    chunk_id: c.chunk_id.clone(),
                    owner: owner.clone(),
                    requested: doc.to_owned(),
                });
            }
        }
        Ok(())
    }

    fn write(&mut self, doc: &str, chunks: Vec<Chunk>, replace: bool) -> vecindex::Result<()> {
        self.conflict(doc, &chunks)?;
        let mut list = self.docs.remove(doc).unwrap_or_default();
        if replace {
            for id in list.drain(..) {
                self.chunks.remove(&id);
            }
        }
        for c in chunks {
            list.retain(|id| id != &c.chunk_id);
            list.push(c.chunk_id.clone());
            self.chunks.insert(c.chunk_id.clone(), c);
        }
        if !list.is_empty() {
            self.docs.insert(doc.to_owned(), list);
        }
        Ok(())
    }

    fn add_chunks(&mut self, mut chunks: Vec<Chunk>) -> vecindex::Result<()> {
        self.prepare(&mut chunks)?;
        let mut order: Vec<String> = Vec::new();
        let mut groups: BTreeMap<String, Vec<Chunk>> = BTreeMap::new();
        for c in chunks {
            if !groups.contains_key(&c.doc_id) {
                order.push(c.doc_id.clone());
            }
            groups.entry(c.doc_id.clone()).or_default().push(c);
        }
        // All or nothing: every document is checked before any is written.
        for doc in &order {
            self.conflict(doc, &groups[doc])?;
        }
        for doc in order {
            let group = groups.remove(&doc).unwrap();
            self.write(&doc, group, false)?;
        }
        Ok(())
    }

    fn add_document(&mut self, doc: &str, mut chunks: Vec<Chunk>) -> vecindex::Result<()> {
        if doc.is_empty() {
            return Err(vecindex::Error::EmptyId { what: "doc_id" });
        }
        chunks.iter_mut().for_each(|c| c.doc_id = doc.to_owned());
        self.prepare(&mut chunks)?;
        self.write(doc, chunks, true)
    }

    fn remove_document(&mut self, doc: &str) -> usize {
        let ids = self.docs.remove(doc).unwrap_or_default();
        ids.iter().filter(|id| self.chunks.remove(*id).is_some()).count()
    }

    fn remove_chunk(&mut self, chunk_id: &str) -> bool {
        let Some(c) = self.chunks.remove(chunk_id) else {
            return false;
        };
        let list = self.docs.get_mut(&c.doc_id).unwrap();
        list.retain(|id| id != chunk_id);
        if list.is_empty() {
            self.docs.remove(&c.doc_id);
        }
        true
    }

    fn search(&self, query: &[f32], opts: &SearchOptions) -> vecindex::Result<Vec<SearchHit>> {
        if opts.k == 0 {
            return Err(vecindex::Error::ZeroK);
        }
        let mut q = query.to_vec();
        self.metric.prepare(DIM, &mut q)?;
        let mut hits: Vec<(f32, SearchHit)> = self
            .chunks
            .values()
            .filter(|c| !opts.exclude_docs.contains(&c.doc_id))
            .filter(|c| opts.filter.as_ref().is_none_or(|f| model_accepts(f, c)))
            .map(|c| {
                let score = self.metric.score(&q, &c.vector);
                let hit = SearchHit {
                    chunk_id: c.chunk_id.clone(),
                    doc_id: c.doc_id.clone(),
                    score,
                    metadata: c.metadata.clone(),
                    text: None,
                    vector: None,
                };
                (self.metric.rank_key(score), hit)
            })
            .collect();
        hits.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.chunk_id.cmp(&b.1.chunk_id)));
        Ok(hits.into_iter().take(opts.k).map(|(_, h)| h).collect())
    }
}

#[derive(Clone, Debug)]
enum Op {
    AddChunk(Chunk),
    AddChunks(Vec<Chunk>),
    AddDocument(String, Vec<Chunk>),
    RemoveDocument(String),
    RemoveChunk(String),
    Search(Vec<f32>, SearchOptions),
    Maintain,
    PersistAndReopen,
}

fn id(prefix: &'static str, n: u8) -> impl Strategy<Value = String> {
    (0..n).prop_map(move |i| if i == 0 { String::new() } else { format!("{prefix}{i}") })
}

fn small_vector() -> impl Strategy<Value = Vec<f32>> {
    // Small integers give ties and zero vectors; rarely a wrong length or a NaN.
    prop_oneof![
        20 => proptest::collection::vec((-2i8..=2).prop_map(f32::from), DIM),
        1 => proptest::collection::vec((-2i8..=2).prop_map(f32::from), DIM + 1),
        1 => Just(vec![1.0, f32::NAN, 0.0]),
    ]
}

fn chunk() -> impl Strategy<Value = Chunk> {
    (id("c", 12), id("d", 5), small_vector(), 0u8..3).prop_map(|(c, d, v, tag)| {
        Chunk::new(c.clone(), d, v).with_text(format!("text of {c}")).with_meta("tag", format!("t{tag}"))
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => chunk().prop_map(Op::AddChunk),
        2 => proptest::collection::vec(chunk(), 0..5).prop_map(Op::AddChunks),
        3 => (id("d", 5), proptest::collection::vec(chunk(), 0..4)).prop_map(|(d, c)| Op::AddDocument(d, c)),
        2 => id("d", 5).prop_map(Op::RemoveDocument),
        2 => id("c", 12).prop_map(Op::RemoveChunk),
        4 => (small_vector(), 0usize..6, proptest::option::of(id("d", 5)), proptest::option::of(0u8..3)).prop_map(
            |(q, k, exclude, tag)| {
                let mut opts = SearchOptions::k(k);
                if let Some(d) = exclude {
                    opts = opts.exclude_doc(d);
                }
                if let Some(t) = tag {
                    opts = opts.filter(Filter::eq("tag", format!("t{t}")));
                }
                Op::Search(q, opts)
            }
        ),
        1 => Just(Op::Maintain),
        1 => Just(Op::PersistAndReopen),
    ]
}

fn show<T: std::fmt::Debug>(r: &vecindex::Result<T>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({e})"),
    }
}

fn metric() -> impl Strategy<Value = Metric> {
    prop_oneof![Just(Metric::Cosine), Just(Metric::InnerProduct), Just(Metric::L2)]
}

/// Sealed segments: exact scans, or FAISS "Flat" indexes (which must give the same hits, scores
/// and order), built for every segment however small, and merged (two at a time) and vacuumed
/// (at 20% dead) at every `maintain()`; or the graph plain HNSW rows share, grown at every
/// `maintain()` and rebuilt at half dead rows, with an efSearch above any node count here: a
/// walk that wide reaches every node the graph links, so it too must give the model's answer.
fn segment_index() -> impl Strategy<Value = SegmentIndex> {
    let flat = SegmentIndex::faiss("Flat").min_rows(0);
    let shared_graph = SegmentIndex::faiss("HNSW32").min_rows(0).ef_search(100_000);
    prop_oneof![Just(SegmentIndex::exact()), Just(flat), Just(shared_graph)]
}

fn check(metric: Metric, segments: SegmentIndex, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let merge = TieredMergePolicy::default().merge_factor(2);
    let config = IndexConfig::new(DIM)
        .metric(metric)
        .head_capacity(3)
        .background(false)
        .segment_index(segments)
        .merge_policy(merge);
    let mut vector = VectorIndex::new(config.clone()).unwrap();
    let mut mutex = MutexIndex::new(config.clone()).unwrap();
    let mut model = Model::new(metric);
    let dir = tempfile::tempdir().unwrap();
    for (step, op) in ops.into_iter().enumerate() {
        let results: [String; 3] = match &op {
            Op::AddChunk(c) => {
                let m = model.add_chunks(vec![c.clone()]);
                [show(&vector.add_chunk(c.clone())), show(&mutex.add_chunk(c.clone())), show(&m)]
            }
            Op::AddChunks(cs) => {
                let m = model.add_chunks(cs.clone());
                [show(&vector.add_chunks(cs.clone())), show(&mutex.add_chunks(cs.clone())), show(&m)]
            }
            Op::AddDocument(d, cs) => {
                let m = model.add_document(d, cs.clone());
                [show(&vector.add_document(d, cs.clone())), show(&mutex.add_document(d, cs.clone())), show(&m)]
            }
            Op::RemoveDocument(d) => {
                let m = if d.is_empty() {
                    Err(vecindex::Error::EmptyId { what: "doc_id" })
                } else {
                    Ok(model.remove_document(d))
                };
                [show(&vector.remove_document(d)), show(&mutex.remove_document(d)), show(&m)]
            }
            Op::RemoveChunk(c) => {
                let m = if c.is_empty() {
                    Err(vecindex::Error::EmptyId { what: "chunk_id" })
                } else {
                    Ok(model.remove_chunk(c))
                };
                [show(&vector.remove_chunk(c)), show(&mutex.remove_chunk(c)), show(&m)]
            }
            Op::Search(q, opts) => {
                [show(&vector.search(q, opts)), show(&mutex.search(q, opts)), show(&model.search(q, opts))]
            }
            Op::Maintain => {
                vector.maintain();
                Default::default()
            }
            Op::PersistAndReopen => {
                let (a, b) = (dir.path().join("vector"), dir.path().join("mutex"));
                vector.persist(&a).unwrap();
                mutex.persist(&b).unwrap();
                let options = OpenOptions::new().config(config.clone()).strict(true);
                let report;
                // One writer per directory: the old handle lets go of it first.
                drop(std::mem::replace(&mut vector, VectorIndex::new(config.clone()).unwrap()));
                (vector, report) = VectorIndex::open_with_options(&a, &options).unwrap();
                prop_assert!(report.is_clean(), "step {}: {:?}", step, report);
                (mutex, _) = MutexIndex::open_with_options(&b, &options).unwrap();
                Default::default()
            }
        };
        prop_assert_eq!(&results[0], &results[2], "step {}: VectorIndex vs model on {:?}", step, op);
        prop_assert_eq!(&results[1], &results[2], "step {}: MutexIndex vs model on {:?}", step, op);
        // Mappings and stored chunks agree after every step.
        let docs: Vec<String> = model.docs.keys().cloned().collect();
        prop_assert_eq!(&vector.document_ids(), &docs, "step {}: documents", step);
        prop_assert_eq!(&mutex.document_ids(), &docs, "step {}: documents", step);
        for (doc, ids) in &model.docs {
            prop_assert_eq!(&vector.chunk_ids(doc), ids, "step {}: chunks of {}", step, doc);
            prop_assert_eq!(&mutex.chunk_ids(doc), ids, "step {}: chunks of {}", step, doc);
        }
        for i in 0..12 {
            let chunk_id = format!("c{i}");
            let expected = model.chunks.get(&chunk_id).cloned();
            prop_assert_eq!(vector.chunk(&chunk_id), expected.clone(), "step {}: get_chunk", step);
            prop_assert_eq!(mutex.chunk(&chunk_id), expected, "step {}: get_chunk", step);
        }
        prop_assert_eq!(vector.len(), model.chunks.len());
        prop_assert_eq!(mutex.len(), model.chunks.len());
    }
    prop_assert_eq!(vector.reconcile_mappings(), 0);
    prop_assert_eq!(mutex.reconcile_mappings(), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn vector_index_mutex_index_and_model_agree(
        metric in metric(),
        segments in segment_index(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        check(metric, segments, ops)?;
    }
}
