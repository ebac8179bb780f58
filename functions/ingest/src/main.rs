//! Lambda entry point of `ingest`: `POST /ingest` behind API Gateway (HTTP
//! API, payload v2), keys in DynamoDB, messages into the telemetry queue.

#![recursion_limit = "256"]

use std::sync::Arc;

use canopy::runtime::env::Process;
use canopy_ingest::Ingest;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    canopy::runtime::logging::init_json();
    let sdk = canopy::adapters::aws::config().await;
    let ingest = Ingest::from_env(&Process, &sdk)?;
    lambda_http::run(canopy_ingest::router::router(Arc::new(ingest))).await
}
