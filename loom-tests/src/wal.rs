//! Models of `src/wal/` against writers and a persist: every acknowledged write survives the
//! log's rotation and retirement.
//!
//! A writer adds two documents to an index bound to a directory (so each goes through the
//! write-ahead log's group commit) while the main thread persists into that directory, which
//! starts a new log segment, snapshots, and removes the segments the snapshot covers. The index
//! is then dropped without another persist and opened again (strict): both documents,
//! acknowledged before the drop, must be there, from the snapshot or from the log. The files are
//! real, in a fresh directory per execution (on `/dev/shm` where there is one). (The group
//! commit among concurrent writers has its own model, `group_commit_*`, without files, and the
//! helper that prepares segments ahead of the leader its own, `the_log_helper_*`.)
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

/// The log's leader and its helper (`src/wal/ahead.rs`) racing over the next segment: the leader
/// appends three records to a segment with room for two, so the helper is asked for the next one
/// (and to fault pages in) and the leader installs it, or makes its own, while the helper works;
/// then the log is dropped, which stops the helper. Each segment number is made once (a second
/// creation fails the append), the records read back in segment order are the three in order,
/// and the helper is always joined (never by itself).
///
/// Injected bugs this catches: `ahead_make_taken_number` (the leader makes the number the helper
/// is making, and one of them finds the file there), `ahead_retire_with_handle` (a segment handed
/// to the helper keeps the helper's handle, so the helper can drop the last one and join itself).
#[test]
fn the_log_helper_makes_each_segment_once_and_keeps_records_in_order() {
    use vecindex::internals::Sink;
    const HEADER: usize = 48;
    let records: Vec<Vec<u8>> = (1..=3u8).map(|r| vec![r; 96]).collect();
    let dirs = FreshDirs::new();
    loom::model(move || {
        let dir = dirs.next();
        {
            let mut log = vecindex::internals::log_segment_with_helper(&dir, 256).unwrap();
            for record in &records {
                log.append(record).unwrap();
            }
        }
        let mut segments: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        segments.sort();
        let mut read = Vec::new();
        for segment in &segments {
            let bytes = std::fs::read(segment).unwrap();
            read.extend(bytes[HEADER.min(bytes.len())..].iter().copied().filter(|&b| b != 0));
        }
        assert_eq!(read, records.concat(), "records across {segments:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    });
}
