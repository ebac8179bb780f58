//! Lambda entry point of `alerts`.

#![recursion_limit = "256"]

use canopy::runtime::env::Process;
use canopy_alerts::AlertsHandler;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    canopy::runtime::logging::init_json();
    let sdk = canopy::adapters::aws::config().await;
    let handler = &AlertsHandler::from_env(&Process, &sdk)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
