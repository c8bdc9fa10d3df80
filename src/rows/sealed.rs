//! A sealed segment's rows in their file format, which is also their format in memory.
//!
//! A segment is encoded once, when it is sealed or merged ([`SealedRows::encode`]); persisting it
//! writes those bytes as they are, and opening it maps the file and checks it once
//! ([`SealedRows::open`]). Either way searches read rows and vectors straight from the bytes.
//!
//! ```text
//! body of a rows file (after the 64-byte header; header.extra = A, header.seq = max add seq + 1)
//!   0 .. A              rkyv archive of `StoredRows` (chunk id, doc id, text, metadata, add seq,
//!                       add index of every row)
//!   A .. V              zero padding; V = A rounded up to a multiple of 64
//!   V .. V + 4*n*dim    the n vectors, row after row, f32 little endian
//! ```
//!
//! The ids file persisted beside it (`crate::persist::ids`) repeats its chunk ids, document ids
//! and add seqs.

use std::ops::Range;
use std::path::Path;

use rkyv::rancor;
use rkyv::util::AlignedVec;

use crate::error::{Error, Result};
use crate::metadata::{ListRef, ValueRef};
use crate::rows::RowRef;
use crate::seq::SeqNo;
use crate::storage::FileBytes;
use crate::storage::format::{self, ALIGN, FileKind, FileRef, HEADER_LEN, Image};
use crate::sync::Arc;

/// One metadata entry of a row.
#[derive(rkyv::Archive, rkyv::Serialize)]
pub struct StoredPair {
    pub key: String,
    pub value: StoredValue,
}

/// A metadata value (`metadata::Value`) as rows files store it.
#[derive(rkyv::Archive, rkyv::Serialize)]
#[rkyv(attr(allow(missing_docs)))]
pub enum StoredValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<String>),
}

impl StoredValue {
    fn new(value: ValueRef<'_>) -> Self {
        match value {
            ValueRef::Str(s) => StoredValue::Str(s.to_owned()),
            ValueRef::Int(i) => StoredValue::Int(i),
            ValueRef::Float(f) => StoredValue::Float(f),
            ValueRef::Bool(b) => StoredValue::Bool(b),
            ValueRef::List(items) => StoredValue::List(items.iter().map(str::to_owned).collect()),
        }
    }
}

impl ArchivedStoredValue {
    pub fn as_value_ref(&self) -> ValueRef<'_> {
        match self {
            ArchivedStoredValue::Str(s) => ValueRef::Str(s.as_str()),
            ArchivedStoredValue::Int(i) => ValueRef::Int(i.to_native()),
            ArchivedStoredValue::Float(f) => ValueRef::Float(f.to_native()),
            ArchivedStoredValue::Bool(b) => ValueRef::Bool(*b),
            ArchivedStoredValue::List(items) => ValueRef::List(ListRef::Archived(items)),
        }
    }
}

/// A row without its vector.
#[derive(rkyv::Archive, rkyv::Serialize)]
pub struct StoredRow {
    pub chunk_id: String,
    pub doc_id: String,
    pub text: String,
    /// Sorted by key (a `Metadata` map's order).
    pub metadata: Vec<StoredPair>,
    pub add_seq: u64,
    pub add_index: u32,
}

#[derive(rkyv::Archive, rkyv::Serialize)]
pub struct StoredRows {
    pub rows: Vec<StoredRow>,
}

/// The bytes of a rows file.
enum Bytes {
    Owned(AlignedVec<ALIGN>),
    File(FileBytes),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(bytes) => bytes,
            Bytes::File(file) => file,
        }
    }
}

/// A rows file, checked, read in place. See the module docs.
pub struct SealedRows {
    bytes: Bytes,
    /// Where the rkyv archive is in `bytes`.
    archive: Range<usize>,
    /// Where the vectors are in `bytes`.
    vectors: Range<usize>,
    dim: usize,
    len: usize,
    max_add_seq: SeqNo,
    checksum: u64,
}

impl SealedRows {
    /// Encodes rows (metadata and vectors) into a rows file image.
    pub fn encode<'a>(dim: usize, rows: impl IntoIterator<Item = (RowRef<'a>, &'a [f32])>) -> Arc<Self> {
        let mut stored = Vec::new();
        let mut vectors: Vec<&'a [f32]> = Vec::new();
        for (row, vector) in rows {
            stored.push(StoredRow {
                chunk_id: row.chunk_id().to_owned(),
                doc_id: row.doc_id().to_owned(),
                text: row.text().to_owned(),
                metadata: row
                    .metadata_pairs()
                    .map(|(k, v)| StoredPair { key: k.into(), value: StoredValue::new(v) })
                    .collect(),
                add_seq: row.add_seq(),
                add_index: row.add_index(),
            });
            vectors.push(vector);
        }
        let encoded = Self::try_encode_stored(Path::new("<memory>"), dim, stored, vectors);
        encoded.expect("a freshly encoded rows file passes its own checks")
    }

    /// Encodes rows and checks the image as a file read from `path` would be.
    pub(crate) fn try_encode_stored(
        path: &Path,
        dim: usize,
        stored: Vec<StoredRow>,
        vectors: Vec<&[f32]>,
    ) -> Result<Arc<Self>> {
        let max_add_seq = stored.iter().map(|r| r.add_seq).max().unwrap_or(0);
        let archive =
            rkyv::to_bytes::<rancor::Panic>(&StoredRows { rows: stored }).unwrap_or_else(|never| match never {});
        let vector_bytes = vectors.len() * dim * 4;
        let mut image = Image::start(archive.len() + ALIGN + vector_bytes);
        image.body().extend_from_slice(&archive);
        image.pad();
        for vector in vectors {
            debug_assert_eq!(vector.len(), dim);
            image.body().extend_from_slice(bytemuck::cast_slice(vector));
        }
        let (_, bytes) = image.finish(FileKind::Rows, dim as u32, 0, max_add_seq + 1, archive.len() as u64);
        Self::check(path, Bytes::Owned(bytes), Some(dim), None).map(Arc::new)
    }

    /// Checks a rows file of the current format version read from disk, once: header,
    /// checksums (and the manifest's record of them), the rkyv archive (bytecheck), and the
    /// layout of the vector section. (`rows::legacy::open` takes older versions too.)
    pub fn open(path: &Path, file: FileBytes, dim: usize, expected: FileRef) -> Result<Arc<Self>> {
        Self::check(path, Bytes::File(file), Some(dim), Some(expected)).map(Arc::new)
    }

    fn check(path: &Path, bytes: Bytes, dim: Option<usize>, expected: Option<FileRef>) -> Result<Self> {
        let corrupt = |reason: String| Error::corrupt(path, reason);
        let (header, body) = match &bytes {
            Bytes::File(file) => format::check_file(path, file, FileKind::Rows, expected)?,
            Bytes::Owned(owned) => format::check(path, owned, FileKind::Rows, expected)?,
        };
        if header.version != format::VERSION {
            return Err(corrupt(format!("format version {} read as the current one", header.version)));
        }
        let file_dim = header.dim as usize;
        let (archive_len, vector_start) = split_body(path, &header, body, dim)?;
        let archived = rkyv::access::<ArchivedStoredRows, rancor::Error>(&body[..archive_len])
            .map_err(|e| corrupt(format!("invalid rows archive: {e}")))?;
        let len = archived.rows.len();
        let vector_bytes = len.checked_mul(file_dim).and_then(|n| n.checked_mul(4));
        if vector_bytes.and_then(|v| v.checked_add(vector_start)) != Some(body.len()) {
            return Err(corrupt(format!(
                "{len} rows of dimension {file_dim} do not fill the {}-byte body",
                body.len()
            )));
        }
        let mut max_add_seq = 0;
        for (index, row) in archived.rows.iter().enumerate() {
            if row.chunk_id.is_empty() || row.doc_id.is_empty() {
                return Err(corrupt(format!("row {index} has an empty chunk or document id")));
            }
            max_add_seq = max_add_seq.max(row.add_seq.to_native());
        }
        if len > 0 && header.seq != max_add_seq.saturating_add(1) {
            return Err(corrupt(format!("header seq {} but the newest row has seq {max_add_seq}", header.seq)));
        }
        let vectors = HEADER_LEN + vector_start..HEADER_LEN + body.len();
        if bytemuck::try_cast_slice::<u8, f32>(&bytes[vectors.clone()]).is_err() {
            return Err(corrupt("vector section is not aligned".into()));
        }
        Ok(Self {
            archive: HEADER_LEN..HEADER_LEN + archive_len,
            vectors,
            dim: file_dim,
            len,
            max_add_seq,
            checksum: header.body_checksum,
            bytes,
        })
    }

    fn archived(&self) -> &ArchivedStoredRows {
        // SAFETY: `check` validated exactly these bytes as an `ArchivedStoredRows` (bytecheck)
        // when this value was made, and they never change: an owned buffer we never write
        // again, or a read-only mapping of a file that is written once and never rewritten
        // (see `io::map`).
        unsafe { rkyv::access_unchecked::<ArchivedStoredRows>(&self.bytes[self.archive.clone()]) }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn max_add_seq(&self) -> SeqNo {
        self.max_add_seq
    }

    /// The body checksum: it names the file, and the manifest records it.
    pub fn checksum(&self) -> u64 {
        self.checksum
    }

    /// The whole file: header and body.
    pub fn file_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn is_mapped(&self) -> bool {
        matches!(&self.bytes, Bytes::File(file) if file.is_mapped())
    }

    pub fn row(&self, index: usize) -> Option<&ArchivedStoredRow> {
        self.archived().rows.get(index)
    }

    pub fn rows(&self) -> &[ArchivedStoredRow] {
        self.archived().rows.as_slice()
    }

    /// Every vector, row after row.
    pub fn vectors(&self) -> &[f32] {
        // `check` made sure this range casts (aligned, a multiple of 4 bytes), and the bytes
        // never move.
        bytemuck::cast_slice(&self.bytes[self.vectors.clone()])
    }

    pub fn vector(&self, index: usize) -> Option<&[f32]> {
        self.vectors().get(index * self.dim..(index + 1) * self.dim)
    }
}

/// Where a checked rows body's archive ends and its vectors start (after the zero padding),
/// with its dimension checked against the index's (`dim`, if known).
pub(crate) fn split_body(
    path: &Path,
    header: &format::Header,
    body: &[u8],
    dim: Option<usize>,
) -> Result<(usize, usize)> {
    let corrupt = |reason: String| Error::corrupt(path, reason);
    let file_dim = header.dim as usize;
    if dim.is_some_and(|dim| dim != file_dim) || file_dim == 0 {
        return Err(corrupt(format!("dimension {file_dim}, the index has {dim:?}")));
    }
    let archive_len = usize::try_from(header.extra).ok().filter(|&a| a <= body.len());
    let archive_len = archive_len.ok_or_else(|| corrupt("archive length beyond the body".into()))?;
    let vector_start = archive_len.next_multiple_of(ALIGN);
    if body.get(archive_len..vector_start).is_none_or(|pad| pad.iter().any(|&b| b != 0)) {
        return Err(corrupt("padding after the archive is missing or not zero".into()));
    }
    Ok((archive_len, vector_start))
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;
    use crate::rows::RowMeta;

    fn sample() -> Arc<SealedRows> {
        let metas: Vec<Arc<RowMeta>> = (0..3)
            .map(|i| {
                Arc::new(RowMeta {
                    chunk_id: format!("c{i}"),
                    doc_id: "d".into(),
                    text: format!("text {i}"),
                    metadata: [("k".to_owned(), format!("v{i}").into()), ("n".to_owned(), (i as i64).into())].into(),
                    add_seq: 5 + i,
                    add_index: 0,
                })
            })
            .collect();
        let vectors: Vec<Vec<f32>> = (0..3).map(|i| vec![i as f32, 1.0]).collect();
        SealedRows::encode(2, metas.iter().zip(&vectors).map(|(m, v)| (RowRef::Owned(m), v.as_slice())))
    }

    /// The sizes docs/format.md gives for the archived types (rkyv 0.8, pointer_width_64).
    #[test]
    fn archived_layouts_are_the_documented_ones() {
        use std::mem::{align_of, size_of};
        assert_eq!((size_of::<rkyv::string::ArchivedString>(), align_of::<rkyv::string::ArchivedString>()), (16, 8));
        assert_eq!(size_of::<rkyv::vec::ArchivedVec<u32>>(), 16);
        assert_eq!((size_of::<ArchivedStoredPair>(), size_of::<ArchivedStoredRow>()), (40, 80));
        assert_eq!((size_of::<ArchivedStoredValue>(), align_of::<ArchivedStoredValue>()), (24, 8));
        assert_eq!(size_of::<ArchivedStoredRows>(), 16);
    }

    /// The tag and payload offsets docs/format.md gives for a stored value.
    #[test]
    fn stored_values_have_the_documented_layout() {
        let bytes = |value: StoredValue| rkyv::to_bytes::<rancor::Panic>(&value).unwrap().to_vec();
        let int = bytes(StoredValue::Int(-7));
        assert_eq!((int.len(), int[0]), (24, 1));
        assert_eq!(int[8..16], (-7i64).to_le_bytes());
        let float = bytes(StoredValue::Float(0.5));
        assert_eq!((float[0], &float[8..16]), (2, &0.5f64.to_le_bytes()[..]));
        let boolean = bytes(StoredValue::Bool(true));
        assert_eq!((boolean[0], boolean[1]), (3, 1));
        assert_eq!(bytes(StoredValue::Str("s".into()))[0], 0);
        assert_eq!(bytes(StoredValue::List(vec![]))[0], 4);
    }

    #[test]
    fn round_trip_in_memory() {
        let rows = sample();
        assert_eq!((rows.len(), rows.dim(), rows.max_add_seq()), (3, 2, 7));
        assert_eq!(rows.row(2).unwrap().chunk_id.as_str(), "c2");
        assert!(matches!(rows.row(1).unwrap().metadata[0].value.as_value_ref(), ValueRef::Str("v1")));
        assert!(matches!(rows.row(2).unwrap().metadata[1].value.as_value_ref(), ValueRef::Int(2)));
        assert_eq!(rows.vector(2).unwrap(), [2.0, 1.0]);
        assert_eq!(rows.vectors().len(), 6);
        assert!(rows.row(3).is_none() && rows.vector(3).is_none());
    }

    #[test]
    fn every_flipped_byte_is_an_error_and_never_a_panic() {
        let good = sample().file_bytes().to_vec();
        for at in 0..good.len() {
            let mut bad = AlignedVec::<ALIGN>::new();
            bad.extend_from_slice(&good);
            bad[at] ^= 0x24;
            let checked = SealedRows::check(Path::new("x"), Bytes::Owned(bad), Some(2), None);
            assert!(matches!(checked, Err(Error::Corrupt { .. })), "byte {at}");
        }
    }
}
