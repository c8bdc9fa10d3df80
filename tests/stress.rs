//! Stress: 4 writers, 2 searchers and 1 persister on one index for a bounded time.
//!
//! Checked while running: every search is one point-in-time view (each writer's documents are
//! in the state after one prefix of its operations, no half documents, no chunk twice, and the
//! view never goes back in a writer's history); every snapshot opens and holds every operation
//! acknowledged before its persist began. Checked at the end: maps, search and stats agree with
//! the writers' final states, and reconcile finds nothing stale.

#![allow(clippy::disallowed_types)] // tests drive the index from std threads; the shim rule is the library's

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{DIM, Script, observe_maps, observe_search};
use vecindex::{Index, IndexConfig, MutexIndex, SegmentIndex, VectorIndex};

const WRITERS: usize = 4;
const OPS: usize = 6000;
const TIME_LIMIT: Duration = Duration::from_secs(20);

/// Runs the writers, searchers and persister on `index`; snapshots are opened with `reopen`.
fn stress<I: Index + 'static>(index: I, reopen: IndexConfig) {
    let index = Arc::new(index);
    let scripts: Arc<Vec<Script>> = Arc::new((0..WRITERS).map(|w| Script::new(w, OPS)).collect());
    let acked: Arc<Vec<AtomicUsize>> = Arc::new((0..WRITERS).map(|_| AtomicUsize::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let snapshot_acked =
        |acked: &[AtomicUsize]| -> Vec<usize> { acked.iter().map(|a| a.load(Ordering::SeqCst)).collect() };

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (index, scripts, acked, stop) = (index.clone(), scripts.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                for i in 0..OPS {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    scripts[w].run(&*index, i);
                    acked[w].store(i + 1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    let searchers: Vec<_> = (0..2)
        .map(|_| {
            let (index, scripts, acked, stop) = (index.clone(), scripts.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut floor = [0; WRITERS];
                let mut searches = 0;
                while !stop.load(Ordering::SeqCst) {
                    let before = snapshot_acked(&acked);
                    let seen = observe_search(&*index, WRITERS);
                    let after = snapshot_acked(&acked);
                    for w in 0..WRITERS {
                        let k = scripts[w]
                            .find_prefix(&seen[w], before[w].max(floor[w]), after[w])
                            .unwrap_or_else(|e| panic!("search {searches}, writer {w}: {e}"));
                        floor[w] = k;
                    }
                    searches += 1;
                }
                searches
            })
        })
        .collect();

    let persister = {
        let (index, scripts, acked, stop) = (index.clone(), scripts.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let dir = tempfile::tempdir().unwrap();
            let reopen = reopen.clone();
            let mut persists = 0;
            while !stop.load(Ordering::SeqCst) {
                let before = snapshot_acked(&acked);
                index.persist(dir.path()).expect("persist");
                let after = snapshot_acked(&acked);
                let reopened = I::open_with(dir.path(), reopen.clone()).expect("snapshot opens");
                for w in 0..WRITERS {
                    let observed = observe_maps(&reopened, w);
                    scripts[w]
                        .find_prefix(&observed, before[w], after[w])
                        .unwrap_or_else(|e| panic!("persist {persists}, writer {w}: {e}"));
                }
                persists += 1;
            }
            persists
        })
    };

    while acked.iter().any(|a| a.load(Ordering::SeqCst) < OPS) && started.elapsed() < TIME_LIMIT {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().expect("writer panicked");
    }
    let searches: usize = searchers.into_iter().map(|s| s.join().expect("searcher panicked")).sum();
    let persists = persister.join().expect("persister panicked");
    assert!(searches > 0 && persists > 0, "searches {searches}, persists {persists}");

    let done = snapshot_acked(&acked);
    assert!(done.iter().all(|&d| d > 100), "writers made progress: {done:?}");
    assert_eq!(index.reconcile_mappings(), 0, "nothing stale");
    let searched = observe_search(&*index, WRITERS);
    let mut live = 0;
    for w in 0..WRITERS {
        let expected = &scripts[w].state_at(done[w]);
        assert_eq!(&observe_maps(&*index, w), expected, "writer {w}: maps");
        assert_eq!(&searched[w], expected, "writer {w}: search");
        live += expected.values().map(|c| c.len()).sum::<usize>();
    }
    assert_eq!(index.len(), live);
    let stats = index.stats();
    assert_eq!(stats.chunks, live);
    assert_eq!(stats.segments.iter().map(|s| s.live_rows).sum::<usize>(), live);
    eprintln!("ops {done:?}, searches {searches}, persists {persists}, segments {}", stats.segments.len());
}

#[test]
fn stress_vector_index() {
    // Heads of 64 rows sealed, indexed (FAISS "Flat"), merged and vacuumed all the time.
    let config = common::exact_config().head_capacity(64);
    stress(VectorIndex::new(config.clone()).unwrap(), config);
}

#[test]
fn stress_vector_index_inline_maintenance() {
    // No background worker: frozen heads pile up and are searched exactly; nothing is lost.
    let config = common::exact_config().head_capacity(64).background(false);
    stress(VectorIndex::new(config.clone()).unwrap(), config);
}

#[test]
fn stress_vector_index_shared_graph() {
    // Plain HNSW: heads of 64 rows sealed while the worker grows one graph over every row,
    // rebuilds it as replaced rows die, and persists write and reuse its file.
    let config = IndexConfig::new(DIM).head_capacity(64).segment_index(SegmentIndex::faiss("HNSW32").min_rows(0));
    stress(VectorIndex::new(config.clone()).unwrap(), config);
}

#[test]
fn stress_mutex_index() {
    stress(MutexIndex::new(IndexConfig::new(DIM)).unwrap(), IndexConfig::new(DIM));
}

/// The scripts' expected states are right: run sequentially, both indexes match them at every
/// step (the VectorIndex sealing, merging and vacuuming after every step).
#[test]
fn scripts_match_a_sequential_run() {
    let script = Script::new(0, 300);
    let check = |index: &dyn Index, maintain: &dyn Fn()| {
        for i in 0..script.ops.len() {
            script.run(index, i);
            maintain();
            assert_eq!(observe_maps(index, 0), script.state_at(i + 1), "maps after op {i}: {:?}", script.ops[i]);
            assert_eq!(observe_search(index, 1)[0], script.state_at(i + 1), "search after op {i}: {:?}", script.ops[i]);
        }
    };
    let vector = VectorIndex::new(common::exact_config().head_capacity(4).background(false)).unwrap();
    check(&vector, &|| {
        vector.maintain();
    });
    let mutex = MutexIndex::new(IndexConfig::new(DIM)).unwrap();
    check(&mutex, &|| {});
}
