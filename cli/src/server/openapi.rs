//! `GET /openapi.json`: the OpenAPI 3.1 document of every route, made from the handlers'
//! annotations and the types they read and write (utoipa), so that it changes with them.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{metrics, openai, probes, routes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vecindex",
        description = "A concurrent vector index over HTTP: documents, search, persist, and OpenAI's \
                       embeddings API. Keys, when the server has them, go in `Authorization: Bearer`: \
                       `--token` for writes, `--read-key` for reads (the token reads too), either for `/v1`."
    ),
    paths(
        routes::add_document,
        routes::get_document,
        routes::delete_document,
        routes::search,
        routes::persist,
        routes::stats,
        probes::livez,
        probes::healthz,
        probes::readyz,
        metrics::metrics,
        openapi,
        openai::embeddings,
        openai::models,
        openai::model,
    ),
    modifiers(&BearerKeys),
    tags(
        (name = "index", description = "Documents, search and persist"),
        (name = "openai", description = "OpenAI's embeddings API, for its clients"),
        (name = "operations", description = "Metrics and this document"),
        (name = "probes", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

/// The `bearer` security scheme the routes name.
struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document itself.
pub(super) fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object)))]
pub(super) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
