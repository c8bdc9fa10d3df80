//! Opening an index directory: choose a manifest, map and check every file once, heal what can
//! be rebuilt, quarantine what cannot, and report both.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::ids::SegmentId;
use crate::metric::Metric;
use crate::persist::ids::IdsFile;
use crate::persist::manifest::{Manifest, StoredConfig, StoredSegment};
use crate::persist::tombstones::{self, Deletes};
use crate::persist::{Healed, LostDocument, OpenReport, Quarantined};
use crate::rows::SealedRows;
use crate::rows::Tombstones;
use crate::segment::graph::Graph;
use crate::segment::{Segment, SegmentData, SegmentIndex};
use crate::seq::SeqNo;
use crate::storage::format::{self, FileKind};
use crate::storage::{Access, Directory, LockMode, PathKind};
use crate::sync::Arc;

/// A segment read back.
pub struct LoadedSegment {
    pub id: u64,
    pub rows: Arc<SealedRows>,
    /// Per row, the seq of the operation that deleted it. Rows added at or after the snapshot's
    /// seq (a segment sealed after the persist took its view holds some) are not part of the
    /// snapshot: they read as deleted at seq 0, before everything.
    pub deleted: Vec<Option<SeqNo>>,
    #[cfg(feature = "faiss")]
    pub faiss: Option<crate::segment::faiss::FaissIndex>,
}

impl LoadedSegment {
    /// The sealed segment these files make: its rows, its deletes, its FAISS index if loaded.
    pub fn into_segment(self) -> Segment {
        let tombstones = Arc::new(Tombstones::from_seqs(self.deleted));
        let segment = Segment::exact(SegmentData::new(SegmentId(self.id), self.rows, tombstones));
        #[cfg(feature = "faiss")]
        let segment = match self.faiss {
            Some(ann) => segment.with_ann(ann),
            None => segment,
        };
        segment
    }
}

/// The shared graph read back: the graph, its parts (segment id and first position, in
/// order), and whether it may start again to fit its ranges to more rows.
pub struct LoadedGraph {
    pub graph: Graph,
    pub parts: Vec<(u64, u32)>,
    pub refits: bool,
}

/// A snapshot read back, with the configuration the caller resolved for it.
pub struct Loaded<C> {
    pub index_uid: u128,
    pub seq: SeqNo,
    pub config: C,
    pub segments: Vec<LoadedSegment>,
    pub graph: Option<LoadedGraph>,
    pub report: OpenReport,
}

/// How to read a snapshot (`OpenOptions` has what each flag means).
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions {
    pub strict: bool,
    pub read_only: bool,
}

/// Reads the snapshot in `dir` (`OpenOptions` says what is healed, quarantined or refused).
/// `resolve` turns the settings the snapshot was persisted with, its dimension and metric into
/// the caller's configuration, and the segment index to open FAISS files for.
pub fn load<C>(
    dir: &dyn Directory,
    options: ReadOptions,
    resolve: impl FnOnce(&StoredConfig, usize, Metric) -> Result<(C, SegmentIndex)>,
) -> Result<Loaded<C>> {
    let started = Instant::now();
    let path = dir.path();
    let _one_listing = dir.session();
    match dir.kind()? {
        PathKind::Missing => {
            let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no such index directory");
            return Err(Error::io(path, missing));
        }
        PathKind::Other => {
            return Err(Error::NotAnIndex { path: path.to_owned(), reason: "it is a file, not a directory".into() });
        }
        PathKind::Dir => {}
    }
    let _no_persist_collects_meanwhile = dir.lock(LockMode::Shared { create: !options.read_only })?;
    let mut report = OpenReport { path: path.to_owned(), ..OpenReport::default() };
    let (manifest, deletes) = choose_manifest(dir, options.strict, &mut report)?;
    let dim = manifest.dim as usize;
    let (config, wanted) = resolve(&manifest.config, dim, manifest.metric())?;
    #[cfg(not(feature = "faiss"))]
    let _ = wanted; // exact segments only: no FAISS file is read
    let seq = manifest.seq;
    report.seq = seq;
    report.generation = manifest.generation;

    let mut segments = Vec::new();
    let mut lost_chunks: Vec<(String, String)> = Vec::new();
    for entry in manifest.all_segments() {
        let name = entry.rows_name();
        let path = dir.path().join(&name);
        let opened = dir
            .open(&name, Access::Scanned)
            .map_err(missing_is_corrupt)
            .and_then(|mapped| crate::rows::open_rows(&path, mapped, dim, entry.rows_file.into()))
            .and_then(|rows| match rows.len() as u64 == entry.rows {
                true => Ok(rows),
                false => Err(Error::corrupt(&path, format!("{} rows, the manifest says {}", rows.len(), entry.rows))),
            });
        let rows = match opened {
            Ok(rows) => rows,
            Err(e) if options.strict => return Err(e),
            Err(e) => {
                lose_segment(dir, entry, &deletes, seq, e, options.read_only, &mut report, &mut lost_chunks);
                continue;
            }
        };
        check_ids(dir, entry, options.read_only, &mut report);
        let mut deleted = vec![None; rows.len()];
        for &(row, at) in deletes.get(&entry.id).map(Vec::as_slice).unwrap_or_default() {
            if let Some(slot) = deleted.get_mut(row as usize) {
                *slot = Some(at);
            }
        }
        for (slot, row) in deleted.iter_mut().zip(rows.rows()) {
            if row.add_seq.to_native() >= seq {
                *slot = Some(0); // not in this snapshot (see `LoadedSegment::deleted`)
            }
        }
        report.bytes_mapped += rows.file_bytes().len() as u64;
        #[cfg(feature = "faiss")]
        let faiss = load_faiss(dir, entry, &wanted, manifest.metric(), &rows, options.read_only, &mut report);
        segments.push(LoadedSegment {
            id: entry.id,
            rows,
            deleted,
            #[cfg(feature = "faiss")]
            faiss,
        });
    }
    let graph = match &manifest.graph {
        Some(stored) if wanted.graph_links().is_some() => {
            load_graph(dir, stored, &segments, manifest.metric(), options.read_only, &mut report)
        }
        _ => None, // another segment index now: its segments get their own
    };
    report.segments = segments.len();
    report.lost_documents = lost_documents(lost_chunks, &segments);
    report.duration = started.elapsed();
    Ok(Loaded { index_uid: manifest.index_uid, seq, config, segments, graph, report })
}

/// The shared graph, checked and read, its nodes' codes computed from the rows of its parts;
/// `None`, the file healed (its rows are inserted again in the background), if it or one of its
/// parts is damaged or missing.
fn load_graph(
    dir: &dyn Directory,
    stored: &crate::persist::manifest::StoredGraph,
    segments: &[LoadedSegment],
    metric: Metric,
    read_only: bool,
    report: &mut OpenReport,
) -> Option<LoadedGraph> {
    let name = crate::persist::manifest::graph_name(stored.file.checksum);
    let path = dir.path().join(&name);
    let loaded = (|| -> Result<LoadedGraph> {
        let mut parts = Vec::with_capacity(stored.parts.len());
        let mut next = 0u64;
        for part in &stored.parts {
            let rows = segments.iter().find(|s| s.id == part.segment).map(|s| &s.rows);
            match rows {
                Some(rows) if part.first == next && rows.len() as u64 == part.rows => {}
                _ => {
                    return Err(Error::corrupt(
                        &path,
                        format!("its part of segment {} is not in the snapshot", part.segment),
                    ));
                }
            }
            parts.push((part.segment, u32::try_from(part.first).map_err(|_| Error::corrupt(&path, "too many rows"))?));
            next = part.first + part.rows;
        }
        if next != stored.nodes {
            return Err(Error::corrupt(&path, format!("{} nodes over {next} rows", stored.nodes)));
        }
        let mapped = dir.open(&name, Access::Sequential).map_err(missing_is_corrupt)?;
        let (_, body) = format::check_file(&path, &mapped, FileKind::Graph, Some(stored.file.into()))?;
        let vector = |position: u32| -> Option<&[f32]> {
            let at = parts.partition_point(|&(_, first)| first <= position).checked_sub(1)?;
            let (id, first) = parts[at];
            segments.iter().find(|s| s.id == id)?.rows.vector((position - first) as usize)
        };
        let (graph, refits) = Graph::decode(body, metric, &vector).map_err(|reason| Error::corrupt(&path, reason))?;
        if graph.len() as u64 != stored.nodes {
            return Err(Error::corrupt(&path, format!("{} nodes, the manifest says {}", graph.len(), stored.nodes)));
        }
        Ok(LoadedGraph { graph, parts, refits })
    })();
    match loaded {
        Ok(graph) => Some(graph),
        Err(e) => {
            heal(dir, &name, e, "its rows are inserted into a new graph in the background", read_only, report);
            None
        }
    }
}

/// `MANIFEST` and its tombstones, or `MANIFEST.prev` and its, if either of the first is damaged.
fn choose_manifest(dir: &dyn Directory, strict: bool, report: &mut OpenReport) -> Result<(Manifest, Deletes)> {
    let mut reasons = Vec::new();
    let mut missing = 0;
    let names = dir.manifest_names()?;
    for (i, name) in names.iter().enumerate() {
        let path = dir.path().join(name);
        let Some(bytes) = dir.read_if_exists(name)? else {
            reasons.push(format!("{name} is missing"));
            missing += 1;
            continue;
        };
        let manifest = match Manifest::decode(&path, &bytes) {
            Ok(manifest) => manifest,
            Err(e) => {
                reasons.push(e.to_string());
                continue;
            }
        };
        let deletes = match read_tombstones(dir, &manifest) {
            Ok(deletes) => deletes,
            Err(e) => {
                reasons.push(format!("{name} names a damaged tombstones file: {e}"));
                continue;
            }
        };
        if i > 0 {
            let reason = reasons.join("; ");
            if strict {
                return Err(Error::corrupt(dir.path().join(&names[0]), reason));
            }
            tracing::warn!(dir = %dir.path().display(), %reason, "falling back to the previous manifest");
            report.fell_back = Some(reason);
        }
        report.manifest = name.clone();
        dir.set_base_generation(manifest.generation);
        return Ok((manifest, deletes));
    }
    if missing == names.len() {
        // Only vecindex's own files (or none): a first persist that never committed.
        let strangers = dir.list()?.into_iter().any(|(name, _)| !crate::persist::manifest::is_ours(&name));
        if !strangers {
            return Err(Error::NoSnapshot { path: dir.path().to_owned() });
        }
        return Err(Error::NotAnIndex { path: dir.path().to_owned(), reason: "it holds no MANIFEST".into() });
    }
    Err(Error::corrupt(dir.path(), format!("no usable manifest: {}", reasons.join("; "))))
}

fn read_tombstones(dir: &dyn Directory, manifest: &Manifest) -> Result<Deletes> {
    let Some(file) = manifest.tombstones else { return Ok(Deletes::new()) };
    let name = crate::persist::manifest::tombstones_name(file.checksum);
    let path = dir.path().join(&name);
    let bytes = dir.open(&name, Access::Sequential).map_err(missing_is_corrupt)?;
    tombstones::decode(&path, &bytes, file.into(), manifest.seq)
}

/// A file the manifest names but the directory lacks is damage to the snapshot, like a file
/// that fails its checksum.
fn missing_is_corrupt(error: Error) -> Error {
    match error {
        Error::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
            Error::corrupt(path, "missing, but the manifest names it")
        }
        other => other,
    }
}

/// A rows file that cannot be read: quarantine it (unless `read_only`), and name what it held
/// from its ids file.
#[allow(clippy::too_many_arguments)]
fn lose_segment(
    dir: &dyn Directory,
    entry: &StoredSegment,
    deletes: &Deletes,
    seq: SeqNo,
    error: Error,
    read_only: bool,
    report: &mut OpenReport,
    lost_chunks: &mut Vec<(String, String)>,
) {
    let name = entry.rows_name();
    let moved_to = match dir.exists(&name) {
        false => None,
        _ if read_only => None,
        true => dir.quarantine(&name).map_err(|e| tracing::warn!(error = %e, "cannot quarantine")).ok(),
    };
    let path = dir.path().join(&name);
    tracing::warn!(file = %path.display(), error = %error, "quarantined a damaged rows file");
    report.quarantined.push(Quarantined { file: path, moved_to, reason: error.to_string(), rows: entry.rows });
    let ids_path = dir.path().join(entry.ids_name());
    let ids = dir
        .open(&entry.ids_name(), Access::Sequential)
        .and_then(|bytes| IdsFile::decode(&ids_path, &bytes, entry.ids_file.into(), entry.rows_file.checksum));
    let dead: HashMap<u32, SeqNo> = deletes.get(&entry.id).map(|d| d.iter().copied().collect()).unwrap_or_default();
    match ids {
        Ok(ids) => {
            for (row, ((chunk, doc), add_seq)) in
                ids.chunk_ids.into_iter().zip(ids.doc_ids).zip(ids.add_seqs).enumerate()
            {
                if add_seq < seq && !dead.contains_key(&(row as u32)) {
                    lost_chunks.push((doc, chunk));
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "the ids file of a lost segment is damaged too; its documents are unknown");
            report.lost_rows_unknown += (entry.rows as usize).saturating_sub(dead.len());
        }
    }
}

/// The ids file is derived from the rows file: if it is damaged, move it aside; the next
/// persist writes it again.
fn check_ids(dir: &dyn Directory, entry: &StoredSegment, read_only: bool, report: &mut OpenReport) {
    let name = entry.ids_name();
    let path = dir.path().join(&name);
    let checked = dir.open(&name, Access::Sequential).and_then(|bytes| {
        let (header, _) = format::check(&path, &bytes, FileKind::Ids, Some(entry.ids_file.into()))?;
        match header.extra == entry.rows_file.checksum {
            true => Ok(()),
            false => Err(Error::corrupt(&path, "belongs to another rows file")),
        }
    });
    if let Err(e) = checked {
        heal(dir, &name, e, "written again from the rows by the next persist", read_only, report);
    }
}

/// Records a healed file, moving the damaged one (if any, and unless `read_only`) into
/// quarantine.
fn heal(dir: &dyn Directory, name: &str, error: Error, action: &str, read_only: bool, report: &mut OpenReport) {
    let path = dir.path().join(name);
    if !read_only
        && dir.exists(name)
        && let Err(e) = dir.quarantine(name)
    {
        tracing::warn!(error = %e, "cannot quarantine");
    }
    tracing::warn!(file = %path.display(), error = %error, action, "healing a damaged file");
    report.healed.push(Healed { file: path, reason: error.to_string(), action: action.to_owned() });
}

/// The segment's FAISS index, if the snapshot has one built with the settings in use; a
/// damaged one is healed (the worker builds it again from the vectors).
#[cfg(feature = "faiss")]
fn load_faiss(
    dir: &dyn Directory,
    entry: &StoredSegment,
    wanted: &SegmentIndex,
    metric: Metric,
    rows: &SealedRows,
    read_only: bool,
    report: &mut OpenReport,
) -> Option<crate::segment::faiss::FaissIndex> {
    use crate::persist::manifest::tag;
    let stored = entry.faiss.as_ref()?;
    let factory = wanted.factory()?;
    if tag(&stored.factory, stored.ef_construction) != tag(factory, wanted.ef_construction as u64) {
        return None; // built with other settings: the worker builds the configured index
    }
    let name = entry.faiss_name()?;
    let path = dir.path().join(&name);
    let loaded = dir.open(&name, Access::Sequential).and_then(|mapped| {
        let (header, body) = format::check_file(&path, &mapped, FileKind::Faiss, Some(stored.file.into()))?;
        if header.extra != entry.rows_file.checksum {
            return Err(Error::corrupt(&path, "belongs to another rows file"));
        }
        crate::segment::faiss::FaissIndex::from_bytes(body, wanted, metric, rows.dim(), rows.len())
            .map_err(|e| Error::corrupt(&path, e.to_string()))
    });
    match loaded {
        Ok(index) => Some(index),
        Err(e) => {
            heal(dir, &name, e, "rebuilt from the segment's vectors in the background", read_only, report);
            None
        }
    }
}

/// Lost chunks by document, with how many chunks of each document survived elsewhere.
fn lost_documents(lost_chunks: Vec<(String, String)>, segments: &[LoadedSegment]) -> Vec<LostDocument> {
    if lost_chunks.is_empty() {
        return Vec::new();
    }
    let mut lost: BTreeMap<String, LostDocument> = BTreeMap::new();
    for (doc_id, _) in lost_chunks {
        lost.entry(doc_id.clone()).or_insert(LostDocument { doc_id, chunks_lost: 0, chunks_kept: 0 }).chunks_lost += 1;
    }
    for segment in segments {
        for (row, deleted) in segment.rows.rows().iter().zip(&segment.deleted) {
            if deleted.is_none()
                && let Some(doc) = lost.get_mut(row.doc_id.as_str())
            {
                doc.chunks_kept += 1;
            }
        }
    }
    lost.into_values().collect()
}
