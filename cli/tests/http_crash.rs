//! Nothing a 200 acknowledged is lost: the real `vecindex serve` is killed with SIGKILL at random
//! moments while HTTP clients add and delete documents; after every kill the index directory
//! opens (strict) and holds every acknowledged write, and no document that was never sent.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Server, request};
use vecindex::{OpenOptions, VectorIndex};

const TOKEN: &str = "s3cret";
const CLIENTS: usize = 2;

/// What the clients know: documents they sent, and the state each 200 left a document in (a
/// write whose answer never came may or may not have happened).
#[derive(Default)]
struct Ledger {
    sent: BTreeSet<String>,
    /// doc -> present after the last acknowledged write of it; removed when a later write of it
    /// went unanswered (then either state is right).
    acknowledged: BTreeMap<String, bool>,
}

fn client(addr: String, run: usize, c: usize, ledger: Arc<Mutex<Ledger>>, stop: Arc<AtomicBool>) {
    let mut mine: Vec<String> = Vec::new();
    for i in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let (method, path, doc, body) = if i % 5 == 4 && !mine.is_empty() {
            let doc = mine.remove(i % mine.len());
            ("DELETE", format!("/documents/{doc}"), doc, None)
        } else {
            let doc = format!("r{run}-c{c}-d{i}");
            let text = format!(
                "# Part {i}\nclient {c} of run {run} writes document {i}.\n# More\nwords for a second chunk {i}."
            );
            mine.push(doc.clone());
            ("POST", "/documents".to_owned(), doc.clone(), Some(json!({ "doc_id": doc, "text": text }).to_string()))
        };
        ledger.lock().unwrap().sent.insert(doc.clone());
        let answer = request(&addr, method, &path, Some(TOKEN), body.as_deref().map(str::as_bytes));
        let mut ledger = ledger.lock().unwrap();
        match answer {
            Ok(r) if r.status == 200 => {
                ledger.acknowledged.insert(doc, method == "POST");
            }
            // No answer (the server died) or an error answer: the write is in doubt.
            _ => {
                ledger.acknowledged.remove(&doc);
                return;
            }
        }
        if i % 25 == 24 {
            drop(ledger);
            let _ = request(&addr, "POST", "/persist", Some(TOKEN), None);
        }
    }
}

#[test]
fn sigkill_of_the_server_never_loses_an_acknowledged_write() {
    let kills: usize = std::env::var("VECINDEX_HTTP_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let started = Instant::now();
    for run in 0..kills {
        let server = Server::start(&index, &["--token", TOKEN]);
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (addr, ledger, stop) = (server.addr.clone(), ledger.clone(), stop.clone());
                std::thread::spawn(move || client(addr, run, c, ledger, stop))
            })
            .collect();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(rng % 250));
        drop(server); // SIGKILL, then wait
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.join().unwrap();
        }
        let options = OpenOptions::new().strict(true).read_only(true);
        let (opened, report) = VectorIndex::open_with_options(&index, &options)
            .unwrap_or_else(|e| panic!("run {run}: the index opens after SIGKILL: {e}"));
        assert!(report.is_clean(), "run {run}: {report:?}");
        let ledger = ledger.lock().unwrap();
        for (doc, &present) in &ledger.acknowledged {
            assert_eq!(!opened.chunk_ids(doc).is_empty(), present, "run {run}: acknowledged state of {doc}");
        }
        let stored: BTreeSet<String> = opened.document_ids().into_iter().collect();
        let strangers: Vec<&String> = stored.difference(&ledger.sent).collect();
        assert!(strangers.is_empty(), "run {run}: documents nobody sent: {strangers:?}");
    }
    let ledger = ledger.lock().unwrap();
    let present = ledger.acknowledged.values().filter(|&&p| p).count();
    eprintln!(
        "{kills} SIGKILLs of the server in {:.1} s: {} writes sent, {} documents in an acknowledged state ({present} present), all as acknowledged",
        started.elapsed().as_secs_f64(),
        ledger.sent.len(),
        ledger.acknowledged.len(),
    );
    assert!(ledger.acknowledged.len() > kills, "the server acknowledged writes between kills");
}
