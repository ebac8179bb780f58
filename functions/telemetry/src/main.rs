//! Lambda entry point of `telemetry`.

#![recursion_limit = "256"]

use canopy::aws::dynamodb::{self, DynamoTelemetryTables};
use canopy::aws::s3::S3Store;
use canopy_telemetry::{Config, Telemetry};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    canopy::logging::init_json();
    let config = Config::from_env()?;
    let sdk = canopy::aws::config().await;
    let tables = DynamoTelemetryTables::new(dynamodb::client(&sdk), &config.state_table, &config.ledger_table);
    let handler = Telemetry::new(tables, S3Store::new(&sdk, &config.bucket), config.options);
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
