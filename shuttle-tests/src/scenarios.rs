//! Four writers running scripts of mixed operations (new documents, replacements, single-chunk
//! adds, document and chunk removals), a searcher, a maintainer (sealing, merging, vacuuming
//! one-row... three-row heads) and a persister, on one index.
//!
//! Checked in every execution: every search is one point-in-time view (each writer's documents
//! are exactly the state after one prefix of its script, never going back); the snapshot opens
//! (strict) and holds, for each writer, a prefix no shorter than what was acknowledged before
//! the persist began; at the end the maps, search and counts equal the scripts' final states and
//! reconcile finds nothing stale.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use shuttle::thread;
use vecindex::{OpenOptions, VectorIndex};

use crate::common::{Script, exact_config, observe_maps, observe_search};

const WRITERS: usize = 4;
const OPS: usize = 12;

fn acked_now(acked: &[AtomicUsize]) -> Vec<usize> {
    acked.iter().map(|a| a.load(Ordering::SeqCst)).collect()
}

fn scenario(root: &std::path::Path, execution: usize) {
    let config = exact_config().head_capacity(3).background(false);
    let index = Arc::new(VectorIndex::new(config.clone()).unwrap());
    let scripts: Arc<Vec<Script>> = Arc::new((0..WRITERS).map(|w| Script::new(w, OPS)).collect());
    let acked: Arc<Vec<AtomicUsize>> = Arc::new((0..WRITERS).map(|_| AtomicUsize::new(0)).collect());

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (index, scripts, acked) = (index.clone(), scripts.clone(), acked.clone());
            thread::spawn(move || {
                for i in 0..OPS {
                    scripts[w].run(&*index, i);
                    acked[w].store(i + 1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    let searcher = {
        let (index, scripts, acked) = (index.clone(), scripts.clone(), acked.clone());
        thread::spawn(move || {
            let mut floor = [0; WRITERS];
            for search in 0..3 {
                let before = acked_now(&acked);
                let seen = observe_search(&*index, WRITERS);
                let after = acked_now(&acked);
                for w in 0..WRITERS {
                    floor[w] = scripts[w]
                        .find_prefix(&seen[w], before[w].max(floor[w]), after[w])
                        .unwrap_or_else(|e| panic!("search {search}, writer {w}: {e}"));
                }
            }
        })
    };
    let maintainer = {
        let index = index.clone();
        thread::spawn(move || {
            for _ in 0..3 {
                index.maintain();
                thread::yield_now();
            }
        })
    };
    let dir = root.join(execution.to_string());
    let before = acked_now(&acked);
    index.persist(&dir).unwrap();
    let after = acked_now(&acked);

    for writer in writers {
        writer.join().unwrap();
    }
    searcher.join().unwrap();
    maintainer.join().unwrap();

    let options = OpenOptions::new().config(config).strict(true);
    let (reopened, report) = VectorIndex::open_with_options(&dir, &options).unwrap();
    assert!(report.is_clean(), "{report:?}");
    for w in 0..WRITERS {
        let observed = observe_maps(&reopened, w);
        scripts[w].find_prefix(&observed, before[w], after[w]).unwrap_or_else(|e| panic!("snapshot, writer {w}: {e}"));
    }
    std::fs::remove_dir_all(&dir).unwrap();

    index.maintain();
    assert_eq!(index.reconcile_mappings(), 0, "nothing stale");
    let searched = observe_search(&*index, WRITERS);
    let mut live = 0;
    for w in 0..WRITERS {
        let expected = scripts[w].state_at(OPS);
        assert_eq!(observe_maps(&*index, w), expected, "writer {w}: maps");
        assert_eq!(searched[w], expected, "writer {w}: search");
        live += expected.values().map(|c| c.len()).sum::<usize>();
    }
    assert_eq!(index.len(), live);
}

/// Runs `check` on the scenario, each execution persisting into its own directory (on
/// `/dev/shm` where there is one).
fn run(check: impl FnOnce(Box<dyn Fn() + Send + Sync>)) {
    let root = match std::path::Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    };
    let path = root.path().to_owned();
    let executions = Arc::new(AtomicUsize::new(0));
    check(Box::new(move || scenario(&path, executions.fetch_add(1, Ordering::Relaxed))));
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Iterations per scheduler (`VECINDEX_SHUTTLE_ITERATIONS`, default 1000) and the seed
/// (`VECINDEX_SHUTTLE_SEED`): seeded schedulers, so a run is reproducible and `scripts/shuttle`
/// can require that an injected bug is caught.
fn iterations_and_seed() -> (usize, u64) {
    (env("VECINDEX_SHUTTLE_ITERATIONS", 1000) as usize, env("VECINDEX_SHUTTLE_SEED", 0x5EED))
}

#[test]
fn random_schedules() {
    let (iterations, seed) = iterations_and_seed();
    run(|scenario| shuttle::check_random_with_seed(scenario, seed, iterations));
}

#[test]
fn pct_schedules() {
    let (iterations, seed) = iterations_and_seed();
    let scheduler = shuttle::scheduler::PctScheduler::new_from_seed(seed, 3, iterations);
    run(|scenario| {
        let _executions = shuttle::Runner::new(scheduler, shuttle::Config::default()).run(scenario);
    });
}
