//! Telemetry messages for tests: one valid v1 message with ordinary values,
//! and what a test is about set on top of it.

use chrono::{DateTime, SecondsFormat};
use serde_json::{Value, json};

/// A valid v1 telemetry message of `vehicle`, sequence `seq`, at `ts_s`
/// (whole seconds since the epoch), every measure at an ordinary value.
pub fn telemetry(vehicle: &str, seq: u64, ts_s: i64) -> Value {
    let ts = DateTime::from_timestamp(ts_s, 0)
        .unwrap_or_else(|| panic!("{ts_s} s is outside chrono's range"))
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    json!({"v": 1, "vehicle_id": vehicle, "ts": ts, "seq": seq,
        "soc_pct": 80.0, "pack_voltage_v": 380.0, "pack_current_a": 10.0,
        "cell_voltage_min_v": 3.9, "cell_voltage_max_v": 3.95,
        "cell_temp_min_c": 25.0, "cell_temp_max_c": 31.0, "speed_kph": 50.0})
}

/// `message` with each field of `fields` (an object) set: added, or
/// replacing its value.
pub fn with(mut message: Value, fields: Value) -> Value {
    match (message.as_object_mut(), fields) {
        (Some(message), Value::Object(fields)) => message.extend(fields),
        (_, fields) => panic!("set fields of a message with an object of them, not {fields}"),
    }
    message
}
