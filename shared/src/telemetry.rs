//! The telemetry message, version 1: what the edge publishes to
//! `dt/canopy/<vehicle_id>/bms` once per interval and what the cloud accepts.
//!
//! ```json
//! {"v":1,"vehicle_id":"sim-001","ts":"2023-11-14T22:13:20.000Z","seq":42,
//!  "soc_pct":81.5,"pack_voltage_v":386.2,"pack_current_a":-12.3,
//!  "cell_voltage_min_v":3.951,"cell_voltage_max_v":4.012,
//!  "cell_temp_min_c":24.5,"cell_temp_max_c":31.0,"speed_kph":54.2}
//! ```
//! Levels are the latest values of the interval; the cell extremes are the
//! extremes over it, so a spike shorter than the interval still reaches the
//! alert rule. Unknown fields are kept (the archive stores them); a missing
//! field or a wrong type is a [`Rejection`] naming the field.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::vehicle::VehicleId;

pub const VERSION: u64 = 1;

/// The numeric fields, in message order.
pub const MEASURES: [&str; 8] = [
    "soc_pct",
    "pack_voltage_v",
    "pack_current_a",
    "cell_voltage_min_v",
    "cell_voltage_max_v",
    "cell_temp_min_c",
    "cell_temp_max_c",
    "speed_kph",
];

/// An optional field of v1 (kept with the unknown ones): the widest spread
/// between the highest and lowest cell voltage within one BMS frame over the
/// interval. `cell_voltage_max_v - cell_voltage_min_v` mixes moments (a sag
/// under load moves both extremes) and so overstates imbalance.
pub const CELL_VOLTAGE_SPREAD: &str = "cell_voltage_spread_v";

/// MQTT topic a vehicle publishes telemetry to (AWS's `dt/<app>/<thing>/<kind>` pattern).
pub fn topic(vehicle: &VehicleId) -> String {
    format!("dt/canopy/{vehicle}/bms")
}

/// MQTT topic a vehicle receives alerts on.
pub fn alert_topic(vehicle: &VehicleId) -> String {
    format!("cmd/canopy/{vehicle}/alert")
}

/// A valid telemetry message.
#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    pub vehicle_id: VehicleId,
    pub ts: DateTime<Utc>,
    pub seq: u64,
    pub soc_pct: f64,
    pub pack_voltage_v: f64,
    pub pack_current_a: f64,
    pub cell_voltage_min_v: f64,
    pub cell_voltage_max_v: f64,
    pub cell_temp_min_c: f64,
    pub cell_temp_max_c: f64,
    pub speed_kph: f64,
    /// Fields v1 does not define (and what the IoT rule adds, like `received_at`).
    pub extra: BTreeMap<String, Value>,
}

/// Why a message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Rejection {
    pub reason: String,
}

fn reject(reason: impl Into<String>) -> Rejection {
    Rejection { reason: reason.into() }
}

impl Telemetry {
    /// Validates a parsed JSON message.
    pub fn from_json(value: &Value) -> Result<Self, Rejection> {
        let object = value
            .as_object()
            .ok_or_else(|| reject("message is not a JSON object"))?;
        match object.get("v") {
            None => return Err(reject("missing field v")),
            Some(v) if v.as_u64() == Some(VERSION) => {}
            Some(v) => return Err(reject(format!("unsupported version v={v}; this accepts v=1"))),
        }
        let vehicle = match object.get("vehicle_id") {
            None => return Err(reject("missing field vehicle_id")),
            Some(Value::String(s)) => {
                VehicleId::new(s.clone()).map_err(|e| reject(format!("field vehicle_id: {e}")))?
            }
            Some(other) => {
                return Err(reject(format!(
                    "field vehicle_id must be a string, found {}",
                    kind(other)
                )));
            }
        };
        let ts = match object.get("ts") {
            None => return Err(reject("missing field ts")),
            Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
                .map_err(|e| reject(format!("field ts {s:?} is not an RFC 3339 time: {e}")))?
                .with_timezone(&Utc),
            Some(other) => {
                return Err(reject(format!(
                    "field ts must be an RFC 3339 string, found {}",
                    kind(other)
                )));
            }
        };
        let seq = match object.get("seq") {
            None => return Err(reject("missing field seq")),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| reject(format!("field seq must be a non-negative integer, found {v}")))?,
        };
        let mut measures = [0.0; MEASURES.len()];
        for (slot, name) in measures.iter_mut().zip(MEASURES) {
            *slot = match object.get(name) {
                None => return Err(reject(format!("missing field {name}"))),
                Some(Value::Number(n)) => n
                    .as_f64()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| reject(format!("field {name} is not a finite number")))?,
                Some(other) => return Err(reject(format!("field {name} must be a number, found {}", kind(other)))),
            };
        }
        let [
            soc_pct,
            pack_voltage_v,
            pack_current_a,
            cell_voltage_min_v,
            cell_voltage_max_v,
            cell_temp_min_c,
            cell_temp_max_c,
            speed_kph,
        ] = measures;
        if !(0.0..=100.0).contains(&soc_pct) {
            return Err(reject(format!("field soc_pct {soc_pct} is outside 0..100")));
        }
        if cell_voltage_min_v > cell_voltage_max_v {
            return Err(reject("cell_voltage_min_v is above cell_voltage_max_v"));
        }
        if cell_temp_min_c > cell_temp_max_c {
            return Err(reject("cell_temp_min_c is above cell_temp_max_c"));
        }
        let known = |k: &str| k == "v" || k == "vehicle_id" || k == "ts" || k == "seq" || MEASURES.contains(&k);
        let extra = object
            .iter()
            .filter(|(k, _)| !known(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Self {
            vehicle_id: vehicle,
            ts,
            seq,
            soc_pct,
            pack_voltage_v,
            pack_current_a,
            cell_voltage_min_v,
            cell_voltage_max_v,
            cell_temp_min_c,
            cell_temp_max_c,
            speed_kph,
            extra,
        })
    }

    /// Parses and validates message text.
    pub fn parse(text: &str) -> Result<Self, Rejection> {
        let value: Value = serde_json::from_str(text).map_err(|e| reject(format!("message is not JSON: {e}")))?;
        Self::from_json(&value)
    }

    /// The value of a numeric field by name (`soc_pct`, ...).
    pub fn measure(&self, name: &str) -> Option<f64> {
        Some(match name {
            "soc_pct" => self.soc_pct,
            "pack_voltage_v" => self.pack_voltage_v,
            "pack_current_a" => self.pack_current_a,
            "cell_voltage_min_v" => self.cell_voltage_min_v,
            "cell_voltage_max_v" => self.cell_voltage_max_v,
            "cell_temp_min_c" => self.cell_temp_min_c,
            "cell_temp_max_c" => self.cell_temp_max_c,
            "speed_kph" => self.speed_kph,
            _ => return None,
        })
    }

    /// Microseconds since the epoch of `ts`.
    pub fn ts_us(&self) -> i64 {
        self.ts.timestamp_micros()
    }

    /// The message as JSON, unknown fields included.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("v".into(), VERSION.into());
        object.insert("vehicle_id".into(), self.vehicle_id.as_str().into());
        object.insert("ts".into(), self.ts.to_rfc3339_opts(SecondsFormat::Millis, true).into());
        object.insert("seq".into(), self.seq.into());
        for name in MEASURES {
            let value = self.measure(name).unwrap_or_default();
            object.insert(
                name.into(),
                serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number),
            );
        }
        for (k, v) in &self.extra {
            object.insert(k.clone(), v.clone());
        }
        Value::Object(object)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({"v":1,"vehicle_id":"sim-001","ts":"2023-11-14T22:13:20.000Z","seq":42,"soc_pct":81.5,
               "pack_voltage_v":386.2,"pack_current_a":-12.3,"cell_voltage_min_v":3.951,"cell_voltage_max_v":4.012,
               "cell_temp_min_c":24.5,"cell_temp_max_c":31.0,"speed_kph":54.2})
    }

    #[test]
    fn a_valid_message_round_trips_and_keeps_unknown_fields() {
        let mut v = valid();
        v["received_at"] = json!(1_700_000_000_123u64);
        v["firmware"] = json!("1.2.3");
        let t = Telemetry::from_json(&v).unwrap();
        assert_eq!(t.seq, 42);
        assert_eq!(t.ts_us(), 1_700_000_000_000_000);
        assert_eq!(t.measure("cell_temp_max_c"), Some(31.0));
        assert_eq!(t.extra.len(), 2);
        assert_eq!(t.to_json(), v);
    }

    #[test]
    fn invalid_messages_are_rejected_with_a_reason_naming_the_field() {
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|v| drop(v.as_object_mut().unwrap().remove("soc_pct"))),
                "missing field soc_pct",
            ),
            (
                Box::new(|v| v["speed_kph"] = json!("fast")),
                "field speed_kph must be a number, found a string",
            ),
            (
                Box::new(|v| v["v"] = json!(2)),
                "unsupported version v=2; this accepts v=1",
            ),
            (
                Box::new(|v| v["seq"] = json!(-1)),
                "field seq must be a non-negative integer, found -1",
            ),
            (
                Box::new(|v| v["vehicle_id"] = json!("a/b")),
                "field vehicle_id: invalid vehicle id \"a/b\"",
            ),
            (
                Box::new(|v| v["soc_pct"] = json!(140)),
                "field soc_pct 140 is outside 0..100",
            ),
            (
                Box::new(|v| v["cell_temp_min_c"] = json!(99)),
                "cell_temp_min_c is above cell_temp_max_c",
            ),
        ];
        for (mutate, reason) in cases {
            let mut v = valid();
            mutate(&mut v);
            let err = Telemetry::from_json(&v).unwrap_err();
            assert!(
                err.reason.starts_with(reason),
                "{} does not start with {reason}",
                err.reason
            );
        }
        assert_eq!(
            Telemetry::parse("{").unwrap_err().reason.split(':').next(),
            Some("message is not JSON")
        );
        assert!(
            Telemetry::parse(r#"{"v":1,"vehicle_id":"x","ts":"yesterday","seq":1}"#)
                .unwrap_err()
                .reason
                .contains("RFC 3339")
        );
    }

    #[test]
    fn topics_follow_the_design() {
        let v = VehicleId::new("sim-001").unwrap();
        assert_eq!(topic(&v), "dt/canopy/sim-001/bms");
        assert_eq!(alert_topic(&v), "cmd/canopy/sim-001/alert");
    }
}
