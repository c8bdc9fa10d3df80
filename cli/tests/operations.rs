//! What operators run the server with: probes, request ids and logs, the read key, the time
//! limit, and the OpenAPI document, against the real `vecindex serve` on 127.0.0.1.

mod support;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, get, metric, post_json, request, request_with};

const WRITE: &str = "write-key";
const READ: &str = "read-key";

#[test]
fn probes_answer_and_readiness_waits_for_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("index"), &["--token", WRITE, "--read-key", READ]);
    let addr = &server.addr;
    assert_eq!((get(addr, "/livez").status, get(addr, "/livez").body.as_str()), (200, "ok\n"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let ready = get(addr, "/readyz");
        if ready.status == 200 || Instant::now() > deadline {
            break ready;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(ready.status, 200, "{ready:?}");
    assert_eq!(ready.json(), json!({ "ready": true, "index": "open", "model": "loaded" }));
    // Probes, metrics and the document stay open whatever the keys.
    for path in ["/livez", "/readyz", "/healthz", "/metrics", "/openapi.json"] {
        assert_eq!(get(addr, path).status, 200, "{path}");
    }
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn the_read_key_guards_reads_and_the_write_key_does_everything() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("index"), &["--token", WRITE, "--read-key", READ]);
    let addr = &server.addr;
    let doc = json!({ "doc_id": "d", "text": "# Title\nsome words to find" });
    let status = |method: &str, path: &str, key: Option<&str>, body: Option<&Value>| {
        let body = body.map(Value::to_string);
        request(addr, method, path, key, body.as_deref().map(str::as_bytes)).unwrap().status
    };
    assert_eq!(status("POST", "/documents", Some(READ), Some(&doc)), 401, "the read key does not write");
    assert_eq!(status("POST", "/documents", Some(WRITE), Some(&doc)), 200);
    let search = json!({ "text": "words", "k": 1 });
    for (key, expected) in
        [(None, 401), (Some("read-ke"), 401), (Some("read-key!"), 401), (Some(READ), 200), (Some(WRITE), 200)]
    {
        assert_eq!(status("POST", "/search", key, Some(&search)), expected, "search with {key:?}");
        assert_eq!(status("GET", "/documents/d", key, None), expected, "get with {key:?}");
        assert_eq!(status("GET", "/stats", key, None), expected, "stats with {key:?}");
        assert_eq!(status("GET", "/v1/models", key, None), expected, "/v1 with {key:?}");
    }
    assert_eq!(status("POST", "/persist", Some(READ), None), 401);
    assert_eq!(status("DELETE", "/documents/d", Some(READ), None), 401);
    assert_eq!(status("DELETE", "/documents/d", Some(WRITE), None), 200);
    let refused = post_json(addr, "/search", None, &search);
    assert_eq!(refused.json()["error"], "missing or wrong bearer token", "{refused:?}");
    drop(server);

    // A read key alone guards the writes too.
    let server = Server::start(&dir.path().join("index2"), &["--read-key", READ]);
    let addr = &server.addr;
    assert_eq!(post_json(addr, "/documents", None, &doc).status, 401);
    assert_eq!(post_json(addr, "/documents", Some(READ), &doc).status, 200);
}

#[test]
fn every_request_gets_an_id_and_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = Server::start_with(&dir.path().join("index"), &[], Stdio::from(log), &[("RUST_LOG", "info")]);
    let addr = &server.addr;
    let given = request_with(addr, "GET", "/stats", None, None, &[("x-request-id", "client-chose-this")]).unwrap();
    assert_eq!(given.header("x-request-id"), Some("client-chose-this"), "{given:?}");
    let made = get(addr, "/no/such/route");
    let id = made.header("x-request-id").expect("an id is made when none is given").to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_ne!(get(addr, "/livez").header("x-request-id"), Some(id.as_str()), "each request its own");
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
    let log = std::fs::read_to_string(&log_path).unwrap();
    let line = |needle: &str| log.lines().find(|l| l.contains(needle)).map(str::to_owned);
    let stats = line("client-chose-this").unwrap_or_else(|| panic!("no line for the request in\n{log}"));
    assert!(stats.contains("/stats") && stats.contains("200") && stats.contains("GET"), "{stats}");
    let missing = line(&id).unwrap_or_else(|| panic!("no line for {id} in\n{log}"));
    assert!(missing.contains("404"), "{missing}");
}

#[test]
fn a_request_over_the_time_limit_gets_503_in_its_api_shape() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("index"), &["--request-timeout-secs", "0.001"]);
    let addr = &server.addr;
    // Thousands of chunks to cut and embed: far over a millisecond.
    let text: String = (0..4000).map(|i| format!("# Section {i}\nwords of section {i} to embed.\n")).collect();
    let slow = post_json(addr, "/documents", None, &json!({ "doc_id": "big", "text": text }));
    assert_eq!(slow.status, 503, "{slow:?}");
    assert!(slow.header("retry-after").is_some(), "{slow:?}");
    assert!(slow.json()["error"].as_str().unwrap().contains("--request-timeout-secs"), "{slow:?}");
    let texts: Vec<String> = (0..2000).map(|i| format!("text number {i} ").repeat(20)).collect();
    let openai = post_json(addr, "/v1/embeddings", None, &json!({ "input": texts, "model": "hashing-384" }));
    assert_eq!(openai.status, 503, "{openai:?}");
    assert_eq!(openai.json()["error"]["type"], "server_error", "OpenAI's shape on /v1: {openai:?}");
    assert_eq!(get(addr, "/livez").status, 200, "a quick request is within the limit");
    let metrics = get(addr, "/metrics").body;
    assert_eq!(metric(&metrics, "vecindex_http_requests_total", &[("route", "/documents"), ("status", "503")]), 1.0);
}

#[test]
fn the_openapi_document_names_every_route_and_each_one_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("index"), &[]);
    let addr = &server.addr;
    let doc = get(addr, "/openapi.json");
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    // The router's routes (server/mod.rs), each with its methods.
    let served: BTreeSet<(String, String)> = [
        ("POST", "/documents"),
        ("GET", "/documents/{doc_id}"),
        ("DELETE", "/documents/{doc_id}"),
        ("POST", "/search"),
        ("POST", "/persist"),
        ("GET", "/stats"),
        ("GET", "/livez"),
        ("GET", "/readyz"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("POST", "/v1/embeddings"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/{model}"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(documented, served);
    // Each documented route is served: no answer is the router's own 404 or 405.
    for (method, path) in &documented {
        let concrete = path.replace("{doc_id}", "some/doc").replace("{model}", "hashing-384");
        let answer = request(addr, method, &concrete, None, Some(b"{}")).unwrap();
        assert!(answer.status != 405 && !answer.body.contains("no route"), "{method} {path}: {answer:?}");
    }
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!((bearer["type"].as_str(), bearer["scheme"].as_str()), (Some("http"), Some("bearer")), "{doc}");
}
