//! The designs by name, for the benchmarks that run each in turn.

use std::sync::Arc;

use vecindex::{IndexConfig, MutexIndex, VectorIndex};

use crate::design::{Design, Library};
use crate::old_design::FaissMutex;

/// One design by name (`VectorIndex`, `MutexIndex`, `FaissMutex`), fresh and empty; only that
/// one is built (a `VectorIndex` starts background threads).
pub fn by_name(name: &str, config: &IndexConfig) -> Arc<dyn Design> {
    match name {
        "VectorIndex" => {
            Arc::new(Library { name: "VectorIndex", index: VectorIndex::new(config.clone()).expect("config") })
        }
        "MutexIndex" => {
            Arc::new(Library { name: "MutexIndex", index: MutexIndex::new(config.clone()).expect("config") })
        }
        "FaissMutex" => Arc::new(FaissMutex::new(config.dim)),
        other => panic!("no design {other}"),
    }
}
