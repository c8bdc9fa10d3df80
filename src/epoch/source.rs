//! Either kind of row container an epoch holds: a head or a sealed segment.

use crate::epoch::head::Head;
use crate::ids::SegmentId;
use crate::query::{SearchOptions, TopK};
use crate::rows::{RowRef, Tombstones};
use crate::segment::Segment;
use crate::seq::ReadView;
use crate::sync::Arc;

/// Either kind of row container an epoch holds. Dispatch happens once per container, not per row.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Head(&'a Head),
    Sealed(&'a Segment),
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

    /// Whether every row is visible in `view` (deleted or not): a sealed segment whose newest
    /// row the view includes. A head's rows may be unpublished: never.
    #[inline]
    pub fn all_added_in(self, view: &ReadView) -> bool {
        match self {
            Source::Head(_) => false,
            Source::Sealed(s) => view.covers(s.data().max_add_seq() + 1),
        }
    }

    /// Runs `f` on a row's metadata and vector, if the row exists (and, in a head, is published).
    pub fn with_row<R>(self, row: usize, f: impl FnOnce(RowRef<'_>, &[f32]) -> R) -> Option<R> {
        match self {
            Source::Head(h) => h.with_row(row, |meta, vector| f(RowRef::Owned(meta), vector)),
            Source::Sealed(s) => s.data().row(row).map(|(meta, vector)| f(meta, vector)),
        }
    }

    /// Calls `f` with every row that is visible and live in `view`.
    pub fn for_each_visible(self, view: &ReadView, f: impl FnMut(usize, RowRef<'_>, &[f32])) {
        match self {
            Source::Head(h) => h.for_each_visible(view, f),
            Source::Sealed(s) => s.data().for_each_visible(view, f),
        }
    }

    /// Offers the best rows of this container for `query` to `top`: through the FAISS index
    /// of an indexed segment, otherwise by scanning.
    pub fn search(self, query: &[f32], view: &ReadView, options: &SearchOptions, top: &mut TopK) {
        match self {
            Source::Sealed(segment) => {
                if !segment.search_indexed(query, view, options, top) {
                    segment.data().scan(query, view, options, top);
                }
            }
            Source::Head(head) => head.scan(query, view, options, top),
        }
    }

    /// Offers the best rows from row `first` on to `top`, by scanning.
    pub fn scan_from(self, first: usize, query: &[f32], view: &ReadView, options: &SearchOptions, top: &mut TopK) {
        match self {
            Source::Sealed(segment) => segment.data().scan_from(first, query, view, options, top),
            Source::Head(head) => head.scan_from(first, query, view, options, top),
        }
    }
}
