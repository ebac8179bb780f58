//! Each vehicle's own catalog, end to end on the local stack: a vehicle with
//! its own DBC (a message the fleet's lacks) has that message decoded by the
//! decoder, listed by the API and charted through it; other vehicles do not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use canopy::adapters::aws::s3::S3Store;
use canopy::domain::device_id::DeviceId;
use canopy::format::dbc::{self, Database};
use canopy::format::frame::{CanFrame, FrameFlags};
use canopy::format::lake::keys::RawKey;
use canopy::ports::store::ObjectStore;
use canopy_local::stack::Stack;
use canopy_tests::{fixtures, local};
use serde_json::{Value, json};

/// The built-in DBC with one more message, `Pump_Status.PumpSpeed` in rpm.
fn own_dbc() -> String {
    String::from_utf8_lossy(dbc::BUILT_IN).replacen(
        "BO_ 256 ",
        "BO_ 1792 Pump_Status: 8 BMS\r\n SG_ PumpSpeed : 0|16@1+ (1,0) [0|8000] \"rpm\" Vector__XXX\r\n\r\nBO_ 256 ",
        1,
    )
}

/// One call to the stack's API, off the runtime that serves it.
async fn api(stack: &Stack, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let (endpoint, method, path) = (format!("http://{}", stack.api), method.to_string(), path.to_string());
    let body = body.map(Value::to_string);
    let (status, text) =
        tokio::task::spawn_blocking(move || canopy_local::services::http(&endpoint, &method, &path, body.as_deref()))
            .await
            .unwrap()
            .unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Uploads `frames` as the raw object `raw`; returns once the decoder wrote its decoded object.
async fn upload_decoded(store: &S3Store, raw: &RawKey, frames: &[CanFrame]) {
    store
        .put(&raw.raw_key(), Bytes::from(fixtures::raw_file(frames)), None)
        .await
        .unwrap();
    let started = Instant::now();
    while store.exists(&raw.decoded_key()).await.unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(90), "not decoded in 90 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn names(body: &Value) -> Vec<String> {
    body["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}.{}", s["message"].as_str().unwrap(), s["signal"].as_str().unwrap()))
        .collect()
}

#[tokio::test]
async fn a_vehicle_with_its_own_dbc_is_decoded_listed_and_charted_by_its_own_signals() {
    let stack = local::own_stack().await;
    let store = S3Store::new(&stack.sdk, &stack.bucket);
    let vehicle = DeviceId::new("veh-own").unwrap();
    let text = own_dbc();
    store
        .put("dbc/vehicles/veh-own.dbc", Bytes::from(text.clone()), None)
        .await
        .unwrap();

    // 600 frames at 10 Hz, the pump speeding up by 10 rpm a frame.
    let db = Database::from_bytes(text.as_bytes(), "own").unwrap();
    let pump = db.messages().iter().find(|m| m.name == "Pump_Status").unwrap();
    let start_us = 1_790_000_000_000_000;
    let bus: Arc<str> = Arc::from("can0");
    let frames: Vec<CanFrame> = (0..600)
        .map(|i| {
            let payload = pump.encode(|_, _| Some(f64::from(i * 10))).unwrap();
            CanFrame::new(
                start_us + i64::from(i) * 100_000,
                bus.clone(),
                pump.id,
                FrameFlags::empty(),
                &payload,
            )
            .unwrap()
        })
        .collect();
    upload_decoded(&store, &RawKey::new(vehicle.clone(), start_us, 1), &frames).await;

    let (status, own) = api(&stack, "GET", "/vehicles/veh-own/signals", None).await;
    assert_eq!(status, 200, "{own}");
    let own_names = names(&own);
    assert!(
        own_names.contains(&"Pump_Status.PumpSpeed".to_string()),
        "{own_names:?}"
    );
    assert!(own_names.contains(&"BMS_PackStatus.PackCurrent".to_string()));
    let (status, fleet) = api(&stack, "GET", "/signals", None).await;
    assert_eq!(status, 200, "{fleet}");
    assert!(!names(&fleet).contains(&"Pump_Status.PumpSpeed".to_string()));

    let range = "from=2026-09-21T14:00:00Z&to=2026-09-21T15:00:00Z";
    let (status, body) = api(
        &stack,
        "GET",
        &format!("/vehicles/veh-own/signals/Pump_Status/PumpSpeed?{range}&max_points=10000"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let values: Vec<f64> = body["series"]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    // The chart reads a rollup tier (its points are each bucket's extremes);
    // its statistics are of every decoded value.
    assert!(values.len() > 100 && values.is_sorted(), "{} points", values.len());
    assert_eq!((values[0], values[values.len() - 1]), (0.0, 5990.0));
    let stats = &body["series"]["stats"];
    assert_eq!(
        (stats["count"].clone(), stats["min"].clone(), stats["max"].clone()),
        (json!(600), json!(0.0), json!(5990.0))
    );
    assert_eq!(body["series"]["unit"], "rpm");

    let query = json!({
        "signals": [{"message_name": "Pump_Status", "signal_name": "PumpSpeed"}],
        "start_time": "2026-09-21T14:00:00Z",
        "end_time": "2026-09-21T15:00:00Z",
        "max_points": 100
    });
    let (status, body) = api(&stack, "POST", "/vehicles/veh-own/query", Some(&query)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["series"][0]["stats"]["count"], 600);

    // Another vehicle decodes with the fleet's DBC, which has no pump.
    let (status, body) = api(
        &stack,
        "GET",
        &format!("/vehicles/veh-other/signals/Pump_Status/PumpSpeed?{range}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = api(&stack, "POST", "/vehicles/veh-other/query", Some(&query)).await;
    assert_eq!(status, 404, "{body}");
}

/// The fleet's DBC with ranges a drive exceeds: pack current within ±40 A
/// and vehicle speed below 30 km/h.
fn narrow_dbc() -> String {
    String::from_utf8_lossy(dbc::BUILT_IN)
        .replacen("(0.1,0) [-1000|1000] \"A\"", "(0.1,0) [-40|40] \"A\"", 1)
        .replacen("(0.01,0) [0|250] \"km/h\"", "(0.01,0) [0|30] \"km/h\"", 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn values_past_a_vehicles_dbc_ranges_are_stored_flagged_and_counted() {
    let stack = local::own_stack().await;
    let store = S3Store::new(&stack.sdk, &stack.bucket);
    let text = narrow_dbc();
    assert_ne!(text.as_bytes(), dbc::BUILT_IN, "the ranges were narrowed");
    store
        .put("dbc/vehicles/veh-oor.dbc", Bytes::from(text.clone()), None)
        .await
        .unwrap();

    // Three minutes of a simulated drive, which knows nothing of the narrow ranges.
    let logs = tempfile::tempdir().unwrap();
    let start_us = crate::e2e::recent_start_us();
    crate::e2e::simulate(logs.path(), 1, 180, start_us, &[]);
    let file = std::fs::File::open(logs.path().join("veh-001.log")).unwrap();
    let frames: Vec<CanFrame> = canopy::format::candump::CandumpReader::new(std::io::BufReader::new(file), "log")
        .map(Result::unwrap)
        .collect();
    // What the narrow DBC says lies out of range, value by value.
    let db = Database::from_bytes(text.as_bytes(), "narrow").unwrap();
    let mut truth: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    let mut values = Vec::new();
    for frame in &frames {
        let Some(message) = db.lookup(frame.id) else { continue };
        message.decode(frame.data(), &mut values).unwrap();
        for v in &values {
            let signal = &message.signals[usize::from(v.signal)];
            let entry = truth.entry(format!("{}.{}", message.name, signal.name)).or_default();
            entry.0 += 1;
            entry.1 += u64::from(signal.range().is_some_and(|r| r.excludes(v.value)));
        }
    }
    for signal in ["BMS_PackStatus.PackCurrent", "VCU_VehicleStatus.VehicleSpeed"] {
        let (n, out) = truth[signal];
        assert!(
            out > 0 && out < n,
            "{signal}: the drive goes past the range only some of the time ({out} of {n})"
        );
    }

    let raw = RawKey::new(DeviceId::new("veh-oor").unwrap(), frames[0].ts_us, 1);
    upload_decoded(&store, &raw, &frames).await;
    canopy_local::demo::wait_idle(&stack, Duration::from_secs(60))
        .await
        .unwrap();

    // Stored all the same, flagged in the lake: every value, and exactly those out of range.
    let history = canopy_api::history::datafusion::DataFusionHistory::s3(&stack.endpoint, &stack.bucket)
        .await
        .unwrap();
    let sql = canopy_api::history::Sql {
        text: "SELECT message, signal, count(*), sum(CASE WHEN out_of_range THEN 1 ELSE 0 END) FROM decoded \
               WHERE vehicle_id = 'veh-oor' GROUP BY 1, 2"
            .into(),
        params: vec![],
    };
    let mut lake: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for batch in history.run(&sql).await.unwrap() {
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::compute::cast;
        use datafusion::arrow::datatypes::{DataType, Int64Type};
        let text = |i: usize| cast(batch.column(i), &DataType::Utf8).unwrap();
        let number = |i: usize| cast(batch.column(i), &DataType::Int64).unwrap();
        let (m, s, n, o) = (text(0), text(1), number(2), number(3));
        for row in 0..batch.num_rows() {
            lake.insert(
                format!(
                    "{}.{}",
                    m.as_string::<i32>().value(row),
                    s.as_string::<i32>().value(row)
                ),
                (
                    n.as_primitive::<Int64Type>().value(row) as u64,
                    o.as_primitive::<Int64Type>().value(row) as u64,
                ),
            );
        }
    }
    assert_eq!(lake, truth);

    // The API's statistics count them, from the decoded values and from a tier alike.
    let iso = |us: i64| chrono::DateTime::from_timestamp_micros(us).unwrap().to_rfc3339();
    let range = format!("from={}&to={}", iso(start_us), iso(start_us + 180_000_000));
    let want = truth["BMS_PackStatus.PackCurrent"].1;
    for (max_points, source) in [(10_000, "decoded"), (10, "rollup_10s")] {
        let (status, body) = api(
            &stack,
            "GET",
            &format!("/vehicles/veh-oor/signals/BMS_PackStatus/PackCurrent?{range}&max_points={max_points}")
                .replace('+', "%2B"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let stats = &body["series"]["stats"];
        assert_eq!(stats["source"], source, "{stats}");
        assert_eq!(stats["out_of_range"], want, "{source}: {stats}");
    }
}
