//! ETags on JSON answers: the console polls the fleet every few seconds, and
//! an unchanged answer then costs a 304 with no body instead of the whole
//! list again. The tag is a hash of the body, so every instance agrees on it.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// FNV-1a, 64 bits: stable across processes and builds, unlike `DefaultHasher`'s promise.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn matches(if_none_match: &str, tag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == tag)
}

pub async fn etag(request: Request, next: Next) -> Response {
    let conditional = (request.method() == Method::GET)
        .then(|| request.headers().get(header::IF_NONE_MATCH).cloned())
        .flatten();
    let is_get = request.method() == Method::GET;
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_get || response.status() != StatusCode::OK || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // The API's answers are built in memory already: this holds no more than they did.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let tag = format!("\"{:016x}{:x}\"", fnv1a(&bytes), bytes.len());
    if let Ok(value) = HeaderValue::from_str(&tag) {
        parts.headers.insert(header::ETAG, value);
    }
    parts
        .headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-cache"));
    if conditional
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches(v, &tag))
    {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_match_as_http_says() {
        assert!(matches("\"ab\"", "\"ab\""));
        assert!(matches("\"x\", W/\"ab\"", "\"ab\""));
        assert!(matches("*", "\"ab\""));
        assert!(!matches("\"abc\"", "\"ab\""));
        assert_ne!(fnv1a(b"{\"a\":1}"), fnv1a(b"{\"a\":2}"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}
