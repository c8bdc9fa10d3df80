//! The snapshot file format.
//!
//! ```text
//! offset size  field
//!      0    8  magic  b"VECINDEX"
//!      8    4  format version (u32 LE) = 1
//!     12    4  dimension (u32 LE)
//!     16    4  metric (u32 LE: 0 cosine, 1 inner product, 2 L2)
//!     20    4  reserved, zero
//!     24    8  seq: the snapshot holds exactly the operations below it (u64 LE)
//!     32    8  body length in bytes (u64 LE)
//!     40    8  xxh3-64 of the body (u64 LE)
//!     48    8  xxh3-64 of bytes 0..48 (u64 LE)
//!     56    8  reserved, zero (keeps the body 16-byte aligned)
//!     64    .  body: an rkyv 0.8 archive of `Body` (little endian, aligned, 64-bit offsets)
//! ```
//!
//! Nothing in the body is looked at before both checksums match, and the archive is then
//! validated with bytecheck, so corrupt bytes give [`Error::Corrupt`], never a panic.

use std::path::Path;

use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::chunk::{Metadata, RowMeta};
use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::persist::Snapshot;
use crate::seq::SeqNo;
use crate::sync::Arc;

pub const MAGIC: &[u8; 8] = b"VECINDEX";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 64;

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct StoredRow {
    chunk_id: String,
    doc_id: String,
    text: String,
    metadata: Vec<(String, String)>,
    add_seq: u64,
    add_index: u32,
    vector: Vec<f32>,
}

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Body {
    rows: Vec<StoredRow>,
}

/// Header followed by the archived rows.
pub fn encode(dim: usize, metric: Metric, seq: SeqNo, rows: Vec<(Arc<RowMeta>, Vec<f32>)>) -> Result<Vec<u8>> {
    let body = Body {
        rows: rows
            .into_iter()
            .map(|(meta, vector)| StoredRow {
                chunk_id: meta.chunk_id.clone(),
                doc_id: meta.doc_id.clone(),
                text: meta.text.clone(),
                metadata: meta.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                add_seq: meta.add_seq,
                add_index: meta.add_index,
                vector,
            })
            .collect(),
    };
    let archived = rkyv::to_bytes::<rancor::Error>(&body)
        .map_err(|e| Error::InvalidConfig { reason: format!("cannot archive snapshot: {e}") })?;
    let mut out = Vec::with_capacity(HEADER_LEN + archived.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(dim as u32).to_le_bytes());
    out.extend_from_slice(&metric.code().to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(archived.len() as u64).to_le_bytes());
    out.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&archived).to_le_bytes());
    let header_sum = xxhash_rust::xxh3::xxh3_64(&out[..48]);
    out.extend_from_slice(&header_sum.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&archived);
    Ok(out)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Validates and decodes a snapshot file's bytes.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Snapshot> {
    let corrupt = |reason: String| Error::corrupt(path, reason);
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(corrupt("not a vecindex snapshot (bad magic or too short)".into()));
    }
    if xxhash_rust::xxh3::xxh3_64(&bytes[..48]) != u64_at(bytes, 48) {
        return Err(corrupt("header checksum mismatch".into()));
    }
    if u32_at(bytes, 20) != 0 || u64_at(bytes, 56) != 0 {
        return Err(corrupt("reserved header bytes are not zero".into()));
    }
    let version = u32_at(bytes, 8);
    if version != VERSION {
        return Err(corrupt(format!("format version {version}, this build reads {VERSION}")));
    }
    let dim = u32_at(bytes, 12) as usize;
    let metric = Metric::from_code(u32_at(bytes, 16)).ok_or_else(|| corrupt("unknown metric".into()))?;
    let seq = u64_at(bytes, 24);
    let body_len = u64_at(bytes, 32);
    let body = &bytes[HEADER_LEN..];
    if body.len() as u64 != body_len {
        return Err(corrupt(format!("body is {} bytes, header says {body_len}", body.len())));
    }
    if xxhash_rust::xxh3::xxh3_64(body) != u64_at(bytes, 40) {
        return Err(corrupt("body checksum mismatch".into()));
    }
    let mut aligned = AlignedVec::<16>::with_capacity(body.len());
    aligned.extend_from_slice(body);
    let decoded =
        rkyv::from_bytes::<Body, rancor::Error>(&aligned).map_err(|e| corrupt(format!("invalid archive: {e}")))?;
    let mut rows = Vec::with_capacity(decoded.rows.len());
    let mut ids = std::collections::HashSet::with_capacity(decoded.rows.len());
    for row in decoded.rows {
        if row.chunk_id.is_empty() || row.doc_id.is_empty() || !ids.insert(row.chunk_id.clone()) {
            return Err(corrupt(format!("chunk id {:?} is empty or appears twice", row.chunk_id)));
        }
        if row.vector.len() != dim {
            return Err(corrupt(format!("row {:?} has dimension {}", row.chunk_id, row.vector.len())));
        }
        if row.add_seq >= seq {
            return Err(corrupt(format!("row {:?} is newer than the snapshot", row.chunk_id)));
        }
        let metadata: Metadata = row.metadata.into_iter().collect();
        let meta = RowMeta {
            chunk_id: row.chunk_id,
            doc_id: row.doc_id,
            text: row.text,
            metadata,
            add_seq: row.add_seq,
            add_index: row.add_index,
        };
        rows.push((meta, row.vector));
    }
    Ok(Snapshot { dim, metric, seq, rows })
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let meta = RowMeta {
            chunk_id: "c".into(),
            doc_id: "d".into(),
            text: "t".into(),
            metadata: [("k".to_owned(), "v".to_owned())].into(),
            add_seq: 1,
            add_index: 0,
        };
        encode(2, Metric::Cosine, 2, vec![(Arc::new(meta), vec![1.0, 0.0])]).unwrap()
    }

    #[test]
    fn round_trip() {
        let snap = decode(Path::new("x"), &sample()).unwrap();
        assert_eq!((snap.dim, snap.metric, snap.seq, snap.rows.len()), (2, Metric::Cosine, 2, 1));
        assert_eq!(snap.rows[0].0.metadata["k"], "v");
    }

    #[test]
    fn every_flipped_byte_and_truncation_is_an_error() {
        let good = sample();
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            assert!(matches!(decode(Path::new("x"), &bad), Err(Error::Corrupt { .. })), "byte {at}");
        }
        for len in 0..good.len() {
            assert!(decode(Path::new("x"), &good[..len]).is_err(), "truncated to {len}");
        }
    }
}
