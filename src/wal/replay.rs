//! Reading the log back at open: every record above the snapshot's seq, in seq order, up to the
//! first damage, and an honest account of what was not replayed.
//!
//! - A segment's written records end at a zero commit word (allocated space never committed, or
//!   a batch a crash cut before its commit) or where a frame or body runs past the file's end:
//!   none of those calls had returned. What was written past that point is counted in
//!   `torn_bytes`.
//! - Anything else that is not a record (a checksum that fails, a length that fails its check, a
//!   segment of another index) is damage: replay stops there. The records before it are applied
//!   (they were all written before the damaged one, so every record they depend on is among
//!   them); those after it are counted by scanning on for valid records, and reported with their
//!   seq range in [`LogDamage`].

use std::path::{Path, PathBuf};

use crate::seq::SeqNo;
use crate::wal::record::{self, Framed, Record};
use crate::wal::segment::{self, HEADER, Header};

/// What replaying the log did, in the [`OpenReport`](crate::OpenReport).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct LogReport {
    /// Log segments read.
    pub segments: usize,
    /// Operations applied on top of the snapshot.
    pub replayed: usize,
    /// Records the snapshot already held (below its seq), skipped.
    pub already_in_snapshot: usize,
    /// Bytes at the end of segments that a crash cut mid-write (their calls never returned).
    pub torn_bytes: u64,
    /// Where replay stopped early, if it did.
    pub damage: Option<LogDamage>,
}

/// Damage in the log: replay stopped at it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogDamage {
    pub file: PathBuf,
    /// Where in the file the damage starts.
    pub offset: u64,
    pub reason: String,
    /// Valid records found after the damage (this file's rest and later segments), not applied.
    pub records_not_replayed: usize,
    /// The lowest and highest seq among them.
    pub seqs_not_replayed: Option<(SeqNo, SeqNo)>,
}

impl LogDamage {
    /// Damage at `offset` of the segment `file` holding `bytes`, with the valid records from
    /// `scan_from` on counted as not replayed.
    fn found(file: PathBuf, bytes: &[u8], offset: usize, reason: String, scan_from: usize) -> Self {
        let mut damage =
            LogDamage { file, offset: offset as u64, reason, records_not_replayed: 0, seqs_not_replayed: None };
        scan_after_damage(bytes, scan_from, &mut damage);
        damage
    }

    fn count(&mut self, seq: SeqNo) {
        self.records_not_replayed += 1;
        self.seqs_not_replayed = Some(match self.seqs_not_replayed {
            None => (seq, seq),
            Some((lo, hi)) => (lo.min(seq), hi.max(seq)),
        });
    }
}

/// The log read back: records to apply (seq order), the report, the segment files read and the
/// highest segment number seen.
pub(crate) struct Replay {
    pub(crate) records: Vec<(SeqNo, Record)>,
    pub(crate) report: LogReport,
    pub(crate) files: Vec<PathBuf>,
    pub(crate) last_number: u64,
}

/// Reads the log of `index_dir` for the index `index_uid` of dimension `dim`, keeping the
/// records at or above `snapshot_seq`.
pub(crate) fn read(index_dir: &Path, index_uid: u128, dim: usize, snapshot_seq: SeqNo) -> crate::Result<Replay> {
    let segments = segment::list(&segment::log_dir(index_dir))?;
    let mut replay = Replay {
        records: Vec::new(),
        report: LogReport { segments: segments.len(), ..LogReport::default() },
        files: Vec::new(),
        last_number: segments.last().map_or(0, |(n, _)| *n),
    };
    for (number, path) in segments {
        let bytes = std::fs::read(&path).map_err(|e| crate::Error::io(&path, e))?;
        replay.files.push(path.clone());
        if let Some(damage) = &mut replay.report.damage {
            scan_after_damage(&bytes, HEADER, damage);
            continue;
        }
        let header = Header::decode(&bytes).and_then(|h| match h {
            Some(h) if (h.index_uid, h.dim as usize, h.number) != (index_uid, dim, number) => {
                Err("the segment belongs to another index (its uid, dimension or number differ)".into())
            }
            h => Ok(h),
        });
        match header {
            Ok(Some(_)) => {}
            Ok(None) => {
                replay.report.torn_bytes += written(&bytes) as u64;
                continue;
            }
            Err(reason) => {
                replay.report.damage = Some(LogDamage::found(path, &bytes, 0, reason, HEADER));
                continue;
            }
        }
        let mut at = HEADER;
        loop {
            match record::decode(&bytes[at..]) {
                Framed::Record { seq, record, len } => {
                    let vectors_fit = match &record {
                        Record::Write { docs, .. } => docs.iter().flat_map(|(_, c)| c).all(|c| c.vector.len() == dim),
                        _ => true,
                    };
                    if !vectors_fit {
                        let reason = format!("a record holds a vector whose dimension is not the index's {dim}");
                        // Scanned from the record itself: it is one not replayed.
                        replay.report.damage = Some(LogDamage::found(path.clone(), &bytes, at, reason, at));
                        break;
                    }
                    if seq >= snapshot_seq {
                        replay.records.push((seq, record));
                    } else {
                        replay.report.already_in_snapshot += 1;
                    }
                    at += len;
                }
                Framed::End => {
                    replay.report.torn_bytes += written(&bytes[at..]) as u64;
                    break;
                }
                Framed::Damaged { reason } => {
                    replay.report.damage = Some(LogDamage::found(path.clone(), &bytes, at, reason, at + 1));
                    break;
                }
            }
        }
    }
    replay.records.sort_by_key(|(seq, _)| *seq);
    replay.report.replayed = replay.records.len();
    Ok(replay)
}

/// The bytes of `bytes` up to its last non-zero one: what was written of a tail (a segment is
/// allocated zeroed ahead of its records).
fn written(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).map_or(0, |last| last + 1)
}

/// Counts the valid records in `bytes` from `from` on, resynchronizing at every 8-byte boundary
/// (where records start).
fn scan_after_damage(bytes: &[u8], from: usize, damage: &mut LogDamage) {
    let mut at = from.next_multiple_of(8);
    let end = written(bytes);
    while at + record::FRAME <= end {
        match record::decode(&bytes[at..]) {
            Framed::Record { seq, len, .. } => {
                damage.count(seq);
                at += len;
            }
            _ => at += 8,
        }
    }
}
