//! Each vehicle's own catalog, end to end on the local stack: a vehicle with
//! its own DBC (a message the fleet's lacks) has that message decoded by the
//! decoder, listed by the API and charted through it; other vehicles do not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use canopy::adapters::aws::s3::S3Store;
use canopy::domain::vehicle::VehicleId;
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
    let vehicle = VehicleId::new("veh-own").unwrap();
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
    let raw = RawKey::new(vehicle.clone(), start_us, 1);
    store
        .put(&raw.raw_key(), Bytes::from(fixtures::raw_file(&frames)), None)
        .await
        .unwrap();
    let started = Instant::now();
    while store.exists(&raw.decoded_key()).await.unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(90), "not decoded in 90 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

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
