//! Where rows live: the ids every layer passes around, in a module that imports nothing.

/// Identifies a head and the segment sealed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId(pub u64);

/// Where a row lives: which head or segment, and its index there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RowLoc {
    pub segment: SegmentId,
    pub row: u32,
}
