//! The index routes: documents, search, persist, stats, health. Texts are embedded through the
//! batcher (`App::embed`); everything else that touches the index runs on the blocking pool.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use vecindex::{Chunk, Filter, Include, Metadata, SearchHit, SearchOptions};

use super::error::{ApiError, ApiResult, ErrorBody, bad, body, parse};
use super::layers::Access;
use super::{App, Shared};
use crate::chunker::{self, Format};
use crate::ingest::{META_EMBEDDER, META_HEADING};
use crate::output::IndexSummary;

/// A chunk given whole: embedded by the server unless it brings its vector.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewChunk {
    text: String,
    /// The chunk's vector, of the index's dimension; left out, the server embeds `text`.
    vector: Option<Vec<f32>>,
    /// Typed values: string, integer, float, bool or list of strings.
    #[serde(default)]
    #[schema(value_type = Object)]
    metadata: Metadata,
}

/// A document: `text`, which the server chunks and embeds, or its `chunks`. It replaces any
/// document with the same id, atomically.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewDocument {
    doc_id: String,
    text: Option<String>,
    chunks: Option<Vec<NewChunk>>,
    /// Given to every chunk (a chunk's own metadata wins on a shared key).
    #[serde(default)]
    #[schema(value_type = Object)]
    metadata: Metadata,
}

/// The document was added (or replaced).
#[derive(Serialize, ToSchema)]
pub(super) struct Added {
    doc_id: String,
    /// Its chunks now.
    chunks: usize,
}

/// A chunk as stored.
#[derive(Serialize, ToSchema)]
pub(super) struct StoredChunk {
    chunk_id: String,
    text: String,
    #[schema(value_type = Object)]
    metadata: Metadata,
}

/// A document's chunks.
#[derive(Serialize, ToSchema)]
pub(super) struct Document {
    doc_id: String,
    chunks: Vec<StoredChunk>,
}

/// The document was removed.
#[derive(Serialize, ToSchema)]
pub(super) struct Removed {
    doc_id: String,
    /// Chunks removed with it.
    removed: usize,
}

/// Adds or replaces a document.
#[utoipa::path(post, path = "/documents", tag = "index", request_body = NewDocument,
    security((), ("bearer" = [])),
    responses(
        (status = 200, body = Added),
        (status = 400, description = "Malformed", body = ErrorBody),
        (status = 401, description = "A write key is set and was not given", body = ErrorBody),
        (status = 413, description = "Body over --max-body-bytes", body = ErrorBody),
        (status = 422, description = "A vector of the wrong dimension or with a non-finite value", body = ErrorBody),
        (status = 503, description = "The embedding queue is full, or the request timed out", body = ErrorBody),
    ))]
pub(super) async fn add_document(
    State(app): State<Shared>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    app.authorize(&headers, Access::Write)?;
    let doc: NewDocument = parse(&body(bytes)?)?;
    {
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
            let chunks_added = chunks.len();
            app.index().add_document(&doc_id, chunks)?;
            Ok(axum::Json(Added { doc_id, chunks: chunks_added }).into_response())
        })
        .await
    }
}

/// A document's chunks. Ids may hold `/` (ingested files are named by their path).
#[utoipa::path(get, path = "/documents/{doc_id}", tag = "index",
    params(("doc_id" = String, Path, description = "The document's id (may hold `/`)")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, body = Document),
        (status = 401, description = "A read key is set and no key was given", body = ErrorBody),
        (status = 404, description = "No such document", body = ErrorBody),
    ))]
pub(super) async fn get_document(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    app.authorize(&headers, Access::Read)?;
    app.blocking(move |app| {
        let index = app.index(); // one index for the whole answer
        let chunks: Vec<StoredChunk> = index
            .chunk_ids(&id)
            .iter()
            .filter_map(|c| index.chunk(c))
            .map(|c| StoredChunk { chunk_id: c.chunk_id, text: c.text, metadata: c.metadata })
            .collect();
        if chunks.is_empty() {
            return Err(ApiError(StatusCode::NOT_FOUND, format!("no document {id:?}")));
        }
        Ok(axum::Json(Document { doc_id: id, chunks }).into_response())
    })
    .await
}

/// Removes a document and all its chunks, atomically.
#[utoipa::path(delete, path = "/documents/{doc_id}", tag = "index",
    params(("doc_id" = String, Path, description = "The document's id (may hold `/`)")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, body = Removed),
        (status = 401, description = "A write key is set and was not given", body = ErrorBody),
        (status = 404, description = "No such document", body = ErrorBody),
    ))]
pub(super) async fn delete_document(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    app.authorize(&headers, Access::Write)?;
    app.blocking(move |app| match app.index().remove_document(&id)? {
        0 => Err(ApiError(StatusCode::NOT_FOUND, format!("no document {id:?}"))),
        removed => Ok(axum::Json(Removed { doc_id: id, removed }).into_response()),
    })
    .await
}

/// One query: `text` or `vector`; many, answered from one point in time: `texts` or `vectors`
/// (the reply then holds `results`, one `{"hits": [...]}` per query).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchRequest {
    text: Option<String>,
    vector: Option<Vec<f32>>,
    texts: Option<Vec<String>>,
    vectors: Option<Vec<Vec<f32>>>,
    /// Hits per query (default 5).
    #[serde(default = "default_k")]
    #[schema(default = 5, minimum = 1)]
    k: usize,
    /// Documents whose chunks are never hits.
    #[serde(default)]
    exclude_docs: Vec<String>,
    /// A metadata filter, applied inside the index before the top k is chosen: `{"key": value}`,
    /// `{"key": {"$gte": 2}}`, `$ne`, `$in`, `$nin`, `$contains`, `$and`, `$or`, `$not`,
    /// `{"$doc_id": {"$in": [...]}}` (docs/guide.md). Parsed on its own, so that a bad filter
    /// is counted in `vecindex_filter_errors_total`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    filter: Option<Value>,
    /// What hits carry besides ids and score (default: metadata and text).
    #[serde(default)]
    include: Option<Vec<IncludeField>>,
}

#[derive(Clone, Copy, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum IncludeField {
    Metadata,
    Text,
    Vector,
}

fn default_k() -> usize {
    5
}

/// The queries of a search request, one after another, and whether it asked for a batch.
async fn request_queries(app: &App, request: &mut SearchRequest) -> Result<(Vec<f32>, bool), ApiError> {
    let dim = app.index().config().dim;
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

/// A chunk near the query.
#[derive(Serialize, ToSchema)]
pub(super) struct Hit {
    chunk_id: String,
    doc_id: String,
    /// Higher is nearer (the index's metric).
    score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Metadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vector: Option<Vec<f32>>,
}

/// The hits of one query, best first.
#[derive(Serialize, ToSchema)]
pub(super) struct Hits {
    hits: Vec<Hit>,
}

/// `{"hits"}` for one query (`text`, `vector`), `{"results"}` for a batch (`texts`, `vectors`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(super) enum SearchReply {
    One(Hits),
    Batch {
        /// One per query, in order.
        results: Vec<Hits>,
    },
}

/// The chunks nearest to a text or vector (or to each of several, from one point in time).
#[utoipa::path(post, path = "/search", tag = "index", request_body = SearchRequest,
    security((), ("bearer" = [])),
    responses(
        (status = 200, body = SearchReply),
        (status = 400, description = "Malformed, or a bad filter", body = ErrorBody),
        (status = 401, description = "A read key is set and no key was given", body = ErrorBody),
        (status = 422, description = "A vector of the wrong dimension", body = ErrorBody),
        (status = 503, description = "The embedding queue is full, or the request timed out", body = ErrorBody),
    ))]
pub(super) async fn search(
    State(app): State<Shared>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    app.authorize(&headers, Access::Read)?;
    let mut request: SearchRequest = parse(&body(bytes)?)?;
    let filter = match request.filter.take() {
        Some(filter) => Some(Filter::deserialize(filter).map_err(|e| {
            app.metrics.filter_errors.inc();
            bad(format!("bad filter: {e}"))
        })?),
        None => None,
    };
    {
        let (queries, batch) = request_queries(&app, &mut request).await?;
        app.blocking(move |app| {
            let fields = request.include.unwrap_or_else(|| vec![IncludeField::Metadata, IncludeField::Text]);
            let include = Include::none()
                .metadata(fields.contains(&IncludeField::Metadata))
                .text(fields.contains(&IncludeField::Text))
                .vector(fields.contains(&IncludeField::Vector));
            let mut options = SearchOptions::k(request.k).include(include);
            options.exclude_docs.extend(request.exclude_docs);
            options.filter = filter;
            let hit = |h: SearchHit| Hit {
                chunk_id: h.chunk_id,
                doc_id: h.doc_id,
                score: h.score,
                metadata: include.metadata.then_some(h.metadata),
                text: h.text,
                vector: h.vector,
            };
            let mut results: Vec<Hits> = app
                .index()
                .search_batch(&queries, &options)?
                .into_iter()
                .map(|hits| Hits { hits: hits.into_iter().map(hit).collect() })
                .collect();
            let reply = match batch {
                true => SearchReply::Batch { results },
                false => SearchReply::One(results.pop().unwrap_or(Hits { hits: Vec::new() })),
            };
            Ok(axum::Json(reply).into_response())
        })
        .await
    }
}

/// What a persist wrote.
#[derive(Serialize, ToSchema)]
pub(super) struct Persisted {
    /// The snapshot holds the operations below this sequence number.
    seq: u64,
    /// The manifest's generation.
    generation: u64,
    /// Live chunks in the snapshot.
    rows: usize,
    segments: usize,
    files_written: usize,
    bytes_written: u64,
    /// Bytes of the whole snapshot.
    bytes_total: u64,
    ms: f64,
}

/// Writes a snapshot of the index now (writers go on meanwhile).
#[utoipa::path(post, path = "/persist", tag = "index",
    security((), ("bearer" = [])),
    responses(
        (status = 200, body = Persisted),
        (status = 401, description = "A write key is set and was not given", body = ErrorBody),
        (status = 500, description = "The persist failed; the previous snapshot stays", body = ErrorBody),
    ))]
pub(super) async fn persist(State(app): State<Shared>, headers: HeaderMap) -> ApiResult {
    app.authorize(&headers, Access::Write)?;
    app.blocking(move |app| {
        let r = app.index().persist(&app.index_path)?;
        Ok(axum::Json(Persisted {
            seq: r.seq,
            generation: r.generation,
            rows: r.rows,
            segments: r.segments,
            files_written: r.files_written,
            bytes_written: r.bytes_written,
            bytes_total: r.bytes_total,
            ms: r.duration.as_secs_f64() * 1e3,
        })
        .into_response())
    })
    .await
}

/// What the index holds: counts and every head and segment.
#[utoipa::path(get, path = "/stats", tag = "index",
    security((), ("bearer" = [])),
    responses(
        (status = 200, body = IndexSummary),
        (status = 401, description = "A read key is set and no key was given", body = ErrorBody),
    ))]
pub(super) async fn stats(State(app): State<Shared>, headers: HeaderMap) -> ApiResult {
    app.authorize(&headers, Access::Read)?;
    app.blocking(|app| Ok(axum::Json(IndexSummary::new(&app.index().stats())).into_response())).await
}
