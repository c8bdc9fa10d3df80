//! `vecindex serve`: the index over HTTP (axum on tokio), with an optional background ingest.
//!
//! | route | body | answer |
//! | --- | --- | --- |
//! | `POST /documents` | `{"doc_id", "text", "metadata"?}` or `{"doc_id", "chunks": [{"text", "vector"?, "metadata"?}]}` | the document replaced atomically |
//! | `GET /documents/{id}` | | its chunks (ids may hold `/`: ingested files are named by path) |
//! | `DELETE /documents/{id}` | | 404 if it did not exist |
//! | `POST /search` | `{"text" / "vector" / "texts" / "vectors", "k"?, "exclude_docs"?, "filter"?, "include"?}` | hits, best first (per query for a batch) |
//! | `POST /persist` | | what was written |
//! | `GET /stats` | | JSON |
//! | `GET /livez` (`/healthz`), `GET /readyz` | | `ok`; ready once the model loaded (`probes.rs`) |
//! | `GET /metrics`, `GET /openapi.json` | | OpenMetrics text (`metrics.rs`), OpenAPI 3.1 (`openapi.rs`) |
//! | `POST /v1/embeddings`, `GET /v1/models[/{model}]` | OpenAI's | OpenAI's (`openai.rs`) |
//!
//! Texts are embedded by the batcher (`batcher.rs`), which merges the texts of concurrent
//! requests into one embedder call and answers 503 when its bounded queue is full. Every index
//! call, and other CPU work, runs on tokio's blocking pool (`spawn_blocking`), never on the async
//! workers. Bodies over the limit get 413, bad input 400 (422 for a wrong vector), a missing or
//! wrong key 401 (`layers.rs`: the keys, request ids and logs, the time limit, the request
//! metrics); every error body is JSON (`error.rs`). With `--push-to URL` a writer also pushes
//! its index to object storage for replicas (`push.rs`). On SIGTERM or SIGINT the server stops
//! accepting, lets requests in flight finish, persists while the background ingest is still
//! adding, then stops the ingest (which persists what it added last), pushes what it holds,
//! and exits 0.

mod batcher;
mod error;
mod layers;
mod metrics;
mod openai;
mod openapi;
mod probes;
#[cfg(feature = "object-store")]
mod push;
mod routes;
mod source;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::routing::{get, post};
use vecindex::VectorIndex;
use vecindex::embed::Embedder;

pub use self::batcher::BatchOptions;
use self::batcher::Batcher;
use self::error::ApiError;
use self::layers::{Access, Keys};
use self::metrics::Metrics;
use self::probes::Readiness;
pub use self::source::IndexSource;
use crate::chunker::ChunkSize;
use crate::ingest::{self, IngestOptions};

/// What `serve` needs.
pub struct ServeOptions {
    pub addr: SocketAddr,
    pub index_path: PathBuf,
    /// Required as `Authorization: Bearer <token>` on mutating routes and on `/v1`, if set.
    pub token: Option<String>,
    /// The read key and the time limit.
    pub limits: LimitOptions,
    pub max_body_bytes: usize,
    pub chunk: ChunkSize,
    /// Ingest this directory in the background while serving.
    pub ingest: Option<IngestOptions>,
    /// How the texts of concurrent requests are embedded together.
    pub batching: BatchOptions,
    /// Push the index to this object storage URL, and how often (`push.rs`).
    pub push_to: Option<(String, Duration)>,
}

/// Who may read, and how long a request may take.
#[derive(clap::Args)]
pub struct LimitOptions {
    /// Bearer key required on the routes that read the index (GET /documents, POST /search,
    /// GET /stats) and accepted on /v1; the --token works there too. Without --token, it
    /// guards the writes as well. Probes, /metrics and /openapi.json stay open.
    #[arg(long, env = "VECINDEX_READ_KEY", hide_env_values = true)]
    pub read_key: Option<String>,
    /// Longest a request may take, in seconds, before it is answered 503 (0: no limit). Work
    /// already handed to the index finishes: a timed-out write may still be applied.
    #[arg(long, default_value_t = 60.0)]
    pub request_timeout_secs: f64,
}

struct App {
    source: IndexSource,
    embedder: Arc<dyn Embedder>,
    batcher: Batcher,
    index_path: PathBuf,
    keys: Keys,
    request_timeout: Option<Duration>,
    chunk: ChunkSize,
    metrics: Metrics,
    ready: Readiness,
    #[cfg(feature = "object-store")]
    pusher: Option<Arc<push::Pusher>>,
    /// When the server started, in Unix seconds (`created` of `/v1/models`).
    started_unix: u64,
}

type Shared = Arc<App>;

impl App {
    /// Runs `work` on the blocking pool.
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&App) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || work(&app))
            .await
            .unwrap_or_else(|e| Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("worker failed: {e}"))))
    }

    /// The vectors of `texts`, from the batcher.
    async fn embed(&self, texts: Arc<Vec<String>>) -> Result<Vec<Vec<f32>>, ApiError> {
        Ok(self.batcher.embed(texts).await?)
    }

    fn authorize(&self, headers: &HeaderMap, access: Access) -> Result<(), ApiError> {
        self.keys.check(headers, access)?;
        match (access, self.source.read_only()) {
            (Access::Write, Some(reason)) => Err(ApiError(StatusCode::FORBIDDEN, reason)),
            _ => Ok(()),
        }
    }

    /// The index to serve this request from (a replica's may change between requests).
    fn index(&self) -> Arc<VectorIndex> {
        self.source.current()
    }
}

/// Resolves at the first SIGTERM or SIGINT after this call. The handlers are installed here, before
/// the server says it listens: a signal sent as soon as it does is then a graceful shutdown, not
/// the default death without the final persist.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut terminate, mut interrupt) = (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?);
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::info!("shutting down: no new connections; finishing requests in flight");
    })
}

/// Serves until SIGTERM or SIGINT, then shuts down gracefully (module docs).
pub fn serve(source: IndexSource, embedder: Arc<dyn Embedder>, options: ServeOptions) -> Result<(), String> {
    let writer = match &source {
        IndexSource::Writer(index) => Some(index.clone()),
        #[cfg(feature = "object-store")]
        IndexSource::Replica { .. } => None,
    };
    #[cfg(feature = "object-store")]
    let pusher = match (&options.push_to, &writer) {
        (None, _) => None,
        (Some(_), None) => return Err("a replica cannot push: its writer does".into()),
        (Some((url, every)), Some(index)) => Some(push::Pusher::start(index.clone(), url, *every)?),
    };
    #[cfg(not(feature = "object-store"))]
    if options.push_to.is_some() {
        return Err("--push-to needs object storage: build vecindex with --features object-store".into());
    }
    let batcher = Batcher::start(embedder.clone(), &options.batching).map_err(|e| format!("batcher thread: {e}"))?;
    let metrics = Metrics::new(batcher.stats());
    let app = Arc::new(App {
        source,
        embedder: embedder.clone(),
        batcher,
        index_path: options.index_path.clone(),
        keys: Keys { write: options.token, read: options.limits.read_key },
        request_timeout: (options.limits.request_timeout_secs > 0.0)
            .then(|| Duration::from_secs_f64(options.limits.request_timeout_secs)),
        chunk: options.chunk,
        metrics,
        ready: Readiness::default(),
        #[cfg(feature = "object-store")]
        pusher: pusher.clone(),
        started_unix: SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    });
    // The index is open; the model loads on its first call, made now, off the listener's path:
    // `/readyz` answers 503 until it has loaded.
    probes::load_model(&app).map_err(|e| format!("model loader thread: {e}"))?;
    // The index and embedding routes, under the time limit (inside `track`, so that a
    // timed-out request is counted with its 503).
    let api = Router::new()
        .route("/documents", post(routes::add_document))
        .route("/documents/{*id}", get(routes::get_document).delete(routes::delete_document))
        .route("/search", post(routes::search))
        .route("/persist", post(routes::persist))
        .route("/stats", get(routes::stats))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/models", get(openai::models))
        .route("/v1/models/{model}", get(openai::model))
        .route_layer(middleware::from_fn_with_state(app.clone(), layers::time_limit));
    // The operator's routes: never refused for time, so that a probe or a scrape of a busy
    // server still answers.
    #[allow(deprecated)] // served for the clients that still ask
    let healthz = get(probes::healthz);
    let operations = Router::new()
        .route("/healthz", healthz)
        .route("/livez", get(probes::livez))
        .route("/readyz", get(probes::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi::openapi));
    let router = api
        .merge(operations)
        .route_layer(middleware::from_fn_with_state(app.clone(), layers::track))
        .fallback(error::no_such_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .with_state(app);
    let router = layers::with_request_ids_and_logs(router);

    // The background ingest: a plain thread (it has its own pool), told to stop at shutdown.
    let stop_ingest = Arc::new(AtomicBool::new(false));
    let ingest = match (options.ingest, &writer) {
        (Some(ingest_options), Some(index)) => {
            let (index, embedder, stop) = (index.clone(), embedder.clone(), stop_ingest.clone());
            Some(std::thread::spawn(move || ingest::ingest(&index, &embedder, &ingest_options, &stop)))
        }
        (Some(_), None) => return Err("a replica cannot ingest: its writer does".into()),
        (None, _) => None,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let listener =
            tokio::net::TcpListener::bind(options.addr).await.map_err(|e| format!("bind {}: {e}", options.addr))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let shutdown = shutdown_signal().map_err(|e| format!("cannot listen for SIGTERM and SIGINT: {e}"))?;
        println!("listening on http://{local}");
        axum::serve(listener, router).with_graceful_shutdown(shutdown).await.map_err(|e| e.to_string())
    })?;

    // Requests are done. Persist now, while the background ingest may still be adding: the
    // seed's crash scenario, which here is just another persist. (A replica has nothing of its
    // own to persist.)
    if let Some(index) = &writer {
        let report = index.persist(&options.index_path).map_err(|e| format!("final persist: {e}"))?;
        println!("persisted {} chunks at seq {} into {}", report.rows, report.seq, options.index_path.display());
    }
    if let Some(ingest) = ingest {
        stop_ingest.store(true, Ordering::Relaxed);
        match ingest.join() {
            Ok(Ok(s)) => println!(
                "background ingest {}: {} added, {} replaced, {} unchanged, {} removed, {} persists",
                if s.stopped { "stopped" } else { "finished" },
                s.added,
                s.replaced,
                s.unchanged,
                s.removed,
                s.persists
            ),
            Ok(Err(e)) => return Err(format!("background ingest: {e}")),
            Err(_) => return Err("background ingest panicked".into()),
        }
    }
    // Last, the replicas get everything the writer holds, the ingest's last additions too.
    #[cfg(feature = "object-store")]
    if let (Some(pusher), Some((url, _))) = (&pusher, &options.push_to) {
        match pusher.finish()? {
            Some(report) => println!("pushed {} chunks as generation {} to {url}", report.rows, report.generation),
            None => println!("{url} already holds generation {}", pusher.status().generation),
        }
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}
