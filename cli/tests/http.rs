//! The HTTP API of the real `vecindex serve`: every route and its errors, and a shutdown by
//! SIGTERM in the middle of a background ingest that loses no acknowledged document.

mod support;

use serde_json::json;
use support::{Server, get, metric, post_json, request};

const TOKEN: &str = "s3cret";

#[test]
fn every_route_and_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    let server = Server::start(&index, &["--token", TOKEN, "--max-body-bytes", "65536"]);
    let addr = server.addr.as_str();

    assert_eq!((get(addr, "/healthz").status, get(addr, "/healthz").body.as_str()), (200, "ok\n"));

    // POST /documents: token, body, shape, content.
    let text = "# Install\nunpack the archive into a directory of your choice, then run the installer.\n\
                # Use\ncall the function with the path of the file to read; it returns its lines.";
    let doc = json!({ "doc_id": "guide", "text": text, "metadata": {"lang": "en", "year": 2024, "tags": ["a", "b"]} });
    let missing = post_json(addr, "/documents", None, &doc);
    assert_eq!(missing.status, 401, "{missing:?}");
    assert!(missing.json()["error"].as_str().unwrap().contains("token"));
    assert_eq!(post_json(addr, "/documents", Some("wrong"), &doc).status, 401);
    let added = post_json(addr, "/documents", Some(TOKEN), &doc);
    assert_eq!((added.status, added.json()["chunks"].as_u64()), (200, Some(2)), "{added:?}");
    let malformed = request(addr, "POST", "/documents", Some(TOKEN), Some(b"{\"doc_id\": ")).unwrap();
    assert_eq!(malformed.status, 400);
    assert!(malformed.json()["error"].as_str().unwrap().contains("malformed JSON"));
    let unknown = post_json(addr, "/documents", Some(TOKEN), &json!({ "doc_id": "x", "text": "t", "colour": 1 }));
    assert_eq!(unknown.status, 400, "unknown fields are refused: {unknown:?}");
    let neither = post_json(addr, "/documents", Some(TOKEN), &json!({ "doc_id": "x" }));
    assert_eq!(neither.status, 400);
    let empty_id = post_json(addr, "/documents", Some(TOKEN), &json!({ "doc_id": "", "text": "t" }));
    assert_eq!(empty_id.status, 400, "{empty_id:?}");
    let wrong_dim = post_json(
        addr,
        "/documents",
        Some(TOKEN),
        &json!({ "doc_id": "v", "chunks": [{ "text": "t", "vector": [1.0, 2.0] }] }),
    );
    assert_eq!(wrong_dim.status, 422, "{wrong_dim:?}");
    assert!(wrong_dim.json()["error"].as_str().unwrap().contains("dimension 2"));
    let huge = json!({ "doc_id": "big", "text": "word ".repeat(40_000) });
    let too_large = post_json(addr, "/documents", Some(TOKEN), &huge);
    assert_eq!(too_large.status, 413, "{}", too_large.body);
    assert!(too_large.json()["error"].is_string());

    // POST /search: text or vector, k, filters.
    let hits = post_json(addr, "/search", None, &json!({ "text": "unpack the archive", "k": 1 }));
    assert_eq!(hits.status, 200, "{hits:?}");
    let hit = &hits.json()["hits"][0];
    assert_eq!((hit["doc_id"].as_str(), hit["metadata"]["heading"].as_str()), (Some("guide"), Some("Install")));
    assert!(hit["text"].as_str().unwrap().contains("unpack"));
    assert_eq!(post_json(addr, "/search", None, &json!({ "text": "x", "k": 0 })).status, 400);
    assert_eq!(post_json(addr, "/search", None, &json!({ "vector": [0.5, 0.5], "k": 3 })).status, 422);
    assert_eq!(post_json(addr, "/search", None, &json!({ "text": "x", "vector": [1.0] })).status, 400);
    let filtered = post_json(addr, "/search", None, &json!({ "text": "unpack", "k": 5, "exclude_docs": ["guide"] }));
    assert_eq!(filtered.json()["hits"].as_array().map(Vec::len), Some(0));
    let filtered = post_json(addr, "/search", None, &json!({ "text": "unpack", "k": 5, "filter": {"lang": "en"} }));
    assert_eq!(filtered.json()["hits"].as_array().map(Vec::len), Some(2));
    let typed = json!({ "text": "unpack", "k": 5, "filter": {"year": {"$gte": 2020}, "tags": {"$contains": "b"}} });
    let filtered = post_json(addr, "/search", None, &typed);
    assert_eq!(filtered.json()["hits"].as_array().map(Vec::len), Some(2), "{filtered:?}");
    assert_eq!(filtered.json()["hits"][0]["metadata"]["year"], json!(2024), "typed values come back typed");
    assert_eq!(filtered.json()["hits"][0]["metadata"]["tags"], json!(["a", "b"]));
    let none = json!({ "text": "unpack", "k": 5, "filter": {"$or": [{"year": {"$lt": 2000}}, {"lang": "fr"}]} });
    assert_eq!(post_json(addr, "/search", None, &none).json()["hits"].as_array().map(Vec::len), Some(0));
    let bad = post_json(addr, "/search", None, &json!({ "text": "unpack", "filter": {"year": {"$near": 1}} }));
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(bad.json()["error"].as_str().unwrap().contains("$near"), "{bad:?}");
    // A batch: one `hits` per query, as the single searches give them; `include` picks the fields.
    let queries = ["unpack the archive", "install"];
    let batch = post_json(addr, "/search", None, &json!({ "texts": queries, "k": 2 }));
    assert_eq!(batch.status, 200, "{batch:?}");
    for (q, text) in queries.iter().enumerate() {
        let single = post_json(addr, "/search", None, &json!({ "text": text, "k": 2 })).json();
        assert_eq!(batch.json()["results"][q], single, "query {q}");
    }
    let bare = post_json(addr, "/search", None, &json!({ "text": "unpack", "k": 1, "include": ["vector"] })).json();
    let hit = &bare["hits"][0];
    assert!(hit.get("text").is_none() && hit.get("metadata").is_none(), "{bare:?}");
    assert!(hit["vector"].as_array().is_some_and(|v| !v.is_empty()), "{bare:?}");
    let mixed = json!({ "vectors": [hit["vector"].clone(), [0.5, 0.5]] });
    assert_eq!(post_json(addr, "/search", None, &mixed).status, 422, "a batch with a bad vector searches nothing");
    let unknown = json!({ "text": "unpack", "include": ["score"] });
    assert_eq!(post_json(addr, "/search", None, &unknown).status, 400);

    // GET and DELETE /documents/{id}.
    let fetched = get(addr, "/documents/guide");
    assert_eq!((fetched.status, fetched.json()["chunks"].as_array().map(Vec::len)), (200, Some(2)));
    assert_eq!(get(addr, "/documents/nope").status, 404);
    assert_eq!(request(addr, "DELETE", "/documents/guide", None, None).unwrap().status, 401);
    assert_eq!(request(addr, "DELETE", "/documents/nope", Some(TOKEN), None).unwrap().status, 404);

    // POST /persist, GET /stats, GET /metrics.
    assert_eq!(request(addr, "POST", "/persist", None, None).unwrap().status, 401);
    let persisted = request(addr, "POST", "/persist", Some(TOKEN), None).unwrap();
    assert_eq!((persisted.status, persisted.json()["rows"].as_u64()), (200, Some(2)), "{persisted:?}");
    let stats = get(addr, "/stats").json();
    assert_eq!(
        (stats["documents"].as_u64(), stats["chunks"].as_u64(), stats["dim"].as_u64()),
        (Some(1), Some(2), Some(384))
    );
    let deleted = request(addr, "DELETE", "/documents/guide", Some(TOKEN), None).unwrap();
    assert_eq!((deleted.status, deleted.json()["removed"].as_u64()), (200, Some(2)));
    let metrics = get(addr, "/metrics");
    assert_eq!(metrics.status, 200);
    let m = |name, labels: &[(&str, &str)]| metric(&metrics.body, name, labels);
    let search = |status| m("vecindex_http_requests_total", &[("route", "/search"), ("status", status)]);
    assert_eq!((search("200"), search("400"), search("422")), (9.0, 4.0, 2.0), "every search, by status");
    let timed = m("vecindex_http_request_duration_seconds_count", &[("route", "/search"), ("method", "POST")]);
    assert_eq!(timed, 15.0);
    let refused = m("vecindex_http_requests_total", &[("route", "/documents"), ("status", "401")]);
    assert_eq!(refused, 2.0, "refusals count too");
    assert_eq!(m("vecindex_http_requests_total", &[("route", "/documents/{*id}"), ("method", "DELETE")]), 3.0);
    assert_eq!(m("vecindex_filter_errors_total", &[]), 1.0, "the $near filter");
    assert_eq!(m("vecindex_persists_total", &[]), 2.0, "the one that made the index, and POST /persist");
    assert_eq!(m("vecindex_persist_failures_total", &[]), 0.0);
    assert_eq!(m("vecindex_unpersisted_operations", &[]), 1.0, "the delete after the persist");
    assert!(m("vecindex_last_persist_timestamp_seconds", &[]) > 1.7e9);
    assert!(m("vecindex_disk_bytes", &[]) > 0.0);
    assert_eq!(m("vecindex_chunks", &[]), 0.0);
    assert!(metrics.body.contains("# HELP vecindex_chunks Live chunks in the index."), "{}", metrics.body);
    assert!(metrics.body.contains("# TYPE vecindex_http_requests counter"), "{}", metrics.body);

    let (code, printed) = server.terminate();
    assert_eq!(code, Some(0), "{printed:?}");
}

#[test]
fn queries_with_nothing_to_search_for_get_400() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("index"), &[]);
    let addr = server.addr.as_str();
    let doc = json!({ "doc_id": "guide", "text": "# Install\nunpack the archive, then run the installer." });
    assert_eq!(post_json(addr, "/documents", None, &doc).status, 200);
    // A query with nothing to search for is refused, not answered with arbitrary chunks.
    for text in ["", "   ", "the", "how do I"] {
        let refused = post_json(addr, "/search", None, &json!({ "text": text }));
        assert_eq!(refused.status, 400, "{text:?}: {refused:?}");
        assert!(refused.json()["error"].as_str().unwrap().contains("no word to search for"), "{refused:?}");
    }
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn router_errors_are_json_too() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("index"), &[]);
    let addr = server.addr.as_str();
    let nowhere = get(addr, "/no/such/route");
    assert_eq!((nowhere.status, nowhere.json()["status"].as_u64()), (404, Some(404)), "{nowhere:?}");
    let wrong_method = request(addr, "PUT", "/search", None, None).unwrap();
    assert_eq!((wrong_method.status, wrong_method.json()["status"].as_u64()), (405, Some(405)), "{wrong_method:?}");
    assert!(wrong_method.json()["error"].as_str().unwrap().contains("PUT"));
    // Under /v1/, OpenAI's shape: its clients parse no other.
    let openai = get(addr, "/v1/completions");
    assert_eq!(openai.status, 404);
    assert_eq!(openai.json()["error"]["message"], "Invalid URL (GET /v1/completions)", "{openai:?}");
    let openai = get(addr, "/v1/embeddings");
    assert_eq!((openai.status, openai.json()["error"]["type"].as_str()), (405, Some("invalid_request_error")));
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}

/// A corpus big enough that ingesting it takes a while: `n` Markdown files of several sections.
fn corpus(root: &std::path::Path, n: usize) {
    for i in 0..n {
        let dir = root.join(format!("part{}", i % 10));
        std::fs::create_dir_all(&dir).unwrap();
        let sections: String = (0..8)
            .map(|s| {
                format!(
                    "## Section {s}\n{}\n",
                    format!("document {i} section {s} talks about topic {} ", (i + s) % 37).repeat(12)
                )
            })
            .collect();
        std::fs::write(dir.join(format!("doc{i}.md")), format!("# Document {i}\n{sections}")).unwrap();
    }
}

#[test]
fn sigterm_mid_ingest_persists_every_acknowledged_document() {
    let dir = tempfile::tempdir().unwrap();
    let (root, index) = (dir.path().join("docs"), dir.path().join("index"));
    const FILES: usize = 6000;
    corpus(&root, FILES);
    let server = Server::start(&index, &["--ingest", root.to_str().unwrap(), "--persist-every-docs", "500"]);
    let addr = server.addr.clone();
    // Documents acknowledged over HTTP while the ingest runs.
    let mut acknowledged = Vec::new();
    for i in 0..40 {
        let doc = json!({ "doc_id": format!("api/{i}"), "text": format!("posted document {i} during the ingest") });
        let response = post_json(&addr, "/documents", None, &doc);
        assert_eq!(response.status, 200, "{response:?}");
        acknowledged.push(format!("api/{i}"));
    }
    let during = get(&addr, "/stats").json()["documents"].as_u64().unwrap() as usize;
    assert!(during < FILES, "the ingest is still running when the signal comes ({during} documents)");
    let (code, printed) = server.terminate();
    assert_eq!(code, Some(0), "exit 0 after SIGTERM: {printed:?}");
    let stopped = printed.iter().find(|l| l.starts_with("background ingest")).expect("the ingest reports");
    assert!(stopped.contains("stopped"), "it was stopped mid-way: {printed:?}");
    let added: usize =
        stopped.split(": ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();

    // Restart on the same directory: every acknowledged document is there, and every document
    // the ingest added (it persisted them on its way out), whole.
    let server = Server::start(&index, &[]);
    let addr = server.addr.clone();
    for id in &acknowledged {
        assert_eq!(get(&addr, &format!("/documents/{id}")).status, 200, "{id} was acknowledged");
    }
    let stats = get(&addr, "/stats").json();
    assert_eq!(stats["documents"].as_u64(), Some((added + acknowledged.len()) as u64), "{stopped}");
    for i in (0..FILES).step_by(97) {
        let response = get(&addr, &format!("/documents/part{}/doc{i}.md", i % 10));
        if response.status == 200 {
            let chunks = response.json()["chunks"].as_array().unwrap().len();
            assert!(chunks >= 8, "doc{i} is whole: {chunks} chunks");
        }
    }
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));

    // A second run with the ingest finishes the rest, skipping what is already in.
    let server = Server::start(&index, &["--ingest", root.to_str().unwrap()]);
    let addr = server.addr.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while get(&addr, "/stats").json()["documents"].as_u64() != Some((FILES + acknowledged.len()) as u64) {
        assert!(std::time::Instant::now() < deadline, "the second ingest finishes");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (code, printed) = server.terminate();
    assert_eq!(code, Some(0));
    let report = printed.iter().find(|l| l.starts_with("background ingest")).unwrap();
    assert!(report.contains(&format!("{added} unchanged")), "{report}");
}
