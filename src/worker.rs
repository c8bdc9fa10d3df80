//! The background sealer: a thread owned by the index that seals frozen heads off the write path.
//!
//! Writers that freeze a head send a wake-up (a non-blocking channel send); the worker runs a
//! maintenance step (seal settled frozen heads, build FAISS indexes, merge and vacuum), polls
//! briefly while a frozen head still has a writer publishing into it, and otherwise checks for
//! merge and vacuum work a few times a second. Dropping the [`Worker`] stops the thread and
//! joins it.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::index::Shared;
use crate::sync::Arc;

/// How often an idle worker checks for merge and vacuum work.
const IDLE_POLL: Duration = Duration::from_millis(200);

enum Message {
    Wake,
    Stop,
}

pub(crate) struct Worker {
    tx: Sender<Message>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread. If the OS refuses a thread, the index still works: frozen heads are
    /// searched exactly until `maintain()` is called.
    pub(crate) fn start(shared: Arc<Shared>) -> Option<Self> {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new().name("vecindex-sealer".into()).spawn(move || {
            let mut frozen_left = 0;
            loop {
                // Poll fast while a frozen head waits for its last writer; otherwise look for
                // merge and vacuum work (deletes do not wake us) a few times a second.
                let wait = if frozen_left > 0 { Duration::from_millis(1) } else { IDLE_POLL };
                let message = match rx.recv_timeout(wait) {
                    Err(RecvTimeoutError::Timeout) => Message::Wake,
                    Err(RecvTimeoutError::Disconnected) => Message::Stop,
                    Ok(m) => m,
                };
                match message {
                    Message::Stop => break,
                    Message::Wake => frozen_left = shared.maintain(),
                }
            }
        });
        match spawned {
            Ok(handle) => Some(Self { tx, handle: Some(handle) }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the sealer thread; call maintain() instead");
                None
            }
        }
    }

    /// Never blocks.
    pub(crate) fn wake(&self) {
        let _ = self.tx.send(Message::Wake); // fails only if the thread is gone: nothing to wake
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.tx.send(Message::Stop);
        if let Some(handle) = self.handle.take()
            && handle.join().is_err()
        {
            tracing::error!("the sealer thread panicked");
        }
    }
}
