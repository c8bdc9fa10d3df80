//! Bad input gets a typed error, never a panic, and leaves the index unchanged.

use vecindex::{Chunk, Error, Index, IndexConfig, Metric, MutexIndex, SearchOptions, VectorIndex};

/// Recognizes the error a case expects.
type IsExpected = fn(&Error) -> bool;

fn indexes() -> Vec<Box<dyn Index>> {
    let config = IndexConfig::new(3).head_capacity(2);
    vec![Box::new(VectorIndex::new(config.clone()).unwrap()), Box::new(MutexIndex::new(config).unwrap())]
}

fn state(index: &dyn Index) -> (usize, Vec<String>, Vec<Vec<String>>) {
    let docs = index.document_ids();
    let chunks = docs.iter().map(|d| index.chunk_ids(d)).collect();
    (index.len(), docs, chunks)
}

#[test]
fn bad_chunks_are_rejected_and_change_nothing() {
    for index in indexes() {
        let index = &*index;
        index.add_document("a", vec![Chunk::new("a0", "a", vec![1.0, 0.0, 0.0])]).unwrap();
        let before = state(index);
        let good = || Chunk::new("x", "b", vec![0.0, 1.0, 0.0]);
        let cases: Vec<(Vec<Chunk>, IsExpected)> = vec![
            (vec![good(), Chunk::new("y", "b", vec![1.0, 2.0])], |e| {
                matches!(e, Error::DimensionMismatch { expected: 3, got: 2 })
            }),
            (vec![good(), Chunk::new("y", "b", vec![1.0, f32::NAN, 0.0])], |e| {
                matches!(e, Error::NonFiniteValue { position: 1, .. })
            }),
            (vec![Chunk::new("y", "b", vec![f32::INFINITY, 0.0, 0.0])], |e| matches!(e, Error::NonFiniteValue { .. })),
            (vec![good(), Chunk::new("y", "b", vec![0.0; 3])], |e| matches!(e, Error::ZeroVector)),
            (vec![good(), Chunk::new("", "b", vec![1.0; 3])], |e| matches!(e, Error::EmptyId { what: "chunk_id" })),
            (vec![good(), Chunk::new("y", "", vec![1.0; 3])], |e| matches!(e, Error::EmptyId { what: "doc_id" })),
            (vec![good(), good()], |e| matches!(e, Error::DuplicateChunkId { .. })),
            (vec![Chunk::new("a0", "b", vec![1.0; 3])], |e| matches!(e, Error::ChunkInOtherDocument { .. })),
        ];
        for (chunks, expected) in cases {
            let err = index.add_chunks(chunks.clone()).unwrap_err();
            assert!(expected(&err), "add_chunks: {err}");
            if chunks.len() == 1 {
                let err = index.add_chunk(chunks[0].clone()).unwrap_err();
                assert!(expected(&err), "add_chunk: {err}");
            }
            if chunks.iter().all(|c| !c.doc_id.is_empty()) && !matches!(err, Error::ChunkInOtherDocument { .. }) {
                let err = index.add_document("b", chunks).unwrap_err();
                assert!(expected(&err), "add_document: {err}");
            }
            assert_eq!(state(index), before, "index unchanged after {err}");
        }
        assert!(matches!(index.add_document("", vec![]), Err(Error::EmptyId { .. })));
        assert!(matches!(index.remove_document(""), Err(Error::EmptyId { .. })));
        assert!(matches!(index.remove_chunk(""), Err(Error::EmptyId { .. })));
        assert_eq!(index.remove_document("missing").unwrap(), 0);
        assert!(!index.remove_chunk("missing").unwrap());
        assert_eq!(state(index), before);
    }
}

#[test]
fn bad_queries_are_rejected() {
    for index in indexes() {
        index.add_chunk(Chunk::new("a0", "a", vec![1.0, 0.0, 0.0])).unwrap();
        let q = [1.0, 0.0, 0.0];
        assert!(matches!(index.search(&q, &SearchOptions::k(0)), Err(Error::ZeroK)));
        assert!(matches!(index.search(&q[..2], &SearchOptions::k(1)), Err(Error::DimensionMismatch { .. })));
        assert!(matches!(index.search(&[f32::NAN, 0.0, 0.0], &SearchOptions::k(1)), Err(Error::NonFiniteValue { .. })));
        assert!(matches!(index.search(&[0.0; 3], &SearchOptions::k(1)), Err(Error::ZeroVector)));
        assert_eq!(index.search(&q, &SearchOptions::k(usize::MAX)).unwrap().len(), 1, "a huge k is fine");
    }
}

#[test]
fn bad_configs_and_paths_are_typed_errors() {
    assert!(matches!(VectorIndex::new(IndexConfig::new(0)), Err(Error::InvalidConfig { .. })));
    assert!(matches!(MutexIndex::new(IndexConfig::new(4).head_capacity(0)), Err(Error::InvalidConfig { .. })));
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(VectorIndex::open(&dir.path().join("missing")), Err(Error::Io { .. })));
    assert!(matches!(VectorIndex::open(dir.path()), Err(Error::NoSnapshot { .. })), "an empty directory");
    // What a first persist killed before its commit leaves: the lock and a temp file.
    std::fs::write(dir.path().join("LOCK"), b"").unwrap();
    std::fs::write(dir.path().join(".MANIFEST.tmp-4242"), b"half a manifest").unwrap();
    assert!(matches!(VectorIndex::open(dir.path()), Err(Error::NoSnapshot { .. })), "leftovers only");
    assert!(matches!(MutexIndex::open(dir.path()), Err(Error::NoSnapshot { .. })));
    let fresh = VectorIndex::new(IndexConfig::new(3)).unwrap();
    fresh.add_chunk(Chunk::new("x", "d", vec![0.0, 1.0, 0.0])).unwrap();
    let leftovers = tempfile::tempdir().unwrap();
    std::fs::write(leftovers.path().join("LOCK"), b"").unwrap();
    std::fs::write(leftovers.path().join(".MANIFEST.tmp-4242"), b"half a manifest").unwrap();
    fresh.persist(leftovers.path()).expect("a directory of leftovers takes a first snapshot");
    assert_eq!(VectorIndex::open(leftovers.path()).unwrap().len(), 1);
    let strangers = tempfile::tempdir().unwrap();
    std::fs::write(strangers.path().join("notes.txt"), b"mine").unwrap();
    assert!(matches!(VectorIndex::open(strangers.path()), Err(Error::NotAnIndex { .. })), "other files");
    std::fs::write(dir.path().join("MANIFEST"), b"not an index at all").unwrap();
    assert!(matches!(VectorIndex::open(dir.path()), Err(Error::Corrupt { .. })));
    assert!(matches!(MutexIndex::open(dir.path()), Err(Error::Corrupt { .. })));

    let good = tempfile::tempdir().unwrap();
    let index = VectorIndex::new(IndexConfig::new(3)).unwrap();
    index.add_chunk(Chunk::new("a", "d", vec![1.0, 0.0, 0.0])).unwrap();
    index.persist(good.path()).unwrap();
    let wrong_dim = VectorIndex::open_with(good.path(), IndexConfig::new(4));
    assert!(matches!(wrong_dim, Err(Error::Incompatible { .. })));
    let wrong_metric = MutexIndex::open_with(good.path(), IndexConfig::new(3).metric(Metric::L2));
    assert!(matches!(wrong_metric, Err(Error::Incompatible { .. })));
    // Persisting onto a file, into a directory of other files, over a damaged manifest, or over
    // another index is refused with a typed error, and touches nothing.
    let file = good.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(index.persist(&file), Err(Error::NotAnIndex { .. })));
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    let documents = tempfile::tempdir().unwrap();
    std::fs::write(documents.path().join("notes.txt"), b"mine").unwrap();
    assert!(matches!(index.persist(documents.path()), Err(Error::NotAnIndex { .. })));
    assert!(matches!(index.persist(dir.path()), Err(Error::NotAnIndex { .. })), "unreadable MANIFEST");
    let other = VectorIndex::new(IndexConfig::new(3)).unwrap();
    assert!(matches!(other.persist(good.path()), Err(Error::ForeignIndex { .. })));
    assert!(matches!(
        MutexIndex::new(IndexConfig::new(3)).unwrap().persist(good.path()),
        Err(Error::ForeignIndex { .. })
    ));
    assert_eq!(VectorIndex::open(good.path()).unwrap().chunk("a").unwrap().doc_id, "d", "the index is intact");
    let mut entries: Vec<String> =
        std::fs::read_dir(documents.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    entries.sort();
    assert_eq!(entries, ["notes.txt"], "a refused persist leaves no file behind");
}

#[test]
fn a_multi_document_add_with_one_conflict_adds_nothing() {
    for index in indexes() {
        let index = &*index;
        index.add_chunk(Chunk::new("c1", "d0", vec![1.0, 0.0, 0.0])).unwrap();
        let d7: Vec<Chunk> = (0..19).map(|i| Chunk::new(format!("m{i}"), "d7", vec![1.0, i as f32, 0.0])).collect();
        index.add_document("d7", d7).unwrap();
        assert_eq!(index.len(), 20);
        let before = (state(index), index.stats().next_seq);
        // The conflict comes after a good chunk of another document, and before one.
        for chunks in [
            vec![Chunk::new("n9", "d7", vec![0.0, 1.0, 0.0]), Chunk::new("c1", "d8", vec![0.0, 0.0, 1.0])],
            vec![Chunk::new("c1", "d8", vec![0.0, 0.0, 1.0]), Chunk::new("n9", "d7", vec![0.0, 1.0, 0.0])],
            vec![
                Chunk::new("n9", "d7", vec![0.0, 1.0, 0.0]),
                Chunk::new("n10", "d9", vec![0.0, 1.0, 1.0]),
                Chunk::new("c1", "d8", vec![0.0, 0.0, 1.0]),
            ],
        ] {
            let err = index.add_chunks(chunks).unwrap_err();
            assert!(
                matches!(&err, Error::ChunkInOtherDocument { chunk_id, owner, .. } if chunk_id == "c1" && owner == "d0")
            );
            assert_eq!((state(index), index.stats().next_seq), before, "index unchanged after {err}");
            assert!(index.chunk("n9").is_none() && index.chunk("n10").is_none());
        }
        // Without the conflict, the same call adds both documents' chunks under one seq.
        let seq = index.stats().next_seq;
        index
            .add_chunks(vec![Chunk::new("n9", "d7", vec![0.0, 1.0, 0.0]), Chunk::new("c2", "d8", vec![0.0, 0.0, 1.0])])
            .unwrap();
        assert_eq!(index.stats().next_seq, seq + 1, "one seq for the whole call");
        assert_eq!(index.len(), 22);
        assert_eq!(index.chunk_ids("d8"), ["c2"]);
        assert_eq!(index.chunk_ids("d7").last().map(String::as_str), Some("n9"));
    }
}
