//! Dynamic batching on the real `vecindex serve`: concurrent requests are embedded together and
//! each gets exactly the vectors the library gives for its own texts; a full queue answers 503
//! with Retry-After at once and never grows past its bound.

mod support;

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::client::Connection;
use support::{Server, get, metric, post_json};
use vecindex::embed::{Embedder, HashingEmbedder};

const MODEL: &str = "hashing-384";

/// The vectors of a `/v1/embeddings` answer, in order.
fn vectors(reply: &Value) -> Vec<Vec<f32>> {
    let data = reply["data"].as_array().unwrap_or_else(|| panic!("no data: {reply}"));
    data.iter()
        .enumerate()
        .map(|(i, item)| {
            assert_eq!(item["index"].as_u64(), Some(i as u64), "{reply}");
            item["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
        })
        .collect()
}

#[test]
fn concurrent_requests_are_batched_and_get_their_own_vectors() {
    let dir = tempfile::tempdir().unwrap();
    // A long wait and room for every text of a round: each round's requests, sent at once,
    // reach the batcher within the wait.
    let server = Server::start(&dir.path().join("index"), &["--batch-wait-ms", "50", "--batch-max", "64"]);
    let addr = server.addr.as_str();
    let library = HashingEmbedder::default();
    const CLIENTS: usize = 16;
    const ROUNDS: usize = 4;
    let barrier = Barrier::new(CLIENTS);
    let text =
        |c: usize, r: usize, i: usize| format!("client {c} round {r} text {i} about topic{} and subject{c}", c * 7 + r);

    // Every client sends one request a round, all at once: an embedding of one text, of three,
    // a document by text, or a search by text.
    let per_client: Vec<(usize, usize, Vec<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (barrier, library) = (&barrier, &library);
                scope.spawn(move || {
                    let mut connection = Connection::open(addr).unwrap();
                    let (mut requests, mut texts, mut documents) = (0, 0, Vec::new());
                    for r in 0..ROUNDS {
                        barrier.wait();
                        match (c + r) % 4 {
                            kind @ (0 | 1) => {
                                let inputs: Vec<String> =
                                    (0..if kind == 0 { 1 } else { 3 }).map(|i| text(c, r, i)).collect();
                                let body = if kind == 0 {
                                    json!({ "input": inputs[0], "model": MODEL })
                                } else {
                                    json!({ "input": inputs, "model": MODEL })
                                };
                                let reply = connection.post_json("/v1/embeddings", None, &body).unwrap();
                                assert_eq!(reply.status, 200, "{reply:?}");
                                let own: Vec<&str> = inputs.iter().map(String::as_str).collect();
                                assert_eq!(
                                    vectors(&reply.json()),
                                    library.embed(&own).unwrap(),
                                    "client {c} round {r}"
                                );
                                texts += inputs.len();
                            }
                            2 => {
                                let id = format!("doc/{c}/{r}");
                                let body = json!({ "doc_id": id, "text": text(c, r, 0) });
                                let reply = connection.post_json("/documents", None, &body).unwrap();
                                assert_eq!(reply.status, 200, "{reply:?}");
                                texts += reply.json()["chunks"].as_u64().unwrap() as usize;
                                documents.push(id);
                            }
                            _ => {
                                let body = json!({ "text": text(c, r, 0), "k": 3 });
                                let reply = connection.post_json("/search", None, &body).unwrap();
                                assert_eq!(reply.status, 200, "{reply:?}");
                                texts += 1;
                            }
                        }
                        requests += 1;
                    }
                    (requests, texts, documents)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("client")).collect()
    });
    let requests: usize = per_client.iter().map(|(n, _, _)| n).sum();
    let texts: usize = per_client.iter().map(|(_, n, _)| n).sum();

    // Each document's chunks hold their own text's vector: a search by that vector finds the
    // chunk first, and the vector it stored is the library's.
    for id in per_client.iter().flat_map(|(_, _, docs)| docs) {
        let chunks = get(addr, &format!("/documents/{id}")).json()["chunks"].clone();
        for chunk in chunks.as_array().unwrap() {
            let expected = library.embed(&[chunk["text"].as_str().unwrap()]).unwrap().remove(0);
            let query = json!({ "vector": expected, "k": 1, "include": ["vector"] });
            let hit = post_json(addr, "/search", None, &query).json()["hits"][0].clone();
            assert_eq!(hit["chunk_id"], chunk["chunk_id"], "{id}");
            let stored: Vec<f32> =
                hit["vector"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            let off = stored.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(off < 1e-6, "{id}: the stored vector is {off} off its text's");
        }
    }

    let metrics = get(addr, "/metrics").body;
    let batches = metric(&metrics, "vecindex_embed_batch_texts_count", &[]);
    assert_eq!(metric(&metrics, "vecindex_embed_batch_texts_sum", &[]), texts as f64, "every text embedded once");
    assert!(
        batches <= (requests / 4) as f64,
        "{requests} requests sent {} at a time were embedded in {batches} calls: expected them merged",
        CLIENTS
    );
    assert_eq!(metric(&metrics, "vecindex_embed_queue_texts", &[]), 0.0);
    assert_eq!(metric(&metrics, "vecindex_embed_rejected_total", &[]), 0.0);
    println!("{requests} requests, {texts} texts, {batches} embedder calls");
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn a_full_queue_answers_503_with_retry_after_and_never_grows() {
    let dir = tempfile::tempdir().unwrap();
    // One request embedding and one waiting fill it: every other one is refused.
    let server = Server::start(&dir.path().join("index"), &["--batch-max", "1", "--queue-max", "1"]);
    let addr = server.addr.as_str();
    // A text of ~3 MB takes the hashing embedder tens of milliseconds: a real slow path.
    let big: String = (0..300_000).map(|i| format!("word{i} ")).collect();
    let big_request = json!({ "input": big, "model": MODEL });
    let stop = AtomicBool::new(false);
    let (mut search_503, mut openai_503, mut probe_503s, mut probes) = (None, None, 0, 0);
    let loaders: Vec<Vec<u16>> = std::thread::scope(|scope| {
        let loaders: Vec<_> = (0..3)
            .map(|_| {
                let (stop, big_request) = (&stop, &big_request);
                scope.spawn(move || {
                    let mut connection = Connection::open(addr).unwrap();
                    let mut statuses = Vec::new();
                    while !stop.load(Ordering::Relaxed) && statuses.len() < 200 {
                        statuses.push(connection.post_json("/v1/embeddings", None, big_request).unwrap().status);
                    }
                    statuses
                })
            })
            .collect();
        // Small probes while the big ones keep the queue full, until both kinds were refused.
        let mut connection = Connection::open(addr).unwrap();
        while (search_503.is_none() || openai_503.is_none()) && probes < 2000 {
            let reply = if probes % 2 == 0 {
                connection.post_json("/search", None, &json!({ "text": "probe words" })).unwrap()
            } else {
                connection.post_json("/v1/embeddings", None, &json!({ "input": "probe", "model": MODEL })).unwrap()
            };
            assert!(reply.status == 200 || reply.status == 503, "{reply:?}");
            if reply.status == 503 {
                probe_503s += 1;
                if probes % 2 == 0 {
                    search_503.get_or_insert(reply)
                } else {
                    openai_503.get_or_insert(reply)
                };
            }
            if probes % 10 == 0 {
                let depth = metric(&get(addr, "/metrics").body, "vecindex_embed_queue_texts", &[]);
                assert!(depth <= 1.0, "the queue holds {depth} texts, over its bound of 1");
            }
            probes += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        stop.store(true, Ordering::Relaxed);
        loaders.into_iter().map(|h| h.join().expect("loader")).collect()
    });

    let search_503 = search_503.unwrap_or_else(|| panic!("no /search refused in {probes} probes"));
    assert_eq!(search_503.header("retry-after"), Some("1"), "{search_503:?}");
    let body = search_503.json();
    assert_eq!(body["status"], 503, "the server's own error shape: {body}");
    assert!(body["error"].as_str().unwrap().contains("queue is full"), "{body}");
    let openai_503 = openai_503.unwrap_or_else(|| panic!("no /v1/embeddings refused in {probes} probes"));
    assert_eq!(openai_503.header("retry-after"), Some("1"), "{openai_503:?}");
    let error = &openai_503.json()["error"];
    assert_eq!(error["type"], "server_error", "OpenAI's error shape: {error}");
    assert!(error["message"].as_str().unwrap().contains("queue is full"), "{error}");

    let loader_statuses: Vec<u16> = loaders.into_iter().flatten().collect();
    assert!(loader_statuses.iter().all(|s| *s == 200 || *s == 503), "{loader_statuses:?}");
    assert!(loader_statuses.contains(&200), "big requests are served too: {loader_statuses:?}");
    let refused = probe_503s + loader_statuses.iter().filter(|s| **s == 503).count();
    let metrics = get(addr, "/metrics").body;
    assert_eq!(metric(&metrics, "vecindex_embed_rejected_total", &[]), refused as f64, "every 503 is counted");
    assert_eq!(metric(&metrics, "vecindex_embed_queue_limit", &[]), 1.0);
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}
