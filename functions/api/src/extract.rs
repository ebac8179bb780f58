//! Path and query extractors whose rejections are JSON errors like every
//! other answer: axum's own answer a path that does not decode (`%ac` is not
//! UTF-8) with plain text, which a client generated from the OpenAPI cannot read.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// [`Path`], rejected as an [`ApiError`] naming the path.
pub struct ApiPath<T>(pub T);

/// [`Query`], rejected as an [`ApiError`] naming the query string.
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

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(e) => Err(ApiError {
                field: Some("query".into()),
                ..ApiError::new(e.status(), e.body_text())
            }),
        }
    }
}
