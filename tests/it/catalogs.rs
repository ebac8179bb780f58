//! Each vehicle's own catalog, end to end on the local stack: a vehicle with
//! its own DBC (a message the fleet's lacks) has that message decoded by the
//! decoder, listed by the API and charted through it; other vehicles do not.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use canopy::adapters::aws::s3::S3Store;
use canopy::domain::device_id::DeviceId;
use canopy::format::dbc::{self, Database};
use canopy::format::frame::CanFrame;
use canopy::format::lake::keys::RawKey;
use canopy::ports::store::ObjectStore;
use canopy_local::stack::Stack;
use canopy_tests::{fixtures, local};
use serde_json::{Value, json};

use crate::support::http;

/// The built-in DBC with one more message, `Pump_Status.PumpSpeed` in rpm.
fn own_dbc() -> String {
    String::from_utf8_lossy(dbc::BUILT_IN).replacen(
        "BO_ 256 ",
        "BO_ 1792 Pump_Status: 8 BMS\r\n SG_ PumpSpeed : 0|16@1+ (1,0) [0|8000] \"rpm\" Vector__XXX\r\n\r\nBO_ 256 ",
        1,
    )
}

/// One call to the stack's API: its status and JSON answer.
async fn api(stack: &Stack, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let request = http::request(method, &http::api(stack), path);
    let request = match body {
        Some(body) => request.json(body),
        None => request,
    };
    request.send().await.parts()
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

/// veh-own's own DBC in the bucket, and a minute of its pump at 10 Hz,
/// speeding up by 10 rpm a frame, decoded.
async fn seed_a_pump_drive(store: &S3Store) {
    let text = own_dbc();
    store
        .put("dbc/vehicles/veh-own.dbc", Bytes::from(text.clone()), None)
        .await
        .unwrap();
    let db = Database::from_bytes(text.as_bytes(), "own").unwrap();
    let pump = db.messages().iter().find(|m| m.name == "Pump_Status").unwrap();
    let frames: Vec<CanFrame> = (0..600)
        .map(|i| {
            let payload = pump.encode(|_, _| Some(f64::from(i * 10))).unwrap();
            fixtures::frame(PUMP_START_US + i64::from(i) * 100_000, pump, &payload)
        })
        .collect();
    let vehicle = DeviceId::new("veh-own").unwrap();
    upload_decoded(store, &RawKey::new(vehicle, PUMP_START_US, 1), &frames).await;
}

/// When [`seed_a_pump_drive`]'s drive starts: 2026-09-21T14:13:20Z.
const PUMP_START_US: i64 = 1_790_000_000_000_000;
/// The hour around it, as a query names it.
const PUMP_HOUR: &str = "from=2026-09-21T14:00:00Z&to=2026-09-21T15:00:00Z";

/// A query of the pump's hour, 100 points at most.
fn pump_query() -> Value {
    json!({
        "signals": [{"message_name": "Pump_Status", "signal_name": "PumpSpeed"}],
        "start_time": "2026-09-21T14:00:00Z",
        "end_time": "2026-09-21T15:00:00Z",
        "max_points": 100
    })
}

/// veh-own's signals are its DBC's, beside the fleet's; the fleet's lack the pump.
async fn check_own_signals_are_listed(stack: &Stack) {
    let (status, own) = api(stack, "GET", "/vehicles/veh-own/signals", None).await;
    assert_eq!(status, 200, "{own}");
    let own_names = names(&own);
    assert!(
        own_names.contains(&"Pump_Status.PumpSpeed".to_string()),
        "{own_names:?}"
    );
    assert!(own_names.contains(&"BMS_PackStatus.PackCurrent".to_string()));
    let (status, fleet) = api(stack, "GET", "/signals", None).await;
    assert_eq!(status, 200, "{fleet}");
    assert!(!names(&fleet).contains(&"Pump_Status.PumpSpeed".to_string()));
}

/// The pump's speed is charted for veh-own, by GET and by query.
async fn check_own_signal_is_charted(stack: &Stack) {
    let (status, body) = api(
        stack,
        "GET",
        &format!("/vehicles/veh-own/signals/Pump_Status/PumpSpeed?{PUMP_HOUR}&max_points=10000"),
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

    let (status, body) = api(stack, "POST", "/vehicles/veh-own/query", Some(&pump_query())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["series"][0]["stats"]["count"], 600);
}

/// Another vehicle decodes with the fleet's DBC, which has no pump.
async fn check_another_vehicle_has_no_pump(stack: &Stack) {
    let (status, body) = api(
        stack,
        "GET",
        &format!("/vehicles/veh-other/signals/Pump_Status/PumpSpeed?{PUMP_HOUR}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = api(stack, "POST", "/vehicles/veh-other/query", Some(&pump_query())).await;
    assert_eq!(status, 404, "{body}");
}

/// One stack for the whole story (starting one is what costs).
#[tokio::test]
async fn a_vehicle_with_its_own_dbc_is_decoded_listed_and_charted_by_its_own_signals() {
    let stack = local::own_stack().await;
    seed_a_pump_drive(&S3Store::new(&stack.sdk, &stack.bucket)).await;
    check_own_signals_are_listed(&stack).await;
    check_own_signal_is_charted(&stack).await;
    check_another_vehicle_has_no_pump(&stack).await;
}

/// The fleet's DBC with ranges a drive exceeds: pack current within ±40 A
/// and vehicle speed below 30 km/h.
fn narrow_dbc() -> String {
    String::from_utf8_lossy(dbc::BUILT_IN)
        .replacen("(0.1,0) [-1000|1000] \"A\"", "(0.1,0) [-40|40] \"A\"", 1)
        .replacen("(0.01,0) [0|250] \"km/h\"", "(0.01,0) [0|30] \"km/h\"", 1)
}

/// Three minutes of a simulated drive of one vehicle from `start_us`,
/// which knows nothing of the narrow ranges.
fn simulated_drive(start_us: i64) -> Vec<CanFrame> {
    let logs = tempfile::tempdir().unwrap();
    crate::e2e::simulate(logs.path(), 1, 180, start_us, &[]);
    let file = std::fs::File::open(logs.path().join("veh-001.log")).unwrap();
    canopy::format::candump::CandumpReader::new(std::io::BufReader::new(file), "log")
        .map(Result::unwrap)
        .collect()
}

/// Per "message.signal": how many values, and how many out of range.
type RangeCounts = BTreeMap<String, (u64, u64)>;

/// What the DBC `text` says of `frames`' values, value by value.
fn out_of_range_truth(text: &str, frames: &[CanFrame]) -> RangeCounts {
    let db = Database::from_bytes(text.as_bytes(), "narrow").unwrap();
    let mut truth = RangeCounts::new();
    let mut values = Vec::new();
    for frame in frames {
        let Some(message) = db.lookup(frame.id) else { continue };
        message.decode(frame.data(), &mut values).unwrap();
        for v in &values {
            let signal = &message.signals[usize::from(v.signal)];
            let entry = truth.entry(format!("{}.{}", message.name, signal.name)).or_default();
            entry.0 += 1;
            entry.1 += u64::from(signal.range().is_some_and(|r| r.excludes(v.value)));
        }
    }
    truth
}

/// The same counts, of veh-oor's values in the lake's decoded table.
async fn out_of_range_in_the_lake(stack: &Stack) -> RangeCounts {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{DataType, Int64Type};
    let history = canopy_api::history::datafusion::DataFusionHistory::s3(&stack.endpoint, &stack.bucket)
        .await
        .unwrap();
    let sql = canopy_api::history::Sql {
        text: "SELECT message, signal, count(*), sum(CASE WHEN out_of_range THEN 1 ELSE 0 END) FROM decoded \
               WHERE vehicle_id = 'veh-oor' GROUP BY 1, 2"
            .into(),
        params: vec![],
    };
    let mut lake = RangeCounts::new();
    for batch in history.run(&sql).await.unwrap() {
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
    lake
}

/// The API's statistics count `want` values out of range in veh-oor's pack
/// current over three minutes from `start_us`, from the decoded values and
/// from a tier alike.
async fn check_the_api_counts_them(stack: &Stack, start_us: i64, want: u64) {
    let iso = |us: i64| chrono::DateTime::from_timestamp_micros(us).unwrap().to_rfc3339();
    let range = format!("from={}&to={}", iso(start_us), iso(start_us + 180_000_000));
    for (max_points, source) in [(10_000, "decoded"), (10, "rollup_10s")] {
        let (status, body) = api(
            stack,
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
    let start_us = crate::e2e::recent_start_us();
    let frames = simulated_drive(start_us);
    let truth = out_of_range_truth(&text, &frames);
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
    assert_eq!(out_of_range_in_the_lake(&stack).await, truth);
    check_the_api_counts_them(&stack, start_us, truth["BMS_PackStatus.PackCurrent"].1).await;
}
