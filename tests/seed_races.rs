//! The seed's three race tests, in Rust, against both designs.
//!
//! The Python system crashed with "dictionary changed size during iteration" when persist ran
//! while a background indexer added chunks. Each test here runs writers and persists at once,
//! then opens the snapshot and checks that it holds every operation acknowledged before the
//! persist started and that each writer's documents are in the state after one prefix of its
//! operations: never half a document.

#![allow(clippy::disallowed_types)] // tests drive the index from std threads; the shim rule is the library's

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Script, check_snapshot, run_script};
use vecindex::{Index, IndexConfig, MutexIndex, VectorIndex};

/// A small head so that rotation and sealing happen many times during the test.
fn config() -> IndexConfig {
    common::exact_config().head_capacity(16)
}

/// One thread per script, each publishing how many of its operations have returned.
fn spawn_writers<I: Index + 'static>(
    index: &Arc<I>,
    scripts: &Arc<Vec<Script>>,
    counters: &[Arc<AtomicUsize>],
) -> Vec<std::thread::JoinHandle<()>> {
    (0..scripts.len())
        .map(|w| {
            let (index, scripts, acked) = (index.clone(), scripts.clone(), counters[w].clone());
            std::thread::spawn(move || run_script(&*index, &scripts[w], &acked))
        })
        .collect()
}

fn acked(counters: &[Arc<AtomicUsize>]) -> Vec<usize> {
    counters.iter().map(|c| c.load(Ordering::SeqCst)).collect()
}

/// `test_concurrent_add_and_persist`: writers add while the main thread persists once.
fn concurrent_add_and_persist<I: Index + 'static>(index: I) {
    let index = Arc::new(index);
    let scripts: Arc<Vec<Script>> = Arc::new((0..2).map(|w| Script::new(w, 3000)).collect());
    let counters: Vec<Arc<AtomicUsize>> = (0..2).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let writers = spawn_writers(&index, &scripts, &counters);
    while counters.iter().any(|c| c.load(Ordering::SeqCst) < 50) {
        std::thread::sleep(Duration::from_millis(1)); // let some chunks get added (the seed's 50 ms)
    }
    let dir = tempfile::tempdir().unwrap();
    let before = acked(&counters);
    index.persist(dir.path()).expect("persist while writers run");
    let after = acked(&counters);
    for w in writers {
        w.join().expect("writer panicked");
    }
    check_snapshot::<I>(dir.path(), &scripts, &before, &after);
}

#[test]
fn concurrent_add_and_persist_vector_index() {
    concurrent_add_and_persist(VectorIndex::new(config()).unwrap());
}

#[test]
fn concurrent_add_and_persist_mutex_index() {
    concurrent_add_and_persist(MutexIndex::new(config()).unwrap());
}

/// `test_concurrent_add_and_persist_async`: the same under tokio, where the index is called
/// through `spawn_blocking` (Python's `asyncio.to_thread`) and gathered.
async fn concurrent_add_and_persist_async<I: Index + 'static>(index: I) {
    let index = Arc::new(index);
    let scripts: Arc<Vec<Script>> = Arc::new((0..2).map(|w| Script::new(w, 3000)).collect());
    let counters: Vec<Arc<AtomicUsize>> = (0..2).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let mut writers = Vec::new();
    for w in 0..2 {
        let (index, scripts, acked) = (index.clone(), scripts.clone(), counters[w].clone());
        writers.push(tokio::task::spawn_blocking(move || run_script(&*index, &scripts[w], &acked)));
    }
    while counters.iter().any(|c| c.load(Ordering::SeqCst) < 30) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let before = acked(&counters);
    let persisting = {
        let (index, path) = (index.clone(), dir.path().to_owned());
        tokio::task::spawn_blocking(move || index.persist(&path))
    };
    let (persisted, ..) = tokio::join!(persisting, async {
        for w in writers {
            w.await.expect("writer panicked");
        }
    });
    persisted.unwrap().expect("persist while writers run");
    // `after` is only an upper bound here, so the full script length is the honest one.
    let after: Vec<usize> = scripts.iter().map(|s| s.ops.len()).collect();
    check_snapshot::<I>(dir.path(), &scripts, &before, &after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_add_and_persist_async_vector_index() {
    concurrent_add_and_persist_async(VectorIndex::new(config()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_add_and_persist_async_mutex_index() {
    concurrent_add_and_persist_async(MutexIndex::new(config()).unwrap()).await;
}

/// `test_multiple_persists_during_indexing`: continuous indexing, many persists; every snapshot
/// is checked, and later snapshots never go back in any writer's history.
fn multiple_persists_during_indexing<I: Index + 'static>(index: I) {
    let index = Arc::new(index);
    let scripts: Arc<Vec<Script>> = Arc::new((0..2).map(|w| Script::new(w, 6000)).collect());
    let counters: Vec<Arc<AtomicUsize>> = (0..2).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let writers = spawn_writers(&index, &scripts, &counters);
    let dir = tempfile::tempdir().unwrap();
    let mut floor = [0; 2];
    let mut persists = 0;
    let mut last_seq = 0;
    while persists < 20 || counters.iter().any(|c| c.load(Ordering::SeqCst) < 6000) {
        let before = acked(&counters);
        let report = index.persist(dir.path()).expect("persist while writers run");
        let after = acked(&counters);
        assert!(report.seq >= last_seq, "snapshot seqs go forward");
        last_seq = report.seq;
        let reopened = I::open_with(dir.path(), config()).unwrap();
        for (w, script) in scripts.iter().enumerate() {
            let observed = common::observe_maps(&reopened, w);
            let lo = before[w].max(floor[w]);
            let k = script
                .find_prefix(&observed, lo, after[w])
                .unwrap_or_else(|e| panic!("persist {persists}, writer {w}: {e}"));
            floor[w] = k;
        }
        persists += 1;
    }
    for w in writers {
        w.join().expect("writer panicked");
    }
    assert!(persists >= 20);
    let done: Vec<usize> = scripts.iter().map(|s| s.ops.len()).collect();
    index.persist(dir.path()).unwrap();
    check_snapshot::<I>(dir.path(), &scripts, &done, &done);
}

#[test]
fn multiple_persists_during_indexing_vector_index() {
    multiple_persists_during_indexing(VectorIndex::new(config()).unwrap());
}

#[test]
fn multiple_persists_during_indexing_mutex_index() {
    multiple_persists_during_indexing(MutexIndex::new(config()).unwrap());
}
