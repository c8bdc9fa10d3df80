//! `grow_ahead`: growing a sharded map's tables off the write path.
//!
//! A DashMap shard is a hash table that doubles when it fills: the insert that finds it full
//! rehashes every key of the shard into a table twice the size, while holding the shard's lock.
//! With 64 shards and a few hundred thousand chunk ids that is a few thousand keys and a table of
//! a few hundred KB of fresh memory, several hundred microseconds for the one writer that happens
//! to fill it (and more in a virtual machine, where first touching memory is slow). The sealer
//! calls `grow_ahead` on every map a few times a second, so the doubling usually happens on its
//! thread while the shard still has room, and writers find it done. A writer that inserts into
//! the shard meanwhile waits on its lock for the rest of the rehash, no longer than it would
//! have taken itself; a burst of inserts faster than the sealer's polling still grows shards
//! on the writer, as before.

use crate::sync::ShardedMap;

/// Tables smaller than this grow in microseconds: leave them to the writers.
#[cfg(not(any(vecindex_loom, vecindex_shuttle)))]
const GROW_AHEAD_MIN: usize = 512;

/// Doubles the table of every shard of `map` that has less than an eighth of its room left,
/// and returns how many it grew (see the module docs).
#[cfg(not(any(vecindex_loom, vecindex_shuttle)))]
pub(crate) fn grow_ahead<K: std::hash::Hash + Eq, V>(map: &ShardedMap<K, V>) -> usize {
    use std::hash::BuildHasher;
    let nearly_full = |len: usize, capacity: usize| capacity >= GROW_AHEAD_MIN && capacity - len <= capacity / 8;
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

/// A table's capacity is not part of what the models check: nothing to grow.
#[cfg(any(vecindex_loom, vecindex_shuttle))]
pub(crate) fn grow_ahead<K, V>(_map: &ShardedMap<K, V>) -> usize {
    0
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
