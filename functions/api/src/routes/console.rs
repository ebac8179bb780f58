//! The web console's routes: its page at `/` and `/docs`, its files under
//! `/assets`, and `/config.json`. All four are open; the console signs in by itself.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::app::Api;
use crate::console::{self, ConsoleConfig};
use crate::extract::ApiPath;
use crate::openapi::Error;

/// The web console (open: it signs in by itself)
#[utoipa::path(get, path = "/", operation_id = "getConsole", security(()), responses(
    (status = 200, description = "The console's page", content_type = "text/html", body = String),
))]
pub async fn page(State(api): State<Arc<Api>>, request: HeaderMap) -> Response {
    console::page(request, &api.console).await
}

/// This API's reference, in the console (open)
#[utoipa::path(get, path = "/docs", operation_id = "getDocs", security(()), responses(
    (status = 200, description = "The console's page", content_type = "text/html", body = String),
))]
pub async fn docs(State(api): State<Arc<Api>>, request: HeaderMap) -> Response {
    console::page(request, &api.console).await
}

/// The console's hashed files, cached immutable (open)
///
/// Routed as `/assets/{*file}`: a file's name may hold slashes.
#[utoipa::path(get, path = "/assets/{file}", operation_id = "getAsset", security(()),
    params(("file" = String, Path, description = "A built file's name")),
    responses((status = 200, description = "The file (gzip when accepted)"), (status = 404, response = Error)),
)]
pub async fn asset(path: ApiPath<String>, request: HeaderMap) -> Response {
    console::file(path, request).await
}

/// What the console needs before its first request: Cognito's domain and app client (null without sign-in) and the live stream's URL (null: this server's own /live) (open)
#[utoipa::path(get, path = "/config.json", operation_id = "getConsoleConfig", security(()), responses(
    (status = 200, description = "Console configuration", body = ConsoleConfig),
))]
pub async fn config(State(api): State<Arc<Api>>) -> Response {
    console::config_json(&api.console)
}
