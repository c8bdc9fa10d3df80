//! Models of `src/wal/` against writers and a persist: every acknowledged write survives the
//! log's rotation and retirement.
//!
//! A writer adds two documents to an index bound to a directory (so each goes through the
//! write-ahead log's group commit) while the main thread persists into that directory, which
//! starts a new log segment, snapshots, and removes the segments the snapshot covers. The index
//! is then dropped without another persist and opened again (strict): both documents,
//! acknowledged before the drop, must be there, from the snapshot or from the log. The files are
//! real, in a fresh directory per execution (on `/dev/shm` where there is one). (The group
//! commit among concurrent writers has its own model, `group_commit_*`, without files.)
//!
//! Injected bug this catches: `wal_rotate_after_view` (the persist starts the new segment after
//! taking its view, so a record whose seq the snapshot does not hold can land in a segment the
//! persist then removes).

use loom::sync::Arc;
use loom::thread;
use vecindex::{OpenOptions, VectorIndex};

use crate::epoch::{chunk, config};
use crate::persist::FreshDirs;

#[test]
fn writes_racing_a_persist_survive_the_log_rotation() {
    let dirs = FreshDirs::new();
    loom::model(move || {
        let dir = dirs.next();
        let index = Arc::new(VectorIndex::create(&dir, config()).unwrap());
        let writer = {
            let index = index.clone();
            thread::spawn(move || {
                for (doc, x) in [("a", 0.5), ("b", 0.25)] {
                    index.add_document(doc, vec![chunk(doc, doc, x)]).unwrap();
                }
            })
        };
        index.persist(&dir).unwrap();
        writer.join().unwrap();
        drop(index);
        let (reopened, report) =
            VectorIndex::open_with_options(&dir, &OpenOptions::new().config(config()).strict(true)).unwrap();
        assert!(report.is_clean(), "{report:?}");
        for doc in ["a", "b"] {
            assert!(reopened.chunk(doc).is_some(), "acknowledged document {doc} lost: {:?}", report.log);
        }
        drop(reopened);
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

/// The log's sink in the group-commit model: bytes in a shared vector the model can look at
/// without going through the group.
struct Memory(Arc<loom::sync::Mutex<Vec<u8>>>);

impl vecindex::internals::Sink for Memory {
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Two writers append one record each through the group commit while a third thread takes the
/// sink between batches (as a persist's rotation does). A writer's `append` returns only once its
/// record is in the sink (G2); every record lands exactly once (G1, G4).
///
/// Injected bug this catches: `group_complete_before_write` (a leader marks its batch complete
/// before writing it, so a member returns, acknowledged, with its record not yet written).
#[test]
fn group_commit_acknowledges_only_written_records() {
    loom::model(|| {
        let bytes = Arc::new(loom::sync::Mutex::new(Vec::new()));
        let group = Arc::new(vecindex::internals::Group::new(Memory(bytes.clone()), true));
        let writers: Vec<_> = [1u8, 2]
            .into_iter()
            .map(|record| {
                let (group, bytes) = (group.clone(), bytes.clone());
                thread::spawn(move || {
                    group.append(&[record]).unwrap();
                    assert!(bytes.lock().unwrap().contains(&record), "record {record} acknowledged before written");
                })
            })
            .collect();
        group.with_sink(|_rotating| ());
        for writer in writers {
            writer.join().unwrap();
        }
        let mut written = bytes.lock().unwrap().clone();
        written.sort_unstable();
        assert_eq!(written, [1, 2], "each record exactly once");
    });
}
