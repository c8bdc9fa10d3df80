//! A bounded load on loopback, with a background ingest running: concurrent adds, searches and
//! persists. No 5xx, and no acknowledged write lost (checked live, and after a restart).
//! The latency figures of the same load come from `cargo bench -p vecindex-cli --bench load`.

mod support;

use support::{Server, get, load};

#[test]
fn concurrent_adds_searches_and_persists_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (root, index) = (dir.path().join("docs"), dir.path().join("index"));
    load::corpus(&root, 300, 5);
    let server = Server::start(&index, &["--token", "t", "--ingest", root.to_str().unwrap()]);
    let outcome = load::run(&server.addr, 4, 120, Some("t"));
    let errors: usize = outcome.statuses.iter().filter(|(s, _)| **s >= 500).map(|(_, n)| n).sum();
    assert_eq!(errors, 0, "{:?}", outcome.statuses);
    assert_eq!(outcome.statuses.get(&200).copied(), Some(4 * 120), "{:?}", outcome.statuses);
    for id in &outcome.acknowledged {
        assert_eq!(get(&server.addr, &format!("/documents/{id}")).status, 200, "{id} lost");
    }
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
    let server = Server::start(&index, &[]);
    for id in &outcome.acknowledged {
        assert_eq!(get(&server.addr, &format!("/documents/{id}")).status, 200, "{id} lost across the restart");
    }
}
