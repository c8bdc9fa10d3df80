//! The normal arm: `std`, `arc-swap` and `dashmap` (see the module docs of `sync`).

pub(crate) use dashmap::DashMap as ShardedMap;
pub(crate) use dashmap::mapref::entry::Entry;
pub(crate) use std::sync::OnceLock;
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) use super::cell::UnsafeCell;

/// Called in spin-wait loops. Spins a little, then gives the core away: on a 2-core machine
/// the thread we wait for may need our core to finish.
pub(crate) fn spin_wait(round: u32) {
    if round < 16 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// A pointer to the current value that readers load and writers replace.
pub(crate) struct EpochCell<T>(arc_swap::ArcSwap<T>);

/// A short-lived view of the current value; derefs to it, like loom's stand-in (an `Arc`).
pub(crate) struct EpochGuard<T>(arc_swap::Guard<Arc<T>>);

impl<T> std::ops::Deref for EpochGuard<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> EpochCell<T> {
    pub(crate) fn new(value: Arc<T>) -> Self {
        Self(arc_swap::ArcSwap::new(value))
    }

    /// A short-lived view; never keep it across I/O (use [`EpochCell::load_full`]).
    pub(crate) fn load(&self) -> EpochGuard<T> {
        EpochGuard(self.0.load())
    }

    pub(crate) fn load_full(&self) -> Arc<T> {
        self.0.load_full()
    }

    /// Replaces the value with `f(current)`. `f` may run more than once, so it must not
    /// do expensive work: build what it installs before calling this.
    pub(crate) fn rcu(&self, f: impl FnMut(&Arc<T>) -> Arc<T>) -> Arc<T> {
        self.0.rcu(f)
    }
}
