//! Sequence numbers: the order of every mutation.
//!
//! Every mutating call (add_chunk, add_chunks, add_document, remove_document, remove_chunk)
//! takes exactly one [`SeqNo`] from the
//! [`Sequencer`](crate::seq::Sequencer). Rows carry the seq of the call that added them,
//! tombstones the seq of the call that deleted them. A [`ReadView`] decides what a search or a
//! persist sees by comparing those stamps, which is what makes a multi-chunk call all-or-nothing:
//! all of its rows and tombstones share one seq.

mod sequencer;

pub use sequencer::Sequencer;

/// The position of a mutation in the index's history. Starts at 1; 0 is "before everything".
pub type SeqNo = u64;

/// The set of operations a reader sees: every operation with a seq below `upper`, except those
/// still in flight when the view was taken.
///
/// A search takes a view without waiting ([`Sequencer::view`](crate::seq::Sequencer::view)):
/// in-flight operations are left out as a whole. A persist takes a view after waiting for the
/// operations in flight below its seq ([`Sequencer::snapshot`](crate::seq::Sequencer::snapshot)),
/// so `in_flight` is empty and the view is exactly "every operation before `upper`".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadView {
    upper: SeqNo,
    in_flight: Vec<SeqNo>,
}

impl ReadView {
    pub(crate) fn new(upper: SeqNo, in_flight: Vec<SeqNo>) -> Self {
        Self { upper, in_flight }
    }

    /// A view of every operation before `upper`, for data that is known complete.
    pub fn up_to(upper: SeqNo) -> Self {
        Self::new(upper, Vec::new())
    }

    /// The first seq this view does not include.
    pub fn upper(&self) -> SeqNo {
        self.upper
    }

    /// Whether this view sees every operation below `horizon`. An epoch published by a merge
    /// has dropped rows deleted below its horizon; only views that cover it may read it.
    pub fn covers(&self, horizon: SeqNo) -> bool {
        self.upper >= horizon && self.in_flight.iter().all(|&seq| seq >= horizon)
    }

    /// Whether the operation stamped `seq` is visible in this view.
    #[inline]
    pub fn includes(&self, seq: SeqNo) -> bool {
        // `in_flight` is almost always empty; when not, it has at most one entry per writer.
        seq < self.upper && !self.in_flight.contains(&seq)
    }
}
