//! Path and query extractors whose rejections are JSON errors like every
//! other answer: axum's own answer a path that does not decode (`%ac` is not
//! UTF-8) with plain text, which a client generated from the OpenAPI cannot read,
//! and a query parameter that does not parse without naming it.

use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// [`Path`], rejected as an [`ApiError`] naming the path.
pub struct ApiPath<T>(pub T);

/// A query string as `T`, rejected as an [`ApiError`] naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(e) => Err(ApiError {
                field: Some("path".into()),
                ..ApiError::new(e.status(), e.body_text())
            }),
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        // The path names the parameter that did not parse (`limit`), as the
        // checks after parsing do.
        serde_path_to_error::deserialize(pairs).map(Self).map_err(|e| {
            let field = match e.path().to_string() {
                path if path == "." => "query".to_string(),
                path => path,
            };
            ApiError {
                field: Some(field.clone()),
                ..ApiError::new(StatusCode::BAD_REQUEST, format!("{field}: {}", e.inner()))
            }
        })
    }
}
