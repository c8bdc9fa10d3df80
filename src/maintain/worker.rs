//! The background threads owned by an index: a sealer and a builder, both off the write path.
//!
//! The *sealer* seals frozen heads as soon as their last writer has published (sealing encodes a
//! head's rows, milliseconds). On each wake-up it also grows the shards of the id maps that are
//! about to fill ([`crate::maps::grow_ahead`]), so writers rarely rehash one. Writers that freeze a head wake it with a non-blocking channel send;
//! it polls briefly while a frozen head still has a writer publishing into it.
//!
//! The *builder* merges and vacuums segments and builds their FAISS indexes, which can take
//! seconds: it runs apart so that sealing never waits behind it (a frozen head is scanned by
//! every search, and rewritten by every persist, until it is sealed). The sealer wakes it after
//! sealing; otherwise it looks for merge and vacuum work a few times a second.
//!
//! Dropping the [`Worker`] stops both threads and joins them, within one bounded step of the
//! builder's work: a build in progress is abandoned, not finished.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::maintain::Maintenance;
use crate::sync::Arc;

/// How often an idle sealer looks for work nobody woke it for.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// How often the sealer looks again while a frozen head waits for its last writer.
const SETTLE_POLL: Duration = Duration::from_millis(1);

enum Message {
    Wake,
    Stop,
}

/// One background thread and its wake-up channel.
struct Thread {
    tx: Sender<Message>,
    handle: Option<JoinHandle<()>>,
}

impl Thread {
    fn spawn(name: &str, body: impl FnOnce(Receiver<Message>) + Send + 'static) -> Option<Self> {
        let (tx, rx) = mpsc::channel();
        match std::thread::Builder::new().name(name.into()).spawn(move || body(rx)) {
            Ok(handle) => Some(Self { tx, handle: Some(handle) }),
            Err(e) => {
                tracing::warn!(error = %e, thread = name, "cannot start a background thread; call maintain() instead");
                None
            }
        }
    }

    /// Never blocks.
    fn wake(&self) {
        let _ = self.tx.send(Message::Wake); // fails only if the thread is gone: nothing to wake
    }

    fn stop(&mut self) {
        let _ = self.tx.send(Message::Stop);
        if let Some(handle) = self.handle.take()
            && handle.join().is_err()
        {
            tracing::error!("a background thread panicked");
        }
    }
}

/// Waits up to `wait` for a message; a timeout counts as a wake-up.
fn next(rx: &Receiver<Message>, wait: Duration) -> Message {
    match rx.recv_timeout(wait) {
        Err(RecvTimeoutError::Timeout) => Message::Wake,
        Err(RecvTimeoutError::Disconnected) => Message::Stop,
        Ok(m) => m,
    }
}

pub(crate) struct Worker {
    maintenance: Arc<Maintenance>,
    sealer: Thread,
    builder: Option<Thread>,
}

impl Worker {
    /// Starts the threads. If the OS refuses them, the index still works: frozen heads are
    /// searched exactly until `maintain()` is called.
    pub(crate) fn start(maintenance: Arc<Maintenance>) -> Option<Self> {
        let for_builder = maintenance.clone();
        let for_sealer = maintenance.clone();
        let builder = Thread::spawn("vecindex-builder", move |rx| {
            let poll = for_builder.poll_interval();
            while let Message::Wake = next(&rx, poll) {
                for_builder.build();
            }
        });
        let builder_tx = builder.as_ref().map(|b| b.tx.clone());
        let sealer = Thread::spawn("vecindex-sealer", move |rx| {
            let mut frozen = 0;
            while let Message::Wake = next(&rx, if frozen > 0 { SETTLE_POLL } else { IDLE_POLL }) {
                for_sealer.grow_maps_ahead();
                let sealed;
                (sealed, frozen) = for_sealer.seal();
                if sealed > 0
                    && let Some(tx) = &builder_tx
                {
                    let _ = tx.send(Message::Wake); // new sealed segments may want merging or indexing
                }
            }
        })?;
        Some(Self { maintenance, sealer, builder })
    }

    /// Never blocks.
    pub(crate) fn wake(&self) {
        self.sealer.wake();
    }
}

impl Drop for Worker {
    /// Stops both threads without finishing work whose result would be thrown away: a FAISS
    /// build or merge in progress stops at its next bounded step ([`Maintenance::close`]), so this
    /// returns within about one such step.
    fn drop(&mut self) {
        self.maintenance.close();
        self.sealer.stop();
        if let Some(builder) = &mut self.builder {
            builder.stop();
        }
    }
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use crate::chunk::Chunk;
    use crate::config::IndexConfig;
    use crate::index::VectorIndex;
    use crate::query::SearchOptions;
    use crate::stats::SegmentState;

    fn v(x: f32) -> Vec<f32> {
        vec![1.0, x]
    }

    #[test]
    fn background_worker_seals_full_heads() {
        let index = VectorIndex::new(IndexConfig::new(2).head_capacity(4)).unwrap();
        for i in 0..40 {
            index.add_chunk(Chunk::new(format!("c{i}"), "d", v(i as f32))).unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let stats = index.stats();
            // The 10th head is full but stays current until an 11th append needs room; the
            // nine sealed heads may have been merged meanwhile.
            let sealed_rows: usize =
                stats.segments.iter().filter(|s| s.state != SegmentState::Head).map(|s| s.rows).sum();
            if sealed_rows == 36 && stats.segments.iter().all(|s| s.state != SegmentState::Frozen) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "not sealed: {:?}", stats.segments);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let hits = index.search(&v(39.0), &SearchOptions::k(40)).unwrap();
        assert_eq!(hits.len(), 40, "sealing neither lost nor duplicated rows");
        drop(index); // joins the worker
    }
}
