//! `/health` and `/openapi.json`.

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

/// The API answers.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(value_type = String, pattern = "^ok$")]
    pub status: &'static str,
}

/// Liveness
#[utoipa::path(get, path = "/health", operation_id = "getHealth", security(()), responses((status = 200, description = "ok", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The document, as [`crate::openapi::document`] wrote it for this server.
#[derive(Clone)]
pub struct Document(pub Arc<str>);

/// This document
#[utoipa::path(get, path = "/openapi.json", operation_id = "getOpenApi", security(()), responses(
    (status = 200, description = "OpenAPI 3.1", content_type = "application/json"),
))]
pub async fn openapi(Extension(Document(document)): Extension<Document>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document.to_string())
}
