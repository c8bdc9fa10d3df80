//! Typed metadata and filters end to end: every operator against an independent reading of the
//! same rows, wherever the rows are (head, sealed segments, reopened from a snapshot, replayed
//! from the log), and bad filters as typed errors.

#![allow(clippy::disallowed_types)] // tests use std types; the shim rule is the library's

mod common;

use std::collections::BTreeSet;

use vecindex::{Chunk, Error, Filter, FilterError, IndexConfig, Metadata, SearchOptions, Value, VectorIndex};

const ROWS: usize = 600;
const DIM: usize = common::DIM;

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

const LANGS: [&str; 4] = ["en", "fr", "de", "ja"];
const TAGS: [&str; 5] = ["rust", "db", "ml", "web", "os"];

/// Rows whose metadata mixes every type, with keys some rows lack and a key whose type varies.
fn rows() -> Vec<Chunk> {
    let mut next = rng(7);
    (0..ROWS)
        .map(|i| {
            let vector: Vec<f32> = (0..DIM).map(|_| (next() % 1000) as f32 / 500.0 - 1.0).collect();
            let mut chunk = Chunk::new(format!("c{i}"), format!("d{}", i / 6), vector)
                .with_meta("lang", LANGS[(next() % 4) as usize])
                .with_meta("year", 2000 + (next() % 25) as i64);
            if i % 3 != 0 {
                chunk = chunk.with_meta("score", (next() % 1000) as f64 / 1000.0);
            }
            if i % 2 == 0 {
                chunk = chunk.with_meta("draft", next().is_multiple_of(2));
            }
            let tags: Vec<&str> = TAGS.iter().copied().filter(|_| next().is_multiple_of(3)).collect();
            chunk = chunk.with_meta("tags", tags);
            // "mixed" is a number on some rows and a string on others.
            chunk.with_meta(
                "mixed",
                if i % 4 == 0 { Value::Str(format!("{}", i % 7)) } else { Value::Int((i % 7) as i64) },
            )
        })
        .collect()
}

/// The test's own reading of a filter, written from the documented semantics.
fn reference(filter: &Filter, doc_id: &str, m: &Metadata) -> bool {
    fn number(v: &Value) -> Option<f64> {
        match v {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
    let equal = |a: &Value, b: &Value| match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    };
    let has = |key: &str, v: &Value| m.get(key).is_some_and(|x| equal(x, v));
    let cmp = |key: &str, bound: &Value, pass: fn(f64, f64) -> bool| {
        m.get(key).and_then(number).zip(number(bound)).is_some_and(|(x, b)| pass(x, b))
    };
    let one_of = |key: &str, vs: &[Value]| {
        m.get(key).is_some_and(|x| !matches!(x, Value::List(_)) && vs.iter().any(|v| equal(x, v)))
    };
    match filter {
        Filter::Eq(k, v) => has(k, v),
        Filter::Ne(k, v) => !has(k, v),
        Filter::Gt(k, b) => cmp(k, b, |x, b| x > b),
        Filter::Gte(k, b) => cmp(k, b, |x, b| x >= b),
        Filter::Lt(k, b) => cmp(k, b, |x, b| x < b),
        Filter::Lte(k, b) => cmp(k, b, |x, b| x <= b),
        Filter::In(k, vs) => one_of(k, vs),
        Filter::Nin(k, vs) => !one_of(k, vs),
        Filter::Contains(k, item) => matches!(m.get(k), Some(Value::List(items)) if items.contains(item)),
        Filter::DocIn(ids) => ids.contains(doc_id),
        Filter::And(all) => all.iter().all(|f| reference(f, doc_id, m)),
        Filter::Or(any) => any.iter().any(|f| reference(f, doc_id, m)),
        Filter::Not(inner) => !reference(inner, doc_id, m),
        other => panic!("unknown filter {other:?}"),
    }
}

/// Filters of every operator, alone and combined, some selective and some not.
fn filters() -> Vec<Filter> {
    let leaves = vec![
        Filter::eq("lang", "fr"),
        Filter::eq("year", 2010),
        Filter::eq("year", 2010.0),
        Filter::eq("draft", true),
        Filter::eq("tags", ["rust"]),
        Filter::eq("mixed", 3),
        Filter::eq("mixed", "3"),
        Filter::ne("lang", "en"),
        Filter::ne("draft", false),
        Filter::gt("year", 2020),
        Filter::gte("score", 0.9),
        Filter::lt("year", 2003),
        Filter::lte("score", 0.05),
        Filter::gt("mixed", 4),
        Filter::gt("lang", 1),
        Filter::is_in("lang", ["ja", "de"]),
        Filter::is_in("year", [2001, 2002]),
        Filter::not_in("lang", ["en", "fr", "de"]),
        Filter::contains("tags", "ml"),
        Filter::contains("lang", "fr"),
        Filter::eq("nobody", "x"),
        Filter::ne("nobody", "x"),
        Filter::doc_in(["d3", "d40", "d99", "nope"]),
    ];
    let mut all = leaves.clone();
    let mut next = rng(11);
    for _ in 0..40 {
        let shape = next() % 4;
        let mut pick = || leaves[(next() % leaves.len() as u64) as usize].clone();
        let combined = match shape {
            0 => pick().and(pick()),
            1 => pick().or(pick()).and(pick().not()),
            2 => Filter::Not(Box::new(pick().or(pick()))),
            _ => pick().and(pick().or(pick())),
        };
        all.push(combined);
    }
    all
}

/// Every filter, searched for all rows (k = their number: exact segments, so every passing row comes
/// back), matches the reference's set of chunk ids.
fn check_every_filter(index: &VectorIndex, rows: &[Chunk], when: &str) {
    let query = vec![0.1; DIM];
    for filter in filters() {
        let expected: BTreeSet<&str> =
            rows.iter().filter(|c| reference(&filter, &c.doc_id, &c.metadata)).map(|c| c.chunk_id.as_str()).collect();
        let hits = index.search(&query, &SearchOptions::k(rows.len()).filter(filter.clone())).unwrap();
        let found: BTreeSet<&str> = hits.iter().map(|h| h.chunk_id.as_str()).collect();
        assert_eq!(found, expected, "{when}: {filter:?}");
        for hit in &hits {
            let row = rows.iter().find(|c| c.chunk_id == hit.chunk_id).unwrap();
            assert_eq!(hit.metadata, row.metadata, "{when}: hits carry their typed metadata");
        }
    }
}

fn config() -> IndexConfig {
    common::exact_config().head_capacity(256)
}

#[test]
fn every_operator_matches_the_reference_in_every_place_rows_live() {
    let rows = rows();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    {
        let index = VectorIndex::create(&path, config()).unwrap();
        index.add_chunks(rows[..100].to_vec()).unwrap();
        check_every_filter(&index, &rows[..100], "in the head");
        index.add_chunks(rows[100..].to_vec()).unwrap();
        index.maintain();
        assert!(index.stats().segments.len() > 1, "sealed segments and a head");
        check_every_filter(&index, &rows, "sealed and head");
        index.persist(&path).unwrap();
    }
    let index = VectorIndex::open(&path).unwrap();
    check_every_filter(&index, &rows, "reopened from the snapshot");
    let more: Vec<Chunk> = rows.iter().cloned().map(|c| Chunk { chunk_id: format!("x{}", c.chunk_id), ..c }).collect();
    index.add_chunks(more[..50].to_vec()).unwrap();
    drop(index); // not persisted: the log holds them
    let index = VectorIndex::open(&path).unwrap();
    let all: Vec<Chunk> = rows.iter().chain(&more[..50]).cloned().collect();
    check_every_filter(&index, &all, "replayed from the log");
}

#[test]
fn bad_filters_and_metadata_are_typed_errors_and_change_nothing() {
    let index = VectorIndex::new(config()).unwrap();
    index.add_chunks(rows()[..10].to_vec()).unwrap();
    let query = vec![0.1; DIM];
    let bad = [
        Filter::gt("year", "2020"),
        Filter::lt("year", true),
        Filter::eq("score", f64::NAN),
        Filter::In("lang".into(), vec![Value::from(["en"])]),
    ];
    for filter in bad {
        let got = index.search(&query, &SearchOptions::k(3).filter(filter.clone()));
        assert!(matches!(got, Err(Error::InvalidFilter(_))), "{filter:?}: {got:?}");
    }
    let json = serde_json::json!({"year": {"$near": 2020}});
    assert!(matches!(Filter::from_json(&json), Err(FilterError::UnknownOperator { .. })));

    let nan = Chunk::new("nan", "d", vec![0.5; DIM]).with_meta("score", f64::NAN);
    let fine = Chunk::new("fine", "d", vec![0.5; DIM]);
    let before = index.len();
    assert!(matches!(index.add_chunks(vec![fine, nan]), Err(Error::InvalidMetadata { .. })));
    assert_eq!(index.len(), before, "nothing of the call applied");
}

/// Filtered searches through each kind of index (the shared graph, a FAISS graph per segment,
/// FAISS IVF) against exact filtered search over the same rows: the rows few filters pass are
/// scored exactly, so those hits are the exact ones; a filter most rows pass walks the graph.
#[cfg(feature = "faiss")]
#[test]
fn filtered_searches_find_the_exact_filtered_neighbors_in_every_kind_of_index() {
    use vecindex::SegmentIndex;
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }
    const N: usize = 6000;
    const DIM16: usize = 16;
    let mut next = rng(23);
    let mut unit = move || (next() % 1_000_000) as f64 / 1_000_000.0;
    let chunks: Vec<Chunk> = (0..N)
        .map(|i| {
            let vector: Vec<f32> = (0..DIM16).map(|_| unit() as f32 * 2.0 - 1.0).collect();
            // Unit length: the index's cosine is then the dot product the truth ranks by.
            let norm = dot(&vector, &vector).sqrt();
            let vector: Vec<f32> = vector.iter().map(|x| x / norm).collect();
            let u = unit();
            let color = if u < 0.5 {
                "red"
            } else if u < 0.6 {
                "green"
            } else if u < 0.61 {
                "blue"
            } else {
                "other"
            };
            Chunk::new(format!("c{i}"), format!("d{}", i / 10), vector)
                .with_meta("color", color)
                .with_meta("price", unit())
        })
        .collect();
    let filters = [
        Filter::eq("color", "red"),
        Filter::eq("color", "green"),
        Filter::eq("color", "blue"),
        Filter::lt("price", 0.5),
        Filter::lt("price", 0.01),
        Filter::ne("color", "blue"),
        Filter::eq("color", "red").and(Filter::lt("price", 0.1)),
        Filter::eq("color", "blue").or(Filter::gte("price", 0.995)),
    ];
    let kinds =
        [SegmentIndex::default(), SegmentIndex::faiss("HNSW16,Flat"), SegmentIndex::faiss("IVF16,Flat").nprobe(16)];
    for kind in kinds {
        let name = format!("{:?}", kind.factory());
        let config = IndexConfig::new(DIM16).segment_index(kind.min_rows(256)).background(false);
        let index = VectorIndex::new(config).unwrap();
        index.add_chunks(chunks.clone()).unwrap();
        index.force_merge();
        let queries: Vec<Vec<f32>> =
            (0..30).map(|q| chunks[q * 97].vector.iter().map(|x| x + 0.05).collect()).collect();
        for filter in &filters {
            let passing: Vec<&Chunk> = chunks.iter().filter(|c| reference(filter, &c.doc_id, &c.metadata)).collect();
            let (mut found, mut wanted) = (0, 0);
            for query in &queries {
                let mut exact: Vec<(f32, &str)> =
                    passing.iter().map(|c| (dot(query, &c.vector), c.chunk_id.as_str())).collect();
                exact.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
                let truth: BTreeSet<&str> = exact.iter().take(10).map(|(_, id)| *id).collect();
                let options = SearchOptions::k(10).ef_search(16).filter(filter.clone());
                let hits = index.search(query, &options).unwrap();
                assert!(hits.iter().all(|h| reference(filter, &h.doc_id, &h.metadata)), "{name} {filter:?}");
                assert_eq!(hits.len(), truth.len(), "{name} {filter:?}: never short");
                found += hits.iter().filter(|h| truth.contains(h.chunk_id.as_str())).count();
                wanted += truth.len();
            }
            let recall = found as f64 / wanted as f64;
            // Under 1024 passing rows the rows are scored: exact.
            let floor = if passing.len() <= 1024 { 1.0 } else { 0.85 };
            assert!(recall >= floor, "{name} {filter:?} ({} rows pass): recall {recall:.3}", passing.len());
        }
    }
}

/// Hits carry what `Include` asks, wherever the row lives; a batch answers as single searches
/// do; `remove_where` removes exactly the rows the filter accepts, in both index designs.
#[test]
fn hits_carry_what_was_asked_batches_match_single_searches_and_removal_by_filter_is_exact() {
    use vecindex::{Include, Index, MutexIndex};
    let rows: Vec<Chunk> = rows().into_iter().map(|c| c.with_text("text of the chunk")).collect();
    let vecindex_index = VectorIndex::new(config()).unwrap();
    let mutex_index = MutexIndex::new(config()).unwrap();
    for index in [&vecindex_index as &dyn Index, &mutex_index] {
        index.add_chunks(rows[..300].to_vec()).unwrap();
        vecindex_index.maintain(); // some rows sealed, the rest in the head
        index.add_chunks(rows[300..].to_vec()).unwrap();
        let query: Vec<f32> = rows[5].vector.clone();
        let all = index.search(&query, &SearchOptions::k(20).include(Include::all())).unwrap();
        assert_eq!(all.len(), 20);
        for hit in &all {
            let stored = index.chunk(&hit.chunk_id).unwrap();
            assert_eq!(hit.text.as_deref(), Some("text of the chunk"));
            assert_eq!(hit.vector.as_ref(), Some(&stored.vector), "the vector as stored");
            assert_eq!(hit.metadata, stored.metadata);
        }
        let bare = index.search(&query, &SearchOptions::k(20).include(Include::none())).unwrap();
        assert!(bare.iter().all(|h| h.metadata.is_empty() && h.text.is_none() && h.vector.is_none()));
        let ids = |hits: &[vecindex::SearchHit]| hits.iter().map(|h| h.chunk_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&bare), ids(&all));

        let options = SearchOptions::k(7).filter(Filter::gte("year", 2010));
        let queries: Vec<f32> = (0..5).flat_map(|q| rows[q * 50].vector.clone()).collect();
        let batch = index.search_batch(&queries, &options).unwrap();
        assert_eq!(batch.len(), 5);
        for (q, hits) in batch.iter().enumerate() {
            assert_eq!(hits, &index.search(&queries[q * DIM..(q + 1) * DIM], &options).unwrap());
        }
        assert!(matches!(index.search_batch(&queries[1..], &options), Err(Error::DimensionMismatch { .. })));

        let before = index.len();
        assert!(matches!(index.remove_where(&Filter::gt("lang", "x")), Err(Error::InvalidFilter(_))));
        assert_eq!(index.len(), before, "a bad filter removes nothing");
        let filter = Filter::eq("lang", "fr").and(Filter::lt("year", 2012));
        let doomed: BTreeSet<&str> =
            rows.iter().filter(|c| reference(&filter, &c.doc_id, &c.metadata)).map(|c| c.chunk_id.as_str()).collect();
        assert!(!doomed.is_empty());
        assert_eq!(index.remove_where(&filter).unwrap(), doomed.len());
        for chunk in &rows {
            assert_eq!(index.chunk(&chunk.chunk_id).is_none(), doomed.contains(chunk.chunk_id.as_str()));
        }
        assert_eq!(index.remove_where(&filter).unwrap(), 0, "nothing left to remove");
    }
}
