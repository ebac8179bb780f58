//! Lambda entry point of `alerts`.

#![recursion_limit = "256"]

use canopy::aws::dynamodb::{self, DynamoAlertTables};
use canopy::aws::iot::IotPublisher;
use canopy::aws::sns::SnsNotifier;
use canopy_alerts::{Alerts, Config};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    canopy::logging::init_json();
    let config = Config::from_env()?;
    let sdk = canopy::aws::config().await;
    let handler = Alerts::new(
        DynamoAlertTables::new(dynamodb::client(&sdk), &config.table),
        SnsNotifier::new(&sdk, &config.topic_arn),
        IotPublisher::new(&sdk),
        config.rules,
        config.retention,
    );
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
