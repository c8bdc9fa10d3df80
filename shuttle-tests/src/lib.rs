//! shuttle scenarios over vecindex: more threads and operations than loom can explore
//! exhaustively, under shuttle's random and PCT schedulers, checked against the sequential model
//! of the integration tests (`tests/common`: scripted writers and the state after every prefix).
//!
//! ```sh
//! RUSTFLAGS="--cfg vecindex_shuttle" cargo test --release -p shuttle-tests
//! ```
//!
//! The library runs on shuttle's primitives through its `sync` shim (the same stand-ins as under
//! loom for arc-swap, dashmap and `OnceLock`). Without `--cfg vecindex_shuttle` this crate is
//! empty. `scripts/shuttle` runs the scenarios, then checks that they catch injected bugs.

#[cfg(all(test, vecindex_shuttle))]
#[path = "../../tests/common/mod.rs"]
mod common;

#[cfg(all(test, vecindex_shuttle))]
mod scenarios;
