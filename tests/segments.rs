//! Sealed FAISS segments: deletes, filters, churn, recall, and searches racing maintenance.

#![allow(clippy::disallowed_types)] // tests drive the index from std threads; the shim rule is the library's
#![cfg(feature = "faiss")]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use vecindex::{Chunk, Filter, IndexConfig, SearchOptions, SegmentIndex, TieredMergePolicy, VectorIndex};

const DIM: usize = 16;

/// Deterministic points around `clusters` centres (clustered data, not uniform noise).
fn clustered(n: usize, clusters: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
    };
    let centres: Vec<Vec<f32>> = (0..clusters).map(|_| (0..DIM).map(|_| next() * 4.0).collect()).collect();
    (0..n).map(|i| centres[i % clusters].iter().map(|c| c + next() * 0.6).collect()).collect()
}

/// One build thread: FAISS builds HNSW graphs deterministically then (with several OpenMP
/// threads the insertion order varies, and recall with it), so the recall assertions below test
/// one fixed graph rather than a lucky one.
fn config(factory: &str) -> IndexConfig {
    IndexConfig::new(DIM)
        .background(false)
        .segment_index(SegmentIndex::faiss(factory).min_rows(0).ef_search(64).build_threads(1))
}

fn add_all(index: &VectorIndex, points: &[Vec<f32>], tag: impl Fn(usize) -> String) {
    let chunks = points
        .iter()
        .enumerate()
        .map(|(i, v)| Chunk::new(format!("c{i}"), format!("d{}", i / 10), v.clone()).with_meta("tag", tag(i)))
        .collect();
    index.add_chunks(chunks).unwrap();
}

#[test]
fn ninety_percent_deleted_segment_still_returns_k_live_hits() {
    const ROWS: usize = 30_000;
    for factory in ["HNSW32", "HNSW32,Flat", "Flat", "IVF16,Flat"] {
        // One sealed segment of 30 000 rows; vacuum off so the dead rows stay in it. The 3000
        // rows left, and the 1500 of them the filter keeps, are more than a segment scans
        // outright, so FAISS and its selector answer.
        let never_vacuum = TieredMergePolicy::default().vacuum_dead_fraction(1.0);
        let index = VectorIndex::new(config(factory).head_capacity(ROWS).merge_policy(never_vacuum)).unwrap();
        let points = clustered(ROWS + 1, 20, 1);
        add_all(&index, &points, |i| format!("t{}", (i / 10) % 2));
        index.maintain();
        let segments = index.stats().segments;
        if factory == "HNSW32" {
            assert_eq!(segments[0].graph_rows, Some(ROWS), "in the shared graph: {segments:?}");
        } else {
            assert_eq!(segments[0].label(), factory, "{segments:?}");
        }
        for i in (0..ROWS).filter(|i| i % 10 != 0) {
            assert!(index.remove_chunk(&format!("c{i}")).unwrap());
        }
        let stats = index.stats();
        assert_eq!(stats.segments[0].live_rows, ROWS / 10, "{factory}: 90% of the segment is dead");
        for (q, query) in points.iter().take(20).enumerate() {
            let hits = index.search(query, &SearchOptions::k(10)).unwrap();
            assert_eq!(hits.len(), 10, "{factory} query {q}");
            for hit in &hits {
                let i: usize = hit.chunk_id[1..].parse().unwrap();
                assert!(i.is_multiple_of(10) || i == ROWS, "{factory}: deleted {} returned", hit.chunk_id);
            }
            let filtered =
                index.search(query, &SearchOptions::k(10).filter(Filter::eq("tag", "t1")).exclude_doc("d0")).unwrap();
            assert_eq!(filtered.len(), 10, "{factory} query {q}, filtered");
            assert!(filtered.iter().all(|h| h.metadata["tag"] == "t1" && h.doc_id != "d0"));
            let ids: HashSet<&str> = filtered.iter().map(|h| h.chunk_id.as_str()).collect();
            assert_eq!(ids.len(), 10, "no duplicates");
        }
    }
}

/// Recall@10 of `index` against `exact` over `queries` at efSearch `ef`.
fn recall_at_10(index: &VectorIndex, exact: &VectorIndex, queries: &[Vec<f32>], ef: usize) -> f64 {
    let mut found = 0;
    for query in queries {
        let truth: HashSet<String> =
            exact.search(query, &SearchOptions::k(10)).unwrap().into_iter().map(|h| h.chunk_id).collect();
        let got = index.search(query, &SearchOptions::k(10).ef_search(ef)).unwrap();
        found += got.iter().filter(|h| truth.contains(&h.chunk_id)).count();
    }
    found as f64 / (10 * queries.len()) as f64
}

#[test]
fn hnsw_recall_at_10_on_clustered_data() {
    let points = clustered(12_000, 60, 7);
    let queries = clustered(200, 60, 99);
    let exact = VectorIndex::new(IndexConfig::new(DIM).background(false).segment_index(SegmentIndex::exact())).unwrap();
    add_all(&exact, &points, |_| String::new());
    // A graph per segment ("HNSW32,Flat", tiers only): each query walks several.
    let merge = TieredMergePolicy::default().merge_factor(3).absorb(false);
    let tiered = VectorIndex::new(config("HNSW32,Flat").head_capacity(2000).merge_policy(merge)).unwrap();
    add_all(&tiered, &points, |_| String::new());
    tiered.maintain();
    let stats = tiered.stats();
    assert!(stats.segments.iter().filter(|s| s.label() == "HNSW32,Flat").count() >= 2, "{:?}", stats.segments);
    let recall = recall_at_10(&tiered, &exact, &queries, 64);
    assert!(recall >= 0.95, "several graphs: recall@10 {recall}");
    assert!(recall_at_10(&tiered, &exact, &queries, 256) >= recall, "a larger efSearch never lowers recall");
    // One graph over every row (plain HNSW), grown as the rows came, against FAISS's graph of
    // all the rows at once: these 60 tight clusters take a wider walk than several graphs did.
    let shared = VectorIndex::new(config("HNSW32").head_capacity(2000)).unwrap();
    add_all(&shared, &points, |_| String::new());
    shared.maintain();
    assert_eq!(shared.stats().graph.map(|g| g.nodes), Some(points.len()));
    let whole = VectorIndex::new(config("HNSW32,Flat").head_capacity(2000)).unwrap();
    add_all(&whole, &points, |_| String::new());
    whole.force_merge();
    for ef in [64, 256] {
        let (grown, built) = (recall_at_10(&shared, &exact, &queries, ef), recall_at_10(&whole, &exact, &queries, ef));
        eprintln!("efSearch {ef}: recall@10 {grown:.4} grown, {built:.4} built at once");
        assert!(grown >= built - 0.02, "efSearch {ef}: grown {grown} against {built}");
    }
    assert!(recall_at_10(&shared, &exact, &queries, 256) >= 0.95);
}

#[test]
fn churn_keeps_segment_bytes_bounded() {
    let index = VectorIndex::new(config("HNSW32").head_capacity(500)).unwrap();
    let mut peak_after_warmup = 0;
    let mut first = 0;
    for round in 0..30 {
        // Replace the same 100 documents (1000 chunks) with new versions every round.
        let points = clustered(1000, 10, round);
        for d in 0..100 {
            let chunks =
                (0..10).map(|c| Chunk::new(format!("d{d}#{c}"), format!("d{d}"), points[d * 10 + c].clone())).collect();
            index.add_document(&format!("d{d}"), chunks).unwrap();
        }
        index.maintain();
        let stats = index.stats();
        assert_eq!(stats.chunks, 1000);
        let bytes: usize = stats.segments.iter().map(|s| s.bytes).sum();
        if round == 2 {
            first = bytes;
        }
        if round > 2 {
            peak_after_warmup = peak_after_warmup.max(bytes);
        }
    }
    // 30 rounds wrote 30 000 rows; vacuum and merge keep what is stored near the 1000 live ones.
    eprintln!("segment bytes: round 2 {first}, peak after {peak_after_warmup}");
    assert!(peak_after_warmup <= 3 * first, "bytes grew: {first} -> {peak_after_warmup}");
    let dead: usize = index.stats().segments.iter().map(|s| s.rows - s.live_rows).sum();
    assert!(dead < 3000, "dead rows are vacuumed: {dead}");
}

#[test]
fn many_searchers_while_segments_are_sealed_merged_and_vacuumed() {
    let config = IndexConfig::new(DIM)
        .head_capacity(64)
        .segment_index(SegmentIndex::faiss("HNSW32").min_rows(0))
        .merge_policy(TieredMergePolicy::default().merge_factor(3));
    let index = Arc::new(VectorIndex::new(config).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    // Document n is added, and removed for good once document n + 40 exists.
    let added = Arc::new(AtomicUsize::new(0));
    let removed = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (index, added, removed) = (index.clone(), added.clone(), removed.clone());
        std::thread::spawn(move || {
            let points = clustered(3000 * 4, 30, 3);
            for n in 0..3000 {
                let chunks = (0..4)
                    .map(|c| Chunk::new(format!("d{n}#{c}"), format!("d{n}"), points[n * 4 + c].clone()))
                    .collect();
                index.add_document(&format!("d{n}"), chunks).unwrap();
                added.store(n + 1, Ordering::SeqCst);
                if n >= 40 {
                    assert_eq!(index.remove_document(&format!("d{}", n - 40)).unwrap(), 4);
                    removed.store(n - 39, Ordering::SeqCst);
                }
            }
        })
    };
    let searchers: Vec<_> = (0..3)
        .map(|s| {
            let (index, stop, added, removed) = (index.clone(), stop.clone(), added.clone(), removed.clone());
            std::thread::spawn(move || {
                let queries = clustered(50, 30, 100 + s);
                let mut searches = 0;
                while !stop.load(Ordering::SeqCst) {
                    let gone_before = removed.load(Ordering::SeqCst);
                    let hits = index.search(&queries[searches % 50], &SearchOptions::k(10)).unwrap();
                    let added_after = added.load(Ordering::SeqCst);
                    let mut seen = HashSet::new();
                    for hit in &hits {
                        let n: usize = hit.doc_id[1..].parse().unwrap();
                        assert!(n >= gone_before, "{} was removed before the search began", hit.chunk_id);
                        assert!(n <= added_after, "{} was not added before the search ended", hit.chunk_id);
                        assert!(seen.insert(hit.chunk_id.clone()), "{} returned twice", hit.chunk_id);
                    }
                    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "ordered best first");
                    searches += 1;
                }
                searches
            })
        })
        .collect();
    writer.join().expect("writer");
    stop.store(true, Ordering::SeqCst);
    let searches: usize = searchers.into_iter().map(|s| s.join().expect("searcher")).sum();
    let stats = index.stats();
    eprintln!(
        "{searches} searches; segments at the end: {:?}",
        stats.segments.iter().map(|s| (s.label(), s.rows)).collect::<Vec<_>>()
    );
    assert!(searches > 0);
    assert_eq!(index.len(), 40 * 4);
    assert_eq!(index.reconcile_mappings(), 0);
}

#[test]
fn bad_faiss_configs_are_typed_errors_or_stay_exact() {
    use vecindex::Error;
    let bad = IndexConfig::new(DIM).segment_index(SegmentIndex::faiss("NotAnIndex"));
    assert!(matches!(VectorIndex::new(bad), Err(Error::InvalidConfig { .. })));
    let bad_ivf = IndexConfig::new(DIM).segment_index(SegmentIndex::faiss("IVF,Flat"));
    assert!(matches!(VectorIndex::new(bad_ivf), Err(Error::InvalidConfig { .. })));

    // IVF1024 cannot train on a 300-row segment: the build fails, is logged, and the segment
    // stays exact and searchable; no row is lost.
    let index = VectorIndex::new(config("IVF1024,Flat").head_capacity(300)).unwrap();
    let points = clustered(301, 5, 11);
    add_all(&index, &points, |_| String::new());
    index.maintain();
    let stats = index.stats();
    assert_eq!(stats.segments[0].label(), "exact", "{:?}", stats.segments);
    assert_eq!(stats.chunks, 301);
    let hits = index.search(&points[7], &SearchOptions::k(1)).unwrap();
    assert_eq!(hits[0].chunk_id, "c7");
}

/// Rows that repeat a vector (boilerplate text embeds to one vector) share one graph node:
/// the graph holds one node per distinct vector, and every copy is still found, deleted and
/// filtered as a row of its own, before and after a persist.
#[test]
fn repeated_vectors_share_graph_nodes_and_every_copy_is_found() {
    const COPIES: usize = 300;
    let bases = clustered(10, 10, 5);
    let distinct = clustered(500, 25, 6);
    let mut points: Vec<Vec<f32>> = Vec::new();
    for copy in 0..COPIES {
        for base in &bases {
            // Every third copy differs in its last bits, as the same text embedded in another
            // batch may.
            let jitter = if copy % 3 == 0 { 1e-7 * (copy % 7) as f32 } else { 0.0 };
            points.push(base.iter().map(|x| x + jitter).collect());
        }
    }
    points.extend(distinct.iter().cloned());
    let index = VectorIndex::new(config("HNSW32").head_capacity(points.len())).unwrap();
    let per_copy = bases.len();
    add_all(&index, &points, |i| format!("t{}", (i / per_copy) % 2)); // half the copies of each
    assert_eq!(index.force_merge(), 1);
    let check = |index: &VectorIndex, when: &str| {
        let segment = &index.stats().segments[0];
        assert_eq!(segment.label(), "HNSW32", "{when}");
        assert_eq!(segment.indexed_vectors, Some(bases.len() + distinct.len()), "{when}: one node per distinct vector");
        for (b, base) in bases.iter().enumerate() {
            let copies: Vec<String> = (0..COPIES).map(|c| format!("c{}", c * bases.len() + b)).collect();
            let live: HashSet<&String> = copies.iter().filter(|id| index.chunk(id).is_some()).collect();
            let hits = index.search(base, &SearchOptions::k(COPIES)).unwrap();
            let found: HashSet<&String> = hits.iter().map(|h| &h.chunk_id).filter(|id| live.contains(id)).collect();
            assert_eq!(found, live, "{when}: every live copy of base {b} is among its {COPIES} nearest");
            if live.is_empty() {
                assert!(hits.iter().all(|h| !copies.contains(&h.chunk_id)), "{when}: deleted copies stay hidden");
                continue;
            }
            let tagged = index.search(base, &SearchOptions::k(5).filter(Filter::eq("tag", "t1"))).unwrap();
            assert_eq!(tagged.len(), 5, "{when}");
            assert!(tagged.iter().all(|h| h.metadata["tag"] == "t1" && live.contains(&h.chunk_id)), "{when}");
        }
        for query in distinct.iter().take(20) {
            assert!(index.search(query, &SearchOptions::k(1)).unwrap()[0].score > 0.999, "{when}");
        }
    };
    check(&index, "built");
    // Deleting copies leaves the node to the others; deleting a node's last copy hides it.
    for c in (0..COPIES).filter(|c| c % 2 == 0) {
        assert!(index.remove_chunk(&format!("c{}", c * bases.len())).unwrap());
    }
    for c in 0..COPIES {
        index.remove_chunk(&format!("c{}", c * bases.len() + 1)).unwrap();
    }
    check(&index, "after deletes");
    assert!(index.search(&bases[1], &SearchOptions::k(3)).unwrap().iter().all(|h| index.chunk(&h.chunk_id).is_some()));
    let dir = tempfile::tempdir().unwrap();
    index.persist(dir.path()).unwrap();
    let reopened = VectorIndex::open_with(dir.path(), config("HNSW32").head_capacity(points.len())).unwrap();
    assert!(reopened.stats().segments[0].build_time.is_some());
    check(&reopened, "reopened");
}

/// The default policy merges every small segment into the largest one, extending a copy of its
/// index; the largest keeps its rows in place, dead ones included. With "Flat" indexes every
/// search must still equal an exact scan of the same operations; with HNSW, recall holds.
#[test]
fn absorbing_merges_extend_the_largest_index_and_keep_results_exact() {
    // "HNSW32,Flat" is FAISS's HNSW32 under a name that is not plain HNSW: a graph per segment,
    // as any FAISS kind gets, rather than one graph over every row.
    for factory in ["Flat", "HNSW32,Flat"] {
        let live = VectorIndex::new(config(factory).head_capacity(500)).unwrap();
        let exact =
            VectorIndex::new(IndexConfig::new(DIM).background(false).segment_index(SegmentIndex::exact())).unwrap();
        let points = clustered(6000, 40, 11);
        let queries = clustered(40, 40, 12);
        let mut kept_dead_rows = false;
        let (mut found, mut wanted) = (0, 0);
        for (round, batch) in points.chunks(1000).enumerate() {
            let chunks = |offset: usize| -> Vec<Chunk> {
                batch
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Chunk::new(format!("c{}", offset + i), format!("d{}", (offset + i) / 10), v.clone()))
                    .collect()
            };
            live.add_chunks(chunks(round * 1000)).unwrap();
            exact.add_chunks(chunks(round * 1000)).unwrap();
            // About 5% of the rows so far, old and new: few enough for the base to stay in place.
            for i in (0..(round + 1) * 1000).filter(|i| (i * 7 + round * 13) % 97 < 5) {
                assert_eq!(live.remove_chunk(&format!("c{i}")).unwrap(), exact.remove_chunk(&format!("c{i}")).unwrap());
            }
            live.maintain();
            let stats = live.stats();
            kept_dead_rows |= stats.segments.iter().any(|s| s.label() == factory && s.rows > s.live_rows);
            for (q, query) in queries.iter().enumerate() {
                let truth = exact.search(query, &SearchOptions::k(10)).unwrap();
                let got = live.search(query, &SearchOptions::k(10)).unwrap();
                if factory == "Flat" {
                    assert_eq!(got, truth, "{factory} round {round} query {q}: {:?}", stats.segments);
                }
                let truth: HashSet<&str> = truth.iter().map(|h| h.chunk_id.as_str()).collect();
                found += got.iter().filter(|h| truth.contains(h.chunk_id.as_str())).count();
                wanted += truth.len();
            }
        }
        let stats = live.stats();
        let indexed: Vec<_> = stats.segments.iter().filter(|s| s.label() == factory).collect();
        assert_eq!(indexed.len(), 1, "{factory}: one index took in the others: {:?}", stats.segments);
        assert!(indexed[0].rows > 4000, "{factory}: {:?}", stats.segments);
        assert!(kept_dead_rows, "{factory}: some merge kept its base's dead rows in place");
        let recall = found as f64 / wanted as f64;
        assert!(recall >= 0.95, "{factory}: recall@10 {recall}");
        assert_eq!(live.reconcile_mappings(), 0);
    }
}

/// A graph started from the FAISS graph of a force-merged segment keeps growing as rows come:
/// it is not started again (which, from the same segment, would start over and over).
#[test]
fn a_graph_started_from_faiss_takes_in_every_row_added_after() {
    let index = VectorIndex::new(config("HNSW32").head_capacity(1000)).unwrap();
    let points = clustered(9000, 20, 5);
    let chunks = |range: std::ops::Range<usize>| -> Vec<Chunk> {
        range.map(|i| Chunk::new(format!("c{i}"), format!("d{}", i / 10), points[i].clone())).collect()
    };
    index.add_chunks(chunks(0..3000)).unwrap();
    index.force_merge();
    assert_eq!(index.stats().graph.map(|g| g.nodes), Some(3000));
    index.add_chunks(chunks(3000..9000)).unwrap();
    for _ in 0..50 {
        index.maintain();
        if index.stats().graph.is_some_and(|g| g.nodes == 9000) {
            break;
        }
    }
    let stats = index.stats();
    assert_eq!(stats.graph.map(|g| g.nodes), Some(9000), "{:?}", stats.segments);
    let hits = index.search(&points[8999], &SearchOptions::k(1)).unwrap();
    assert_eq!(hits[0].chunk_id, "c8999");
}
