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
//!
//! Version 2 carries several samples (the edge's 1 Hz samples of a publish
//! interval), each what a v1 message is without `v` and `vehicle_id`:
//!
//! ```json
//! {"v":2,"vehicle_id":"sim-001",
//!  "samples":[{"ts":"2023-11-14T22:13:20.000Z","seq":42,"soc_pct":81.5,…},
//!             {"ts":"2023-11-14T22:13:21.000Z","seq":43,"soc_pct":81.5,…}],
//!  "peak":{"cell_temp_max_c":31.0,"soc_pct":81.5,"cell_voltage_spread_v":0.061}}
//! ```
//! Sample `seq`s rise within a message. `peak` holds the extremes of the
//! samples that the alert rules compare (the highest temperature and spread,
//! the lowest state of charge), so the IoT rule's filter reads one field per
//! rule for either version; the functions decide from the samples. A bad
//! sample is refused alone ([`Message::rejected`], its field named
//! `samples[i].<field>`); a bad envelope refuses the message.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::domain::device::FieldValue;
use crate::domain::device_id::DeviceId;
use crate::domain::kind;
use crate::domain::measure::Measure;
use crate::domain::rejection::{Rejection, reject, reject_at};
use crate::domain::telemetry::{ClockBounds, Telemetry};
use crate::format::device::declared_values;
use crate::runtime::text::truncate_chars;

pub const VERSION: u64 = 1;

/// What the IoT rule adds to each message: when IoT Core received it (ms).
pub const RECEIVED_AT: &str = "received_at";
/// What the IoT rule adds to each message: the vehicle id of the topic it
/// came on (`topic(3)`), the one identity a vehicle cannot choose (its IoT
/// policy lets it publish only on its own topic). The rule refuses messages
/// that carry this field or [`RECEIVED_AT`] themselves, so both are the rule's.
pub const TOPIC_VEHICLE_ID: &str = "topic_vehicle_id";

/// Every field the server sets on a message and a device may never send:
/// the vehicle rule's, the device rule's (`topic_kind`, `topic_device_id`)
/// and the receive time. Each rule refuses a payload that carries any of
/// them, HTTP ingest too, so which rule a message came through is known
/// from them alone.
pub const SERVER_FIELDS: [&str; 4] = [
    TOPIC_VEHICLE_ID,
    crate::format::device::TOPIC_KIND,
    crate::format::device::TOPIC_DEVICE_ID,
    RECEIVED_AT,
];

impl Telemetry {
    /// Validates a parsed JSON message.
    pub fn from_json(value: &Value) -> Result<Self, Rejection> {
        let object = value
            .as_object()
            .ok_or_else(|| reject("message is not a JSON object"))?;
        check_version(object)?;
        let vehicle_id = vehicle_field(object)?;
        check_topic(object, &vehicle_id)?;
        let ts = time_field(object)?;
        let seq = seq_field(object)?;
        // Types, ranges and limits as kinds/vehicle.toml declares them.
        let values = declared_values(kind::vehicle(), object)?;
        let number = |m: Measure| values.get(m.name()).and_then(FieldValue::scalar);
        let mut required = [0.0; Measure::REQUIRED.len()];
        for (slot, m) in required.iter_mut().zip(Measure::REQUIRED) {
            *slot = number(m).ok_or_else(|| reject_at(m.name(), format!("missing field {m}")))?;
        }
        let mut t = Self::from_measures(vehicle_id, ts, seq, required);
        t.cell_voltage_spread_v = number(Measure::CellVoltageSpreadV);
        t.received_at_ms = received_at_field(object)?;
        t.extra = unknown_fields(object)?;
        Ok(t)
    }

    /// Parses and validates message text.
    pub fn parse(text: &str) -> Result<Self, Rejection> {
        let value: Value = serde_json::from_str(text).map_err(|e| reject(format!("message is not JSON: {e}")))?;
        Self::from_json(&value)
    }

    /// The message as JSON, unknown fields included.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("v".into(), VERSION.into());
        object.insert("vehicle_id".into(), self.vehicle_id.as_str().into());
        object.insert("ts".into(), self.ts.to_rfc3339_opts(SecondsFormat::Millis, true).into());
        object.insert("seq".into(), self.seq.into());
        for m in Measure::REQUIRED {
            object.insert(
                m.name().into(),
                serde_json::Number::from_f64(self.value(m)).map_or(Value::Null, Value::Number),
            );
        }
        if let Some(at) = self.received_at_ms {
            object.insert(RECEIVED_AT.into(), at.into());
        }
        object.extend(self.extra_with_optional());
        Value::Object(object)
    }
}

/// The version of a message of several samples.
pub const VERSION_SAMPLES: u64 = 2;
/// The most samples one v2 message may carry (five minutes at 1 Hz; about
/// 75 kB, under IoT Core's 128 kB).
pub const MAX_SAMPLES: usize = 300;
/// The v2 field of the samples' alert-relevant extremes.
pub const PEAK: &str = "peak";
/// The measures `peak` holds, and whether the lowest (`true`) or the highest is kept.
pub const PEAK_MEASURES: [(Measure, bool); 3] = [
    (Measure::CellTempMaxC, false),
    (Measure::SocPct, true),
    (Measure::CellVoltageSpreadV, false),
];

/// A message of either version, validated: its valid samples in order, and
/// the samples it refused (a v1 message is one sample, valid or refused whole).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub samples: Vec<Telemetry>,
    pub rejected: Vec<Rejection>,
}

impl Message {
    /// Parses and validates message text of either version.
    pub fn parse(text: &str) -> Result<Self, Rejection> {
        let value: Value = serde_json::from_str(text).map_err(|e| reject(format!("message is not JSON: {e}")))?;
        Self::from_json(&value)
    }

    /// Validates a parsed JSON message of either version. `Err` refuses the
    /// whole message (not an object, a bad version, vehicle or sample list).
    pub fn from_json(value: &Value) -> Result<Self, Rejection> {
        let object = value
            .as_object()
            .ok_or_else(|| reject("message is not a JSON object"))?;
        match object.get("v").and_then(Value::as_u64) {
            Some(VERSION_SAMPLES) => samples_message(object),
            _ => Ok(Self {
                samples: vec![Telemetry::from_json(value)?],
                rejected: Vec::new(),
            }),
        }
    }

    /// The message with the samples whose `ts` is outside `bounds` around
    /// the server's time moved to the refused ones.
    pub fn within_clock(mut self, bounds: ClockBounds, now_ms: i64) -> Self {
        let (ok, late): (Vec<Telemetry>, Vec<Telemetry>) = std::mem::take(&mut self.samples)
            .into_iter()
            .partition(|t| t.check_clock(bounds, now_ms).is_ok());
        self.rejected
            .extend(late.iter().filter_map(|t| t.check_clock(bounds, now_ms).err()));
        self.samples = ok;
        self
    }

    /// The valid samples, or why there are none: the first refusal.
    pub fn into_valid(self) -> Result<Vec<Telemetry>, Rejection> {
        match self.rejected.into_iter().next() {
            Some(rejection) if self.samples.is_empty() => Err(rejection),
            _ => Ok(self.samples),
        }
    }

    /// A v2 message of `samples` (one vehicle's, in order), with their peak.
    pub fn to_json(samples: &[Telemetry]) -> Value {
        let vehicle = samples.first().map_or("", |t| t.vehicle_id.as_str());
        let mut peak = Map::new();
        for (m, lowest) in PEAK_MEASURES {
            let values = samples.iter().map(|t| t.value(m));
            let extreme = if lowest {
                values.fold(f64::INFINITY, f64::min)
            } else {
                values.fold(f64::NEG_INFINITY, f64::max)
            };
            if let Some(n) = serde_json::Number::from_f64(extreme) {
                peak.insert(m.name().into(), Value::Number(n));
            }
        }
        let samples: Vec<Value> = samples
            .iter()
            .map(|t| {
                let mut sample = match t.to_json() {
                    Value::Object(o) => o,
                    _ => Map::new(),
                };
                sample.remove("v");
                sample.remove("vehicle_id");
                sample.remove(RECEIVED_AT);
                Value::Object(sample)
            })
            .collect();
        serde_json::json!({"v": VERSION_SAMPLES, "vehicle_id": vehicle, "samples": samples, PEAK: peak})
    }
}

/// The fields of a v2 message outside its samples.
const ENVELOPE: [&str; 6] = ["v", "vehicle_id", "samples", PEAK, TOPIC_VEHICLE_ID, RECEIVED_AT];

fn samples_message(object: &Object) -> Result<Message, Rejection> {
    let vehicle_id = vehicle_field(object)?;
    check_topic(object, &vehicle_id)?;
    if let Some(field) = object.keys().find(|k| !ENVELOPE.contains(&k.as_str())) {
        return Err(reject_at(
            truncate_chars(field, 80),
            format!(
                "field {:?} is not part of a v2 message (a sample's fields go inside samples)",
                truncate_chars(field, 80)
            ),
        ));
    }
    received_at_field(object)?;
    if let Some(peak) = object.get(PEAK).filter(|p| !p.is_object()) {
        return Err(reject_at(
            PEAK,
            format!("field peak must be an object, found {}", json_kind(peak)),
        ));
    }
    let samples = match object.get("samples") {
        None => return Err(reject_at("samples", "missing field samples")),
        Some(Value::Array(a)) if a.is_empty() => return Err(reject_at("samples", "field samples is empty")),
        Some(Value::Array(a)) if a.len() > MAX_SAMPLES => {
            return Err(reject_at(
                "samples",
                format!("field samples holds {} samples; at most {MAX_SAMPLES}", a.len()),
            ));
        }
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(reject_at(
                "samples",
                format!("field samples must be an array, found {}", json_kind(other)),
            ));
        }
    };
    let mut message = Message {
        samples: Vec::with_capacity(samples.len()),
        rejected: Vec::new(),
    };
    for (i, sample) in samples.iter().enumerate() {
        match sample_of(object, &vehicle_id, sample) {
            Ok(t) => {
                if let Some(previous) = message.samples.last()
                    && t.seq <= previous.seq
                {
                    return Err(reject_at(
                        &format!("samples[{i}].seq"),
                        format!(
                            "samples[{i}].seq {} is not above the previous sample's ({}): seqs rise within a message",
                            t.seq, previous.seq
                        ),
                    ));
                }
                message.samples.push(t);
            }
            Err(r) => message.rejected.push(Rejection {
                reason: format!("samples[{i}]: {}", r.reason),
                field: Some(match r.field {
                    Some(f) => format!("samples[{i}].{f}"),
                    None => format!("samples[{i}]"),
                }),
            }),
        }
    }
    Ok(message)
}

/// One sample of a v2 message, validated as the v1 message it stands for.
fn sample_of(envelope: &Object, vehicle_id: &DeviceId, sample: &Value) -> Result<Telemetry, Rejection> {
    let fields = sample
        .as_object()
        .ok_or_else(|| reject(format!("a sample must be a JSON object, found {}", json_kind(sample))))?;
    if let Some(field) = ["v", "vehicle_id", TOPIC_VEHICLE_ID, RECEIVED_AT]
        .into_iter()
        .find(|f| fields.contains_key(*f))
    {
        return Err(reject_at(
            field,
            format!("field {field} belongs to the message, not a sample"),
        ));
    }
    let mut v1 = fields.clone();
    v1.insert("v".into(), VERSION.into());
    v1.insert("vehicle_id".into(), vehicle_id.as_str().into());
    for field in [TOPIC_VEHICLE_ID, RECEIVED_AT] {
        if let Some(value) = envelope.get(field) {
            v1.insert(field.into(), value.clone());
        }
    }
    Telemetry::from_json(&Value::Object(v1))
}

pub(crate) type Object = Map<String, Value>;

fn check_version(object: &Object) -> Result<(), Rejection> {
    match object.get("v") {
        None => Err(reject_at("v", "missing field v")),
        Some(v) if v.as_u64() == Some(VERSION) => Ok(()),
        Some(v) => Err(reject_at(
            "v",
            format!("unsupported version v={v}; this accepts v=1 and v=2"),
        )),
    }
}

fn vehicle_field(object: &Object) -> Result<DeviceId, Rejection> {
    match object.get("vehicle_id") {
        None => Err(reject_at("vehicle_id", "missing field vehicle_id")),
        Some(Value::String(s)) => {
            DeviceId::new(s.clone()).map_err(|e| reject_at("vehicle_id", format!("field vehicle_id: {e}")))
        }
        Some(other) => Err(reject_at(
            "vehicle_id",
            format!("field vehicle_id must be a string, found {}", json_kind(other)),
        )),
    }
}

/// The payload's vehicle id must be the topic's, when the rule says which topic.
fn check_topic(object: &Object, vehicle_id: &DeviceId) -> Result<(), Rejection> {
    match object.get(TOPIC_VEHICLE_ID) {
        None => Ok(()),
        Some(Value::String(topic)) if topic == vehicle_id.as_str() => Ok(()),
        Some(topic) => Err(reject_at(
            "vehicle_id",
            format!(
                "field vehicle_id {:?} is not the vehicle of the topic the message came on ({topic})",
                vehicle_id.as_str()
            ),
        )),
    }
}

/// The rule's receive time, whole milliseconds when present.
pub(crate) fn received_at_field(object: &Object) -> Result<Option<i64>, Rejection> {
    match object.get(RECEIVED_AT) {
        None => Ok(None),
        Some(at) => at.as_i64().map(Some).ok_or_else(|| {
            reject_at(
                RECEIVED_AT,
                format!("field received_at must be whole milliseconds, found {}", json_kind(at)),
            )
        }),
    }
}

pub(crate) fn time_field(object: &Object) -> Result<DateTime<Utc>, Rejection> {
    match object.get("ts") {
        None => Err(reject_at("ts", "missing field ts")),
        Some(Value::String(s)) => Ok(DateTime::parse_from_rfc3339(s)
            .map_err(|e| reject_at("ts", format!("field ts {s:?} is not an RFC 3339 time: {e}")))?
            .with_timezone(&Utc)),
        Some(other) => Err(reject_at(
            "ts",
            format!("field ts must be an RFC 3339 string, found {}", json_kind(other)),
        )),
    }
}

pub(crate) fn seq_field(object: &Object) -> Result<u64, Rejection> {
    match object.get("seq") {
        None => Err(reject_at("seq", "missing field seq")),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| reject_at("seq", format!("field seq must be a non-negative integer, found {v}"))),
    }
}

/// The most fields beyond v1 a message may carry (the edge sends none).
pub const MAX_EXTRA_FIELDS: usize = 16;
/// The longest name and string value of such a field.
pub const MAX_EXTRA_NAME: usize = 64;
pub const MAX_EXTRA_STRING: usize = 256;

/// The fields v1 does not define: kept for the archive and served by the API,
/// so they are bounded: a few, named like identifiers, with scalar values and
/// short strings (no documents, nothing a page would render as markup at length).
fn unknown_fields(object: &Object) -> Result<BTreeMap<String, Value>, Rejection> {
    let known =
        |k: &str| matches!(k, "v" | "vehicle_id" | "ts" | "seq" | TOPIC_VEHICLE_ID) || Measure::from_name(k).is_some();
    let extra: BTreeMap<String, Value> = object
        .iter()
        .filter(|(k, _)| !(known(k) || k.as_str() == RECEIVED_AT))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if extra.len() > MAX_EXTRA_FIELDS {
        return Err(reject(format!(
            "{} fields beyond telemetry v1; at most {MAX_EXTRA_FIELDS} are kept",
            extra.len()
        )));
    }
    for (name, value) in &extra {
        let identifier = name.len() <= MAX_EXTRA_NAME
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !identifier {
            return Err(reject_at(
                truncate_chars(name, 80),
                format!(
                    "field name {:?} is not a name of letters, digits and _ of at most {MAX_EXTRA_NAME} characters",
                    name.chars().take(80).collect::<String>()
                ),
            ));
        }
        match value {
            Value::String(text) if text.chars().count() > MAX_EXTRA_STRING => {
                return Err(reject_at(
                    name,
                    format!("field {name} is a string of more than {MAX_EXTRA_STRING} characters"),
                ));
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(reject_at(
                    name,
                    format!(
                        "field {name} must be a number, string, boolean or null, found {}",
                        json_kind(value)
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(extra)
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
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
        assert_eq!(t.value(Measure::CellTempMaxC), 31.0);
        assert_eq!(t.received_at_ms, Some(1_700_000_000_123));
        assert_eq!(t.extra.len(), 1);
        assert_eq!(t.to_json(), v);
    }

    /// Samples `seq`, `seq + 1`, … of `valid()`, a second apart, hottest at `hot`.
    fn samples(seq: u64, n: usize, hot: usize) -> Vec<Telemetry> {
        (0..n)
            .map(|i| {
                let mut v = valid();
                v["seq"] = json!(seq + i as u64);
                v["ts"] = json!(format!("2023-11-14T22:13:{:02}.000Z", 20 + i));
                v["cell_temp_max_c"] = json!(if i == hot { 58.5 } else { 31.0 });
                v["soc_pct"] = json!(81.5 - i as f64);
                Telemetry::from_json(&v).unwrap()
            })
            .collect()
    }

    #[test]
    fn a_v2_message_round_trips_its_samples_and_names_their_peak() {
        let written = samples(40, 5, 2);
        let json = Message::to_json(&written);
        assert_eq!(json["peak"]["cell_temp_max_c"], json!(58.5));
        assert_eq!(json["peak"]["soc_pct"], json!(77.5));
        assert!(
            json["samples"][0].get("vehicle_id").is_none(),
            "the envelope says it once"
        );
        let read = Message::parse(&json.to_string()).unwrap();
        assert_eq!(read.samples, written);
        assert!(read.rejected.is_empty());
        // What the IoT rule adds to the envelope reaches every sample.
        let mut ruled = json.clone();
        ruled["received_at"] = json!(1_700_000_000_123u64);
        ruled["topic_vehicle_id"] = json!("sim-001");
        let read = Message::from_json(&ruled).unwrap();
        assert!(read.samples.iter().all(|t| t.received_at_ms == Some(1_700_000_000_123)));
        ruled["topic_vehicle_id"] = json!("sim-002");
        assert_eq!(
            Message::from_json(&ruled).unwrap_err().field.as_deref(),
            Some("vehicle_id")
        );
        // A v1 message is a message of one sample.
        let one = Message::from_json(&valid()).unwrap();
        assert_eq!(one.samples.len(), 1);
        assert_eq!(one.samples[0].seq, 42);
    }

    #[test]
    fn a_bad_sample_is_refused_alone_and_a_bad_envelope_refuses_the_message() {
        let mut json = Message::to_json(&samples(40, 4, 9));
        json["samples"][1]["soc_pct"] = json!(140);
        json["samples"][2]["received_at"] = json!(5);
        let read = Message::from_json(&json).unwrap();
        assert_eq!(read.samples.iter().map(|t| t.seq).collect::<Vec<_>>(), [40, 43]);
        let fields: Vec<_> = read.rejected.iter().map(|r| r.field.clone().unwrap()).collect();
        assert_eq!(fields, ["samples[1].soc_pct", "samples[2].received_at"]);
        assert!(
            read.rejected[0].reason.starts_with("samples[1]: field soc_pct"),
            "{:?}",
            read.rejected
        );

        let refused = |edit: &dyn Fn(&mut Value)| {
            let mut json = Message::to_json(&samples(40, 3, 9));
            edit(&mut json);
            let r = Message::from_json(&json).unwrap_err();
            (r.field.unwrap_or_default(), r.reason)
        };
        assert_eq!(refused(&|j| j["samples"] = json!([])).0, "samples");
        assert_eq!(refused(&|j| j["samples"] = json!({"a": 1})).0, "samples");
        assert_eq!(
            refused(&|j| j["samples"] = json!(vec![valid(); MAX_SAMPLES + 1])).0,
            "samples"
        );
        assert_eq!(refused(&|j| j["seq"] = json!(3)).0, "seq");
        assert_eq!(refused(&|j| j["peak"] = json!(3)).0, "peak");
        // Found by make fuzz: the rule's receive time as a float reached each sample as an extra field.
        assert_eq!(refused(&|j| j["received_at"] = json!(1e86)).0, "received_at");
        let mut v1 = valid();
        v1["received_at"] = json!(1.7e21);
        assert_eq!(
            Telemetry::from_json(&v1).unwrap_err().field.as_deref(),
            Some("received_at")
        );
        assert_eq!(refused(&|j| j["vehicle_id"] = json!("bad id!")).0, "vehicle_id");
        let (field, reason) = refused(&|j| j["samples"][2]["seq"] = json!(41));
        assert_eq!(field, "samples[2].seq");
        assert!(reason.contains("not above the previous sample's (41)"), "{reason}");
        assert!(
            Message::parse("[")
                .unwrap_err()
                .reason
                .starts_with("message is not JSON")
        );
        assert!(Message::parse(r#"{"v":3}"#).unwrap_err().reason.contains("v=1 and v=2"));
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
                "field speed_kph must be a finite number, found a string",
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
                "field vehicle_id: invalid id \"a/b\"",
            ),
            (
                Box::new(|v| v["soc_pct"] = json!(140)),
                "field soc_pct = 140 is outside 0 to 100 %",
            ),
            (
                Box::new(|v| v["cell_temp_min_c"] = json!(99)),
                "field cell_temp_min_c = 99 is more than cell_temp_max_c = 31",
            ),
            (
                Box::new(|v| v["cell_voltage_spread_v"] = json!(-0.5)),
                "field cell_voltage_spread_v = -0.5 is outside 0 to 10 V",
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
            let field = err.field.as_deref().expect("each of these names its field");
            assert!(reason.contains(field), "{field} is the field of {reason}");
        }
        assert_eq!(Telemetry::parse("[1]").unwrap_err().field, None, "no field is at fault");
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
    fn a_vehicle_cannot_speak_for_another() {
        let mut v = valid();
        v[TOPIC_VEHICLE_ID] = json!("sim-001");
        assert!(Telemetry::from_json(&v).is_ok());
        v[TOPIC_VEHICLE_ID] = json!("sim-002");
        let err = Telemetry::from_json(&v).unwrap_err().reason;
        assert_eq!(
            err,
            "field vehicle_id \"sim-001\" is not the vehicle of the topic the message came on (\"sim-002\")"
        );
        assert!(
            !Telemetry::from_json(&valid())
                .unwrap()
                .extra
                .contains_key(TOPIC_VEHICLE_ID)
        );
    }

    #[test]
    fn a_clock_far_from_the_servers_is_refused() {
        let mut v = valid(); // ts 2023-11-14T22:13:20Z
        let received = 1_700_000_000_000i64;
        let bounds = ClockBounds::default();
        let mut at = |ts: &str| {
            v["ts"] = json!(ts);
            v[RECEIVED_AT] = json!(received);
            Telemetry::from_json(&v).unwrap().check_clock(bounds, 0)
        };
        assert!(at("2023-11-14T22:13:20Z").is_ok());
        assert!(at("2023-11-14T22:18:19Z").is_ok(), "4 min 59 s ahead");
        assert!(at("2023-11-07T22:13:21Z").is_ok(), "just under a week behind");
        let ahead = at("2099-01-01T00:00:00Z").unwrap_err().reason;
        assert!(
            ahead.contains("ahead of the time IoT Core received the message (at most 300 s)"),
            "{ahead}"
        );
        let behind = at("2023-11-01T00:00:00Z").unwrap_err().reason;
        assert!(behind.contains("behind the time IoT Core received"), "{behind}");
    }

    #[test]
    fn fields_beyond_v1_are_bounded() {
        let with = |name: &str, value: Value| {
            let mut v = valid();
            v[name] = value;
            Telemetry::from_json(&v).map(|t| t.extra.len()).map_err(|r| r.reason)
        };
        assert_eq!(with("firmware", json!("1.2.3")), Ok(1));
        assert_eq!(with("odometer_km", json!(12345.6)), Ok(1));
        assert!(with("<script>", json!(1)).unwrap_err().contains("is not a name"));
        assert!(
            with("firmware", json!("x".repeat(300)))
                .unwrap_err()
                .contains("more than 256")
        );
        assert!(with("blob", json!({"a": 1})).unwrap_err().contains("found an object"));
        let mut many = valid();
        for i in 0..=MAX_EXTRA_FIELDS {
            many[format!("f{i}")] = json!(i);
        }
        assert!(Telemetry::from_json(&many).unwrap_err().reason.contains("at most 16"));
    }
}
