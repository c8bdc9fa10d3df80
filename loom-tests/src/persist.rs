//! Models of `src/persist/` against writers: what a persist commits is the snapshot at its seq.
//!
//! A writer adds two documents (seqs 1 and 2: it is the only mutator) while the main thread
//! persists; the model then opens the directory (strict: every file the manifest names exists
//! and passes its checks) and requires each document to be there exactly if its seq is below the
//! manifest's. The files are real, in a fresh directory per execution (on `/dev/shm` where there
//! is one, so fsync costs nothing).
//!
//! Injected bugs this catches: `persist_with_view` (persist takes a search's view, which leaves
//! out operations in flight instead of waiting for them, while the manifest's seq claims them)
//! and `snapshot_no_wait` (the sequencer's snapshot does not wait; `snapshot.rs` catches it too).

use std::sync::atomic::{AtomicUsize, Ordering};

use loom::sync::Arc;
use loom::thread;
use vecindex::{OpenOptions, VectorIndex};

use crate::epoch::{chunk, config};

/// A fresh directory for each execution of a model, under one root (on `/dev/shm` where there
/// is one, so fsync costs nothing). Made outside the model: std types, as loom's exist only
/// inside an execution.
pub(crate) struct FreshDirs {
    root: tempfile::TempDir,
    executions: std::sync::Arc<AtomicUsize>,
}

impl FreshDirs {
    pub(crate) fn new() -> Self {
        let root = match std::path::Path::new("/dev/shm").is_dir() {
            true => tempfile::tempdir_in("/dev/shm").unwrap(),
            false => tempfile::tempdir().unwrap(),
        };
        Self { root, executions: std::sync::Arc::new(AtomicUsize::new(0)) }
    }

    pub(crate) fn next(&self) -> std::path::PathBuf {
        self.root.path().join(self.executions.fetch_add(1, Ordering::Relaxed).to_string())
    }
}

#[test]
fn persist_racing_a_writer_commits_exactly_the_snapshot_at_its_seq() {
    let dirs = FreshDirs::new();
    loom::model(move || {
        let dir = dirs.next();
        let index = Arc::new(VectorIndex::new(config()).unwrap());
        let writer = {
            let index = index.clone();
            thread::spawn(move || {
                for (doc, x) in [("a", 0.5), ("b", 0.25)] {
                    index.add_document(doc, vec![chunk(doc, doc, x)]).unwrap();
                }
            })
        };
        let report = index.persist(&dir).unwrap();
        writer.join().unwrap();
        let (reopened, opened) =
            VectorIndex::open_with_options(&dir, &OpenOptions::new().config(config()).strict(true)).unwrap();
        assert!(opened.is_clean());
        for (doc, seq) in [("a", 1), ("b", 2)] {
            let held = reopened.chunk(doc).is_some();
            assert_eq!(held, seq < report.seq, "document {doc} (seq {seq}) in the snapshot at {}", report.seq);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    });
}
