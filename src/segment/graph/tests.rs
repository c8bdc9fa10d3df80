use super::from_faiss::breadth_first;
use super::*;

/// Pseudo-random values in [0, 1) (xorshift).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut state = 0x2545_F491_4F6C_DD1Du64 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

/// `n` rows of `dim` around 8 centres; row `r` is near centre `r % 8`.
fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let centres = noise(8 * dim, 1);
    let noise = noise(n * dim, seed);
    (0..n * dim).map(|i| centres[(i / dim % 8) * dim + i % dim] + 0.3 * noise[i]).collect()
}

fn exact_top(vectors: &[f32], query: &[f32], dim: usize, metric: Metric, k: usize) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> =
        vectors.chunks_exact(dim).enumerate().map(|(row, v)| (metric.rank_key(metric.score(query, v)), row)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(k).map(|(_, row)| row).collect()
}

/// Recall@k of the graph's walk, its candidates re-scored exactly as the caller does.
fn recall(graph: &Graph, vectors: &[f32], queries: &[f32], dim: usize, metric: Metric, ef: usize) -> f64 {
    let k = 10;
    let mut hits = 0;
    for query in queries.chunks_exact(dim) {
        let truth = exact_top(vectors, query, dim, metric, k);
        let mut found = Vec::new();
        graph.search(query, ef, None, &mut found);
        let candidates: Vec<usize> = found.iter().take(k + 16).map(|&(label, _)| label).collect();
        let picked: Vec<f32> = candidates.iter().flat_map(|&r| vectors[r * dim..(r + 1) * dim].to_vec()).collect();
        let best: Vec<usize> = exact_top(&picked, query, dim, metric, k).into_iter().map(|i| candidates[i]).collect();
        hits += best.iter().filter(|r| truth.contains(r)).count();
    }
    hits as f64 / (queries.len() / dim * k) as f64
}

#[test]
fn breadth_first_order_reaches_every_node_once_entry_first() {
    // 0 -> 2 -> 4, 2 -> 1; 3 and 5 link only to each other.
    let links: Vec<Vec<u32>> = vec![vec![2], vec![], vec![4, 1], vec![5], vec![], vec![3]];
    let order = breadth_first(6, 0, |node| links[node].iter().copied());
    assert_eq!(order, [0, 2, 4, 1, 3, 5]);
}

/// A hand-made two-level graph: the walk finds the nearest node through the upper level,
/// returns FAISS's node numbers, and honours an allowed predicate.
#[test]
fn a_walk_returns_faiss_nodes_nearest_first() {
    // Five points on a line, x = node; level 0 is a chain, node 4 alone is on level 1.
    let vectors: Vec<f32> = (0..5).map(|x| x as f32).collect();
    let mut neighbors = Vec::new();
    let mut offsets = vec![0];
    let levels = [1, 1, 1, 1, 2];
    for node in 0..5i32 {
        let chain = [node - 1, node + 1].map(|n| if (0..5).contains(&n) { n } else { -1 });
        let mut slots: Vec<i32> = chain.into_iter().filter(|&n| n >= 0).collect();
        slots.resize(2, -1);
        neighbors.extend(slots);
        if node == 4 {
            neighbors.push(-1); // level 1: no one else up there
        }
        offsets.push(neighbors.len());
    }
    let parts = Parts {
        dim: 1,
        metric: Metric::L2,
        entry_point: 4,
        max_level: 1,
        levels: &levels,
        offsets: &offsets,
        neighbors: &neighbors,
        cum_neighbors: &[0, 2, 3],
        vectors: &vectors,
    };
    let graph = Graph::from_faiss(&parts, 40, None).expect("a valid graph");
    let mut found = Vec::new();
    graph.search(&[0.2], 3, None, &mut found);
    let labels: Vec<usize> = found.iter().map(|&(label, _)| label).collect();
    assert_eq!(labels, [0, 1, 2]);
    assert!(found.windows(2).all(|pair| pair[0].1 <= pair[1].1));
    found.clear();
    graph.search(&[0.2], 3, Some(&|label| [1, 2, 4].contains(&label)), &mut found);
    let labels: Vec<usize> = found.iter().map(|&(label, _)| label).collect();
    assert_eq!(labels, [1, 2, 4], "only allowed labels, nearest first");
}

#[test]
fn pieces_that_do_not_describe_a_graph_are_refused() {
    let parts = |entry_point, vectors: &'static [f32]| Parts {
        dim: 1,
        metric: Metric::InnerProduct,
        entry_point,
        max_level: 0,
        levels: &[1, 1],
        offsets: &[0, 2, 4],
        neighbors: &[1, -1, 0, -1],
        cum_neighbors: &[0, 2],
        vectors,
    };
    assert!(Graph::from_faiss(&parts(0, &[1.0, 2.0]), 40, None).is_some());
    assert!(Graph::from_faiss(&parts(2, &[1.0, 2.0]), 40, None).is_none(), "entry point out of range");
    assert!(Graph::from_faiss(&parts(-1, &[1.0, 2.0]), 40, None).is_none(), "no entry point");
    assert!(Graph::from_faiss(&parts(0, &[1.0]), 40, None).is_none(), "too few vectors");
}

/// A graph built by insertion alone finds the exact neighbors, for both metrics.
#[test]
fn an_inserted_graph_finds_the_nearest_rows() {
    let (n, dim) = (3000, 24);
    let vectors = clustered(n, dim, 3);
    let queries = clustered(100, dim, 9);
    for metric in [Metric::InnerProduct, Metric::L2] {
        let graph = Graph::new(dim, metric, 16, 80, &vectors[..300 * dim]);
        assert_eq!(graph.insert_all(0, &vectors, &|| false), n);
        assert_eq!(graph.len(), n);
        let recall = recall(&graph, &vectors, &queries, dim, metric, 64);
        assert!(recall >= 0.95, "{metric:?}: recall {recall}");
    }
}

/// Searchers running while the graph grows see only whole nodes (no panic, every label one
/// that was inserted), and the graph ends as good as one built alone.
#[test]
fn walks_during_insertion_see_only_inserted_rows() {
    let (n, dim) = (4000, 16);
    let vectors = clustered(n, dim, 5);
    let queries = clustered(50, dim, 11);
    let graph = Graph::new(dim, Metric::L2, 16, 60, &vectors[..500 * dim]);
    std::thread::scope(|s| {
        s.spawn(|| assert_eq!(graph.insert_all(0, &vectors, &|| false), n));
        for _ in 0..2 {
            s.spawn(|| {
                let mut found = Vec::new();
                while graph.len() < n {
                    for query in queries.chunks_exact(dim) {
                        found.clear();
                        graph.search(query, 32, None, &mut found);
                        assert!(found.iter().all(|&(label, _)| label < n));
                    }
                }
            });
        }
    });
    let recall = recall(&graph, &vectors, &queries, dim, Metric::L2, 64);
    assert!(recall >= 0.95, "recall {recall}");
}

/// Rows that repeat a vector become aliases: inserting them stays fast, and a walk that finds
/// one returns every copy.
#[test]
fn repeated_vectors_become_aliases_and_every_copy_is_found() {
    let dim = 32;
    let distinct = clustered(1000, dim, 2);
    let repeated = &distinct[..dim];
    for metric in [Metric::L2, Metric::InnerProduct] {
        let graph = Graph::new(dim, metric, 16, 80, &distinct);
        let started = std::time::Instant::now();
        graph.insert_all(0, &distinct, &|| false);
        for copy in 0..2000u32 {
            assert!(graph.insert(1000 + copy, repeated));
        }
        assert!(started.elapsed().as_secs() < 20, "repeated vectors made insertion crawl");
        let mut found = Vec::new();
        graph.search(repeated, 64, None, &mut found);
        let copies = found.iter().filter(|&&(label, _)| label == 0 || label >= 1000).count();
        assert_eq!(copies, 2001, "{metric:?}: the row and every copy of it");
        found.clear();
        graph.search(repeated, 64, Some(&|label| label == 1500), &mut found);
        let labels: Vec<usize> = found.iter().map(|&(label, _)| label).collect();
        assert_eq!(labels, [1500], "{metric:?}: one allowed copy");
    }
}
