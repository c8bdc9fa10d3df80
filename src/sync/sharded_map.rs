//! Model stand-in for `dashmap::DashMap`: the part of its API the crate uses, with one mutex per
//! key (see the module docs).

use std::borrow::Borrow;
use std::collections::BTreeMap;

use super::model::checker::sync::{Mutex, MutexGuard};

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
        let items: Vec<Item<K, V>> =
            self.cells().into_iter().filter_map(|(key, cell)| Some(Item { key, value: lock(cell).clone()? })).collect();
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
