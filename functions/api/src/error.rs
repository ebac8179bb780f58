//! Errors as JSON with a status that says what happened:
//! `{"error": {"status", "message", "field"?, "query_id"? or "query_ids"?, "request_id"?}}`.
//!
//! A failure of AWS behind the API (a table, a query) is answered with a
//! generic message and a `request_id`; the AWS error text, which names
//! buckets, roles and the account, goes only to the log, under that id.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use canopy::ports::TableError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::history::{CatalogError, HistoryError, InvalidQuery};

/// Which history queries an error names.
#[derive(Debug)]
pub(crate) enum Queries {
    /// The one that failed or timed out (`query_id`).
    One(String),
    /// Every query of a request past its deadline (`query_ids`).
    All(Vec<String>),
}

/// An error as JSON.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) field: Option<String>,
    /// The history queries the error is about (boxed: errors stay small).
    pub(crate) queries: Option<Box<Queries>>,
    pub(crate) request_id: Option<String>,
    /// Sent as `Retry-After` (a 429).
    pub(crate) retry_after_s: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
            queries: None,
            request_id: None,
            retry_after_s: None,
        }
    }

    /// A failure behind the API: logged whole under a new request id,
    /// answered with `message` and that id only.
    pub(crate) fn internal(status: StatusCode, message: &str, error: &dyn std::fmt::Display) -> Self {
        let request_id = request_id();
        tracing::error!(%request_id, error = %error, "{message}");
        Self {
            request_id: Some(request_id.clone()),
            ..Self::new(
                status,
                format!("{message} (request {request_id}; the log has the details)"),
            )
        }
    }
}

impl ApiError {
    /// A request's history queries did not all finish within `deadline`
    /// (they were stopped): a 504 naming every one.
    pub(crate) fn deadline(query_ids: Vec<String>, deadline: std::time::Duration) -> Self {
        let error = format!(
            "history queries {} did not finish within {} s",
            query_ids.join(", "),
            deadline.as_secs_f64()
        );
        Self {
            queries: Some(Box::new(Queries::All(query_ids))),
            ..Self::internal(
                StatusCode::GATEWAY_TIMEOUT,
                "the history queries did not finish in time",
                &error,
            )
        }
    }
}

/// A request id unique enough to find one line in the log: time and a counter.
fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("{nanos:016x}-{:04x}", COUNTER.fetch_add(1, Ordering::Relaxed) & 0xFFFF)
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Invalid(e) => e.into(),
            CatalogError::Unknown(message) => Self {
                field: Some("signal".into()),
                ..Self::new(StatusCode::NOT_FOUND, message)
            },
        }
    }
}

impl From<InvalidQuery> for ApiError {
    fn from(e: InvalidQuery) -> Self {
        Self {
            field: Some(e.field.clone()),
            ..Self::new(StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}

impl From<TableError> for ApiError {
    fn from(e: TableError) -> Self {
        Self::internal(StatusCode::BAD_GATEWAY, "a table read failed", &e)
    }
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        match &e {
            HistoryError::Timeout { query_id, .. } => Self {
                queries: Some(Box::new(Queries::One(query_id.clone()))),
                ..Self::internal(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the history query did not finish in time",
                    &e,
                )
            },
            HistoryError::Failed { query_id, .. } => Self {
                queries: Some(Box::new(Queries::One(query_id.clone()))),
                ..Self::internal(StatusCode::BAD_GATEWAY, "the history query failed", &e)
            },
        }
    }
}

/// Every error's body: `{"error": {...}}`.
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, and where.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status, again.
    pub status: u16,
    pub message: String,
    /// The input at fault: a query parameter, `path`, `body`, `signal`…
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub field: Option<String>,
    /// The history query that failed or timed out.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub query_id: Option<String>,
    /// A 504: every history query of the request, each stopped at the deadline if still running.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<String>, required = false)]
    pub query_ids: Option<Vec<String>>,
    /// For a failure behind the API: the id its details are logged under.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub request_id: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (query_id, query_ids) = match self.queries.map(|q| *q) {
            Some(Queries::One(id)) => (Some(id), None),
            Some(Queries::All(ids)) => (None, Some(ids)),
            None => (None, None),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                status: self.status.as_u16(),
                message: self.message,
                field: self.field,
                query_id,
                query_ids,
                request_id: self.request_id,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
