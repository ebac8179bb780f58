//! The `telemetry` Lambda: batches from the IoT rules' SQS queue (vehicles'
//! telemetry and devices' status) into the latest-state tables and the
//! archives, reporting the messages to retry.
//!
//! - [`Config`]: its environment, validated at start-up.
//! - [`TelemetryHandler`]: the handler, built by [`TelemetryHandler::from_env`]
//!   (the Lambda's `main.rs` and the local stack call the same constructor).
//! - [`record`]: the work, knowing nothing of Lambda; [`listing`]: the
//!   fleet's directory it keeps.

pub mod listing;
pub mod record;

use std::time::Instant;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use canopy::adapters::aws::dynamodb::{self, DynamoDeviceStateTable, DynamoDirectory, DynamoLedger, DynamoStateTable};
use canopy::adapters::aws::s3::S3Store;
use canopy::domain::access::VehicleGroups;
use canopy::domain::kind::Kinds;
use canopy::ports::device_state::DeviceStateStore;
use canopy::ports::directory::VehicleDirectory;
use canopy::ports::ledger::Ledger;
use canopy::ports::state::LatestStateStore;
use canopy::ports::store::ObjectStore;
use canopy::runtime::env::{self, EnvError};
use canopy::runtime::metrics::{Metrics, MetricsSink, Unit};

use crate::listing::Listings;
use crate::record::{Incoming, RecordOptions, RecordOutcome, Recorder};

#[derive(Debug, Clone)]
pub struct Config {
    /// `DATA_BUCKET`: where `telemetry/` lives.
    pub bucket: String,
    /// `STATE_TABLE`: latest state per vehicle.
    pub state_table: String,
    /// `DEVICE_STATE_TABLE`: latest state per device of a declared kind.
    pub device_state_table: String,
    /// `LEDGER_TABLE`: which archive object holds which message.
    pub ledger_table: String,
    /// `FLEET_INDEX_TABLE`: the fleet's directory.
    pub index_table: String,
    /// `VEHICLE_GROUPS` (optional, as the API's): which groups' views list each vehicle.
    pub groups: VehicleGroups,
    pub options: RecordOptions,
}

impl Config {
    /// From `vars`: the process environment in Lambda, the template's map on the local stack.
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
            device_state_table: env::required(vars, "DEVICE_STATE_TABLE")?,
            ledger_table: env::required(vars, "LEDGER_TABLE")?,
            index_table: env::required(vars, "FLEET_INDEX_TABLE")?,
            groups: VehicleGroups::parse(&env::or(vars, "VEHICLE_GROUPS", "")).map_err(|problem| EnvError {
                name: "VEHICLE_GROUPS".into(),
                problem,
            })?,
            options: RecordOptions {
                claim_stale_after_ms: stale_s * 1000,
                clock: env::clock_bounds(vars)?,
                ..RecordOptions::default()
            },
        })
    }
}

/// The handler: an SQS batch in, the messages to retry out.
pub struct TelemetryHandler<S, D, L, O, R> {
    ingest: Recorder<S, D, L, O, R>,
    metrics: MetricsSink,
}

impl TelemetryHandler<DynamoStateTable, DynamoDeviceStateTable, DynamoLedger, S3Store, DynamoDirectory> {
    /// The function as deployed: configuration from `vars`, DynamoDB and S3.
    pub fn from_env(vars: &impl env::Vars, sdk: &aws_config::SdkConfig) -> Result<Self, EnvError> {
        let config = Config::from_vars(vars)?;
        let client = dynamodb::client(sdk);
        Ok(Self::new(Recorder {
            state: DynamoStateTable::new(client.clone(), &config.state_table),
            listings: Listings::new(DynamoDirectory::new(client.clone(), &config.index_table), config.groups),
            devices: DynamoDeviceStateTable::new(client.clone(), &config.device_state_table),
            ledger: DynamoLedger::new(client, &config.ledger_table),
            store: S3Store::new(sdk, &config.bucket),
            kinds: Kinds::builtin(),
            options: config.options,
        }))
    }
}

impl<S: LatestStateStore, D: DeviceStateStore, L: Ledger, O: ObjectStore, R: VehicleDirectory>
    TelemetryHandler<S, D, L, O, R>
{
    pub fn new(ingest: Recorder<S, D, L, O, R>) -> Self {
        Self {
            ingest,
            metrics: MetricsSink::default(),
        }
    }

    pub fn with_metrics(mut self, sink: MetricsSink) -> Self {
        self.metrics = sink;
        self
    }

    /// Handles an SQS batch; answers with the messages to retry.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let started = Instant::now();
        let batch: Vec<Incoming> = event
            .records
            .into_iter()
            .map(|r| Incoming {
                id: r.message_id.unwrap_or_default(),
                body: r.body.unwrap_or_default(),
            })
            .collect();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let outcome = self.ingest.process(&batch, now_ms).await;
        self.emit(&outcome, started);
        let mut response = SqsBatchResponse::default();
        for id in outcome.failed {
            response.add_failure(id);
        }
        response
    }

    fn emit(&self, outcome: &RecordOutcome, started: Instant) {
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
        metrics.emit(self.metrics);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sample_event_is_handled_and_failures_are_reported_by_message_id() {
        let handler = TelemetryHandler::new(crate::record::tests::service());
        let event: SqsEvent = serde_json::from_str(include_str!("../../../events/sqs-telemetry.json")).unwrap();
        let ids: Vec<String> = event.records.iter().filter_map(|r| r.message_id.clone()).collect();
        handler.ingest.store.faults().fail_next_of("put", 1);
        let failed: Vec<String> = handler
            .handle(event.clone())
            .await
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert!(
            !failed.is_empty() && failed.iter().all(|id| ids.contains(id)),
            "{failed:?}"
        );
        assert!(handler.handle(event).await.batch_item_failures.is_empty());
    }
}
