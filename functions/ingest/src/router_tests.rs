//! The router on the memory adapters: every status `POST /ingest` documents.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use canopy::adapters::memory::{MemoryDevicePublisher, MemoryKeyStore, MemoryLedger, MemoryQueue, MemoryQuotaCounter};
use canopy::domain::alert;
use canopy::domain::device_id::DeviceId;
use canopy::domain::device_key::issue;
use canopy::ports::keys::KeyStore;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::service::{AlertRoute, IngestOptions, MAX_FAILURES_PER_MINUTE};

type Memory = HttpIngest<MemoryKeyStore, MemoryQueue, MemoryLedger, MemoryQuotaCounter, MemoryDevicePublisher>;

fn service() -> Arc<Memory> {
    Arc::new(HttpIngest::new(
        MemoryKeyStore::default(),
        MemoryQueue::default(),
        MemoryLedger::default(),
        MemoryQuotaCounter::default(),
        AlertRoute {
            publisher: MemoryDevicePublisher::default(),
            rule_name: "AlertsTopicRule".into(),
            rules: alert::vehicle_rules(),
        },
        IngestOptions {
            key_cache: Duration::ZERO,
            ..IngestOptions::default()
        },
    ))
}

async fn key(service: &Memory, device: &str, rate: u32) -> String {
    let issued = issue(DeviceId::new(device).unwrap(), rate, "", 0).unwrap();
    service.keys.create(&issued.record).await.unwrap();
    issued.plaintext
}

fn message(device: &str, seq: u64) -> Value {
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({"v":1,"vehicle_id":device,"ts":ts,"seq":seq,"soc_pct":81.5,
           "pack_voltage_v":386.2,"pack_current_a":-12.3,"cell_voltage_min_v":3.951,"cell_voltage_max_v":4.012,
           "cell_temp_min_c":24.5,"cell_temp_max_c":31.0,"speed_kph":54.2})
}

/// Status, headers and JSON body of a `POST /ingest`.
async fn post(
    service: &Arc<Memory>,
    key: Option<&str>,
    body: impl Into<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::post("/ingest").header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header(KEY_HEADER, key);
    }
    let response = router(service.clone())
        .oneshot(request.body(body.into()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {bytes:?}"));
    (parts.status, parts.headers, json)
}

#[tokio::test]
async fn accepted_messages_answer_202_with_a_result_each() {
    let s = service();
    let k = key(&s, "veh-001", 10).await;
    let mut bad = message("veh-001", 3);
    bad["speed_kph"] = json!("fast");
    let body = json!([message("veh-001", 1), message("veh-001", 1), bad]).to_string();
    let (status, _, answer) = post(&s, Some(&k), body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(
        answer,
        json!({"device_id":"veh-001","accepted":1,"duplicates":1,"rejected":1,"not_queued":0,"results":[
            {"status":"accepted","seq":1},
            {"status":"duplicate","seq":1},
            {"status":"rejected","reason":"field speed_kph must be a finite number, found a string","field":"speed_kph"}]})
    );
    assert_eq!(s.queue.take().len(), 1);
}

#[tokio::test]
async fn missing_malformed_unknown_revoked_and_foreign_keys_are_refused() {
    let s = service();
    let k = key(&s, "veh-001", 10).await;
    let body = || json!(message("veh-001", 1)).to_string();

    let (status, headers, answer) = post(&s, None, body()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(headers["www-authenticate"], "ApiKey header=\"x-api-key\"");
    assert_eq!(answer["error"]["status"], 401);
    assert_eq!(post(&s, Some("Bearer abc"), body()).await.0, StatusCode::UNAUTHORIZED);

    let stranger = issue(DeviceId::new("veh-001").unwrap(), 10, "", 0).unwrap().plaintext;
    let (status, _, answer) = post(&s, Some(&stranger), body()).await;
    assert_eq!(
        (status, answer["error"]["message"].as_str()),
        (StatusCode::FORBIDDEN, Some("unknown device key"))
    );

    // veh-001's key cannot post veh-002's telemetry, not even beside its own.
    let foreign = json!([message("veh-001", 1), message("veh-002", 1)]).to_string();
    let (status, _, answer) = post(&s, Some(&k), foreign).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(s.queue.take().is_empty(), "nothing queued");

    let id = k[4..16].to_string();
    s.keys.revoke(&id, 1).await.unwrap();
    let (status, _, answer) = post(&s, Some(&k), body()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(answer["error"]["message"], format!("device key {id} is revoked"));
    assert!(s.queue.take().is_empty());
}

#[tokio::test]
async fn a_key_past_its_rate_gets_429_with_retry_after() {
    let s = service();
    let k = key(&s, "veh-001", 2).await;
    for seq in 0..2 {
        assert_eq!(
            post(&s, Some(&k), json!(message("veh-001", seq)).to_string()).await.0,
            StatusCode::ACCEPTED
        );
    }
    let (status, headers, answer) = post(&s, Some(&k), json!(message("veh-001", 9)).to_string()).await;
    // A third request could straddle the minute's turn; then it is admitted.
    if status != StatusCode::ACCEPTED {
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry));
        assert_eq!(s.queue.take().len(), 2, "the refused request queued nothing");
    }
}

#[tokio::test]
async fn an_address_presenting_failed_keys_is_throttled() {
    let s = service();
    let stranger = issue(DeviceId::new("veh-001").unwrap(), 10, "", 0).unwrap().plaintext;
    let body = || json!(message("veh-001", 1)).to_string();
    for _ in 0..MAX_FAILURES_PER_MINUTE {
        assert_eq!(post(&s, Some(&stranger), body()).await.0, StatusCode::FORBIDDEN);
    }
    let (status, headers, answer) = post(&s, Some(&stranger), body()).await;
    // The minute could turn between the requests; then it starts over.
    if status != StatusCode::FORBIDDEN {
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
        assert!(headers.contains_key("retry-after"));
    }
}

#[tokio::test]
async fn bodies_that_are_not_json_or_too_large_get_400_naming_the_body() {
    let s = service();
    let k = key(&s, "veh-001", 100).await;
    let (status, _, answer) = post(&s, Some(&k), "not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["field"], "body");
    assert!(
        answer["error"]["message"].as_str().unwrap().contains("not JSON"),
        "{answer}"
    );
    let (status, _, answer) = post(&s, Some(&k), vec![b' '; MAX_BODY_BYTES + 10]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"]["message"].as_str().unwrap().contains("larger than"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_queue_that_fails_answers_503_to_send_again() {
    let s = service();
    let k = key(&s, "veh-001", 100).await;
    s.queue.faults.fail_next_of("send", 1);
    let (status, headers, answer) = post(
        &s,
        Some(&k),
        json!([message("veh-001", 1), message("veh-001", 2)]).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["not_queued"].as_u64()),
        (Some(1), Some(1))
    );
    s.keys.faults.fail_next_of("get", 1);
    let (status, _, answer) = post(&s, Some(&k), json!(message("veh-001", 3)).to_string()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        !answer["error"]["message"].as_str().unwrap().contains("memory-keys"),
        "the table's words stay in the log"
    );
}
