//! Lambda entry point of `telemetry`.

#![recursion_limit = "256"]

use aws_lambda_events::event::sqs::SqsEvent;
use canopy::runtime::env::Process;
use canopy_telemetry::TelemetryHandler;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    canopy::runtime::logging::init_json();
    let sdk = canopy::adapters::aws::config().await;
    let handler = &TelemetryHandler::from_env(&Process, &sdk)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(handler.handle(event.payload).await)
    }))
    .await
}
