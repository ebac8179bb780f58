//! The router on the memory adapters: routes, statuses and errors, no server.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use canopy::adapters::contract::{alert, station_status, telemetry};
use canopy::adapters::memory::{
    MemoryAlertLog, MemoryDeviceStateTable, MemoryDirectory, MemoryQuotaCounter, MemoryStateTable,
};
use canopy::domain::device::FieldValue;
use canopy::domain::lttb::Point;
use canopy::ports::alert_log::AlertLog;
use canopy::ports::device_state::DeviceStateStore;
use canopy::ports::directory::VehicleDirectory;
use canopy::ports::state::LatestStateStore;
use serde_json::{Value, json};
use tower::ServiceExt;

use std::sync::Arc;
use std::time::Duration;

use canopy::domain::device_id::DeviceId;
use canopy::domain::kind::Kinds;

use super::*;
use crate::access::{AccessPolicy, VehicleGroups};
use crate::catalogs;
use crate::history::SignalRef;
use crate::history::memory::MemoryHistory;
use crate::quota::HistoryQuota;
use axum::http::header;

/// The API on the memory adapters, with handles on them to seed and fault.
struct MemoryApi {
    history: Arc<MemoryHistory>,
    raw: Arc<crate::raw::MemoryRaw>,
    state: Arc<MemoryStateTable>,
    directory: Arc<MemoryDirectory>,
    alerts: Arc<MemoryAlertLog>,
    api: Arc<Api>,
}

impl MemoryApi {
    /// The API's settings, while no router serves it yet.
    fn settings(&mut self) -> &mut Api {
        Arc::get_mut(&mut self.api).expect("changed before any router serves it")
    }
}

const T0_US: i64 = 1_700_000_000_000_000;

/// Takes `t` as the telemetry function does: the vehicle listed in its views, then its state.
async fn heard(api: &MemoryApi, t: &canopy::domain::telemetry::Telemetry) {
    let views = api.api.access.vehicle_groups.views_of(t.vehicle_id.as_str());
    let standing = canopy::domain::standing::Standing::of(t);
    api.directory.enter(&t.vehicle_id, &views, standing).await.unwrap();
    api.state.put_if_newer(t, 1).await.unwrap();
}

/// Records `a` as the alerts function does: in its log and its views' feeds.
async fn record(api: &MemoryApi, a: &canopy::domain::alert::Alert) {
    let views = match a.kind {
        None => api.api.access.vehicle_groups.views_of(a.vehicle_id.as_str()),
        Some(_) => Vec::new(),
    };
    api.alerts.record(a, &views, 2_000_000_000).await.unwrap();
}

async fn api() -> Arc<MemoryApi> {
    Arc::new(api_with(AccessPolicy::default(), HistoryQuota { per_minute: 1_000 }).await)
}

/// veh-001 (state, an alert, an hour of PackCurrent) and veh-002 (state).
async fn api_with(access: AccessPolicy, history_quota: HistoryQuota) -> MemoryApi {
    let history = Arc::new(MemoryHistory::default());
    let raw = Arc::new(crate::raw::MemoryRaw::default());
    let state = Arc::new(MemoryStateTable::default());
    let directory = Arc::new(MemoryDirectory::default());
    let alerts = Arc::new(MemoryAlertLog::default());
    let api = MemoryApi {
        api: Arc::new(Api {
            history: history.clone(),
            raw: raw.clone(),
            state: state.clone(),
            directory: directory.clone(),
            alerts: alerts.clone(),
            devices: Arc::new(stations().await),
            kinds: Kinds::builtin(),
            catalogs: Box::new(Arc::new(catalogs::built_in().unwrap())),
            access,
            quota_counter: Arc::new(MemoryQuotaCounter::default()),
            history_quota,
            console: Default::default(),
            history_deadline: Duration::from_secs(25),
            cursors: crate::cursor::Cursors::ephemeral(),
        }),
        history,
        raw,
        state,
        directory,
        alerts,
    };
    let v = DeviceId::new("veh-001").unwrap();
    heard(&api, &telemetry(&v, 7, 0)).await;
    let other = DeviceId::new("veh-002").unwrap();
    heard(&api, &telemetry(&other, 3, 0)).await;
    record(&api, &alert(&v, 7, 0)).await;
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
    api
}

/// Stations st-01..st-03 with their latest status.
async fn stations() -> MemoryDeviceStateTable {
    let table = MemoryDeviceStateTable::default();
    for (n, available) in [(1, 0), (2, 1), (3, 2)] {
        let id = format!("st-{n:02}");
        let mut status = station_status(&id, 10 + n, 0);
        status
            .values
            .insert("batteries_available".into(), FieldValue::Integer(available));
        table.put_if_newer(&status, 5).await.unwrap();
    }
    table
}

async fn get(api: &Arc<MemoryApi>, uri: &str) -> (StatusCode, Value) {
    let response = router(api.api.clone())
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
    assert_eq!(body["vehicles"].as_array().unwrap().len(), 2);
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
    assert_eq!(
        series["stats"]["count"], 36_000,
        "statistics of every value in the range"
    );
    assert_eq!(series["stats"]["max"], 500.0);
    assert!(
        series["source_points"].as_u64().unwrap() > 500,
        "reduced per bucket, then by LTTB"
    );
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

/// A request as API Gateway's HTTP API hands it to the Lambda after the JWT
/// authorizer accepted an access token of `subject` in `groups` (`None`: no
/// authorizer on the route), converted by `lambda_http` as in production.
async fn signed_in(
    api: &Arc<MemoryApi>,
    subject: &str,
    groups: Option<&str>,
    uri: &str,
) -> (StatusCode, Value, Option<String>) {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let authorizer = match groups {
        Some(groups) => json!({"jwt": {
            "claims": {"sub": subject, "cognito:groups": groups, "token_use": "access", "scope": "aws.cognito.signin.user.admin"},
            "scopes": ["aws.cognito.signin.user.admin"]
        }}),
        None => Value::Null,
    };
    let event = json!({
        "version": "2.0", "routeKey": "ANY /{proxy+}", "rawPath": path, "rawQueryString": query,
        "headers": {"host": "abc.execute-api.eu-west-1.amazonaws.com"},
        "requestContext": {
            "routeKey": "ANY /{proxy+}", "accountId": "123456789012", "stage": "$default", "requestId": "r1",
            "authorizer": authorizer, "apiId": "abc", "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc", "time": "12/Mar/2026:19:03:58 +0000", "timeEpoch": 1_773_342_238_390i64,
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "test"}
        },
        "isBase64Encoded": false
    });
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let request = request.map(|b| Body::from(b.to_vec()));
    let response = router(api.api.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        retry_after,
    )
}

fn grouped() -> AccessPolicy {
    AccessPolicy {
        vehicle_groups: VehicleGroups::parse("north=veh-001;south=veh-002").unwrap(),
        identity_required: true,
    }
}

#[tokio::test]
async fn a_viewer_of_one_group_does_not_see_another_groups_vehicles() {
    let api = Arc::new(api_with(grouped(), HistoryQuota { per_minute: 100 }).await);
    let history = "/signals/BMS_PackStatus/PackCurrent?from=2023-11-14T22:13:20Z&to=2023-11-14T23:13:20Z";
    for uri in [
        "/vehicles/veh-001",
        "/vehicles/veh-001/alerts",
        &format!("/vehicles/veh-001{history}"),
    ] {
        let (status, body, _) = signed_in(&api, "u-north", Some("[viewer north]"), uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        // South's vehicle answers as a vehicle that does not exist would.
        let theirs = uri.replace("veh-001", "veh-002");
        let (status, body, _) = signed_in(&api, "u-north", Some("[viewer north]"), &theirs).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{theirs}: {body}");
        assert_eq!(body["error"]["message"], "no vehicle veh-002");
    }
    let listed = |body: &Value| -> Vec<String> {
        body["vehicles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["vehicle_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, body, _) = signed_in(&api, "u-north", Some("[viewer north]"), "/vehicles").await;
    assert_eq!(listed(&body), ["veh-001"]);
    let (_, body, _) = signed_in(&api, "u-south", Some("[viewer south]"), "/vehicles?limit=1").await;
    assert_eq!(
        listed(&body),
        ["veh-002"],
        "the page is filled past vehicles out of scope"
    );
    let (_, body, _) = signed_in(&api, "u-admin", Some("[fleet-admin]"), "/vehicles").await;
    assert_eq!(listed(&body), ["veh-001", "veh-002"]);
    let (_, body, _) = signed_in(&api, "u-new", Some("[viewer]"), "/vehicles").await;
    assert_eq!(
        listed(&body),
        Vec::<String>::new(),
        "a viewer in no vehicle group sees none"
    );
    let (status, _, _) = signed_in(&api, "u-none", Some("[]"), "/vehicles").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = signed_in(&api, "u-none", None, "/vehicles").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a route without the authorizer serves nobody"
    );
    let (status, _, _) = signed_in(&api, "u-none", None, "/health").await;
    assert_eq!(status, StatusCode::OK, "health stays open");
}

#[tokio::test]
async fn paging_a_listing_shows_no_other_groups_vehicle_anywhere() {
    let access = AccessPolicy {
        vehicle_groups: VehicleGroups::parse("north=veh-n*;south=veh-s*").unwrap(),
        identity_required: true,
    };
    let api = Arc::new(api_with(access, HistoryQuota { per_minute: 100 }).await);
    // South's vehicles far outnumber north's, between and after them in the table's order.
    for i in 0..1_500 {
        let id = DeviceId::new(format!("veh-s{i:04}")).unwrap();
        heard(&api, &telemetry(&id, 1, 0)).await;
    }
    for i in [3, 600, 1_400] {
        let id = DeviceId::new(format!("veh-s{i:04}n")).unwrap();
        heard(&api, &telemetry(&id, 1, 0)).await;
        let north = DeviceId::new(format!("veh-n{i:04}")).unwrap();
        heard(&api, &telemetry(&north, 1, 0)).await;
    }
    let mut seen = Vec::new();
    let mut uri = "/vehicles?limit=2".to_string();
    for _ in 0..100 {
        let (status, body, _) = signed_in(&api, "u-north", Some("[viewer north]"), &uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let text = body.to_string();
        assert!(
            !text.contains("veh-s") && !text.contains("veh-0"),
            "another group's id: {text}"
        );
        seen.extend(
            body["vehicles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["vehicle_id"].to_string()),
        );
        match body["next"].as_str() {
            Some(next) => uri = format!("/vehicles?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["\"veh-n0003\"", "\"veh-n0600\"", "\"veh-n1400\""]);
    let (status, body, _) = signed_in(&api, "u-north", Some("[viewer north]"), "/vehicles?after=veh-s0001").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("after")),
        "{body}"
    );
}

#[tokio::test]
async fn history_queries_are_limited_per_user() {
    let api = Arc::new(api_with(grouped(), HistoryQuota { per_minute: 2 }).await);
    let uri = "/vehicles/veh-001/signals/BMS_PackStatus/PackCurrent?from=2023-11-14T22:13:20Z&to=2023-11-14T23:13:20Z&max_points=10";
    // Two per minute: five quick requests span at most two minutes, so at
    // least one is refused however the clock falls.
    let mut ok = 0;
    let mut retry = None;
    for _ in 0..5 {
        let (status, body, retry_after) = signed_in(&api, "u-admin", Some("[fleet-admin]"), uri).await;
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => retry = retry.or(retry_after),
            other => panic!("{other}: {body}"),
        }
    }
    assert!((2..=4).contains(&ok), "{ok} answered");
    let seconds: u64 = retry.expect("a refusal with Retry-After").parse().unwrap();
    assert!((1..=60).contains(&seconds), "{seconds}");
    let (status, _, _) = signed_in(&api, "u-other", Some("[fleet-admin]"), uri).await;
    assert_eq!(status, StatusCode::OK, "another user has their own quota");
    let (status, _, _) = signed_in(&api, "u-admin", Some("[fleet-admin]"), "/vehicles/veh-001").await;
    assert_eq!(status, StatusCode::OK, "the quota is on history only");
}

async fn raw(api: &Arc<MemoryApi>, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = router(api.api.clone()).oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 24).await.unwrap();
    (parts.status, parts.headers, bytes.to_vec())
}

#[tokio::test]
async fn the_console_is_served_with_the_cache_headers_its_names_allow() {
    let api = api().await;
    for page in ["/", "/docs"] {
        let (status, headers, body) = raw(&api, Request::get(page).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
        assert!(String::from_utf8(body).unwrap().contains("<title>Canopy</title>"));
    }
    for asset in crate::console::ASSETS.iter().filter(|a| a.path.starts_with("/assets/")) {
        let (status, headers, body) = raw(&api, Request::get(asset.path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
        assert_eq!(body, asset.body);
        let request = Request::get(asset.path)
            .header(header::ACCEPT_ENCODING, "br, gzip")
            .body(Body::empty())
            .unwrap();
        let (_, headers, body) = raw(&api, request).await;
        if let Some(gzip) = asset.gzip {
            assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
            assert_eq!(body, gzip);
        }
    }
    let (status, _, _) = raw(&api, Request::get("/assets/nope-123.js").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = get(&api, "/config.json").await;
    assert_eq!(
        body,
        serde_json::json!({"auth": null, "live_url": null}),
        "no sign-in on the local stack, and its live stream is its own /live"
    );
}

#[tokio::test]
async fn an_unchanged_answer_is_a_304() {
    let api = api().await;
    let (status, headers, body) = raw(&api, Request::get("/vehicles").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let tag = headers[header::ETAG].clone();
    assert!(!body.is_empty());
    let again = || {
        Request::get("/vehicles")
            .header(header::IF_NONE_MATCH, tag.clone())
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, body) = raw(&api, again()).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    // A newer message for veh-002 changes the listing, so the tag.
    let v = DeviceId::new("veh-002").unwrap();
    heard(&api, &telemetry(&v, 4, 1)).await;
    let (status, headers, _) = raw(&api, again()).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(headers[header::ETAG], tag);
}

#[tokio::test]
async fn fleet_alerts_are_newest_first_and_scoped() {
    let api = Arc::new(api_with(grouped(), HistoryQuota { per_minute: 100 }).await);
    let other = DeviceId::new("veh-002").unwrap();
    record(&api, &alert(&other, 9, 60)).await;
    record(&api, &alert(&other, 3, -60)).await;
    let (status, body, _) = signed_in(&api, "u-admin", Some("[fleet-admin]"), "/alerts").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen: Vec<(String, i64)> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["vehicle_id"].as_str().unwrap().to_string(),
                a["seq"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("veh-002".to_string(), 9),
            ("veh-001".to_string(), 7),
            ("veh-002".to_string(), 3)
        ]
    );
    let (_, body, _) = signed_in(&api, "u-admin", Some("[fleet-admin]"), "/alerts?limit=1").await;
    assert_eq!(body["alerts"].as_array().unwrap().len(), 1);
    let (_, body, _) = signed_in(&api, "u-north", Some("[viewer north]"), "/alerts").await;
    let vehicles: Vec<&str> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["vehicle_id"].as_str().unwrap())
        .collect();
    assert_eq!(vehicles, ["veh-001"], "another group's alerts stay hidden");
}

#[tokio::test]
async fn the_fleets_alert_feed_pages_by_cursor_and_refuses_anothers() {
    let api = api().await;
    for n in 0..7 {
        let v = DeviceId::new(format!("veh-1{n:02}")).unwrap();
        // Two alerts in each second: the cursor, not the time, says where a page ends.
        record(&api, &alert(&v, n, 100 + (n / 2) as i64)).await;
    }
    let (mut seen, mut uri) = (Vec::new(), "/alerts?limit=3".to_string());
    loop {
        let (status, body) = get(&api, &uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for a in body["alerts"].as_array().unwrap() {
            seen.push(a["vehicle_id"].as_str().unwrap().to_string());
        }
        match body["next"].as_str() {
            Some(next) => uri = format!("/alerts?limit=3&after={next}"),
            None => break,
        }
    }
    let want = [
        "veh-106", "veh-105", "veh-104", "veh-103", "veh-102", "veh-101", "veh-100", "veh-001",
    ];
    assert_eq!(seen, want, "newest first, ties by vehicle, each once");
    let (_, body) = get(&api, "/alerts?before=2023-11-14T22:15:02Z").await;
    assert_eq!(body["alerts"].as_array().unwrap().len(), 5, "{body}");
    let (status, body) = get(&api, "/vehicles?limit=1").await;
    assert_eq!(status, StatusCode::OK);
    let listing_cursor = body["next"].as_str().unwrap();
    let (status, body) = get(&api, &format!("/alerts?after={listing_cursor}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("after"), "{body}");
}

#[tokio::test]
async fn the_feed_at_100_000_vehicles_opens_with_the_newest_vehicles_alert_in_one_read_per_partition() {
    let api = api().await;
    for n in 0..100_000_u32 {
        let v = DeviceId::new(format!("fleet-{n:06}")).unwrap();
        record(&api, &alert(&v, 1, 10_000 + i64::from(n))).await;
    }
    let reads = api.alerts.faults.calls("feed_query");
    let (status, body) = get(&api, "/alerts?limit=5").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["alerts"][0]["vehicle_id"], "fleet-099999",
        "the last seeded is the newest"
    );
    assert_eq!(body["alerts"][4]["vehicle_id"], "fleet-099995");
    let per_page = api.alerts.faults.calls("feed_query") - reads;
    assert_eq!(per_page, canopy::ports::alert_log::FEED_SHARDS as usize);
}

async fn post_query(api: &Arc<MemoryApi>, signals: &[&str]) -> (StatusCode, Value) {
    let signals: Vec<Value> = signals
        .iter()
        .map(|s| serde_json::json!({"message_name": "BMS_PackStatus", "signal_name": s}))
        .collect();
    let body = serde_json::json!({"signals": signals, "start_time": "2023-11-14T22:13:20Z", "end_time": "2023-11-14T23:13:20Z"});
    let response = router(api.api.clone())
        .oneshot(
            Request::post("/vehicles/veh-001/query")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn pack(signal: &str) -> SignalRef {
    SignalRef {
        message_name: "BMS_PackStatus".into(),
        signal_name: signal.into(),
    }
}

#[tokio::test]
async fn a_multi_signal_query_runs_its_queries_at_once_under_one_deadline() {
    let mut api = api_with(AccessPolicy::default(), HistoryQuota { per_minute: 1_000 }).await;
    api.settings().history_deadline = Duration::from_millis(1_500);
    let api = Arc::new(api);
    let signals = ["PackCurrent", "PackVoltage", "StateOfCharge"];
    for s in signals {
        api.history.slow(&pack(s), Duration::from_millis(600));
    }
    // One after another they would take 1.8 s.
    let (status, body) = post_query(&api, &signals).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["series"].as_array().unwrap().len(), 3);
    assert_eq!(body["series"][0]["stats"]["max"], 500.0);
    assert!(api.history.cancelled.lock().unwrap().is_empty());
}

#[tokio::test]
async fn past_the_deadline_every_query_is_stopped_and_named_in_a_504() {
    let mut api = api_with(AccessPolicy::default(), HistoryQuota { per_minute: 1_000 }).await;
    api.settings().history_deadline = Duration::from_millis(300);
    let api = Arc::new(api);
    api.history.slow(&pack("PackVoltage"), Duration::from_secs(60));
    let started = std::time::Instant::now();
    let (status, body) = post_query(&api, &["PackCurrent", "PackVoltage", "StateOfCharge"]).await;
    assert!(started.elapsed() < Duration::from_secs(10), "answered at the deadline");
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    let mut named: Vec<String> = body["error"]["query_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    named.sort();
    assert_eq!(
        named,
        [
            "memory-BMS_PackStatus.PackCurrent",
            "memory-BMS_PackStatus.PackVoltage",
            "memory-BMS_PackStatus.StateOfCharge"
        ]
    );
    let mut cancelled = api.history.cancelled.lock().unwrap().clone();
    cancelled.sort();
    assert_eq!(cancelled, named, "what may still run is stopped");
    assert!(body["error"]["request_id"].is_string());

    // The single-signal route holds the same deadline.
    let uri = "/vehicles/veh-001/signals/BMS_PackStatus/PackVoltage?from=2023-11-14T22:13:20Z&to=2023-11-14T23:13:20Z";
    let (status, body) = get(&api, uri).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["error"]["query_ids"][0], "memory-BMS_PackStatus.PackVoltage");
}

#[test]
fn a_deadline_past_the_functions_timeout_is_refused_at_start() {
    let mut vars: std::collections::BTreeMap<String, String> = [
        ("STATE_TABLE", "s"),
        ("DEVICE_STATE_TABLE", "d"),
        ("ALERTS_TABLE", "a"),
        ("FLEET_INDEX_TABLE", "f"),
        ("ATHENA_WORKGROUP", "w"),
        ("GLUE_DATABASE", "g"),
        ("QUOTA_TABLE", "q"),
        ("DATA_BUCKET", "lake"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        Config::from_vars(&vars).unwrap().history_deadline,
        Duration::from_secs(25)
    );
    vars.insert("HISTORY_DEADLINE_SECONDS".into(), "29".into());
    let e = Config::from_vars(&vars).unwrap_err();
    assert_eq!(e.name, "HISTORY_DEADLINE_SECONDS");
}

/// The built-in DBC with one more message, as a vehicle's own DBC.
fn own_dbc() -> String {
    String::from_utf8_lossy(canopy::format::dbc::BUILT_IN).replacen(
        "BO_ 256 ",
        "BO_ 1792 Pump_Status: 8 BMS\r\n SG_ PumpSpeed : 0|16@1+ (1,0) [0|8000] \"rpm\" Vector__XXX\r\n\r\nBO_ 256 ",
        1,
    )
}

/// The API with veh-002's own DBC (a pump the fleet's lacks) in the bucket
/// and a hundred seconds of its pump's speed; and the bucket.
async fn own_dbc_api() -> (Arc<MemoryApi>, canopy::adapters::memory::MemoryStore) {
    use canopy::ports::store::ObjectStore;

    let store = canopy::adapters::memory::MemoryStore::new("lake");
    store
        .put("dbc/vehicles/veh-002.dbc", own_dbc().into_bytes().into(), None)
        .await
        .unwrap();
    let source = canopy::services::dbc_cache::DbcSource {
        default_key: "dbc/ev_powertrain.dbc".into(),
        refresh: Duration::ZERO,
        options: Default::default(),
    };
    let mut api = api_with(AccessPolicy::default(), HistoryQuota { per_minute: 1_000 }).await;
    api.settings().catalogs = Box::new(catalogs::from_bucket(store.clone(), &source).unwrap());
    let pump = SignalRef {
        message_name: "Pump_Status".into(),
        signal_name: "PumpSpeed".into(),
    };
    let v2 = DeviceId::new("veh-002").unwrap();
    api.history.insert(
        &v2,
        &pump,
        (0..100).map(|i| Point {
            ts_us: T0_US + i * 1_000_000,
            value: f64::from(i as u32),
        }),
    );
    (Arc::new(api), store)
}

/// Whether a signal listing names a signal of `message`.
fn names_message(body: &Value, message: &str) -> bool {
    body["signals"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["message"] == message)
}

#[tokio::test]
async fn a_vehicle_with_its_own_dbc_is_listed_by_its_own_signals_and_others_by_the_fleets() {
    let (api, _store) = own_dbc_api().await;
    let (status, own) = get(&api, "/vehicles/veh-002/signals").await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert!(names_message(&own, "Pump_Status") && names_message(&own, "BMS_PackStatus"));
    assert_eq!(own["vehicle_id"], "veh-002");
    let (_, fleet) = get(&api, "/signals").await;
    assert!(!names_message(&fleet, "Pump_Status"), "the fleet's DBC lacks it");
    let (_, other) = get(&api, "/vehicles/veh-001/signals").await;
    assert_eq!(
        other["signals"], fleet["signals"],
        "a vehicle without its own DBC has the fleet's"
    );
}

#[tokio::test]
async fn a_vehicle_with_its_own_dbc_is_charted_by_its_own_signals_and_others_are_not() {
    let (api, _store) = own_dbc_api().await;
    let range = "from=2023-11-14T22:13:20Z&to=2023-11-14T23:13:20Z";
    let (status, body) = get(
        &api,
        &format!("/vehicles/veh-002/signals/Pump_Status/PumpSpeed?{range}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["series"]["stats"]["count"], 100);
    let (status, body) = get(
        &api,
        &format!("/vehicles/veh-001/signals/Pump_Status/PumpSpeed?{range}"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn a_vehicles_dbc_that_no_longer_compiles_names_itself_and_the_fleets_routes_go_on() {
    use canopy::ports::store::ObjectStore;

    let (api, store) = own_dbc_api().await;
    assert_eq!(
        get(&api, "/vehicles/veh-002/signals").await.0,
        StatusCode::OK,
        "before it broke"
    );
    store
        .put(
            "dbc/vehicles/veh-002.dbc",
            b"BO_ 1 Broken: 8 X\n SG_ nope".to_vec().into(),
            None,
        )
        .await
        .unwrap();
    let (status, body) = get(&api, "/vehicles/veh-002/signals").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dbc/vehicles/veh-002.dbc"),
        "{body}"
    );
    assert_eq!(get(&api, "/vehicles/veh-001/signals").await.0, StatusCode::OK);
}

/// Found by the api fuzz target: a 405 came with an empty body.
#[tokio::test]
async fn a_method_a_route_does_not_answer_gets_a_json_405_with_allow() {
    let api = api().await;
    let request = Request::post("/vehicles/veh-001").body(Body::empty()).unwrap();
    let (status, headers, body) = raw(&api, request).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(headers[header::ALLOW].to_str().unwrap().contains("GET"), "{headers:?}");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("POST"), "{body}");
}

/// Found by the api fuzz target: a path that does not decode was answered in plain text.
#[tokio::test]
async fn a_path_that_does_not_decode_is_a_json_400() {
    let api = api().await;
    for uri in [
        "/vehicles/veh-%ac01",
        "/vehicles/veh-001/signals/BMS_PackStatus/P%ackVoltage",
    ] {
        let (status, body) = get(&api, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["error"]["field"], "path", "{uri}: {body}");
    }
}

#[tokio::test]
async fn trips_carry_the_alerts_raised_during_them() {
    let api = api().await;
    let v = DeviceId::new("veh-001").unwrap();
    let trip = |start_us: i64, end_us: i64| crate::history::TripRow {
        start_us,
        end_us,
        samples: ((end_us - start_us) / 1_000_000 + 1) as u64,
        distance_km: 12.5,
        energy_out_kwh: 2.0,
        energy_in_kwh: 0.25,
        soc_start_pct: 80.0,
        soc_end_pct: 76.5,
        cell_temp_max_c: 61.5,
    };
    // The alert of api_with is raised at T0: inside the first trip.
    api.history.insert_trips(
        &v,
        vec![
            trip(T0_US - 600_000_000, T0_US + 60_000_000),
            trip(T0_US + 3_600_000_000, T0_US + 4_200_000_000),
        ],
    );
    let (status, body) = get(
        &api,
        "/vehicles/veh-001/trips?from=2023-11-14T21:00:00Z&to=2023-11-15T00:00:00Z&gap_s=120",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["gap_s"], 120);
    let trips = body["trips"].as_array().unwrap();
    assert_eq!(trips.len(), 2);
    assert_eq!(trips[0]["start"], "2023-11-14T22:03:20.000Z");
    assert_eq!(trips[0]["duration_s"], 660.0);
    assert_eq!(trips[0]["distance_km"], 12.5);
    assert_eq!(trips[0]["alerts"][0]["rule"], "over-temperature");
    assert!(trips[1]["alerts"].as_array().unwrap().is_empty());

    let (status, body) = get(&api, "/vehicles/veh-001/trips?gap_s=1").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("gap_s"))
    );
    let (status, _) = get(&api, "/vehicles/veh-001/trips?gap_s=soon").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    api.history.faults.fail_next_of("trips", 1);
    assert_eq!(get(&api, "/vehicles/veh-001/trips").await.0, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn stations_are_listed_a_page_at_a_time() {
    let api = api().await;
    let (status, body) = get(&api, "/stations?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<&str> = body["stations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["station_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["st-01", "st-02"]);
    assert_eq!(body["next"], "st-02");
    let (_, rest) = get(&api, "/stations?limit=2&after=st-02").await;
    assert_eq!(rest["stations"][0]["station_id"], "st-03");
    assert_eq!(rest["next"], Value::Null);
}

#[tokio::test]
async fn a_station_is_read_from_its_declaration_and_only_a_stations_id_finds_one() {
    let api = api().await;
    let (status, one) = get(&api, "/stations/st-01").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (one["kind"].as_str(), one["batteries_available"].as_i64()),
        (Some("station"), Some(0))
    );
    assert_eq!(one["slot_temp_c"], serde_json::json!([25.5, 31.0]));
    let (status, missing) = get(&api, "/stations/st-99").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no station st-99")
    );
    // A vehicle's id is not a station's.
    assert_eq!(get(&api, "/stations/veh-001").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_stations_alerts_come_from_the_same_log_under_its_own_stream() {
    let api = api().await;
    let mut alert = alert(&DeviceId::new("st-01").unwrap(), 3, 60);
    alert.kind = Some("station".into());
    alert.rule = "no-charged-battery".into();
    record(&api, &alert).await;
    let (_, alerts) = get(&api, "/stations/st-01/alerts").await;
    assert_eq!(alerts["alerts"][0]["rule"], "no-charged-battery", "{alerts}");
    assert_eq!(alerts["alerts"][0]["device_id"], "st-01");
    assert!(
        get(&api, "/stations/st-02/alerts").await.1["alerts"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        get(&api, "/vehicles/veh-001/alerts").await.1["alerts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_stations_declared_field_is_charted_with_exact_statistics_and_no_other_is() {
    let api = api().await;
    // A day of a field: reduced by LTTB, statistics exact over every value.
    let id = DeviceId::new("st-01").unwrap();
    let values: Vec<f64> = (0..2880).map(|i| ((i * 7) % 9) as f64).collect();
    api.history.insert_device(
        "station",
        &id,
        "batteries_available",
        values.iter().enumerate().map(|(i, v)| Point {
            ts_us: T0_US + i as i64 * 30_000_000,
            value: *v,
        }),
    );
    let uri =
        "/stations/st-01/history/batteries_available?from=2023-11-14T22:13:20Z&to=2023-11-15T22:13:20Z&max_points=100";
    let (status, chart) = get(&api, uri).await;
    assert_eq!(status, StatusCode::OK, "{chart}");
    assert_eq!(chart["points"].as_array().unwrap().len(), 100);
    assert_eq!(chart["stats"]["count"], 2880);
    let mean = values.iter().sum::<f64>() / 2880.0;
    assert!((chart["stats"]["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert_eq!(
        (chart["stats"]["min"].as_f64(), chart["stats"]["max"].as_f64()),
        (Some(0.0), Some(8.0))
    );
    // A list field, or one not declared, has no history: a missing resource.
    for field in ["slot_temp_c", "pressure_bar"] {
        let (status, body) = get(&api, &format!("/stations/st-01/history/{field}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{field}: {body}");
        assert_eq!(body["error"]["field"], "field");
    }
    assert_eq!(
        get(&api, "/stations/st-01/history/batteries_available?max_points=2")
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

/// A range is answered whatever its ends: one longer than 31 days is cut to
/// the 31 days before `to`, one that ends before it starts is empty and
/// runs no query.
#[tokio::test]
async fn every_range_is_answered_cut_to_31_days_or_empty() {
    let api = api().await;
    let history = "/vehicles/veh-001/signals/BMS_PackStatus/PackCurrent";
    let (status, body) = get(
        &api,
        &format!("{history}?from=2000-01-01T00:00:00Z&to=2023-11-15T00:00:00Z"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["to_us"].as_i64().unwrap() - body["from_us"].as_i64().unwrap(),
        crate::history::MAX_RANGE_US
    );
    assert!(!body["series"]["points"].as_array().unwrap().is_empty(), "{body}");

    api.history.faults.fail_next(1);
    let backwards = "from=2023-11-15T00:00:00Z&to=2023-11-14T00:00:00Z";
    let (status, body) = get(&api, &format!("{history}?{backwards}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["from_us"], body["to_us"]);
    assert_eq!(body["series"]["points"], serde_json::json!([]));
    assert_eq!(body["series"]["stats"], Value::Null);
    let (status, body) = get(&api, &format!("/vehicles/veh-001/trips?{backwards}")).await;
    assert_eq!(
        (status, &body["trips"]),
        (StatusCode::OK, &serde_json::json!([])),
        "{body}"
    );
    let field = "/stations/st-01/history/batteries_available";
    let (status, body) = get(&api, &format!("{field}?{backwards}")).await;
    assert_eq!(
        (status, &body["points"]),
        (StatusCode::OK, &serde_json::json!([])),
        "{body}"
    );
    // No query ran for them: the fault set above is still waiting for one.
    assert_eq!(get(&api, history).await.0, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn the_fleet_pages_in_id_order_and_searches_by_prefix_one_read_per_partition_and_page() {
    let api = api().await;
    for i in 0..2_000 {
        heard(&api, &telemetry(&DeviceId::new(format!("fleet-{i:05}")).unwrap(), 1, 0)).await;
    }
    let ids = |body: &Value| -> Vec<String> {
        (body["vehicles"].as_array().unwrap().iter())
            .map(|v| v["vehicle_id"].as_str().unwrap().to_string())
            .collect()
    };
    let reads = || {
        (
            api.directory.faults.calls("list_query"),
            api.state.faults.calls("get_many"),
        )
    };
    let before = reads();
    let (status, body) = get(&api, "/vehicles?prefix=fleet-012&limit=3").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body), ["fleet-01200", "fleet-01201", "fleet-01202"]);
    let after = reads();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (8, 1),
        "a partition query each, one batch of states"
    );
    let next = body["next"].as_str().unwrap();
    let (_, body) = get(&api, &format!("/vehicles?prefix=fleet-012&limit=3&after={next}")).await;
    assert_eq!(ids(&body), ["fleet-01203", "fleet-01204", "fleet-01205"]);
    let (_, body) = get(&api, "/vehicles?prefix=fleet-0199&limit=100").await;
    assert_eq!(ids(&body).len(), 10);
    assert!(body["next"].is_null(), "the search's last page: {body}");
    let (_, body) = get(&api, "/vehicles?limit=2").await;
    assert_eq!(ids(&body), ["fleet-00000", "fleet-00001"], "id order from the start");
    let (status, body) = get(&api, "/vehicles?prefix=fleet~").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("prefix")),
        "{body}"
    );
}

#[tokio::test]
async fn fleet_counts_are_the_callers_groups_read_as_one_batch_per_view() {
    let api = Arc::new(api_with(grouped(), HistoryQuota { per_minute: 100 }).await);
    // veh-002 stands still, charging.
    let charging = canopy::domain::telemetry::Telemetry {
        speed_kph: 0.0,
        pack_current_a: -40.0,
        ..telemetry(&DeviceId::new("veh-002").unwrap(), 9, 60)
    };
    heard(&api, &charging).await;
    let (status, body, _) = signed_in(&api, "u-admin", Some("[fleet-admin]"), "/fleet/counts").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"total": 2, "driving": 1, "charging": 1, "parked": 0, "silent": 0, "alerting": 0})
    );
    let before = api.directory.faults.calls("counts");
    let (_, body, _) = signed_in(&api, "u-south", Some("[viewer south]"), "/fleet/counts").await;
    assert_eq!(
        body,
        json!({"total": 1, "driving": 0, "charging": 1, "parked": 0, "silent": 0, "alerting": 0})
    );
    assert_eq!(
        api.directory.faults.calls("counts") - before,
        1,
        "one read of the group's view"
    );
    let (status, _, _) = signed_in(&api, "u-none", None, "/fleet/counts").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_fleet_lists_the_vehicles_of_one_status() {
    let api = api().await;
    let charging = canopy::domain::telemetry::Telemetry {
        speed_kph: 0.0,
        pack_current_a: -40.0,
        ..telemetry(&DeviceId::new("veh-003").unwrap(), 9, 60)
    };
    heard(&api, &charging).await;
    let listed = |body: &Value| -> Vec<String> {
        (body["vehicles"].as_array().unwrap().iter())
            .map(|v| v["vehicle_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, body) = get(&api, "/vehicles?status=charging").await;
    assert_eq!(listed(&body), ["veh-003"]);
    let (_, body) = get(&api, "/vehicles?status=driving").await;
    assert_eq!(listed(&body), ["veh-001", "veh-002"]);
    let (_, body) = get(&api, "/vehicles?status=silent").await;
    assert_eq!(listed(&body), Vec::<String>::new());
    // Tripping a rule adds a vehicle to the alerting ones, beside its status.
    let views = api.api.access.vehicle_groups.views_of("veh-002");
    let tripped = canopy::domain::standing::Standing::of(&telemetry(&DeviceId::new("veh-002").unwrap(), 9, 61));
    api.directory
        .alerted(&DeviceId::new("veh-002").unwrap(), &views, tripped)
        .await
        .unwrap();
    let (_, body) = get(&api, "/vehicles?status=alerting").await;
    assert_eq!(listed(&body), ["veh-002"]);
    let (_, body) = get(&api, "/vehicles?status=driving").await;
    assert_eq!(listed(&body), ["veh-001", "veh-002"]);
    let (_, body) = get(&api, "/fleet/counts").await;
    assert_eq!(
        (body["alerting"].as_i64(), body["total"].as_i64()),
        (Some(1), Some(3)),
        "{body}"
    );
    let (status, body) = get(&api, "/vehicles?status=asleep").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("status")),
        "{body}"
    );
}

#[tokio::test]
async fn the_fleet_sorts_by_state_of_charge_either_way_in_pages_and_only_within_scope() {
    let access = AccessPolicy {
        vehicle_groups: VehicleGroups::parse("north=veh-001*;south=veh-002*").unwrap(),
        identity_required: true,
    };
    let api = Arc::new(api_with(access, HistoryQuota { per_minute: 100 }).await);
    // veh-001 and veh-002 stand at 79 % (the fixtures' 80 less a little).
    for (id, soc) in [
        ("veh-001a", 12.5),
        ("veh-001b", 95.0),
        ("veh-002a", 3.0),
        ("veh-002b", 99.9),
    ] {
        let t = canopy::domain::telemetry::Telemetry {
            soc_pct: soc,
            ..telemetry(&DeviceId::new(id).unwrap(), 9, 60)
        };
        heard(&api, &t).await;
    }
    let listed = |body: &Value| -> Vec<String> {
        (body["vehicles"].as_array().unwrap().iter())
            .map(|v| v["vehicle_id"].as_str().unwrap().to_string())
            .collect()
    };
    let admin = |uri: String| {
        let api = api.clone();
        async move { signed_in(&api, "u-admin", Some("[fleet-admin]"), &uri).await }
    };
    let (status, first, _) = admin("/vehicles?sort=-soc_pct&limit=2".into()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(listed(&first), ["veh-002b", "veh-001b"], "highest first");
    let next = first["next"].as_str().unwrap();
    let (_, second, _) = admin(format!("/vehicles?sort=-soc_pct&limit=2&after={next}")).await;
    assert_eq!(listed(&second), ["veh-002", "veh-001"], "ties by id, reversed");
    let next = second["next"].as_str().unwrap();
    let (_, last, _) = admin(format!("/vehicles?sort=-soc_pct&limit=2&after={next}")).await;
    assert_eq!(
        (listed(&last), &last["next"]),
        (vec!["veh-001a".to_string(), "veh-002a".to_string()], &Value::Null)
    );
    let (_, lowest, _) = admin("/vehicles?sort=soc_pct&limit=1".into()).await;
    assert_eq!(listed(&lowest), ["veh-002a"], "lowest first");

    let (_, north, _) = signed_in(&api, "u-north", Some("[viewer north]"), "/vehicles?sort=soc_pct").await;
    assert_eq!(
        listed(&north),
        ["veh-001a", "veh-001", "veh-001b"],
        "a group's own vehicles, sorted"
    );

    let (status, body, _) = admin(format!("/vehicles?sort=cell_temp_max_c&after={next}")).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("after")),
        "the cursor of another order: {body}"
    );
    let (status, body, _) = admin(format!("/vehicles?after={next}")).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("after")),
        "{body}"
    );
    let (status, body, _) = admin("/vehicles?sort=soc_pct&status=parked".into()).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("sort")),
        "{body}"
    );
    let (status, body, _) = admin("/vehicles?sort=range".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn raw_frames_go_out_as_a_log_attachment_and_bad_windows_are_refused() {
    use canopy::format::frame::{CanFrame, CanId, FrameFlags};
    let api = api().await;
    let t0 = 1_700_000_000_000_000;
    let mut writer = canopy::format::lake::raw::RawWriter::new(Vec::new(), "test").unwrap();
    for i in 0..100 {
        let id = CanId::standard(0x100 + (i % 2)).unwrap();
        let frame = CanFrame::new(
            t0 + i64::from(i) * 1_000,
            "can0".into(),
            id,
            FrameFlags::empty(),
            &[1, 2],
        )
        .unwrap();
        writer.push(frame).unwrap();
    }
    let (body, _) = writer.finish().unwrap();
    let vehicle = DeviceId::new("veh-001").unwrap();
    let key = canopy::format::lake::keys::RawKey::new(vehicle, t0, 1).raw_key();
    api.raw.put(&key, body);
    let uri = "/vehicles/veh-001/raw?from=2023-11-14T22:13:20Z&to=2023-11-14T22:14:20Z&ids=101&format=asc";
    let (status, headers, log) = raw(&api, Request::get(uri).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&log));
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"veh-001_20231114T221320Z.asc\""
    );
    assert_eq!(headers[crate::routes::raw::FRAMES_HEADER], "50");
    assert!(!headers.contains_key(crate::routes::raw::NEXT_FROM_HEADER));
    let text = String::from_utf8(log).unwrap();
    assert_eq!(text.lines().filter(|l| l.contains(" 101 ")).count(), 50, "{text}");

    for (query, field) in [
        ("format=mf4", "format"),
        ("ids=1x", "ids"),
        ("ids=20000000", "ids"),
        ("bus=can%200", "bus"),
        ("from=yesterday", "from"),
    ] {
        let (status, body) = get(&api, &format!("/vehicles/veh-001/raw?{query}")).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{query}: {body}"
        );
    }
    // Two days are answered a day at a time.
    let uri = "/vehicles/veh-001/raw?from=2023-11-14T00:00:00Z&to=2023-11-16T00:00:00Z";
    let (status, headers, log) = raw(&api, Request::get(uri).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[crate::routes::raw::FRAMES_HEADER], "100");
    assert_eq!(
        headers[crate::routes::raw::NEXT_FROM_HEADER],
        "2023-11-15T00:00:00.000000Z"
    );
    assert_eq!(String::from_utf8(log).unwrap().lines().count(), 100);
    let (status, headers, log) = raw(&api, Request::get("/vehicles/veh-999/raw").body(Body::empty()).unwrap()).await;
    assert_eq!((status, log.len()), (StatusCode::OK, 0));
    assert_eq!(headers[crate::routes::raw::FRAMES_HEADER], "0");
}
