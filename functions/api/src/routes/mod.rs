//! The router: a file per resource, each handler with its OpenAPI
//! operation (`#[utoipa::path]`), so a route cannot be served without being
//! documented, nor documented without being served.

pub mod alerts;
pub mod console;
pub mod devices;
pub mod fleet;
pub mod history;
pub mod meta;
pub mod raw;
pub mod signals;
pub mod trips;
pub mod vehicles;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::routing::get;
use axum::{Extension, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::Api;
use crate::error::ApiError;
use crate::etag;
use crate::openapi::{self, ApiDoc};

/// Every route of the API but the device kinds' (which follow their
/// declarations), with the document they make.
pub fn documented() -> OpenApiRouter<Arc<Api>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(console::page))
        .routes(routes!(console::docs))
        .routes(routes!(console::config))
        .routes(routes!(meta::health))
        .routes(routes!(meta::openapi))
        .routes(routes!(signals::fleet))
        .routes(routes!(alerts::fleet))
        .routes(routes!(vehicles::list))
        .routes(routes!(vehicles::one))
        .routes(routes!(alerts::vehicle))
        .routes(routes!(signals::vehicle))
        .routes(routes!(trips::vehicle))
        .routes(routes!(raw::vehicle))
        .routes(routes!(history::signal))
        .routes(routes!(history::query))
        .routes(routes!(fleet::stats))
        .routes(routes!(fleet::counts))
        // Routed with a wildcard (a file's name may hold slashes), so
        // documented by `ApiDoc` instead.
        .route("/assets/{*file}", get(console::asset))
}

/// The document for a server of `api`'s kinds, signed in or not.
pub fn document(signed_in: bool, kinds: &canopy::domain::kind::Kinds) -> String {
    let (_, routes) = documented().split_for_parts();
    openapi::document(routes, signed_in, kinds)
}

/// The API's router, serving `api`.
pub fn router(api: Arc<Api>) -> Router {
    let (app, routes) = documented().split_for_parts();
    let document = openapi::document(routes, api.access.identity_required, &api.kinds);
    let kinds: Vec<_> = api.kinds.iter().cloned().collect();
    devices::routes(app, &kinds)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route (GET /openapi.json lists them)") })
        // axum keeps the Allow header; the body is JSON like every other error.
        .method_not_allowed_fallback(|method: Method| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("this route does not answer {method} (the Allow header says what it answers)"),
            )
        })
        .layer(axum::middleware::from_fn(etag::etag))
        .layer(Extension(meta::Document(Arc::from(document))))
        .with_state(api)
}
