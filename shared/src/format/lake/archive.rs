//! The telemetry archive: every valid telemetry message, one Parquet object
//! per batch and date under `telemetry/date=<YYYY-MM-DD>/`.
//!
//! | column | type |
//! | --- | --- |
//! | `vehicle_id` | STRING (dictionary) |
//! | `ts_us` | INT64, the message's `ts` in µs |
//! | `seq` | INT64 |
//! | `soc_pct` ... `speed_kph` | DOUBLE, the eight measures |
//! | `received_at_ms` | INT64, nullable: when IoT Core received it |
//! | `extra` | STRING, nullable: unknown fields and the optional measures, as JSON |

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::columns;
use super::keys::TELEMETRY_PREFIX;
use super::{LakeError, write_object};
use crate::domain::measure::Measure;
use crate::domain::telemetry::Telemetry;

pub fn archive_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new(
            "vehicle_id",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("ts_us", DataType::Int64, false),
        Field::new("seq", DataType::Int64, false),
    ];
    fields.extend(
        Measure::REQUIRED
            .iter()
            .map(|m| Field::new(m.name(), DataType::Float64, false)),
    );
    fields.push(Field::new("received_at_ms", DataType::Int64, true));
    fields.push(Field::new("extra", DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

/// `telemetry/date=<date>/<batch>.parquet`.
pub fn archive_key(date: chrono::NaiveDate, batch: &str) -> String {
    format!("{TELEMETRY_PREFIX}date={}/{batch}.parquet", date.format("%Y-%m-%d"))
}

/// Where the telemetry function notes each archive object it writes, for
/// the compactor to copy into the tables read by vehicle
/// ([`super::by_vehicle`], [`super::fleet_hourly`]).
pub const PENDING_PREFIX: &str = "compaction/telemetry/";

/// `compaction/telemetry/date=<date>/<batch>.parquet/<marked µs>`: archive
/// object `archive_key` waits to be copied. A rewrite of the object is marked
/// again under another time, so the compactor deletes only markers it read.
pub fn pending_key(archive_key: &str, marked_us: i64) -> String {
    let rest = archive_key.strip_prefix(TELEMETRY_PREFIX).unwrap_or(archive_key);
    format!("{PENDING_PREFIX}{rest}/{marked_us}")
}

/// The archive object and the marking time a marker names.
pub fn pending_of(marker: &str) -> Option<(String, i64)> {
    let (rest, marked) = marker.strip_prefix(PENDING_PREFIX)?.rsplit_once('/')?;
    let rest = rest.strip_prefix("date=").map(|_| rest)?;
    Some((format!("{TELEMETRY_PREFIX}{rest}"), marked.parse().ok()?))
}

/// The name an archive object's samples carry in the tables read by
/// vehicle: its key without the prefix and the extension.
pub fn batch_of(archive_key: &str) -> &str {
    let rest = archive_key.strip_prefix(TELEMETRY_PREFIX).unwrap_or(archive_key);
    rest.strip_suffix(".parquet").unwrap_or(rest)
}

/// One archive object of `messages`, as bytes.
pub fn write(messages: &[&Telemetry], name: &str) -> Result<Vec<u8>, LakeError> {
    let source: Arc<str> = Arc::from(name);
    let n = messages.len();
    let mut vehicle = StringDictionaryBuilder::<Int32Type>::new();
    let mut ts = Int64Builder::with_capacity(n);
    let mut seq = Int64Builder::with_capacity(n);
    let mut measures: Vec<Float64Builder> = Measure::REQUIRED
        .iter()
        .map(|_| Float64Builder::with_capacity(n))
        .collect();
    let mut received = Int64Builder::with_capacity(n);
    let mut extra = StringBuilder::new();
    for t in messages {
        vehicle.append_value(t.vehicle_id.as_str());
        ts.append_value(t.ts_us());
        seq.append_value(i64::try_from(t.seq).unwrap_or(i64::MAX));
        for (builder, m) in measures.iter_mut().zip(Measure::REQUIRED) {
            builder.append_value(t.value(m));
        }
        received.append_option(t.received_at_ms);
        let unknown = t.extra_with_optional();
        if unknown.is_empty() {
            extra.append_null()
        } else {
            extra.append_value(serde_json::Value::Object(unknown).to_string())
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(vehicle.finish()),
        Arc::new(ts.finish()),
        Arc::new(seq.finish()),
    ];
    columns.extend(measures.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(received.finish()));
    columns.push(Arc::new(extra.finish()));
    write_object(&source, archive_schema(), columns, &["ts_us", "seq"])
}

/// One archived sample: its time, its order among its vehicle's samples and
/// the required measures, in [`Measure::REQUIRED`]'s order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub ts_us: i64,
    pub seq: i64,
    pub values: [f64; Measure::REQUIRED.len()],
}

impl Sample {
    /// The sample's value of a required measure (NaN for an optional one,
    /// which the archive keeps in `extra`).
    pub fn value(&self, measure: Measure) -> f64 {
        Measure::REQUIRED
            .iter()
            .position(|m| *m == measure)
            .map_or(f64::NAN, |i| self.values[i])
    }
}

/// The samples of an archive object, each with its vehicle, in the object's order.
pub fn read(body: bytes::Bytes, name: &str) -> Result<Vec<(Arc<str>, Sample)>, LakeError> {
    let source: Arc<str> = Arc::from(name);
    let mut out = Vec::new();
    for batch in columns::batches(body, &source)? {
        let vehicles = columns::strings(&batch, "vehicle_id", &source)?;
        let ts = columns::ints(&batch, "ts_us", &source)?;
        let seq = columns::ints(&batch, "seq", &source)?;
        let measures = columns::measures(&batch, &source)?;
        // One Arc per vehicle of the object, not per row.
        let mut names: std::collections::HashMap<&str, Arc<str>> = std::collections::HashMap::new();
        for (row, vehicle) in vehicles.iter().enumerate() {
            let vehicle = names.entry(vehicle).or_insert_with(|| Arc::from(*vehicle)).clone();
            let values = columns::measures_at(&measures, row);
            out.push((
                vehicle,
                Sample {
                    ts_us: ts.value(row),
                    seq: seq.value(row),
                    values,
                },
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_object_reads_back_its_samples() {
        let message = |vehicle: &str, ts_s: i64, seq: u64, soc: f64| {
            let ts = chrono::DateTime::from_timestamp(ts_s, 0).unwrap();
            let vehicle = crate::domain::device_id::DeviceId::new(vehicle).unwrap();
            Telemetry::from_measures(vehicle, ts, seq, [soc, 400.0, -12.5, 3.9, 4.0, 20.0, 25.0, 50.0])
        };
        let a = message("veh-a", 1_764_237_600, 1, 80.0);
        let b = message("veh-b", 1_764_237_601, 7, 60.0);
        let body = write(&[&a, &b], "batch").unwrap();
        let samples = read(body.into(), "batch").unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(&*samples[1].0, "veh-b");
        assert_eq!(samples[1].1.seq, 7);
        assert_eq!(samples[1].1.ts_us, b.ts_us());
        assert_eq!(samples[0].1.value(Measure::SocPct), 80.0);
        assert_eq!(samples[0].1.value(Measure::PackCurrentA), -12.5);
        assert!(samples[0].1.value(Measure::CellVoltageSpreadV).is_nan());
    }

    #[test]
    fn a_marker_names_its_archive_object() {
        let key = archive_key(chrono::NaiveDate::from_ymd_opt(2025, 11, 27).unwrap(), "batch-00ff");
        let marker = pending_key(&key, 17);
        assert_eq!(marker, "compaction/telemetry/date=2025-11-27/batch-00ff.parquet/17");
        assert_eq!(pending_of(&marker), Some((key.clone(), 17)));
        assert_eq!(pending_of("compaction/telemetry/x/17"), None);
        assert_eq!(pending_of("compaction/telemetry/date=2025-11-27/b.parquet/x"), None);
        assert_eq!(batch_of(&key), "date=2025-11-27/batch-00ff");
    }
}
