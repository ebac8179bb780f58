//! The `telemetry` Lambda: batches from the IoT rule's SQS queue into the
//! latest-state table and the telemetry archive, reporting the messages to
//! retry. The work is [`canopy::ingest::process`].

use std::time::Instant;

use canopy::env::{self, EnvError};
use canopy::ingest::{self, Incoming, IngestOptions};
use canopy::metrics::{Metrics, Unit};
use canopy::store::ObjectStore;
use canopy::tables::TelemetryTables;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Config {
    /// `DATA_BUCKET`: where `telemetry/` lives.
    pub bucket: String,
    /// `STATE_TABLE`: latest state per vehicle.
    pub state_table: String,
    /// `LEDGER_TABLE`: which archive object holds which message.
    pub ledger_table: String,
    pub options: IngestOptions,
}

impl Config {
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_vars(&env::Process)
    }

    /// From `vars`: the local stack passes the template's environment.
    pub fn from_vars(vars: &impl env::Vars) -> Result<Self, EnvError> {
        let stale_s: i64 = env::parse_or(vars, "CLAIM_STALE_SECONDS", 900)?;
        if stale_s < 60 {
            return Err(EnvError {
                name: "CLAIM_STALE_SECONDS".into(),
                problem: "must be at least 60".into(),
            });
        }
        Ok(Self {
            bucket: env::required(vars, "DATA_BUCKET")?,
            state_table: env::required(vars, "STATE_TABLE")?,
            ledger_table: env::required(vars, "LEDGER_TABLE")?,
            options: IngestOptions {
                claim_stale_after_ms: stale_s * 1000,
                ..IngestOptions::default()
            },
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("event is not an SQS batch: {0}")]
pub struct EventError(String);

pub struct Telemetry<T, S> {
    tables: T,
    store: S,
    options: IngestOptions,
}

impl<T: TelemetryTables, S: ObjectStore> Telemetry<T, S> {
    pub fn new(tables: T, store: S, options: IngestOptions) -> Self {
        Self { tables, store, options }
    }

    /// Handles an SQS batch; answers with the messages to retry.
    pub async fn handle(&self, event: Value) -> Result<Value, EventError> {
        let started = Instant::now();
        let records = event
            .get("Records")
            .and_then(Value::as_array)
            .ok_or_else(|| EventError("no Records".into()))?;
        let batch: Vec<Incoming> = records
            .iter()
            .map(|r| {
                let id = r
                    .get("messageId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let body = r.get("body").and_then(Value::as_str).unwrap_or_default().to_string();
                Incoming { id, body }
            })
            .collect();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let outcome = ingest::process(&self.tables, &self.store, &batch, now_ms, self.options).await;
        let mut metrics = Metrics::new("telemetry");
        metrics
            .count("MessagesReceived", outcome.received)
            .count("MessagesRejected", outcome.rejected)
            .count("Duplicates", outcome.duplicates)
            .count("Archived", outcome.archived)
            .count("ArchiveObjects", outcome.archive_objects.len() as u64)
            .count("StateWrites", outcome.state_written)
            .count("StaleState", outcome.state_stale)
            .count("MessagesRetried", outcome.failed.len() as u64)
            .add(
                "DurationMs",
                started.elapsed().as_secs_f64() * 1000.0,
                Unit::Milliseconds,
            );
        metrics.emit();
        let failures: Vec<Value> = outcome
            .failed
            .iter()
            .map(|id| json!({ "itemIdentifier": id }))
            .collect();
        Ok(json!({ "batchItemFailures": failures }))
    }
}
