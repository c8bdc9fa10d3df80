//! Models of `src/epoch/cover.rs` and `src/maintain/cover.rs`: a search racing the inserter as
//! it starts the shared graph, adds a part and inserts rows.
//!
//! Injected bug this catches: `cover_count_twice` (a search reads the graph's node count once
//! for its walk and again for its scans): a row inserted between the two reads is past the
//! walk's count and below the scan's, so neither returns it.

use std::collections::HashSet;

use loom::sync::Arc;
use loom::thread;
use vecindex::{Chunk, IndexConfig, SearchOptions, SegmentIndex, VectorIndex};

/// Two rows; one thread runs maintenance (which starts the graph and inserts both), the main
/// thread searches meanwhile: each row comes back exactly once, whichever way it was found.
#[test]
fn a_search_racing_the_inserter_finds_each_row_once() {
    loom::model(|| {
        let config = IndexConfig::new(2)
            .head_capacity(4)
            .background(false)
            .segment_index(SegmentIndex::faiss("HNSW4").min_rows(0).ef_search(4));
        let index = Arc::new(VectorIndex::new(config).unwrap());
        index.add_chunk(Chunk::new("a", "d", vec![1.0, 0.0])).unwrap();
        index.add_chunk(Chunk::new("b", "d", vec![0.0, 1.0])).unwrap();
        let inserter = {
            let index = index.clone();
            thread::spawn(move || index.maintain())
        };
        let hits = index.search(&[1.0, 0.2], &SearchOptions::k(4)).unwrap();
        let ids: Vec<&str> = hits.iter().map(|h| h.chunk_id.as_str()).collect();
        let distinct: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!((ids.len(), distinct.len()), (2, 2), "{ids:?}");
        inserter.join().unwrap();
        assert_eq!(index.stats().graph.map(|g| g.nodes), Some(2));
    });
}
