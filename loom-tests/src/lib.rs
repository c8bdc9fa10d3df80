//! Loom models of vecindex's concurrency protocols, one file per protocol module of `src/`.
//!
//! They run the library's own protocol code (through its `sync` shim, which maps to loom under
//! `--cfg vecindex_loom`), not a re-implementation:
//!
//! ```sh
//! RUSTFLAGS="--cfg vecindex_loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release -p loom-tests
//! ```
//!
//! Each model is also run against a deliberately broken protocol (`VECINDEX_BUG=<name>`, read
//! at run time by the library's `bug!` sites under this cfg) by `scripts/loom`, which checks that
//! loom then fails: a model that cannot fail proves nothing. Without `--cfg vecindex_loom` this crate is empty.

#[cfg(all(test, vecindex_loom))]
mod cover;
#[cfg(all(test, vecindex_loom))]
mod epoch;
#[cfg(all(test, vecindex_loom))]
mod graph;
#[cfg(all(test, vecindex_loom))]
mod head;
#[cfg(all(test, vecindex_loom))]
mod index;
#[cfg(all(test, vecindex_loom))]
mod maps;
#[cfg(all(test, vecindex_loom))]
mod merge;
#[cfg(all(test, vecindex_loom))]
mod persist;
#[cfg(all(test, vecindex_loom))]
mod seal;
#[cfg(all(test, vecindex_loom))]
mod snapshot;
#[cfg(all(test, vecindex_loom))]
mod wal;
