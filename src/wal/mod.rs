//! The write-ahead log: every mutation of an index opened from (or created in) a directory is
//! appended to `wal/` there before its call returns, so that open can replay what the last
//! snapshot lacks.
//!
//! - [`record`]: the framing and payloads of one record; [`segment`]: the files.
//! - [`group`]: group commit, so that concurrent writers share one copy and one fsync.
//! - [`active`]: the active segment, preallocated and mapped, and how a batch is committed.
//! - [`ahead`]: a helper thread that prepares pages and segments ahead of the writers.
//! - [`replay`]: reading it back at open, strict about damage.
//! - [`lock`]: one writer per directory.
//!
//! # Protocol with seqs and persists
//!
//! - L1: a write takes its seq, then appends its record, then applies it; a failed append
//!   applies nothing (the seq completes empty). So every applied operation has its record, and
//!   a record is in the log before any view can include its operation.
//! - L2: a persist into the index's own directory first starts a new segment ([`Log::rotate`]),
//!   then takes its snapshot view. A record in an older segment was handed to the group before
//!   the rotation, by a write that had taken its seq before that, so below the snapshot's seq:
//!   once the snapshot is committed, the older segments hold nothing it lacks, and are removed.
//! - L3: replay applies the records at or above the snapshot's seq with their own seqs, in seq
//!   order; the sequencer then continues above the highest.

#![allow(clippy::disallowed_types)] // the log is local files by nature: appended, never mapped

pub(crate) mod active;
pub(crate) mod ahead;
pub(crate) mod group;
pub(crate) mod lock;
pub(crate) mod record;
pub(crate) mod replay;
pub(crate) mod segment;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::seq::SeqNo;
use crate::sync::{Arc, AtomicBool, Ordering};
use active::ActiveSegment;
use ahead::{Ahead, WritePath};
use group::Group;
use record::Op;
use segment::Header;

/// What a call's return promises about its write, for an index bound to a directory
/// ([`VectorIndex::create`](crate::VectorIndex::create), [`VectorIndex::open`](crate::VectorIndex::open)).
///
/// | level | the write survives | cost per call |
/// |---|---|---|
/// | `None` | nothing until the next persist | none |
/// | `ProcessCrash` (default) | the process dying (SIGKILL, OOM killer, panic): the record is in the kernel | a copy into the mapped log, no system call; batched across concurrent writers |
/// | `PowerLoss` | the machine losing power: the record is on the disk | one `pwrite(2)` and one `fdatasync(2)`, shared by concurrent writers |
/// | `Interval(d)` | the process dying; a power loss loses at most about `d` | as `ProcessCrash`, and an fsync every `d` in the background |
///
/// The default is `ProcessCrash`: the crash the system this crate replaces lost data to is the
/// process's (killed on shutdown, or by the OOM killer), and it costs a write per call, where an
/// fsync per call costs a disk round trip (milliseconds on common disks). Choose `PowerLoss` when
/// an acknowledged write must survive the machine too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    None,
    #[default]
    ProcessCrash,
    PowerLoss,
    Interval(Duration),
}

/// Parses `none`, `process-crash`, `power-loss` or `interval:<seconds>` (for a CLI flag or a
/// setting).
///
/// ```
/// use std::time::Duration;
/// use vecindex::Durability;
///
/// assert_eq!("power-loss".parse::<Durability>()?, Durability::PowerLoss);
/// assert_eq!("interval:0.5".parse::<Durability>()?, Durability::Interval(Duration::from_millis(500)));
/// assert!("sometimes".parse::<Durability>().is_err());
/// # Ok::<(), vecindex::Error>(())
/// ```
impl std::str::FromStr for Durability {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = || Error::InvalidConfig {
            reason: format!("durability {s:?}: expected none, process-crash, power-loss or interval:<seconds>"),
        };
        match s {
            "none" => Ok(Self::None),
            "process-crash" => Ok(Self::ProcessCrash),
            "power-loss" => Ok(Self::PowerLoss),
            _ => {
                let seconds: f64 = s.strip_prefix("interval:").and_then(|v| v.parse().ok()).ok_or_else(invalid)?;
                let every = Duration::try_from_secs_f64(seconds).ok().filter(|d| !d.is_zero()).ok_or_else(invalid)?;
                Ok(Self::Interval(every))
            }
        }
    }
}

/// The log of one index directory (see the module docs).
pub(crate) struct Log {
    group: Arc<Group<ActiveSegment>>,
    durability: Durability,
    flusher: Option<Flusher>,
}

/// The background fsync of [`Durability::Interval`].
struct Flusher {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Log {
    /// Starts segment `number` in the log of `index_dir` and appends there at `durability`
    /// (not `None`).
    pub(crate) fn start(
        index_dir: &Path,
        dim: usize,
        index_uid: u128,
        number: u64,
        durability: Durability,
    ) -> Result<Self> {
        let header = Header { dim: dim as u32, index_uid, number };
        let syncs = matches!(durability, Durability::PowerLoss | Durability::Interval(_));
        let write_path = if durability == Durability::PowerLoss { WritePath::Syscalls } else { WritePath::Mapping };
        let mut active = ActiveSegment::create(&segment::log_dir(index_dir), header, active::FIRST_CAPACITY, 0, syncs)?
            .writing_by(write_path);
        // No helper thread under the model checkers: their models drive the leader's own path.
        if cfg!(not(any(vecindex_loom, vecindex_shuttle))) {
            let ahead = Ahead::start().map_err(|e| Error::io("vecindex-log-ahead thread", e))?;
            active = active.with_helper(Arc::new(ahead));
        }
        let group = Arc::new(Group::new(active, durability == Durability::PowerLoss));
        let flusher = match durability {
            Durability::Interval(every) => Some(Flusher::start(group.clone(), every)?),
            _ => None,
        };
        Ok(Self { group, durability, flusher })
    }

    /// Appends the record of `op` with `seq`; returns once it is as durable as the level says.
    pub(crate) fn append(&self, seq: SeqNo, op: Op<'_>) -> Result<()> {
        let mut bytes = Vec::with_capacity(record::encoded_len(op));
        record::encode(seq, op, &mut bytes);
        self.group.append(&bytes).map_err(|e| Error::io(self.group.with_sink(|s| s.path.clone()), e))
    }

    /// Starts a new segment; returns the older ones (L2: remove them once a snapshot taken
    /// after this call is committed).
    pub(crate) fn rotate(&self) -> Result<Vec<PathBuf>> {
        let (number, dir) = self.group.with_sink(ActiveSegment::rotate)?;
        Ok(segment::list(&dir)?.into_iter().filter(|(n, _)| *n < number).map(|(_, p)| p).collect())
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        if let Some(flusher) = self.flusher.take() {
            flusher.stop.store(true, Ordering::Release);
            flusher.thread.thread().unpark();
            let _ = flusher.thread.join();
        }
        // What the last interval had not synced yet: a clean close loses nothing.
        if self.durability != Durability::None {
            let file = self.group.with_sink(|s| s.file.clone());
            if let Err(e) = file.sync_data() {
                tracing::warn!(error = %e, "cannot sync the log on close");
            }
        }
    }
}

impl Flusher {
    fn start(group: Arc<Group<ActiveSegment>>, every: Duration) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vecindex-log-sync".into())
            .spawn(move || {
                while !stopping.load(Ordering::Acquire) {
                    std::thread::park_timeout(every);
                    // The active segment's file, taken between batches; synced outside the group.
                    let file = group.with_sink(|s| s.file.clone());
                    if let Err(e) = file.sync_data() {
                        tracing::warn!(error = %e, "cannot sync the log");
                    }
                }
            })
            .map_err(|e| Error::io("vecindex-log-sync thread", e))?;
        Ok(Self { stop, thread })
    }
}
