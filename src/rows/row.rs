//! A stored row seen from outside its container: [`RowRef`] borrows one, [`RowHandle`] keeps
//! one alive (a search hit not materialized yet).
//!
//! Rows live in two forms: in a head, as an `Arc<RowMeta>` per row; in a sealed segment, in the
//! segment's rows file, read in place (owned bytes after sealing, a mapping after open). Code
//! that reads rows (search, filters, persist, the id maps) goes through these two types and so
//! never copies a sealed row to look at it.

use crate::chunk::{Chunk, Metadata};
use crate::metadata::{Fields, Value, ValueRef};
use crate::rows::RowMeta;
use crate::rows::{ArchivedStoredRow, SealedRows};
use crate::seq::SeqNo;
use crate::sync::Arc;

/// A borrowed row.
#[derive(Clone, Copy)]
pub enum RowRef<'a> {
    /// A head row (or a row of the baseline index).
    Owned(&'a Arc<RowMeta>),
    /// Row `index` of a sealed segment's rows file.
    Sealed { rows: &'a Arc<SealedRows>, index: u32, row: &'a ArchivedStoredRow },
}

impl<'a> RowRef<'a> {
    /// Row `index` of `rows`, if it exists.
    pub fn sealed(rows: &'a Arc<SealedRows>, index: usize) -> Option<Self> {
        let row = rows.row(index)?;
        Some(RowRef::Sealed { rows, index: u32::try_from(index).ok()?, row })
    }

    pub fn chunk_id(self) -> &'a str {
        match self {
            RowRef::Owned(meta) => &meta.chunk_id,
            RowRef::Sealed { row, .. } => row.chunk_id.as_str(),
        }
    }

    pub fn doc_id(self) -> &'a str {
        match self {
            RowRef::Owned(meta) => &meta.doc_id,
            RowRef::Sealed { row, .. } => row.doc_id.as_str(),
        }
    }

    pub fn text(self) -> &'a str {
        match self {
            RowRef::Owned(meta) => &meta.text,
            RowRef::Sealed { row, .. } => row.text.as_str(),
        }
    }

    /// The seq of the call that added the row.
    #[inline]
    pub fn add_seq(self) -> SeqNo {
        match self {
            RowRef::Owned(meta) => meta.add_seq,
            RowRef::Sealed { row, .. } => row.add_seq.to_native(),
        }
    }

    pub fn add_index(self) -> u32 {
        match self {
            RowRef::Owned(meta) => meta.add_index,
            RowRef::Sealed { row, .. } => row.add_index.to_native(),
        }
    }

    /// The value of metadata `key`.
    pub fn metadata_value(self, key: &str) -> Option<ValueRef<'a>> {
        match self {
            RowRef::Owned(meta) => meta.metadata.get(key).map(Value::as_ref),
            RowRef::Sealed { row, .. } => {
                // Sorted by key (as a `Metadata` map iterates).
                let at = row.metadata.binary_search_by(|pair| pair.key.as_str().cmp(key)).ok()?;
                Some(row.metadata[at].value.as_value_ref())
            }
        }
    }

    /// Every metadata entry, in key order.
    pub fn metadata_pairs(self) -> Box<dyn Iterator<Item = (&'a str, ValueRef<'a>)> + 'a> {
        match self {
            RowRef::Owned(meta) => Box::new(meta.metadata.iter().map(|(k, v)| (k.as_str(), v.as_ref()))),
            RowRef::Sealed { row, .. } => {
                Box::new(row.metadata.iter().map(|p| (p.key.as_str(), p.value.as_value_ref())))
            }
        }
    }

    pub fn metadata(self) -> Metadata {
        self.metadata_pairs().map(|(k, v)| (k.to_owned(), v.to_value())).collect()
    }

    /// An owned copy of everything but the vector.
    pub fn to_meta(self) -> RowMeta {
        match self {
            RowRef::Owned(meta) => RowMeta::clone(meta),
            RowRef::Sealed { .. } => RowMeta {
                chunk_id: self.chunk_id().to_owned(),
                doc_id: self.doc_id().to_owned(),
                text: self.text().to_owned(),
                metadata: self.metadata(),
                add_seq: self.add_seq(),
                add_index: self.add_index(),
            },
        }
    }

    /// The chunk, with `vector` (the row's vector as stored).
    pub fn to_chunk(self, vector: &[f32]) -> Chunk {
        Chunk {
            chunk_id: self.chunk_id().to_owned(),
            doc_id: self.doc_id().to_owned(),
            vector: vector.to_vec(),
            text: self.text().to_owned(),
            metadata: self.metadata(),
        }
    }

    /// Keeps the row alive without copying it.
    pub fn to_handle(self) -> RowHandle {
        match self {
            RowRef::Owned(meta) => RowHandle::Owned(meta.clone()),
            RowRef::Sealed { rows, index, .. } => RowHandle::Sealed(rows.clone(), index),
        }
    }
}

impl<'a> Fields<'a> for RowRef<'a> {
    fn doc_id(self) -> &'a str {
        RowRef::doc_id(self)
    }

    fn field(self, key: &str) -> Option<ValueRef<'a>> {
        self.metadata_value(key)
    }
}

/// An owned reference to a row.
pub enum RowHandle {
    Owned(Arc<RowMeta>),
    Sealed(Arc<SealedRows>, u32),
}

impl RowHandle {
    pub fn get(&self) -> RowRef<'_> {
        match self {
            RowHandle::Owned(meta) => RowRef::Owned(meta),
            RowHandle::Sealed(rows, index) => {
                // A handle is only made from a row that exists, and rows files never shrink.
                let row = rows.row(*index as usize).expect("a handle names an existing row");
                RowRef::Sealed { rows, index: *index, row }
            }
        }
    }
}
