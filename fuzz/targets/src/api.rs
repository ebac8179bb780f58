//! The API's requests as a client may send them: any path, query string and
//! body through the real router (memory adapters, data in them) answers a
//! JSON error or a result, never a panic and never a 5xx.
//!
//! Input: `<METHOD> <path and query>\n<body>`, the shape of the seeds.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use canopy::adapters::contract::{alert, telemetry};
use canopy::adapters::memory::{
    MemoryAlertLog, MemoryDeviceStateTable, MemoryDirectory, MemoryQuotaCounter, MemoryStateTable,
};
use canopy::domain::access::View;
use canopy::domain::device_id::DeviceId;
use canopy::domain::kind::Kinds;
use canopy::domain::lttb::Point;
use canopy::domain::standing::Standing;
use canopy::ports::alert_log::AlertLog;
use canopy::ports::directory::VehicleDirectory;
use canopy::ports::state::LatestStateStore;
use canopy_api::access::AccessPolicy;
use canopy_api::history::SignalRef;
use canopy_api::history::memory::MemoryHistory;
use canopy_api::quota::HistoryQuota;
use canopy_api::{Api, catalogs, router};
use tower::ServiceExt;

/// veh-001 with state, an alert and a day of PackCurrent at 1 Hz; veh-002 with state.
fn api(runtime: &tokio::runtime::Runtime) -> Arc<Api> {
    let history = Arc::new(MemoryHistory::default());
    let state = Arc::new(MemoryStateTable::default());
    let directory = Arc::new(MemoryDirectory::default());
    let alerts = Arc::new(MemoryAlertLog::default());
    let api = Api {
        history: history.clone(),
        raw: Arc::new(canopy_api::raw::MemoryRaw::default()),
        state: state.clone(),
        directory: directory.clone(),
        alerts: alerts.clone(),
        devices: Arc::new(MemoryDeviceStateTable::default()),
        kinds: Kinds::builtin(),
        catalogs: Box::new(Arc::new(catalogs::built_in().expect("the built-in DBC"))),
        access: AccessPolicy::default(),
        quota_counter: Arc::new(MemoryQuotaCounter::default()),
        // The fuzzer sends millions of history requests a minute.
        history_quota: HistoryQuota { per_minute: u32::MAX },
        console: Default::default(),
        history_deadline: Duration::from_secs(25),
        cursors: canopy_api::cursor::Cursors::ephemeral(),
    };
    let v = DeviceId::new("veh-001").expect("an id");
    let other = DeviceId::new("veh-002").expect("an id");
    runtime.block_on(async {
        for id in [&v, &other] {
            let standing = Standing::of(&telemetry(id, 1, 1_700_000_000));
            directory.enter(id, &[View::All], standing).await.expect("memory");
        }
        state
            .put_if_newer(&telemetry(&v, 7, 1_700_000_000), 1)
            .await
            .expect("memory");
        state
            .put_if_newer(&telemetry(&other, 3, 1_700_000_000), 1)
            .await
            .expect("memory");
        alerts
            .record(&alert(&v, 7, 1_700_000_000), &[View::All], 2_000_000_000)
            .await
            .expect("memory");
    });
    let signal = SignalRef {
        message_name: "BMS_PackStatus".into(),
        signal_name: "PackCurrent".into(),
    };
    history.insert(
        &v,
        &signal,
        (0..86_400).map(|i| Point {
            ts_us: 1_700_000_000_000_000 + i * 1_000_000,
            value: (i % 600) as f64,
        }),
    );
    Arc::new(api)
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    api: Arc<Api>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let api = api(&runtime);
        Fixture { runtime, api }
    })
}

pub fn run(data: &[u8]) {
    let (head, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(head) = std::str::from_utf8(head) else { return };
    let Some((method, uri)) = head.split_once(' ') else {
        return;
    };
    let method = match method {
        "GET" => Method::GET,
        "POST" => Method::POST,
        _ => return,
    };
    let Ok(request) = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
    else {
        return;
    };
    // The console's page and files are the only answers that are not JSON.
    let path = request.uri().path();
    let console = path == "/" || path == "/docs" || path.starts_with("/assets/");
    let Fixture { runtime, api } = fixture();
    let (status, bytes) = runtime.block_on(async {
        let response = router(api.clone())
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 26)
            .await
            .expect("a body in memory");
        (status, bytes)
    });
    assert!(
        !status.is_server_error(),
        "{head}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    if !console && status != axum::http::StatusCode::NOT_MODIFIED {
        assert!(
            serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
            "{head}: {status} answered with a body that is not JSON"
        );
    }
}
