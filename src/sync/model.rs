//! Under a model checker (loom, or shuttle for larger randomized scenarios): its primitives,
//! and the stand-ins built on them (see the module docs of `sync`).

#[cfg(vecindex_loom)]
pub(crate) use loom as checker;
#[cfg(all(vecindex_shuttle, not(vecindex_loom)))]
pub(crate) use shuttle as checker;

pub(crate) use checker::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};
pub(crate) use checker::sync::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(vecindex_loom)]
pub(crate) use loom::cell::UnsafeCell;
// shuttle checks schedules, not data races: a plain cell.
#[cfg(not(vecindex_loom))]
pub(crate) use super::cell::UnsafeCell;

pub(crate) use super::once_lock::OnceLock;
pub(crate) use super::sharded_map::{Entry, ShardedMap};

pub(crate) use checker::thread::JoinHandle;

/// Starts a thread of the model (unnamed: the checkers name their own).
pub(crate) fn spawn(_name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<JoinHandle<()>> {
    Ok(checker::thread::spawn(f))
}

pub(crate) fn spin_wait(_round: u32) {
    checker::thread::yield_now();
}

/// Stand-in for `ArcSwap`: a model mutex around the current `Arc`. Loads and swaps are
/// linearizable, as they are with `ArcSwap`.
pub(crate) struct EpochCell<T>(Mutex<Arc<T>>);

pub(crate) type EpochGuard<T> = Arc<T>;

impl<T> EpochCell<T> {
    pub(crate) fn new(value: Arc<T>) -> Self {
        Self(Mutex::new(value))
    }

    pub(crate) fn load(&self) -> EpochGuard<T> {
        self.load_full()
    }

    pub(crate) fn load_full(&self) -> Arc<T> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub(crate) fn rcu(&self, mut f: impl FnMut(&Arc<T>) -> Arc<T>) -> Arc<T> {
        let mut current = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let next = f(&current);
        std::mem::replace(&mut *current, next)
    }
}
