//! A bounded mixed load on a running server: clients adding documents, searching and
//! persisting at once. Used by the load test (which asserts) and the load bench (which prints).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{post_json, request};

/// `n` Markdown files under `root`, spread over `dirs` directories, for a background ingest.
pub fn corpus(root: &std::path::Path, n: usize, dirs: usize) {
    for i in 0..n {
        let text = format!("# Doc {i}\n{}", format!("background document {i} about subject {} ", i % 11).repeat(30));
        std::fs::create_dir_all(root.join(format!("d{}", i % dirs))).unwrap();
        std::fs::write(root.join(format!("d{}/doc{i}.md", i % dirs)), text).unwrap();
    }
}

/// What one load run saw.
#[derive(Default)]
pub struct Outcome {
    /// Latencies by route.
    pub latencies: BTreeMap<&'static str, Vec<Duration>>,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, usize>,
    /// Documents whose POST was acknowledged (200).
    pub acknowledged: Vec<String>,
    pub elapsed: Duration,
}

/// `clients` threads, each sending `requests` requests: 4 in 10 add a document, 5 search, 1
/// persists.
pub fn run(addr: &str, clients: usize, requests: usize, token: Option<&str>) -> Outcome {
    let started = Instant::now();
    let results: Vec<Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    let mut out = Outcome::default();
                    for i in 0..requests {
                        let began = Instant::now();
                        let (route, response) = match i % 10 {
                            0..=3 => {
                                let id = format!("load/{c}/{i}");
                                let text =
                                    format!("# Load {c} {i}\nclient {c} request {i} writes about topic {}", i % 17);
                                let r = post_json(addr, "/documents", token, &json!({ "doc_id": id, "text": text }));
                                if r.status == 200 {
                                    out.acknowledged.push(id);
                                }
                                ("add_document", r)
                            }
                            4..=8 => {
                                let q = json!({ "text": format!("topic {} request", i % 17), "k": 5 });
                                ("search", post_json(addr, "/search", None, &q))
                            }
                            _ => ("persist", request(addr, "POST", "/persist", token, None).expect("request")),
                        };
                        out.latencies.entry(route).or_default().push(began.elapsed());
                        *out.statuses.entry(response.status).or_default() += 1;
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("client")).collect()
    });
    let mut all = Outcome { elapsed: started.elapsed(), ..Outcome::default() };
    for r in results {
        for (route, mut l) in r.latencies {
            all.latencies.entry(route).or_default().append(&mut l);
        }
        for (status, n) in r.statuses {
            *all.statuses.entry(status).or_default() += n;
        }
        all.acknowledged.extend(r.acknowledged);
    }
    all
}

/// The `q` quantile (0..=1) of `samples`.
pub fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * q).round() as usize]
}
