//! The MANIFEST: which files make up a snapshot, its commit, and the collection of files no
//! manifest needs any more.
//!
//! # Protocol
//!
//! A persist writes every new file first (temp name, fsync, rename), fsyncs the directory, and
//! then commits:
//!
//! 1. `MANIFEST.prev` becomes a second name of the current `MANIFEST` (a hard link under a temp
//!    name, renamed over `MANIFEST.prev`), if the current one is valid;
//! 2. the new manifest is written under a temp name, fsynced, and renamed over `MANIFEST`;
//! 3. the directory is fsynced: the snapshot is committed;
//! 4. files that neither `MANIFEST` nor `MANIFEST.prev` names are removed.
//!
//! # Invariants
//!
//! - C1: every file `MANIFEST` names was durable (fsynced, and its directory entry fsynced)
//!   before `MANIFEST` named it.
//! - C2: `MANIFEST` always exists once a first persist committed: step 2 replaces it with one
//!   rename, never removes it.
//! - C3: the files of `MANIFEST.prev` stay until the commit after the next one (step 4 keeps
//!   them), so falling back to it after `MANIFEST` is damaged finds them all.
//! - C4: a file name is derived from its content (segment id and body checksum), so a name that
//!   exists holds those bytes: files are never rewritten, only added and collected.
//!
//! A crash before step 2's rename leaves the previous snapshot (plus unreferenced files that
//! the next commit collects); after it, the new one.
//!
//! On object storage, which has neither rename nor lock, steps 1-3 are one conditional put of a
//! manifest per generation instead (`storage::object`); [`Directory::commit_manifest`] and
//! [`Directory::manifest_names`] are where the two differ.

use std::collections::HashSet;
use std::path::Path;

use rkyv::rancor;

use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::seq::SeqNo;
use crate::storage::Directory;
use crate::storage::format::{self, FileKind, FileRef};

use crate::storage::generation_of;
pub use crate::storage::{MANIFEST, MANIFEST_PREV};

/// A file as the manifest records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct StoredFile {
    /// Total length, header included.
    pub bytes: u64,
    /// xxh3-64 of the body, as in the file's header.
    pub checksum: u64,
}

impl From<StoredFile> for FileRef {
    fn from(f: StoredFile) -> Self {
        FileRef { bytes: f.bytes, checksum: f.checksum }
    }
}

impl From<FileRef> for StoredFile {
    fn from(f: FileRef) -> Self {
        StoredFile { bytes: f.bytes, checksum: f.checksum }
    }
}

/// A FAISS index file of a segment.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct StoredFaiss {
    pub file: StoredFile,
    pub factory: String,
    pub ef_construction: u64,
}

/// A segment: its rows file, its ids file and (maybe) its FAISS index file.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct StoredSegment {
    pub id: u64,
    /// Rows in the rows file, live or not.
    pub rows: u64,
    pub rows_file: StoredFile,
    pub ids_file: StoredFile,
    pub faiss: Option<StoredFaiss>,
}

impl StoredSegment {
    pub fn rows_name(&self) -> String {
        rows_name(self.id, self.rows_file.checksum)
    }

    pub fn ids_name(&self) -> String {
        ids_name(self.id, self.rows_file.checksum)
    }

    pub fn faiss_name(&self) -> Option<String> {
        let faiss = self.faiss.as_ref()?;
        Some(faiss_name(self.id, self.rows_file.checksum, tag(&faiss.factory, faiss.ef_construction)))
    }
}

/// A part of the shared graph: a sealed segment and the position of its first row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct StoredPart {
    pub segment: u64,
    pub first: u64,
    pub rows: u64,
}

/// The graph file of a plain HNSW index: a graph over the rows of `parts` (each of them a node,
/// labelled by position), which are segments of the manifest.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct StoredGraph {
    pub file: StoredFile,
    pub nodes: u64,
    pub parts: Vec<StoredPart>,
}

/// The settings an index was persisted with (all of `IndexConfig` but `background`; its
/// conversions are in `config`). A segment kind is its FAISS factory string, or `"exact"`.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct StoredConfig {
    pub head_capacity: u64,
    pub writer_slots: u64,
    pub vocabulary_limit: u64,
    pub merge_factor: u64,
    pub max_segment_rows: u64,
    pub vacuum_dead_fraction: f64,
    pub factory: String,
    pub ef_construction: u64,
    pub ef_search: u64,
    pub nprobe: u64,
    pub min_rows: u64,
    pub build_threads: u64,
    pub search_threads: u64,
}

/// The manifest. See the module docs.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Manifest {
    /// Identifies the index (its lineage): persisting into a directory that holds another
    /// index is refused.
    pub index_uid: u128,
    /// 1 for the first commit into a directory, then one more for each.
    pub generation: u64,
    /// The snapshot holds exactly the operations below this seq.
    pub seq: SeqNo,
    pub dim: u32,
    pub metric: u32,
    pub config: StoredConfig,
    /// Sealed segments, by id.
    pub segments: Vec<StoredSegment>,
    /// The rows that were still in heads (not sealed yet), visible and live at `seq`.
    pub head: Option<StoredSegment>,
    /// Deletes below `seq` of rows of the segments above.
    pub tombstones: Option<StoredFile>,
    /// The shared graph of a plain HNSW index, over some of the segments above (open inserts
    /// the rows of the others).
    pub graph: Option<StoredGraph>,
}

/// The manifest of the first layout (header word `extra` 0), before the graph record: read
/// and converted, never written (but by a test).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct ManifestLayout0 {
    index_uid: u128,
    generation: u64,
    seq: SeqNo,
    dim: u32,
    metric: u32,
    config: StoredConfig,
    segments: Vec<StoredSegment>,
    head: Option<StoredSegment>,
    tombstones: Option<StoredFile>,
}

impl From<ManifestLayout0> for Manifest {
    fn from(m: ManifestLayout0) -> Self {
        let ManifestLayout0 { index_uid, generation, seq, dim, metric, config, segments, head, tombstones } = m;
        Manifest { index_uid, generation, seq, dim, metric, config, segments, head, tombstones, graph: None }
    }
}

/// The manifest layout this build writes (the header's kind-specific word).
const LAYOUT: u64 = 1;

pub fn graph_name(checksum: u64) -> String {
    format!("graph-{checksum:016x}")
}

pub fn rows_name(id: u64, checksum: u64) -> String {
    format!("seg-{id:016x}-{checksum:016x}.rows")
}

pub fn ids_name(id: u64, rows_checksum: u64) -> String {
    format!("seg-{id:016x}-{rows_checksum:016x}.ids")
}

pub fn faiss_name(id: u64, rows_checksum: u64, tag: u32) -> String {
    format!("seg-{id:016x}-{rows_checksum:016x}-{tag:08x}.faiss")
}

pub fn tombstones_name(checksum: u64) -> String {
    format!("tombstones-{checksum:016x}")
}

/// The build settings an index file depends on, as a short tag in its name.
pub fn tag(factory: &str, ef_construction: u64) -> u32 {
    let key = format!("{factory}\0{ef_construction}");
    format::checksum(key.as_bytes()) as u32
}

/// A fresh identity for a new index: 128 bits from the standard library's per-process random
/// hash keys (seeded by the OS), the time and the process id, so two indexes created anywhere
/// never share one in practice.
pub fn new_index_uid() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let mut halves = [0u64; 2];
    for (i, half) in halves.iter_mut().enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher
            .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        hasher.write_u32(std::process::id());
        hasher.write_usize(i);
        *half = hasher.finish();
    }
    (u128::from(halves[0]) << 64) | u128::from(halves[1])
}

/// Whether `name` is a file vecindex writes into an index directory (and may collect).
pub fn is_ours(name: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let segment = |rest: &str| {
        let mut parts = rest.split('-');
        matches!((parts.next(), parts.next(), parts.next(), parts.next()), (Some(a), Some(b), c, None)
            if hex(a, 16) && hex(b, 16) && c.is_none_or(|c| hex(c, 8)))
    };
    if let Some(rest) = name.strip_prefix("seg-") {
        return [".rows", ".ids"].iter().any(|ext| rest.strip_suffix(ext).is_some_and(|r| segment(r) && r.len() == 33))
            || rest.strip_suffix(".faiss").is_some_and(|r| segment(r) && r.len() == 42);
    }
    if let Some(rest) = name.strip_prefix("tombstones-").or_else(|| name.strip_prefix("graph-")) {
        return hex(rest, 16);
    }
    is_temp(name)
        || generation_of(name).is_some()
        || matches!(name, MANIFEST | MANIFEST_PREV | "LOCK" | crate::wal::lock::WRITER)
}

/// A temp file of an interrupted write: `.NAME.tmp-PID`.
fn is_temp(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

impl Manifest {
    /// The manifest file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let body = rkyv::to_bytes::<rancor::Panic>(self).unwrap_or_else(|never| match never {});
        format::image_with(FileKind::Manifest, self.dim, self.metric, self.seq, LAYOUT, &body).1.to_vec()
    }

    /// Checks and decodes a manifest file.
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<Self> {
        let corrupt = |reason: String| Error::corrupt(path, reason);
        let (header, body) = format::check(path, bytes, FileKind::Manifest, None)?;
        let body = format::aligned(body);
        let invalid = |e: rancor::Error| corrupt(format!("invalid manifest archive: {e}"));
        let manifest = match header.extra {
            0 => rkyv::from_bytes::<ManifestLayout0, rancor::Error>(&body).map_err(invalid)?.into(),
            LAYOUT => rkyv::from_bytes::<Manifest, rancor::Error>(&body).map_err(invalid)?,
            other => return Err(corrupt(format!("manifest layout {other}, this build reads 0 and {LAYOUT}"))),
        };
        if (header.dim, header.metric, header.seq) != (manifest.dim, manifest.metric, manifest.seq) {
            return Err(corrupt("header and body disagree".into()));
        }
        // Seqs and ids far below where they could overflow (2^62 operations would take a
        // million years at a million a second).
        if manifest.seq >= 1 << 62 {
            return Err(corrupt(format!("seq {}", manifest.seq)));
        }
        if manifest.dim == 0 || Metric::from_code(manifest.metric).is_none() {
            return Err(corrupt(format!("dimension {} metric {}", manifest.dim, manifest.metric)));
        }
        let mut ids = HashSet::new();
        for segment in manifest.all_segments() {
            if !ids.insert(segment.id) {
                return Err(corrupt(format!("segment {} listed twice", segment.id)));
            }
            if segment.rows == 0 || segment.rows > u64::from(u32::MAX) || segment.id >= 1 << 62 {
                return Err(corrupt(format!("segment {} with {} rows", segment.id, segment.rows)));
            }
        }
        Ok(manifest)
    }

    pub fn metric(&self) -> Metric {
        Metric::from_code(self.metric).unwrap_or_default()
    }

    /// Sealed segments, then the head's.
    pub fn all_segments(&self) -> impl Iterator<Item = &StoredSegment> {
        self.segments.iter().chain(&self.head)
    }

    /// Every file this manifest names.
    pub fn files(&self) -> Vec<String> {
        let mut names = Vec::new();
        for segment in self.all_segments() {
            names.push(segment.rows_name());
            names.push(segment.ids_name());
            names.extend(segment.faiss_name());
        }
        names.extend(self.tombstones.map(|t| tombstones_name(t.checksum)));
        names.extend(self.graph.as_ref().map(|g| graph_name(g.file.checksum)));
        names
    }
}

/// A manifest read from a directory.
pub struct Found {
    pub manifest: Manifest,
    /// Whether it is the directory's newest manifest ([`MANIFEST`]), rather than the one before
    /// ([`MANIFEST_PREV`]), read because the newest is missing or damaged.
    pub newest: bool,
}

/// Reads the directory's newest manifest (`dir/MANIFEST`) or, if it is missing or damaged, the
/// one before (`dir/MANIFEST.prev`). `Ok(None)` if neither exists.
pub fn load(dir: &dyn Directory) -> Result<Option<Found>> {
    let mut first_error = None;
    for (i, name) in dir.manifest_names()?.into_iter().enumerate() {
        let path = dir.path().join(&name);
        let outcome = match dir.read_if_exists(&name)? {
            Some(bytes) => Manifest::decode(&path, &bytes).map(Some),
            None => Ok(None),
        };
        match outcome {
            Ok(Some(manifest)) => return Ok(Some(Found { manifest, newest: i == 0 })),
            Ok(None) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// Steps 1-3 of the protocol: `previous_is_current` says whether `MANIFEST` is the valid
/// manifest to keep as `MANIFEST.prev` (false when it is damaged and `MANIFEST.prev` already
/// is the one to keep). Returns the bytes of the manifest written.
pub fn commit(dir: &dyn Directory, manifest: &Manifest, previous_is_current: bool) -> Result<u64> {
    let bytes = manifest.encode();
    dir.commit_manifest(manifest.generation, &bytes, previous_is_current)?;
    dir.set_base_generation(manifest.generation);
    Ok(bytes.len() as u64)
}

/// After a commit, the other manifests collection keeps (`Directory::manifest_names` but the
/// newest, the one just committed): the previous one here, the last N - 1 on object storage.
/// A damaged one is left out (nothing can open it); one that cannot be read is an error, so
/// that nothing is collected from under it.
pub fn older_kept(dir: &dyn Directory) -> Result<Vec<Manifest>> {
    let mut kept = Vec::new();
    for name in dir.manifest_names()?.iter().skip(1) {
        if let Some(bytes) = dir.read_if_exists(name)? {
            kept.extend(Manifest::decode(&dir.path().join(name), &bytes).ok());
        }
    }
    Ok(kept)
}

/// Step 4: removes files of ours that none of `keep` names, and temp files of interrupted
/// writes. Returns how many it removed; failures are logged, not returned (the commit is done).
pub fn collect_garbage(dir: &dyn Directory, keep: &[&Manifest]) -> usize {
    let referenced: HashSet<String> = keep.iter().flat_map(|m| m.files()).collect();
    // Generation manifests older than every one kept go too.
    let oldest_kept = keep.iter().map(|m| m.generation).min().unwrap_or(0);
    let Ok(files) = dir.collectable() else { return 0 };
    let mut removed = 0;
    for (name, _) in files {
        let collectable = match generation_of(&name) {
            Some(generation) => generation < oldest_kept,
            None => {
                is_ours(name.as_str())
                    && !matches!(name.as_str(), MANIFEST | MANIFEST_PREV | "LOCK" | crate::wal::lock::WRITER)
                    && !referenced.contains(&name)
            }
        };
        if collectable {
            match dir.remove(&name) {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!(error = %e, "cannot remove an unreferenced file"),
            }
        }
    }
    removed
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;

    #[test]
    fn names_are_recognised_and_others_are_not() {
        use crate::storage::generation_name;
        let segment = StoredSegment {
            id: 3,
            rows: 1,
            rows_file: StoredFile { bytes: 1, checksum: 0xabc },
            ids_file: StoredFile { bytes: 1, checksum: 1 },
            faiss: Some(StoredFaiss {
                file: StoredFile { bytes: 1, checksum: 2 },
                factory: "HNSW32".into(),
                ef_construction: 80,
            }),
        };
        for name in [segment.rows_name(), segment.ids_name(), segment.faiss_name().unwrap(), tombstones_name(7)] {
            assert!(is_ours(&name), "{name}");
        }
        for name in [".MANIFEST.tmp-12", "MANIFEST", "MANIFEST.prev", "LOCK", &generation_name(7)] {
            assert!(is_ours(name), "{name}");
        }
        assert_eq!(generation_name(42), "MANIFEST.00000000000000000042");
        assert_eq!(generation_of(&generation_name(u64::MAX)), Some(u64::MAX));
        assert!(generation_name(9) < generation_name(10), "names sort as generations do");
        for name in [
            "notes.txt",
            "seg-1.rows",
            "seg-0000000000000003-0000000000000abc.rowsx",
            "tombstones-xyz",
            "..",
            "",
            "MANIFEST.42",
            "MANIFEST.0000000000000000004x",
        ] {
            assert_eq!(generation_of(name), None, "{name}");
            assert!(!is_ours(name), "{name}");
        }
    }

    /// The sizes docs/format.md gives for the archived types (rkyv 0.8, pointer_width_64).
    #[test]
    fn archived_layouts_are_the_documented_ones() {
        use crate::persist::tombstones::{ArchivedStoredDeletes, ArchivedStoredTombstones};
        use std::mem::{align_of, size_of};
        assert_eq!((size_of::<ArchivedStoredFile>(), size_of::<ArchivedStoredFaiss>()), (16, 40));
        assert_eq!((size_of::<ArchivedStoredSegment>(), size_of::<ArchivedStoredConfig>()), (96, 112));
        assert_eq!((size_of::<ArchivedManifest>(), align_of::<ArchivedManifest>()), (352, 16));
        assert_eq!((size_of::<ArchivedStoredGraph>(), size_of::<ArchivedStoredPart>()), (40, 24));
        assert_eq!(std::mem::offset_of!(ArchivedManifest, graph), 296);
        assert_eq!(size_of::<ArchivedManifestLayout0>(), 304);
        assert_eq!((size_of::<ArchivedStoredDeletes>(), size_of::<ArchivedStoredTombstones>()), (40, 16));
    }

    #[test]
    fn manifest_round_trip() {
        let manifest = Manifest {
            index_uid: 42,
            generation: 1,
            seq: 10,
            dim: 4,
            metric: 0,
            config: StoredConfig {
                head_capacity: 4096,
                writer_slots: 64,
                vocabulary_limit: 50_000,
                merge_factor: 8,
                max_segment_rows: 1 << 20,
                vacuum_dead_fraction: 0.2,
                factory: "HNSW32".into(),
                ef_construction: 80,
                ef_search: 64,
                nprobe: 16,
                min_rows: 2048,
                build_threads: 0,
                search_threads: 1,
            },
            segments: Vec::new(),
            head: None,
            tombstones: None,
            graph: Some(StoredGraph {
                file: StoredFile { bytes: 100, checksum: 7 },
                nodes: 3,
                parts: vec![StoredPart { segment: 5, first: 0, rows: 3 }],
            }),
        };
        let bytes = manifest.encode();
        assert_eq!(Manifest::decode(Path::new("m"), &bytes).unwrap(), manifest);
        assert!(manifest.files().contains(&graph_name(7)));
        // A manifest of the first layout (header word 0, no graph record) still reads.
        let first = ManifestLayout0 {
            index_uid: 42,
            generation: 1,
            seq: 10,
            dim: 4,
            metric: 0,
            config: manifest.config.clone(),
            segments: Vec::new(),
            head: None,
            tombstones: None,
        };
        let body = rkyv::to_bytes::<rancor::Panic>(&first).unwrap_or_else(|never| match never {});
        let bytes = format::image_with(FileKind::Manifest, 4, 0, 10, 0, &body).1.to_vec();
        assert_eq!(Manifest::decode(Path::new("m"), &bytes).unwrap(), Manifest { graph: None, ..manifest.clone() });
        let bytes = format::image_with(FileKind::Manifest, 4, 0, 10, 9, &body).1.to_vec();
        assert!(Manifest::decode(Path::new("m"), &bytes).is_err(), "an unknown layout is refused");
    }
}
