//! The only import of atomics, `Arc`, `UnsafeCell`, `OnceLock`, the epoch cell and the sharded
//! maps in the crate.
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

#[cfg(not(any(vecindex_loom, vecindex_shuttle)))]
mod imp {
    pub(crate) use dashmap::DashMap as ShardedMap;
    pub(crate) use dashmap::mapref::entry::Entry;
    pub(crate) use std::sync::OnceLock;
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
    pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

    pub(crate) use super::std_cell::UnsafeCell;

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

    /// Doubles the table of every shard of `map` that has less than an eighth of its room left,
    /// and returns how many it grew. See [`grow_ahead`](super::grow_ahead).
    pub(crate) fn grow_ahead<K: std::hash::Hash + Eq, V>(map: &ShardedMap<K, V>) -> usize {
        use std::hash::BuildHasher;
        let nearly_full =
            |len: usize, capacity: usize| capacity >= super::GROW_AHEAD_MIN && capacity - len <= capacity / 8;
        let hasher = map.hasher();
        let mut grown = 0;
        for shard in map.shards() {
            let (len, capacity) = {
                let table = shard.read();
                (table.len(), table.capacity())
            };
            if !nearly_full(len, capacity) {
                continue;
            }
            let mut table = shard.write();
            let (len, capacity) = (table.len(), table.capacity());
            if nearly_full(len, capacity) {
                // The same hash DashMap files each key under (its `hash_u64`).
                table.reserve(capacity, |(key, _)| hasher.hash_one(key));
                grown += 1;
            }
        }
        grown
    }
}

/// Under a model checker (loom, or shuttle for larger randomized scenarios): its primitives,
/// and the stand-ins below built on them.
#[cfg(any(vecindex_loom, vecindex_shuttle))]
mod imp {
    #[cfg(vecindex_loom)]
    pub(crate) use loom as model;
    #[cfg(all(vecindex_shuttle, not(vecindex_loom)))]
    pub(crate) use shuttle as model;

    pub(crate) use model::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
    pub(crate) use model::sync::{Arc, Mutex};

    #[cfg(vecindex_loom)]
    pub(crate) use loom::cell::UnsafeCell;
    // shuttle checks schedules, not data races: a plain cell.
    #[cfg(not(vecindex_loom))]
    pub(crate) use super::std_cell::UnsafeCell;

    pub(crate) use super::model_map::{Entry, ShardedMap};
    pub(crate) use super::model_once::OnceLock;

    pub(crate) fn spin_wait(_round: u32) {
        model::thread::yield_now();
    }

    /// A table's capacity is not part of what the models check: nothing to grow.
    pub(crate) fn grow_ahead<K, V>(_map: &ShardedMap<K, V>) -> usize {
        0
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
}

pub(crate) use imp::*;

// `grow_ahead`: growing a sharded map's tables off the write path.
//
// A DashMap shard is a hash table that doubles when it fills: the insert that finds it full
// rehashes every key of the shard into a table twice the size, while holding the shard's lock.
// With 64 shards and a few hundred thousand chunk ids that is a few thousand keys and a table of
// a few hundred KB of fresh memory, several hundred microseconds for the one writer that happens
// to fill it (and more in a virtual machine, where first touching memory is slow). The sealer
// calls `grow_ahead` on every map a few times a second, so the doubling usually happens on its
// thread while the shard still has room, and writers find it done. A writer that inserts into
// the shard meanwhile waits on its lock for the rest of the rehash, no longer than it would
// have taken itself; a burst of inserts faster than the sealer's polling still grows shards
// on the writer, as before.

/// Tables smaller than this grow in microseconds: leave them to the writers.
#[cfg(not(any(vecindex_loom, vecindex_shuttle)))]
const GROW_AHEAD_MIN: usize = 512;

/// Mirrors loom's `UnsafeCell` API so protocol code is written once.
#[cfg(not(vecindex_loom))]
mod std_cell {
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
}

/// Model stand-in for `std::sync::OnceLock` (see the module docs).
#[cfg(any(vecindex_loom, vecindex_shuttle))]
mod model_once {
    use super::imp::model::sync::atomic::{AtomicPtr, Ordering};
    use std::marker::PhantomData;

    pub(crate) struct OnceLock<T> {
        value: AtomicPtr<T>,
        /// Owns a `T`: Send and Sync only as `T` is.
        _owns: PhantomData<Box<T>>,
    }

    impl<T> OnceLock<T> {
        pub(crate) fn new() -> Self {
            Self { value: AtomicPtr::new(std::ptr::null_mut()), _owns: PhantomData }
        }

        pub(crate) fn get(&self) -> Option<&T> {
            // Acquire: pairs with the AcqRel exchange in `set`, so the value is fully written.
            let value = self.value.load(Ordering::Acquire);
            // SAFETY: a non-null pointer came from `Box::into_raw` in `set` and is freed only
            // in `drop`, which `&self` outlives; nobody mutates it after the exchange.
            unsafe { value.as_ref() }
        }

        pub(crate) fn set(&self, value: T) -> Result<(), T> {
            let boxed = Box::into_raw(Box::new(value));
            match self.value.compare_exchange(std::ptr::null_mut(), boxed, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => Ok(()),
                // SAFETY: the exchange failed, so `boxed` was never shared: we still own it.
                Err(_) => Err(*unsafe { Box::from_raw(boxed) }),
            }
        }
    }

    impl<T> Drop for OnceLock<T> {
        fn drop(&mut self) {
            let value = self.value.load(Ordering::Acquire);
            if !value.is_null() {
                // SAFETY: set once from `Box::into_raw`, and `&mut self` means no reader is left.
                drop(unsafe { Box::from_raw(value) });
            }
        }
    }
}

/// Model stand-in for `dashmap::DashMap`: the part of its API the crate uses, with one mutex per
/// key (see the module docs).
#[cfg(any(vecindex_loom, vecindex_shuttle))]
mod model_map {
    use std::borrow::Borrow;
    use std::collections::BTreeMap;

    use super::imp::model::sync::{Mutex, MutexGuard};

    type Cell<V> = Mutex<Option<V>>;

    pub(crate) struct ShardedMap<K, V> {
        /// Every key ever used, with its cell. Cells are boxed and never removed before the map
        /// is dropped, so a reference to one stays valid while the map lives. Ordered, so `len`
        /// and `iter` lock cells in the same order in every execution (a replayable schedule).
        cells: Mutex<BTreeMap<K, Box<Cell<V>>>>,
    }

    type Guard<'a, V> = MutexGuard<'a, Option<V>>;

    /// A read guard on one entry (DashMap's `Ref`).
    pub(crate) struct Ref<'a, V> {
        guard: Guard<'a, V>,
    }

    /// A write guard on one entry (DashMap's `RefMut`).
    pub(crate) struct RefMut<'a, V> {
        guard: Guard<'a, V>,
    }

    pub(crate) enum Entry<'a, V> {
        Occupied(OccupiedEntry<'a, V>),
        Vacant(VacantEntry<'a, V>),
    }

    pub(crate) struct OccupiedEntry<'a, V> {
        guard: Guard<'a, V>,
    }

    pub(crate) struct VacantEntry<'a, V> {
        guard: Guard<'a, V>,
    }

    /// One entry of a copy made by `iter`.
    pub(crate) struct Item<K, V> {
        key: K,
        value: V,
    }

    const HELD: &str = "an occupied entry holds a value while its guard is held";

    fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    impl<K: Ord + Clone, V> ShardedMap<K, V> {
        pub(crate) fn new() -> Self {
            Self { cells: Mutex::new(BTreeMap::new()) }
        }

        pub(crate) fn with_shard_amount(_shards: usize) -> Self {
            Self::new()
        }

        /// The cell of `key`, made if `create`.
        fn cell<Q>(&self, key: &Q, create: bool) -> Option<&Cell<V>>
        where
            K: Borrow<Q>,
            Q: Ord + ToOwned<Owned = K> + ?Sized,
        {
            let mut cells = lock(&self.cells);
            let cell: *const Cell<V> = match cells.get(key) {
                Some(cell) => &**cell,
                None if create => &**cells.entry(key.to_owned()).or_insert_with(|| Box::new(Mutex::new(None))),
                None => return None,
            };
            drop(cells);
            // SAFETY: the cell is boxed (its address survives the table growing) and stays in
            // the table until the map is dropped, which `&self` outlives.
            Some(unsafe { &*cell })
        }

        pub(crate) fn entry(&self, key: K) -> Entry<'_, V> {
            let guard = lock(self.cell(&key, true).expect("created"));
            match guard.is_some() {
                true => Entry::Occupied(OccupiedEntry { guard }),
                false => Entry::Vacant(VacantEntry { guard }),
            }
        }

        pub(crate) fn get<Q>(&self, key: &Q) -> Option<Ref<'_, V>>
        where
            K: Borrow<Q>,
            Q: Ord + ToOwned<Owned = K> + ?Sized,
        {
            let guard = lock(self.cell(key, false)?);
            guard.is_some().then_some(Ref { guard })
        }

        pub(crate) fn get_mut<Q>(&self, key: &Q) -> Option<RefMut<'_, V>>
        where
            K: Borrow<Q>,
            Q: Ord + ToOwned<Owned = K> + ?Sized,
        {
            let guard = lock(self.cell(key, false)?);
            guard.is_some().then_some(RefMut { guard })
        }

        pub(crate) fn insert(&self, key: K, value: V) -> Option<V> {
            lock(self.cell(&key, true).expect("created")).replace(value)
        }

        pub(crate) fn remove<Q>(&self, key: &Q) -> Option<(K, V)>
        where
            K: Borrow<Q>,
            Q: Ord + ToOwned<Owned = K> + ?Sized,
        {
            let value = lock(self.cell(key, false)?).take()?;
            Some((key.to_owned(), value))
        }

        pub(crate) fn remove_if<Q>(&self, key: &Q, f: impl FnOnce(&K, &V) -> bool) -> Option<(K, V)>
        where
            K: Borrow<Q>,
            Q: Ord + ToOwned<Owned = K> + ?Sized,
        {
            let mut guard = lock(self.cell(key, false)?);
            let owned = key.to_owned();
            if guard.as_ref().is_some_and(|v| f(&owned, v)) { guard.take().map(|v| (owned, v)) } else { None }
        }

        pub(crate) fn contains_key<Q>(&self, key: &Q) -> bool
        where
            K: Borrow<Q>,
            Q: Ord + ToOwned<Owned = K> + ?Sized,
        {
            self.cell(key, false).is_some_and(|cell| lock(cell).is_some())
        }

        /// The cells, each locked in turn (as DashMap reads one shard at a time).
        fn cells(&self) -> Vec<(K, &Cell<V>)> {
            let keys: Vec<K> = lock(&self.cells).keys().cloned().collect();
            keys.into_iter().filter_map(|k| Some((k.clone(), self.cell(&k, false)?))).collect()
        }

        pub(crate) fn len(&self) -> usize {
            self.cells().into_iter().filter(|(_, cell)| lock(cell).is_some()).count()
        }

        pub(crate) fn iter(&self) -> std::vec::IntoIter<Item<K, V>>
        where
            V: Clone,
        {
            let items: Vec<Item<K, V>> = self
                .cells()
                .into_iter()
                .filter_map(|(key, cell)| Some(Item { key, value: lock(cell).clone()? }))
                .collect();
            items.into_iter()
        }
    }

    impl<K: Ord + Clone, V> Default for ShardedMap<K, V> {
        fn default() -> Self {
            Self::new()
        }
    }

    impl<V> std::ops::Deref for Ref<'_, V> {
        type Target = V;

        fn deref(&self) -> &V {
            self.guard.as_ref().expect(HELD)
        }
    }

    impl<V> std::ops::Deref for RefMut<'_, V> {
        type Target = V;

        fn deref(&self) -> &V {
            self.guard.as_ref().expect(HELD)
        }
    }

    impl<V> std::ops::DerefMut for RefMut<'_, V> {
        fn deref_mut(&mut self) -> &mut V {
            self.guard.as_mut().expect(HELD)
        }
    }

    impl<K, V> Item<K, V> {
        pub(crate) fn key(&self) -> &K {
            &self.key
        }

        pub(crate) fn value(&self) -> &V {
            &self.value
        }
    }

    impl<'a, V> Entry<'a, V> {
        pub(crate) fn or_default(self) -> RefMut<'a, V>
        where
            V: Default,
        {
            self.or_insert(V::default())
        }

        pub(crate) fn or_insert(self, value: V) -> RefMut<'a, V> {
            match self {
                Entry::Occupied(o) => RefMut { guard: o.guard },
                Entry::Vacant(v) => v.insert(value),
            }
        }
    }

    impl<'a, V> OccupiedEntry<'a, V> {
        pub(crate) fn get(&self) -> &V {
            self.guard.as_ref().expect(HELD)
        }

        pub(crate) fn get_mut(&mut self) -> &mut V {
            self.guard.as_mut().expect(HELD)
        }

        pub(crate) fn remove(mut self) -> V {
            self.guard.take().expect(HELD)
        }
    }

    impl<'a, V> VacantEntry<'a, V> {
        pub(crate) fn insert(mut self, value: V) -> RefMut<'a, V> {
            *self.guard = Some(value);
            RefMut { guard: self.guard }
        }

        pub(crate) fn insert_entry(mut self, value: V) -> OccupiedEntry<'a, V> {
            *self.guard = Some(value);
            OccupiedEntry { guard: self.guard }
        }
    }
}

#[cfg(all(test, not(any(vecindex_loom, vecindex_shuttle))))]
mod tests {
    use super::*;

    fn capacities(map: &ShardedMap<String, u32>) -> Vec<usize> {
        map.shards().iter().map(|shard| shard.read().capacity()).collect()
    }

    #[test]
    fn grow_ahead_doubles_only_nearly_full_shards_and_keeps_every_entry() {
        let map: ShardedMap<String, u32> = ShardedMap::with_shard_amount(2);
        assert_eq!(grow_ahead(&map), 0, "empty tables are left to the writers");
        // Fill until some shard has less than an eighth of its room left.
        let mut n = 0u32;
        while !capacities(&map)
            .iter()
            .zip(map.shards())
            .any(|(&capacity, shard)| capacity >= GROW_AHEAD_MIN && capacity - shard.read().len() <= capacity / 8)
        {
            map.insert(format!("key{n}"), n);
            n += 1;
        }
        let before = capacities(&map);
        let grown = grow_ahead(&map);
        let after = capacities(&map);
        assert!(grown >= 1);
        let doubled = before.iter().zip(&after).filter(|(b, a)| **a >= 2 * **b).count();
        assert_eq!(doubled, grown, "before {before:?}, after {after:?}");
        assert_eq!(grow_ahead(&map), 0, "nothing is nearly full any more");
        assert_eq!(map.len(), n as usize);
        for i in 0..n {
            assert_eq!(map.get(&format!("key{i}")).map(|v| *v), Some(i), "key{i} is found under its hash");
        }
        // The grown shards have room: inserting more rehashes none of them on the writer.
        let grown_shards: Vec<usize> = (0..before.len()).filter(|&i| after[i] >= 2 * before[i]).collect();
        for i in n..n + 64 {
            map.insert(format!("key{i}"), i);
        }
        let later = capacities(&map);
        for i in grown_shards {
            assert_eq!(later[i], after[i]);
        }
    }
}
