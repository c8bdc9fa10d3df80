//! Where a graph's nodes live: chunks that are made as the graph grows and never move.
//!
//! Node `n` is one block: the 8-bit code of its vector (`code_len` bytes, plain bytes written
//! once before the node is published), then [`WORDS`] header words and `degree` level-0 link
//! slots, all atomic `u32`s (links change while readers walk them). Chunk `c` holds
//! `FIRST << c` nodes, so a graph of any size wastes at most half of its last chunk, and a
//! node's address is two shifts away from its number. The chunk table has a fixed length, so
//! readers never see it grow: a chunk is published once through its `OnceLock`.
//!
//! Natively a chunk is one anonymous mapping, advised for huge pages (a walk touches pages all
//! over the graph), with blocks aligned to 64 bytes. Under loom the codes are cells and the
//! words loom atomics, so that the model checker sees every access.
//!
//! The upper levels (nodes above level 0, about one in `M`) live in [`UpperStore`], the same
//! way: a node's `UPPER` word points at its run there, `[levels, links of level 1, of level 2,
//! ...]`.

#[cfg(vecindex_loom)]
use crate::sync::UnsafeCell;
use crate::sync::{AtomicU32, OnceLock, Ordering};

/// Header words of a block: the squared length of the decoded vector (`f32` bits; 0 for inner
/// product), the caller's label, where the node's upper levels start in [`UpperStore`]
/// ([`NONE`] for a level-0 node), the next node that repeats its code ([`NONE`] at the end of
/// the list), and how many level-0 links it has.
pub const SQUARED: usize = 0;
pub const LABEL: usize = 1;
pub const UPPER: usize = 2;
pub const ALIAS: usize = 3;
pub const COUNT: usize = 4;
pub const WORDS: usize = 5;

/// "No node" in a link slot or header word.
pub const NONE: u32 = u32::MAX;

/// Nodes in the first chunk; chunk `c` holds `FIRST << c`. Under loom, two: the model checker
/// tracks every atomic, and a model with thousands of them explores nothing.
#[cfg(not(vecindex_loom))]
const FIRST_BITS: u32 = 10;
#[cfg(vecindex_loom)]
const FIRST_BITS: u32 = 1;
const FIRST: usize = 1 << FIRST_BITS;
/// Enough chunks for every node number below `u32::MAX >> 1`.
const CHUNKS: usize = (32 - FIRST_BITS) as usize;

/// The chunk holding node `n`, and `n`'s place in it.
#[inline(always)]
fn locate(node: usize) -> (usize, usize) {
    let group = (node >> FIRST_BITS) + 1;
    let chunk = (usize::BITS - 1 - group.leading_zeros()) as usize;
    (chunk, node - ((FIRST << chunk) - FIRST))
}

#[cfg(not(vecindex_loom))]
struct Chunk {
    /// Owns the memory `base` points into.
    _map: memmap2::MmapMut,
    base: *mut u8,
}

// SAFETY: the mapping is owned by the chunk and freed with it. Its bytes are accessed in two
// ways only: header and link words as atomics (`AtomicU32` has the layout of `u32`, and zeroed
// memory is a valid one), and code bytes, which the one inserter writes before publishing the
// node and nobody writes after (see `NodeStore::write_code`).
#[cfg(not(vecindex_loom))]
unsafe impl Send for Chunk {}
// SAFETY: as above.
#[cfg(not(vecindex_loom))]
unsafe impl Sync for Chunk {}

#[cfg(vecindex_loom)]
struct Chunk {
    codes: Box<[UnsafeCell<u8>]>,
    words: Box<[AtomicU32]>,
}

// SAFETY: as for the native chunk: a node's code cells are written by the one inserter before
// the node is published and only read after (loom checks each access).
#[cfg(vecindex_loom)]
unsafe impl Send for Chunk {}
// SAFETY: as above.
#[cfg(vecindex_loom)]
unsafe impl Sync for Chunk {}

/// Blocks of nodes. See the module docs.
pub struct NodeStore {
    code_len: usize,
    words: usize,
    stride: usize,
    chunks: Box<[OnceLock<Chunk>]>,
}

const LINE: usize = 64;

impl NodeStore {
    /// A store for nodes with `code_len`-byte codes (a multiple of 16) and `degree` level-0
    /// links.
    pub fn new(code_len: usize, degree: usize) -> Self {
        let words = WORDS + degree;
        let stride = (code_len + 4 * words).div_ceil(LINE) * LINE;
        Self { code_len, words, stride, chunks: (0..CHUNKS).map(|_| OnceLock::new()).collect() }
    }

    pub fn degree(&self) -> usize {
        self.words - WORDS
    }

    pub fn code_len(&self) -> usize {
        self.code_len
    }

    /// Makes sure the chunk that holds `node` exists; false if memory for it could not be had.
    /// Only the inserter calls it, before it writes the node.
    pub fn reserve(&self, node: usize) -> bool {
        let (chunk, _) = locate(node);
        let Some(slot) = self.chunks.get(chunk) else { return false };
        if slot.get().is_some() {
            return true;
        }
        let Some(made) = self.make_chunk(FIRST << chunk) else { return false };
        // Only the inserter makes chunks, so nobody else can have set it meanwhile.
        let _ = slot.set(made);
        true
    }

    #[cfg(not(vecindex_loom))]
    fn make_chunk(&self, nodes: usize) -> Option<Chunk> {
        let mut map = memmap2::MmapMut::map_anon(nodes.checked_mul(self.stride)?).ok()?;
        #[cfg(target_os = "linux")]
        {
            // Advice only: without huge pages a walk is the same, with more TLB misses.
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        let base = map.as_mut_ptr();
        Some(Chunk { _map: map, base })
    }

    #[cfg(vecindex_loom)]
    fn make_chunk(&self, nodes: usize) -> Option<Chunk> {
        Some(Chunk {
            codes: (0..nodes * self.code_len).map(|_| UnsafeCell::new(0)).collect(),
            words: (0..nodes * self.words).map(|_| AtomicU32::new(0)).collect(),
        })
    }

    /// The chunk of a node that exists ([`NodeStore::reserve`] returned true for it).
    #[inline(always)]
    fn chunk(&self, node: usize) -> (&Chunk, usize) {
        let (chunk, index) = locate(node);
        let chunk = self.chunks[chunk].get().expect("a reserved node's chunk exists");
        (chunk, index)
    }

    /// Word `word` of `node`'s header and links (header words first, then the links).
    #[inline(always)]
    pub fn word(&self, node: u32, word: usize) -> &AtomicU32 {
        debug_assert!(word < self.words);
        let (chunk, index) = self.chunk(node as usize);
        #[cfg(not(vecindex_loom))]
        {
            let offset = index * self.stride + self.code_len + 4 * word;
            // SAFETY: in bounds of the chunk (`index` < its nodes, `word` < `words`), aligned to
            // 4 (blocks are 64-aligned, `code_len` a multiple of 16), zeroed at mapping (a valid
            // `AtomicU32`), accessed only as atomics (module docs), and alive as long as `self`.
            unsafe { &*chunk.base.add(offset).cast::<AtomicU32>() }
        }
        #[cfg(vecindex_loom)]
        &chunk.words[index * self.words + word]
    }

    /// `node`'s level-0 link slots, all of them (the first `COUNT` are in use).
    #[inline(always)]
    pub fn links(&self, node: u32) -> &[AtomicU32] {
        let (chunk, index) = self.chunk(node as usize);
        #[cfg(not(vecindex_loom))]
        {
            let offset = index * self.stride + self.code_len + 4 * WORDS;
            // SAFETY: as in `word`, for the `degree` words after the header.
            unsafe { std::slice::from_raw_parts(chunk.base.add(offset).cast::<AtomicU32>(), self.words - WORDS) }
        }
        #[cfg(vecindex_loom)]
        &chunk.words[index * self.words + WORDS..(index + 1) * self.words]
    }

    /// Writes `node`'s code.
    ///
    /// # Safety
    /// The caller is the inserter and `node` is not published yet: nobody reads its code.
    pub unsafe fn write_code(&self, node: u32, code: &[u8]) {
        let (chunk, index) = self.chunk(node as usize);
        let n = code.len().min(self.code_len);
        #[cfg(not(vecindex_loom))]
        // SAFETY: in bounds of the chunk; nobody else touches these bytes now (the caller's
        // contract), and the mapping is writable.
        unsafe {
            std::ptr::copy_nonoverlapping(code.as_ptr(), chunk.base.add(index * self.stride), n)
        };
        #[cfg(vecindex_loom)]
        for (cell, &byte) in chunk.codes[index * self.code_len..].iter().zip(&code[..n]) {
            // SAFETY: the caller's contract.
            cell.with_mut(|p| unsafe { *p = byte });
        }
    }

    /// `node`'s code. A slice into the chunk natively (no closure in between, so that a walk
    /// compiled for AVX2 inlines its kernel over it); a copy under loom, which checks each
    /// cell's accesses.
    ///
    /// # Safety
    /// `node` is published and this thread has synchronized with its publication (an `Acquire`
    /// load that saw the node's number, in the node count, the entry point or a link slot).
    #[inline(always)]
    pub unsafe fn code(&self, node: u32) -> impl std::ops::Deref<Target = [u8]> + '_ {
        let (chunk, index) = self.chunk(node as usize);
        #[cfg(not(vecindex_loom))]
        {
            // SAFETY: in bounds; written before the node was published and never after, and the
            // caller synchronized with the publication.
            unsafe { std::slice::from_raw_parts(chunk.base.add(index * self.stride), self.code_len) }
        }
        #[cfg(vecindex_loom)]
        {
            let cells = &chunk.codes[index * self.code_len..(index + 1) * self.code_len];
            // SAFETY: as above.
            cells.iter().map(|cell| cell.with(|p| unsafe { *p })).collect::<Box<[u8]>>()
        }
    }

    /// Asks the CPU to start fetching `node`'s code and header.
    #[inline(always)]
    pub fn prefetch_code(&self, node: u32) {
        #[cfg(not(vecindex_loom))]
        {
            let (chunk, index) = self.chunk(node as usize);
            let start = index * self.stride;
            let mut line = 0;
            while line < self.code_len + 4 * WORDS {
                // SAFETY: in bounds of the chunk's mapping.
                prefetch(unsafe { chunk.base.add(start + line) });
                line += LINE;
            }
        }
        #[cfg(vecindex_loom)]
        let _ = node;
    }

    /// Asks the CPU to start fetching `node`'s links.
    #[inline(always)]
    pub fn prefetch_links(&self, node: u32) {
        #[cfg(not(vecindex_loom))]
        {
            let (chunk, index) = self.chunk(node as usize);
            // SAFETY: in bounds of the chunk's mapping.
            prefetch(unsafe { chunk.base.add(index * self.stride + self.code_len) });
        }
        #[cfg(vecindex_loom)]
        let _ = node;
    }

    /// Bytes of the chunks made so far.
    pub fn bytes(&self) -> usize {
        let made = self.chunks.iter().enumerate().filter(|(_, c)| c.get().is_some());
        made.map(|(chunk, _)| (FIRST << chunk) * self.stride).sum()
    }
}

/// The links above level 0: runs of words, made as the graph grows. See the module docs.
pub struct UpperStore {
    chunks: Box<[OnceLock<Box<[AtomicU32]>>]>,
}

impl Default for UpperStore {
    fn default() -> Self {
        Self { chunks: (0..CHUNKS).map(|_| OnceLock::new()).collect() }
    }
}

impl UpperStore {
    /// Makes sure words `start..start + len` exist; false if they cannot (too many). A run
    /// never straddles two chunks: the inserter moves `start` to the next chunk's first word
    /// when it would ([`UpperStore::place`]).
    pub fn reserve(&self, start: usize, len: usize) -> bool {
        let (chunk, index) = locate(start);
        let Some(slot) = self.chunks.get(chunk) else { return false };
        if index + len > FIRST << chunk {
            return false;
        }
        if slot.get().is_none() {
            let _ = slot.set((0..FIRST << chunk).map(|_| AtomicU32::new(NONE)).collect());
        }
        true
    }

    /// Where a run of `len` words goes if the next free word is `next`: there, or at the
    /// start of the first later chunk it fits in.
    pub fn place(next: usize, len: usize) -> usize {
        let (mut chunk, index) = locate(next);
        if index + len <= FIRST << chunk {
            return next;
        }
        chunk += 1;
        while len > FIRST << chunk && chunk + 1 < CHUNKS {
            chunk += 1;
        }
        (FIRST << chunk) - FIRST
    }

    /// Word `at` (reserved).
    #[inline(always)]
    pub fn word(&self, at: usize) -> &AtomicU32 {
        let (chunk, index) = locate(at);
        &self.chunks[chunk].get().expect("a reserved run's chunk exists")[index]
    }

    pub fn bytes(&self) -> usize {
        let made = self.chunks.iter().enumerate().filter(|(_, c)| c.get().is_some());
        made.map(|(chunk, _)| (FIRST << chunk) * 4).sum()
    }
}

/// Loads a link or header word. `Acquire`: a node number read from a slot was stored there
/// after the node was published, so this thread then sees the node's code and header.
#[inline(always)]
pub fn load(word: &AtomicU32) -> u32 {
    word.load(Ordering::Acquire)
}

/// A load by the inserter of a word only the inserter stores (`OWN`), or by anyone (`!OWN`,
/// [`load`]). Under loom the inserter's is an RMW that adds nothing: loom does not explore
/// schedules in which another thread's load lands after a store that followed a load of the
/// same atomic in one thread (docs/architecture.md), and the RMW reads what the load would,
/// since nobody else writes the word. Natively both are `Acquire` loads.
#[inline(always)]
pub fn read<const OWN: bool>(word: &AtomicU32) -> u32 {
    #[cfg(vecindex_loom)]
    if OWN {
        return word.fetch_add(0, Ordering::AcqRel);
    }
    load(word)
}

/// Loom's model keeps nodes in cells, not in a mapping: nothing to prefetch there.
#[cfg(not(vecindex_loom))]
#[inline(always)]
fn prefetch(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and reads nothing the program sees.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;

    #[test]
    fn chunks_double_and_every_node_has_one_place() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(FIRST - 1), (0, FIRST - 1));
        assert_eq!(locate(FIRST), (1, 0));
        assert_eq!(locate(3 * FIRST - 1), (1, 2 * FIRST - 1));
        assert_eq!(locate(3 * FIRST), (2, 0));
        let last = (u32::MAX >> 1) as usize;
        assert!(locate(last).0 < CHUNKS);
    }

    #[test]
    fn blocks_keep_codes_and_words_apart() {
        let store = NodeStore::new(16, 4);
        for node in [0u32, 1, 1500, 5000] {
            assert!(store.reserve(node as usize));
            // SAFETY: nobody reads these nodes.
            unsafe { store.write_code(node, &[node as u8; 16]) };
            store.word(node, LABEL).store(node + 7, Ordering::Release);
            store.links(node)[3].store(node + 9, Ordering::Release);
        }
        for node in [0u32, 1, 1500, 5000] {
            // SAFETY: written above on this thread.
            assert_eq!(&*unsafe { store.code(node) }, &[node as u8; 16][..]);
            assert_eq!(load(store.word(node, LABEL)), node + 7);
            assert_eq!(load(&store.links(node)[3]), node + 9);
        }
        let upper = UpperStore::default();
        let at = UpperStore::place(FIRST - 2, 5);
        assert_eq!(at, FIRST, "a run that would straddle two chunks starts the next one");
        assert!(upper.reserve(at, 5));
        assert_eq!(load(upper.word(at + 4)), NONE);
    }
}
