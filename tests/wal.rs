//! The write-ahead log: what an index bound to a directory promises about acknowledged writes,
//! one writer per directory, and replay that is strict about damage.
//!
//! The SIGKILL test's child is this test binary again, running the ignored test `wal_child`
//! (or `lock_holder`) with its directory in `VECINDEX_WAL_DIR`.

#![allow(clippy::disallowed_types)] // tests drive the index from std threads; the shim rule is the library's

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Script, State, exact_config, observe_maps};
use vecindex::{Chunk, Durability, Error, Index, OpenOptions, OpenReport, VectorIndex};

const PREFIX: &str = "VECINDEX-WAL";

fn open(dir: &Path, options: OpenOptions) -> vecindex::Result<(VectorIndex, OpenReport)> {
    VectorIndex::open_with_options(dir, &options.config(exact_config().head_capacity(16)))
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .map(|d| d.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "log")).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Every operation of `scripts`, run on `index` in turn (writer 0's first, ...).
fn run_all(index: &dyn Index, scripts: &[Script]) {
    for script in scripts {
        for i in 0..script.ops.len() {
            script.run(index, i);
        }
    }
}

fn states(index: &dyn Index, writers: usize) -> Vec<State> {
    (0..writers).map(|w| observe_maps(index, w)).collect()
}

#[test]
fn acknowledged_writes_survive_a_drop_without_persist_and_persist_retires_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let scripts: Vec<Script> = (0..3).map(|w| Script::new(w, 60)).collect();
    let index = VectorIndex::create(dir.path(), exact_config().head_capacity(16)).unwrap();
    run_all(&index, &scripts[..2]);
    let expected = states(&index, 3);
    drop(index); // no persist
    let (index, report) = open(dir.path(), OpenOptions::new().strict(true)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.log.replayed, 120, "every operation, from the log: {:?}", report.log);
    assert_eq!(states(&index, 3), expected);
    assert_eq!(index.reconcile_mappings(), 0);

    // A persist covers the log: the segments before it go, and the next open replays only
    // what came after.
    let before = log_files(dir.path());
    index.persist(dir.path()).unwrap();
    let after = log_files(dir.path());
    assert!(before.iter().all(|f| !after.contains(f)), "older segments retired: {before:?} -> {after:?}");
    run_all(&index, &scripts[2..]);
    let expected = states(&index, 3);
    drop(index);
    let (index, report) = open(dir.path(), OpenOptions::new().strict(true)).unwrap();
    assert_eq!(report.log.replayed, 60, "{:?}", report.log);
    assert_eq!(states(&index, 3), expected);
    assert_eq!(index.len(), expected.iter().flat_map(|s| s.values()).map(|c| c.len()).sum::<usize>());
}

#[test]
fn one_writer_per_directory_and_read_only_opens_alongside() {
    let dir = tempfile::tempdir().unwrap();
    let index = VectorIndex::create(dir.path(), exact_config()).unwrap();
    index.add_chunk(Chunk::new("c1", "d", common::vector(1))).unwrap();
    match open(dir.path(), OpenOptions::new()) {
        Err(Error::Locked { holder, .. }) => {
            assert!(holder.contains(&std::process::id().to_string()), "{holder}");
        }
        other => panic!("a second writer must get Locked, got {:?}", other.map(|(_, r)| r)),
    }
    assert!(matches!(VectorIndex::create(dir.path(), exact_config()), Err(Error::Locked { .. })));
    let other = VectorIndex::new(exact_config()).unwrap();
    assert!(matches!(other.persist(dir.path()), Err(Error::Locked { .. })), "no persist over a live writer");
    let (reader, report) = open(dir.path(), OpenOptions::new().read_only(true)).unwrap();
    assert_eq!(report.log.replayed, 1, "a reader sees the writer's acknowledged writes");
    assert_eq!(reader.chunk_ids("d"), ["c1"]);
    assert!(matches!(reader.add_chunk(Chunk::new("c2", "d", common::vector(2))), Err(Error::ReadOnly { .. })));
    assert!(matches!(reader.remove_document("d"), Err(Error::ReadOnly { .. })));
    assert!(matches!(reader.persist(dir.path()), Err(Error::ReadOnly { .. })));
    drop(index);
    let (index, _) = open(dir.path(), OpenOptions::new()).expect("the lock goes with the writer");
    assert!(matches!(VectorIndex::create(dir.path(), exact_config()), Err(Error::Locked { .. })));
    drop(index);
    assert!(matches!(VectorIndex::create(dir.path(), exact_config()), Err(Error::Exists { .. })));
}

/// A child forked while an index is open holds a copy of its lock file until it execs; an
/// index closed meanwhile and opened again must not fail on that copy.
#[test]
fn a_lock_a_forked_child_still_holds_for_a_moment_does_not_fail_the_next_open() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let index = VectorIndex::create(dir.path(), exact_config()).unwrap();
    let mut command = std::process::Command::new("true");
    // SAFETY: the closure runs in the forked child before exec and calls only usleep(3),
    // which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::usleep(300_000);
            Ok(())
        });
    }
    // `spawn` returns once the child has exec'd: fork it on another thread, and close and
    // reopen the index here while the child still holds the copies.
    let spawner = std::thread::spawn(move || command.spawn().unwrap().wait().unwrap());
    std::thread::sleep(Duration::from_millis(100));
    drop(index);
    let reopened = open(dir.path(), OpenOptions::new());
    spawner.join().unwrap();
    assert!(reopened.is_ok(), "{:?}", reopened.err());
}

/// A child that holds a directory for writing until killed.
#[test]
#[ignore = "run by `a_second_process_gets_locked_and_readers_still_open` as a child process"]
fn lock_holder() {
    let Ok(dir) = std::env::var("VECINDEX_WAL_DIR") else { return };
    let index = VectorIndex::open(Path::new(&dir)).unwrap();
    index.add_chunk(Chunk::new("held", "holder", common::vector(3))).unwrap();
    println!("{PREFIX} READY");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_second_process_gets_locked_and_readers_still_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(VectorIndex::create(dir.path(), exact_config()).unwrap());
    let mut child = spawn_child("lock_holder", dir.path(), &[]);
    let lines = BufReader::new(child.stdout.take().unwrap());
    assert!(lines.lines().map_while(Result::ok).any(|l| l.contains(&format!("{PREFIX} READY"))));
    match open(dir.path(), OpenOptions::new()) {
        Err(Error::Locked { holder, .. }) => assert!(holder.contains(&child.id().to_string()), "{holder}"),
        other => panic!("expected Locked, got {:?}", other.map(|(_, r)| r)),
    }
    let (reader, _) = open(dir.path(), OpenOptions::new().read_only(true)).unwrap();
    assert_eq!(reader.chunk_ids("holder"), ["held"], "the holder's acknowledged write, from its log");
    child.kill().unwrap();
    child.wait().unwrap();
    let (index, _) = open(dir.path(), OpenOptions::new()).expect("the kernel released the dead holder's lock");
    assert_eq!(index.chunk_ids("holder"), ["held"]);
}

fn spawn_child(test: &str, dir: &Path, env: &[(&str, String)]) -> std::process::Child {
    let mut all = vec![("VECINDEX_WAL_DIR", dir.as_os_str())];
    all.extend(env.iter().map(|(k, v)| (*k, std::ffi::OsStr::new(v))));
    common::spawn_test_child(test, &all)
}

/// A log of `writers` scripts of `ops` operations each, written by an index that was dropped
/// without a persist; returns the directory, the log segment with the records and where each
/// record ends in it.
fn written_log(writers: usize, ops: usize) -> (tempfile::TempDir, PathBuf, Vec<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let index = VectorIndex::create(dir.path(), exact_config().head_capacity(16)).unwrap();
    let scripts: Vec<Script> = (0..writers).map(|w| Script::new(w, ops)).collect();
    run_all(&index, &scripts);
    drop(index);
    let segment = log_files(dir.path()).pop().unwrap();
    let bytes = std::fs::read(&segment).unwrap();
    // Record ends, from each record's length field (the format in docs/format.md).
    let mut ends = Vec::new();
    let mut at = 48;
    while at < bytes.len() {
        at += 16 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        ends.push(at);
    }
    assert_eq!(at, bytes.len());
    assert_eq!(ends.len(), writers * ops);
    (dir, segment, ends)
}

#[test]
fn a_log_cut_at_any_byte_replays_the_whole_records_before_the_cut() {
    let (dir, segment, ends) = written_log(1, 12);
    let bytes = std::fs::read(&segment).unwrap();
    let script = Script::new(0, 12);
    for cut in 0..=bytes.len() {
        std::fs::write(&segment, &bytes[..cut]).unwrap();
        let options = OpenOptions::new().read_only(true).strict(true);
        let (index, report) = open(dir.path(), options).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let whole = ends.iter().filter(|&&end| end <= cut).count();
        assert_eq!(report.log.replayed, whole, "cut at {cut}");
        assert!(report.log.damage.is_none(), "cut at {cut}: a torn tail is not damage");
        // What a crash left past the last whole record (a header cut short counts too), up to
        // its last non-zero byte: segments are allocated zeroed ahead of their records.
        let from = if cut < 48 { 0 } else { *ends.iter().rev().find(|&&e| e <= cut).unwrap_or(&48) };
        let tail = bytes[from..cut].iter().rposition(|&b| b != 0).map_or(0, |last| last + 1);
        assert_eq!(report.log.torn_bytes, tail as u64, "cut at {cut}");
        assert_eq!(observe_maps(&index, 0), script.state_at(whole), "cut at {cut}");
    }
}

#[test]
fn a_flipped_bit_anywhere_in_the_log_is_reported_exactly_and_never_panics() {
    let (dir, segment, ends) = written_log(2, 10);
    let bytes = std::fs::read(&segment).unwrap();
    // The log holds every kind of record: a write that adds chunks, one that replaces a
    // document, a document removal, a chunk removal (the body's byte 8, and for writes the
    // replace flag after it). Every byte of it is flipped in turn.
    let starts: Vec<usize> = std::iter::once(48).chain(ends.iter().copied()).take(ends.len()).collect();
    let kind_of = |start: usize| (bytes[start + 16 + 8], bytes[start + 16 + 9]);
    const WRITE: u8 = 4; // (1 is a write as log version 1 wrote it)
    for kind in [(WRITE, 0), (WRITE, 1), (2, 0), (3, 0)] {
        let present = starts.iter().any(|&s| kind_of(s).0 == kind.0 && (kind.0 != WRITE || kind_of(s).1 == kind.1));
        assert!(present, "the scripts write a record of kind {kind:?}");
    }
    let mut cases = 0;
    for at in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 1 << (at % 8);
        std::fs::write(&segment, &damaged).unwrap();
        cases += 1;
        let strict = open(dir.path(), OpenOptions::new().read_only(true).strict(true));
        assert!(matches!(strict, Err(Error::Corrupt { .. })), "flip at {at}: strict refuses");
        let (_, report) = open(dir.path(), OpenOptions::new().read_only(true))
            .unwrap_or_else(|e| panic!("flip at {at}: a non-strict open works: {e}"));
        let damage = report.log.damage.as_ref().unwrap_or_else(|| panic!("flip at {at}: reported"));
        if at < 48 {
            assert_eq!((damage.offset, report.log.replayed), (0, 0), "flip at {at} (header)");
            assert_eq!(damage.records_not_replayed, ends.len(), "flip at {at}: every record counted");
        } else {
            let record = ends.iter().position(|&end| end > at).unwrap();
            let start = if record == 0 { 48 } else { ends[record - 1] };
            assert_eq!(damage.offset, start as u64, "flip at {at}: the damaged record's offset");
            assert_eq!(report.log.replayed, record, "flip at {at}: every record before it");
            assert_eq!(damage.records_not_replayed, ends.len() - record - 1, "flip at {at}: every record after it");
        }
        assert!(report.lost_data());
    }
    assert_eq!(cases, bytes.len());
    // A writable open after damage persists what it replayed and moves the damaged log aside.
    let mut damaged = bytes.clone();
    let middle = ends[ends.len() / 2] + 20;
    damaged[middle] ^= 0x10;
    std::fs::write(&segment, &damaged).unwrap();
    let (index, report) = open(dir.path(), OpenOptions::new()).unwrap();
    let replayed = report.log.replayed;
    assert!(replayed > 0 && report.log.damage.is_some());
    let kept = (index.len(), index.document_ids());
    drop(index);
    assert!(dir.path().join("quarantine").read_dir().unwrap().count() > 0, "the damaged segment kept for a human");
    let (index, report) = open(dir.path(), OpenOptions::new().strict(true)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((index.len(), index.document_ids()), kept, "the replayed state was persisted");
}

/// The child of the SIGKILL test: several writer threads run their scripts against the index
/// and report each operation on stdout once its call returned; the main thread persists now and
/// then (retiring log segments meanwhile).
#[test]
#[ignore = "run by `sigkill_never_loses_an_acknowledged_operation` as a child process"]
fn wal_child() {
    let (Ok(dir), Ok(run)) = (std::env::var("VECINDEX_WAL_DIR"), std::env::var("VECINDEX_WAL_RUN")) else { return };
    let (dir, run): (PathBuf, usize) = (dir.into(), run.parse().unwrap());
    let config = exact_config().head_capacity(16);
    let index = match VectorIndex::open_with(&dir, config.clone()) {
        Ok(index) => index,
        Err(Error::NoSnapshot { .. } | Error::Io { .. }) => VectorIndex::create(&dir, config).unwrap(),
        Err(e) => panic!("{e}"),
    };
    let index = Arc::new(index);
    println!("{PREFIX} READY");
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let index = index.clone();
            std::thread::spawn(move || {
                let w = run * WRITERS + t;
                let script = Script::new(w, CHILD_OPS);
                for i in 0..CHILD_OPS {
                    script.run(&*index, i);
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{PREFIX} ACK {w} {}", i + 1).unwrap();
                    out.flush().unwrap();
                    drop(out);
                    std::thread::sleep(Duration::from_micros(100));
                }
            })
        })
        .collect();
    while !writers.iter().all(|w| w.is_finished()) {
        std::thread::sleep(Duration::from_millis(15));
        index.persist(&dir).unwrap();
    }
    println!("{PREFIX} DONE");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

const WRITERS: usize = 3;
const RUNS_PER_DIR: usize = 50;

/// Every writer's namespace (`w{writer}-`) as the maps report it, in one pass.
fn observe_all(index: &VectorIndex) -> std::collections::HashMap<usize, State> {
    let mut all: std::collections::HashMap<usize, State> = std::collections::HashMap::new();
    for doc in index.document_ids() {
        let writer: usize = doc[1..doc.find('-').unwrap()].parse().unwrap();
        let mut chunks = std::collections::BTreeMap::new();
        for id in index.chunk_ids(&doc) {
            let chunk = index.chunk(&id).unwrap_or_else(|| panic!("{id} listed but not found"));
            assert_eq!(chunk.doc_id, doc);
            chunks.insert(id, common::version_tag(&chunk.metadata));
        }
        all.entry(writer).or_default().insert(doc, chunks);
    }
    all
}
const CHILD_OPS: usize = 300;

#[test]
fn sigkill_never_loses_an_acknowledged_operation() {
    let kills: usize = std::env::var("VECINDEX_WAL_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let root = tempfile::tempdir().unwrap();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut below = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let started = Instant::now();
    let mut settled: Vec<State> = Vec::new();
    let (mut acks, mut unacked_applied) = (0usize, 0usize);
    for run in 0..kills {
        // A fresh directory every RUNS_PER_DIR kills keeps each open's work bounded.
        let dir = root.path().join(format!("index{}", run / RUNS_PER_DIR));
        if run % RUNS_PER_DIR == 0 {
            settled.clear();
        }
        let mut child = spawn_child("wal_child", &dir, &[("VECINDEX_WAL_RUN", run.to_string())]);
        let lines = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                if let Some(at) = line.find(PREFIX)
                    && tx.send(line[at + PREFIX.len()..].trim().to_owned()).is_err()
                {
                    break;
                }
            }
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)).expect("the child opens"), "READY", "run {run}");
        std::thread::sleep(Duration::from_micros(below(40_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let mut acked = [0usize; WRITERS];
        for message in rx.try_iter() {
            if let Some(rest) = message.strip_prefix("ACK ") {
                let (w, n) = rest.split_once(' ').unwrap();
                let (w, n): (usize, usize) = (w.parse().unwrap(), n.parse().unwrap());
                acked[w - run * WRITERS] = acked[w - run * WRITERS].max(n);
                acks += 1;
            }
        }
        let (index, report) = open(
            &dir,
            OpenOptions::new().strict(true).read_only(true).config(exact_config().head_capacity(16).background(false)),
        )
        .unwrap_or_else(|e| panic!("run {run}: open after SIGKILL: {e}"));
        assert!(report.is_clean(), "run {run}: {report:?}");
        let mut all = observe_all(&index);
        for (t, &acked) in acked.iter().enumerate() {
            let w = run * WRITERS + t;
            let observed = all.remove(&w).unwrap_or_default();
            // Every acknowledged operation, and at most the one in flight after it.
            let k = Script::new(w, CHILD_OPS)
                .find_prefix(&observed, acked, acked)
                .unwrap_or_else(|e| panic!("run {run}, writer {w} (acknowledged {acked}): {e}"));
            unacked_applied += usize::from(k > acked);
            settled.push(observed);
        }
        let first = run / RUNS_PER_DIR * RUNS_PER_DIR * WRITERS;
        for (earlier, state) in settled.iter().enumerate().take(run * WRITERS - first).map(|(i, s)| (first + i, s)) {
            let now = all.remove(&earlier).unwrap_or_default();
            assert_eq!(&now, state, "run {run}: writer {earlier}'s documents changed");
        }
        assert!(all.is_empty(), "run {run}: documents of writers that never ran: {:?}", all.keys());
        assert_eq!(index.reconcile_mappings(), 0, "run {run}");
    }
    eprintln!(
        "{kills} SIGKILLs in {:.1} s: {acks} operations acknowledged, all found after reopening; \
         {unacked_applied} operations in flight at the kill were found applied",
        started.elapsed().as_secs_f64()
    );
    assert!(acks > kills, "the children acknowledged operations: {acks}");
}

/// A real full disk under the log: a small tmpfs. Needs the right to mount (root with
/// CAP_SYS_ADMIN, as in CI here); elsewhere it says so and skips.
#[test]
fn a_full_disk_fails_the_write_alone_and_the_log_goes_on_once_there_is_room() {
    let Some(mount) = common::Tmpfs::mount("4m") else { return };
    let dir = mount.path().join("index");
    let index = VectorIndex::create(&dir, exact_config().background(false)).unwrap();
    let text = "x".repeat(4000);
    let doc = |i: usize| -> Vec<Chunk> {
        (0..3)
            .map(|c| {
                Chunk::new(format!("d{i}-c{c}"), format!("d{i}"), common::vector((i * 3 + c) as u64)).with_text(&text)
            })
            .collect()
    };
    let mut acknowledged = Vec::new();
    let error = loop {
        let i = acknowledged.len();
        match index.add_document(&format!("d{i}"), doc(i)) {
            Ok(()) => acknowledged.push(format!("d{i}")),
            Err(e) => break e,
        }
        assert!(i < 1000, "4 MiB never filled up");
    };
    assert!(error.is_storage_full(), "a typed error: {error}");
    let failed = format!("d{}", acknowledged.len());
    assert!(index.chunk_ids(&failed).is_empty(), "the failed write is not applied");
    assert_eq!(index.document_ids().len(), acknowledged.len());
    assert_eq!(index.len(), 3 * acknowledged.len());
    assert!(index.search(&common::vector(1), &vecindex::SearchOptions::k(3)).is_ok(), "the index still answers");
    let again = index.add_document(&failed, doc(acknowledged.len())).unwrap_err();
    assert!(again.is_storage_full(), "still full: refused again: {again}");
    assert!(index.chunk_ids(&failed).is_empty(), "and not applied");

    mount.resize("64m");
    index.add_document(&failed, doc(acknowledged.len())).expect("with room again, writes go on");
    acknowledged.push(failed);
    assert_eq!(index.remove_document("d0").unwrap(), 3);
    acknowledged.remove(0);
    drop(index);
    let (index, report) = open(&dir, OpenOptions::new().strict(true)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let mut expected = acknowledged.clone();
    expected.sort();
    assert_eq!(index.document_ids(), expected, "every acknowledged write, nothing else");
}

/// Every level that logs keeps what it acknowledged across several segments (so that the
/// helper makes the next ones) and a persist's
/// rotation (which installs the segment the helper made), with writers on four threads.
#[test]
fn every_level_keeps_what_it_acknowledged_across_segments_and_a_rotation() {
    let text = "t".repeat(20_000);
    let levels = [Durability::ProcessCrash, Durability::PowerLoss, Durability::Interval(Duration::from_millis(5))];
    for durability in levels {
        let dir = tempfile::tempdir().unwrap();
        let index = VectorIndex::create(dir.path(), exact_config().durability(durability)).unwrap();
        // 4 writers x 20 documents x 3 chunks of 20 KB before the persist, as many after: about
        // 4.8 MB each, past the first segments (1, 2 and 4 MiB).
        let write = |docs: std::ops::Range<usize>| {
            std::thread::scope(|s| {
                for w in 0..4 {
                    let (index, text, docs) = (&index, &text, docs.clone());
                    s.spawn(move || {
                        for d in docs {
                            let doc = format!("w{w}-d{d}");
                            let chunks = (0..3)
                                .map(|c| {
                                    Chunk::new(
                                        format!("{doc}-c{c}"),
                                        &doc,
                                        common::vector((w * 1000 + d * 3 + c) as u64),
                                    )
                                    .with_text(format!("{doc}-c{c} {text}"))
                                })
                                .collect();
                            index.add_document(&doc, chunks).unwrap();
                        }
                    });
                }
            });
        };
        write(0..20);
        let segments = log_files(dir.path());
        assert!(segments.len() >= 3, "{durability:?}: the records span segments: {segments:?}");
        index.persist(dir.path()).unwrap();
        write(20..40);
        let expected = index.document_ids();
        assert_eq!(expected.len(), 160);
        drop(index);
        let (index, report) = open(dir.path(), OpenOptions::new().strict(true)).unwrap();
        assert!(report.is_clean(), "{durability:?}: {report:?}");
        assert_eq!(index.document_ids(), expected, "{durability:?}");
        for id in ["w0-d0-c0", "w3-d39-c2", "w2-d20-c1"] {
            let chunk = index.chunk(id).unwrap_or_else(|| panic!("{durability:?}: {id} lost"));
            assert!(
                chunk.text.starts_with(id) && chunk.text.len() == id.len() + 1 + text.len(),
                "{durability:?}: {id}"
            );
        }
    }
}
