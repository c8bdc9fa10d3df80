//! FAISS builds over repeated vectors. Real corpora repeat text (licences, navigation,
//! boilerplate), which an embedder maps to one vector, or to vectors that differ in their last
//! bits; HNSW construction over such points crawls (`src/segment/groups.rs` says why). This
//! builds HNSW32 over the same rows three ways of repeating, with raw FAISS (the crate's build,
//! one `add` of every row, vecindex's efConstruction) and with vecindex's segment build (one
//! graph node per distinct vector), and times both in the same run.

use std::time::Instant;

use faiss::{Index as _, MetricType};
use serde::{Deserialize, Serialize};
use vecindex::embed::{Embedder, HashingEmbedder};
use vecindex::{Chunk, IndexConfig, SegmentIndex, VectorIndex};

pub struct Params {
    pub rows: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub pattern: String,
    pub rows: usize,
    /// Nodes of vecindex's graph: the distinct vectors.
    pub nodes: usize,
    pub raw_faiss_s: f64,
    pub vecindex_s: f64,
}

/// Boilerplate chunks that half of the rows of the repeating patterns copy.
pub const BOILERPLATE: usize = 20;

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// `rows` vectors: the corpus's chunks embedded by the hashing embedder; in the repeating
/// patterns every other row is a copy of one of `BOILERPLATE` chunks, exact or with noise of
/// 1e-5 per component (what the same text embedded in another batch can give).
fn rows(pattern: &str, chunks: &[Vec<f32>], n: usize) -> Vec<Vec<f32>> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 1e-5
    };
    (0..n)
        .map(|i| match pattern {
            "distinct" => chunks[i % chunks.len()].clone(),
            _ if i % 2 == 0 => chunks[(BOILERPLATE + i / 2) % chunks.len()].clone(),
            "exact copies" => chunks[i % BOILERPLATE].clone(),
            _ => unit(chunks[i % BOILERPLATE].iter().map(|x| x + noise()).collect()),
        })
        .collect()
}

pub fn run(params: &Params) -> Vec<Outcome> {
    let texts = crate::corpus::all_chunks(std::path::Path::new(crate::corpus::PYDOC)).unwrap_or_else(|e| {
        eprintln!("duplicates: {e}");
        std::process::exit(1)
    });
    let embedder = HashingEmbedder::new(384);
    let wanted: Vec<&str> = texts.iter().take(params.rows).map(String::as_str).collect();
    let chunks = embedder.embed(&wanted).expect("the hashing embedder never fails");
    let segment = SegmentIndex::faiss("HNSW32").min_rows(0);
    let mut outcomes = Vec::new();
    for pattern in ["distinct", "exact copies", "near copies"] {
        let vectors = rows(pattern, &chunks, params.rows);
        let flat: Vec<f32> = vectors.iter().flatten().copied().collect();

        let mut raw = faiss::index_factory(384, "HNSW32", MetricType::InnerProduct).expect("FAISS");
        crate::recall::set_parameter(&mut raw, "efConstruction", segment.ef_construction as f64);
        let started = Instant::now();
        raw.add(&flat).expect("FAISS add");
        let raw_faiss_s = started.elapsed().as_secs_f64();

        let config =
            IndexConfig::new(384).head_capacity(params.rows + 1).background(false).segment_index(segment.clone());
        let index = VectorIndex::new(config).expect("config");
        let batch: Vec<Chunk> = vectors
            .into_iter()
            .enumerate()
            .map(|(i, v)| Chunk::new(format!("c{i}"), format!("d{}", i / 50), v))
            .collect();
        index.add_chunks(batch).expect("valid rows");
        index.force_merge();
        let built = index.stats().segments.into_iter().find(|s| s.indexed_vectors.is_some()).expect("one HNSW segment");
        let outcome = Outcome {
            pattern: pattern.to_owned(),
            rows: params.rows,
            nodes: built.indexed_vectors.unwrap_or(0),
            raw_faiss_s,
            vecindex_s: built.build_time.map_or(f64::NAN, |t| t.as_secs_f64()),
        };
        println!(
            "duplicates: {:<13} {} rows, {} nodes: raw FAISS {:.2} s, vecindex {:.2} s ({:.1}x)",
            outcome.pattern,
            outcome.rows,
            outcome.nodes,
            outcome.raw_faiss_s,
            outcome.vecindex_s,
            outcome.raw_faiss_s / outcome.vecindex_s
        );
        outcomes.push(outcome);
    }
    outcomes
}
