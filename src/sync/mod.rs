//! The only import of atomics, `Arc`, `UnsafeCell`, `OnceLock`, the epoch cell and the sharded
//! maps in the crate, and the spawn of threads whose protocol a model checks ([`spawn`]).
//!
//! Normally these are `std` types, [`arc_swap::ArcSwap`] for [`EpochCell`] and
//! [`dashmap::DashMap`] for [`ShardedMap`]; under `--cfg vecindex_loom` they are loom's, so the
//! models in `loom-tests/` drive the library's own protocol code (and under
//! `--cfg vecindex_shuttle`, shuttle's, for the larger randomized scenarios of `shuttle-tests/`).
//! Neither checker can see inside `arc-swap`, `dashmap` or `std::sync::OnceLock`, so each has a
//! small stand-in with the same semantics, built on the checker's primitives:
//!
//! - `EpochCell`: a loom `Mutex<Arc<T>>`; every load sees one complete published value, as with
//!   `ArcSwap` (whose loads and stores are linearizable).
//! - `ShardedMap`: a loom mutex per key (and one over the table of keys, held only to find a
//!   key's mutex): DashMap with as many shards as keys. Operations on one key are serialized as
//!   DashMap's are; operations on different keys never wait for each other, as they don't in
//!   DashMap unless two keys share a shard. (A stand-in with one lock per map serialized writers
//!   of different documents and hid the interleaving the seal model needs.) The crate never holds
//!   two entries of one map at once, so shards sharing keys cannot deadlock it either. `len` and
//!   `iter` lock one key at a time, as DashMap locks one shard at a time.
//! - `OnceLock`: a loom `AtomicPtr`, set with a `compare_exchange(AcqRel)` and read with an
//!   `Acquire` load, the orderings `std`'s gives; not a mutex, which would order more than
//!   `std` does and could hide a missing fence.
//!
//! `native` holds the normal arm, `model` the checkers' arm; each stand-in has a file of its own.
//! `bug` holds `bug!`, the switch of the bugs injected for the models to catch.

pub(crate) mod bug;
#[cfg(not(vecindex_loom))]
mod cell;
#[cfg(any(vecindex_loom, vecindex_shuttle))]
mod model;
#[cfg(not(any(vecindex_loom, vecindex_shuttle)))]
mod native;
#[cfg(any(vecindex_loom, vecindex_shuttle))]
mod once_lock;
#[cfg(any(vecindex_loom, vecindex_shuttle))]
mod sharded_map;

pub(crate) use bug::bug;
#[cfg(any(vecindex_loom, vecindex_shuttle))]
pub(crate) use model::*;
#[cfg(not(any(vecindex_loom, vecindex_shuttle)))]
pub(crate) use native::*;
