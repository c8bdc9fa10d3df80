//! OpenAI's embeddings API, so that OpenAI clients (the `openai` Python package, LangChain's
//! `OpenAIEmbeddings`, ...) embed with this server's model given `base_url = http://HOST/v1`:
//! `POST /v1/embeddings`, `GET /v1/models` and `GET /v1/models/{model}`.
//!
//! - Answers and errors are in OpenAI's shape, errors as `{"error": {"message", "type",
//!   "param", "code"}}`, never the server's own `{"error": "...", "status"}`: a client parses one
//!   shape per API.
//! - The texts go through the batcher like every other route's: the vectors are exactly
//!   `Embedder::embed`'s for the same texts (batching changes when, not what).
//! - `model`: the embedder's name (`hashing-384`, `minilm-l6-v2`) or `MODEL_ALIAS`, for clients
//!   configured with a fixed name; any other is 404 `model_not_found`. Answers always name the
//!   embedder, so a client that used the alias sees what it got.
//! - `input`: a string or a list of 1 to `MAX_INPUTS` strings. Refused with 400, as OpenAI does:
//!   an empty string, an empty list; and, unlike OpenAI, token arrays (ids of OpenAI's
//!   tokenizer would mean nothing to this model).
//! - `dimensions`: only the model's own (or left out): these vectors are not trained to be cut.
//! - `encoding_format` `base64`: each vector's little-endian f32 bytes, standard base64, as
//!   OpenAI sends them (its Python client asks for base64 unless told otherwise).
//! - `usage`: tokens as the model counts them (`Embedder::count_tokens`: word pieces with
//!   `[CLS]` and `[SEP]`, before the window cuts a long text) for an embedder with a window; for one
//!   without (hashing, whose unit is the character) whitespace-separated words, the closer
//!   stand-in for what a client budgets as tokens.
//! - With `--token`, these routes need `Authorization: Bearer <token>` too: OpenAI clients always
//!   send their API key there.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use vecindex::embed::Embedder;

use super::Shared;
use super::error::{ApiError, RETRY_AFTER_SECS, body};
use super::layers::Access;

/// A model name accepted besides the embedder's own.
pub(super) const MODEL_ALIAS: &str = "text-embedding-vecindex";
/// Most inputs in one request, as OpenAI's.
const MAX_INPUTS: usize = 2048;
const FIELDS: [&str; 5] = ["input", "model", "encoding_format", "dimensions", "user"];

/// An error in OpenAI's shape.
#[derive(Debug)]
pub(super) struct OpenAiError {
    status: StatusCode,
    message: String,
    param: Option<&'static str>,
    code: Option<&'static str>,
}

fn invalid(message: impl Into<String>, param: Option<&'static str>) -> OpenAiError {
    OpenAiError { status: StatusCode::BAD_REQUEST, message: message.into(), param, code: None }
}

impl From<ApiError> for OpenAiError {
    fn from(ApiError(status, message): ApiError) -> Self {
        let code = (status == StatusCode::UNAUTHORIZED).then_some("invalid_api_key");
        OpenAiError { status, message, param: None, code }
    }
}

/// An error, in OpenAI's shape.
#[derive(Serialize, ToSchema)]
pub(super) struct OpenAiErrorBody {
    error: OpenAiErrorDetail,
}

#[derive(Serialize, ToSchema)]
struct OpenAiErrorDetail {
    message: String,
    /// `invalid_request_error` or `server_error`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The request field at fault, if one is.
    param: Option<&'static str>,
    /// `model_not_found`, `invalid_api_key`, or none.
    code: Option<&'static str>,
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let kind = if self.status.is_server_error() { "server_error" } else { "invalid_request_error" };
        let detail = OpenAiErrorDetail { message: self.message, kind, param: self.param, code: self.code };
        let body = OpenAiErrorBody { error: detail };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, RETRY_AFTER_SECS.into());
        }
        response
    }
}

type OpenAiResult = Result<Response, OpenAiError>;

/// `POST /v1/embeddings`'s body, as OpenAI documents it. (For the OpenAPI document: the body
/// is parsed by `parse_request`, which gives OpenAI's error for each thing wrong.)
#[derive(ToSchema)]
#[allow(dead_code)] // described, never built
pub(super) struct CreateEmbeddingRequest {
    input: EmbeddingInput,
    /// The embedder's name (see `GET /v1/models`) or `text-embedding-vecindex`.
    model: String,
    /// `float` (the default) or `base64` (little-endian f32 bytes).
    encoding_format: Option<String>,
    /// Only the model's own dimension.
    dimensions: Option<usize>,
    /// Ignored.
    user: Option<String>,
}

/// A text, or a list of 1 to 2048 texts, none empty; token arrays are refused.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // described, never built
enum EmbeddingInput {
    One(String),
    Many(Vec<String>),
}

/// What a valid `POST /v1/embeddings` asks for.
struct EmbeddingsRequest {
    texts: Vec<String>,
    base64: bool,
}

fn check_model(model: &str, embedder: &dyn Embedder) -> Result<(), OpenAiError> {
    if model == embedder.name() || model == MODEL_ALIAS {
        return Ok(());
    }
    Err(OpenAiError {
        status: StatusCode::NOT_FOUND,
        message: format!(
            "The model `{model}` does not exist: this server embeds with `{}` (also accepted as `{MODEL_ALIAS}`)",
            embedder.name()
        ),
        param: Some("model"),
        code: Some("model_not_found"),
    })
}

fn parse_request(bytes: &[u8], embedder: &dyn Embedder) -> Result<EmbeddingsRequest, OpenAiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("We could not parse the JSON body of your request: {e}"), None))?;
    let Value::Object(mut fields) = value else {
        return Err(invalid("The body of the request must be a JSON object", None));
    };
    if let Some(key) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(invalid(format!("Unrecognized request argument supplied: {key}"), None));
    }
    if let Some(user) = fields.remove("user").filter(|u| !u.is_null() && !u.is_string()) {
        return Err(invalid(format!("'user' must be a string, not {}", kind(&user)), Some("user")));
    }
    match fields.remove("model") {
        Some(Value::String(model)) => check_model(&model, embedder)?,
        None | Some(Value::Null) => return Err(invalid("you must provide a model parameter", Some("model"))),
        Some(other) => return Err(invalid(format!("'model' must be a string, not {}", kind(&other)), Some("model"))),
    }
    let texts = inputs(fields.remove("input"))?;
    let base64 = match fields.remove("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(f)) if f == "float" => false,
        Some(Value::String(f)) if f == "base64" => true,
        Some(other) => {
            let message = format!("'encoding_format' must be \"float\" or \"base64\", not {}", short(&other));
            return Err(invalid(message, Some("encoding_format")));
        }
    };
    let dim = embedder.dim();
    match fields.remove("dimensions") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64() == Some(dim as u64) => {}
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => {
            let message = format!(
                "This model's vectors have {dim} dimensions and cannot be shortened: \
                 'dimensions' must be {dim} or left out, not {n}"
            );
            return Err(invalid(message, Some("dimensions")));
        }
        Some(other) => {
            return Err(invalid(
                format!("'dimensions' must be a positive integer, not {}", short(&other)),
                Some("dimensions"),
            ));
        }
    }
    Ok(EmbeddingsRequest { texts, base64 })
}

/// The texts of `input`, or why they cannot be embedded.
fn inputs(input: Option<Value>) -> Result<Vec<String>, OpenAiError> {
    const PARAM: Option<&str> = Some("input");
    match input {
        None | Some(Value::Null) => Err(invalid("you must provide an 'input' parameter", PARAM)),
        Some(Value::String(text)) if text.is_empty() => {
            Err(invalid("'$.input' is invalid: an empty string cannot be embedded", PARAM))
        }
        Some(Value::String(text)) => Ok(vec![text]),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(invalid("'$.input' is invalid: the list is empty; send at least one string", PARAM));
            }
            if items.len() > MAX_INPUTS {
                let message = format!("'$.input' is invalid: {} inputs, at most {MAX_INPUTS} per request", items.len());
                return Err(invalid(message, PARAM));
            }
            if items.iter().any(|item| item.is_number() || item.is_array()) {
                return Err(invalid("token arrays are not supported; send strings", PARAM));
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(text) if text.is_empty() => {
                        Err(invalid(format!("'$.input[{i}]' is invalid: an empty string cannot be embedded"), PARAM))
                    }
                    Value::String(text) => Ok(text),
                    other => Err(invalid(
                        format!("'$.input[{i}]' is invalid: expected a string, not {}", kind(&other)),
                        PARAM,
                    )),
                })
                .collect()
        }
        Some(other) => Err(invalid(
            format!("'$.input' is invalid: expected a string or a list of strings, not {}", kind(&other)),
            PARAM,
        )),
    }
}

/// A JSON value's type, for messages (the value itself may be megabytes).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A JSON value for a message: itself if short, else its type.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.len() <= 40 { text } else { kind(value).to_owned() }
}

/// The vectors, in the order of the inputs.
#[derive(Serialize, ToSchema)]
pub(super) struct EmbeddingList<'a> {
    /// `list`.
    object: &'static str,
    data: Vec<EmbeddingObject>,
    /// The embedder's name.
    model: &'a str,
    usage: Usage,
}

#[derive(Serialize, ToSchema)]
struct EmbeddingObject {
    /// `embedding`.
    object: &'static str,
    index: usize,
    embedding: Embedding,
}

/// A list of floats, or with `encoding_format: base64` their little-endian f32 bytes in base64.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum Embedding {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Serialize, ToSchema)]
struct Usage {
    prompt_tokens: usize,
    total_tokens: usize,
}

/// The tokens of `text` for `usage` (module docs).
fn tokens(embedder: &dyn Embedder, text: &str) -> vecindex::Result<usize> {
    match embedder.window() {
        Some(_) => embedder.count_tokens(text),
        None => Ok(text.split_whitespace().count()),
    }
}

/// Embeds texts with the server's model, as OpenAI's embeddings API does.
#[utoipa::path(post, path = "/v1/embeddings", tag = "openai", request_body = CreateEmbeddingRequest,
    security((), ("bearer" = [])),
    responses(
        (status = 200, body = EmbeddingList),
        (status = 400, description = "Malformed, a token array, or `dimensions` not the model's", body = OpenAiErrorBody),
        (status = 401, description = "A key is set and was not given", body = OpenAiErrorBody),
        (status = 404, description = "Not this server's model (`model_not_found`)", body = OpenAiErrorBody),
        (status = 503, description = "The embedding queue is full, or the request timed out", body = OpenAiErrorBody),
    ))]
pub(super) async fn embeddings(
    State(app): State<Shared>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> OpenAiResult {
    app.authorize(&headers, Access::Embed)?;
    let bytes = body(bytes)?;
    {
        let request = parse_request(&bytes, app.embedder.as_ref())?;
        let texts = Arc::new(request.texts);
        let vectors = app.embed(texts.clone()).await?;
        let texts = Arc::unwrap_or_clone(texts);
        let base64 = request.base64;
        // Counting word pieces and writing out the JSON are CPU work: off the async workers.
        let reply = app.blocking(move |app| {
            let embedder = app.embedder.as_ref();
            let mut prompt_tokens = 0;
            for text in &texts {
                prompt_tokens += tokens(embedder, text).map_err(ApiError::from)?;
            }
            let data = vectors
                .into_iter()
                .enumerate()
                .map(|(index, vector)| {
                    let embedding = if base64 {
                        let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                        Embedding::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
                    } else {
                        Embedding::Float(vector)
                    };
                    EmbeddingObject { object: "embedding", index, embedding }
                })
                .collect();
            let usage = Usage { prompt_tokens, total_tokens: prompt_tokens };
            let list = EmbeddingList { object: "list", data, model: embedder.name(), usage };
            Ok(axum::Json(list).into_response())
        });
        Ok::<_, OpenAiError>(reply.await?)
    }
}

/// The one model this server embeds with.
#[derive(Serialize, ToSchema)]
pub(super) struct Model {
    /// The embedder's name.
    id: String,
    /// `model`.
    object: &'static str,
    /// When the server started, in Unix seconds.
    created: u64,
    owned_by: &'static str,
}

#[derive(Serialize, ToSchema)]
pub(super) struct ModelList {
    /// `list`.
    object: &'static str,
    data: Vec<Model>,
}

fn model_object(app: &super::App) -> Model {
    Model { id: app.embedder.name().to_owned(), object: "model", created: app.started_unix, owned_by: "vecindex" }
}

/// The model, in a list of one.
#[utoipa::path(get, path = "/v1/models", tag = "openai",
    security((), ("bearer" = [])),
    responses(
        (status = 200, body = ModelList),
        (status = 401, description = "A key is set and was not given", body = OpenAiErrorBody),
    ))]
pub(super) async fn models(State(app): State<Shared>, headers: HeaderMap) -> OpenAiResult {
    app.authorize(&headers, Access::Embed)?;
    let list = ModelList { object: "list", data: vec![model_object(&app)] };
    Ok(axum::Json(list).into_response())
}

/// The model by name (its own or `text-embedding-vecindex`).
#[utoipa::path(get, path = "/v1/models/{model}", tag = "openai",
    params(("model" = String, Path, description = "The embedder's name or `text-embedding-vecindex`")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, body = Model),
        (status = 401, description = "A key is set and was not given", body = OpenAiErrorBody),
        (status = 404, description = "Not this server's model (`model_not_found`)", body = OpenAiErrorBody),
    ))]
pub(super) async fn model(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> OpenAiResult {
    app.authorize(&headers, Access::Embed)?;
    check_model(&id, app.embedder.as_ref())?;
    Ok(axum::Json(model_object(&app)).into_response())
}
