//! An index written by the release before typed metadata opens with this build, as it was, and
//! is written in the current format by its next persist.
//!
//! `tests/data/format-2-index` was made with that release (commit 259e225): `vecindex ingest` of
//! two Markdown files (rows files of format version 2, string metadata), then one document
//! posted to `vecindex serve`, SIGKILLed before it persisted, so that the document is only in
//! its log (version 1, a write record of kind 1). The log segment was cut after its last record,
//! as a clean close leaves it; `LOCK` and `WRITER` were left out.

#![allow(clippy::disallowed_types)] // tests use std types; the shim rule is the library's

use std::path::Path;

use vecindex::{Filter, OpenOptions, SearchOptions, Value, VectorIndex};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn rows_versions(dir: &Path) -> Vec<u32> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rows"))
        .map(|p| u32::from_le_bytes(std::fs::read(p).unwrap()[8..12].try_into().unwrap()))
        .collect()
}

#[test]
fn an_index_written_before_typed_metadata_opens_and_upgrades() {
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("index");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/format-2-index"), &path);
    assert_eq!(rows_versions(&path), [2]);

    let (index, report) = VectorIndex::open_with_options(&path, &OpenOptions::new().strict(true)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.log.replayed, 1, "the posted document, from the version-1 log");
    assert_eq!(index.document_ids(), ["faq.md", "guide.md", "late"]);
    assert_eq!(index.len(), 4);
    let late = index.chunk(&index.chunk_ids("late")[0]).unwrap();
    assert_eq!(late.metadata.get("team"), Some(&Value::Str("infra".into())));
    let guide = index.chunk(&index.chunk_ids("guide.md")[0]).unwrap();
    assert_eq!(guide.metadata.get("heading"), Some(&Value::Str("Install".into())), "{:?}", guide.metadata);
    let everything = index.search(&late.vector, &SearchOptions::k(10)).unwrap();
    assert_eq!(everything.len(), 4);
    let infra = index.search(&late.vector, &SearchOptions::k(10).filter(Filter::eq("team", "infra"))).unwrap();
    assert_eq!(infra.iter().map(|h| h.doc_id.as_str()).collect::<Vec<_>>(), ["late"]);

    index.persist(&path).unwrap();
    let before: Vec<_> =
        index.document_ids().iter().flat_map(|d| index.chunk_ids(d)).map(|c| index.chunk(&c)).collect();
    drop(index);
    let mut versions = rows_versions(&path);
    versions.sort();
    // The old segment written anew, the head holding the replayed document, and the old file,
    // which MANIFEST.prev (the snapshot to fall back to) still names.
    assert_eq!(versions, [2, 3, 3], "the next persist writes the current format");
    let (index, report) = VectorIndex::open_with_options(&path, &OpenOptions::new().strict(true)).unwrap();
    assert!(report.is_clean() && report.log.replayed == 0, "{report:?}");
    let after: Vec<_> = index.document_ids().iter().flat_map(|d| index.chunk_ids(d)).map(|c| index.chunk(&c)).collect();
    assert_eq!(after, before, "the same chunks, text and metadata");
    index.remove_document("faq.md").unwrap();
    index.persist(&path).unwrap();
    assert_eq!(rows_versions(&path), [3, 3], "the old file went with the snapshot that named it");
}
