//! A status message of a device of a declared kind ([`crate::domain::kind`]),
//! as a station publishes it to `dt/canopy-station/<id>/status`:
//!
//! ```json
//! {"station_id":"st-001","ts":"2026-12-02T08:00:00.000Z","seq":42,
//!  "slots":8,"batteries_available":3,"charging":4,"faulted":1,"swaps_today":57,
//!  "temperature_c":24.5,"grid_power_kw":61.2,
//!  "slot_soc_pct":[100,100,100,71.5,42,88.1,20.3,0],
//!  "slot_temp_c":[25.1,24.9,25.3,31.2,33.0,30.8,34.1,22.0]}
//! ```
//! The device rule adds `topic_kind` (`canopy-station`), `topic_device_id`
//! and `received_at`, and refuses messages that carry them. Every field is
//! checked against the kind's declaration; a missing required field, a
//! wrong type, a value out of range or a field the kind does not declare
//! is a [`Rejection`] naming the field.

use std::collections::BTreeMap;

use chrono::SecondsFormat;
use serde_json::{Map, Value};

use crate::domain::device::{DeviceRecord, FieldValue};
use crate::domain::device_id::DeviceId;
use crate::domain::kind::{Field, FieldType, Kind, Kinds};
use crate::domain::rejection::{Rejection, reject, reject_at};
use crate::format::telemetry::{Object, RECEIVED_AT, json_kind, received_at_field, seq_field, time_field};

/// What the device rule adds: the kind segment of the topic (`topic(2)`).
pub const TOPIC_KIND: &str = "topic_kind";
/// What the device rule adds: the device id of the topic (`topic(3)`).
pub const TOPIC_DEVICE_ID: &str = "topic_device_id";

impl DeviceRecord {
    /// Validates message text that came through the device rule.
    pub fn parse(kinds: &Kinds, text: &str) -> Result<Self, Rejection> {
        let value: Value = serde_json::from_str(text).map_err(|e| reject(format!("message is not JSON: {e}")))?;
        Self::from_json(kinds, &value)
    }

    /// Validates a parsed message against its kind's declaration.
    pub fn from_json(kinds: &Kinds, value: &Value) -> Result<Self, Rejection> {
        let object = value
            .as_object()
            .ok_or_else(|| reject("message is not a JSON object"))?;
        let kind = match object.get(TOPIC_KIND) {
            Some(Value::String(segment)) => kinds.of_topic_segment(segment).ok_or_else(|| {
                reject_at(
                    TOPIC_KIND,
                    format!("no device kind is declared for topic segment {segment:?}"),
                )
            })?,
            _ => {
                return Err(reject_at(
                    TOPIC_KIND,
                    "missing the topic's kind (the device rule adds it)",
                ));
            }
        };
        let id = id_field(kind, object)?;
        let values = declared_values(kind, object)?;
        let known = |name: &str| {
            name == kind.id_field
                || kind.field(name).is_some()
                || ["ts", "seq", RECEIVED_AT, TOPIC_KIND, TOPIC_DEVICE_ID].contains(&name)
        };
        if let Some(unknown) = object.keys().find(|k| !known(k)) {
            return Err(reject_at(
                unknown,
                format!(
                    "field {unknown} is not declared for kind {} (kinds/{}.toml)",
                    kind.name, kind.name
                ),
            ));
        }
        Ok(Self {
            kind: kind.name.clone(),
            id,
            ts: time_field(object)?,
            seq: seq_field(object)?,
            values,
            received_at_ms: received_at_field(object)?,
        })
    }

    /// The message as the device sent it (the API's latest state), with
    /// `kind` and `received_at_ms` beside its fields.
    pub fn to_json(&self, id_field: &str) -> Value {
        let mut object = Map::new();
        object.insert("kind".into(), self.kind.clone().into());
        object.insert(id_field.into(), self.id.as_str().into());
        object.insert("ts".into(), self.ts.to_rfc3339_opts(SecondsFormat::Millis, true).into());
        object.insert("seq".into(), self.seq.into());
        for (name, value) in &self.values {
            object.insert(name.clone(), serde_json::to_value(value).unwrap_or(Value::Null));
        }
        object.insert("received_at_ms".into(), self.received_at_ms.into());
        Value::Object(object)
    }
}

fn id_field(kind: &Kind, object: &Object) -> Result<DeviceId, Rejection> {
    let name = kind.id_field.as_str();
    let id = match object.get(name) {
        None => return Err(reject_at(name, format!("missing field {name}"))),
        Some(Value::String(s)) => DeviceId::new(s.as_str()).map_err(|_| {
            reject_at(
                name,
                format!("field {name} {s:?}: use 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'"),
            )
        })?,
        Some(other) => {
            return Err(reject_at(
                name,
                format!("field {name} must be a string, found {}", json_kind(other)),
            ));
        }
    };
    match object.get(TOPIC_DEVICE_ID) {
        None => Ok(id),
        Some(Value::String(topic)) if topic == id.as_str() => Ok(id),
        Some(topic) => Err(reject_at(
            name,
            format!("field {name} {id:?} is not the device of the topic the message came on ({topic})"),
        )),
    }
}

/// The fields of `kind` that `object` carries, each checked against its
/// declaration (type, range) and against the limits fields set each other;
/// a missing required field is refused. Other fields are the caller's.
pub(crate) fn declared_values(kind: &Kind, object: &Object) -> Result<BTreeMap<String, FieldValue>, Rejection> {
    let mut values = BTreeMap::new();
    for field in &kind.fields {
        match object.get(&field.name) {
            None if field.required => {
                return Err(reject_at(&field.name, format!("missing field {}", field.name)));
            }
            None => {}
            Some(v) => {
                values.insert(field.name.clone(), field_value(field, v)?);
            }
        }
    }
    check_relations(kind, &values)?;
    Ok(values)
}

fn field_value(field: &Field, v: &Value) -> Result<FieldValue, Rejection> {
    let name = field.name.as_str();
    let finite = |v: &Value, at: &str| -> Result<f64, Rejection> {
        v.as_f64().filter(|x| x.is_finite() && v.is_number()).ok_or_else(|| {
            reject_at(
                at,
                format!("field {at} must be a finite number, found {}", json_kind(v)),
            )
        })
    };
    let in_range = |x: f64, at: &str| -> Result<f64, Rejection> {
        let below = field.min.is_some_and(|lo| x < lo);
        let above = field.max.is_some_and(|hi| x > hi);
        if below || above {
            let range = format!(
                "{} to {}",
                field.min.map_or("-∞".into(), |lo| lo.to_string()),
                field.max.map_or("∞".into(), |hi| hi.to_string())
            );
            return Err(reject_at(
                at,
                format!("field {at} = {x} is outside {range} {}", field.unit)
                    .trim_end()
                    .to_string(),
            ));
        }
        Ok(x)
    };
    match field.ty {
        FieldType::Integer => {
            let i = v
                .as_i64()
                .ok_or_else(|| reject_at(name, format!("field {name} must be a whole number, found {v}")))?;
            in_range(i as f64, name)?;
            Ok(FieldValue::Integer(i))
        }
        FieldType::Number => Ok(FieldValue::Number(in_range(finite(v, name)?, name)?)),
        FieldType::Numbers => {
            let items = v.as_array().ok_or_else(|| {
                reject_at(
                    name,
                    format!("field {name} must be a list of numbers, found {}", json_kind(v)),
                )
            })?;
            let xs = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let at = format!("{name}[{i}]");
                    finite(item, &at).and_then(|x| in_range(x, &at))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(FieldValue::Numbers(xs))
        }
    }
}

/// The limits one field sets another: `at_most` and `length`.
fn check_relations(kind: &Kind, values: &BTreeMap<String, FieldValue>) -> Result<(), Rejection> {
    let integer = |name: &str| match values.get(name) {
        Some(FieldValue::Integer(i)) => Some(*i),
        _ => None,
    };
    for field in &kind.fields {
        let Some(value) = values.get(&field.name) else { continue };
        // The declaration holds both to one type, so comparing as f64 is exact
        // for integers up to 2^53 and for any two numbers.
        if let Some(limit_name) = &field.at_most
            && let Some(x) = value.scalar()
            && let Some(limit) = values.get(limit_name).and_then(FieldValue::scalar)
            && x > limit
        {
            return Err(reject_at(
                &field.name,
                format!("field {} = {x} is more than {limit_name} = {limit}", field.name),
            ));
        }
        if let (Some(length_name), FieldValue::Numbers(xs)) = (&field.length, value)
            && let Some(length) = integer(length_name)
            && xs.len() as i64 != length
        {
            return Err(reject_at(
                &field.name,
                format!("field {} has {} values; {length_name} = {length}", field.name, xs.len()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    pub(crate) fn station_message(id: &str, seq: u64) -> Value {
        json!({"station_id": id, "ts": "2026-12-02T08:00:00.000Z", "seq": seq,
            "slots": 4, "batteries_available": 2, "charging": 1, "faulted": 1, "swaps_today": 7,
            "temperature_c": 21.5, "grid_power_kw": 40.0,
            "slot_soc_pct": [100, 100, 55.5, 0], "slot_temp_c": [25, 26, 30.5, 22],
            "topic_kind": "canopy-station", "topic_device_id": id, "received_at": 1_764_662_400_100_i64})
    }

    #[test]
    fn a_station_message_parses_with_its_declared_fields() {
        let kinds = Kinds::builtin();
        let r = DeviceRecord::from_json(&kinds, &station_message("st-001", 42)).unwrap();
        assert_eq!((r.kind.as_str(), r.id.as_str(), r.seq), ("station", "st-001", 42));
        assert_eq!(r.stream(), "station/st-001");
        assert_eq!(r.values["batteries_available"], FieldValue::Integer(2));
        assert_eq!(
            r.values["slot_temp_c"],
            FieldValue::Numbers(vec![25.0, 26.0, 30.5, 22.0])
        );
        assert_eq!(r.received_at_ms, Some(1_764_662_400_100));
        let state = r.to_json("station_id");
        assert_eq!(state["station_id"], "st-001");
        assert_eq!(state["slot_soc_pct"][2], 55.5);
        // The stored form reads back the same.
        let stored: DeviceRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(stored, r);
    }

    #[test]
    fn a_bad_message_is_refused_naming_its_field() {
        let kinds = Kinds::builtin();
        let cases: Vec<(&str, Value, &str)> = vec![
            ("slots", Value::Null, "slots"),
            ("batteries_available", json!(5), "batteries_available"),
            ("slot_soc_pct", json!([100, 100, 50]), "slot_soc_pct"),
            ("slot_temp_c", json!([25, "hot", 30, 22]), "slot_temp_c[1]"),
            ("slot_soc_pct", json!([100, 100, 101, 0]), "slot_soc_pct[2]"),
            ("temperature_c", json!("warm"), "temperature_c"),
            ("swaps_today", json!(1.5), "swaps_today"),
            ("pressure_bar", json!(3), "pressure_bar"),
            ("station_id", json!("st 1"), "station_id"),
            ("topic_device_id", json!("st-999"), "station_id"),
            ("topic_kind", json!("canopy-pump"), "topic_kind"),
            ("seq", json!(-1), "seq"),
        ];
        for (key, value, field) in cases {
            let mut m = station_message("st-001", 1);
            if value.is_null() {
                m.as_object_mut().unwrap().remove(key);
            } else {
                m[key] = value;
            }
            let err = DeviceRecord::from_json(&kinds, &m).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{key}: {err}");
        }
        let empty = DeviceRecord::from_json(&kinds, &json!({"topic_kind": "canopy-station"})).unwrap_err();
        assert!(empty.reason.contains("station_id"), "{empty}");
    }
}
