//! `vecindex serve`: the index over HTTP (axum on tokio), with an optional background ingest.
//!
//! | route | body | answer |
//! | --- | --- | --- |
//! | `POST /documents` | `{"doc_id", "text", "metadata"?}` or `{"doc_id", "chunks": [{"text", "vector"?, "metadata"?}]}` | the document replaced atomically |
//! | `GET /documents/{id}` | | its chunks (ids may hold `/`: ingested files are named by path) |
//! | `DELETE /documents/{id}` | | 404 if it did not exist |
//! | `POST /search` | `{"text" / "vector" / "texts" / "vectors", "k"?, "exclude_docs"?, "filter"?, "include"?}` | hits, best first (per query for a batch) |
//! | `POST /persist` | | what was written |
//! | `GET /stats`, `GET /healthz`, `GET /metrics` | | JSON, `ok`, Prometheus text |
//!
//! Every index and embedder call runs on tokio's blocking pool (`spawn_blocking`), never on the
//! async workers. Bodies over the limit get 413, bad input 400 (422 for a wrong vector), a
//! missing or wrong bearer token on a mutating route 401; every error body is JSON
//! `{"error": ...}`. On SIGTERM or SIGINT the server stops accepting, lets requests in flight
//! finish, persists while the background ingest is still adding, then stops the ingest (which
//! persists what it added last) and exits 0.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use vecindex::embed::Embedder;
use vecindex::{Chunk, Filter, Include, Metadata, SearchHit, SearchOptions, VectorIndex};

use crate::chunker::{self, ChunkSize, Format};
use crate::ingest::{self, IngestOptions, META_EMBEDDER, META_HEADING};

/// What `serve` needs.
pub struct ServeOptions {
    pub addr: SocketAddr,
    pub index_path: PathBuf,
    /// Required as `Authorization: Bearer <token>` on mutating routes, if set.
    pub token: Option<String>,
    pub max_body_bytes: usize,
    pub chunk: ChunkSize,
    /// Ingest this directory in the background while serving.
    pub ingest: Option<IngestOptions>,
}

/// An error answer: a status and a JSON body.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1, "status": self.0.as_u16() }))).into_response()
    }
}

impl From<vecindex::Error> for ApiError {
    fn from(e: vecindex::Error) -> Self {
        use vecindex::Error::*;
        let status = match &e {
            DimensionMismatch { .. } | NonFiniteValue { .. } | ZeroVector | VectorTooLong { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            EmptyId { .. } | ZeroK | DuplicateChunkId { .. } | InvalidConfig { .. } | EmptyQuery { .. } => {
                StatusCode::BAD_REQUEST
            }
            ChunkInOtherDocument { .. } => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

type ApiResult = Result<Response, ApiError>;

/// 404 for a path no route serves, as JSON like every other error.
async fn no_such_route(uri: axum::http::Uri) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no route {}", uri.path()))
}

/// 405 for a method a route does not take, as JSON like every other error.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError(StatusCode::METHOD_NOT_ALLOWED, format!("{} does not take {method}", uri.path()))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

/// Latency buckets of the histograms, in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// A Prometheus histogram: counts per bucket (cumulated when printed), a sum and a count.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        if let Some(at) = BUCKETS.iter().position(|&b| secs <= b) {
            // Relaxed: independent counters, read for reporting only.
            self.buckets[at].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            out.push_str(&format!("{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}\n"));
        }
        let count = self.count.load(Ordering::Relaxed);
        out.push_str(&format!("{name}_bucket{{{labels}le=\"+Inf\"}} {count}\n"));
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let plain = labels.trim_end_matches(',');
        out.push_str(&format!("{name}_sum{{{plain}}} {sum}\n{name}_count{{{plain}}} {count}\n"));
    }
}

/// Route names as they appear in the metrics.
const ROUTES: [&str; 7] = ["add_document", "get_document", "delete_document", "search", "persist", "stats", "healthz"];

#[derive(Default)]
struct Metrics {
    latency: [Histogram; ROUTES.len()],
    errors: [AtomicU64; ROUTES.len()],
    persist: Histogram,
}

struct App {
    index: Arc<VectorIndex>,
    embedder: Arc<dyn Embedder>,
    index_path: PathBuf,
    token: Option<String>,
    chunk: ChunkSize,
    metrics: Metrics,
}

type Shared = Arc<App>;

impl App {
    /// Runs `work` on the blocking pool, timing it under `route`.
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        route: usize,
        work: impl FnOnce(&App) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let started = Instant::now();
        let app = self.clone();
        let result = tokio::task::spawn_blocking(move || work(&app))
            .await
            .unwrap_or_else(|e| Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("worker failed: {e}"))));
        self.metrics.latency[route].observe(started.elapsed());
        if result.is_err() {
            self.metrics.errors[route].fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(token) = &self.token else { return Ok(()) };
        let given =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(given) if given == token => Ok(()),
            _ => Err(ApiError(StatusCode::UNAUTHORIZED, "missing or wrong bearer token".into())),
        }
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ApiError> {
        self.embedder.embed(texts).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }
}

/// The body, or 413 / 400 as JSON.
fn body(bytes: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    bytes.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => {
            ApiError(StatusCode::PAYLOAD_TOO_LARGE, format!("body too large: {e}"))
        }
        other => bad(other.to_string()),
    })
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| bad(format!("malformed JSON: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewChunk {
    text: String,
    vector: Option<Vec<f32>>,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDocument {
    doc_id: String,
    text: Option<String>,
    chunks: Option<Vec<NewChunk>>,
    #[serde(default)]
    metadata: Metadata,
}

async fn add_document(
    State(app): State<Shared>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    app.authorize(&headers)?;
    let doc: NewDocument = parse(&body(bytes)?)?;
    app.blocking(0, move |app| {
        let pieces: Vec<NewChunk> = match (doc.text, doc.chunks) {
            (Some(text), None) => chunker::chunk(&text, Format::Markdown, app.chunk)
                .into_iter()
                .map(|p| NewChunk {
                    text: p.text,
                    vector: None,
                    metadata: [(META_HEADING.into(), p.heading.into())].into(),
                })
                .collect(),
            (None, Some(chunks)) => chunks,
            _ => return Err(bad("give either \"text\" or \"chunks\"")),
        };
        let to_embed: Vec<&str> = pieces.iter().filter(|c| c.vector.is_none()).map(|c| c.text.as_str()).collect();
        let mut embedded = app.embed(&to_embed)?.into_iter();
        let mut chunks = Vec::with_capacity(pieces.len());
        for (i, piece) in pieces.into_iter().enumerate() {
            let vector = match piece.vector {
                Some(v) => v,
                None => embedded.next().ok_or_else(|| bad("embedder returned too few vectors"))?,
            };
            let mut metadata = doc.metadata.clone();
            metadata.extend(piece.metadata);
            metadata.insert(META_EMBEDDER.into(), app.embedder.name().into());
            chunks.push(Chunk {
                chunk_id: format!("{}#{i}", doc.doc_id),
                doc_id: doc.doc_id.clone(),
                vector,
                text: piece.text,
                metadata,
            });
        }
        let n = chunks.len();
        app.index.add_document(&doc.doc_id, chunks)?;
        Ok(axum::Json(json!({ "doc_id": doc.doc_id, "chunks": n })).into_response())
    })
    .await
}

async fn get_document(State(app): State<Shared>, Path(id): Path<String>) -> ApiResult {
    app.blocking(1, move |app| {
        let chunks: Vec<Value> = app
            .index
            .chunk_ids(&id)
            .iter()
            .filter_map(|c| app.index.chunk(c))
            .map(|c| json!({ "chunk_id": c.chunk_id, "text": c.text, "metadata": c.metadata }))
            .collect();
        if chunks.is_empty() {
            return Err(ApiError(StatusCode::NOT_FOUND, format!("no document {id:?}")));
        }
        Ok(axum::Json(json!({ "doc_id": id, "chunks": chunks })).into_response())
    })
    .await
}

async fn delete_document(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    app.authorize(&headers)?;
    app.blocking(2, move |app| match app.index.remove_document(&id)? {
        0 => Err(ApiError(StatusCode::NOT_FOUND, format!("no document {id:?}"))),
        n => Ok(axum::Json(json!({ "doc_id": id, "removed": n })).into_response()),
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchRequest {
    /// One query: `text` or `vector`; many, answered from one point in time: `texts` or
    /// `vectors` (the reply then holds `results`, one `{"hits": [...]}` per query).
    text: Option<String>,
    vector: Option<Vec<f32>>,
    texts: Option<Vec<String>>,
    vectors: Option<Vec<Vec<f32>>>,
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default)]
    exclude_docs: Vec<String>,
    #[serde(default)]
    filter: Option<Filter>,
    /// What hits carry besides ids and score (default: metadata and text).
    #[serde(default)]
    include: Option<Vec<IncludeField>>,
}

#[derive(Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum IncludeField {
    Metadata,
    Text,
    Vector,
}

fn default_k() -> usize {
    5
}

/// The queries of a search request, one after another, and whether it asked for a batch.
fn request_queries(app: &App, request: &mut SearchRequest) -> Result<(Vec<f32>, bool), ApiError> {
    let dim = app.index.config().dim;
    let checked = |vectors: Vec<Vec<f32>>| {
        if let Some(v) = vectors.iter().find(|v| v.len() != dim) {
            return Err(ApiError::from(vecindex::Error::DimensionMismatch { expected: dim, got: v.len() }));
        }
        Ok(vectors.concat())
    };
    let embedded = |texts: &[String]| {
        for text in texts {
            vecindex::embed::check_query(text).map_err(|e| bad(e.to_string()))?;
        }
        app.embed(&texts.iter().map(String::as_str).collect::<Vec<_>>())
    };
    match (request.text.take(), request.vector.take(), request.texts.take(), request.vectors.take()) {
        (Some(text), None, None, None) => Ok((embedded(&[text])?.concat(), false)),
        (None, Some(vector), None, None) => Ok((checked(vec![vector])?, false)),
        (None, None, Some(texts), None) => Ok((embedded(&texts)?.concat(), true)),
        (None, None, None, Some(vectors)) => Ok((checked(vectors)?, true)),
        _ => Err(bad("give one of \"text\", \"vector\", \"texts\" or \"vectors\"")),
    }
}

async fn search(State(app): State<Shared>, bytes: Result<Bytes, BytesRejection>) -> ApiResult {
    let mut request: SearchRequest = parse(&body(bytes)?)?;
    app.blocking(3, move |app| {
        let (queries, batch) = request_queries(app, &mut request)?;
        let fields = request.include.unwrap_or_else(|| vec![IncludeField::Metadata, IncludeField::Text]);
        let include = Include::none()
            .metadata(fields.contains(&IncludeField::Metadata))
            .text(fields.contains(&IncludeField::Text))
            .vector(fields.contains(&IncludeField::Vector));
        let mut options = SearchOptions::k(request.k).include(include);
        options.exclude_docs.extend(request.exclude_docs);
        options.filter = request.filter;
        let hit = |h: SearchHit| {
            let mut hit = json!({ "chunk_id": h.chunk_id, "doc_id": h.doc_id, "score": h.score });
            if include.metadata {
                hit["metadata"] = json!(h.metadata);
            }
            if let Some(text) = h.text {
                hit["text"] = json!(text);
            }
            if let Some(vector) = h.vector {
                hit["vector"] = json!(vector);
            }
            hit
        };
        let mut results: Vec<Value> = app
            .index
            .search_batch(&queries, &options)?
            .into_iter()
            .map(|hits| json!({ "hits": hits.into_iter().map(hit).collect::<Vec<_>>() }))
            .collect();
        let reply = if batch { json!({ "results": results }) } else { results.pop().unwrap_or(json!({ "hits": [] })) };
        Ok(axum::Json(reply).into_response())
    })
    .await
}

async fn persist(State(app): State<Shared>, headers: HeaderMap) -> ApiResult {
    app.authorize(&headers)?;
    app.blocking(4, move |app| {
        let r = app.index.persist(&app.index_path)?;
        app.metrics.persist.observe(r.duration);
        Ok(axum::Json(json!({
            "seq": r.seq, "generation": r.generation, "rows": r.rows, "segments": r.segments,
            "files_written": r.files_written, "bytes_written": r.bytes_written, "bytes_total": r.bytes_total,
            "ms": r.duration.as_secs_f64() * 1e3,
        }))
        .into_response())
    })
    .await
}

fn stats_json(index: &VectorIndex) -> Value {
    let s = index.stats();
    let segments: Vec<Value> = s
        .segments
        .iter()
        .map(|g| json!({ "id": g.id, "kind": g.label(), "rows": g.rows, "live_rows": g.live_rows, "bytes": g.bytes, "mapped": g.mapped }))
        .collect();
    json!({
        "dim": s.dim, "metric": format!("{:?}", s.metric), "chunks": s.chunks, "documents": s.documents,
        "next_seq": s.next_seq, "generation": s.generation, "vocabulary_terms": s.vocabulary_terms, "segments": segments,
    })
}

async fn stats(State(app): State<Shared>) -> ApiResult {
    app.blocking(5, |app| Ok(axum::Json(stats_json(&app.index)).into_response())).await
}

async fn healthz(State(app): State<Shared>) -> ApiResult {
    app.metrics.latency[6].observe(Duration::ZERO);
    Ok("ok\n".into_response())
}

async fn metrics(State(app): State<Shared>) -> ApiResult {
    let stats = app.blocking(5, |app| Ok(app.index.stats())).await?;
    let mut out = String::new();
    out.push_str("# TYPE vecindex_request_seconds histogram\n");
    for (route, histogram) in ROUTES.iter().zip(&app.metrics.latency) {
        histogram.render(&mut out, "vecindex_request_seconds", &format!("route=\"{route}\","));
    }
    out.push_str("# TYPE vecindex_request_errors_total counter\n");
    for (route, errors) in ROUTES.iter().zip(&app.metrics.errors) {
        out.push_str(&format!(
            "vecindex_request_errors_total{{route=\"{route}\"}} {}\n",
            errors.load(Ordering::Relaxed)
        ));
    }
    out.push_str("# TYPE vecindex_persist_seconds histogram\n");
    app.metrics.persist.render(&mut out, "vecindex_persist_seconds", "");
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for g in &stats.segments {
        *kinds.entry(g.label()).or_default() += 1;
    }
    out.push_str("# TYPE vecindex_segments gauge\n");
    for (kind, n) in kinds {
        out.push_str(&format!("vecindex_segments{{kind=\"{kind}\"}} {n}\n"));
    }
    out.push_str(&format!(
        "# TYPE vecindex_chunks gauge\nvecindex_chunks {}\n# TYPE vecindex_documents gauge\nvecindex_documents {}\n",
        stats.chunks, stats.documents
    ));
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: no new connections; finishing requests in flight");
}

/// Serves until SIGTERM or SIGINT, then shuts down gracefully (module docs).
pub fn serve(index: Arc<VectorIndex>, embedder: Arc<dyn Embedder>, options: ServeOptions) -> Result<(), String> {
    let app = Arc::new(App {
        index: index.clone(),
        embedder: embedder.clone(),
        index_path: options.index_path.clone(),
        token: options.token,
        chunk: options.chunk,
        metrics: Metrics::default(),
    });
    let router = Router::new()
        .route("/documents", post(add_document))
        .route("/documents/{*id}", get(get_document).delete(delete_document))
        .route("/search", post(search))
        .route("/persist", post(persist))
        .route("/stats", get(stats))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(no_such_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .with_state(app);

    // The background ingest: a plain thread (it has its own pool), told to stop at shutdown.
    let stop_ingest = Arc::new(AtomicBool::new(false));
    let ingest = options.ingest.map(|ingest_options| {
        let (index, embedder, stop) = (index.clone(), embedder.clone(), stop_ingest.clone());
        std::thread::spawn(move || ingest::ingest(&index, &embedder, &ingest_options, &stop))
    });

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let listener =
            tokio::net::TcpListener::bind(options.addr).await.map_err(|e| format!("bind {}: {e}", options.addr))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        println!("listening on http://{local}");
        axum::serve(listener, router).with_graceful_shutdown(shutdown_signal()).await.map_err(|e| e.to_string())
    })?;

    // Requests are done. Persist now, while the background ingest may still be adding: the
    // seed's crash scenario, which here is just another persist.
    let report = index.persist(&options.index_path).map_err(|e| format!("final persist: {e}"))?;
    println!("persisted {} chunks at seq {} into {}", report.rows, report.seq, options.index_path.display());
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
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}
