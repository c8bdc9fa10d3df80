//! Models of `src/segment/graph/`: a walk racing an insertion.
//!
//! Injected bugs this catches: `graph_link_relaxed` (a node's number stored into a neighbor's
//! link slot, and that list's count after it, `Relaxed`) and `graph_link_before_write` (the
//! neighbors linked to the new node before it is written). In both, a walk can follow a link to a node whose code it then reads
//! concurrently with its write, which loom reports as a causality violation.

use loom::sync::Arc;
use loom::thread;
use vecindex::Metric;
use vecindex::internals::Graph;

/// A walk while a second node is inserted finds the first node, and the second one only whole:
/// with the distance its code gives, never a half-written one.
#[test]
fn a_walk_racing_an_insertion_reaches_only_whole_nodes() {
    loom::model(|| {
        let graph = Arc::new(Graph::new(1, Metric::L2, 2, 4, &[0.0, 1.0]));
        assert!(graph.insert(10, &[0.0]));
        let inserter = {
            let graph = graph.clone();
            thread::spawn(move || assert!(graph.insert(11, &[1.0])))
        };
        let mut found = Vec::new();
        graph.search(&[1.0], 2, None, &mut found);
        let labels: Vec<usize> = found.iter().map(|&(label, _)| label).collect();
        assert!(labels == [10] || labels == [11, 10], "{found:?}");
        if let [(11, near), (10, far)] = found[..] {
            assert!(near < 0.01 && far > 0.9, "{found:?}");
        }
        inserter.join().unwrap();
        assert_eq!(graph.len(), 2);
    });
}
