//! The scratch state of one walk: the candidate pool and this thread's visited table.

use std::cell::RefCell;

/// The `ef` nearest nodes found so far, nearest first, each marked once it has been expanded.
///
/// A sorted array rather than two heaps: `ef` is at most a few hundred, an insert is a binary
/// search and a short move within one or two cache lines, and the next node to expand is the
/// first unexpanded one, found by a cursor that only moves back when an insert lands before it.
pub struct Pool {
    /// (distance, node | EXPANDED).
    entries: Vec<(f32, u32)>,
    capacity: usize,
    cursor: usize,
}

const EXPANDED: u32 = 1 << 31;

/// Nodes a graph may hold: the top bit of a pool entry marks it expanded.
pub const MAX_NODES: usize = EXPANDED as usize;

impl Pool {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self { entries: Vec::with_capacity(capacity + 1), capacity, cursor: 0 }
    }

    /// Whether a node at `distance` would be kept.
    #[inline]
    pub fn admits(&self, distance: f32) -> bool {
        self.entries.len() < self.capacity || self.entries.last().is_some_and(|&(worst, _)| distance < worst)
    }

    /// Keeps `node` if it is among the nearest `capacity` so far.
    #[inline]
    pub fn insert(&mut self, distance: f32, node: u32) {
        if !self.admits(distance) {
            return;
        }
        let at = self.entries.partition_point(|&(d, _)| d <= distance);
        self.entries.insert(at, (distance, node));
        self.entries.truncate(self.capacity);
        self.cursor = self.cursor.min(at);
    }

    /// The nearest node not yet expanded, now marked expanded; `None` once every kept node is.
    #[inline]
    pub fn next_to_expand(&mut self) -> Option<u32> {
        while let Some(entry) = self.entries.get_mut(self.cursor) {
            self.cursor += 1;
            if entry.1 & EXPANDED == 0 {
                let node = entry.1;
                entry.1 |= EXPANDED;
                return Some(node);
            }
        }
        None
    }

    /// The node that the next [`Pool::next_to_expand`] would return, without marking it.
    #[inline]
    pub fn peek_next(&self) -> Option<u32> {
        self.entries[self.cursor.min(self.entries.len())..]
            .iter()
            .find(|entry| entry.1 & EXPANDED == 0)
            .map(|entry| entry.1)
    }

    /// The kept nodes and their distances, nearest first.
    pub fn drain_into(&mut self, out: &mut Vec<(usize, f32)>) {
        out.extend(self.entries.drain(..).map(|(d, node)| ((node & !EXPANDED) as usize, d)));
        self.cursor = 0;
    }
}

/// Marks the nodes one walk has reached: a tag per node, equal to the walk's own tag when
/// reached, so that a new walk starts clean by taking the next tag, and the table is cleared
/// only when the tags wrap (once every 65 535 walks). One table per thread, grown to the
/// largest graph the thread has walked, reused across walks and graphs.
#[derive(Default)]
pub struct Visited {
    tags: Vec<u16>,
    current: u16,
}

impl Visited {
    /// Starts a walk over a graph of `nodes` nodes.
    pub fn begin(&mut self, nodes: usize) {
        if self.tags.len() < nodes {
            self.tags.resize(nodes, 0);
        }
        self.current = self.current.wrapping_add(1);
        if self.current == 0 {
            self.tags.fill(0);
            self.current = 1;
        }
    }

    /// [`Visited::insert`] for a node that may have been published after the walk began, past
    /// the end of the table.
    #[inline]
    pub fn insert_or_grow(&mut self, node: u32) -> bool {
        if node as usize >= self.tags.len() {
            let len = (node as usize + 1).max(self.tags.len() + self.tags.len() / 2);
            self.tags.resize(len, 0);
        }
        self.insert(node)
    }

    /// Marks `node` reached; true if it was not before in this walk.
    #[inline]
    pub fn insert(&mut self, node: u32) -> bool {
        let tag = &mut self.tags[node as usize];
        let fresh = *tag != self.current;
        *tag = self.current;
        fresh
    }
}

/// The scratch one walk needs, kept per thread between walks.
#[derive(Default)]
pub struct Scratch {
    pub visited: Visited,
    /// The links of the node being expanded.
    pub links: Vec<u32>,
    /// The unvisited ones among them.
    pub fresh: Vec<u32>,
    /// The nodes a walk found, before they are turned into labels.
    pub nodes: Vec<(usize, f32)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Scratch {
    /// This thread's scratch. Taken out of the thread's slot rather than borrowed in a
    /// closure, so that the walk stays in the caller's body (compiled for its instruction set).
    /// A walk that never hands it back (a panic) only costs the next walk a fresh table.
    pub fn take() -> Self {
        SCRATCH.with(|slot| slot.try_borrow_mut().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default())
    }

    /// Hands the scratch back to this thread for its next walk.
    pub fn give_back(self) {
        SCRATCH.with(|slot| {
            if let Ok(mut s) = slot.try_borrow_mut() {
                *s = self;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_keeps_the_nearest_and_expands_them_nearest_first() {
        let mut pool = Pool::new(3);
        for (d, node) in [(5.0, 5), (1.0, 1), (3.0, 3), (4.0, 4)] {
            pool.insert(d, node);
        }
        assert!(!pool.admits(4.0) && pool.admits(3.5));
        assert_eq!(pool.next_to_expand(), Some(1));
        pool.insert(0.5, 9); // lands before the cursor: expanded next
        assert_eq!(pool.peek_next(), Some(9));
        assert_eq!(pool.next_to_expand(), Some(9));
        assert_eq!(pool.next_to_expand(), Some(3));
        assert_eq!(pool.next_to_expand(), None);
        let mut out = Vec::new();
        pool.drain_into(&mut out);
        assert_eq!(out, [(9, 0.5), (1, 1.0), (3, 3.0)]);
    }

    #[test]
    fn visited_tables_start_clean_for_every_walk_through_the_wrap() {
        let mut visited = Visited::default();
        for walk in 0..70_000u32 {
            visited.begin(10);
            assert!(visited.insert(walk % 10), "walk {walk}");
            assert!(!visited.insert(walk % 10));
        }
    }
}
