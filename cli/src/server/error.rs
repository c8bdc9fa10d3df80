//! The error answer of the server's own routes: a status and `{"error": "...", "status": N}`.
//! (The OpenAI routes answer in OpenAI's shape instead: `openai.rs`.)
//!
//! Every 503 carries `Retry-After`: the server answers 503 only when it is overloaded (the
//! embedding queue is full) or stopping, and both pass.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Shared;
use super::batcher::EmbedError;
use super::layers::record_unmatched;
use super::openai::OpenAiError;

/// Seconds a client is told to wait after a 503.
pub(super) const RETRY_AFTER_SECS: u64 = 1;

/// An error answer: a status and a message.
#[derive(Debug)]
pub(super) struct ApiError(pub(super) StatusCode, pub(super) String);

/// The body of every error of the server's own routes.
#[derive(Serialize, ToSchema)]
pub(super) struct ErrorBody {
    /// What went wrong, for a person.
    error: String,
    /// The HTTP status again.
    status: u16,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(ErrorBody { error: self.1, status: self.0.as_u16() });
        let mut response = (self.0, body).into_response();
        if self.0 == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, RETRY_AFTER_SECS.into());
        }
        response
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

impl From<EmbedError> for ApiError {
    fn from(e: EmbedError) -> Self {
        match e {
            EmbedError::Full { queued, limit } => ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("overloaded: the embedding queue is full ({queued} of {limit} texts waiting); retry shortly"),
            ),
            EmbedError::Failed(reason) => {
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("embedding failed: {reason}"))
            }
            EmbedError::Stopped => ApiError(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping".into()),
        }
    }
}

pub(super) type ApiResult = Result<Response, ApiError>;

pub(super) fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

/// 404 for a path no route serves, as JSON like every other error (in OpenAI's shape and words
/// under `/v1/`, where OpenAI's clients read it).
pub(super) async fn no_such_route(State(app): State<Shared>, method: Method, uri: Uri) -> Response {
    record_unmatched(&app, &method, StatusCode::NOT_FOUND);
    match uri.path().starts_with("/v1/") {
        true => {
            let error = ApiError(StatusCode::NOT_FOUND, format!("Invalid URL ({method} {})", uri.path()));
            OpenAiError::from(error).into_response()
        }
        false => ApiError(StatusCode::NOT_FOUND, format!("no route {}", uri.path())).into_response(),
    }
}

/// 405 for a method a route does not take, as JSON like every other error (OpenAI's shape under
/// `/v1/`).
pub(super) async fn method_not_allowed(State(app): State<Shared>, method: Method, uri: Uri) -> Response {
    record_unmatched(&app, &method, StatusCode::METHOD_NOT_ALLOWED);
    let error = ApiError(StatusCode::METHOD_NOT_ALLOWED, format!("{} does not take {method}", uri.path()));
    match uri.path().starts_with("/v1/") {
        true => OpenAiError::from(error).into_response(),
        false => error.into_response(),
    }
}

/// The body, or 413 / 400.
pub(super) fn body(bytes: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    bytes.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => {
            ApiError(StatusCode::PAYLOAD_TOO_LARGE, format!("body too large: {e}"))
        }
        other => bad(other.to_string()),
    })
}

pub(super) fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| bad(format!("malformed JSON: {e}")))
}
