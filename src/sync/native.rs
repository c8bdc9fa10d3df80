//! The normal arm: `std`, `arc-swap` and `dashmap` (see the module docs of `sync`).
//!
//! std's `Arc`, `Mutex`, `OnceLock` and atomics are wrapped in newtypes of the same name and
//! methods (inlined, so they cost nothing): clippy's `disallowed_types` (clippy.toml) then flags
//! any direct use of std's types elsewhere in the library, which would bypass loom and shuttle,
//! while the shim's are allowed.

#![allow(clippy::disallowed_types)] // the shim is where std's types are used

use std::fmt;
use std::sync::LockResult;

pub(crate) use dashmap::DashMap as ShardedMap;
pub(crate) use dashmap::mapref::entry::Entry;
pub(crate) use std::sync::MutexGuard;
pub(crate) use std::thread::JoinHandle;

/// Starts a named thread.
pub(crate) fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.to_owned()).spawn(f)
}
pub(crate) use std::sync::atomic::{Ordering, fence};

pub(crate) use super::cell::UnsafeCell;

/// `std::sync::Arc` (see the module docs).
#[repr(transparent)]
pub struct Arc<T: ?Sized>(std::sync::Arc<T>);

impl<T> Arc<T> {
    #[inline]
    pub(crate) fn new(value: T) -> Self {
        Self(std::sync::Arc::new(value))
    }
}

impl<T: ?Sized> Arc<T> {
    #[inline]
    pub(crate) fn ptr_eq(a: &Self, b: &Self) -> bool {
        std::sync::Arc::ptr_eq(&a.0, &b.0)
    }
}

impl<T: ?Sized> Clone for Arc<T> {
    #[inline]
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: ?Sized> std::ops::Deref for Arc<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Arc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `std::sync::Mutex` (see the module docs).
#[derive(Debug, Default)]
pub struct Mutex<T>(std::sync::Mutex<T>);

/// `std::sync::Condvar` (see the module docs).
#[derive(Default)]
pub(crate) struct Condvar(std::sync::Condvar);

impl Condvar {
    #[inline]
    pub(crate) fn new() -> Self {
        Self(std::sync::Condvar::new())
    }

    #[inline]
    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        self.0.wait(guard)
    }

    #[inline]
    pub(crate) fn notify_all(&self) {
        self.0.notify_all();
    }
}

impl<T> Mutex<T> {
    #[inline]
    pub(crate) const fn new(value: T) -> Self {
        Self(std::sync::Mutex::new(value))
    }

    #[inline]
    pub(crate) fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.0.lock()
    }

    #[cfg(test)]
    pub(crate) fn try_lock(&self) -> std::sync::TryLockResult<MutexGuard<'_, T>> {
        self.0.try_lock()
    }
}

/// `std::sync::OnceLock` (see the module docs).
pub struct OnceLock<T>(std::sync::OnceLock<T>);

impl<T> OnceLock<T> {
    #[inline]
    pub(crate) const fn new() -> Self {
        Self(std::sync::OnceLock::new())
    }

    #[inline]
    pub(crate) fn get(&self) -> Option<&T> {
        self.0.get()
    }

    #[inline]
    pub(crate) fn set(&self, value: T) -> Result<(), T> {
        self.0.set(value)
    }

    #[inline]
    pub(crate) fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        self.0.get_or_init(init)
    }
}

/// An atomic of std's (see the module docs), with the methods the crate uses.
macro_rules! atomic {
    ($name:ident, $value:ty $(, $arith:ident)*) => {
        #[repr(transparent)]
        #[derive(Debug, Default)]
        pub struct $name(std::sync::atomic::$name);

        #[allow(dead_code)] // one set of methods for every atomic; not each uses all of them
        impl $name {
            #[inline]
            pub(crate) const fn new(value: $value) -> Self {
                Self(std::sync::atomic::$name::new(value))
            }

            #[inline]
            pub(crate) fn load(&self, order: Ordering) -> $value {
                self.0.load(order)
            }

            #[inline]
            pub(crate) fn store(&self, value: $value, order: Ordering) {
                self.0.store(value, order)
            }

            #[inline]
            pub(crate) fn compare_exchange(
                &self,
                current: $value,
                new: $value,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$value, $value> {
                self.0.compare_exchange(current, new, success, failure)
            }

            $(
                #[inline]
                pub(crate) fn $arith(&self, value: $value, order: Ordering) -> $value {
                    self.0.$arith(value, order)
                }
            )*
        }
    };
}

atomic!(AtomicBool, bool);
atomic!(AtomicU32, u32, fetch_add, fetch_sub);
atomic!(AtomicU64, u64, fetch_add, fetch_sub, fetch_max);
atomic!(AtomicUsize, usize, fetch_add, fetch_sub);

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
pub(crate) struct EpochGuard<T>(arc_swap::Guard<std::sync::Arc<T>>);

impl<T> std::ops::Deref for EpochGuard<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> EpochCell<T> {
    pub(crate) fn new(value: Arc<T>) -> Self {
        Self(arc_swap::ArcSwap::new(value.0))
    }

    /// A short-lived view; never keep it across I/O (use [`EpochCell::load_full`]).
    pub(crate) fn load(&self) -> EpochGuard<T> {
        EpochGuard(self.0.load())
    }

    pub(crate) fn load_full(&self) -> Arc<T> {
        Arc(self.0.load_full())
    }

    /// Replaces the value with `f(current)`. `f` may run more than once, so it must not
    /// do expensive work: build what it installs before calling this.
    pub(crate) fn rcu(&self, mut f: impl FnMut(&Arc<T>) -> Arc<T>) -> Arc<T> {
        // A clone of the current `Arc` per attempt: publishes are rare (rotations, seals, merges).
        Arc(self.0.rcu(|current| f(&Arc(current.clone())).0))
    }
}
