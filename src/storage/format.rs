//! The header every vecindex file starts with, and the checks that run before any body byte is
//! looked at. `docs/format.md` describes every file byte for byte.
//!
//! ```text
//! offset size  field (all integers little endian)
//!      0    8  magic b"VECINDEX"
//!      8    4  format version (u32) = 3 (2 is read too)
//!     12    4  file kind (u32): 1 manifest, 2 rows, 3 ids, 4 tombstones, 5 faiss, 6 graph
//!     16    4  dimension (u32)
//!     20    4  metric (u32: 0 cosine, 1 inner product, 2 L2); 0 in files other than the manifest
//!     24    8  seq (u64): the file holds operations below it (see each kind)
//!     32    8  body length in bytes (u64)
//!     40    8  xxh3-64 of the body (u64)
//!     48    8  kind-specific (u64): rows files, the length of their rkyv archive; manifests,
//!              the layout of their archive (0, or 1 with a graph record); otherwise 0
//!     56    8  xxh3-64 of bytes 0..56 (u64)
//!     64    .  body
//! ```
//!
//! The body starts 64 bytes into the file, so a body read into a 64-byte-aligned buffer or
//! mapped from a page-aligned mapping is itself 64-byte aligned: rkyv archives need 16, the raw
//! vector section of a rows file gets 64 (a cache line).
//!
//! [`check`] validates the header (magic, version, kind, its own checksum) and then the body's
//! length and checksum. Nothing else in the crate reads a body before `check` accepted it.

use std::path::Path;

use rkyv::util::AlignedVec;

use crate::error::{Error, Result};

pub const MAGIC: &[u8; 8] = b"VECINDEX";
/// The version written. 3 typed metadata values in rows files (2 stored strings); every other
/// kind is the same in both. Version 1 was the single-file snapshot of vecindex 0.1's first cut.
pub const VERSION: u32 = 3;
/// The oldest version read: a version-2 rows file is converted as it opens (`rows::sealed`).
pub const OLDEST_READ: u32 = 2;
pub const HEADER_LEN: usize = 64;
/// Bodies and the vector sections inside them are aligned to this.
pub const ALIGN: usize = 64;

/// What a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// The manifest: which files make up the snapshot.
    Manifest = 1,
    /// A sealed segment's rows: metadata (rkyv) and raw vectors.
    Rows = 2,
    /// The chunk ids, document ids and add seqs of a rows file, kept apart so that a damaged rows
    /// file can still be reported by the documents it held.
    Ids = 3,
    /// Deletes of one snapshot.
    Tombstones = 4,
    /// A FAISS index over a segment's vectors, as FAISS's `write_index` produces it.
    Faiss = 5,
    /// The graph a plain HNSW index's rows share: its nodes' labels and links.
    Graph = 6,
}

impl FileKind {
    fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => Self::Manifest,
            2 => Self::Rows,
            3 => Self::Ids,
            4 => Self::Tombstones,
            5 => Self::Faiss,
            6 => Self::Graph,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Manifest => "manifest",
            Self::Rows => "rows",
            Self::Ids => "ids",
            Self::Tombstones => "tombstones",
            Self::Faiss => "faiss",
            Self::Graph => "graph",
        }
    }
}

/// A decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// [`VERSION`] in what this build writes; [`OLDEST_READ`] or later in what it reads.
    pub version: u32,
    pub kind: FileKind,
    pub dim: u32,
    pub metric: u32,
    pub seq: u64,
    pub body_len: u64,
    pub body_checksum: u64,
    pub extra: u64,
}

/// The checksum of bodies and headers.
pub fn checksum(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&self.version.to_le_bytes());
        out[12..16].copy_from_slice(&(self.kind as u32).to_le_bytes());
        out[16..20].copy_from_slice(&self.dim.to_le_bytes());
        out[20..24].copy_from_slice(&self.metric.to_le_bytes());
        out[24..32].copy_from_slice(&self.seq.to_le_bytes());
        out[32..40].copy_from_slice(&self.body_len.to_le_bytes());
        out[40..48].copy_from_slice(&self.body_checksum.to_le_bytes());
        out[48..56].copy_from_slice(&self.extra.to_le_bytes());
        let sum = checksum(&out[..56]);
        out[56..64].copy_from_slice(&sum.to_le_bytes());
        out
    }

    /// Decodes and checks a header (not the body). `bytes` may be just the first 64 bytes.
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<Header> {
        let corrupt = |reason: String| Error::corrupt(path, reason);
        if bytes.len() < HEADER_LEN {
            return Err(corrupt(format!("{} bytes, shorter than a header", bytes.len())));
        }
        if &bytes[..8] != MAGIC {
            return Err(corrupt("not a vecindex file (bad magic)".into()));
        }
        if checksum(&bytes[..56]) != u64_at(bytes, 56) {
            return Err(corrupt("header checksum mismatch".into()));
        }
        let version = u32_at(bytes, 8);
        if !(OLDEST_READ..=VERSION).contains(&version) {
            return Err(corrupt(format!("format version {version}, this build reads {OLDEST_READ} to {VERSION}")));
        }
        let kind = FileKind::from_code(u32_at(bytes, 12))
            .ok_or_else(|| corrupt(format!("unknown file kind {}", u32_at(bytes, 12))))?;
        Ok(Header {
            version,
            kind,
            dim: u32_at(bytes, 16),
            metric: u32_at(bytes, 20),
            seq: u64_at(bytes, 24),
            body_len: u64_at(bytes, 32),
            body_checksum: u64_at(bytes, 40),
            extra: u64_at(bytes, 48),
        })
    }
}

/// What the manifest says a file must be: its total length and its body checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileRef {
    pub bytes: u64,
    pub checksum: u64,
}

/// Checks a whole file: header, kind, body length and checksum, and (if given) what the
/// manifest recorded for it. Returns the header and the body.
pub fn check<'a>(
    path: &Path,
    bytes: &'a [u8],
    kind: FileKind,
    expected: Option<FileRef>,
) -> Result<(Header, &'a [u8])> {
    check_body(path, bytes, kind, expected, true)
}

/// [`check`] for a file read from storage, less the body's checksum if the storage already
/// checked it for these bytes ([`FileBytes::body_checked`](super::FileBytes)).
pub fn check_file<'a>(
    path: &Path,
    file: &'a super::FileBytes,
    kind: FileKind,
    expected: Option<FileRef>,
) -> Result<(Header, &'a [u8])> {
    check_body(path, file, kind, expected, !file.body_checked())
}

/// Whether `bytes` start with a valid header whose body length and checksum match the body.
#[cfg_attr(not(feature = "object-store"), allow(dead_code))]
pub fn body_matches_header(path: &Path, bytes: &[u8]) -> bool {
    Header::decode(path, bytes).is_ok_and(|header| {
        let body = &bytes[HEADER_LEN..];
        body.len() as u64 == header.body_len && checksum(body) == header.body_checksum
    })
}

fn check_body<'a>(
    path: &Path,
    bytes: &'a [u8],
    kind: FileKind,
    expected: Option<FileRef>,
    checksum_body: bool,
) -> Result<(Header, &'a [u8])> {
    let corrupt = |reason: String| Error::corrupt(path, reason);
    let header = Header::decode(path, bytes)?;
    if header.kind != kind {
        return Err(corrupt(format!("a {} file where a {} file was expected", header.kind.name(), kind.name())));
    }
    let body = &bytes[HEADER_LEN..];
    if body.len() as u64 != header.body_len {
        return Err(corrupt(format!("body is {} bytes, the header says {}", body.len(), header.body_len)));
    }
    if let Some(expected) = expected
        && (expected.bytes != bytes.len() as u64 || expected.checksum != header.body_checksum)
    {
        return Err(corrupt(format!(
            "{} bytes with checksum {:016x}, the manifest names {} bytes with checksum {:016x}",
            bytes.len(),
            header.body_checksum,
            expected.bytes,
            expected.checksum
        )));
    }
    if checksum_body && checksum(body) != header.body_checksum {
        return Err(corrupt("body checksum mismatch".into()));
    }
    Ok((header, body))
}

/// A whole file in memory: header then body, 64-byte aligned.
pub struct Image {
    bytes: AlignedVec<ALIGN>,
}

impl Image {
    /// A header placeholder; append the body with [`Image::body`], then [`Image::finish`].
    pub fn start(body_capacity: usize) -> Self {
        let mut bytes = AlignedVec::with_capacity(HEADER_LEN + body_capacity);
        bytes.extend_from_slice(&[0u8; HEADER_LEN]);
        Self { bytes }
    }

    pub fn body(&mut self) -> &mut AlignedVec<ALIGN> {
        &mut self.bytes
    }

    /// Bytes of the body so far.
    pub fn body_len(&self) -> usize {
        self.bytes.len() - HEADER_LEN
    }

    /// Pads the body with zeros to a multiple of [`ALIGN`].
    pub fn pad(&mut self) {
        let padded = self.body_len().next_multiple_of(ALIGN);
        self.bytes.resize(HEADER_LEN + padded, 0);
    }

    /// Writes the header: kind, dimension, metric, seq, the body's length and checksum, and
    /// the kind-specific word.
    pub fn finish(
        mut self,
        kind: FileKind,
        dim: u32,
        metric: u32,
        seq: u64,
        extra: u64,
    ) -> (Header, AlignedVec<ALIGN>) {
        let body = &self.bytes[HEADER_LEN..];
        let header = Header {
            version: VERSION,
            kind,
            dim,
            metric,
            seq,
            body_len: body.len() as u64,
            body_checksum: checksum(body),
            extra,
        };
        self.bytes[..HEADER_LEN].copy_from_slice(&header.encode());
        (header, self.bytes)
    }
}

/// A whole file from a body already made (an rkyv archive, FAISS's bytes).
pub fn image(kind: FileKind, dim: u32, metric: u32, seq: u64, body: &[u8]) -> (Header, AlignedVec<ALIGN>) {
    image_with(kind, dim, metric, seq, 0, body)
}

/// [`image`] with the header's kind-specific word set to `extra`.
pub fn image_with(
    kind: FileKind,
    dim: u32,
    metric: u32,
    seq: u64,
    extra: u64,
    body: &[u8],
) -> (Header, AlignedVec<ALIGN>) {
    let mut image = Image::start(body.len());
    image.body().extend_from_slice(body);
    image.finish(kind, dim, metric, seq, extra)
}

/// Copies an rkyv archive out of a body into a buffer aligned for it. Used for small files
/// (manifest, ids, tombstones) that are read rather than mapped.
pub fn aligned(body: &[u8]) -> AlignedVec<16> {
    let mut out = AlignedVec::with_capacity(body.len());
    out.extend_from_slice(body);
    out
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_every_flipped_header_byte_is_caught() {
        let (header, file) = image(FileKind::Tombstones, 8, 0, 42, b"some body bytes");
        let path = Path::new("x");
        let (decoded, body) = check(path, &file, FileKind::Tombstones, None).unwrap();
        assert_eq!((decoded, body), (header, &b"some body bytes"[..]));
        for at in 0..file.len() {
            let mut bad = file.to_vec();
            bad[at] ^= 0x10;
            assert!(matches!(check(path, &bad, FileKind::Tombstones, None), Err(Error::Corrupt { .. })), "byte {at}");
        }
        for len in 0..file.len() {
            assert!(check(path, &file[..len], FileKind::Tombstones, None).is_err(), "truncated to {len}");
        }
        assert!(check(path, &file, FileKind::Rows, None).is_err(), "wrong kind");
        let wrong = FileRef { bytes: file.len() as u64, checksum: header.body_checksum ^ 1 };
        assert!(check(path, &file, FileKind::Tombstones, Some(wrong)).is_err(), "manifest disagrees");
    }
}
