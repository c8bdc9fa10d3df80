//! A head row's metadata: everything of a stored chunk except its vector.

use crate::chunk::{Chunk, Metadata};
use crate::seq::SeqNo;

/// Everything of a stored chunk except its vector. Shared (`Arc`) between the head that wrote it,
/// the segment it is sealed into, and search hits.
#[derive(Clone, Debug, PartialEq)]
pub struct RowMeta {
    pub chunk_id: String,
    pub doc_id: String,
    pub text: String,
    pub metadata: Metadata,
    /// The seq of the call that added this row.
    pub add_seq: SeqNo,
    /// The row's position among the rows of that call: `(add_seq, add_index)` orders all rows
    /// the way they were added, wherever merges moved them.
    pub add_index: u32,
}

impl RowMeta {
    /// Splits a chunk into its row metadata (stamped `add_seq`) and its vector.
    pub(crate) fn from_chunk(chunk: Chunk, add_seq: SeqNo, add_index: u32) -> (Self, Vec<f32>) {
        let Chunk { chunk_id, doc_id, vector, text, metadata } = chunk;
        (Self { chunk_id, doc_id, text, metadata, add_seq, add_index }, vector)
    }

    /// The chunk again, with the vector as stored (normalized for cosine).
    pub(crate) fn to_chunk(&self, vector: &[f32]) -> Chunk {
        Chunk {
            chunk_id: self.chunk_id.clone(),
            doc_id: self.doc_id.clone(),
            vector: vector.to_vec(),
            text: self.text.clone(),
            metadata: self.metadata.clone(),
        }
    }
}
