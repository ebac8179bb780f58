//! Errors as JSON with a status that says what happened:
//! `{"error": {"status", "message", "field"?, "query_id"?}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use canopy::ports::TableError;
use serde_json::json;

use crate::history::{HistoryError, InvalidQuery};

/// An error as JSON: `{"error": {"status", "message", "field"?, "query_id"?}}`.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) field: Option<String>,
    pub(crate) query_id: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
            query_id: None,
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
        tracing::error!(error = %e, "table read failed");
        Self::new(StatusCode::BAD_GATEWAY, e.to_string())
    }
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        tracing::error!(error = %e, "history query failed");
        match &e {
            HistoryError::Timeout { query_id, .. } => Self {
                query_id: Some(query_id.clone()),
                ..Self::new(StatusCode::GATEWAY_TIMEOUT, e.to_string())
            },
            HistoryError::Failed { query_id, .. } => Self {
                query_id: Some(query_id.clone()),
                ..Self::new(StatusCode::BAD_GATEWAY, e.to_string())
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "status": self.status.as_u16(), "message": self.message });
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        if let Some(id) = self.query_id {
            error["query_id"] = json!(id);
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}
