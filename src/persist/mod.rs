//! Snapshots on disk.
//!
//! A snapshot is the set of rows visible at one seq. [`io`] is the only place the library touches
//! the file system; [`format`] defines the bytes.

pub mod format;
pub mod io;

use std::path::{Path, PathBuf};

use crate::chunk::RowMeta;
use crate::metric::Metric;
use crate::seq::SeqNo;
use crate::sync::Arc;

/// The snapshot file inside an index directory.
pub const SNAPSHOT_FILE: &str = "snapshot.vix";

/// What a persist wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistReport {
    /// The snapshot holds exactly the operations with a seq below this.
    pub seq: SeqNo,
    /// Live chunks written.
    pub rows: usize,
    /// Bytes written.
    pub bytes: u64,
    pub path: PathBuf,
}

/// A snapshot read back: rows in the order they were added.
pub struct Snapshot {
    pub dim: usize,
    pub metric: Metric,
    pub seq: SeqNo,
    pub rows: Vec<(RowMeta, Vec<f32>)>,
}

/// Writes `rows` (visible at `seq`) as the snapshot of the index directory `dir`, atomically:
/// a crash leaves either the previous snapshot or this one.
pub fn write_snapshot(
    dir: &Path,
    dim: usize,
    metric: Metric,
    seq: SeqNo,
    rows: Vec<(Arc<RowMeta>, Vec<f32>)>,
) -> crate::Result<PersistReport> {
    let count = rows.len();
    let bytes = format::encode(dim, metric, seq, rows)?;
    let path = io::atomic_write(dir, SNAPSHOT_FILE, &bytes)?;
    Ok(PersistReport { seq, rows: count, bytes: bytes.len() as u64, path })
}

/// Reads the snapshot of the index directory `dir`, validating header and checksum first.
pub fn read_snapshot(dir: &Path) -> crate::Result<Snapshot> {
    let path = dir.join(SNAPSHOT_FILE);
    let bytes = io::read(&path)?;
    format::decode(&path, &bytes)
}
