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

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;

use super::keys::TELEMETRY_PREFIX;
use super::{LakeError, writer_properties};
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
    let batch = RecordBatch::try_new(archive_schema(), columns).map_err(|e| LakeError::arrow(&source, e))?;
    let mut writer = ArrowWriter::try_new(
        Vec::new(),
        archive_schema(),
        Some(writer_properties(1 << 20, &["ts_us", "seq"], &[])),
    )
    .map_err(|e| LakeError::parquet(&source, e))?;
    writer.write(&batch).map_err(|e| LakeError::parquet(&source, e))?;
    writer.into_inner().map_err(|e| LakeError::parquet(&source, e))
}
