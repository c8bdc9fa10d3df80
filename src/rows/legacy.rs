//! Opening rows files of every version this build reads ([`open`]). Those of format version 2,
//! whose metadata values were all strings, are read once as they open and converted in memory to the current format (each value a string), so that an index
//! written by the previous version opens as it was. The next persist writes the converted
//! segments under their new checksums, and removes the old files with the snapshot they
//! belonged to.

use std::path::Path;

use rkyv::rancor;

use crate::error::{Error, Result};
use crate::rows::SealedRows;
use crate::rows::sealed::{self, StoredPair, StoredRow, StoredValue};
use crate::storage::FileBytes;
use crate::storage::format::{self, FileKind, FileRef};
use crate::sync::Arc;

/// A row's metadata entry in version 2.
#[derive(rkyv::Archive, rkyv::Serialize)]
pub(crate) struct StoredPairV2 {
    pub key: String,
    pub value: String,
}

/// A row in version 2: as now, but for its metadata.
#[derive(rkyv::Archive, rkyv::Serialize)]
pub(crate) struct StoredRowV2 {
    pub chunk_id: String,
    pub doc_id: String,
    pub text: String,
    pub metadata: Vec<StoredPairV2>,
    pub add_seq: u64,
    pub add_index: u32,
}

#[derive(rkyv::Archive, rkyv::Serialize)]
#[cfg_attr(not(test), allow(dead_code))] // only read; the tests write version-2 files
pub(crate) struct StoredRowsV2 {
    pub rows: Vec<StoredRowV2>,
}

/// Opens a rows file of any version this build reads: the current one in place
/// ([`SealedRows::open`]), version 2 converted.
pub(crate) fn open(path: &Path, file: FileBytes, dim: usize, expected: FileRef) -> Result<Arc<SealedRows>> {
    if format::Header::decode(path, &file)?.version < format::VERSION {
        return upgrade(path, &file, dim, expected);
    }
    SealedRows::open(path, file, dim, expected)
}

/// Checks a version-2 rows file as `SealedRows::open` checks the current one (header and
/// checksums against the manifest's record, the archive with bytecheck, the vector section's
/// size) and converts it.
pub(crate) fn upgrade(path: &Path, bytes: &[u8], dim: usize, expected: FileRef) -> Result<Arc<SealedRows>> {
    let corrupt = |reason: String| Error::corrupt(path, reason);
    let (header, body) = format::check(path, bytes, FileKind::Rows, Some(expected))?;
    let (archive_len, vector_start) = sealed::split_body(path, &header, body, Some(dim))?;
    let archived = rkyv::access::<ArchivedStoredRowsV2, rancor::Error>(&body[..archive_len])
        .map_err(|e| corrupt(format!("invalid rows archive (format version 2): {e}")))?;
    let vectors: &[f32] = bytemuck::try_cast_slice(&body[vector_start..])
        .map_err(|_| corrupt("vector section is not aligned or not whole floats".into()))?;
    if archived.rows.len().checked_mul(dim) != Some(vectors.len()) {
        return Err(corrupt(format!("{} rows of dimension {dim} do not fill the body", archived.rows.len())));
    }
    let newest = archived.rows.iter().map(|row| row.add_seq.to_native()).max();
    if newest.is_some_and(|newest| header.seq != newest.saturating_add(1)) {
        return Err(corrupt(format!("header seq {} but the newest row has seq {newest:?}", header.seq)));
    }
    let stored = archived
        .rows
        .iter()
        .map(|row| StoredRow {
            chunk_id: row.chunk_id.to_string(),
            doc_id: row.doc_id.to_string(),
            text: row.text.to_string(),
            metadata: row
                .metadata
                .iter()
                .map(|p| StoredPair { key: p.key.to_string(), value: StoredValue::Str(p.value.to_string()) })
                .collect(),
            add_seq: row.add_seq.to_native(),
            add_index: row.add_index.to_native(),
        })
        .collect();
    // (`dim` is not 0: `split_body` refuses a file of dimension 0.)
    SealedRows::try_encode_stored(path, dim, stored, vectors.chunks_exact(dim).collect())
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use rkyv::util::AlignedVec;

    use super::*;
    use crate::metadata::ValueRef;
    use crate::rows::RowRef;
    use crate::storage::format::{ALIGN, HEADER_LEN, Header, Image};

    /// A rows file as version 2 wrote it: the same layout, string metadata, version 2.
    fn version_2_file() -> AlignedVec<ALIGN> {
        let rows = StoredRowsV2 {
            rows: (0..3u64)
                .map(|i| StoredRowV2 {
                    chunk_id: format!("c{i}"),
                    doc_id: "d".into(),
                    text: format!("text {i}"),
                    metadata: vec![StoredPairV2 { key: "lang".into(), value: format!("l{i}") }],
                    add_seq: 4 + i,
                    add_index: i as u32,
                })
                .collect(),
        };
        let archive = rkyv::to_bytes::<rancor::Panic>(&rows).unwrap();
        let mut image = Image::start(archive.len() + ALIGN + 3 * 2 * 4);
        image.body().extend_from_slice(&archive);
        image.pad();
        for i in 0..3 {
            image.body().extend_from_slice(bytemuck::cast_slice(&[i as f32, 1.0]));
        }
        let (_, mut bytes) = image.finish(FileKind::Rows, 2, 0, 7, archive.len() as u64);
        let mut header = Header::decode(Path::new("x"), &bytes).unwrap();
        header.version = 2;
        bytes[..HEADER_LEN].copy_from_slice(&header.encode());
        bytes
    }

    fn file_ref(bytes: &[u8]) -> FileRef {
        FileRef { bytes: bytes.len() as u64, checksum: Header::decode(Path::new("x"), bytes).unwrap().body_checksum }
    }

    #[test]
    fn a_version_2_rows_file_opens_with_its_metadata_as_strings() {
        let bytes = version_2_file();
        let rows = upgrade(Path::new("x"), &bytes, 2, file_ref(&bytes)).unwrap();
        assert_eq!((rows.len(), rows.max_add_seq()), (3, 6));
        let row = RowRef::sealed(&rows, 1).unwrap();
        assert_eq!((row.chunk_id(), row.text(), row.add_seq(), row.add_index()), ("c1", "text 1", 5, 1));
        assert!(matches!(row.metadata_value("lang"), Some(ValueRef::Str("l1"))));
        assert_eq!(rows.vector(2).unwrap(), [2.0, 1.0]);
        assert_ne!(rows.checksum(), file_ref(&bytes).checksum, "converted: the next persist writes it anew");
    }

    #[test]
    fn every_flipped_byte_of_a_version_2_file_is_an_error_and_never_a_panic() {
        let good = version_2_file();
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x24;
            // The manifest's record is of the good file, as on disk.
            let opened = upgrade(Path::new("x"), &bad, 2, file_ref(&good));
            assert!(matches!(opened, Err(Error::Corrupt { .. })), "byte {at}");
        }
    }
}
