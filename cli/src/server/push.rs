//! `serve --push-to URL`: a writer that pushes its index to object storage for its replicas.
//!
//! A thread of its own wakes every interval and, if the index took writes since the last push,
//! persists it into the storage (`VectorIndex::persist_to`: only the files the storage lacks are
//! uploaded, then the manifest is committed conditionally). At shutdown, after the final local
//! persists (the server's and the background ingest's), the server stops the thread and pushes
//! once more. A failed push is logged, counted and tried again at the next interval: the local
//! directory and its log stay the truth.
//!
//! Invariants: one push at a time (the thread's, or the final one after the thread stopped);
//! the status is behind a mutex taken only to copy or update it.

#![allow(clippy::disallowed_types)] // a plain thread beside the server, like the ingest's

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use vecindex::{ObjectStorage, ObjectStorageOptions, PersistReport, SeqNo, VectorIndex};

/// Where the pushes stand, for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct PushStatus {
    pub pushes: u64,
    pub failures: u64,
    /// The generation of the last push that committed (0 before one).
    pub generation: u64,
    /// The seq of the last push that committed: the index's state below it is on the storage.
    pub pushed_seq: Option<SeqNo>,
}

/// The pushing thread and what it pushes; see the module docs.
pub struct Pusher {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    index: Arc<VectorIndex>,
    storage: ObjectStorage,
    url: String,
    cache: PathBuf,
    interval: Duration,
    status: Mutex<PushStatus>,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Pusher {
    /// Opens the storage at `url` and starts pushing `index` there every `interval` (the first
    /// push at once, so that replicas have a generation to open).
    pub fn start(index: Arc<VectorIndex>, url: &str, interval: Duration) -> Result<Arc<Self>, String> {
        // Uploads are not kept: a push reads back only manifests, into a scratch cache.
        let cache = std::env::temp_dir().join(format!("vecindex-push-to-{}", std::process::id()));
        let options = ObjectStorageOptions { cache_writes: false, ..ObjectStorageOptions::new(&cache) };
        let storage = ObjectStorage::open(url, options).map_err(|e| format!("--push-to {url}: {e}"))?;
        let shared = Arc::new(Shared {
            index,
            storage,
            url: url.to_owned(),
            cache,
            interval,
            status: Mutex::default(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("vecindex-push".into())
            .spawn(move || thread_shared.push_until_stopped())
            .map_err(|e| format!("push thread: {e}"))?;
        Ok(Arc::new(Self { shared, thread: Mutex::new(Some(thread)) }))
    }

    pub fn status(&self) -> PushStatus {
        self.shared.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Stops the thread, then pushes what the index holds now (unless it is there already).
    pub fn finish(&self) -> Result<Option<PersistReport>, String> {
        *self.shared.stop.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
        self.shared.wake.notify_all();
        let thread = self.thread.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(thread) = thread {
            thread.join().map_err(|_| "the push thread panicked".to_owned())?;
        }
        let pushed = self.shared.push_if_changed().map_err(|e| format!("final push to {}: {e}", self.shared.url));
        let _ = std::fs::remove_dir_all(&self.shared.cache);
        pushed
    }
}

impl Shared {
    fn push_until_stopped(&self) {
        loop {
            if let Err(e) = self.push_if_changed() {
                tracing::warn!(url = %self.url, error = %e, "push failed; trying again at the next interval");
            }
            let stop = self.stop.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let (stop, _) = self
                .wake
                .wait_timeout_while(stop, self.interval, |stop| !*stop)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if *stop {
                return;
            }
        }
    }

    /// Pushes if the index took writes since the last push that committed.
    fn push_if_changed(&self) -> Result<Option<PersistReport>, vecindex::Error> {
        let next_seq = self.index.stats().next_seq;
        if self.status().pushed_seq == Some(next_seq) {
            return Ok(None);
        }
        let pushed = self.index.persist_to(&self.storage);
        let mut status = self.status();
        match &pushed {
            Ok(report) => {
                status.pushes += 1;
                status.generation = report.generation;
                status.pushed_seq = Some(report.seq);
                tracing::info!(
                    url = %self.url,
                    generation = report.generation,
                    files_written = report.files_written,
                    bytes_written = report.bytes_written,
                    "pushed"
                );
            }
            Err(_) => status.failures += 1,
        }
        pushed.map(Some)
    }

    fn status(&self) -> std::sync::MutexGuard<'_, PushStatus> {
        self.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
