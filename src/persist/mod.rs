//! Snapshots on disk: an index directory of immutable files named by a MANIFEST.
//!
//! ```text
//! index/
//!   MANIFEST                          the snapshot: seq, dimension, metric, config, files
//!   MANIFEST.prev                     the one before (fallback if MANIFEST is damaged)
//!   seg-<id>-<checksum>.rows          a sealed segment's rows and vectors, written once
//!   seg-<id>-<checksum>.ids           its chunk ids, document ids and add seqs, written once
//!   seg-<id>-<checksum>-<tag>.faiss   its FAISS index, written once
//!   tombstones-<checksum>             the snapshot's deletes
//!   graph-<checksum>                  a plain HNSW index's shared graph, as it grows
//!   LOCK                              serializes persists (advisory lock)
//!   quarantine/                       damaged files moved aside by open, never deleted
//! ```
//!
//! A persist writes the files the directory lacks (a segment already there is not written
//! again: its name is its content), then commits a new MANIFEST ([`manifest`] has the
//! protocol). The rows still in heads are written as one more segment, the "head" of the
//! manifest. Open maps the rows files, checks each file once, and searches the mapped bytes
//! in place ([`rows`]). `docs/format.md` describes every byte.
//!
//! [`io`] is the only place the library touches the file system; [`format`] defines the header
//! every file starts with.

pub mod ids;
pub mod manifest;
pub(crate) mod reader;
pub mod tombstones;
pub(crate) mod writer;

use std::path::PathBuf;
use std::time::Duration;

use crate::seq::SeqNo;

/// What a persist wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PersistReport {
    /// The snapshot holds exactly the operations with a seq below this.
    pub seq: SeqNo,
    /// The manifest's generation: 1 for the first persist into the directory.
    pub generation: u64,
    /// Live chunks in the snapshot.
    pub rows: usize,
    /// Segments the manifest names (the heads' rows count as one).
    pub segments: usize,
    /// Files written, the manifest included.
    pub files_written: usize,
    /// Files the snapshot needs that were already in the directory.
    pub files_reused: usize,
    /// Files no manifest names any more, removed after the commit.
    pub files_collected: usize,
    /// Bytes written by this persist.
    pub bytes_written: u64,
    /// Bytes of the whole snapshot.
    pub bytes_total: u64,
    /// The index directory.
    pub path: PathBuf,
    pub duration: Duration,
}

/// What an open found, and what it did about damage.
///
/// | damage | outcome |
/// | --- | --- |
/// | `MANIFEST` missing or damaged, or its tombstones file | fall back to `MANIFEST.prev` ([`fell_back`](Self::fell_back)); strict: error |
/// | both manifests unusable | [`Error::Corrupt`](crate::Error::Corrupt) |
/// | a rows file missing or damaged | moved to `quarantine/`, its documents named in [`lost_documents`](Self::lost_documents); strict: error |
/// | an ids file missing or damaged | [`healed`](Self::healed): written again by the next persist |
/// | a FAISS file missing or damaged | [`healed`](Self::healed): rebuilt from the segment's vectors |
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct OpenReport {
    /// The index directory.
    pub path: PathBuf,
    /// The snapshot's seq: it holds exactly the operations below it.
    pub seq: SeqNo,
    pub generation: u64,
    /// `MANIFEST`, or `MANIFEST.prev` after a fallback.
    pub manifest: String,
    /// Why `MANIFEST` was not used, if it was not.
    pub fell_back: Option<String>,
    /// Segments opened.
    pub segments: usize,
    /// Live chunks opened.
    pub chunks: usize,
    /// Bytes of rows files mapped.
    pub bytes_mapped: u64,
    /// Files rebuilt from others, losing nothing.
    pub healed: Vec<Healed>,
    /// Rows files that could not be read, moved aside.
    pub quarantined: Vec<Quarantined>,
    /// Documents that lost chunks with them.
    pub lost_documents: Vec<LostDocument>,
    /// Chunks lost whose documents are unknown (a rows file and its ids file both damaged).
    pub lost_rows_unknown: usize,
    /// Rows dropped because another row had the same chunk id (never in a snapshot vecindex
    /// wrote; counted, not trusted).
    pub duplicate_rows: usize,
    /// What replaying the write-ahead log applied on top of the snapshot, and any damage.
    pub log: crate::wal::replay::LogReport,
    pub duration: Duration,
}

impl OpenReport {
    /// Logs what the open found.
    pub(crate) fn log(&self) {
        tracing::info!(
            path = %self.path.display(),
            seq = self.seq,
            generation = self.generation,
            segments = self.segments,
            chunks = self.chunks,
            bytes_mapped = self.bytes_mapped,
            ms = self.duration.as_secs_f64() * 1e3,
            "opened index"
        );
        if self.log.segments > 0 {
            tracing::info!(
                segments = self.log.segments,
                replayed = self.log.replayed,
                torn_bytes = self.log.torn_bytes,
                "replayed the write-ahead log"
            );
        }
        if let Some(damage) = &self.log.damage {
            tracing::error!(
                file = %damage.file.display(),
                offset = damage.offset,
                reason = %damage.reason,
                records_not_replayed = damage.records_not_replayed,
                seqs_not_replayed = ?damage.seqs_not_replayed,
                "the write-ahead log is damaged: replay stopped there"
            );
        }
        for doc in &self.lost_documents {
            tracing::warn!(doc_id = %doc.doc_id, lost = doc.chunks_lost, kept = doc.chunks_kept, "document lost chunks");
        }
    }

    /// Whether the open found nothing wrong.
    pub fn is_clean(&self) -> bool {
        self.fell_back.is_none() && self.healed.is_empty() && !self.lost_data() && self.duplicate_rows == 0
    }

    /// Whether acknowledged data is missing: a fallback, a quarantined rows file, or damage in
    /// the write-ahead log.
    pub fn lost_data(&self) -> bool {
        self.fell_back.is_some() || !self.quarantined.is_empty() || self.log.damage.is_some()
    }
}

/// A file rebuilt from others.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Healed {
    pub file: PathBuf,
    pub reason: String,
    pub action: String,
}

/// A rows file moved aside.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quarantined {
    pub file: PathBuf,
    /// Where it went (`None` if it was missing, or could not be moved).
    pub moved_to: Option<PathBuf>,
    pub reason: String,
    /// Rows it held, live or not.
    pub rows: u64,
}

/// A document that lost chunks in a quarantined rows file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LostDocument {
    pub doc_id: String,
    pub chunks_lost: usize,
    /// Chunks of the document that other segments still hold.
    pub chunks_kept: usize,
}
