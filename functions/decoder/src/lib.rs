//! The `decoder` Lambda: raw CAN Parquet objects in, decoded lake objects out.
//!
//! - [`event`]: what it is invoked with and answers, typed.
//! - [`Config`]: its environment, validated at start-up.
//! - [`Decoder`]: the handler, built once per instance by [`Decoder::from_env`]
//!   (the Lambda's `main.rs` and the local stack call the same constructor).
//! - [`object`]: decoding one object, knowing nothing of Lambda.
//! - [`compact`]: merging closed hours' objects (the `compactor` binary).
//! - [`telemetry_index`]: the telemetry archive copied by vehicle, in each compactor run.

pub mod compact;
pub mod event;
pub mod object;
mod ranged_reader;
pub mod telemetry_index;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use canopy::adapters::aws::s3::S3Store;
use canopy::format::dbc::{self, LoadError};
use canopy::format::lake::decoded::DecodedWriterOptions;
use canopy::format::lake::keys::{RAW_PREFIX, RawKey};
use canopy::ports::store::ObjectStore;
use canopy::runtime::env::{self, EnvError};
use canopy::runtime::metrics::{Metrics, MetricsSink, Unit};
use canopy::services::dbc_cache::{DbcCache, DbcSource};
use tracing::{info, warn};

use crate::event::{DecoderEvent, DecoderResponse, ObjectRef, S3Notification};
use crate::object::{DecodeOutcome, DecoderOptions, Limits, decode_object};

/// Configuration from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATA_BUCKET`: the lake's bucket.
    pub bucket: String,
    /// `DBC_KEY`, `DBC_REFRESH_SECONDS`, `DBC_STRICT`: the DBC files.
    pub dbc: DbcSource,
    pub options: DecoderOptions,
}

impl Config {
    /// From `vars`: the process environment in Lambda, the template's map on the local stack.
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
        let defaults = Limits::default();
        let mb = |name: &str, default: u64| -> Result<u64, EnvError> {
            let value: u64 = env::parse_or(vars, name, default / (1024 * 1024))?;
            if value == 0 {
                return Err(EnvError {
                    name: name.into(),
                    problem: "must be positive".into(),
                });
            }
            Ok(value.saturating_mul(1024 * 1024))
        };
        let limits = Limits {
            object_bytes: mb("MAX_OBJECT_MB", defaults.object_bytes)?,
            footer_bytes: mb("MAX_FOOTER_MB", defaults.footer_bytes)?,
            row_group_bytes: mb("MAX_ROW_GROUP_MB", defaults.row_group_bytes)?,
            decompressed_bytes: mb("MAX_DECOMPRESSED_MB", defaults.decompressed_bytes)?,
        };
        Ok(Self {
            bucket: env::required(vars, "DATA_BUCKET")?,
            dbc: DbcSource::from_vars(vars)?,
            options: DecoderOptions {
                writer: DecodedWriterOptions {
                    sort_window_rows: window,
                    ..DecodedWriterOptions::default()
                },
                part_size: part_mb * 1024 * 1024,
                limits,
                ..DecoderOptions::default()
            },
        })
    }
}

/// Why the decoder could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("the built-in DBC: {0}")]
    Dbc(#[from] LoadError),
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("event is not an S3 notification: {0}")]
    Event(String),
    #[error("{failed} of {total} objects failed; first: {first}")]
    Objects { failed: usize, total: usize, first: String },
}

/// The handler, built once per Lambda instance: its DBC cache and the
/// compaction markers it wrote outlive invocations.
pub struct Decoder<S> {
    store: S,
    dbcs: DbcCache<S>,
    config: Config,
    metrics: MetricsSink,
    /// The `compaction/written/…` markers this instance wrote: a vehicle's
    /// next batches of the same hour cost no request.
    marked: Mutex<HashSet<String>>,
}

/// Markers an instance remembers before it starts over (a few days of a
/// large fleet's driven hours; forgetting costs a repeated PUT, nothing else).
const MARKED_REMEMBERED: usize = 100_000;

impl Decoder<S3Store> {
    /// The decoder as deployed: configuration from `vars`, the lake on S3.
    pub fn from_env(vars: &impl env::Vars, sdk: &aws_config::SdkConfig) -> Result<Self, StartError> {
        let config = Config::from_vars(vars)?;
        Ok(Self::new(S3Store::new(sdk, &config.bucket), config)?)
    }
}

impl<S: ObjectStore + Clone + Unpin + 'static> Decoder<S> {
    pub fn new(store: S, config: Config) -> Result<Self, LoadError> {
        let dbcs = DbcCache::new(
            store.clone(),
            &config.dbc,
            (dbc::BUILT_IN_NAME.to_string(), Arc::new(dbc::built_in()?)),
        );
        Ok(Self {
            store,
            dbcs,
            config,
            metrics: MetricsSink::default(),
            marked: Mutex::default(),
        })
    }

    pub fn with_metrics(mut self, sink: MetricsSink) -> Self {
        self.metrics = sink;
        self
    }

    /// Handles an SQS batch (answering with its failed messages) or an S3 notification.
    pub async fn handle(&self, event: DecoderEvent) -> Result<DecoderResponse, HandlerError> {
        let started = Instant::now();
        let mut metrics = Metrics::new("decoder");
        let result = match event {
            DecoderEvent::Sqs(batch) => Ok(DecoderResponse::Batch(self.handle_batch(batch, &mut metrics).await)),
            DecoderEvent::S3(notification) => {
                let objects = notification.objects().map_err(HandlerError::Event)?;
                let decoded = self.decode_all(&objects, &mut metrics).await;
                decoded.map(|decoded| DecoderResponse::Decoded { decoded })
            }
        };
        metrics.count("DbcWarnings", self.dbcs.take_warnings()).add(
            "DurationMs",
            started.elapsed().as_secs_f64() * 1000.0,
            Unit::Milliseconds,
        );
        metrics.emit(self.metrics);
        result
    }

    /// Each message is an S3 notification; only the failed ones go back to the queue.
    async fn handle_batch(&self, batch: SqsEvent, metrics: &mut Metrics) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for message in &batch.records {
            let id = message.message_id.clone().unwrap_or_default();
            let ok = match notification_of(message).and_then(|n| n.objects()) {
                Ok(objects) => self.decode_all(&objects, metrics).await.is_ok(),
                Err(reason) => {
                    warn!(message_id = %id, %reason, "rejected SQS message");
                    false
                }
            };
            if !ok {
                response.add_failure(id);
            }
        }
        metrics.count("FailedMessages", response.batch_item_failures.len() as u64);
        response
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
        let outcome = decode_object(&self.store, &db, &dbc_name, &object.key, self.config.options)
            .await
            .map_err(|e| e.to_string())?;
        log_outcome(&outcome);
        // After the objects are written: a compaction of the hour or day
        // visits the vehicles marked, and one that listed the hour without
        // them is followed by another.
        self.mark_written(&key)
            .await
            .map_err(|e| format!("marking a batch's hour for compaction: {e}"))?;
        compact::mark_if_late(&self.store, &key, chrono::Utc::now().timestamp_micros())
            .await
            .map_err(|e| format!("marking a late batch's hour for compaction: {e}"))?;
        // Per vehicle, for the upload-volume alarm: who sends what.
        let mut per_vehicle = Metrics::new("decoder").with_dimension("VehicleId", key.vehicle.as_str());
        per_vehicle.add("RawBytes", outcome.bytes_in as f64, Unit::Bytes);
        per_vehicle.emit(self.metrics);
        for signal in out_of_range_metrics(&outcome) {
            signal.emit(self.metrics);
        }
        Ok(Some(outcome))
    }
}

impl<S: ObjectStore> Decoder<S> {
    /// Writes the compaction markers of `key`'s hour and day this instance has not.
    async fn mark_written(&self, key: &RawKey) -> Result<(), canopy::ports::store::StoreError> {
        for marker in compact::written_keys(key) {
            if self.marked().contains(&marker) {
                continue;
            }
            self.store.put(&marker, bytes::Bytes::new(), None).await?;
            let mut marked = self.marked();
            if marked.len() >= MARKED_REMEMBERED {
                marked.clear();
            }
            marked.insert(marker);
        }
        Ok(())
    }

    fn marked(&self) -> MutexGuard<'_, HashSet<String>> {
        self.marked.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn notification_of(message: &SqsMessage) -> Result<S3Notification, String> {
    let body = message.body.as_deref().ok_or("SQS message without a body")?;
    serde_json::from_str(body).map_err(|e| format!("body is not an S3 notification: {e}"))
}

fn log_outcome(outcome: &DecodeOutcome) {
    info!(
        raw_key = %outcome.raw_key,
        decoded_key = %outcome.decoded_key,
        dbc = %outcome.dbc,
        frames = outcome.stats.frames,
        values = outcome.stats.values,
        unknown_ids = outcome.stats.unknown_ids,
        short_frames = outcome.stats.short_frames,
        transport_messages = outcome.stats.transport_messages,
        broken_transfers = outcome.stats.broken_transfers,
        bytes_in = outcome.bytes_in,
        bytes_out = outcome.bytes_out,
        rollup_bytes = outcome.rollup_bytes,
        out_of_range = outcome.out_of_range.iter().map(|o| o.values).sum::<u64>(),
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
}

/// Per signal that had any, its values outside the DBC's range: a metric
/// with a `Signal` dimension (`Message.Signal`), so an alarm can watch one
/// sensor. Only signals that had such values emit one, so a fleet pays for
/// the metrics of misbehaving signals only.
pub fn out_of_range_metrics(outcome: &DecodeOutcome) -> Vec<Metrics> {
    outcome
        .out_of_range
        .iter()
        .map(|o| {
            let mut m = Metrics::new("decoder").with_dimension("Signal", &format!("{}.{}", o.message, o.signal));
            m.count("OutOfRangeValues", o.values);
            m
        })
        .collect()
}

fn record_outcome(metrics: &mut Metrics, outcome: &DecodeOutcome) {
    let s = &outcome.stats;
    metrics
        .count("OutOfRangeValues", outcome.out_of_range.iter().map(|o| o.values).sum())
        .count("Objects", 1)
        .count("Frames", s.frames)
        .count("ValuesDecoded", s.values)
        .count("UnknownIds", s.unknown_ids)
        .count("ShortFrames", s.short_frames)
        .count("InvalidFrames", s.invalid_frames)
        .count("TransportMessages", s.transport_messages)
        .count("BrokenTransfers", s.broken_transfers)
        .add("BytesIn", outcome.bytes_in as f64, Unit::Bytes)
        .add("BytesOut", outcome.bytes_out as f64, Unit::Bytes)
        .add("RollupBytes", outcome.rollup_bytes as f64, Unit::Bytes);
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
