//! The tombstones file of a snapshot: for each segment, the rows deleted by operations below the
//! snapshot's seq, and those operations' seqs.
//!
//! Rewritten by every persist that changed it (its name is its checksum), small: 12 bytes per
//! deleted row, and the merge policy keeps deleted rows under a fifth of a segment.

use std::collections::BTreeMap;
use std::path::Path;

use rkyv::rancor;

use crate::error::{Error, Result};
use crate::seq::SeqNo;
use crate::storage::format::{self, FileKind, FileRef};

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct StoredDeletes {
    pub segment: u64,
    /// Row numbers, ascending.
    pub rows: Vec<u32>,
    /// The seq of the operation that deleted each row.
    pub seqs: Vec<u64>,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct StoredTombstones {
    pub segments: Vec<StoredDeletes>,
}

/// Deletes by segment id: (row, seq) pairs.
pub type Deletes = BTreeMap<u64, Vec<(u32, SeqNo)>>;

/// The tombstones file image for `deletes`. Its header's seq is one past the newest delete:
/// like every header, it follows from the body, so a file named by its body's checksum is the
/// same file whichever snapshot writes it.
pub fn encode(dim: usize, deletes: &Deletes) -> Vec<u8> {
    let stored = StoredTombstones {
        segments: deletes
            .iter()
            .filter(|(_, rows)| !rows.is_empty())
            .map(|(&segment, rows)| StoredDeletes {
                segment,
                rows: rows.iter().map(|&(row, _)| row).collect(),
                seqs: rows.iter().map(|&(_, seq)| seq).collect(),
            })
            .collect(),
    };
    let newest = stored.segments.iter().flat_map(|s| s.seqs.iter().copied()).max().unwrap_or(0);
    let body = rkyv::to_bytes::<rancor::Panic>(&stored).unwrap_or_else(|never| match never {});
    format::image(FileKind::Tombstones, dim as u32, 0, newest + 1, &body).1.to_vec()
}

/// Checks and reads a tombstones file of the snapshot at `seq`: every delete must be below it.
pub fn decode(path: &Path, bytes: &[u8], expected: FileRef, seq: SeqNo) -> Result<Deletes> {
    let corrupt = |reason: String| Error::corrupt(path, reason);
    let (header, body) = format::check(path, bytes, FileKind::Tombstones, Some(expected))?;
    if header.seq > seq {
        return Err(corrupt(format!("holds deletes up to seq {}, after the snapshot's {seq}", header.seq)));
    }
    let body = format::aligned(body);
    let stored = rkyv::from_bytes::<StoredTombstones, rancor::Error>(&body)
        .map_err(|e| corrupt(format!("invalid tombstones archive: {e}")))?;
    let mut deletes = Deletes::new();
    for segment in stored.segments {
        if segment.rows.len() != segment.seqs.len() {
            return Err(corrupt(format!("segment {}: row and seq columns differ in length", segment.segment)));
        }
        if let Some(&bad) = segment.seqs.iter().find(|&&s| s >= seq) {
            return Err(corrupt(format!("segment {}: a delete at seq {bad}, after the snapshot", segment.segment)));
        }
        if segment.seqs.iter().any(|&s| s >= header.seq) {
            return Err(corrupt(format!("segment {}: a delete newer than the header says", segment.segment)));
        }
        let rows = segment.rows.into_iter().zip(segment.seqs).collect();
        if deletes.insert(segment.segment, rows).is_some() {
            return Err(corrupt(format!("segment {} listed twice", segment.segment)));
        }
    }
    Ok(deletes)
}
