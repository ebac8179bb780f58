//! A status message of a device of a declared kind ([`crate::domain::kind`]),
//! validated: its declared fields' values, and where it is kept.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::device_id::DeviceId;
use crate::domain::rejection::Rejection;
use crate::domain::telemetry::{ClockBounds, check_clock};

/// One field's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    Integer(i64),
    Number(f64),
    Numbers(Vec<f64>),
}

impl FieldValue {
    /// The values a rule compares: one, or a list's elements.
    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        let (one, list) = match self {
            Self::Integer(i) => (Some(*i as f64), &[][..]),
            Self::Number(x) => (Some(*x), &[][..]),
            Self::Numbers(xs) => (None, xs.as_slice()),
        };
        one.into_iter().chain(list.iter().copied())
    }

    /// The value of a one-value field; `None` for a list.
    pub fn scalar(&self) -> Option<f64> {
        match self {
            Self::Integer(i) => Some(*i as f64),
            Self::Number(x) => Some(*x),
            Self::Numbers(_) => None,
        }
    }
}

/// A valid status message of a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub kind: String,
    /// The device's id, by the rules of a vehicle id.
    pub id: DeviceId,
    #[serde(with = "rfc3339")]
    pub ts: DateTime<Utc>,
    pub seq: u64,
    /// Declared fields the message carried, by name.
    pub values: BTreeMap<String, FieldValue>,
    /// When IoT Core received the message (ms since the epoch), when the rule says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at_ms: Option<i64>,
}

impl DeviceRecord {
    /// The record's key in the ledger and the alert log: `<kind>/<id>`,
    /// never a vehicle id ('/' is not allowed in one).
    pub fn stream(&self) -> String {
        stream(&self.kind, self.id.as_str())
    }

    pub fn ts_us(&self) -> i64 {
        self.ts.timestamp_micros()
    }

    /// The time the cloud received the message: IoT Core's, or `now_ms`.
    pub fn server_time_ms(&self, now_ms: i64) -> i64 {
        self.received_at_ms.unwrap_or(now_ms)
    }

    /// Rejects a message whose `ts` is outside `bounds` around the server's time.
    pub fn check_clock(&self, bounds: ClockBounds, now_ms: i64) -> Result<(), Rejection> {
        check_clock(self.ts, self.server_time_ms(now_ms), bounds)
    }
}

/// `ts` in the stored form as the message's RFC 3339 text.
mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&ts.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// The ledger and alert-log key of device `id` of `kind`.
pub fn stream(kind: &str, id: &str) -> String {
    format!("{kind}/{id}")
}
