//! Sealed segments: immutable blocks of rows, searched with `&self` from any number of threads.
//!
//! A head, once full and settled, is sealed into a segment with the *same* [`SegmentId`], the
//! same row numbers and the same [`Tombstones`](crate::tombstones::Tombstones), so a location
//! `(segment, row)` stays valid across sealing and a delete can land on either.

pub mod exact;

use crate::chunk::RowMeta;
use crate::head::Head;
use crate::seq::ReadView;
use crate::sync::Arc;
use crate::tombstones::Tombstones;

pub use exact::ExactSegment;

/// Identifies a head and the segment sealed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId(pub u64);

/// Where a row lives: which head or segment, and its index there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RowLoc {
    pub segment: SegmentId,
    pub row: u32,
}

/// Either kind of row container an epoch holds. Dispatch happens once per container, not per row.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Head(&'a Head),
    Sealed(&'a ExactSegment),
}

impl<'a> Source<'a> {
    pub fn id(self) -> SegmentId {
        match self {
            Source::Head(h) => h.id(),
            Source::Sealed(s) => s.id(),
        }
    }

    pub fn tombstones(self) -> &'a Arc<Tombstones> {
        match self {
            Source::Head(h) => h.tombstones(),
            Source::Sealed(s) => s.tombstones(),
        }
    }

    /// Rows in this container (published or not, live or not).
    pub fn len(self) -> usize {
        match self {
            Source::Head(h) => h.len(),
            Source::Sealed(s) => s.len(),
        }
    }

    /// Runs `f` on a row's metadata and vector, if the row exists (and, in a head, is published).
    pub fn with_row<R>(self, row: usize, f: impl FnOnce(&Arc<RowMeta>, &[f32]) -> R) -> Option<R> {
        match self {
            Source::Head(h) => h.with_row(row, |r| f(&r.meta, &r.vector)),
            Source::Sealed(s) => s.row(row).map(|(meta, vector)| f(meta, vector)),
        }
    }

    /// Calls `f` with every row that is visible and live in `view`.
    pub fn for_each_visible(self, view: &ReadView, f: impl FnMut(usize, &Arc<RowMeta>, &[f32])) {
        match self {
            Source::Head(h) => h.for_each_visible(view, f),
            Source::Sealed(s) => s.for_each_visible(view, f),
        }
    }
}
