//! What wraps every route: a request id, one log line per request, a time limit, the request
//! metrics, and the bearer keys.
//!
//! - `x-request-id`: kept when the client sends one, made (a UUID) when not; it is echoed in the
//!   answer and named in the request's log line (tower-http's request-id and trace layers).
//! - The time limit (`--request-timeout-secs`) answers 503 with `Retry-After` when a request
//!   to the index or `/v1` takes longer (probes, metrics and the OpenAPI document have none). Work already handed to the index's blocking pool still finishes: a timed-out
//!   write may have been applied, and retrying it is safe (a document is replaced whole).
//! - Keys: `--token` guards writes, `--read-key` reads; both are compared in constant time
//!   (`subtle`), so the time an answer takes says nothing of how much of a key was right.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::{Choice, ConstantTimeEq};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use super::Shared;
use super::error::ApiError;
use super::metrics::RequestLabels;
use super::openai::OpenAiError;

/// What a route does, for the keys it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Access {
    /// Reads the index (`GET /documents`, `POST /search`, `GET /stats`): the read key, or the
    /// write key, when a read key is set; open otherwise.
    Read,
    /// Changes the index (`POST /documents`, `DELETE`, `POST /persist`): the write key when one
    /// is set, else the read key when that is set.
    Write,
    /// The OpenAI routes: either key whenever one is set (OpenAI clients always send one).
    Embed,
}

/// The bearer keys the server was started with.
pub(super) struct Keys {
    pub(super) write: Option<String>,
    pub(super) read: Option<String>,
}

impl Keys {
    /// Ok if `headers` carry a key that `access` accepts; 401 otherwise.
    pub(super) fn check(&self, headers: &HeaderMap, access: Access) -> Result<(), ApiError> {
        let (write, read) = (self.write.as_deref(), self.read.as_deref());
        let accepted: [Option<&str>; 2] = match access {
            Access::Read => match read {
                Some(_) => [write, read],
                None => return Ok(()),
            },
            Access::Write => [write.or(read), None],
            Access::Embed => [write, read],
        };
        if accepted.iter().all(Option::is_none) {
            return Ok(());
        }
        let given =
            headers.get(header::AUTHORIZATION).and_then(|v| v.as_bytes().strip_prefix(b"Bearer ")).unwrap_or_default();
        // Both comparisons run, whatever the first found.
        let matched = accepted.iter().fold(Choice::from(0), |any, key| any | key_matches(given, *key));
        match bool::from(matched) {
            true => Ok(()),
            false => Err(ApiError(StatusCode::UNAUTHORIZED, "missing or wrong bearer token".into())),
        }
    }
}

/// Whether `given` is `key`, in time that depends on their lengths only.
fn key_matches(given: &[u8], key: Option<&str>) -> Choice {
    match key {
        Some(key) => given.ct_eq(key.as_bytes()),
        None => Choice::from(0),
    }
}

/// Records each request's method, route, status and duration (on the routes; the fallbacks
/// record their own through `record_unmatched`).
pub(super) async fn track(State(app): State<Shared>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    app.metrics.observe_request(RequestLabels { method, route, status }, started.elapsed());
    response
}

/// Records a request no route took (404, or 405 on a path with no such method).
pub(super) fn record_unmatched(app: &Shared, method: &axum::http::Method, status: StatusCode) {
    let labels = RequestLabels { method: method.to_string(), route: "unmatched".into(), status: status.as_u16() };
    app.metrics.observe_request(labels, Duration::ZERO);
}

/// 503 when a request takes longer than the server's limit (module docs).
pub(super) async fn time_limit(State(app): State<Shared>, request: Request, next: Next) -> Response {
    let Some(limit) = app.request_timeout else { return next.run(request).await };
    let openai = request.uri().path().starts_with("/v1/");
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let message = format!(
                "the request took longer than the server's limit of {:.3} s (--request-timeout-secs); \
                 a write may still have been applied, and retrying it is safe",
                limit.as_secs_f64()
            );
            let error = ApiError(StatusCode::SERVICE_UNAVAILABLE, message);
            if openai { OpenAiError::from(error).into_response() } else { error.into_response() }
        }
    }
}

/// Adds the request-id and per-request log layers to `router`.
pub(super) fn with_request_ids_and_logs(router: axum::Router) -> axum::Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            let (method, path) = (request.method(), request.uri().path());
            tracing::info_span!(target: "vecindex::request", "request", id, %method, path)
        })
        .on_request(())
        // Every answer gets one line, at INFO, with its status; a 5xx is not an ERROR here (a
        // 503 is load shedding), the code that failed logs its own error.
        .on_failure(())
        .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(tower_http::LatencyUnit::Micros));
    // The last layer added runs first: the id is set, then the span made with it, then the
    // answer gets the id.
    router
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(trace)
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, format!("Bearer {key}").parse().unwrap());
        headers
    }

    #[test]
    fn each_route_kind_takes_the_keys_it_should() {
        use Access::*;
        let none = HeaderMap::new();
        let both = Keys { write: Some("w".into()), read: Some("r".into()) };
        let write_only = Keys { write: Some("w".into()), read: None };
        let read_only = Keys { write: None, read: Some("r".into()) };
        let open = Keys { write: None, read: None };
        let ok = |keys: &Keys, headers: &HeaderMap, access| keys.check(headers, access).is_ok();
        for access in [Read, Write, Embed] {
            assert!(ok(&open, &none, access));
            assert!(!ok(&both, &none, access), "{access:?}");
            assert!(ok(&both, &bearer("w"), access), "the write key is good for everything: {access:?}");
            assert!(!ok(&both, &bearer("x"), access), "{access:?}");
            assert!(ok(&read_only, &bearer("r"), access), "{access:?}");
        }
        assert!(ok(&both, &bearer("r"), Read) && ok(&both, &bearer("r"), Embed));
        assert!(!ok(&both, &bearer("r"), Write), "the read key does not write");
        assert!(ok(&write_only, &none, Read), "reads stay open without a read key");
        assert!(!ok(&write_only, &none, Embed) && !ok(&write_only, &none, Write));
        assert!(!ok(&read_only, &none, Write), "a read key alone guards writes too");
        assert!(!ok(&both, &bearer("w "), Write) && !ok(&both, &bearer(""), Read), "no prefix or empty match");
    }
}
