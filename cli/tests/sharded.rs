//! The sharding example (cli/examples/sharded.rs) against real servers on 127.0.0.1: documents
//! routed by id to three writers, and the fan-out search's merged top k equal to the answer of
//! one server holding every document.

mod support;

#[path = "../examples/sharded.rs"]
mod sharded;

use serde_json::json;
use support::{Server, post_json};

#[test]
fn a_fan_out_search_over_shards_answers_as_one_index_would() {
    let dir = tempfile::tempdir().unwrap();
    let shards: Vec<Server> = (0..3).map(|i| Server::start(&dir.path().join(format!("shard{i}")), &[])).collect();
    let whole = Server::start(&dir.path().join("whole"), &[]);
    let urls: Vec<String> = shards.iter().map(|s| format!("http://{}", s.addr)).collect();

    let topics = ["archive", "network", "database", "compiler", "garden", "weather", "music", "travel"];
    let mut per_shard = [0; 3];
    for d in 0..60 {
        let (doc_id, topic) = (format!("notes/{d}"), topics[d % topics.len()]);
        let text = format!("# {topic} {d}\nabout the {topic}, item {d}: {topic} {topic} words {}", d * 7);
        per_shard[sharded::add(&urls, &doc_id, &text, None).unwrap()] += 1;
        assert_eq!(post_json(&whole.addr, "/documents", None, &json!({ "doc_id": doc_id, "text": text })).status, 200);
    }
    assert!(per_shard.iter().all(|&n| n > 5), "ids spread over the shards: {per_shard:?}");
    assert_eq!(sharded::shard_for("notes/7", 3), sharded::shard_for("notes/7", 3), "stable");

    for query in ["the archive", "network database", "music and travel", "item 13"] {
        let merged = sharded::search(&urls, query, 5, None).unwrap();
        let one = post_json(&whole.addr, "/search", None, &json!({ "text": query, "k": 5 })).json();
        let expected: Vec<f64> = one["hits"].as_array().unwrap().iter().map(|h| h["score"].as_f64().unwrap()).collect();
        let got: Vec<f64> = merged.iter().map(|h| h.score).collect();
        assert_eq!(got.len(), expected.len(), "{query}");
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() < 1e-5, "{query}: merged {got:?}, one index {expected:?}");
        }
        for hit in &merged {
            assert_eq!(hit.shard, sharded::shard_for(&hit.doc_id, 3), "a hit comes from its document's shard");
        }
    }
}
