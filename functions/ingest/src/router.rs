//! `POST /ingest` as an axum router: the same router runs in Lambda (behind
//! API Gateway's HTTP API, the route open to the internet, the key checked
//! here) and on the local stack, beside the query API on the same port.
//!
//! Errors are JSON in the query API's shape:
//! `{"error": {"status", "message", "field"?}}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use canopy::ports::keys::KeyStore;
use canopy::ports::ledger::Ledger;
use canopy::ports::messaging::DevicePublisher;
use canopy::ports::queue::MessageQueue;
use canopy::ports::quota::QuotaCounter;
use serde_json::json;

use crate::service::{HttpIngest, MAX_BODY_BYTES, Refusal};

/// The header a device sends its key in.
pub const KEY_HEADER: &str = "x-api-key";

/// Every route of [`router`], as `openapi.json` must list it.
pub const ROUTES: [(&str, &str); 1] = [("POST", "/ingest")];

pub fn router<K, Q, L, C, P>(ingest: Arc<HttpIngest<K, Q, L, C, P>>) -> axum::Router
where
    K: KeyStore + 'static,
    Q: MessageQueue + 'static,
    L: Ledger + 'static,
    C: QuotaCounter + 'static,
    P: DevicePublisher + 'static,
{
    axum::Router::new()
        .route("/ingest", post(post_ingest::<K, Q, L, C, P>))
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("/ingest answers POST only, not {method}"),
                None,
            )
        })
        // One byte over the limit is enough to tell a body that is too large.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES + 1))
        .with_state(ingest)
}

/// Where a request came from: the client's address as API Gateway saw it,
/// or the peer's where the router is served directly (the local stack).
fn source(request: &axum::http::Extensions) -> String {
    if let Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) =
        request.get::<lambda_http::request::RequestContext>()
        && let Some(ip) = &context.http.source_ip
    {
        return ip.clone();
    }
    request
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |peer| peer.0.ip().to_string())
}

/// The service as the route's handler gets it.
type Shared<K, Q, L, C, P> = State<Arc<HttpIngest<K, Q, L, C, P>>>;

async fn post_ingest<K, Q, L, C, P>(
    State(ingest): Shared<K, Q, L, C, P>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response
where
    K: KeyStore,
    Q: MessageQueue,
    L: Ledger,
    C: QuotaCounter,
    P: DevicePublisher,
{
    let now = chrono::Utc::now();
    let presented = headers.get(KEY_HEADER).and_then(|v| v.to_str().ok());
    let key = match ingest.authenticate(presented).await {
        Ok(key) => key,
        Err(refusal @ Refusal::Unavailable(_)) => return refused(&refusal),
        Err(refusal) => return refused(&ingest.failed(&source(&extensions), now.timestamp(), refusal).await),
    };
    let body = match body {
        Ok(body) => body,
        Err(e) => {
            let reason = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                format!("the body is larger than {MAX_BODY_BYTES} bytes")
            } else {
                format!("the body could not be read: {}", e.body_text())
            };
            if let Err(refusal) = ingest.admit(&key, 1, now.timestamp()).await {
                return refused(&refusal);
            }
            return refused(&Refusal::BadBody {
                reason,
                field: Some("body".into()),
            });
        }
    };
    match ingest.ingest(&key, &body, now.timestamp_millis()).await {
        // Something valid was not queued: the device sends the request again
        // (what was queued comes back a duplicate).
        Ok(report) if report.not_queued > 0 => {
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(report)).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Ok(report) => (StatusCode::ACCEPTED, Json(report)).into_response(),
        Err(refusal) => refused(&refusal),
    }
}

fn refused(refusal: &Refusal) -> Response {
    let (status, field) = match refusal {
        Refusal::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, None),
        Refusal::Forbidden(_) => (StatusCode::FORBIDDEN, None),
        Refusal::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, None),
        Refusal::BadBody { field, .. } => (StatusCode::BAD_REQUEST, field.clone()),
        Refusal::Unavailable(e) => {
            tracing::error!(error = %e, "ingest unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, None)
        }
    };
    let message = match refusal {
        // The table's own words name the account's resources: they go to the log only.
        Refusal::Unavailable(_) => "ingest is unavailable for a moment; send the request again".to_string(),
        other => other.to_string(),
    };
    let mut response = error(status, &message, field);
    let headers = response.headers_mut();
    match refusal {
        Refusal::Unauthenticated(_) => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("ApiKey header=\"x-api-key\""),
            );
        }
        Refusal::RateLimited { retry_after_s, .. } => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
        }
        Refusal::Unavailable(_) => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    response
}

/// An error in the query API's shape.
fn error(status: StatusCode, message: &str, field: Option<String>) -> Response {
    let mut error = json!({ "status": status.as_u16(), "message": message });
    if let Some(field) = field {
        error["field"] = json!(field);
    }
    (status, Json(json!({ "error": error }))).into_response()
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
