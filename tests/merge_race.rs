//! Writers against continuous maintenance: four scripted writers run while another thread calls
//! `maintain()` (seal, index, merge, vacuum) in a loop on 4-row heads. Afterwards the id maps
//! and a full search must both equal every writer's final state: no delete lost to a merge, no
//! row lost or duplicated by sealing. Repeated for several rounds, since interleavings vary. The
//! same again with `force_merge()` (merge everything, the current head included, into one
//! segment) in the loop, and with the graph plain HNSW rows share (grown, and rebuilt as rows
//! die, by `maintain()`).

#![allow(clippy::disallowed_types)] // tests drive the index from std threads; the shim rule is the library's

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Script, observe_maps, observe_search};
use vecindex::{IndexConfig, SegmentIndex, VectorIndex};

const WRITERS: usize = 4;
const ROUNDS: usize = 20;

#[test]
fn one_writer_against_continuous_maintenance() {
    writers_against(common::exact_config(), |index| {
        index.maintain();
    });
}

#[test]
fn writers_against_force_merge() {
    writers_against(common::exact_config(), |index| {
        index.maintain();
        index.force_merge();
    });
}

#[test]
fn writers_against_the_shared_graph() {
    let config = IndexConfig::new(common::DIM).segment_index(SegmentIndex::faiss("HNSW32").min_rows(0));
    writers_against(config.clone(), |index| {
        index.maintain();
    });
    writers_against(config, |index| {
        index.maintain();
        index.force_merge();
    });
}

/// Four scripted writers while another thread calls `maintain` in a loop; then the maps and
/// a full search must equal every writer's final state.
fn writers_against(config: IndexConfig, maintain: fn(&VectorIndex)) {
    for round in 0..ROUNDS {
        let index = Arc::new(VectorIndex::new(config.clone().head_capacity(4).background(false)).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let maintainer = {
            let (index, stop) = (index.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    maintain(&index);
                }
            })
        };
        let scripts: Arc<Vec<Script>> = Arc::new((0..WRITERS).map(|w| Script::new(w, 400)).collect());
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (index, scripts) = (index.clone(), scripts.clone());
                std::thread::spawn(move || {
                    for i in 0..scripts[w].ops.len() {
                        scripts[w].run(&*index, i);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        maintainer.join().unwrap();
        if round % 2 == 1 {
            // A last full merge leaves one segment (the rows fit in max_segment_rows) and no dead
            // row in it, and changes nothing visible.
            index.maintain();
            assert_eq!(index.force_merge(), 1, "round {round}: {:?}", index.stats().segments);
            let sealed: Vec<_> = index.stats().segments.into_iter().filter(|s| s.label() != "head").collect();
            assert_eq!(sealed[0].rows, sealed[0].live_rows, "round {round}: dead rows left");
            // The head was closed and merged too (Head::close): no row is left to scan exactly.
            let unsealed: usize = index.stats().segments.iter().filter(|s| s.label() == "head").map(|s| s.rows).sum();
            assert_eq!(unsealed, 0, "round {round}: rows left in the head: {:?}", index.stats().segments);
        }
        let searched = observe_search(&*index, WRITERS);
        for w in 0..WRITERS {
            let expected = &scripts[w].state_at(scripts[w].ops.len());
            assert_eq!(&observe_maps(&*index, w), expected, "round {round}: maps");
            if &searched[w] != expected {
                let docs: Vec<_> = searched[w].keys().filter(|d| searched[w].get(*d) != expected.get(*d)).collect();
                panic!("round {round}: search differs in {docs:?}; stats {:?}", index.stats().segments);
            }
        }
    }
}
