//! Persistence: round trips, incremental writes, serialized persists, a full disk at every step,
//! and the documented outcome of every kind of damage to every kind of file.

#![allow(clippy::disallowed_types)] // tests drive the index from std threads; the shim rule is the library's

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{exact_config, vector};
use proptest::prelude::*;
use vecindex::testing::ids::IdsFile;
use vecindex::testing::manifest::{MANIFEST, MANIFEST_PREV, Manifest};
use vecindex::testing::{FaultyDirectory, FileRef, LocalDirectory, persist_in};
use vecindex::{
    Chunk, Error, Filter, Index, IndexConfig, MutexIndex, OpenOptions, OpenReport, SearchOptions, VectorIndex,
};

/// Every document and its chunks (vectors, text and metadata included), as the maps and
/// `get_chunk` report them.
type Contents = BTreeMap<String, Vec<Chunk>>;

fn contents(index: &dyn Index) -> Contents {
    index
        .document_ids()
        .into_iter()
        .map(|doc| {
            let chunks = index
                .chunk_ids(&doc)
                .iter()
                .map(|id| index.chunk(id).unwrap_or_else(|| panic!("{id} listed but missing")))
                .collect();
            (doc, chunks)
        })
        .collect()
}

/// Small heads, FAISS "Flat" on every sealed segment (so FAISS files exist), merges four at a
/// time, no background thread (maintenance runs when a test says so).
fn config() -> IndexConfig {
    exact_config().head_capacity(16).background(false)
}

fn doc(i: usize, version: u32) -> Vec<Chunk> {
    (0..3 + i % 3)
        .map(|c| {
            Chunk::new(format!("d{i}-c{c}"), format!("d{i}"), vector((i * 10 + c) as u64 + 1000 * version as u64))
                .with_text(format!("document {i} chunk {c} version {version}"))
                .with_meta("version", version.to_string())
                .with_meta("group", (i % 3).to_string())
        })
        .collect()
}

/// The first snapshot's operations: 40 documents, two removed, one chunk removed.
fn first_state(index: &dyn Index) {
    for i in 0..40 {
        index.add_document(&format!("d{i}"), doc(i, 1)).unwrap();
    }
    index.remove_document("d5").unwrap();
    index.remove_document("d6").unwrap();
    assert!(index.remove_chunk("d7-c0").unwrap());
}

/// The second snapshot's: more documents, a replacement, removals; the last ones stay in the head.
fn second_state(index: &dyn Index, maintain: impl Fn()) {
    for i in 40..50 {
        index.add_document(&format!("d{i}"), doc(i, 1)).unwrap();
    }
    index.add_document("d3", doc(3, 2)).unwrap();
    index.remove_document("d8").unwrap();
    assert!(index.remove_chunk("d9-c1").unwrap());
    maintain();
    for i in 50..52 {
        index.add_document(&format!("d{i}"), doc(i, 1)).unwrap();
    }
}

fn queries() -> Vec<(Vec<f32>, SearchOptions)> {
    (0..20)
        .map(|q| {
            let options = match q % 3 {
                0 => SearchOptions::k(7),
                1 => SearchOptions::k(5).filter(Filter::eq("group", "1")),
                _ => SearchOptions::k(50).exclude_doc("d1"),
            };
            (vector(9000 + q), options)
        })
        .collect()
}

fn open(dir: &Path, options: OpenOptions) -> vecindex::Result<(VectorIndex, OpenReport)> {
    VectorIndex::open_with_options(dir, &options.config(config()))
}

fn assert_same_answers(a: &dyn Index, b: &dyn Index, what: &str) {
    assert_eq!(contents(a), contents(b), "{what}: contents");
    for (q, options) in queries() {
        assert_eq!(a.search(&q, &options).unwrap(), b.search(&q, &options).unwrap(), "{what}: search {options:?}");
    }
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(
        (sa.dim, sa.metric, sa.chunks, sa.documents, sa.next_seq, sa.vocabulary_terms),
        (sb.dim, sb.metric, sb.chunks, sb.documents, sb.next_seq, sb.vocabulary_terms),
        "{what}: stats"
    );
    let live = |s: &vecindex::Stats| s.segments.iter().map(|g| g.live_rows).sum::<usize>();
    assert_eq!(live(&sa), live(&sb), "{what}: live rows");
    assert_eq!(live(&sa), sa.chunks);
}

#[test]
fn round_trip_gives_identical_answers_mappings_and_stats() {
    for factory in ["exact", "Flat", "HNSW32,Flat", "HNSW32"] {
        if factory != "exact" && !cfg!(feature = "faiss") {
            continue;
        }
        let segments = match factory {
            "exact" => vecindex::SegmentIndex::exact(),
            factory => vecindex::SegmentIndex::faiss(factory).min_rows(0),
        };
        let config = config().segment_index(segments);
        let index = VectorIndex::new(config.clone()).unwrap();
        first_state(&index);
        second_state(&index, || {
            index.maintain();
        });
        let dir = tempfile::tempdir().unwrap();
        let report = index.persist(dir.path()).unwrap();
        assert_eq!((report.generation, report.rows), (1, index.len()));

        let (reopened, opened) = VectorIndex::open_with_options(dir.path(), &OpenOptions::new().strict(true)).unwrap();
        assert!(opened.is_clean(), "{opened:?}");
        assert_eq!(opened.chunks, index.len());
        assert_eq!(reopened.config(), &config.clone().background(true), "the persisted settings come back");
        assert_same_answers(&index, &reopened, factory);
        // The heads' rows come back as one more sealed segment, with the current head's id; it
        // is exact until the worker indexes it. Every other segment's FAISS index is loaded.
        let head_id = index.stats().segments.iter().find(|s| s.label() == "head").unwrap().id;
        for segment in reopened.stats().segments.iter().filter(|s| s.label() != "head") {
            assert!(segment.mapped, "{factory}: sealed segments are read from the mapping: {segment:?}");
            // A plain HNSW index keeps no graph per segment: its shared graph is below.
            if !["exact", "HNSW32"].contains(&factory) && segment.id != head_id {
                assert_eq!(segment.label(), factory, "{factory}: its index was loaded, not rebuilt");
            }
        }
        if factory == "HNSW32" {
            // The shared graph came back with the sealed segments it covered: the rows that were
            // in heads (now one more segment) are all it has to take in.
            let stats = reopened.stats();
            let sealed: usize =
                stats.segments.iter().filter(|s| s.id != head_id && s.label() != "head").map(|s| s.rows).sum();
            assert_eq!(stats.graph.map(|g| g.nodes), Some(sealed), "{factory}: the graph file was read");
            reopened.maintain();
            let stats = reopened.stats();
            let rows: usize = stats.segments.iter().map(|s| s.rows).sum();
            assert_eq!(stats.graph.map(|g| g.nodes), Some(rows), "{factory}: the graph takes in every row again");
            assert_same_answers(&index, &reopened, factory);
        }
        // The reopened index keeps working: writes, deletes, another round trip.
        reopened.add_document("new", doc(77, 3)).unwrap();
        reopened.remove_document("d10").unwrap();
        reopened.persist(dir.path()).unwrap();
        // `reopened` holds the directory for writing: a second handle opens it read-only.
        let read_only = OpenOptions::new().strict(true).read_only(true);
        let (again, report) = VectorIndex::open_with_options(dir.path(), &read_only).unwrap();
        assert!(report.is_clean() && report.generation == 2, "{report:?}");
        assert_same_answers(&reopened, &again, factory);
    }

    let mutex = MutexIndex::new(config()).unwrap();
    first_state(&mutex);
    second_state(&mutex, || {});
    let dir = tempfile::tempdir().unwrap();
    mutex.persist(dir.path()).unwrap();
    let reopened = MutexIndex::open_with(dir.path(), config()).unwrap();
    assert_same_answers(&mutex, &reopened, "MutexIndex");
    let vector_view = VectorIndex::open_with(dir.path(), config()).unwrap();
    assert_eq!(contents(&vector_view), contents(&mutex), "one format for both designs");
}

fn file_names(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap()))
        .collect()
}

#[test]
fn a_persist_of_an_unchanged_snapshot_writes_only_a_manifest() {
    let index = VectorIndex::new(config()).unwrap();
    first_state(&index);
    second_state(&index, || {
        index.maintain();
    });
    let dir = tempfile::tempdir().unwrap();
    let first = index.persist(dir.path()).unwrap();
    let before = file_names(dir.path());
    let second = index.persist(dir.path()).unwrap();
    assert_eq!(
        (second.files_written, second.bytes_written),
        (1, std::fs::metadata(dir.path().join(MANIFEST)).unwrap().len())
    );
    assert_eq!(second.files_reused, first.files_written - 1, "every other file was already there");
    let after = file_names(dir.path());
    for (name, bytes) in &before {
        if name != MANIFEST && name != MANIFEST_PREV {
            assert_eq!(after.get(name), Some(bytes), "{name} untouched");
        }
    }
    assert_eq!(after[MANIFEST_PREV], before[MANIFEST], "the previous manifest is kept");

    // The same after open: the opened segments are the files already there.
    let (reopened, _) = open(dir.path(), OpenOptions::new()).unwrap();
    let third = reopened.persist(dir.path()).unwrap();
    assert_eq!(third.files_written, 1, "{third:?}");
}

#[test]
fn a_persist_after_a_few_more_rows_writes_only_the_head_and_the_tombstones() {
    let index = VectorIndex::new(config()).unwrap();
    for i in 0..300 {
        index.add_document(&format!("d{i}"), doc(i, 1)).unwrap();
    }
    index.maintain();
    let dir = tempfile::tempdir().unwrap();
    let full = index.persist(dir.path()).unwrap();
    // About 1% more rows (fewer than a head holds), and two deletes.
    let mut added = 0;
    for i in 300..303 {
        added += doc(i, 1).len();
        index.add_document(&format!("d{i}"), doc(i, 1)).unwrap();
    }
    index.remove_document("d17").unwrap();
    index.remove_chunk("d18-c0").unwrap();
    let step = index.persist(dir.path()).unwrap();
    eprintln!(
        "full persist: {} rows, {} files, {} bytes; after +{added} rows: {} files, {} bytes ({:.1}%)",
        full.rows,
        full.files_written,
        full.bytes_written,
        step.files_written,
        step.bytes_written,
        100.0 * step.bytes_written as f64 / full.bytes_written as f64
    );
    // The head's rows and ids files, the tombstones file, the manifest.
    assert_eq!(step.files_written, 4, "{step:?}");
    assert!(step.bytes_written * 10 < full.bytes_written, "{step:?} against {full:?}");
    let (reopened, report) = open(dir.path(), OpenOptions::new().strict(true)).unwrap();
    assert!(report.is_clean());
    assert_same_answers(&index, &reopened, "incremental");
}

fn manifest_files(dir: &Path, name: &str) -> Vec<String> {
    let path = dir.join(name);
    Manifest::decode(&path, &std::fs::read(&path).unwrap()).unwrap().files()
}

#[test]
fn files_of_the_previous_manifest_stay_until_the_commit_after_next() {
    let index = VectorIndex::new(config()).unwrap();
    first_state(&index);
    index.maintain();
    let dir = tempfile::tempdir().unwrap();
    index.persist(dir.path()).unwrap();
    let first = manifest_files(dir.path(), MANIFEST);
    // Remove most documents: the vacuum rewrites their segments, so the next snapshot names
    // other files.
    for i in 0..35 {
        index.remove_document(&format!("d{i}")).unwrap();
    }
    index.maintain();
    index.persist(dir.path()).unwrap();
    let second = manifest_files(dir.path(), MANIFEST);
    assert_eq!(manifest_files(dir.path(), MANIFEST_PREV), first);
    let only_first: Vec<&String> = first.iter().filter(|f| !second.contains(f)).collect();
    assert!(!only_first.is_empty(), "the vacuum changed some files");
    assert!(first.iter().all(|f| dir.path().join(f).exists()), "the previous snapshot is whole");
    index.add_document("new", doc(90, 1)).unwrap();
    index.persist(dir.path()).unwrap();
    assert!(only_first.iter().all(|f| !dir.path().join(f).exists()), "collected after the next commit");
    assert!(second.iter().all(|f| dir.path().join(f).exists()), "the new previous snapshot is whole");
    let mut ours: Vec<String> = manifest_files(dir.path(), MANIFEST);
    ours.extend(second);
    ours.extend([MANIFEST.into(), MANIFEST_PREV.into(), "LOCK".into()]);
    for name in file_names(dir.path()).into_keys() {
        assert!(ours.contains(&name), "{name} is named by neither manifest");
    }
}

#[test]
fn concurrent_persists_to_one_directory_never_interleave() {
    let index = Arc::new(VectorIndex::new(config().background(true)).unwrap());
    first_state(&*index);
    let dir = tempfile::tempdir().unwrap();
    index.persist(dir.path()).unwrap();
    // A second index of the same lineage (opened from a copy: one writer per directory),
    // persisting into the same directory at the same time.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    let (twin, _) = open(copy.path(), OpenOptions::new()).unwrap();
    let twin = Arc::new(twin);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (index, stop) = (index.clone(), stop.clone());
        std::thread::spawn(move || {
            for i in 100..2000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                index.add_document(&format!("d{i}"), doc(i, 1)).unwrap();
            }
        })
    };
    let persisters: Vec<_> = (0..4)
        .map(|t| {
            let handle: Arc<dyn Index> = if t == 3 { twin.clone() } else { index.clone() };
            let path = dir.path().to_owned();
            std::thread::spawn(move || (0..10).map(|_| handle.persist(&path).unwrap().generation).collect::<Vec<_>>())
        })
        .collect();
    let mut generations: Vec<u64> = persisters.into_iter().flat_map(|p| p.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    generations.sort();
    let unique = generations.len();
    generations.dedup();
    assert_eq!(generations.len(), unique, "every commit got its own generation: none interleaved");
    assert_eq!(generations, (2..2 + unique as u64).collect::<Vec<_>>());
    let (_, report) = open(dir.path(), OpenOptions::new().strict(true)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let leftovers: Vec<String> = file_names(dir.path()).into_keys().filter(|n| n.contains(".tmp-")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for (name, bytes) in file_names(from) {
        std::fs::write(to.join(name), bytes).unwrap();
    }
}

/// Persists the first state, then the second; returns the directory and both states.
struct Fixture {
    dir: tempfile::TempDir,
    first: Contents,
    second: Contents,
    index: VectorIndex,
}

fn fixture() -> Fixture {
    let index = VectorIndex::new(config()).unwrap();
    first_state(&index);
    index.maintain();
    let dir = tempfile::tempdir().unwrap();
    index.persist(dir.path()).unwrap();
    let first = contents(&index);
    second_state(&index, || {
        index.maintain();
    });
    index.persist(dir.path()).unwrap();
    let second = contents(&index);
    Fixture { dir, first, second, index }
}

#[test]
fn a_full_disk_at_any_step_of_a_persist_loses_nothing() {
    let f = fixture();
    // A third state, persisted into copies of the directory holding the second.
    f.index.add_document("late", doc(60, 4)).unwrap();
    f.index.remove_document("d20").unwrap();
    f.index.maintain();
    let third = contents(&f.index);
    let scratch = tempfile::tempdir().unwrap();
    let probe = scratch.path().join("probe");
    copy_dir(f.dir.path(), &probe);
    let counted = FaultyDirectory::new(LocalDirectory::new(&probe));
    persist_in(&f.index, &counted).unwrap();
    let steps = counted.steps();
    assert!(steps > 10, "a persist of new segments takes many steps: {steps}");

    let mut failed = Vec::new(); // (step, whether the new snapshot was already committed)
    for step in 0..steps {
        let dir = scratch.path().join(format!("step{step}"));
        copy_dir(f.dir.path(), &dir);
        let outcome = {
            let full = FaultyDirectory::new(LocalDirectory::new(&dir));
            full.fail_step(step);
            persist_in(&f.index, &full)
        };
        // Ok: a step after the commit (collecting garbage), whose failure is only logged.
        if let Err(e) = outcome {
            assert!(e.is_storage_full(), "step {step}: {e}");
            let (opened, report) = open(&dir, OpenOptions::new().strict(true)).unwrap();
            assert!(report.is_clean(), "step {step}: {report:?}");
            let state = contents(&opened);
            assert!(state == f.second || state == third, "step {step}: neither snapshot");
            failed.push((step, state == third));
        }
        let report = f.index.persist(&dir).expect("the next persist with room succeeds");
        let (opened, _) = open(&dir, OpenOptions::new().strict(true)).unwrap();
        assert_eq!(contents(&opened), third, "step {step}");
        let leftovers: Vec<String> = file_names(&dir).into_keys().filter(|n| n.contains(".tmp-")).collect();
        assert!(leftovers.is_empty(), "step {step}: {leftovers:?} after {report:?}");
    }
    // Every failure leaves the previous snapshot, except a failure of the very last step that
    // can fail a persist (the directory fsync after the new MANIFEST's rename).
    let last = failed.last().map(|&(step, _)| step);
    for &(step, committed) in &failed {
        assert!(!committed || Some(step) == last, "step {step} failed but committed");
    }
    let failed = failed.len();
    assert!(failed + 8 >= steps, "most steps fail the persist: {failed} of {steps}");
}

/// A real full disk: a small tmpfs. Needs the right to mount (root with CAP_SYS_ADMIN, as in CI
/// here); elsewhere it says so and skips (the injected-failure test above covers every step).
#[test]
fn a_real_full_disk_is_a_typed_error_and_the_next_persist_with_room_succeeds() {
    let Some(mount) = common::Tmpfs::mount("400k") else { return };
    let dir = mount.path().join("index");
    let index = VectorIndex::new(config().head_capacity(64)).unwrap();
    first_state(&index);
    index.maintain();
    index.persist(&dir).unwrap();
    let mut last_persisted = contents(&index);
    let mut i = 1000;
    let error = loop {
        for _ in 0..200 {
            index.add_document(&format!("big{i}"), doc(i, 5)).unwrap();
            i += 1;
        }
        index.maintain();
        match index.persist(&dir) {
            Ok(_) => last_persisted = contents(&index),
            Err(e) => break e,
        }
        assert!(i < 20_000, "400 KiB never filled up");
    };
    assert!(error.is_storage_full(), "{error}");
    let (opened, report) = open(&dir, OpenOptions::new().strict(true)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(contents(&opened), last_persisted, "the last snapshot that committed opens intact");
    drop(opened); // it holds the directory for writing
    mount.resize("64m");
    index.persist(&dir).expect("with room again");
    let (opened, _) = open(&dir, OpenOptions::new().strict(true)).unwrap();
    assert_eq!(contents(&opened), contents(&index));
}

/// Where each kind of file of the fixture is.
struct Files {
    sealed_rows: String,
    sealed_ids: String,
    head_rows: String,
    faiss: Option<String>,
    tombstones: String,
    /// Chunk ids the sealed rows file holds that are live in the second state, by document.
    sealed_live: BTreeMap<String, usize>,
    head_live: BTreeMap<String, usize>,
}

fn files(f: &Fixture) -> Files {
    let dir = f.dir.path();
    let manifest = Manifest::decode(&dir.join(MANIFEST), &std::fs::read(dir.join(MANIFEST)).unwrap()).unwrap();
    let stored = manifest.tombstones.unwrap();
    let tombstones = vecindex::testing::manifest::tombstones_name(stored.checksum);
    let path = dir.join(&tombstones);
    let deletes =
        vecindex::testing::tombstones::decode(&path, &std::fs::read(&path).unwrap(), stored.into(), manifest.seq)
            .unwrap();
    // Live rows of a segment by document: in the snapshot (added before its seq), not deleted.
    let live_by_doc = |segment: &vecindex::testing::manifest::StoredSegment| {
        let path = dir.join(segment.ids_name());
        let bytes = std::fs::read(&path).unwrap();
        let ids = IdsFile::decode(&path, &bytes, FileRef::from(segment.ids_file), segment.rows_file.checksum).unwrap();
        let dead: Vec<u32> =
            deletes.get(&segment.id).map(|d| d.iter().map(|&(row, _)| row).collect()).unwrap_or_default();
        let mut live = BTreeMap::new();
        for (row, (doc, add_seq)) in ids.doc_ids.iter().zip(&ids.add_seqs).enumerate() {
            if *add_seq < manifest.seq && !dead.contains(&(row as u32)) {
                *live.entry(doc.clone()).or_insert(0) += 1;
            }
        }
        live
    };
    // The sealed segment with the most live rows, so its loss is visible.
    let sealed = manifest.segments.iter().max_by_key(|s| live_by_doc(s).values().sum::<usize>()).unwrap();
    let head = manifest.head.as_ref().expect("the fixture leaves rows in the head");
    let (sealed_live, head_live) = (live_by_doc(sealed), live_by_doc(head));
    assert!(sealed_live.values().sum::<usize>() > 0 && head_live.values().sum::<usize>() > 0);
    Files {
        sealed_rows: sealed.rows_name(),
        sealed_ids: sealed.ids_name(),
        head_rows: head.rows_name(),
        faiss: sealed.faiss_name(),
        tombstones,
        sealed_live,
        head_live,
    }
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    FlipHeader,
    FlipBody,
    Truncate,
    Delete,
}

fn damage(path: &Path, how: Damage) {
    let mut bytes = std::fs::read(path).unwrap();
    match how {
        Damage::FlipHeader => bytes[20] ^= 0x01,
        Damage::FlipBody => {
            let at = 64 + (bytes.len() - 64) / 2;
            bytes[at] ^= 0x80;
        }
        Damage::Truncate => bytes.truncate(bytes.len() * 2 / 3),
        Damage::Delete => return std::fs::remove_file(path).unwrap(),
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn every_kind_of_damage_to_every_kind_of_file_has_its_documented_outcome() {
    let f = fixture();
    let files = files(&f);
    let scratch = tempfile::tempdir().unwrap();
    let mut n = 0;
    let kinds: Vec<(&str, String)> = [
        ("manifest", Some(MANIFEST.to_owned())),
        ("previous manifest", Some(MANIFEST_PREV.to_owned())),
        ("tombstones", Some(files.tombstones.clone())),
        ("sealed rows", Some(files.sealed_rows.clone())),
        ("head rows", Some(files.head_rows.clone())),
        ("ids", Some(files.sealed_ids.clone())),
        ("faiss", files.faiss.clone()),
    ]
    .into_iter()
    .filter_map(|(kind, name)| Some((kind, name?)))
    .collect();
    assert_eq!(kinds.len(), if cfg!(feature = "faiss") { 7 } else { 6 });
    for (kind, name) in &kinds {
        for how in [Damage::FlipHeader, Damage::FlipBody, Damage::Truncate, Damage::Delete] {
            n += 1;
            let dir = scratch.path().join(format!("case{n}"));
            copy_dir(f.dir.path(), &dir);
            damage(&dir.join(name), how);
            let case = format!("{kind} ({name}) {how:?}");
            let strict = open(&dir, OpenOptions::new().strict(true)).map(|(_, report)| report);
            let untouched_by_strict = !matches!(how, Damage::Delete) && dir.join(name).exists();
            let (opened, report) = open(&dir, OpenOptions::new()).unwrap_or_else(|e| panic!("{case}: {e}"));
            let state = contents(&opened);
            match *kind {
                "manifest" | "tombstones" => {
                    assert!(matches!(strict, Err(Error::Corrupt { .. })), "{case}: strict refuses");
                    assert_eq!(report.manifest, MANIFEST_PREV, "{case}");
                    assert!(report.fell_back.is_some() && report.lost_data(), "{case}: {report:?}");
                    assert_eq!(state, f.first, "{case}: the previous snapshot");
                }
                "previous manifest" => {
                    assert!(strict.is_ok(), "{case}");
                    assert!(report.is_clean(), "{case}: {report:?}");
                    assert_eq!(state, f.second, "{case}");
                }
                "sealed rows" | "head rows" => {
                    assert!(matches!(strict, Err(Error::Corrupt { .. })), "{case}: strict refuses");
                    assert!(untouched_by_strict || matches!(how, Damage::Delete), "{case}: strict mode moves nothing");
                    let lost = if *kind == "sealed rows" { &files.sealed_live } else { &files.head_live };
                    assert_eq!(report.quarantined.len(), 1, "{case}: {report:?}");
                    let quarantined = &report.quarantined[0];
                    assert_eq!(quarantined.file, dir.join(name));
                    match how {
                        Damage::Delete => assert!(quarantined.moved_to.is_none()),
                        _ => assert!(
                            quarantined
                                .moved_to
                                .as_ref()
                                .is_some_and(|p| p.starts_with(dir.join("quarantine")) && p.exists())
                        ),
                    }
                    assert!(!dir.join(name).exists(), "{case}: moved aside");
                    let named: BTreeMap<String, usize> =
                        report.lost_documents.iter().map(|d| (d.doc_id.clone(), d.chunks_lost)).collect();
                    assert_eq!(&named, lost, "{case}: the lost documents are named with their chunk counts");
                    for d in &report.lost_documents {
                        assert_eq!(d.chunks_kept, f.second[&d.doc_id].len() - d.chunks_lost, "{case}: {}", d.doc_id);
                    }
                    assert_eq!(report.lost_rows_unknown, 0);
                    // Every other document is intact; a lost one keeps exactly its other chunks.
                    for (doc, chunks) in &f.second {
                        match lost.get(doc) {
                            None => assert_eq!(state.get(doc), Some(chunks), "{case}: {doc} intact"),
                            Some(&n) if n == chunks.len() => assert!(!state.contains_key(doc), "{case}: {doc} gone"),
                            Some(&n) => {
                                let kept = &state[doc];
                                assert_eq!(kept.len(), chunks.len() - n, "{case}: {doc}");
                                assert!(
                                    kept.iter().all(|c| chunks.contains(c)),
                                    "{case}: {doc} kept only its own chunks"
                                );
                            }
                        }
                    }
                }
                "ids" | "faiss" => {
                    assert!(strict.is_ok(), "{case}: healing loses nothing, strict opens");
                    assert_eq!(report.healed.len(), 1, "{case}: {report:?}");
                    assert!(report.quarantined.is_empty() && report.fell_back.is_none());
                    assert_eq!(state, f.second, "{case}: nothing lost");
                    // The healed file comes back: rebuilt (FAISS) and rewritten by the next persist.
                    opened.maintain();
                    if *kind == "faiss" {
                        assert!(
                            opened.stats().segments.iter().filter(|s| s.label() != "head").all(|s| s.label() == "Flat")
                        );
                    }
                    opened.persist(&dir).unwrap();
                    // `opened` holds the directory for writing: look at it read-only.
                    let (_, again) = open(&dir, OpenOptions::new().strict(true).read_only(true)).unwrap();
                    assert!(again.is_clean(), "{case}: after the next persist: {again:?}");
                }
                _ => unreachable!(),
            }
            // Damage never costs more than the report says: search still answers.
            for (q, options) in queries() {
                opened.search(&q, &options).unwrap();
            }
        }
    }
    eprintln!("{n} damage cases, each with its documented outcome");
}

/// What to do to a file in the property test.
#[derive(Clone, Debug)]
struct Mutation {
    file: usize,
    /// (position as a fraction of the file, xor mask)
    flips: Vec<(f64, u8)>,
    truncate: Option<f64>,
    /// Recompute the checksums after mutating, so the archive validation and the checks behind
    /// it run on the damaged bytes (what a buggy writer, not a bad disk, would produce).
    fix_checksums: bool,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (0..7usize, prop::collection::vec((0.0..1.0f64, 1..=255u8), 1..6), prop::option::of(0.0..1.0f64), any::<bool>())
        .prop_map(|(file, flips, truncate, fix_checksums)| Mutation { file, flips, truncate, fix_checksums })
}

/// Rewrites a file's header so that both checksums match its (damaged) bytes again.
fn fix_checksums(bytes: &mut [u8]) {
    if bytes.len() < 64 {
        return;
    }
    let body_len = (bytes.len() - 64) as u64;
    bytes[32..40].copy_from_slice(&body_len.to_le_bytes());
    let body = xxhash_rust::xxh3::xxh3_64(&bytes[64..]);
    bytes[40..48].copy_from_slice(&body.to_le_bytes());
    let header = xxhash_rust::xxh3::xxh3_64(&bytes[..56]);
    bytes[56..64].copy_from_slice(&header.to_le_bytes());
}

#[test]
fn random_damage_to_any_file_never_panics_and_never_drops_data_silently() {
    let f = fixture();
    let files = files(&f);
    let mut names = vec![
        MANIFEST.to_owned(),
        MANIFEST_PREV.to_owned(),
        files.tombstones,
        files.sealed_rows,
        files.head_rows,
        files.sealed_ids,
    ];
    // A FAISS file is mutated but never given matching checksums: FAISS's own deserializer
    // trusts its input, which is why vecindex checks a FAISS file's checksum before FAISS
    // reads a byte of it.
    let faiss = files.faiss.map(|name| {
        names.push(name);
        names.len() - 1
    });
    let scratch = tempfile::tempdir().unwrap();
    let cases = std::env::var("VECINDEX_DAMAGE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases, ..ProptestConfig::default() });
    let counter = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&mutation(), |m| {
            let dir = scratch.path().join(format!("m{}", counter.fetch_add(1, Ordering::Relaxed)));
            copy_dir(f.dir.path(), &dir);
            let file = m.file % names.len();
            let fix = m.fix_checksums && Some(file) != faiss;
            let path = dir.join(&names[file]);
            let mut bytes = std::fs::read(&path).unwrap();
            for &(at, mask) in &m.flips {
                let at = ((bytes.len() as f64 * at) as usize).min(bytes.len() - 1);
                bytes[at] ^= mask;
            }
            if let Some(keep) = m.truncate {
                bytes.truncate((bytes.len() as f64 * keep) as usize);
            }
            if fix {
                fix_checksums(&mut bytes);
            }
            std::fs::write(&path, &bytes).unwrap();
            for strict in [true, false] {
                let Ok((opened, report)) = open(&dir, OpenOptions::new().strict(strict)) else { continue };
                let state = contents(&opened);
                for (q, options) in queries() {
                    opened.search(&q, &options).unwrap();
                }
                opened.reconcile_mappings();
                if !fix && report.is_clean() {
                    // Damage a checksum catches is never silent: a clean open is the snapshot.
                    prop_assert!(state == f.second, "clean report but other contents: {m:?}");
                }
                if !fix && report.fell_back.is_some() && report.quarantined.is_empty() {
                    prop_assert!(state == f.first, "fell back to something else: {m:?}");
                }
            }
            std::fs::remove_dir_all(&dir).unwrap();
            Ok(())
        })
        .unwrap();
    eprintln!("{cases} random mutations opened without a panic");
}

/// The storage seam: the same snapshots in a directory held in memory, and the same healing of
/// damage there, through the same writer and reader.
#[test]
fn a_ram_directory_takes_the_same_snapshots_and_heals_the_same_damage() {
    use vecindex::testing::{Directory, RamDirectory, open_in};
    let ram = RamDirectory::new("ram:index");
    let index = VectorIndex::new(config()).unwrap();
    first_state(&index);
    index.maintain();
    let first = persist_in(&index, &ram).unwrap();
    let state = contents(&index);
    let (opened, report) = open_in(&ram, &OpenOptions::new().strict(true)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(contents(&opened), state);
    // A second persist after a few more rows reuses the sealed segments' files.
    index.add_document("late", doc(70, 1)).unwrap();
    let second = persist_in(&index, &ram).unwrap();
    assert!(second.files_reused >= 1 && second.bytes_written < first.bytes_written, "{second:?}");
    // A flipped byte in a rows file: quarantined and reported by document, as on disk. The
    // largest rows file is a sealed segment's, which both persists name (the first persist's
    // head, for one, only the previous manifest names).
    let rows = ram
        .list()
        .unwrap()
        .into_iter()
        .filter(|(name, _)| name.ends_with(".rows"))
        .max_by_key(|&(_, bytes)| bytes)
        .map(|(name, _)| name)
        .unwrap();
    let mut bytes = ram.open(&rows, vecindex::testing::Access::Sequential).unwrap().to_vec();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    ram.overwrite(&rows, &bytes);
    let (_, report) = open_in(&ram, &OpenOptions::new()).unwrap();
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    assert!(!report.lost_documents.is_empty());
    assert_eq!(ram.quarantined(), [rows]);
    assert!(matches!(open_in(&RamDirectory::new("ram:empty"), &OpenOptions::new()), Err(Error::Io { .. })));
}

/// A plain HNSW index persists the graph its rows share: an open reads it back (the rows of the
/// heads, one more segment now, are all it inserts again), a persist after a few more rows
/// reuses the file, and a damaged or missing graph file is healed: its rows are inserted into a
/// new graph, nothing is lost, strict opens too.
#[test]
fn the_shared_graph_is_persisted_reused_and_healed() {
    if !cfg!(feature = "faiss") {
        return; // "HNSW32" configs are checked by FAISS in this build
    }
    let hnsw = || config().head_capacity(64).segment_index(vecindex::SegmentIndex::faiss("HNSW32").min_rows(0));
    let index = VectorIndex::new(hnsw()).unwrap();
    for i in 0..120 {
        index.add_document(&format!("d{i}"), doc(i, 1)).unwrap();
    }
    index.maintain();
    let sealed: usize = index.stats().segments.iter().filter(|s| s.label() != "head").map(|s| s.rows).sum();
    let dir = tempfile::tempdir().unwrap();
    index.persist(dir.path()).unwrap();
    let graph_files =
        |dir: &Path| -> Vec<String> { file_names(dir).into_keys().filter(|n| n.starts_with("graph-")).collect() };
    let written = graph_files(dir.path());
    assert_eq!(written.len(), 1, "{:?}", file_names(dir.path()).into_keys().collect::<Vec<_>>());
    let (reopened, report) = VectorIndex::open_with_options(dir.path(), &OpenOptions::new().strict(true)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let nodes = reopened.stats().graph.map(|g| g.nodes);
    assert_eq!(nodes, Some(sealed), "every sealed row came back in the graph (the heads' rows are inserted again)");
    assert_eq!(contents(&reopened), contents(&index));
    drop(reopened);

    // A few more rows: the graph has not grown by a tenth, the same file serves, in each
    // directory the index persists into by turns (its own and a copy, as a pushing writer has).
    let copy = tempfile::tempdir().unwrap();
    index.persist(copy.path()).unwrap();
    let written_in_copy = graph_files(copy.path());
    index.add_document("late", doc(500, 1)).unwrap();
    index.maintain();
    let report = index.persist(dir.path()).unwrap();
    assert_eq!(graph_files(dir.path()), written, "reused, not written again: {report:?}");
    index.add_document("later", doc(501, 1)).unwrap();
    index.maintain();
    let report = index.persist(copy.path()).unwrap();
    assert_eq!(graph_files(copy.path()), written_in_copy, "reused in the copy too: {report:?}");
    let report = index.persist(dir.path()).unwrap();
    assert_eq!(graph_files(dir.path()), written, "and again in its own: {report:?}");

    let scratch = tempfile::tempdir().unwrap();
    for (n, how) in [Damage::FlipHeader, Damage::FlipBody, Damage::Truncate, Damage::Delete].into_iter().enumerate() {
        let case = scratch.path().join(format!("case{n}"));
        copy_dir(dir.path(), &case);
        damage(&case.join(&written[0]), how);
        let open = |strict| VectorIndex::open_with_options(&case, &OpenOptions::new().strict(strict).config(hnsw()));
        let (opened, report) = open(true).unwrap_or_else(|e| panic!("{how:?}: strict opens: {e}"));
        assert_eq!(report.healed.len(), 1, "{how:?}: {report:?}");
        assert!(report.quarantined.is_empty() && report.fell_back.is_none(), "{how:?}");
        assert_eq!(contents(&opened), contents(&index), "{how:?}: nothing lost");
        opened.maintain();
        let stats = opened.stats();
        let rows: usize = stats.segments.iter().map(|s| s.rows).sum();
        assert_eq!(stats.graph.map(|g| g.nodes), Some(rows), "{how:?}: every row in a new graph");
    }
}

#[test]
fn stats_count_persists_and_failures_and_know_the_snapshot_seq() {
    let dir = tempfile::tempdir().unwrap();
    let index = VectorIndex::create(dir.path(), config()).unwrap();
    let created = index.stats().persists;
    assert_eq!((created.succeeded, created.failed), (1, 0), "create persists the empty index: {created:?}");
    index.add_document("d1", doc(1, 1)).unwrap();
    let before = index.stats();
    assert!(before.persists.snapshot_seq.unwrap() < before.next_seq, "the new document is not in a snapshot");

    let report = index.persist(dir.path()).unwrap();
    let after = index.stats().persists;
    assert_eq!(after.snapshot_seq, Some(report.seq));
    assert_eq!(after.snapshot_seq, Some(before.next_seq), "everything acknowledged is in the snapshot");
    assert_eq!((after.succeeded, after.failed), (2, 0));
    let last = after.last.expect("a last persist");
    assert_eq!((last.generation, last.bytes_total), (report.generation, report.bytes_total));

    let elsewhere = tempfile::tempdir().unwrap();
    let full = FaultyDirectory::new(LocalDirectory::new(elsewhere.path()));
    full.fail_step(0);
    assert!(persist_in(&index, &full).is_err());
    let failed = index.stats().persists;
    assert_eq!((failed.succeeded, failed.failed), (2, 1));
    assert_eq!(failed.snapshot_seq, after.snapshot_seq, "a failed persist moves nothing");

    // A copy elsewhere counts as a persist, but the log still holds what its own directory lacks.
    index.add_document("d2", doc(2, 1)).unwrap();
    let copy = index.persist(elsewhere.path()).unwrap();
    let copied = index.stats().persists;
    assert_eq!((copied.succeeded, copied.last.unwrap().generation), (3, copy.generation));
    assert_eq!(copied.snapshot_seq, after.snapshot_seq, "the copy is not the writer's snapshot");
    let report = index.persist(dir.path()).unwrap();
    assert_eq!(index.stats().persists.snapshot_seq, Some(report.seq));

    drop(index);
    let reopened = VectorIndex::open(dir.path()).unwrap();
    let opened = reopened.stats().persists;
    assert_eq!(opened.snapshot_seq, Some(report.seq), "open knows the snapshot it loaded");
    assert_eq!((opened.succeeded, opened.failed, opened.last), (0, 0, None));
}
