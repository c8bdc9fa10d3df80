//! The probes: `GET /livez` (the process answers), `GET /readyz` (it can serve: the index is
//! open and the model loaded), `GET /healthz` (the old name of `/livez`).
//!
//! The index is opened before the server listens; the model loads lazily, so `serve` makes its
//! first embedding call at once on a thread of its own (`load_model`), and `/readyz` answers
//! 503 until that call returns, with the loader's error if it failed. A replica is ready while
//! it serves the newest generation its last poll saw, or has been behind it for less than
//! `--replica-max-lag-secs` (so that replicas fetching a new generation together do not all
//! leave the load balancer at once). A load balancer then sends no query to a server whose
//! model is still loading, or cannot load, or that lags its writer too long.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::Shared;
use super::error::RETRY_AFTER_SECS;

/// What `/readyz` waits for.
#[derive(Default)]
pub(super) struct Readiness {
    /// Set once by `load_model`: Ok, or why the model cannot embed.
    model: OnceLock<Result<(), String>>,
}

/// Makes the embedder's first call on a thread of its own, then marks the model loaded.
pub(super) fn load_model(app: &Shared) -> std::io::Result<()> {
    let app = app.clone();
    std::thread::Builder::new().name("vecindex-model-load".into()).spawn(move || {
        let started = Instant::now();
        let loaded = app.embedder.embed(&["readiness probe"]).map(|_| ()).map_err(|e| e.to_string());
        match &loaded {
            Ok(()) => tracing::info!(model = app.embedder.name(), ms = started.elapsed().as_millis(), "model ready"),
            Err(e) => {
                tracing::error!(model = app.embedder.name(), error = %e, "the model cannot embed: /readyz stays 503")
            }
        }
        let _ = app.ready.model.set(loaded);
    })?;
    Ok(())
}

/// `/readyz`'s answer.
#[derive(Serialize, ToSchema)]
pub(super) struct ReadyReport {
    ready: bool,
    /// `open`: the server listens only once its index is open.
    index: &'static str,
    /// `loading`, `loaded`, or `failed: <why>`.
    model: String,
    /// A replica's position: ready only once it serves the newest generation it has seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    replica: Option<ReplicaReport>,
}

/// Where a replica stands (`--replica-of`).
#[derive(Serialize, ToSchema)]
pub(super) struct ReplicaReport {
    /// The generation it serves.
    generation: u64,
    /// The newest generation its last poll saw.
    newest: u64,
    /// How long it has been behind, in seconds (0 when caught up).
    behind_secs: f64,
    /// Whether it is caught up, or behind for less than `--replica-max-lag-secs` (ready).
    within_lag: bool,
    /// Why its last poll failed to catch up, if it did.
    last_error: Option<String>,
}

#[cfg(feature = "object-store")]
fn replica_report(app: &Shared) -> Option<ReplicaReport> {
    let (status, max_lag) = app.source.replica_status()?;
    Some(ReplicaReport {
        generation: status.generation,
        newest: status.newest,
        behind_secs: status.behind_for.as_secs_f64(),
        within_lag: status.caught_up() || status.behind_for <= max_lag,
        last_error: status.last_error,
    })
}

#[cfg(not(feature = "object-store"))]
fn replica_report(_: &Shared) -> Option<ReplicaReport> {
    None
}

/// The process is up and answering.
#[utoipa::path(get, path = "/livez", tag = "probes", responses((status = 200, description = "`ok`", body = String)))]
pub(super) async fn livez() -> &'static str {
    "ok\n"
}

/// `/livez` under its old name.
#[utoipa::path(get, path = "/healthz", tag = "probes", responses((status = 200, description = "`ok`", body = String)))]
#[deprecated = "use /livez"]
pub(super) async fn healthz() -> &'static str {
    livez().await
}

/// Whether the server can serve: 200 once the index is open and the model loaded, else 503.
#[utoipa::path(get, path = "/readyz", tag = "probes", responses(
    (status = 200, description = "Ready", body = ReadyReport),
    (status = 503, description = "The model is loading, or failed to load", body = ReadyReport),
))]
pub(super) async fn readyz(State(app): State<Shared>) -> Response {
    let (mut ready, model) = match app.ready.model.get() {
        None => (false, "loading".to_owned()),
        Some(Ok(())) => (true, "loaded".to_owned()),
        Some(Err(e)) => (false, format!("failed: {e}")),
    };
    let replica = replica_report(&app);
    ready &= replica.as_ref().is_none_or(|r| r.within_lag);
    let report = axum::Json(ReadyReport { ready, index: "open", model, replica });
    match ready {
        true => report.into_response(),
        false => {
            let retry = [(header::RETRY_AFTER, RETRY_AFTER_SECS.to_string())];
            (StatusCode::SERVICE_UNAVAILABLE, retry, report).into_response()
        }
    }
}
