//! Rows, the data every other layer moves: a head row's metadata ([`RowMeta`]), a sealed
//! segment's rows in their file format, read in place ([`SealedRows`]), a row seen from outside
//! its container ([`RowRef`]), the seq-stamped deletes shared by a head and the segment sealed
//! from it ([`tombstones`]).

mod legacy;
mod meta;
mod row;
mod sealed;
pub mod tombstones;

pub(crate) use legacy::open as open_rows;
pub use meta::RowMeta;
pub(crate) use row::{RowHandle, RowRef};
pub(crate) use sealed::{ArchivedStoredRow, SealedRows};
pub use tombstones::Tombstones;
