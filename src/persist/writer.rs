//! Writing a snapshot into an index directory: new files first, then the manifest commit.

use std::collections::HashMap;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::persist::PersistReport;
use crate::persist::manifest::{self, Manifest, StoredConfig, StoredFile, StoredGraph, StoredPart, StoredSegment};
use crate::persist::tombstones::{self, Deletes};
use crate::rows::SealedRows;
use crate::seq::SeqNo;
use crate::storage::format::{self, FileKind, FileRef, Header};
use crate::storage::{Directory, LockMode, PathKind};
use crate::sync::Arc;

/// One segment of a snapshot.
pub struct SnapshotSegment<'a> {
    pub id: u64,
    pub rows: Arc<SealedRows>,
    /// Rows deleted by operations below the snapshot's seq.
    pub deletes: Vec<(u32, SeqNo)>,
    #[cfg(feature = "faiss")]
    pub faiss: Option<&'a crate::segment::faiss::FaissIndex>,
    /// Never present without the `faiss` feature.
    #[cfg(not(feature = "faiss"))]
    pub faiss: Option<&'a std::convert::Infallible>,
}

/// The rows of a snapshot.
pub struct SnapshotRows<'a> {
    pub segments: Vec<SnapshotSegment<'a>>,
    /// The heads' visible rows, if any.
    pub head: Option<SnapshotSegment<'a>>,
    /// Live chunks in the snapshot (for the report).
    pub live_rows: usize,
}

/// The shared graph of a snapshot, if it has one.
pub enum SnapshotGraph {
    /// A graph file to write (unless the directory holds it): its body, its nodes, its parts.
    Write { body: Vec<u8>, nodes: u64, parts: Vec<StoredPart> },
    /// The graph file an earlier snapshot in this directory wrote, still valid for this one.
    Reuse(StoredGraph),
}

/// Everything a persist writes.
pub struct SnapshotParts<'a> {
    pub index_uid: u128,
    /// The snapshot holds exactly the operations below it.
    pub seq: SeqNo,
    pub dim: usize,
    pub metric: Metric,
    /// The settings it is persisted with.
    pub config: StoredConfig,
    pub rows: SnapshotRows<'a>,
    pub graph: Option<SnapshotGraph>,
}

/// What this persist wrote so far.
#[derive(Default)]
struct Written {
    files: usize,
    bytes: u64,
    reused: usize,
}

impl Written {
    fn write(&mut self, dir: &dyn Directory, name: &str, bytes: &[u8]) -> Result<()> {
        dir.write(name, bytes)?;
        self.files += 1;
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}

/// What the directory holds before a persist writes anything.
struct Present {
    /// Every file, with its length.
    listed: HashMap<String, u64>,
    /// The files the manifest there names, as it records them.
    recorded: HashMap<String, FileRef>,
}

impl Present {
    fn new(dir: &dyn Directory, previous: Option<&Manifest>) -> Result<Self> {
        let mut recorded = HashMap::new();
        for segment in previous.iter().flat_map(|m| m.all_segments()) {
            recorded.insert(segment.ids_name(), segment.ids_file.into());
            if let (Some(name), Some(faiss)) = (segment.faiss_name(), &segment.faiss) {
                recorded.insert(name, faiss.file.into());
            }
        }
        Ok(Self { listed: dir.list()?.into_iter().collect(), recorded })
    }

    fn get(&self, name: &str) -> Option<&u64> {
        self.listed.get(name)
    }
}

/// The header of `dir/name` if it exists, is ours, of `kind`, `len` bytes long, and (for ids
/// files) belongs to the rows file with checksum `rows`; a file that fails any of that is
/// written again. A file the previous manifest records at the length listed is taken as
/// recorded without reading it (C4: a name always holds the same bytes), which on object
/// storage saves a request per file.
fn existing(dir: &dyn Directory, files: &Present, name: &str, kind: FileKind, rows: Option<u64>) -> Option<FileRef> {
    let len = *files.get(name)?;
    if let Some(recorded) = files.recorded.get(name)
        && recorded.bytes == len
    {
        return Some(*recorded);
    }
    let path = dir.path().join(name);
    let header = dir.read_prefix(name, format::HEADER_LEN).ok().and_then(|bytes| Header::decode(&path, &bytes).ok())?;
    let fits = header.kind == kind && len == header.body_len + format::HEADER_LEN as u64;
    (fits && rows.is_none_or(|rows| header.extra == rows))
        .then_some(FileRef { bytes: len, checksum: header.body_checksum })
}

/// Writes the files of one segment that the directory lacks; returns its manifest entry.
fn write_segment(
    dir: &dyn Directory,
    files: &Present,
    segment: &SnapshotSegment<'_>,
    written: &mut Written,
) -> Result<StoredSegment> {
    let rows = &segment.rows;
    let checksum = rows.checksum();
    let rows_file = FileRef { bytes: rows.file_bytes().len() as u64, checksum };
    let name = manifest::rows_name(segment.id, checksum);
    if files.get(&name) == Some(&rows_file.bytes) {
        written.reused += 1; // C4: this name holds these bytes
    } else {
        written.write(dir, &name, rows.file_bytes())?;
    }
    let name = manifest::ids_name(segment.id, checksum);
    let ids_file = match existing(dir, files, &name, FileKind::Ids, Some(checksum)) {
        Some(found) => {
            written.reused += 1;
            found
        }
        None => {
            let ids = crate::persist::ids::encode(rows);
            written.write(dir, &name, &ids)?;
            FileRef { bytes: ids.len() as u64, checksum: format::checksum(&ids[format::HEADER_LEN..]) }
        }
    };
    #[cfg(feature = "faiss")]
    let faiss = match segment.faiss {
        Some(ann) => Some(write_faiss(dir, files, segment.id, checksum, rows.dim(), ann, written)?),
        None => None,
    };
    #[cfg(not(feature = "faiss"))]
    let faiss = segment.faiss.map(|never| match *never {});
    Ok(StoredSegment {
        id: segment.id,
        rows: rows.len() as u64,
        rows_file: rows_file.into(),
        ids_file: ids_file.into(),
        faiss,
    })
}

#[cfg(feature = "faiss")]
fn write_faiss(
    dir: &dyn Directory,
    files: &Present,
    id: u64,
    rows_checksum: u64,
    dim: usize,
    ann: &crate::segment::faiss::FaissIndex,
    written: &mut Written,
) -> Result<manifest::StoredFaiss> {
    let ef_construction = ann.ef_construction() as u64;
    let name = manifest::faiss_name(id, rows_checksum, manifest::tag(ann.factory(), ef_construction));
    let file = match existing(dir, files, &name, FileKind::Faiss, Some(rows_checksum)) {
        Some(found) => {
            written.reused += 1;
            found
        }
        None => {
            let body = ann.to_bytes()?;
            let mut image = format::Image::start(body.len());
            image.body().extend_from_slice(&body);
            drop(body);
            let (header, bytes) = image.finish(FileKind::Faiss, dim as u32, 0, 0, rows_checksum);
            written.write(dir, &name, &bytes)?;
            FileRef { bytes: bytes.len() as u64, checksum: header.body_checksum }
        }
    };
    Ok(manifest::StoredFaiss { file: file.into(), factory: ann.factory().to_owned(), ef_construction })
}

/// Creates `dir` if needed; refuses a path that is not a directory.
fn ensure_dir(dir: &dyn Directory) -> Result<()> {
    match dir.kind()? {
        PathKind::Other => {
            Err(Error::NotAnIndex { path: dir.path().to_owned(), reason: "it is a file, not a directory".into() })
        }
        PathKind::Missing => dir.create(),
        PathKind::Dir => Ok(()),
    }
}

/// Checks that `dir` may receive this index's snapshot. Returns the manifest it holds (the one
/// `MANIFEST.prev` will keep), if any.
fn check_target(dir: &dyn Directory, index_uid: u128) -> Result<Option<manifest::Found>> {
    let not_ours = |reason: String| Error::NotAnIndex { path: dir.path().to_owned(), reason };
    let found = match manifest::load(dir) {
        Ok(found) => found,
        Err(Error::Corrupt { path, reason }) => {
            return Err(not_ours(format!(
                "{} is not a readable vecindex manifest ({reason}); move the directory aside or delete it",
                path.display()
            )));
        }
        Err(e) => return Err(e),
    };
    match &found {
        Some(found) if found.manifest.index_uid != index_uid => {
            Err(Error::ForeignIndex { path: dir.path().to_owned() })
        }
        Some(_) => Ok(found),
        None => {
            let strangers: Vec<String> =
                dir.list()?.into_iter().map(|(name, _)| name).filter(|name| !manifest::is_ours(name)).collect();
            if strangers.is_empty() {
                Ok(None)
            } else {
                Err(not_ours(format!("it holds files that are not vecindex's: {}", strangers.join(", "))))
            }
        }
    }
}

/// Writes `parts` into the index directory `dir`: the files it lacks, then the manifest.
/// Returns what it wrote, and the graph record the manifest holds (for the next persist to
/// reuse).
pub fn write(dir: &dyn Directory, parts: SnapshotParts<'_>) -> Result<(PersistReport, Option<StoredGraph>)> {
    let started = Instant::now();
    let _one_listing = dir.session();
    ensure_dir(dir)?;
    check_target(dir, parts.index_uid)?; // refuse before creating LOCK in somebody else's directory
    let _one_persist_per_directory = dir.lock(LockMode::Exclusive)?;
    let previous = check_target(dir, parts.index_uid)?; // again: another process may have committed
    // Storage shared by writers without a lock: refuse at once to build on a snapshot this index
    // has not seen (the conditional commit would refuse too, after the uploads).
    if let Some(base) = dir.base_generation() {
        let newest = previous.as_ref().map_or(0, |p| p.manifest.generation);
        if newest != base {
            return Err(Error::Conflict { path: dir.path().to_owned(), generation: newest });
        }
    }
    let files = Present::new(dir, previous.as_ref().map(|p| &p.manifest))?;
    let mut written = Written::default();
    let dim = parts.dim;

    let mut deletes = Deletes::new();
    let mut entries = Vec::with_capacity(parts.rows.segments.len());
    for segment in &parts.rows.segments {
        entries.push(write_segment(dir, &files, segment, &mut written)?);
        if !segment.deletes.is_empty() {
            deletes.insert(segment.id, segment.deletes.clone());
        }
    }
    let head = match &parts.rows.head {
        Some(segment) => {
            if !segment.deletes.is_empty() {
                deletes.insert(segment.id, segment.deletes.clone());
            }
            Some(write_segment(dir, &files, segment, &mut written)?)
        }
        None => None,
    };
    let tombstones = if deletes.is_empty() {
        None
    } else {
        let bytes = tombstones::encode(dim, &deletes);
        let file = StoredFile { bytes: bytes.len() as u64, checksum: format::checksum(&bytes[format::HEADER_LEN..]) };
        let name = manifest::tombstones_name(file.checksum);
        if files.get(&name) == Some(&file.bytes) {
            written.reused += 1;
        } else {
            written.write(dir, &name, &bytes)?;
        }
        Some(file)
    };
    let graph = match parts.graph {
        Some(SnapshotGraph::Write { body, nodes, parts: graph_parts }) => {
            let (header, bytes) = format::image(FileKind::Graph, dim as u32, 0, 0, &body);
            drop(body);
            let file = StoredFile { bytes: bytes.len() as u64, checksum: header.body_checksum };
            let name = manifest::graph_name(file.checksum);
            if files.get(&name) == Some(&file.bytes) {
                written.reused += 1; // C4
            } else {
                written.write(dir, &name, &bytes)?;
            }
            Some(StoredGraph { file, nodes, parts: graph_parts })
        }
        // Named by content: if the directory still holds it, it holds those bytes (C4).
        Some(SnapshotGraph::Reuse(stored)) => {
            (files.get(&manifest::graph_name(stored.file.checksum)) == Some(&stored.file.bytes)).then(|| {
                written.reused += 1;
                stored
            })
        }
        None => None,
    };
    if written.files > 0 {
        dir.sync()?; // C1: the new files are durable before the manifest names them
    }

    let manifest = Manifest {
        index_uid: parts.index_uid,
        generation: previous.as_ref().map_or(0, |p| p.manifest.generation) + 1,
        seq: parts.seq,
        dim: dim as u32,
        metric: parts.metric.code(),
        config: parts.config,
        segments: entries,
        head,
        tombstones,
        graph,
    };
    let previous_is_current = previous.as_ref().is_some_and(|p| p.newest);
    let manifest_bytes = manifest::commit(dir, &manifest, previous_is_current)?;
    let collected = match manifest::older_kept(dir) {
        Ok(older) => manifest::collect_garbage(dir, &std::iter::once(&manifest).chain(&older).collect::<Vec<_>>()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the manifests to keep; nothing collected");
            0
        }
    };
    let total: u64 = manifest
        .all_segments()
        .flat_map(|s| [Some(s.rows_file), Some(s.ids_file), s.faiss.as_ref().map(|f| f.file)])
        .chain([manifest.tombstones, manifest.graph.as_ref().map(|g| g.file)])
        .flatten()
        .map(|f| f.bytes)
        .sum();
    let report = PersistReport {
        seq: parts.seq,
        generation: manifest.generation,
        rows: parts.rows.live_rows,
        segments: manifest.all_segments().count(),
        files_written: written.files + 1,
        files_reused: written.reused,
        files_collected: collected,
        bytes_written: written.bytes + manifest_bytes,
        bytes_total: total + manifest_bytes,
        path: dir.path().to_owned(),
        duration: started.elapsed(),
    };
    tracing::info!(
        path = %report.path.display(),
        seq = report.seq,
        generation = report.generation,
        rows = report.rows,
        files_written = report.files_written,
        bytes_written = report.bytes_written,
        bytes_total = report.bytes_total,
        files_collected = report.files_collected,
        ms = report.duration.as_secs_f64() * 1e3,
        "persisted snapshot"
    );
    Ok((report, manifest.graph))
}
