//! The index routes: documents, search, persist, stats, health. Texts are embedded through the
//! batcher (`App::embed`); everything else that touches the index runs on the blocking pool.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use vecindex::{Chunk, Filter, Include, Metadata, SearchHit, SearchOptions, VectorIndex};

use super::error::{ApiError, ApiResult, bad, body, parse};
use super::metrics::Route;
use super::{App, Shared};
use crate::chunker::{self, Format};
use crate::ingest::{META_EMBEDDER, META_HEADING};

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

pub(super) async fn add_document(
    State(app): State<Shared>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    app.authorize(&headers)?;
    let doc: NewDocument = parse(&body(bytes)?)?;
    app.timed(Route::AddDocument, async {
        let mut pieces: Vec<NewChunk> = match (doc.text, doc.chunks) {
            (Some(text), None) => {
                // Cut to the embedder's window, as `vecindex ingest` does; what is embedded is
                // the heading path and the text, what is stored the text (the heading path is
                // its metadata).
                let pieces = app
                    .blocking(move |app| {
                        chunker::chunk_for(&text, Format::Markdown, app.chunk, app.embedder.as_ref())
                            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))
                    })
                    .await?;
                let inputs = Arc::new(pieces.iter().map(chunker::Piece::embedded).collect::<Vec<_>>());
                let vectors = app.embed(inputs).await?;
                pieces
                    .into_iter()
                    .zip(vectors)
                    .map(|(p, vector)| NewChunk {
                        text: p.text,
                        vector: Some(vector),
                        metadata: [(META_HEADING.into(), p.heading.into())].into(),
                    })
                    .collect()
            }
            (None, Some(chunks)) => chunks,
            _ => return Err(bad("give either \"text\" or \"chunks\"")),
        };
        // The texts without a vector go to the batcher and come back with one.
        let texts: Vec<String> =
            pieces.iter_mut().filter(|p| p.vector.is_none()).map(|p| std::mem::take(&mut p.text)).collect();
        let texts = Arc::new(texts);
        let vectors = app.embed(texts.clone()).await?;
        let unembedded = pieces.iter_mut().filter(|p| p.vector.is_none());
        for ((piece, text), vector) in unembedded.zip(Arc::unwrap_or_clone(texts)).zip(vectors) {
            (piece.text, piece.vector) = (text, Some(vector));
        }
        let (doc_id, doc_metadata) = (doc.doc_id, doc.metadata);
        app.blocking(move |app| {
            let mut chunks = Vec::with_capacity(pieces.len());
            for (i, piece) in pieces.into_iter().enumerate() {
                let mut metadata = doc_metadata.clone();
                metadata.extend(piece.metadata);
                metadata.insert(META_EMBEDDER.into(), app.embedder.name().into());
                chunks.push(Chunk {
                    chunk_id: format!("{doc_id}#{i}"),
                    doc_id: doc_id.clone(),
                    vector: piece.vector.unwrap_or_default(),
                    text: piece.text,
                    metadata,
                });
            }
            let n = chunks.len();
            app.index.add_document(&doc_id, chunks)?;
            Ok(axum::Json(json!({ "doc_id": doc_id, "chunks": n })).into_response())
        })
        .await
    })
    .await
}

pub(super) async fn get_document(State(app): State<Shared>, Path(id): Path<String>) -> ApiResult {
    let work = app.blocking(move |app| {
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
    });
    app.timed(Route::GetDocument, work).await
}

pub(super) async fn delete_document(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    app.authorize(&headers)?;
    let work = app.blocking(move |app| match app.index.remove_document(&id)? {
        0 => Err(ApiError(StatusCode::NOT_FOUND, format!("no document {id:?}"))),
        n => Ok(axum::Json(json!({ "doc_id": id, "removed": n })).into_response()),
    });
    app.timed(Route::DeleteDocument, work).await
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
async fn request_queries(app: &App, request: &mut SearchRequest) -> Result<(Vec<f32>, bool), ApiError> {
    let dim = app.index.config().dim;
    let checked = |vectors: Vec<Vec<f32>>| {
        if let Some(v) = vectors.iter().find(|v| v.len() != dim) {
            return Err(ApiError::from(vecindex::Error::DimensionMismatch { expected: dim, got: v.len() }));
        }
        Ok(vectors.concat())
    };
    let embedded = async |texts: Vec<String>| {
        for text in &texts {
            vecindex::embed::check_query(text).map_err(|e| bad(e.to_string()))?;
        }
        Ok::<_, ApiError>(app.embed(Arc::new(texts)).await?.concat())
    };
    match (request.text.take(), request.vector.take(), request.texts.take(), request.vectors.take()) {
        (Some(text), None, None, None) => Ok((embedded(vec![text]).await?, false)),
        (None, Some(vector), None, None) => Ok((checked(vec![vector])?, false)),
        (None, None, Some(texts), None) => Ok((embedded(texts).await?, true)),
        (None, None, None, Some(vectors)) => Ok((checked(vectors)?, true)),
        _ => Err(bad("give one of \"text\", \"vector\", \"texts\" or \"vectors\"")),
    }
}

pub(super) async fn search(State(app): State<Shared>, bytes: Result<Bytes, BytesRejection>) -> ApiResult {
    let mut request: SearchRequest = parse(&body(bytes)?)?;
    app.timed(Route::Search, async {
        let (queries, batch) = request_queries(&app, &mut request).await?;
        app.blocking(move |app| {
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
            let reply =
                if batch { json!({ "results": results }) } else { results.pop().unwrap_or(json!({ "hits": [] })) };
            Ok(axum::Json(reply).into_response())
        })
        .await
    })
    .await
}

pub(super) async fn persist(State(app): State<Shared>, headers: HeaderMap) -> ApiResult {
    app.authorize(&headers)?;
    let work = app.blocking(move |app| {
        let r = app.index.persist(&app.index_path)?;
        app.metrics.persist.observe_duration(r.duration);
        Ok(axum::Json(json!({
            "seq": r.seq, "generation": r.generation, "rows": r.rows, "segments": r.segments,
            "files_written": r.files_written, "bytes_written": r.bytes_written, "bytes_total": r.bytes_total,
            "ms": r.duration.as_secs_f64() * 1e3,
        }))
        .into_response())
    });
    app.timed(Route::Persist, work).await
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

pub(super) async fn stats(State(app): State<Shared>) -> ApiResult {
    app.timed(Route::Stats, app.blocking(|app| Ok(axum::Json(stats_json(&app.index)).into_response()))).await
}

pub(super) async fn healthz(State(app): State<Shared>) -> ApiResult {
    app.metrics.observe(Route::Healthz, Duration::ZERO, false);
    Ok("ok\n".into_response())
}
