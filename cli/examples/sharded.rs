//! Sharding by document id across several `vecindex serve` writers, and a fan-out search that
//! merges their top k: data beyond what one writer holds (docs/deployment.md).
//!
//! ```text
//! cargo run --release -p vecindex-cli --example sharded -- add    http://a:8080,http://b:8080 DOC_ID "text"
//! cargo run --release -p vecindex-cli --example sharded -- search http://a:8080,http://b:8080 "query" [K]
//! ```
//!
//! A document lives on one shard, chosen from a hash of its id (xxh3, modulo the number of
//! shards), so adding, replacing and deleting it go to that shard alone. A search goes to every
//! shard at once, each answers its own top k, and the k best of those are the answer: every
//! shard embeds with the same model and scores with the same metric, so their scores compare.
//! `VECINDEX_TOKEN` (writes) and `VECINDEX_READ_KEY` (reads) are sent as bearer keys if set.
//! Changing the number of shards moves documents: re-add them to their new shard.

use serde_json::{Value, json};

/// The shard of `doc_id` among `shards`.
pub fn shard_for(doc_id: &str, shards: usize) -> usize {
    (xxhash_rust::xxh3::xxh3_64(doc_id.as_bytes()) % shards.max(1) as u64) as usize
}

/// A hit of the merged answer: the shard's hit and the shard it came from.
#[derive(Debug, Clone)]
pub struct Hit {
    pub shard: usize,
    pub chunk_id: String,
    pub doc_id: String,
    pub score: f64,
    pub text: Option<String>,
}

fn post(url: &str, key: Option<&str>, body: &Value) -> Result<Value, String> {
    let mut request = ureq::post(url);
    if let Some(key) = key {
        request = request.header("Authorization", &format!("Bearer {key}"));
    }
    let mut response = request.send_json(body).map_err(|e| format!("{url}: {e}"))?;
    response.body_mut().read_json::<Value>().map_err(|e| format!("{url}: {e}"))
}

/// Adds (or replaces) a document on its shard; returns the shard.
pub fn add(shards: &[String], doc_id: &str, text: &str, token: Option<&str>) -> Result<usize, String> {
    let shard = shard_for(doc_id, shards.len());
    post(&format!("{}/documents", shards[shard]), token, &json!({ "doc_id": doc_id, "text": text }))?;
    Ok(shard)
}

/// The `k` best hits for `text` over every shard, asked at once.
pub fn search(shards: &[String], text: &str, k: usize, key: Option<&str>) -> Result<Vec<Hit>, String> {
    let body = &json!({ "text": text, "k": k });
    let answers: Vec<Result<Value, String>> = std::thread::scope(|scope| {
        let asks: Vec<_> =
            shards.iter().map(|base| scope.spawn(move || post(&format!("{base}/search"), key, body))).collect();
        asks.into_iter().map(|ask| ask.join().unwrap_or_else(|_| Err("a shard's thread panicked".into()))).collect()
    });
    let mut hits = Vec::new();
    for (shard, answer) in answers.into_iter().enumerate() {
        for hit in answer?["hits"].as_array().into_iter().flatten() {
            hits.push(Hit {
                shard,
                chunk_id: hit["chunk_id"].as_str().unwrap_or_default().to_owned(),
                doc_id: hit["doc_id"].as_str().unwrap_or_default().to_owned(),
                score: hit["score"].as_f64().unwrap_or(f64::NEG_INFINITY),
                text: hit["text"].as_str().map(str::to_owned),
            });
        }
    }
    // Best first; ties by chunk id, so that the answer does not depend on which shard was faster.
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.chunk_id.cmp(&b.chunk_id)));
    hits.truncate(k);
    Ok(hits)
}

#[allow(dead_code)] // the tests include this file for its functions
fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: sharded add URL,URL,... DOC_ID TEXT | sharded search URL,URL,... QUERY [K]";
    let (command, shards) = match args.as_slice() {
        [command, shards, ..] => (command.as_str(), shards.split(',').map(str::to_owned).collect::<Vec<_>>()),
        _ => return Err(usage.into()),
    };
    let (token, read_key) = (std::env::var("VECINDEX_TOKEN").ok(), std::env::var("VECINDEX_READ_KEY").ok());
    match (command, &args[2..]) {
        ("add", [doc_id, text]) => {
            let shard = add(&shards, doc_id, text, token.as_deref())?;
            println!("{doc_id} -> shard {shard} ({})", shards[shard]);
        }
        ("search", [query, rest @ ..]) => {
            let k = rest.first().map_or(Ok(5), |k| k.parse::<usize>()).map_err(|e| format!("K: {e}"))?;
            for hit in search(&shards, query, k, read_key.as_deref().or(token.as_deref()))? {
                let text = hit.text.unwrap_or_default().chars().take(80).collect::<String>();
                println!("{:.4}  shard {}  {}  {}", hit.score, hit.shard, hit.chunk_id, text.replace('\n', " "));
            }
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
