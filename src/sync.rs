//! The only import of atomics, `Arc`, `UnsafeCell` and the epoch cell in the crate.
//!
//! Normally these are `std` types (and [`arc_swap::ArcSwap`] for [`EpochCell`]); under
//! `--cfg vecindex_loom` they are loom's, so the models in `loom-tests/` drive the library's own
//! protocol code. loom cannot see inside `arc-swap`, so under loom [`EpochCell`] is a small stand-in
//! with the same semantics (a loom `Mutex<Arc<T>>`: every load sees one complete published value).
//!
//! The DashMap caches are not modelled yet: they are locks, not a lock-free protocol of ours, and
//! the models of this crate's protocols (head publish, sequencer watermark) do not touch them.

#[cfg(not(vecindex_loom))]
mod imp {
    pub(crate) use std::sync::OnceLock;
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
    pub(crate) use std::sync::{Arc, Mutex};

    /// Mirrors loom's `UnsafeCell` API so protocol code is written once.
    #[derive(Debug, Default)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }

        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }

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
}

#[cfg(vecindex_loom)]
mod imp {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
    // Not modelled: set once by a merge before the fence that the forwarding protocol relies on.
    pub(crate) use loom::sync::{Arc, Mutex};
    pub(crate) use std::sync::OnceLock;

    pub(crate) fn spin_wait(_round: u32) {
        loom::thread::yield_now();
    }

    /// loom stand-in for `ArcSwap`: a loom mutex around the current `Arc`. Loads and swaps are
    /// linearizable, as they are with `ArcSwap`.
    pub(crate) struct EpochCell<T>(loom::sync::Mutex<Arc<T>>);

    pub(crate) type EpochGuard<T> = Arc<T>;

    impl<T> EpochCell<T> {
        pub(crate) fn new(value: Arc<T>) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn load(&self) -> EpochGuard<T> {
            self.load_full()
        }

        pub(crate) fn load_full(&self) -> Arc<T> {
            self.0.lock().expect("loom mutex poisoned").clone()
        }

        pub(crate) fn rcu(&self, mut f: impl FnMut(&Arc<T>) -> Arc<T>) -> Arc<T> {
            let mut current = self.0.lock().expect("loom mutex poisoned");
            let next = f(&current);
            std::mem::replace(&mut *current, next)
        }
    }
}

pub(crate) use imp::*;
