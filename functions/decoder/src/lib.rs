//! The `decoder` Lambda: raw CAN Parquet objects in, decoded lake objects out.
//!
//! Triggered by SQS messages whose bodies are S3 notifications (the deployed
//! path: S3 → SQS → Lambda), or by a plain S3 event (`cargo lambda invoke
//! decoder --data-file events/s3-put.json`). The work itself is
//! [`canopy::decoder::decode_object`]; this crate parses events, picks the
//! DBC, reports partial batch failures and emits metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use canopy::dbc::Database;
use canopy::decoder::{DbcCache, DecodeObjectError, DecodeOutcome, DecoderOptions, decode_object};
use canopy::env::{self, EnvError};
use canopy::lake::decoded::DecodedWriterOptions;
use canopy::lake::keys::{RAW_PREFIX, RawKey, decode_s3_event_key};
use canopy::metrics::{Metrics, Unit};
use canopy::store::ObjectStore;
use serde_json::{Value, json};
use tracing::{info, warn};

/// The DBC compiled into the binary, used when the bucket has none.
const BUILT_IN_DBC: &[u8] = include_bytes!("../../../dbc/ev_powertrain.dbc");
const BUILT_IN_DBC_NAME: &str = "built-in:ev_powertrain.dbc";

/// Configuration from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATA_BUCKET`: the lake's bucket.
    pub bucket: String,
    /// `DBC_KEY`: the DBC for vehicles without their own `dbc/vehicles/<id>.dbc`.
    pub dbc_key: String,
    /// `DBC_REFRESH_SECONDS`: how often a cached DBC's ETag is checked.
    pub dbc_refresh: Duration,
    pub options: DecoderOptions,
}

impl Config {
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_vars(&env::Process)
    }

    /// From `vars`: the local stack passes the template's environment.
    pub fn from_vars(vars: &impl env::Vars) -> Result<Self, EnvError> {
        let part_mb: usize = env::parse_or(vars, "PART_SIZE_MB", 8)?;
        let window: usize = env::parse_or(
            vars,
            "SORT_WINDOW_ROWS",
            DecodedWriterOptions::default().sort_window_rows,
        )?;
        if !(5..=512).contains(&part_mb) {
            return Err(EnvError {
                name: "PART_SIZE_MB".into(),
                problem: format!("{part_mb} is not within 5..=512"),
            });
        }
        if window == 0 {
            return Err(EnvError {
                name: "SORT_WINDOW_ROWS".into(),
                problem: "must be positive".into(),
            });
        }
        Ok(Self {
            bucket: env::required(vars, "DATA_BUCKET")?,
            dbc_key: env::or(vars, "DBC_KEY", "dbc/ev_powertrain.dbc"),
            dbc_refresh: Duration::from_secs(env::parse_or(vars, "DBC_REFRESH_SECONDS", 60)?),
            options: DecoderOptions {
                writer: DecodedWriterOptions {
                    sort_window_rows: window,
                    ..DecodedWriterOptions::default()
                },
                part_size: part_mb * 1024 * 1024,
                ..DecoderOptions::default()
            },
        })
    }
}

/// An object an event names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
}

/// The objects of one S3 notification: none for `s3:TestEvent`. Tolerant of
/// what moto leaves out (`userIdentity`, `requestParameters`, ...).
pub fn parse_notification(notification: &Value) -> Result<Vec<ObjectRef>, String> {
    if notification.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let records = notification
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| "not an S3 notification: no Records".to_string())?;
    records.iter().map(object_of_record).collect()
}

fn object_of_record(record: &Value) -> Result<ObjectRef, String> {
    let s3 = record.get("s3").ok_or("S3 record without s3")?;
    let bucket = s3
        .pointer("/bucket/name")
        .and_then(Value::as_str)
        .ok_or("S3 record without bucket name")?;
    let key = s3
        .pointer("/object/key")
        .and_then(Value::as_str)
        .ok_or("S3 record without object key")?;
    Ok(ObjectRef {
        bucket: bucket.to_string(),
        key: decode_s3_event_key(key),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("event is neither an SQS batch nor an S3 notification: {0}")]
    Event(String),
    #[error("{failed} of {total} objects failed; first: {first}")]
    Objects { failed: usize, total: usize, first: String },
}

/// The handler, built once per Lambda instance: its DBC cache outlives invocations.
pub struct Decoder<S> {
    store: S,
    dbcs: DbcCache<S>,
    config: Config,
}

impl<S: ObjectStore + Clone + Unpin + 'static> Decoder<S> {
    pub fn new(store: S, config: Config) -> Result<Self, canopy::dbc::LoadError> {
        let built_in = Database::from_bytes(BUILT_IN_DBC, BUILT_IN_DBC_NAME)?;
        let dbcs = DbcCache::new(
            store.clone(),
            &config.dbc_key,
            (BUILT_IN_DBC_NAME.to_string(), Arc::new(built_in)),
            config.dbc_refresh,
        );
        Ok(Self { store, dbcs, config })
    }

    /// Handles an SQS batch (answering with its failed messages) or an S3 event.
    pub async fn handle(&self, event: Value) -> Result<Value, HandlerError> {
        let started = Instant::now();
        let mut metrics = Metrics::new("decoder");
        let records = event
            .get("Records")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let is_sqs = records
            .first()
            .and_then(|r| r.get("eventSource"))
            .and_then(Value::as_str)
            == Some("aws:sqs");
        let result = if is_sqs {
            let mut failures = Vec::new();
            for record in &records {
                let id = record
                    .get("messageId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let objects = record
                    .get("body")
                    .and_then(Value::as_str)
                    .ok_or_else(|| "SQS message without a body".to_string())
                    .and_then(|body| serde_json::from_str::<Value>(body).map_err(|e| format!("body is not JSON: {e}")))
                    .and_then(|n| parse_notification(&n));
                let ok = match objects {
                    Ok(objects) => self.decode_all(&objects, &mut metrics).await.is_ok(),
                    Err(reason) => {
                        warn!(message_id = %id, %reason, "rejected SQS message");
                        false
                    }
                };
                if !ok {
                    failures.push(json!({ "itemIdentifier": id }));
                }
            }
            metrics.count("FailedMessages", failures.len() as u64);
            // SQS partial batch response: only these messages return to the queue.
            Ok(json!({ "batchItemFailures": failures }))
        } else if records.is_empty() && event.get("Event").is_none() {
            Err(HandlerError::Event("no Records".to_string()))
        } else {
            let objects = parse_notification(&event).map_err(HandlerError::Event)?;
            let decoded = self.decode_all(&objects, &mut metrics).await;
            decoded.map(|n| json!({ "decoded": n }))
        };
        metrics.add(
            "DurationMs",
            started.elapsed().as_secs_f64() * 1000.0,
            Unit::Milliseconds,
        );
        metrics.emit();
        result
    }

    /// Decodes each object; all are tried, and the first failure is returned.
    async fn decode_all(&self, objects: &[ObjectRef], metrics: &mut Metrics) -> Result<usize, HandlerError> {
        let mut failures = Vec::new();
        let mut decoded = 0;
        for object in objects {
            match self.decode_one(object).await {
                Ok(Some(outcome)) => {
                    record_outcome(metrics, &outcome);
                    decoded += 1;
                }
                Ok(None) => {}
                Err(reason) => {
                    warn!(bucket = %object.bucket, key = %object.key, %reason, "object not decoded");
                    metrics.count("FailedObjects", 1);
                    failures.push(reason);
                }
            }
        }
        match failures.first() {
            None => Ok(decoded),
            Some(first) => Err(HandlerError::Objects {
                failed: failures.len(),
                total: objects.len(),
                first: first.clone(),
            }),
        }
    }

    /// `None` for objects the decoder leaves alone (not under `raw/`).
    async fn decode_one(&self, object: &ObjectRef) -> Result<Option<DecodeOutcome>, String> {
        if object.bucket != self.config.bucket {
            return Err(format!(
                "bucket {} is not the configured DATA_BUCKET {}",
                object.bucket, self.config.bucket
            ));
        }
        if !object.key.starts_with(RAW_PREFIX) {
            info!(key = %object.key, "not a raw object; ignored");
            return Ok(None);
        }
        let key = RawKey::parse(&object.key).map_err(|e| e.to_string())?;
        let (dbc_name, db) = self.dbcs.for_vehicle(&key.vehicle).await.map_err(|e| e.to_string())?;
        let outcome = decode_object(&self.store, &db, &dbc_name, &object.key, self.config.options).await;
        let outcome = outcome.map_err(|e: DecodeObjectError| e.to_string())?;
        info!(
            raw_key = %outcome.raw_key,
            decoded_key = %outcome.decoded_key,
            dbc = %outcome.dbc,
            frames = outcome.stats.frames,
            values = outcome.stats.values,
            unknown_ids = outcome.stats.unknown_ids,
            short_frames = outcome.stats.short_frames,
            bytes_in = outcome.bytes_in,
            bytes_out = outcome.bytes_out,
            "decoded"
        );
        if !outcome.stats.unknown_id_counts.is_empty() {
            let ids: Vec<String> = outcome
                .stats
                .unknown_id_counts
                .iter()
                .map(|(id, n)| format!("0x{id}:{n}"))
                .collect();
            info!(raw_key = %outcome.raw_key, unknown_ids = %ids.join(","), "frames with ids the DBC does not define");
        }
        Ok(Some(outcome))
    }
}

fn record_outcome(metrics: &mut Metrics, outcome: &DecodeOutcome) {
    let s = &outcome.stats;
    metrics
        .count("Objects", 1)
        .count("Frames", s.frames)
        .count("ValuesDecoded", s.values)
        .count("UnknownIds", s.unknown_ids)
        .count("ShortFrames", s.short_frames)
        .count("InvalidFrames", s.invalid_frames)
        .add("BytesIn", outcome.bytes_in as f64, Unit::Bytes)
        .add("BytesOut", outcome.bytes_out as f64, Unit::Bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_are_parsed_tolerantly_and_keys_url_decoded() {
        let moto_like = json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "lake"}, "object": {"key": "raw/vehicle_id%3Dv1/date%3D2025-01-01/v1_1_000001.parquet", "size": 10}}
        }]});
        assert_eq!(
            parse_notification(&moto_like).unwrap(),
            [ObjectRef {
                bucket: "lake".into(),
                key: "raw/vehicle_id=v1/date=2025-01-01/v1_1_000001.parquet".into()
            }]
        );
        let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "lake"});
        assert!(parse_notification(&test_event).unwrap().is_empty());
        assert!(
            parse_notification(&json!({"foo": 1}))
                .unwrap_err()
                .contains("no Records")
        );
        assert!(
            parse_notification(&json!({"Records": [{"s3": {}}]}))
                .unwrap_err()
                .contains("bucket")
        );
    }

    #[test]
    fn the_built_in_dbc_compiles() {
        assert!(Database::from_bytes(BUILT_IN_DBC, BUILT_IN_DBC_NAME).is_ok());
    }
}
