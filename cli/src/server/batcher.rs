//! Dynamic batching: the texts of concurrent requests are embedded together, in one
//! `Embedder::embed` call, because a model embeds 32 texts in far less than 32 times the time of
//! one (one pass over the weights, matrix products instead of vector products).
//!
//! Protocol (`Batcher::embed` on the request side, `collect` and `run` on the batcher's thread):
//!
//! - One thread, `vecindex-batcher`, makes every embedder call of the HTTP routes, one batch at a
//!   time: the model already uses the cores it is given, and batches that wait behind each other
//!   grow instead of competing. (The background ingest embeds on its own threads, in its own
//!   batches.)
//! - A batch is a run of whole requests in arrival order, of at most `max_texts` texts in all,
//!   except that a request with more texts than that runs alone, whole. Requests are never split:
//!   a request's vectors come from one embed call, so they are computed together and succeed or
//!   fail together, exactly as if the request had called the embedder itself.
//! - A batch closes when the next request would not fit, or `wait` after its first request was
//!   queued. The wait counts from queueing, not from the batcher's taking it: a request that
//!   already waited while the previous batch ran does not wait again, so under load batches
//!   fill from the backlog at once, and `wait` only costs anything when the server is idle.
//! - The queue holds at most `queue_max` texts, counted from admission until the batch holding
//!   them starts its embed call, or a single request bigger than that (admitted only into an
//!   empty queue, else it could never be served). A request that does not fit is refused at once
//!   (`EmbedError::Full`: 503 with Retry-After), never queued: memory and waiting time stay
//!   bounded, and an overloaded server says so in microseconds rather than after a timeout.
//! - An embed error, a wrong number of vectors or a panic reaches every request of that batch
//!   and no other; the thread goes on with the next batch.
//! - A request whose client went away (its reply receiver dropped) before its batch starts is
//!   left out of the call.
//! - The thread ends when every `Batcher` handle is gone (the server's routes are), after
//!   answering what was queued: a graceful shutdown still gets its vectors.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use vecindex::embed::Embedder;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use super::metrics::{seconds_histogram, texts_histogram};

/// The `serve` flags of the batcher.
#[derive(clap::Args, Clone, Debug)]
pub struct BatchOptions {
    /// Most texts in one embedder call: the texts of concurrent requests (POST /search and POST
    /// /documents by text, POST /v1/embeddings) are embedded together up to this many. A request
    /// with more texts is embedded alone, whole. 1: no batching (each request alone).
    #[arg(long, default_value_t = 32, value_parser = at_least_one)]
    pub batch_max: usize,
    /// How long a batch waits for more requests after its first one arrived, in milliseconds.
    /// 0 (the default) still batches under load: the requests that arrive while one batch is
    /// embedded form the next; a wait adds latency when the server is idle, to gain texts per
    /// call from clients that arrive close together.
    #[arg(long, default_value_t = 0.0, value_parser = milliseconds)]
    pub batch_wait_ms: f64,
    /// Most texts waiting for the embedder; a request that does not fit gets 503 with
    /// Retry-After at once.
    #[arg(long, default_value_t = 1024, value_parser = at_least_one)]
    pub queue_max: usize,
    /// Embed each request alone, as `--batch-max 1` does (the queue and its bound stay).
    #[arg(long)]
    pub no_batching: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions { batch_max: 32, batch_wait_ms: 0.0, queue_max: 1024, no_batching: false }
    }
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?}: expected a whole number, at least 1")),
    }
}

fn milliseconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(ms) if (0.0..=60_000.0).contains(&ms) => Ok(ms),
        _ => Err(format!("{s:?}: expected milliseconds from 0 to 60000")),
    }
}

/// Why a request got no vectors.
#[derive(Debug)]
pub(super) enum EmbedError {
    /// The queue had no room: nothing was done, the client may retry.
    Full { queued: usize, limit: usize },
    /// The embed call of its batch failed (or panicked); every request of that batch gets this.
    Failed(String),
    /// The batcher is gone (the server is stopping).
    Stopped,
}

/// What `/metrics` shows of the batcher (registered by `Metrics::new`).
pub(super) struct BatchStats {
    /// Texts per embed call.
    pub(super) texts: Histogram,
    /// Duration of each embed call.
    pub(super) seconds: Histogram,
    /// Requests refused because the queue was full.
    pub(super) rejected: Counter,
    /// Embed calls that failed (each failed all the requests of its batch).
    pub(super) failed: Counter,
}

type Reply = Result<Vec<Vec<f32>>, EmbedError>;

struct Request {
    texts: Arc<Vec<String>>,
    queued_at: Instant,
    reply: oneshot::Sender<Reply>,
}

struct Shared {
    /// Texts admitted and not yet handed to the embedder: the queue's depth.
    queued: AtomicUsize,
    queue_max: usize,
    stats: BatchStats,
}

/// The request side of the batcher; cloned into every route that embeds.
pub(super) struct Batcher {
    requests: mpsc::Sender<Request>,
    shared: Arc<Shared>,
}

impl Batcher {
    /// Starts the batcher's thread.
    pub(super) fn start(embedder: Arc<dyn Embedder>, options: &BatchOptions) -> std::io::Result<Batcher> {
        let shared = Arc::new(Shared {
            queued: AtomicUsize::new(0),
            queue_max: options.queue_max.max(1),
            stats: BatchStats {
                texts: texts_histogram(),
                seconds: seconds_histogram(),
                rejected: Counter::default(),
                failed: Counter::default(),
            },
        });
        let max_texts = if options.no_batching { 1 } else { options.batch_max.max(1) };
        let wait = Duration::from_secs_f64(options.batch_wait_ms.max(0.0) / 1e3);
        let (requests, queue) = mpsc::channel();
        let thread_shared = shared.clone();
        std::thread::Builder::new().name("vecindex-batcher".into()).spawn(move || {
            let mut carried = None;
            while let Some(batch) = collect(&queue, &mut carried, max_texts, wait) {
                run(embedder.as_ref(), &thread_shared, batch);
            }
        })?;
        Ok(Batcher { requests, shared })
    }

    /// The vectors of `texts`, in order, embedded in some batch. The texts are shared rather than
    /// moved so that the caller keeps them: the batcher drops its reference before it replies.
    pub(super) async fn embed(&self, texts: Arc<Vec<String>>) -> Reply {
        let n = texts.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        // Relaxed: the bound is about this one counter (read-modify-writes of one atomic are
        // totally ordered); it publishes no other memory (the channel does).
        let limit = self.shared.queue_max;
        let admitted = self.shared.queued.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |queued| {
            (queued == 0 || queued + n <= limit).then_some(queued + n)
        });
        if let Err(queued) = admitted {
            self.shared.stats.rejected.inc();
            return Err(EmbedError::Full { queued, limit });
        }
        let (reply, answer) = oneshot::channel();
        if self.requests.send(Request { texts, queued_at: Instant::now(), reply }).is_err() {
            self.shared.queued.fetch_sub(n, Ordering::Relaxed);
            return Err(EmbedError::Stopped);
        }
        answer.await.unwrap_or(Err(EmbedError::Stopped))
    }

    /// Texts waiting now.
    pub(super) fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Relaxed)
    }

    pub(super) fn queue_max(&self) -> usize {
        self.shared.queue_max
    }

    pub(super) fn stats(&self) -> &BatchStats {
        &self.shared.stats
    }
}

/// The next batch (module docs), or `None` once every sender is gone and nothing is left.
/// `carried` holds a request that arrived but did not fit the previous batch: it starts the next.
fn collect(
    queue: &mpsc::Receiver<Request>,
    carried: &mut Option<Request>,
    max_texts: usize,
    wait: Duration,
) -> Option<Vec<Request>> {
    let first = match carried.take() {
        Some(request) => request,
        None => queue.recv().ok()?,
    };
    let closes_at = first.queued_at + wait;
    let mut texts = first.texts.len();
    let mut batch = vec![first];
    while texts < max_texts {
        let left = closes_at.saturating_duration_since(Instant::now());
        let next = if left.is_zero() { queue.try_recv().ok() } else { queue.recv_timeout(left).ok() };
        let Some(next) = next else { break };
        if texts + next.texts.len() > max_texts {
            *carried = Some(next);
            break;
        }
        texts += next.texts.len();
        batch.push(next);
    }
    Some(batch)
}

/// One embed call for `batch`, and each request's share of its vectors (or its error).
fn run(embedder: &dyn Embedder, shared: &Shared, batch: Vec<Request>) {
    let dequeued: usize = batch.iter().map(|r| r.texts.len()).sum();
    shared.queued.fetch_sub(dequeued, Ordering::Relaxed);
    let batch: Vec<Request> = batch.into_iter().filter(|r| !r.reply.is_closed()).collect();
    if batch.is_empty() {
        return;
    }
    let texts: Vec<&str> = batch.iter().flat_map(|r| r.texts.iter().map(String::as_str)).collect();
    let n = texts.len();
    shared.stats.texts.observe(n as f64);
    let started = Instant::now();
    // A panicking embedder fails this batch, not the server: the thread must go on serving.
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| embedder.embed(&texts)));
    shared.stats.seconds.observe(started.elapsed().as_secs_f64());
    drop(texts);
    let vectors = match result {
        Ok(Ok(vectors)) if vectors.len() == n => Ok(vectors),
        Ok(Ok(vectors)) => Err(format!("the embedder returned {} vectors for {n} texts", vectors.len())),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(format!("the embedder panicked: {}", panic_message(panic.as_ref()))),
    };
    match vectors {
        Ok(vectors) => {
            let mut vectors = vectors.into_iter();
            for Request { texts, reply, .. } in batch {
                let mine: Vec<Vec<f32>> = vectors.by_ref().take(texts.len()).collect();
                drop(texts); // before replying, so that the caller holds the only reference
                let _ = reply.send(Ok(mine)); // Err: the client went away meanwhile
            }
        }
        Err(reason) => {
            shared.stats.failed.inc();
            tracing::error!(texts = n, %reason, "embedding a batch failed");
            for Request { reply, .. } in batch {
                let _ = reply.send(Err(EmbedError::Failed(reason.clone())));
            }
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str)).unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex};

    use super::*;

    /// Records the size of every call; fails a call holding "fail", panics on one holding
    /// "panic", and holds a call holding "held" until the test opens the gate: the tests order
    /// events by state, not by sleeping.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<usize>>,
        open: Mutex<bool>,
        opened: Condvar,
    }

    impl Recorder {
        fn open(&self) {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }
        fn calls(&self) -> Vec<usize> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Embedder for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }
        fn dim(&self) -> usize {
            1
        }
        fn embed(&self, texts: &[&str]) -> vecindex::Result<Vec<Vec<f32>>> {
            self.calls.lock().unwrap().push(texts.len());
            if texts.contains(&"held") {
                let open = self.open.lock().unwrap();
                drop(self.opened.wait_while(open, |open| !*open).unwrap());
            }
            if texts.contains(&"panic") {
                panic!("asked to");
            }
            if texts.contains(&"fail") {
                return Err(vecindex::Error::Embedder { name: "recorder".into(), reason: "asked to".into() });
            }
            Ok(texts.iter().map(|t| vec![t.len() as f32]).collect())
        }
    }

    fn batcher(options: BatchOptions) -> (Arc<Recorder>, Arc<Batcher>) {
        let recorder = Arc::new(Recorder::default());
        let batcher = Batcher::start(recorder.clone(), &options).unwrap();
        (recorder, Arc::new(batcher))
    }

    fn texts(words: &[&str]) -> Arc<Vec<String>> {
        Arc::new(words.iter().map(|w| w.to_string()).collect())
    }

    /// Waits (10 s at most) until `done`.
    fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Worker threads run the spawned requests while the test thread waits for a state.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    }

    /// Starts a held call on the batcher's thread and returns once it is in the embedder: the
    /// requests sent next queue up behind it.
    fn hold(
        runtime: &tokio::runtime::Runtime,
        recorder: &Recorder,
        batcher: &Arc<Batcher>,
    ) -> tokio::task::JoinHandle<Reply> {
        let batcher2 = batcher.clone();
        let held = runtime.spawn(async move { batcher2.embed(texts(&["held"])).await });
        until("the held call started", || recorder.calls().len() == 1);
        assert_eq!(batcher.queued(), 0, "a batch in the embedder is out of the queue");
        held
    }

    #[test]
    fn queued_requests_share_calls_and_get_their_own_vectors() {
        let options = BatchOptions { batch_max: 8, batch_wait_ms: 20.0, ..BatchOptions::default() };
        let (recorder, batcher) = batcher(options);
        let runtime = runtime();
        let held = hold(&runtime, &recorder, &batcher);
        let requests: Vec<_> = (0..6)
            .map(|i| {
                let (batcher, texts) = (batcher.clone(), texts(&[&"x".repeat(i + 1), &"y".repeat(10 + i)]));
                runtime.spawn(async move { batcher.embed(texts).await })
            })
            .collect();
        until("six requests queued", || batcher.queued() == 12);
        recorder.open();
        runtime.block_on(async {
            assert!(held.await.unwrap().is_ok());
            for (i, request) in requests.into_iter().enumerate() {
                let reply = request.await.unwrap().unwrap();
                assert_eq!(reply, vec![vec![(i + 1) as f32], vec![(10 + i) as f32]], "request {i}");
            }
        });
        // The backlog fills a batch at once (whole requests, at most 8 texts); the rest waits for
        // company, finds none, and goes.
        assert_eq!(recorder.calls(), vec![1, 8, 4]);
        assert_eq!(batcher.queued(), 0);
    }

    #[test]
    fn a_request_bigger_than_a_batch_runs_alone_and_whole() {
        let options = BatchOptions { batch_max: 2, batch_wait_ms: 0.0, ..BatchOptions::default() };
        let (recorder, batcher) = batcher(options);
        let reply = runtime().block_on(batcher.embed(texts(&["a", "bb", "ccc", "dddd", "eeeee"])));
        assert_eq!(reply.unwrap(), vec![vec![1.0], vec![2.0], vec![3.0], vec![4.0], vec![5.0]]);
        assert_eq!(recorder.calls(), vec![5]);
    }

    #[test]
    fn a_failure_reaches_only_its_own_batch() {
        let options = BatchOptions { batch_max: 2, batch_wait_ms: 0.0, ..BatchOptions::default() };
        let (recorder, batcher) = batcher(options);
        let runtime = runtime();
        let held = hold(&runtime, &recorder, &batcher);
        let opener = std::thread::spawn({
            let (recorder, batcher) = (recorder.clone(), batcher.clone());
            move || {
                until("four requests queued", || batcher.queued() == 4);
                recorder.open();
            }
        });
        runtime.block_on(async {
            // join! sends them in this order: the batches are [fail, ok] and [panic, fine].
            let (a, b, c, d) = tokio::join!(
                batcher.embed(texts(&["fail"])),
                batcher.embed(texts(&["ok"])),
                batcher.embed(texts(&["panic"])),
                batcher.embed(texts(&["fine"])),
            );
            assert!(held.await.unwrap().is_ok());
            assert!(matches!(a, Err(EmbedError::Failed(ref m)) if m.contains("asked to")), "{a:?}");
            assert!(matches!(b, Err(EmbedError::Failed(_))), "{b:?}: same batch as the failure");
            assert!(matches!(c, Err(EmbedError::Failed(ref m)) if m.contains("panicked")), "{c:?}");
            assert!(matches!(d, Err(EmbedError::Failed(_))), "{d:?}");
            // The thread survived the panic; the next batch is fine.
            assert_eq!(batcher.embed(texts(&["after"])).await.unwrap(), vec![vec![5.0]]);
        });
        opener.join().unwrap();
        assert_eq!(recorder.calls(), vec![1, 2, 2, 1]);
        assert_eq!(batcher.stats().failed.get(), 2);
    }

    #[test]
    fn a_full_queue_refuses_at_once_and_never_grows() {
        let options = BatchOptions { batch_max: 1, batch_wait_ms: 0.0, queue_max: 2, no_batching: false };
        let (recorder, batcher) = batcher(options);
        let runtime = runtime();
        let held = hold(&runtime, &recorder, &batcher);
        let queued = runtime.spawn({
            let batcher = batcher.clone();
            async move { batcher.embed(texts(&["a", "b"])).await }
        });
        runtime.block_on(async {
            while batcher.queued() < 2 {
                tokio::task::yield_now().await; // lets the task above send
            }
            let refused = batcher.embed(texts(&["c"])).await;
            assert!(matches!(refused, Err(EmbedError::Full { queued: 2, limit: 2 })), "{refused:?}");
            assert_eq!(batcher.queued(), 2, "a refused request leaves no trace");
            recorder.open();
            assert!(held.await.unwrap().is_ok() && queued.await.unwrap().is_ok());
            // Bigger than the whole queue: admitted, since the queue is empty now.
            assert_eq!(batcher.embed(texts(&["a", "b", "c"])).await.unwrap().len(), 3);
        });
        assert_eq!(batcher.stats().rejected.get(), 1);
        assert_eq!(recorder.calls(), vec![1, 2, 3], "--batch-max 1: each request alone, whole");
    }

    #[test]
    fn an_idle_batch_waits_at_most_its_wait() {
        let options = BatchOptions { batch_max: 32, batch_wait_ms: 20.0, ..BatchOptions::default() };
        let (_, batcher) = batcher(options);
        let took = runtime().block_on(async {
            let started = Instant::now();
            batcher.embed(texts(&["alone"])).await.unwrap();
            started.elapsed()
        });
        assert!(took >= Duration::from_millis(20), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
}
