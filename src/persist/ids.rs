//! The ids file beside a rows file (`.ids`): the chunk ids, document ids and add seqs of its
//! rows as an rkyv archive of [`StoredIds`], so that the documents of a damaged rows file can
//! still be named; `header.extra` holds the rows file's body checksum.

use std::path::Path;

use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::error::{Error, Result};
use crate::rows::SealedRows;
use crate::seq::SeqNo;
use crate::storage::format::{self, ALIGN, FileKind, FileRef, Image};

/// The ids file's archive: one entry per row of the rows file.
#[derive(rkyv::Archive, rkyv::Serialize)]
pub struct StoredIds {
    pub chunk_ids: Vec<String>,
    pub doc_ids: Vec<String>,
    pub add_seqs: Vec<u64>,
}

/// The ids file for `rows`: its header and whole image.
pub fn encode(sealed: &SealedRows) -> AlignedVec<ALIGN> {
    let rows = sealed.rows();
    let ids = StoredIds {
        chunk_ids: rows.iter().map(|r| r.chunk_id.as_str().to_owned()).collect(),
        doc_ids: rows.iter().map(|r| r.doc_id.as_str().to_owned()).collect(),
        add_seqs: rows.iter().map(|r| r.add_seq.to_native()).collect(),
    };
    let archive = rkyv::to_bytes::<rancor::Panic>(&ids).unwrap_or_else(|never| match never {});
    let mut image = Image::start(archive.len());
    image.body().extend_from_slice(&archive);
    let seq = sealed.max_add_seq() + 1;
    image.finish(FileKind::Ids, sealed.dim() as u32, 0, seq, sealed.checksum()).1
}

/// What an ids file says about the rows of a segment whose rows file is lost.
pub struct IdsFile {
    pub chunk_ids: Vec<String>,
    pub doc_ids: Vec<String>,
    pub add_seqs: Vec<SeqNo>,
}

impl IdsFile {
    /// Checks and reads an ids file that belongs to the rows file with body checksum `rows`.
    pub fn decode(path: &Path, bytes: &[u8], expected: FileRef, rows: u64) -> Result<Self> {
        let corrupt = |reason: String| Error::corrupt(path, reason);
        let (header, body) = format::check(path, bytes, FileKind::Ids, Some(expected))?;
        if header.extra != rows {
            return Err(corrupt("belongs to another rows file".into()));
        }
        let body = format::aligned(body);
        let ids = rkyv::access::<ArchivedStoredIds, rancor::Error>(&body)
            .map_err(|e| corrupt(format!("invalid ids archive: {e}")))?;
        let n = ids.chunk_ids.len();
        if ids.doc_ids.len() != n || ids.add_seqs.len() != n {
            return Err(corrupt("id columns of different lengths".into()));
        }
        Ok(Self {
            chunk_ids: ids.chunk_ids.iter().map(|s| s.as_str().to_owned()).collect(),
            doc_ids: ids.doc_ids.iter().map(|s| s.as_str().to_owned()).collect(),
            add_seqs: ids.add_seqs.iter().map(|s| s.to_native()).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size docs/format.md gives for the archived type (rkyv 0.8, pointer_width_64).
    #[test]
    fn archived_layout_is_the_documented_one() {
        assert_eq!(std::mem::size_of::<ArchivedStoredIds>(), 48);
    }
}
