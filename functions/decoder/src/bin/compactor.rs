//! Lambda entry point of `compactor`: an EventBridge schedule invokes it
//! (every 5 minutes in the template); each invocation is one compaction run
//! as of the time it starts, and copies the telemetry archive written since
//! the last run by vehicle. Units that fail are counted (`CompactionFailures`)
//! and, once quarantined, raise the `CompactionQuarantinedAlarm`.

use canopy::runtime::env::Process;
use canopy::runtime::metrics::{Metrics, MetricsSink};
use canopy_decoder::compact::Compactor;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    canopy::runtime::logging::init_json();
    let sdk = canopy::adapters::aws::config().await;
    let compactor = &Compactor::from_env(&Process, &sdk)?;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let report = compactor.run(chrono::Utc::now().timestamp_micros()).await?;
        Metrics::new("compactor")
            .count("CompactedObjects", report.compacted.len() as u64)
            .count("CompactionFailures", report.failed.len() as u64)
            .count("CompactionQuarantined", report.quarantined.len() as u64)
            .count("IndexedArchiveObjects", report.indexed.archive_objects as u64)
            .count("IndexFailures", report.indexed.failed.len() as u64)
            .emit(MetricsSink::Stdout);
        Ok::<Value, Error>(json!({
            "compacted": report.compacted.len(),
            "deleted": report.deleted,
            "failed": report.failed.iter().map(|(unit, error)| json!({"unit": unit.describe(), "error": error})).collect::<Vec<_>>(),
            "quarantined": report.quarantined.iter().map(|u| u.describe()).collect::<Vec<_>>(),
            "indexed": {
                "archive_objects": report.indexed.archive_objects,
                "vehicle_days": report.indexed.vehicle_days,
                "fleet_days": report.indexed.fleet_days,
                "failed": report.indexed.failed.iter().map(|(what, error)| json!({"what": what, "error": error})).collect::<Vec<_>>(),
            },
        }))
    }))
    .await
}
