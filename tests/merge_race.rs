//! Writers against continuous maintenance: four scripted writers run while another thread calls
//! `maintain()` (seal, index, merge, vacuum) in a loop on 4-row heads. Afterwards the id maps
//! and a full search must both equal every writer's final state: no delete lost to a merge, no
//! row lost or duplicated by sealing. Repeated for several rounds, since interleavings vary.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Script, observe_maps, observe_search};
use vecindex::{Index, VectorIndex};

const WRITERS: usize = 4;
const ROUNDS: usize = 20;

#[test]
fn one_writer_against_continuous_maintenance() {
    for round in 0..ROUNDS {
        let index = Arc::new(VectorIndex::new(common::exact_config().head_capacity(4).background(false)).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let maintainer = {
            let (index, stop) = (index.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    index.maintain();
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
