//! The router on the memory adapters: routes, statuses and errors, no server.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use canopy::adapters::contract::{alert, telemetry};
use canopy::adapters::memory::{MemoryAlertLog, MemoryStateTable};
use canopy::domain::lttb::Point;
use canopy::ports::alert_log::AlertLog;
use serde_json::Value;
use tower::ServiceExt;

use super::*;
use crate::history::memory::MemoryHistory;

type MemoryApi = Api<MemoryHistory, MemoryStateTable, MemoryAlertLog>;

const T0_US: i64 = 1_700_000_000_000_000;

async fn api() -> Arc<MemoryApi> {
    let api = Api {
        history: MemoryHistory::default(),
        state: MemoryStateTable::default(),
        alerts: MemoryAlertLog::default(),
        catalog: built_in_catalog().unwrap(),
    };
    let v = VehicleId::new("veh-001").unwrap();
    api.state.put_if_newer(&telemetry(&v, 7, 0), 1).await.unwrap();
    api.alerts.record(&alert(&v, 7, 0), 2_000_000_000).await.unwrap();
    let signal = SignalRef {
        message_name: "BMS_PackStatus".into(),
        signal_name: "PackCurrent".into(),
    };
    // An hour at 10 Hz with one spike.
    api.history.insert(
        &v,
        &signal,
        (0..36_000).map(|i| Point {
            ts_us: T0_US + i * 100_000,
            value: if i == 20_000 { 500.0 } else { (i % 100) as f64 },
        }),
    );
    Arc::new(api)
}

async fn get(api: &Arc<MemoryApi>, uri: &str) -> (StatusCode, Value) {
    let response = router(api.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn state_and_alerts_come_from_their_ports() {
    let api = api().await;
    let (status, body) = get(&api, "/vehicles/veh-001").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["seq"], 7);
    assert_eq!(body["received_at_ms"], 1_700_000_000_040i64);
    assert!(body.get("received_at").is_none());
    let (status, body) = get(&api, "/vehicles/veh-404").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, body) = get(&api, "/vehicles").await;
    assert_eq!(body["vehicles"].as_array().unwrap().len(), 1);
    let (_, body) = get(&api, "/vehicles/veh-001/alerts").await;
    assert_eq!(body["alerts"][0]["rule"], "over-temperature");
    assert_eq!(body["alerts"][0]["unit"], "°C");
}

#[tokio::test]
async fn history_is_downsampled_and_keeps_the_spike() {
    let api = api().await;
    let uri = "/vehicles/veh-001/signals/BMS_PackStatus/PackCurrent?from=2023-11-14T22:13:20Z&to=2023-11-14T23:13:20Z&max_points=500";
    let (status, body) = get(&api, uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let series = &body["series"];
    assert_eq!(series["source_points"], 36_000);
    assert_eq!(series["points"].as_array().unwrap().len(), 500);
    let max = series["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    assert_eq!(max, 500.0);
}

#[tokio::test]
async fn a_failing_backend_is_a_502_and_a_failing_table_too() {
    let api = api().await;
    api.history.faults.fail_next(1);
    let uri = "/vehicles/veh-001/signals/BMS_PackStatus/PackCurrent?from=2023-11-14T22:13:20Z&to=2023-11-14T23:13:20Z";
    let (status, body) = get(&api, uri).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["query_id"], "memory-points");
    assert!(body["error"]["request_id"].is_string());
    api.state.faults.fail_next(1);
    let (status, body) = get(&api, "/vehicles/veh-001").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    // What AWS said (table names, ARNs, the account) stays in the log.
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("memory-state") && !message.contains("injected"),
        "{message}"
    );
    let request_id = body["error"]["request_id"].as_str().unwrap();
    assert!(message.contains(request_id), "{message}");
}
